//! The `chat` client's session: what to send for each typed line, what to show for each frame,
//! and how the session ended. No sockets, no terminal, no clock of its own: the loops in
//! [`super`] (lines) and [`super::ui`] (the window) feed it and carry out the [`Effect`]s, so every
//! rule here is tested directly.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Error;
use crate::proto::framed::{chat_kind, error_code, reply_kind, ClientFrame, ServerFrame};
use crate::proto::msg::{Command, Event, ServerMsg, Stamp};
use crate::proto::text::{self, split_line, TypedLine};

/// How many pings may wait for their pong; older ones are forgotten.
const MAX_PINGS_IN_FLIGHT: usize = 16;

/// Something for the loop to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send a frame to the server.
    Send(ClientFrame),
    /// Show this to the user: the line loop prints [`Shown::render`], the window draws it.
    Show(Shown),
}

/// Something to show the user, still typed, so the window can lay it out and colour it; its text
/// is [`Shown::render`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shown {
    /// A message from the server in the shared vocabulary: the welcome, chat lines, events, being
    /// kicked, the goodbye, the name prompt.
    Msg(ServerMsg),
    /// A chat message whose text did not match its digest.
    DigestMismatch(ServerMsg),
    /// The lines of a reply frame and what they answer (a [`reply_kind`]).
    Reply {
        /// The reply kind.
        kind: u8,
        /// The lines, as text mode shows them.
        lines: Vec<String>,
    },
    /// A refusal from the server: its error code and text.
    Refused {
        /// The error code (see [`crate::proto::framed::error_code`]).
        code: u16,
        /// The text, without the `[!] ` prefix.
        text: String,
    },
    /// The answer to a ping.
    Pong {
        /// The round trip, when the ping was one of ours still remembered.
        round_trip: Option<Duration>,
        /// The server's time.
        at: Stamp,
        /// Whether the ping was sent quietly (see [`Session::ping_quietly`]), not typed.
        quiet: bool,
    },
    /// A note from the client itself, as a whole line.
    Note(String),
}

impl Shown {
    /// The text a text-mode user would see for it: one or more lines, without the last line end.
    pub fn render(&self) -> String {
        match self {
            Shown::Msg(msg) => render(msg),
            Shown::DigestMismatch(msg) => format!("[!] digest mismatch: {}", render(msg)),
            Shown::Reply { lines, .. } => lines.join("\n"),
            Shown::Refused { text, .. } => format!("[!] {text}"),
            Shown::Pong {
                round_trip: Some(round_trip),
                at,
                ..
            } => {
                let ms = round_trip.as_secs_f64() * 1000.0;
                format!("[*] pong in {ms:.3} ms, server time {}", at.hms())
            }
            Shown::Pong {
                round_trip: None,
                at,
                ..
            } => render(&ServerMsg::Pong { nonce: 0, at: *at }),
            Shown::Note(text) => text.clone(),
        }
    }
}

/// A ping waiting for its pong.
#[derive(Clone, Copy, Debug)]
struct PingSent {
    nonce: u64,
    at: Instant,
    quiet: bool,
}

/// Where the session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Not welcomed yet; `hello_sent` while a hello waits for its answer.
    Joining { hello_sent: bool },
    /// The server asked for the password of the name; the next typed line is it.
    Password,
    /// In the room.
    Joined,
    /// Bye sent; waiting for the server to close.
    Leaving,
}

/// Input that arrived before it could be acted on (lines typed before the welcome).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    Line(String),
    EndOfInput,
}

/// One session with a server, from hello to close.
#[derive(Debug)]
pub struct Session {
    /// The name given with `--name`; `None` when it is asked for on stdin.
    flag_name: Option<String>,
    stage: Stage,
    pending: VecDeque<Pending>,
    next_id: u32,
    next_nonce: u64,
    pings: VecDeque<PingSent>,
    /// Why the server is about to close the connection, if it said.
    ending: Option<String>,
    /// Set when the session cannot go on, e.g. the `--name` was refused.
    failed: Option<Error>,
    frames_seen: bool,
}

impl Session {
    /// A session that joins as `name`, or asks for a name on stdin when there is none.
    pub fn new(name: Option<String>) -> Session {
        Session {
            flag_name: name,
            stage: Stage::Joining { hello_sent: false },
            pending: VecDeque::new(),
            next_id: 1,
            next_nonce: 1,
            pings: VecDeque::new(),
            ending: None,
            failed: None,
            frames_seen: false,
        }
    }

