//! The host console: commands read from stdin, and the room shown on stdout.
//!
//! Reading is optional: when stdin cannot be polled (a regular file, /dev/null, closed) or
//! `--no-console` is given, the server runs without it. Stdout always shows the room.
//!
//! When stdin and stdout are a terminal, chatd edits the line itself ([`terminal`]): the
//! `[HH:MM:SS] Host > ` prompt and the text typed so far are drawn again under every line that
//! arrives, with the cursor where it was. Otherwise (a pipe) stdin is read line by line.

mod terminal;

use std::fmt;
use std::io::{self, IsTerminal, Write};

use std::os::fd::AsRawFd;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use rustix::fs::OFlags;

use crate::client::ui::wrap;
use crate::proto::msg::{split_word, Command, HostCommand, ServerMsg, Stamp, HOST_COMMANDS};
use crate::proto::text;
use crate::stdin::{LineSplitter, PolledStdin, ReadOutcome};
use terminal::{EditLine, Edited, Key, KeyDecoder, RawMode};

/// Longest console line kept; a longer line is dropped (at a terminal, typing stops there).
const MAX_LINE: usize = 8 * 1024;

/// Why the console stopped reading stdin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// Stdin reached its end (a pipe closed, a terminal hung up) or failed.
    EndOfInput,
    /// The host pressed Ctrl-D on an empty line.
    CtrlD,
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Closed::EndOfInput => "end of input",
            Closed::CtrlD => "Ctrl-D",
        })
    }
}

/// What the console's line says when the host closes it with Ctrl-D.
const CTRL_D_LINE: &str =
    "[*] Console closed (Ctrl-D): chatd keeps serving; stop it with Ctrl-C or SIGTERM.\n";

/// How stdin is read.
#[derive(Debug)]
enum Reader {
    /// Whole lines, from a pipe (or a terminal whose output is not one).
    Lines(LineSplitter),
    /// Keys, from a terminal with its echo and line editing off while this lives.
    Keys { decoder: KeyDecoder, _raw: RawMode },
}

/// Reads host commands from stdin, registered with the server's poll.
#[derive(Debug)]
pub struct ConsoleInput {
    stdin: PolledStdin,
    reader: Reader,
}

impl ConsoleInput {
    /// Makes stdin non-blocking and registers it, or says why it cannot be used. When stdin and
    /// stdout are a terminal, the terminal's line editing and echo are off until this is dropped.
    pub fn open(registry: &Registry, token: Token) -> io::Result<ConsoleInput> {
        let stdin = PolledStdin::open(registry, token)?;
        let at_terminal = io::stdin().is_terminal() && io::stdout().is_terminal();
        let reader = match at_terminal.then(RawMode::enter) {
            Some(Ok(raw)) => Reader::Keys {
                decoder: KeyDecoder::new(),
                _raw: raw,
            },
            Some(Err(e)) => {
                log::warn!("console: cannot set the terminal's modes, reading whole lines ({e})");
                Reader::Lines(LineSplitter::new(MAX_LINE))
            }
            None => Reader::Lines(LineSplitter::new(MAX_LINE)),
        };
        Ok(ConsoleInput { stdin, reader })
    }

    /// Whether the host types at a terminal whose line chatd edits and draws.
    pub fn edits(&self) -> bool {
        matches!(self.reader, Reader::Keys { .. })
    }

    /// Reads until stdin would block, appending every whole line's command to `commands`; keys
    /// typed at a terminal edit `out`'s line. Says why if the console is closed now.
    pub fn read(
        &mut self,
        out: &mut ConsoleOutput,
        stamp: Stamp,
        commands: &mut Vec<HostCommand>,
    ) -> Option<Closed> {
        let outcome = match &mut self.reader {
            Reader::Lines(lines) => self.stdin.read(|bytes| take(lines, bytes, commands)),
            Reader::Keys { decoder, .. } => {
                let mut keys = Vec::new();
                let outcome = self.stdin.read(|bytes| decoder.push(bytes, &mut keys));
                out.stamp = stamp;
                for key in keys {
                    match out.key(key) {
                        Some(Edited::Line(line)) => commands.extend(parse_command(&line)),
                        Some(Edited::Close) => return Some(Closed::CtrlD),
                        Some(Edited::Changed) | None => {}
                    }
                }
                outcome
            }
        };
        (outcome == ReadOutcome::Closed).then(|| {
            out.end_typing();
            Closed::EndOfInput
        })
    }

