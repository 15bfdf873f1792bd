//! The text-mode decoder on any bytes. It must never panic, never use more than it is given,
//! never let a line pile up past its limit, and give the same messages however the bytes are cut
//! into reads (the input's first byte picks the read size).
#![no_main]

use chatd::proto::{ClientMsg, DecodeError, Decoder, Limits};
use libfuzzer_sys::fuzz_target;

const MAX_LINE: usize = 64;

/// Feeds `data` in reads of `chunk` bytes, as the server does; returns every message decoded.
fn decode(data: &[u8], chunk: usize) -> Vec<Result<ClientMsg, DecodeError>> {
    let limits = Limits { max_line: MAX_LINE, max_frame: 1024, max_before_join: MAX_LINE };
    let mut decoder = Decoder::new(limits);
    let mut buffer = Vec::new();
    let mut items = Vec::new();
    for piece in data.chunks(chunk) {
        buffer.extend_from_slice(piece);
        loop {
            let step = decoder.decode(&buffer);
            assert!(step.used <= buffer.len());
            buffer.drain(..step.used);
            match step.item {
                Some(item) => items.push(item),
                None => break,
            }
        }
        assert!(buffer.len() <= MAX_LINE + 2 + chunk, "{} bytes kept", buffer.len());
    }
    items
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else { return };
    // Text mode only: the first byte of a framed stream is 0x00.
    if data.first() == Some(&0) {
        return;
    }
    let chunked = decode(data, usize::from(chunk).max(1));
    assert_eq!(chunked, decode(data, data.len().max(1)), "reads of {chunk} bytes differ");
});