    /// The first steps once connected: the hello, or the name prompt.
    pub fn start(&mut self, out: &mut Vec<Effect>) {
        match &self.flag_name {
            Some(name) => {
                out.push(Effect::Send(ClientFrame::hello(name)));
                self.stage = Stage::Joining { hello_sent: true };
            }
            None => out.push(Effect::Show(Shown::Msg(ServerMsg::NamePrompt))),
        }
    }

    /// A line typed on stdin (without its line end).
    pub fn typed(&mut self, line: &str, now: Instant, out: &mut Vec<Effect>) {
        match self.stage {
            Stage::Leaving => {}
            Stage::Joined => self.act(line, now, out),
            Stage::Password => {
                // Sent as a say frame, as a text client sends it as a line; never shown.
                let id = self.next_id();
                out.push(Effect::Send(ClientFrame::say(id, line)));
                self.stage = Stage::Joining { hello_sent: true };
            }
            Stage::Joining { hello_sent: true } => {
                self.pending.push_back(Pending::Line(line.to_owned()))
            }
            Stage::Joining { hello_sent: false } => {
                let name = line.trim();
                if name.starts_with('/') {
                    // /help, /quit and /ping work before joining; the server refuses the rest.
                    self.act(name, now, out);
                } else if name.is_empty() {
                    out.push(Effect::Show(Shown::Msg(ServerMsg::NamePrompt)));
                } else {
                    out.push(Effect::Send(ClientFrame::hello(name)));
                    self.stage = Stage::Joining { hello_sent: true };
                }
            }
        }
    }

    /// A typed line over the length limit, dropped.
    pub fn typed_too_long(&mut self, max: usize, out: &mut Vec<Effect>) {
        out.push(Effect::Show(Shown::Note(format!(
            "[!] line too long, not sent: at most {max} bytes"
        ))));
    }

    /// Stdin ended, or the user asked to stop: leave as soon as the session allows.
    pub fn input_ended(&mut self, out: &mut Vec<Effect>) {
        match self.stage {
            Stage::Leaving => {}
            Stage::Joining { hello_sent: true } => self.pending.push_back(Pending::EndOfInput),
            Stage::Joined | Stage::Password | Stage::Joining { hello_sent: false } => {
                self.leave(None, out)
            }
        }
    }