    /// Stops polling stdin; its flags (and the terminal's modes) are put back when this is dropped.
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

/// The console commands, as their first word is typed.
const COMMAND_WORDS: &[&str] = &[
    "HELP",
    "KICK",
    "LIST_USERS",
    "ROOMS",
    "BAN",
    "UNBAN",
    "BANS",
    "GRANT",
    "SAY",
    "EXIT",
];

/// Parses one console line. Commands are matched in any case; an empty line is nothing.
/// `SAY TEXT` says TEXT as it is. Any other line is said as Host, unless its first word is in
/// capitals and a typo of a command (see [`mistyped`]): then it is refused with a hint.
pub fn parse_command(line: &str) -> Option<HostCommand> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let say = || HostCommand::Say {
        text: line.to_owned(),
    };
    let command = match word.to_ascii_uppercase().as_str() {
        "HELP" if rest.is_empty() => HostCommand::Help,
        "LIST_USERS" if rest.is_empty() => HostCommand::ListUsers,
        "EXIT" if rest.is_empty() => HostCommand::Exit,
        "ROOMS" if rest.is_empty() => HostCommand::Rooms,
        "SAY" if rest.is_empty() => HostCommand::BadUsage { usage: "SAY TEXT" },
        // `SAY #room TEXT` says TEXT in that room; the core refuses a room that does not exist.
        "SAY" => match split_word(rest) {
            (room, text) if room.starts_with('#') && !text.is_empty() => HostCommand::SayIn {
                room: room.to_owned(),
                text: text.to_owned(),
            },
            _ => HostCommand::Say {
                text: rest.to_owned(),
            },
        },
        // Moderation reads as the admins' slash commands do.
        "KICK" | "BAN" | "UNBAN" | "BANS" | "GRANT" => match Command::parse(word, rest) {
            Command::Moderate(request) => HostCommand::Moderate(request),
            Command::BadUsage { usage } => HostCommand::BadUsage {
                usage: console_usage(word).unwrap_or(usage),
            },
            _ => say(),
        },
        // HELP, LIST_USERS, ROOMS and EXIT with words after them are said.
        "HELP" | "LIST_USERS" | "ROOMS" | "EXIT" => say(),
        _ => match mistyped(word) {
            Some(meant) => HostCommand::Mistyped {
                word: word.to_owned(),
                meant,
            },
            None => say(),
        },
    };
    Some(command)
}

/// The command `word` is a typo of, if any. Only a word of at least 3 characters, all capital
/// letters A-Z or `_`, counts; it is a typo of a command when one edit turns it into the command
/// (a letter changed, added or dropped, or two neighbours swapped: optimal string alignment
/// distance 1), or two edits for a command of 6 letters or more (LIST_USERS). Ties go to the
/// command listed first. Words in capitals far from every command ("LOL", "HELLO") are not typos.
pub fn mistyped(word: &str) -> Option<&'static str> {
    let shouted = word.len() >= 3 && word.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
    if !shouted {
        return None;
    }
    COMMAND_WORDS
        .iter()
        .map(|&command| (strsim::osa_distance(word, command), command))
        .filter(|&(distance, command)| {
            let allowed = if command.len() >= 6 { 2 } else { 1 };
            (1..=allowed).contains(&distance)
        })
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, command)| command)
}

/// The console's own usage line for the command `word` (`KICK NAME [REASON]`, not `/kick ...`).
fn console_usage(word: &str) -> Option<&'static str> {
    HOST_COMMANDS.iter().map(|(usage, _)| *usage).find(|usage| {
        usage
            .split(' ')
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
    })
}

/// Most console output held while stdout is not being read; past it lines are dropped.
const MAX_PENDING_OUTPUT: usize = 64 * 1024;

