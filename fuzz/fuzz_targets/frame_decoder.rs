//! Feeds arbitrary bytes, split in two at an arbitrary point, to both sides' decoders: the
//! server's (`proto::Decoder`: text, or framed when the first byte is 0x00) and the client's
//! (`ServerFrameDecoder`). No input may panic, use more bytes than given, or leave more buffered
//! than one line or frame may take.

#![no_main]

use chatd::proto::framed::{ServerFrameDecoder, HEADER_LEN, MAX_FRAME_CAP};
use chatd::proto::{Decoded, Decoder, Limits};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_line: 1024,
    max_frame: 4096,
    max_before_join: 4096,
};

fuzz_target!(|data: &[u8]| {
    // The first byte says where the rest is split, as two reads from a socket would split it.
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let (head, tail) = bytes.split_at(usize::from(split).min(bytes.len()));

    let mut server_side = Decoder::new(LIMITS);
    let left = feed(|input| server_side.decode(input), head, tail);
    assert!(left <= (LIMITS.max_line + 1).max(HEADER_LEN + LIMITS.max_frame));

    let mut client_side = ServerFrameDecoder::new(MAX_FRAME_CAP);
    feed(|input| client_side.decode(input), head, tail);
});

/// Decodes `head` then `tail` as a reader loop does; returns the bytes left waiting.
fn feed<T>(mut decode: impl FnMut(&[u8]) -> Decoded<T>, head: &[u8], tail: &[u8]) -> usize {
    let mut buffer = Vec::new();
    for chunk in [head, tail] {
        buffer.extend_from_slice(chunk);
        loop {
            let step = decode(&buffer);
            assert!(step.used <= buffer.len());
            buffer.drain(..step.used);
            if step.item.is_none() {
                break;
            }
        }
    }
    buffer.len()
}