    /// A frame from the server.
    pub fn received(&mut self, frame: ServerFrame, now: Instant, out: &mut Vec<Effect>) {
        self.frames_seen = true;
        let show = |out: &mut Vec<Effect>, msg: ServerMsg| out.push(Effect::Show(Shown::Msg(msg)));
        match frame {
            ServerFrame::Welcome { name, others, more } => {
                show(out, ServerMsg::Welcome { name, others, more });
                if let Stage::Joining { .. } = self.stage {
                    self.stage = Stage::Joined;
                    self.act_on_pending(now, out);
                }
            }
            ServerFrame::Chat {
                kind,
                at,
                from,
                text,
                digest_ok,
            } => {
                let msg = match kind {
                    chat_kind::DIRECT => ServerMsg::Direct { at, from, text },
                    chat_kind::HISTORY => ServerMsg::Backlog { at, from, text },
                    _ => ServerMsg::Chat { at, from, text },
                };
                out.push(Effect::Show(if digest_ok {
                    Shown::Msg(msg)
                } else {
                    Shown::DigestMismatch(msg)
                }));
            }
            ServerFrame::Event(event) => {
                if event == Event::Shutdown {
                    self.ending = Some("the server shut down".to_owned());
                }
                show(out, ServerMsg::Event(event));
            }
            ServerFrame::Kicked { by, reason } => {
                self.ending = Some(format!("kicked out by {by}"));
                show(out, ServerMsg::Kicked { by, reason });
            }
            ServerFrame::Reply { kind, lines } => {
                if kind == reply_kind::NAME_PROMPT {
                    self.name_refused(None, now, out);
                }
                if kind == reply_kind::PASSWORD_PROMPT
                    && self.stage == (Stage::Joining { hello_sent: true })
                {
                    self.stage = Stage::Password;
                    out.push(Effect::Show(Shown::Reply { kind, lines }));
                    return self.act_on_pending(now, out);
                }
                if self.failed.is_none() {
                    out.push(Effect::Show(Shown::Reply { kind, lines }));
                }
            }
            ServerFrame::Error { code, text, .. } => {
                out.push(Effect::Show(Shown::Refused {
                    code,
                    text: text.clone(),
                }));
                if matches!(
                    code,
                    error_code::BAD_VERSION
                        | error_code::SERVER_FULL
                        | error_code::TOO_MANY_FROM_ADDRESS
                        | error_code::TLS_REQUIRED
                ) {
                    // Not the name's fault: the server speaks another version, is full, or takes
                    // no plain connection, and closes next.
                    self.ending = Some(text);
                } else if self.stage == (Stage::Joining { hello_sent: true }) {
                    self.name_refused(Some(text), now, out);
                }
            }
            ServerFrame::Pong { nonce, at } => {
                let sent = self
                    .pings
                    .iter()
                    .position(|ping| ping.nonce == nonce)
                    .and_then(|i| self.pings.remove(i));
                out.push(Effect::Show(Shown::Pong {
                    round_trip: sent.map(|ping| now.saturating_duration_since(ping.at)),
                    at,
                    quiet: sent.is_some_and(|ping| ping.quiet),
                }));
            }
            ServerFrame::Bye => show(out, ServerMsg::Bye),
            ServerFrame::Ping { nonce } => out.push(Effect::Send(ClientFrame::Pong { nonce })),
            ServerFrame::Room {
                room,
                line,
                digest_ok,
            } => {
                let msg = ServerMsg::Room { room, line };
                out.push(Effect::Show(if digest_ok {
                    Shown::Msg(msg)
                } else {
                    Shown::DigestMismatch(msg)
                }));
            }
            frame @ (ServerFrame::Rooms { .. }
            | ServerFrame::Who { .. }
            | ServerFrame::Topic { .. }
            | ServerFrame::CurrentRoom(_)) => {
                if let Some(msg) = frame.to_msg() {
                    show(out, msg);
                }
            }
        }
    }

    /// Whether a bye has been sent (the loop then waits a little for the server to close).
    pub fn is_leaving(&self) -> bool {
        self.stage == Stage::Leaving
    }

    /// Takes the reason the session cannot go on, if there is one; the loop then stops.
    pub fn take_failure(&mut self) -> Option<Error> {
        self.failed.take()
    }

    /// How the session ended, now that the server has closed the connection. `before_frames` is
    /// what the server sent before its first frame (its text greeting, or a refusal in text).
    pub fn closed(&self, before_frames: &[u8]) -> Result<(), Error> {
        if self.stage == Stage::Leaving {
            return Ok(());
        }
        let why = match &self.ending {
            Some(why) => why.clone(),
            None if !self.frames_seen => refusal_in(before_frames)
                .unwrap_or_else(|| "closed before the session started".to_owned()),
            None => "connection lost".to_owned(),
        };
        Err(Error::Closed { why })
    }

    /// The server refused the hello (`why`), or asked for a name again.
    fn name_refused(&mut self, why: Option<String>, now: Instant, out: &mut Vec<Effect>) {
        if let Stage::Joined | Stage::Leaving = self.stage {
            return;
        }
        match &self.flag_name {
            Some(name) => {
                if self.failed.is_none() {
                    self.failed = Some(Error::NameRefused {
                        name: name.clone(),
                        why: why.unwrap_or_else(|| "the server asks for another".to_owned()),
                    });
                }
            }
            // An error comes before the prompt: wait for the prompt to ask again.
            None if why.is_some() => {}
            None => {
                self.stage = Stage::Joining { hello_sent: false };
                self.act_on_pending(now, out);
            }
        }
    }

    /// Acts on what was typed while waiting, as far as the stage allows.
    fn act_on_pending(&mut self, now: Instant, out: &mut Vec<Effect>) {
        while let Stage::Joined | Stage::Password | Stage::Joining { hello_sent: false } =
            self.stage
        {
            match self.pending.pop_front() {
                Some(Pending::Line(line)) => self.typed(&line, now, out),
                Some(Pending::EndOfInput) => self.input_ended(out),
                None => return,
            }
        }
    }

