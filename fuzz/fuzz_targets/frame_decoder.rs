//! Feeds arbitrary bytes, split in two at an arbitrary point, to both sides' decoders: the
//! server's (`proto::Decoder`: text, or framed when the first byte is 0x00) and the client's
//! (`ServerFrameDecoder`). No input may panic, use more bytes than given, or leave more buffered
//! than one line or frame may take. `peek_chat` (the load tool's in-place reading) must agree with
//! the client's decoder on every chat frame it reads.

#![no_main]

use chatd::proto::framed::{
    digest, peek_chat, ServerFrame, ServerFrameDecoder, HEADER_LEN, MAX_FRAME_CAP,
};
use chatd::proto::{sanitize, Decoded, Decoder, Limits};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_line: 1024,
    max_frame: 4096,
    max_before_join: 4096,
    max_discard: 4096,
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

    // A frame at the very start: the client's decoder skips nothing before a leading 0x00.
    if let Some(chat) = peek_chat(bytes) {
        assert!(chat.len <= bytes.len());
        let mut decoder = ServerFrameDecoder::new(MAX_FRAME_CAP);
        let step = decoder.decode(bytes);
        assert_eq!(step.used, chat.len);
        match step.item {
            Some(Ok(ServerFrame::Chat {
                text, digest_ok, ..
            })) => {
                assert_eq!(digest_ok, digest(chat.text) == chat.digest);
                assert_eq!(text, sanitize(chat.text));
            }
            // The decoder also checks the time and the sender, which peek_chat does not read.
            Some(Err(_)) => {}
            other => panic!("peek_chat read a chat frame the decoder reads as {other:?}"),
        }
    }
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
