//! The text-mode decoder on any bytes, fed in the chunks the input's first byte chooses: it must
//! never panic, never use more than it is given, and always make progress or ask for more.
#![no_main]

use chatd::proto::{Decoder, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut decoder = Decoder::new(Limits { max_line: 64, ..Limits::default() });
    let mut buffer = Vec::new();
    for piece in data.chunks(chunk) {
        buffer.extend_from_slice(piece);
        loop {
            let step = decoder.decode(&buffer);
            assert!(step.used <= buffer.len());
            buffer.drain(..step.used);
            if step.item.is_none() {
                break;
            }
        }
        // Bounded: the decoder never lets a line pile up past its limit (plus a line end).
        assert!(buffer.len() <= 64 + 2 + chunk, "{} bytes kept", buffer.len());
    }
});
