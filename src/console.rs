//! The host console: commands read from stdin, and the room shown on stdout.
//!
//! Reading is optional: when stdin cannot be polled (a regular file, /dev/null, closed) or
//! `--no-console` is given, the server runs without it. Stdout always shows the room.

use std::io::{self, IsTerminal, Write};

use mio::{Registry, Token};

use crate::proto::msg::{HostCommand, ServerMsg, Stamp};
use crate::proto::text;
pub use crate::stdin::ReadOutcome;
use crate::stdin::{LineSplitter, PolledStdin};

/// Longest console line kept; a longer line is dropped.
const MAX_LINE: usize = 8 * 1024;

/// Reads host commands from stdin, registered with the server's poll.
#[derive(Debug)]
pub struct ConsoleInput {
    stdin: PolledStdin,
    lines: LineSplitter,
}

impl ConsoleInput {
    /// Makes stdin non-blocking and registers it, or says why it cannot be used.
    pub fn open(registry: &Registry, token: Token) -> io::Result<ConsoleInput> {
        Ok(ConsoleInput {
            stdin: PolledStdin::open(registry, token)?,
            lines: LineSplitter::new(MAX_LINE),
        })
    }

    /// Reads until stdin would block, appending every whole line's command to `commands`.
    pub fn read(&mut self, commands: &mut Vec<HostCommand>) -> ReadOutcome {
        let lines = &mut self.lines;
        self.stdin.read(|bytes| take(lines, bytes, commands))
    }

    /// Stops polling stdin; its flags are put back when this is dropped.
    pub fn deregister(&self, registry: &Registry) {
        self.stdin.deregister(registry);
    }
}

/// Splits `bytes` into lines and appends their commands to `commands`; over-long lines are dropped.
fn take(lines: &mut LineSplitter, bytes: &[u8], commands: &mut Vec<HostCommand>) {
    let mut split = Vec::new();
    lines.push(bytes, &mut split);
    commands.extend(
        split
            .into_iter()
            .flatten()
            .filter_map(|l| parse_command(&l)),
    );
}

/// Parses one console line. Commands are matched in any case; an empty line is nothing.
pub fn parse_command(line: &str) -> Option<HostCommand> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let command = match word.to_ascii_uppercase().as_str() {
        "HELP" if rest.is_empty() => HostCommand::Help,
        "LIST_USERS" if rest.is_empty() => HostCommand::ListUsers,
        "EXIT" if rest.is_empty() => HostCommand::Exit,
        "KICK" if rest.is_empty() => HostCommand::BadUsage {
            usage: "KICK NAME [REASON]",
        },
        "KICK" => {
            let (name, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let reason = reason.trim();
            HostCommand::Kick {
                name: name.to_owned(),
                reason: (!reason.is_empty()).then(|| reason.to_owned()),
            }
        }
        _ => HostCommand::Say {
            text: line.to_owned(),
        },
    };
    Some(command)
}

/// Shows the room on stdout, with a `[HH:MM:SS] Host > ` prompt when a person is typing at a terminal.
#[derive(Debug)]
pub struct ConsoleOutput {
    prompt: bool,
    line: Vec<u8>,
}

impl ConsoleOutput {
    /// Output with a prompt if `interactive` and both stdin and stdout are terminals.
    pub fn new(interactive: bool) -> ConsoleOutput {
        let prompt = interactive && io::stdin().is_terminal() && io::stdout().is_terminal();
        ConsoleOutput {
            prompt,
            line: Vec::new(),
        }
    }

    /// Prints `msg` as console text.
    pub fn show(&mut self, msg: &ServerMsg, stamp: Stamp) {
        self.line.clear();
        if self.prompt {
            // Overwrite the prompt the message interrupts.
            self.line.extend_from_slice(b"\r\x1b[K");
        }
        text::encode(msg, text::CONSOLE_EOL, &mut self.line);
        self.write_with_prompt(stamp);
    }

    /// Prints the prompt again (after the host entered a line).
    pub fn prompt(&mut self, stamp: Stamp) {
        self.line.clear();
        self.write_with_prompt(stamp);
    }

    /// Prints one plain line.
    pub fn say(&mut self, line: &str) {
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }

    fn write_with_prompt(&mut self, stamp: Stamp) {
        if self.prompt {
            self.line
                .extend_from_slice(format!("[{}] Host > ", stamp.hms()).as_bytes());
        }
        let mut stdout = io::stdout().lock();
        if let Err(e) = stdout.write_all(&self.line).and_then(|()| stdout.flush()) {
            log::debug!("console output failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_commands_are_parsed_in_any_case() {
        assert_eq!(parse_command("help"), Some(HostCommand::Help));
        assert_eq!(parse_command("List_Users"), Some(HostCommand::ListUsers));
        assert_eq!(parse_command(" EXIT "), Some(HostCommand::Exit));
        assert_eq!(
            parse_command("kick bob"),
            Some(HostCommand::Kick {
                name: "bob".into(),
                reason: None
            })
        );
        assert_eq!(
            parse_command("KICK bob  too loud "),
            Some(HostCommand::Kick {
                name: "bob".into(),
                reason: Some("too loud".into())
            })
        );
        assert_eq!(
            parse_command("KICK"),
            Some(HostCommand::BadUsage {
                usage: "KICK NAME [REASON]"
            })
        );
        assert_eq!(parse_command(""), None);
    }

    #[test]
    fn any_other_line_is_said_as_host() {
        assert_eq!(
            parse_command("hello everyone"),
            Some(HostCommand::Say {
                text: "hello everyone".into()
            })
        );
        assert_eq!(
            parse_command("exit now"),
            Some(HostCommand::Say {
                text: "exit now".into()
            })
        );
    }

    #[test]
    fn pasted_lines_are_all_taken_and_a_partial_line_waits() {
        let mut lines = LineSplitter::new(MAX_LINE);
        let mut commands = Vec::new();
        take(&mut lines, b"LIST_USERS\r\nhi there\nKI", &mut commands);
        assert_eq!(
            commands,
            vec![
                HostCommand::ListUsers,
                HostCommand::Say {
                    text: "hi there".into()
                }
            ]
        );
        take(&mut lines, b"CK bob\n", &mut commands);
        assert_eq!(
            commands.last(),
            Some(&HostCommand::Kick {
                name: "bob".into(),
                reason: None
            })
        );
    }
}