    /// A typed line: text to say, `/ping`, `/dm` (sent as a dm frame, with a digest), `/quit`
    /// (sent as bye), or any other command.
    fn act(&mut self, line: &str, now: Instant, out: &mut Vec<Effect>) {
        match split_line(line) {
            TypedLine::Say(text) => {
                if !text.trim().is_empty() {
                    let id = self.next_id();
                    out.push(Effect::Send(ClientFrame::say(id, text)));
                }
            }
            TypedLine::Command { name, .. } if name.eq_ignore_ascii_case("ping") => {
                self.send_ping(now, false, out)
            }
            TypedLine::Command { name, args } => match Command::parse(name, args) {
                Command::Dm { to, text } => {
                    let id = self.next_id();
                    out.push(Effect::Send(ClientFrame::dm(id, &to, &text)));
                }
                Command::Quit { reason } => self.leave(reason, out),
                _ => out.push(Effect::Send(ClientFrame::Command {
                    name: name.to_owned(),
                    args: args.to_owned(),
                })),
            },
        }
    }

    /// Sends a ping the user did not type (the window's periodic round-trip check); its pong comes
    /// back as a [`Shown::Pong`] marked quiet.
    pub fn ping_quietly(&mut self, now: Instant, out: &mut Vec<Effect>) {
        self.send_ping(now, true, out);
    }

    fn send_ping(&mut self, now: Instant, quiet: bool, out: &mut Vec<Effect>) {
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        if self.pings.len() == MAX_PINGS_IN_FLIGHT {
            self.pings.pop_front();
        }
        self.pings.push_back(PingSent {
            nonce,
            at: now,
            quiet,
        });
        out.push(Effect::Send(ClientFrame::Ping { nonce }));
    }

    fn leave(&mut self, reason: Option<String>, out: &mut Vec<Effect>) {
        out.push(Effect::Send(ClientFrame::Bye { reason }));
        self.stage = Stage::Leaving;
    }

    /// The next message id: counts from 1, skipping 0 (which errors use for "no message").
    fn next_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        id
    }
}

/// `msg` as text mode shows it, without the last line end: the client prints what `nc` users see.
fn render(msg: &ServerMsg) -> String {
    let mut out = Vec::new();
    text::encode(msg, text::CONSOLE_EOL, &mut out);
    String::from_utf8_lossy(&out)
        .trim_end_matches('\n')
        .to_owned()
}

