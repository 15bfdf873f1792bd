//! The telnet layer and the text-mode decoder behind it on any bytes, as the server feeds them.
//! They must never panic, never use more than they are given, never let a line pile up past its
//! limit, and give the same messages however the bytes are cut into reads (the input's first byte
//! picks the read size), unless a Ctrl-C (IAC IP) cut a line where the reads happened to fall.
#![no_main]

use chatd::proto::telnet::Telnet;
use chatd::proto::{ClientMsg, DecodeError, Decoder, Limits};
use libfuzzer_sys::fuzz_target;

const MAX_LINE: usize = 64;

/// Feeds `data` in reads of `chunk` bytes, as the server does; returns every message decoded
/// and whether the user interrupted a line.
fn decode(data: &[u8], chunk: usize) -> (Vec<Result<ClientMsg, DecodeError>>, bool) {
    let limits = Limits {
        max_line: MAX_LINE,
        max_frame: 1024,
        max_before_join: MAX_LINE,
        max_discard: 4 * MAX_LINE,
    };
    let mut decoder = Decoder::new(limits);
    let mut telnet = Telnet::new();
    let mut buffer = Vec::new();
    let mut reply = Vec::new();
    let mut items = Vec::new();
    let mut interrupted = false;
    for piece in data.chunks(chunk) {
        let received = telnet.receive(piece, &mut buffer, &mut reply);
        if received.interrupted {
            interrupted = true;
            if !buffer.contains(&b'\n') {
                decoder.interrupt();
            }
        }
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
    (items, interrupted)
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else { return };
    // Text mode only: the first byte of a framed stream is 0x00.
    if data.first() == Some(&0) {
        return;
    }
    let (chunked, cut) = decode(data, usize::from(chunk).max(1));
    let (whole, _) = decode(data, data.len().max(1));
    if !cut {
        assert_eq!(chunked, whole, "reads of {chunk} bytes differ");
    }
});