/// Where the prompt line stands on the terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PromptLine {
    /// Not drawn: the cursor is at the start of an empty row.
    Gone,
    /// Drawn as the line is now.
    Drawn,
    /// Drawn, but the line has changed since.
    Stale,
}

/// The line being typed at a terminal and how it shows.
#[derive(Debug)]
struct Typing {
    line: EditLine,
    shown: PromptLine,
}

/// Shows the room on stdout. At a terminal being typed at, the prompt and the text typed so far
/// stay on the last row, drawn once per turn of the loop after whatever arrived. When stdout is a
/// pipe or a file it is made non-blocking: a reader that does not keep up loses lines (counted,
/// logged once), and the event loop never waits for it.
#[derive(Debug)]
pub struct ConsoleOutput {
    typing: Option<Typing>,
    /// The time the prompt shows: of the last thing shown or typed.
    stamp: Stamp,
    line: Vec<u8>,
    /// Output not yet written, bounded by `MAX_PENDING_OUTPUT`.
    pending: Vec<u8>,
    /// Stdout's flags to put back, if we made it non-blocking.
    restore: Option<OFlags>,
    dropped: u64,
}

impl ConsoleOutput {
    /// Output with a prompt and the line being typed if `editing` (the console's input is a
    /// terminal whose line chatd edits). Unless it is a terminal, stdout is made non-blocking and
    /// registered for WRITABLE under `token`.
    pub fn new(editing: bool, stamp: Stamp, registry: &Registry, token: Token) -> ConsoleOutput {
        let stdout = io::stdout();
        let restore = if stdout.is_terminal() {
            None
        } else {
            make_non_blocking(registry, token)
        };
        ConsoleOutput {
            typing: editing.then(|| Typing {
                line: EditLine::new(MAX_LINE),
                shown: PromptLine::Gone,
            }),
            stamp,
            line: Vec::new(),
            pending: Vec::new(),
            restore,
            dropped: 0,
        }
    }

    /// Prints `msg` as console text (above the prompt line, which is drawn again at the flush).
    pub fn show(&mut self, msg: &ServerMsg, stamp: Stamp) {
        self.stamp = stamp;
        self.line.clear();
        self.clear_prompt();
        text::encode(msg, text::CONSOLE_EOL, &mut self.line);
        self.queue_line();
    }

    /// Stops showing a prompt (the server is stopping, or the console closed): the prompt line
    /// is cleared, with whatever was typed on it.
    pub fn end_typing(&mut self) {
        self.line.clear();
        self.clear_prompt();
        self.queue_line();
        self.typing = None;
    }

    /// Applies a key typed at the terminal; `None` if the line is not being edited.
    fn key(&mut self, key: Key) -> Option<Edited> {
        let typing = self.typing.as_mut()?;
        let edited = typing.line.key(key);
        self.line.clear();
        match &edited {
            Edited::Changed => {
                if typing.shown == PromptLine::Drawn {
                    typing.shown = PromptLine::Stale;
                }
            }
            Edited::Line(typed) => {
                // The line stays on the screen as typed, and the next prompt starts a new row.
                if typing.shown != PromptLine::Gone {
                    self.line.extend_from_slice(b"\r\x1b[K");
                }
                self.line
                    .extend_from_slice(prompt_text(self.stamp).as_bytes());
                self.line.extend_from_slice(typed.as_bytes());
                self.line.extend_from_slice(b"\r\n");
                typing.shown = PromptLine::Gone;
            }
            Edited::Close => {
                if typing.shown != PromptLine::Gone {
                    self.line.extend_from_slice(b"\r\x1b[K");
                }
                self.line.extend_from_slice(CTRL_D_LINE.as_bytes());
                self.typing = None;
            }
        }
        self.queue_line();
        Some(edited)
    }

    /// Writes what is pending until stdout would block (at a terminal, with the prompt line drawn
    /// again if it needs it): once per turn of the loop, and when stdout is writable again.
    pub fn flush(&mut self) {
        self.draw_prompt();
        self.flush_pending();
    }

