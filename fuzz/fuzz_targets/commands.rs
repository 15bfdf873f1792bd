//! The command grammar (text-mode lines and console lines) on any text: it must never panic,
//! and whatever it yields must be text a terminal can show safely.
#![no_main]

use chatd::console::parse_command;
use chatd::proto::msg::{ClientMsg, Command};
use chatd::proto::text::parse_line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = chatd::proto::sanitize(data);
    let _ = parse_command(&line);
    match parse_line(&line) {
        ClientMsg::Say { text } => assert!(!text.contains(['\n', '\r', '\u{1b}'])),
        ClientMsg::Command(Command::Unknown { name }) => assert!(!name.contains(char::is_whitespace)),
        _ => {}
    }
});
