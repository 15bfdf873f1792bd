//! An IRC session (registration, CAP, SASL, every command) on any bytes, fed as the server feeds
//! it. It must never panic, never use more than it is given, never let the unread input grow past
//! a line's limit, answer only in whole lines of at most 512 bytes (tags aside), and take the same
//! messages and give the same answers however the bytes are cut into reads (the input's first
//! byte picks the read size).
#![no_main]

use std::sync::OnceLock;

use chatd::proto::irc::line::{MAX_LINE, MAX_TAGS};
use chatd::proto::irc::{IrcContext, IrcSession};
use chatd::proto::{ClientMsg, DecodeError};
use libfuzzer_sys::fuzz_target;

/// The server's names, made once: a context lives as long as the process.
fn context() -> &'static IrcContext {
    static CONTEXT: OnceLock<&'static IrcContext> = OnceLock::new();
    CONTEXT.get_or_init(|| IrcContext::leak("irc.fuzz", "#lobby", 0, true))
}

/// Feeds `data` in reads of `chunk` bytes; returns what went to the core and the answers.
fn run(data: &[u8], chunk: usize) -> (Vec<Result<ClientMsg, DecodeError>>, Vec<u8>) {
    let mut session = IrcSession::new(context());
    let mut buffer = Vec::new();
    let mut answers = Vec::new();
    let mut items = Vec::new();
    for piece in data.chunks(chunk) {
        buffer.extend_from_slice(piece);
        loop {
            let before = answers.len();
            let step = session.receive(&buffer, &mut answers);
            assert!(step.used <= buffer.len(), "used {} of {}", step.used, buffer.len());
            buffer.drain(..step.used);
            check_lines(&answers[before..]);
            match step.item {
                Some(item) => items.push(item),
                None if step.taken => {}
                None => break,
            }
        }
        assert!(
            buffer.len() <= MAX_LINE + MAX_TAGS + chunk,
            "{} bytes kept unread",
            buffer.len()
        );
    }
    (items, answers)
}

/// Answers are whole CR LF lines that fit IRC's limit.
fn check_lines(answers: &[u8]) {
    if answers.is_empty() {
        return;
    }
    assert!(answers.ends_with(b"\r\n"), "an answer is not a whole line");
    for line in answers.split_inclusive(|&b| b == b'\n') {
        assert!(line.ends_with(b"\r\n"), "a line ends without CR LF: {line:?}");
        assert!(!line[..line.len() - 2].contains(&b'\r'), "a bare CR: {line:?}");
        assert!(line.len() <= MAX_LINE, "an answer of {} bytes", line.len());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else { return };
    let chunked = run(data, usize::from(chunk).max(1));
    let whole = run(data, data.len().max(1));
    assert_eq!(chunked, whole, "reads of {chunk} bytes differ");
});