    /// Writes what is pending until stdout would block.
    fn flush_pending(&mut self) {
        let mut stdout = io::stdout().lock();
        while !self.pending.is_empty() {
            match stdout.write(&self.pending) {
                Ok(0) => break,
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("console output failed: {e}");
                    self.pending.clear();
                }
            }
        }
        let _ = stdout.flush();
    }

    /// Appends to `line` what takes the prompt line off the screen, if it is on it.
    fn clear_prompt(&mut self) {
        if let Some(typing) = &mut self.typing {
            if typing.shown != PromptLine::Gone {
                self.line.extend_from_slice(b"\r\x1b[K");
                typing.shown = PromptLine::Gone;
            }
        }
    }

    /// Queues the prompt and the line typed, the cursor in place, unless they show already.
    fn draw_prompt(&mut self) {
        let Some(typing) = &mut self.typing else {
            return;
        };
        if typing.shown == PromptLine::Drawn {
            return;
        }
        let prompt = prompt_text(self.stamp);
        // One column is kept free so that the terminal never wraps the row.
        let room = terminal::width()
            .unwrap_or(80)
            .saturating_sub(wrap::width(&prompt) + 1);
        let (text, cursor) = typing.line.visible(room.max(1));
        self.line.clear();
        self.line.extend_from_slice(b"\r\x1b[K");
        self.line.extend_from_slice(prompt.as_bytes());
        self.line.extend_from_slice(text.as_bytes());
        let back = wrap::width(&text).saturating_sub(cursor);
        if back > 0 {
            self.line
                .extend_from_slice(format!("\x1b[{back}D").as_bytes());
        }
        typing.shown = PromptLine::Drawn;
        self.queue_line();
    }

    /// Queues `line` for the next flush, or drops it if stdout is too far behind.
    fn queue_line(&mut self) {
        if self.line.is_empty() {
            return;
        }
        // Written once per turn of the loop (`flush`), or sooner when a burst fills the buffer.
        if self.pending.len() + self.line.len() > MAX_PENDING_OUTPUT {
            self.flush_pending();
        }
        if self.pending.len() + self.line.len() > MAX_PENDING_OUTPUT {
            if self.dropped == 0 {
                log::warn!("console output is not being read: dropping console lines (counted)");
            }
            self.dropped += 1;
            return;
        }
        self.pending.extend_from_slice(&self.line);
    }
}

/// The prompt, `[HH:MM:SS] Host > `.
fn prompt_text(stamp: Stamp) -> String {
    format!("[{}] Host > ", stamp.hms())
}

/// Makes stdout non-blocking and registers it for WRITABLE; returns the flags to put back.
fn make_non_blocking(registry: &Registry, token: Token) -> Option<OFlags> {
    let stdout = io::stdout();
    let flags = rustix::fs::fcntl_getfl(&stdout).ok()?;
    if flags.contains(OFlags::NONBLOCK) {
        return None;
    }
    rustix::fs::fcntl_setfl(&stdout, flags | OFlags::NONBLOCK).ok()?;
    // A regular file cannot be polled (and never blocks): then there is nothing to register.
    let fd = stdout.as_raw_fd();
    let _ = registry.register(&mut SourceFd(&fd), token, Interest::WRITABLE);
    Some(flags)
}