/// The text of the last `[!] ` line in `bytes` (e.g. "server full, try again later").
fn refusal_in(bytes: &[u8]) -> Option<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|line| line.trim_end().strip_prefix("[!] "))
        .next_back()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::framed::RoomChange;
    use crate::proto::msg::{
        Departure, LeaveKind, MemberEntry, RoomEntry, RoomLine, RoomTag, Stamp, TopicEntry,
    };
    use std::time::Duration;

    fn stamp() -> Stamp {
        Stamp::new(1_700_000_000, 9, 5, 7)
    }

    fn welcome(name: &str) -> ServerFrame {
        ServerFrame::Welcome {
            name: name.into(),
            others: vec!["alice".into()],
            more: 0,
        }
    }

    fn sent(effects: &[Effect]) -> Vec<ClientFrame> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(frame) => Some(frame.clone()),
                Effect::Show(_) => None,
            })
            .collect()
    }

    fn shown(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Show(shown) => Some(shown.render()),
                Effect::Send(_) => None,
            })
            .collect()
    }

    /// How a session ended, as the text `chat` would print.
    fn outcome(result: Result<(), Error>) -> Result<(), String> {
        result.map_err(|e| e.to_string())
    }

    fn refusal(text: &str) -> ServerFrame {
        ServerFrame::Error {
            code: error_code::NAME_TAKEN,
            id: 0,
            text: text.into(),
        }
    }

    fn prompt() -> ServerFrame {
        ServerFrame::Reply {
            kind: reply_kind::NAME_PROMPT,
            lines: vec!["Enter your name:".into()],
        }
    }

    #[test]
    fn a_script_sends_its_lines_after_the_welcome_then_leaves_and_ends_well() {
        let now = Instant::now();
        let mut s = Session::new(Some("bot".into()));
        let mut out = Vec::new();
        s.start(&mut out);
        s.typed("hello", now, &mut out);
        s.typed("/quit done", now, &mut out);
        s.input_ended(&mut out);
        assert_eq!(
            sent(&out),
            vec![ClientFrame::hello("bot")],
            "nothing before the welcome"
        );
        out.clear();
        s.received(welcome("bot"), now, &mut out);
        assert_eq!(
            out,
            vec![
                Effect::Show(Shown::Msg(ServerMsg::Welcome {
                    name: "bot".into(),
                    others: vec!["alice".into()],
                    more: 0,
                })),
                Effect::Send(ClientFrame::say(1, "hello")),
                Effect::Send(ClientFrame::Bye {
                    reason: Some("done".into())
                }),
            ]
        );
        assert_eq!(
            shown(&out),
            vec!["[*] Welcome, bot! Online: alice. Type /help for the commands."]
        );
        assert!(s.is_leaving());
        out.clear();
        s.typed("too late", now, &mut out);
        assert_eq!(out, vec![]);
        s.received(ServerFrame::Bye, now, &mut out);
        assert_eq!(shown(&out), vec!["[*] Bye.".to_owned()]);
        assert_eq!(outcome(s.closed(b"")), Ok(()));
    }

    #[test]
    fn lines_become_say_dm_command_and_ping_frames() {
        let now = Instant::now();
        let mut s = Session::new(Some("bot".into()));
        let mut out = Vec::new();
        s.start(&mut out);
        s.received(welcome("bot"), now, &mut out);
        out.clear();
        for line in [
            "hi",
            "  ",
            "//slash",
            "/msg alice psst",
            "/users",
            "/LIST x",
            "/ping",
        ] {
            s.typed(line, now, &mut out);
        }
        assert_eq!(
            sent(&out),
            vec![
                ClientFrame::say(1, "hi"),
                ClientFrame::say(2, "/slash"),
                ClientFrame::dm(3, "alice", "psst"),
                ClientFrame::Command {
                    name: "users".into(),
                    args: String::new()
                },
                ClientFrame::Command {
                    name: "LIST".into(),
                    args: "x".into()
                },
                ClientFrame::Ping { nonce: 1 },
            ]
        );
    }

    #[test]
    fn frames_are_shown_as_text_mode_shows_them_and_a_bad_digest_is_flagged() {
        let now = Instant::now();
        let mut s = Session::new(Some("bot".into()));
        let mut out = Vec::new();
        s.start(&mut out);
        s.received(welcome("bot"), now, &mut out);
        out.clear();
        let chat = |direct, digest_ok| ServerFrame::Chat {
            kind: if direct {
                chat_kind::DIRECT
            } else {
                chat_kind::ROOM
            },
            at: stamp(),
            from: "alice".into(),
            text: "hi".into(),
            digest_ok,
        };
        s.received(chat(false, true), now, &mut out);
        s.received(chat(true, true), now, &mut out);
        s.received(chat(false, false), now, &mut out);
        s.received(
            ServerFrame::Event(Event::Left {
                name: "alice".into(),
                kind: LeaveKind::Exited,
                reason: Some("lunch".into()),
            }),
            now,
            &mut out,
        );
        s.received(
            ServerFrame::Error {
                code: error_code::BAD_DIGEST,
                id: 4,
                text: "digest mismatch in message 4: not relayed".into(),
            },
            now,
            &mut out,
        );
        s.received(
            ServerFrame::Reply {
                kind: 200,
                lines: vec!["[*] a".into(), "[*] b".into()],
            },
            now,
            &mut out,
        );
        assert_eq!(
            shown(&out),
            vec![
                "[09:05:07] alice > hi",
                "[09:05:07] [dm] alice > hi",
                "[!] digest mismatch: [09:05:07] alice > hi",
                "[*] alice exited. (lunch)",
                "[!] digest mismatch in message 4: not relayed",
                "[*] a\n[*] b",
            ]
        );
    }

    #[test]
    fn room_commands_pass_through_and_room_frames_show_as_text_mode_lines() {
        let now = Instant::now();
        let mut s = Session::new(Some("bot".into()));
        let mut out = Vec::new();
        s.start(&mut out);
        s.received(welcome("bot"), now, &mut out);
        out.clear();
        for line in [
            "/join #dev",
            "/room #lobby",
            "/part #dev bye",
            "/rooms",
            "/who #dev",
            "/topic Rust talk",
            "/me waves",
        ] {
            s.typed(line, now, &mut out);
        }
        let command = |name: &str, args: &str| ClientFrame::Command {
            name: name.into(),
            args: args.into(),
        };
        assert_eq!(
            sent(&out),
            vec![
                command("join", "#dev"),
                command("room", "#lobby"),
                command("part", "#dev bye"),
                command("rooms", ""),
                command("who", "#dev"),
                command("topic", "Rust talk"),
                command("me", "waves"),
            ]
        );
        out.clear();
        let dev = RoomTag {
            name: "#dev".into(),
            default: false,
        };
        let frames = vec![
            ServerFrame::CurrentRoom(RoomChange::Joined {
                room: dev.clone(),
                members: 2,
                created: false,
            }),
            ServerFrame::Room {
                room: dev.clone(),
                line: RoomLine::Chat {
                    at: stamp(),
                    from: "alice".into(),
                    text: "hi".into(),
                },
                digest_ok: true,
            },
            ServerFrame::Room {
                room: dev.clone(),
                line: RoomLine::Me {
                    at: stamp(),
                    from: "alice".into(),
                    text: "waves".into(),
                },
                digest_ok: false,
            },
            ServerFrame::Room {
                room: dev.clone(),
                line: RoomLine::Left {
                    names: vec!["alice".into()],
                    more: 0,
                    how: Departure::Parted,
                    reason: None,
                },
                digest_ok: true,
            },
            ServerFrame::Rooms {
                rooms: vec![RoomEntry {
                    name: "#dev".into(),
                    members: 1,
                    topic: None,
                    persistent: false,
                }],
            },
            ServerFrame::Who {
                room: "#dev".into(),
                members: vec![MemberEntry {
                    name: "bot".into(),
                    moderator: true,
                    away: None,
                }],
            },
            ServerFrame::Topic {
                room: "#dev".into(),
                topic: Some(TopicEntry {
                    text: "Rust talk".into(),
                    by: "bot".into(),
                    at: stamp(),
                }),
            },
            ServerFrame::CurrentRoom(RoomChange::Switched {
                room: RoomTag {
                    name: "#lobby".into(),
                    default: true,
                },
            }),
        ];
        for frame in frames {
            s.received(frame, now, &mut out);
        }
        assert_eq!(
            shown(&out),
            vec![
                "[*] You joined #dev (2 members): plain lines go there now.",
                "[09:05:07] #dev alice > hi",
                "[!] digest mismatch: [09:05:07] #dev * alice waves",
                "[*] #dev: alice left.",
                "[*] Rooms (1):\n[*]   #dev (1 member)",
                "[*] #dev (1): bot (moderator)",
                "[*] Topic of #dev: Rust talk (set by bot on 2023-11-14 22:13:20)",
                "[*] Your current room is #lobby: plain lines go there now.",
            ]
        );
    }

    #[test]
    fn a_refused_version_ends_the_session_naming_it_not_the_name() {
        let now = Instant::now();
        let mut s = Session::new(Some("bot".into()));
        let mut out = Vec::new();
        s.start(&mut out);
        let text = "unsupported protocol version 2: this server speaks version 1; use a chat client of that version";
        s.received(
            ServerFrame::Error {
                code: error_code::BAD_VERSION,
                id: 0,
                text: text.into(),
            },
            now,
            &mut out,
        );
        assert!(s.take_failure().is_none());
        assert_eq!(shown(&out), vec![format!("[!] {text}")]);
        assert_eq!(
            outcome(s.closed(b"")),
            Err(format!("the server closed the connection: {text}"))
        );
    }

    #[test]
    fn a_full_or_tls_only_server_ends_the_session_naming_it_not_the_name() {
        for (code, text) in [
            (error_code::SERVER_FULL, "server full, try again later"),
            (
                error_code::TOO_MANY_FROM_ADDRESS,
                "too many connections from your address",
            ),
            (
                error_code::TLS_REQUIRED,
                "this server takes TLS connections only: connect with `chat --tls HOST:PORT`",
            ),
        ] {
            let mut s = Session::new(Some("bot".into()));
            let mut out = Vec::new();
            s.start(&mut out);
            let refusal = ServerFrame::Error {
                code,
                id: 0,
                text: text.into(),
            };
            s.received(refusal, Instant::now(), &mut out);
            assert!(s.take_failure().is_none(), "{text}");
            assert_eq!(shown(&out), vec![format!("[!] {text}")]);
            assert_eq!(
                outcome(s.closed(b"")),
                Err(format!("the server closed the connection: {text}"))
            );
        }
    }

    #[test]
    fn a_pong_shows_the_round_trip_in_milliseconds() {
        let start = Instant::now();
        let mut s = Session::new(Some("bot".into()));
        let mut out = Vec::new();
        s.start(&mut out);
        s.received(welcome("bot"), start, &mut out);
        s.typed("/ping", start, &mut out);
        out.clear();
        let later = start + Duration::from_micros(1500);
        s.received(
            ServerFrame::Pong {
                nonce: 1,
                at: stamp(),
            },
            later,
            &mut out,
        );
        s.received(
            ServerFrame::Pong {
                nonce: 1,
                at: stamp(),
            },
            later,
            &mut out,
        );
        assert_eq!(
            shown(&out),
            vec![
                "[*] pong in 1.500 ms, server time 09:05:07",
                "[*] pong, server time 09:05:07",
            ]
        );
    }

    #[test]
    fn a_quiet_ping_is_timed_and_its_pong_marked_quiet() {
        let start = Instant::now();
        let mut s = Session::new(Some("bot".into()));
        let mut out = Vec::new();
        s.start(&mut out);
        s.received(welcome("bot"), start, &mut out);
        out.clear();
        s.ping_quietly(start, &mut out);
        assert_eq!(sent(&out), vec![ClientFrame::Ping { nonce: 1 }]);
        out.clear();
        let pong = ServerFrame::Pong {
            nonce: 1,
            at: stamp(),
        };
        s.received(pong, start + Duration::from_millis(2), &mut out);
        assert_eq!(
            out,
            vec![Effect::Show(Shown::Pong {
                round_trip: Some(Duration::from_millis(2)),
                at: stamp(),
                quiet: true,
            })]
        );
    }

    #[test]
    fn a_refused_flag_name_fails_the_session() {
        let now = Instant::now();
        let mut s = Session::new(Some("alice".into()));
        let mut out = Vec::new();
        s.start(&mut out);
        s.received(
            refusal("name taken: someone online already uses it"),
            now,
            &mut out,
        );
        s.received(prompt(), now, &mut out);
        assert_eq!(
            s.take_failure().map(|e| e.to_string()),
            Some(
                "the server refused the name alice: name taken: someone online already uses it"
                    .into()
            )
        );
        assert_eq!(
            shown(&out),
            vec!["[!] name taken: someone online already uses it"]
        );
    }

    #[test]
    fn without_a_flag_name_the_name_is_asked_on_stdin_until_one_is_taken() {
        let now = Instant::now();
        let mut s = Session::new(None);
        let mut out = Vec::new();
        s.start(&mut out);
        s.typed("alice", now, &mut out);
        s.typed("bob", now, &mut out);
        s.typed("hi", now, &mut out);
        s.input_ended(&mut out);
        assert_eq!(sent(&out), vec![ClientFrame::hello("alice")]);
        out.clear();
        s.received(
            refusal("name taken: someone online already uses it"),
            now,
            &mut out,
        );
        s.received(prompt(), now, &mut out);
        assert_eq!(
            sent(&out),
            vec![ClientFrame::hello("bob")],
            "the next line is tried"
        );
        assert!(s.take_failure().is_none());
        out.clear();
        s.received(welcome("bob"), now, &mut out);
        assert_eq!(
            sent(&out),
            vec![ClientFrame::say(1, "hi"), ClientFrame::Bye { reason: None }]
        );
    }

    #[test]
    fn how_a_session_ends_when_the_server_closes() {
        let now = Instant::now();
        let never_welcomed = Session::new(Some("bot".into()));
        let closed = |why: &str| Err(format!("the server closed the connection: {why}"));
        assert_eq!(
            outcome(never_welcomed.closed(b"[!] server full, try again later\r\n")),
            closed("server full, try again later")
        );
        let mut s = Session::new(Some("bot".into()));
        let mut out = Vec::new();
        s.start(&mut out);
        s.received(welcome("bot"), now, &mut out);
        assert_eq!(outcome(s.closed(b"")), closed("connection lost"));
        s.received(
            ServerFrame::Kicked {
                by: "Host".into(),
                reason: None,
            },
            now,
            &mut out,
        );
        assert_eq!(outcome(s.closed(b"")), closed("kicked out by Host"));
        s.input_ended(&mut out);
        assert_eq!(outcome(s.closed(b"")), Ok(()), "we had said bye");
    }
}