impl Drop for ConsoleOutput {
    fn drop(&mut self) {
        if self.dropped > 0 {
            log::warn!(
                "{} console lines were dropped because stdout was not being read",
                self.dropped
            );
        }
        // What is pending goes out if stdout takes it now; exiting never waits for a reader.
        self.end_typing();
        self.flush_pending();
        if let Some(flags) = self.restore {
            let _ = rustix::fs::fcntl_setfl(io::stdout(), flags);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::model::Role;
    use crate::proto::msg::Moderation;

    #[test]
    fn console_commands_are_parsed_in_any_case() {
        assert_eq!(parse_command("help"), Some(HostCommand::Help));
        assert_eq!(parse_command("List_Users"), Some(HostCommand::ListUsers));
        assert_eq!(parse_command(" EXIT "), Some(HostCommand::Exit));
        let moderate = |request| Some(HostCommand::Moderate(request));
        let kick = |name: &str, reason: Option<&str>| Moderation::Kick {
            name: name.into(),
            reason: reason.map(Into::into),
        };
        assert_eq!(parse_command("kick bob"), moderate(kick("bob", None)));
        assert_eq!(
            parse_command("KICK bob  too loud "),
            moderate(kick("bob", Some("too loud")))
        );
        assert_eq!(
            parse_command("KICK"),
            Some(HostCommand::BadUsage {
                usage: "KICK NAME [REASON]"
            })
        );
        assert_eq!(parse_command(""), None);
        let ban = Moderation::Ban {
            name: "eve".into(),
            reason: Some("spam".into()),
        };
        assert_eq!(parse_command("ban eve spam"), moderate(ban));
        assert_eq!(
            parse_command("Unban eve"),
            moderate(Moderation::Unban { name: "eve".into() })
        );
        assert_eq!(parse_command("BANS"), moderate(Moderation::Bans));
        assert_eq!(
            parse_command("grant bob ADMIN"),
            moderate(Moderation::Grant {
                name: "bob".into(),
                role: Role::Admin
            })
        );
        assert_eq!(
            parse_command("grant bob king"),
            Some(HostCommand::BadUsage {
                usage: "GRANT NAME admin|user"
            })
        );
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
    fn rooms_lists_the_rooms_and_say_names_a_room_with_a_hash() {
        assert_eq!(parse_command("rooms"), Some(HostCommand::Rooms));
        assert_eq!(
            parse_command("SAY #dev hello  there"),
            Some(HostCommand::SayIn {
                room: "#dev".into(),
                text: "hello  there".into()
            })
        );
        assert_eq!(
            parse_command("SAY #dev"),
            Some(HostCommand::Say {
                text: "#dev".into()
            }),
            "a room with nothing to say is said as it is"
        );
        assert_eq!(
            parse_command("ROOMS please"),
            Some(HostCommand::Say {
                text: "ROOMS please".into()
            })
        );
        assert_eq!(
            parse_command("ROOMZ"),
            Some(HostCommand::Mistyped {
                word: "ROOMZ".into(),
                meant: "ROOMS"
            })
        );
    }

    #[test]
    fn say_says_the_rest_as_it_is() {
        let say = |text: &str| {
            Some(HostCommand::Say {
                text: text.to_owned(),
            })
        };
        assert_eq!(parse_command("SAY KICK bob"), say("KICK bob"));
        assert_eq!(parse_command("say  KIKC  bob "), say("KIKC  bob"));
        assert_eq!(
            parse_command("SAY"),
            Some(HostCommand::BadUsage { usage: "SAY TEXT" })
        );
    }

    #[test]
    fn a_word_in_capitals_one_typo_from_a_command_is_refused() {
        let refused = |word: &str, meant| {
            Some(HostCommand::Mistyped {
                word: word.to_owned(),
                meant,
            })
        };
        assert_eq!(parse_command("KIKC bob"), refused("KIKC", "KICK"));
        assert_eq!(parse_command("KCK bob"), refused("KCK", "KICK"));
        assert_eq!(parse_command("HLEP"), refused("HLEP", "HELP"));
        assert_eq!(parse_command("EXTI now"), refused("EXTI", "EXIT"));
        assert_eq!(parse_command("GARNT bob admin"), refused("GARNT", "GRANT"));
        assert_eq!(parse_command("LIST_USR"), refused("LIST_USR", "LIST_USERS"));
        // Ties go to the command listed first.
        assert_eq!(mistyped("BAS"), Some("BAN"));
        // Not a typo: too short, not all capitals, or too far from every command.
        for word in [
            "OK", "Kikc", "kikc", "LOL", "HELLO", "HEY", "BYE", "KICK2", "WOW",
        ] {
            assert_eq!(mistyped(word), None, "{word}");
        }
        assert_eq!(
            parse_command("HELLO everyone"),
            Some(HostCommand::Say {
                text: "HELLO everyone".into()
            })
        );
        // A command itself is no typo, nor is HELP with words after it.
        assert_eq!(mistyped("KICK"), None);
        assert_eq!(
            parse_command("HELP me"),
            Some(HostCommand::Say {
                text: "HELP me".into()
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
            Some(&HostCommand::Moderate(Moderation::Kick {
                name: "bob".into(),
                reason: None
            }))
        );
    }
}
