//! Text mode: one message per LF-terminated line, for `nc`, `telnet` and `socat`.
//!
//! Input: a CR before the LF is dropped; a line starting with `/` (after any blanks and control
//! characters) is a command, `//` escapes a leading slash, anything else is chat text. Telnet
//! commands are taken out before this decoder sees the bytes ([`super::telnet`]). Output: lines end with CRLF for clients (so `telnet`
//! shows them right) and LF for the console.

use time::format_description::FormatItem;
use time::macros::format_description;

use super::msg::{
    gap_text, ClientMsg, Command, Departure, Done, Event, LeaveKind, MemberEntry, Notice,
    RoomEntry, RoomLine, RoomTag, ServerMsg, Stamp, UserEntry, COMMANDS, HOST_COMMANDS,
};
use super::{sanitize, DecodeError, Decoded};

/// The line end written to text-mode clients.
pub const CLIENT_EOL: &[u8] = b"\r\n";
/// The line end written to the host console.
pub const CONSOLE_EOL: &[u8] = b"\n";

/// Splits a text stream into messages, enforcing the line limit before buffering past it.
#[derive(Debug)]
pub struct TextDecoder {
    max_line: usize,
    /// The most bytes of one unfinished over-long line dropped before the peer is given up on.
    max_discard: usize,
    discard: Discard,
}

/// What happens to input after an over-long line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Discard {
    /// Nothing: lines are decoded.
    No,
    /// Input is dropped up to and including the next LF; so many bytes of the line so far.
    Line(usize),
    /// The line went on past the discard limit: everything is dropped, nothing decoded again.
    GaveUp,
}

impl TextDecoder {
    /// A decoder that refuses lines longer than `max_line` bytes (without the line end), and
    /// gives up on a peer whose unfinished line goes on past `max_discard` bytes.
    pub fn new(max_line: usize, max_discard: usize) -> TextDecoder {
        TextDecoder {
            max_line,
            max_discard,
            discard: Discard::No,
        }
    }

    /// Changes the line limit (a connection that has joined may send longer lines).
    pub fn set_max_line(&mut self, max_line: usize) {
        self.max_line = max_line;
    }

    /// Ends the over-long line being dropped, if there is one: the user interrupted it (Ctrl-C).
    pub fn interrupt(&mut self) {
        if let Discard::Line(_) = self.discard {
            self.discard = Discard::No;
        }
    }

    /// Decodes the next line from the front of `input`; see [`super::Decoder::decode`].
    pub fn decode(&mut self, input: &[u8]) -> Decoded {
        let mut used = 0;
        match self.discard {
            Discard::No => {}
            Discard::GaveUp => {
                return Decoded {
                    used: input.len(),
                    item: None,
                }
            }
            Discard::Line(so_far) => match memchr::memchr(b'\n', input) {
                Some(lf) => {
                    self.discard = Discard::No;
                    used = lf + 1;
                }
                None => return self.drop_unfinished(so_far, input.len()),
            },
        }
        let rest = &input[used..];
        // A line may take max_line bytes plus CR and LF: look no further than that.
        let window = &rest[..rest.len().min(self.max_line + 2)];
        let too_long = Err(DecodeError::LineTooLong { max: self.max_line });
        // memchr looks at many bytes at a time: a line's end is found in a few instructions.
        let Some(lf) = memchr::memchr(b'\n', window) else {
            if rest.len() > self.max_line + 1 {
                // Too long: drop it up to its end if that is here, else up to the end of the
                // input and go on dropping until the end comes.
                let end = memchr::memchr(b'\n', &rest[window.len()..]);
                let used = match end {
                    Some(lf) => used + window.len() + lf + 1,
                    None => {
                        self.discard = Discard::Line(rest.len());
                        input.len()
                    }
                };
                return Decoded {
                    used,
                    item: Some(too_long),
                };
            }
            return Decoded { used, item: None };
        };
        used += lf + 1;
        let line = window[..lf].strip_suffix(b"\r").unwrap_or(&window[..lf]);
        let item = if line.len() > self.max_line {
            too_long
        } else {
            Ok(parse_owned(sanitize(line)))
        };
        Decoded {
            used,
            item: Some(item),
        }
    }

    /// Drops `len` more bytes of an over-long line with `so_far` bytes dropped before them; past
    /// the discard limit, gives up on the connection.
    fn drop_unfinished(&mut self, so_far: usize, len: usize) -> Decoded {
        let so_far = so_far.saturating_add(len);
        if so_far <= self.max_discard {
            self.discard = Discard::Line(so_far);
            return Decoded {
                used: len,
                item: None,
            };
        }
        self.discard = Discard::GaveUp;
        Decoded {
            used: len,
            item: Some(Err(DecodeError::EndlessLine {
                max: self.max_discard,
            })),
        }
    }
}

/// A typed line before parsing: chat text, or a slash command's name and argument text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypedLine<'a> {
    /// Text to say; a doubled leading slash is already undone (`//x` says `/x`).
    Say(&'a str),
    /// `/NAME ARGS`: the name without the slash, and the rest of the line after one blank.
    Command {
        /// The command name as typed.
        name: &'a str,
        /// Everything after the name and the blank after it.
        args: &'a str,
    },
}

/// Splits a typed line (without its line end) into chat text or a command name and arguments.
pub fn split_line(line: &str) -> TypedLine<'_> {
    match line.strip_prefix('/') {
        Some(escaped) if escaped.starts_with('/') => TypedLine::Say(escaped),
        Some(command) => {
            let (name, args) = command
                .split_once(char::is_whitespace)
                .unwrap_or((command, ""));
            TypedLine::Command { name, args }
        }
        None => TypedLine::Say(line),
    }
}

/// Parses one line of text-mode input (without its line end).
pub fn parse_line(line: &str) -> ClientMsg {
    parse_owned(line.to_owned())
}

/// [`parse_line`] for a line already owned: chat text is moved, not copied.
///
/// Blanks and control characters in front of a `/` are skipped: ` /dm bob hi` is the command,
/// never a public line. A line that does not start with `/` after them is said as it is.
pub fn parse_owned(line: String) -> ClientMsg {
    let command = line.trim_start_matches(|c: char| {
        c.is_whitespace() || c.is_control() || c == '\u{FFFD}' || super::is_unsafe_char(c)
    });
    if !command.starts_with('/') {
        return ClientMsg::Say { text: line };
    }
    parse_slash_line(command)
}

fn parse_slash_line(line: &str) -> ClientMsg {
    match split_line(line) {
        TypedLine::Say(text) => ClientMsg::Say {
            text: text.to_owned(),
        },
        TypedLine::Command { name, args } => ClientMsg::Command(Command::parse(name, args)),
    }
}

/// Appends `msg` to `out` as text lines, each ended with `eol`.
pub fn encode(msg: &ServerMsg, eol: &[u8], out: &mut Vec<u8>) {
    let mut line = |parts: &[&str]| {
        for part in parts {
            out.extend_from_slice(part.as_bytes());
        }
        out.extend_from_slice(eol);
    };
    match msg {
        ServerMsg::Greeting { online } => {
            let online = online.to_string();
            line(&["Welcome to chatd! Users online: ", &online, "."]);
            line(&["Enter your name:"]);
        }
        ServerMsg::NamePrompt => line(&["Enter your name:"]),
        ServerMsg::PasswordPrompt => line(&["Password:"]),
        ServerMsg::Welcome { name, others, more } => {
            let others = match (others.is_empty(), more) {
                (true, 0) => "nobody else yet".to_owned(),
                (_, 0) => others.join(", "),
                (true, more) => format!("{more} others"),
                (false, more) => format!("{} and {more} more", others.join(", ")),
            };
            line(&[
                "[*] Welcome, ",
                name,
                "! Online: ",
                &others,
                ". Type /help for the commands.",
            ]);
        }
        ServerMsg::Chat { at, from, text } => line(&["[", at.hms(), "] ", from, " > ", text]),
        ServerMsg::Backlog { at, from, text } => {
            line(&["[", at.hms(), "] [history] ", from, " > ", text])
        }
        ServerMsg::Direct { at, from, text } => {
            line(&["[", at.hms(), "] [dm] ", from, " > ", text])
        }
        ServerMsg::Event(Event::Entered { name }) => line(&["[*] ", name, " entered."]),
        ServerMsg::Event(Event::Left { name, kind, reason }) => {
            let what = match kind {
                LeaveKind::Exited => " exited.",
                LeaveKind::Kicked => " has been kicked out.",
            };
            line(&["[*] ", name, what, &in_parens(reason)]);
        }
        ServerMsg::Event(Event::Shutdown) => line(&["[*] The server is shutting down. Bye!"]),
        ServerMsg::Reject(reject) => line(&["[!] ", &reject.to_string()]),
        ServerMsg::Help { admin } => {
            line(&["[*] Commands (a line not starting with / is said in your current room):"]);
            for spec in COMMANDS.iter().filter(|spec| *admin || !spec.admin) {
                let aliases: Vec<String> = spec.aliases.iter().map(|a| format!("/{a}")).collect();
                let aliases = if aliases.is_empty() {
                    String::new()
                } else {
                    format!(" (also {})", aliases.join(", "))
                };
                let entry = format!("{:<24} {}{}", spec.usage, spec.summary, aliases);
                line(&["[*]   ", &entry]);
            }
        }
        ServerMsg::HostHelp => {
            line(&["[*] Console commands (any case):"]);
            for (usage, summary) in HOST_COMMANDS {
                line(&["[*]   ", &format!("{usage:<20} {summary}")]);
            }
        }
        ServerMsg::Users { users } => {
            let names: Vec<String> = users.iter().map(user_entry).collect();
            let count = names.len().to_string();
            line(&["[*] Online (", &count, "): ", &names.join(", ")]);
        }
        ServerMsg::Kicked { by, reason } => line(&[
            "[!] You have been kicked out by ",
            by,
            ".",
            &in_parens(reason),
        ]),
        ServerMsg::Bye => line(&["[*] Bye."]),
        ServerMsg::Notice(notice @ (Notice::ClusterDegraded | Notice::NodeCut)) => {
            line(&["[!] ", &notice.to_string()])
        }
        ServerMsg::Notice(notice) => line(&["[*] ", &notice.to_string()]),
        // Keepalives are a framed-mode matter: text clients are never pinged.
        ServerMsg::KeepAlive { .. } => {}
        // Text clients never resume: the line shows as it is, without its id.
        ServerMsg::Line { msg, .. } => encode(msg, eol, out),
        ServerMsg::Gap {
            room,
            missing,
            since,
        } => line(&["[*] ", &gap_text(&room.name, *missing, since.as_ref())]),
        ServerMsg::Done(done) => line(&["[*] ", &done_text(done)]),
        // Text users learn who is away from /users, as before: no line for every change.
        ServerMsg::AwayChanged { .. } => {}
        ServerMsg::Away { name, reason } if reason.is_empty() => line(&["[*] ", name, " is away."]),
        ServerMsg::Away { name, reason } => line(&["[*] ", name, " is away: ", reason]),
        ServerMsg::WhoAmI {
            name,
            role,
            registered,
        } => {
            let kind = if *registered { "registered" } else { "guest" };
            line(&["[*] You are ", name, " (", role.as_str(), ", ", kind, ")."]);
        }
        ServerMsg::UserInfo {
            user,
            registered,
            rooms,
            idle_secs,
            since,
        } => {
            let kind = if *registered { "registered" } else { "guest" };
            let away = match &user.away {
                Some(reason) if !reason.is_empty() => format!(", away: {reason}"),
                Some(_) => ", away".to_owned(),
                None => String::new(),
            };
            line(&[
                "[*] ",
                &user.name,
                " (",
                user.role.as_str(),
                ", ",
                kind,
                &away,
                ") is in ",
                &rooms.join(" "),
                ", here since ",
                since.hms(),
                ", idle ",
                &idle_secs.to_string(),
                " s.",
            ]);
        }
        ServerMsg::Time { at } => line(&["[*] Server time: ", &long_date(at)]),
        ServerMsg::Stats {
            relayed,
            online,
            uptime_secs,
            bad_digests,
        } => {
            let (days, rest) = (uptime_secs / 86_400, uptime_secs % 86_400);
            let uptime = format!(
                "{days}d {:02}:{:02}:{:02}",
                rest / 3600,
                rest % 3600 / 60,
                rest % 60
            );
            let stats = format!(
                "[*] Messages relayed: {relayed}, users online: {online}, uptime: {uptime}, digest mismatches: {bad_digests}"
            );
            line(&[&stats]);
        }
        ServerMsg::Bans { bans } if bans.is_empty() => line(&["[*] No bans."]),
        ServerMsg::Bans { bans } => {
            line(&["[*] Bans (", &bans.len().to_string(), "):"]);
            for ban in bans {
                let when = short_date(&ban.at);
                line(&[
                    "[*]   ",
                    &ban.name,
                    " banned by ",
                    &ban.by,
                    " on ",
                    &when,
                    &in_parens(&ban.reason),
                ]);
            }
        }
        ServerMsg::Pong { at, .. } => line(&["[*] pong, server time ", at.hms()]),
        ServerMsg::Room { room, line: said } => room_line(room, said, &mut line),
        ServerMsg::Rooms { rooms } => {
            line(&["[*] Rooms (", &rooms.len().to_string(), "):"]);
            for room in rooms {
                line(&["[*]   ", &room_entry(room)]);
            }
        }
        ServerMsg::Who { room, members } => {
            let names: Vec<String> = members.iter().map(member_entry).collect();
            let count = names.len().to_string();
            line(&["[*] ", room, " (", &count, "): ", &names.join(", ")]);
        }
        ServerMsg::Topic { room, topic: None } => line(&["[*] ", room, " has no topic."]),
        ServerMsg::Topic {
            room,
            topic: Some(topic),
        } => line(&[
            "[*] Topic of ",
            room,
            ": ",
            &topic.text,
            " (set by ",
            &topic.by,
            " on ",
            &short_date(&topic.at),
            ")",
        ]),
    }
}

/// A room's line: the default room's as before rooms, every other's with the room after the
/// stamp (`[14:02:09] #dev alice > hi`) or after `[*] ` (`[*] #dev: bob entered.`). Chat lines,
/// nearly all of a busy room's, are written in their pieces, with no string of their own.
fn room_line(room: &RoomTag, said: &RoomLine, line: &mut dyn FnMut(&[&str])) {
    let (tag, space) = if room.default {
        ("", "")
    } else {
        (room.name.as_str(), " ")
    };
    let (colon, event_tag) = if room.default {
        ("", "")
    } else {
        (": ", room.name.as_str())
    };
    let mut event = |text: String| line(&["[*] ", event_tag, colon, &text]);
    match said {
        RoomLine::Chat { at, from, text } => {
            line(&["[", at.hms(), "] ", tag, space, from, " > ", text])
        }
        RoomLine::Me { at, from, text } => {
            line(&["[", at.hms(), "] ", tag, space, "* ", from, " ", text])
        }
        RoomLine::History {
            at,
            from,
            text,
            me: false,
        } => line(&[
            "[",
            at.hms(),
            "] ",
            tag,
            space,
            "[history] ",
            from,
            " > ",
            text,
        ]),
        RoomLine::History {
            at,
            from,
            text,
            me: true,
        } => line(&[
            "[",
            at.hms(),
            "] ",
            tag,
            space,
            "[history] * ",
            from,
            " ",
            text,
        ]),
        RoomLine::Entered { names, more } => event(format!("{} entered.", crowd(names, *more))),
        RoomLine::Left {
            names,
            more,
            how,
            reason,
        } => {
            let what = match how {
                Departure::Parted => "left",
                Departure::Exited => "exited",
                Departure::Kicked => "has been kicked out",
            };
            event(format!(
                "{} {what}.{}",
                crowd(names, *more),
                in_parens(reason)
            ))
        }
        RoomLine::Removed { name, by, reason } => {
            event(format!("{name} was removed by {by}.{}", in_parens(reason)))
        }
        RoomLine::Topic { text, by } => event(format!("{by} set the topic: {text}")),
        RoomLine::Moderator { name, by } => event(format!("{by} made {name} a moderator.")),
    }
}

/// `bob`, `alice and bob`, `alice, bob and 38 others`.
fn crowd(names: &[String], more: usize) -> String {
    match (names, more) {
        ([], 1) => "someone".to_owned(),
        ([], more) => format!("{more} users"),
        ([one], 0) => one.clone(),
        ([first @ .., last], 0) => format!("{} and {last}", first.join(", ")),
        (names, 1) => format!("{} and 1 other", names.join(", ")),
        (names, more) => format!("{} and {more} others", names.join(", ")),
    }
}

fn room_entry(room: &RoomEntry) -> String {
    let members = match room.members {
        1 => "1 member".to_owned(),
        n => format!("{n} members"),
    };
    let persistent = if room.persistent { ", persistent" } else { "" };
    match &room.topic {
        Some(topic) => format!("{} ({members}{persistent}): {topic}", room.name),
        None => format!("{} ({members}{persistent})", room.name),
    }
}

fn member_entry(member: &MemberEntry) -> String {
    let mut marks = Vec::new();
    if member.moderator {
        marks.push("moderator".to_owned());
    }
    match member.away.as_deref() {
        Some("") => marks.push("away".to_owned()),
        Some(reason) => marks.push(format!("away: {reason}")),
        None => {}
    }
    if marks.is_empty() {
        member.name.clone()
    } else {
        format!("{} ({})", member.name, marks.join(", "))
    }
}

fn user_entry(user: &UserEntry) -> String {
    let mut marks = Vec::new();
    if user.role == crate::proto::msg::Role::Admin {
        marks.push("admin".to_owned());
    }
    match user.away.as_deref() {
        Some("") => marks.push("away".to_owned()),
        Some(reason) => marks.push(format!("away: {reason}")),
        None => {}
    }
    if marks.is_empty() {
        user.name.clone()
    } else {
        format!("{} ({})", user.name, marks.join(", "))
    }
}

fn done_text(done: &Done) -> String {
    match done {
        Done::Away => "You are marked away; /back when you return.".to_owned(),
        Done::Back => "You are back.".to_owned(),
        Done::Registered => {
            "Your name is registered: from now on it needs your password.".to_owned()
        }
        Done::PasswordChanged => "Your password is changed.".to_owned(),
        Done::Granted { name, role } => format!("{name} is now {role}."),
        Done::Banned { name } => format!("{name} is banned."),
        Done::Unbanned { name } => format!("{name} is no longer banned."),
        Done::RoleChanged { role, by } => format!("{by} made you {role}."),
        Done::JoinedRoom {
            room,
            members,
            created: false,
        } => format!(
            "You joined {} ({members} {}): plain lines go there now.",
            room.name,
            if *members == 1 { "member" } else { "members" }
        ),
        Done::JoinedRoom {
            room,
            created: true,
            ..
        } => format!(
            "You made {} and moderate it: plain lines go there now.",
            room.name
        ),
        Done::SwitchedRoom { room } => format!(
            "Your current room is {}: plain lines go there now.",
            room.name
        ),
        Done::PartedRoom { room, current } => {
            format!("You left {room}; your current room is {current}.")
        }
        Done::RoomCreated { room } => format!("{room} is made: it stays when empty."),
    }
}

const LONG_DATE: &[FormatItem<'static>] = format_description!(
    "[weekday] [year]-[month]-[day] [hour]:[minute]:[second] UTC[offset_hour sign:mandatory]:[offset_minute]"
);
const SHORT_DATE: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

fn long_date(at: &Stamp) -> String {
    at.to_local()
        .format(LONG_DATE)
        .unwrap_or_else(|_| at.hms().to_owned())
}

fn short_date(at: &Stamp) -> String {
    at.to_local()
        .format(SHORT_DATE)
        .unwrap_or_else(|_| at.hms().to_owned())
}

/// ` (reason)` when there is a reason, else nothing.
fn in_parens(reason: &Option<String>) -> String {
    reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::msg::Role;
    use crate::proto::msg::{BanEntry, Reject};

    fn decode_all(
        decoder: &mut TextDecoder,
        mut input: &[u8],
    ) -> Vec<Result<ClientMsg, DecodeError>> {
        let mut items = Vec::new();
        loop {
            let step = decoder.decode(input);
            input = &input[step.used..];
            match step.item {
                Some(item) => items.push(item),
                None if step.used == 0 || input.is_empty() => return items,
                None => {}
            }
        }
    }

    fn too_long(max: usize) -> Result<ClientMsg, DecodeError> {
        Err(DecodeError::LineTooLong { max })
    }

    fn say(text: &str) -> Result<ClientMsg, DecodeError> {
        Ok(ClientMsg::Say { text: text.into() })
    }

    fn render(msg: &ServerMsg) -> String {
        let mut out = Vec::new();
        encode(msg, CLIENT_EOL, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_cluster_notices_and_refusal_read_plainly_degraded_as_an_error_line() {
        use crate::proto::msg::Notice;
        assert_eq!(
            render(&ServerMsg::Notice(Notice::ClusterDegraded)),
            "[!] The chat is degraded: the servers cannot reach each other, so what you send is refused until it is whole again.\r\n"
        );
        assert_eq!(
            render(&ServerMsg::Notice(Notice::ClusterRestored)),
            "[*] The chat is whole again.\r\n"
        );
        assert_eq!(
            render(&ServerMsg::Reject(Reject::Degraded)),
            "[!] the chat is degraded: not sent, as nothing can reach the other servers now; try again when it is whole\r\n"
        );
        assert!(render(&ServerMsg::Notice(Notice::NodeCut))
            .starts_with("[!] This server lost its place in the chat's cluster"));
    }

    #[test]
    fn lines_end_with_lf_and_a_cr_before_it_is_dropped() {
        let mut d = TextDecoder::new(100, 1000);
        assert_eq!(
            decode_all(&mut d, b"hi\r\nthere\n\npartial"),
            vec![say("hi"), say("there"), say("")]
        );
    }

    #[test]
    fn a_partial_line_waits_for_its_end() {
        let mut d = TextDecoder::new(100, 1000);
        assert_eq!(
            d.decode(b"abc"),
            Decoded {
                used: 0,
                item: None
            }
        );
        assert_eq!(d.decode(b"abc\n").item, Some(say("abc")));
    }

    /// Feeds `chunks` one after another the way the shell does: append, decode all, keep the rest.
    fn feed_chunks(
        decoder: &mut TextDecoder,
        chunks: &[&[u8]],
    ) -> Vec<Result<ClientMsg, DecodeError>> {
        crate::proto::testing::feed(|input| decoder.decode(input), chunks)
    }

    #[test]
    fn every_split_point_gives_the_same_messages() {
        let input = b"one\r\n/users\ntwo words\n/quit bye now\n";
        let whole = decode_all(&mut TextDecoder::new(100, 1000), input);
        assert_eq!(whole.len(), 4);
        for split in 0..=input.len() {
            let items = feed_chunks(
                &mut TextDecoder::new(100, 1000),
                &[&input[..split], &input[split..]],
            );
            assert_eq!(items, whole, "split at {split}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            feed_chunks(&mut TextDecoder::new(100, 1000), &bytes),
            whole,
            "a byte at a time"
        );
    }

    #[test]
    fn an_over_long_line_fed_a_byte_at_a_time_is_refused_once() {
        let mut input = vec![b'x'; 50];
        input.extend_from_slice(b"\nok\n");
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            feed_chunks(&mut TextDecoder::new(10, 1000), &bytes),
            vec![too_long(10), say("ok")]
        );
    }

    #[test]
    fn a_line_at_the_limit_passes_and_one_past_it_is_refused_and_discarded() {
        let mut d = TextDecoder::new(4, 1000);
        assert_eq!(decode_all(&mut d, b"abcd\r\n"), vec![say("abcd")]);
        assert_eq!(
            decode_all(&mut d, b"abcde\nok\n"),
            vec![too_long(4), say("ok")]
        );
    }

    #[test]
    fn a_long_line_ending_in_the_same_chunk_loses_nothing_after_it() {
        let mut d = TextDecoder::new(4, 1000);
        assert_eq!(
            decode_all(&mut d, b"abcdefghij\nnext\nmore\n"),
            vec![too_long(4), say("next"), say("more")]
        );
    }

    #[test]
    fn an_endless_line_is_refused_before_the_buffer_grows_and_skipped_to_its_end() {
        let mut d = TextDecoder::new(4, 1000);
        let step = d.decode(b"abcdefgh");
        assert_eq!(
            step,
            Decoded {
                used: 8,
                item: Some(too_long(4))
            }
        );
        assert_eq!(
            d.decode(b"more bytes"),
            Decoded {
                used: 10,
                item: None
            }
        );
        assert_eq!(decode_all(&mut d, b"tail\nnext\n"), vec![say("next")]);
    }

    #[test]
    fn an_unfinished_line_past_the_discard_limit_gives_up_on_the_connection() {
        let mut d = TextDecoder::new(4, 20);
        assert_eq!(d.decode(b"abcdefgh").item, Some(too_long(4)));
        // 8 + 12 = 20 bytes dropped: at the limit, not past it.
        assert_eq!(d.decode(&[b'x'; 12]).item, None);
        let past = d.decode(b"y");
        assert_eq!(
            past,
            Decoded {
                used: 1,
                item: Some(Err(DecodeError::EndlessLine { max: 20 }))
            }
        );
        assert!(past
            .item
            .is_some_and(|e| e.is_err_and(DecodeError::is_fatal)));
        // Given up: nothing is decoded again, and nothing is reported twice.
        assert_eq!(
            d.decode(b"\nhello\n"),
            Decoded {
                used: 7,
                item: None
            }
        );
        // A line that ends within the limit is one refusal, however it was cut into reads.
        let mut line = vec![b'z'; 20];
        line.extend_from_slice(b"\nok\n");
        let bytes: Vec<&[u8]> = line.chunks(1).collect();
        assert_eq!(
            feed_chunks(&mut TextDecoder::new(4, 20), &bytes),
            vec![too_long(4), say("ok")]
        );
    }

    #[test]
    fn an_interrupt_ends_the_over_long_line_being_dropped() {
        let mut d = TextDecoder::new(4, 1000);
        assert_eq!(d.decode(b"abcdefgh").item, Some(too_long(4)));
        d.interrupt();
        assert_eq!(decode_all(&mut d, b"next\n"), vec![say("next")]);
    }

    #[test]
    fn blanks_and_controls_before_a_slash_never_make_a_command_public() {
        let dm = ClientMsg::Command(Command::Dm {
            to: "bob".into(),
            text: "secret".into(),
        });
        let mut d = TextDecoder::new(100, 1000);
        for line in [
            " /dm bob secret\n".as_bytes(),
            b"\t  /dm bob secret\r\n",
            b"\x01\x1b /dm bob secret\n",
            "\u{a0}\u{200b}/dm bob secret\n".as_bytes(),
        ] {
            assert_eq!(decode_all(&mut d, line), vec![Ok(dm.clone())], "{line:?}");
        }
        // A doubled slash after blanks still says the line; other text keeps its blanks.
        assert_eq!(decode_all(&mut d, b"  //x\n"), vec![say("/x")]);
        assert_eq!(decode_all(&mut d, b"  indented\n"), vec![say("  indented")]);
    }

    #[test]
    fn commands_are_parsed_with_their_aliases_in_any_case() {
        assert_eq!(parse_line("/help"), ClientMsg::Command(Command::Help));
        for alias in ["/users", "/LIST", "/viewusers"] {
            assert_eq!(parse_line(alias), ClientMsg::Command(Command::Users));
        }
        assert_eq!(
            parse_line("/exit"),
            ClientMsg::Command(Command::Quit { reason: None })
        );
        assert_eq!(
            parse_line("/disconnect  gone home "),
            ClientMsg::Command(Command::Quit {
                reason: Some("gone home".into())
            })
        );
        assert_eq!(
            parse_line("/bm hi all"),
            ClientMsg::Command(Command::Broadcast {
                text: "hi all".into()
            })
        );
        assert_eq!(
            parse_line("/bm"),
            ClientMsg::Command(Command::BadUsage { usage: "/bm TEXT" })
        );
        assert_eq!(
            parse_line("/frobnicate x"),
            ClientMsg::Command(Command::Unknown {
                name: "frobnicate".into()
            })
        );
        for dm in [
            "/dm bob hi  there",
            "/MSG bob hi  there",
            "/messageto bob hi  there",
        ] {
            let expected = Command::Dm {
                to: "bob".into(),
                text: "hi  there".into(),
            };
            assert_eq!(parse_line(dm), ClientMsg::Command(expected));
        }
        let usage = Command::BadUsage {
            usage: "/dm NAME TEXT",
        };
        assert_eq!(parse_line("/dm bob"), ClientMsg::Command(usage));
        assert_eq!(
            parse_line("//not a command"),
            ClientMsg::Say {
                text: "/not a command".into()
            }
        );
    }

    #[test]
    fn control_characters_never_survive_decoding() {
        let mut d = TextDecoder::new(100, 1000);
        assert_eq!(
            decode_all(&mut d, b"\x1b[2Jhi\x07\r\n"),
            vec![say("\u{FFFD}[2Jhi\u{FFFD}")]
        );
    }

    #[test]
    fn chat_lines_and_events_render_as_the_protocol_says() {
        let at = Stamp::new(0, 9, 5, 7);
        let chat = ServerMsg::Chat {
            at,
            from: "alice".into(),
            text: "hi".into(),
        };
        assert_eq!(render(&chat), "[09:05:07] alice > hi\r\n");
        let dm = ServerMsg::Direct {
            at,
            from: "alice".into(),
            text: "psst".into(),
        };
        assert_eq!(render(&dm), "[09:05:07] [dm] alice > psst\r\n");
        assert_eq!(
            render(&ServerMsg::Event(Event::Entered { name: "bob".into() })),
            "[*] bob entered.\r\n"
        );
        let exited = Event::Left {
            name: "bob".into(),
            kind: LeaveKind::Exited,
            reason: None,
        };
        assert_eq!(render(&ServerMsg::Event(exited)), "[*] bob exited.\r\n");
        let kicked = Event::Left {
            name: "bob".into(),
            kind: LeaveKind::Kicked,
            reason: Some("spam".into()),
        };
        assert_eq!(
            render(&ServerMsg::Event(kicked)),
            "[*] bob has been kicked out. (spam)\r\n"
        );
        assert_eq!(
            render(&ServerMsg::Reject(Reject::BadInput(
                DecodeError::LineTooLong { max: 4096 }
            ))),
            "[!] line too long (limit 4096 bytes); it was not sent.\r\n"
        );
        let entry = |name: &str, role, away: Option<&str>| UserEntry {
            name: name.into(),
            role,
            away: away.map(Into::into),
        };
        let users = vec![
            entry("a", Role::User, None),
            entry("b", Role::Admin, Some("")),
            entry("c", Role::User, Some("lunch")),
        ];
        assert_eq!(
            render(&ServerMsg::Users { users }),
            "[*] Online (3): a, b (admin, away), c (away: lunch)\r\n"
        );
    }

    #[test]
    fn the_welcome_lists_its_names_then_counts_the_rest() {
        let welcome = |others: &[&str], more| {
            render(&ServerMsg::Welcome {
                name: "me".into(),
                others: others.iter().map(|name| name.to_string()).collect(),
                more,
            })
        };
        let online = |line: String| {
            let start = line.find("Online: ").unwrap() + "Online: ".len();
            let end = line.find(". Type /help").unwrap();
            line[start..end].to_owned()
        };
        assert_eq!(online(welcome(&[], 0)), "nobody else yet");
        assert_eq!(online(welcome(&["a", "b"], 0)), "a, b");
        assert_eq!(online(welcome(&["a", "b"], 5)), "a, b and 5 more");
    }

    #[test]
    fn dates_show_the_weekday_and_the_offset() {
        let offset = time::UtcOffset::from_hms(1, 0, 0).unwrap();
        let at = Stamp::local(1_700_000_000, offset);
        assert_eq!(
            render(&ServerMsg::Time { at }),
            "[*] Server time: Tuesday 2023-11-14 23:13:20 UTC+01:00\r\n"
        );
        let ban = BanEntry {
            name: "eve".into(),
            by: "Host".into(),
            at,
            reason: Some("spam".into()),
        };
        assert_eq!(
            render(&ServerMsg::Bans { bans: vec![ban] }),
            "[*] Bans (1):\r\n[*]   eve banned by Host on 2023-11-14 23:13:20 (spam)\r\n"
        );
        let stats = ServerMsg::Stats {
            relayed: 5,
            online: 2,
            uptime_secs: 90_061,
            bad_digests: 1,
        };
        assert_eq!(
            render(&stats),
            "[*] Messages relayed: 5, users online: 2, uptime: 1d 01:01:01, digest mismatches: 1\r\n"
        );
    }

    #[test]
    fn the_greeting_ends_with_the_name_prompt_and_help_has_a_line_per_command() {
        let greeting = render(&ServerMsg::Greeting { online: 2 });
        assert!(greeting.ends_with("\r\nEnter your name:\r\n"), "{greeting}");
        let admin_help = render(&ServerMsg::Help { admin: true });
        assert_eq!(admin_help.lines().count(), COMMANDS.len() + 1);
        for spec in COMMANDS {
            assert!(admin_help.contains(spec.usage), "{admin_help}");
        }
        let user_help = render(&ServerMsg::Help { admin: false });
        assert!(
            user_help.contains("/dm NAME TEXT") && user_help.contains("/msg"),
            "{user_help}"
        );
        assert!(
            !user_help.contains("/kick") && !user_help.contains("/ban"),
            "{user_help}"
        );
    }

    #[test]
    fn room_lines_carry_the_room_after_the_stamp_but_the_default_rooms_do_not() {
        use crate::proto::msg::{RoomEntry, TopicEntry};
        let at = Stamp::new(0, 14, 2, 9);
        let room = |name: &str, line| ServerMsg::Room {
            room: RoomTag {
                name: name.into(),
                default: name == "#lobby",
            },
            line,
        };
        let chat = RoomLine::Chat {
            at,
            from: "alice".into(),
            text: "hi".into(),
        };
        assert_eq!(
            render(&room("#dev", chat)),
            "[14:02:09] #dev alice > hi\r\n"
        );
        let me = RoomLine::Me {
            at,
            from: "alice".into(),
            text: "waves".into(),
        };
        assert_eq!(
            render(&room("#lobby", me.clone())),
            "[14:02:09] * alice waves\r\n"
        );
        assert_eq!(
            render(&room("#dev", me)),
            "[14:02:09] #dev * alice waves\r\n"
        );
        let history = |me| RoomLine::History {
            at,
            from: "bob".into(),
            text: "earlier".into(),
            me,
        };
        assert_eq!(
            render(&room("#dev", history(false))),
            "[14:02:09] #dev [history] bob > earlier\r\n"
        );
        assert_eq!(
            render(&room("#lobby", history(true))),
            "[14:02:09] [history] * bob earlier\r\n"
        );
        let entered = |names: &[&str], more| RoomLine::Entered {
            names: names.iter().map(|n| n.to_string()).collect(),
            more,
        };
        assert_eq!(
            render(&room("#dev", entered(&["bob"], 0))),
            "[*] #dev: bob entered.\r\n"
        );
        assert_eq!(
            render(&room("#lobby", entered(&["bob"], 0))),
            "[*] bob entered.\r\n",
            "one join in the default room reads as before rooms"
        );
        assert_eq!(
            render(&room("#lobby", entered(&["alice", "bob", "carol"], 38))),
            "[*] alice, bob, carol and 38 others entered.\r\n"
        );
        assert_eq!(
            render(&room("#dev", entered(&["alice", "bob"], 0))),
            "[*] #dev: alice and bob entered.\r\n"
        );
        let left = |how, reason: Option<&str>| RoomLine::Left {
            names: vec!["bob".into()],
            more: 0,
            how,
            reason: reason.map(str::to_owned),
        };
        assert_eq!(
            render(&room("#dev", left(Departure::Parted, Some("lunch")))),
            "[*] #dev: bob left. (lunch)\r\n"
        );
        assert_eq!(
            render(&room("#lobby", left(Departure::Exited, None))),
            "[*] bob exited.\r\n"
        );
        assert_eq!(
            render(&room("#dev", left(Departure::Kicked, None))),
            "[*] #dev: bob has been kicked out.\r\n"
        );
        let removed = RoomLine::Removed {
            name: "bob".into(),
            by: "alice".into(),
            reason: Some("noise".into()),
        };
        assert_eq!(
            render(&room("#dev", removed)),
            "[*] #dev: bob was removed by alice. (noise)\r\n"
        );
        let topic = RoomLine::Topic {
            text: "Rust talk".into(),
            by: "alice".into(),
        };
        assert_eq!(
            render(&room("#dev", topic)),
            "[*] #dev: alice set the topic: Rust talk\r\n"
        );
        let made = RoomLine::Moderator {
            name: "bob".into(),
            by: "alice".into(),
        };
        assert_eq!(
            render(&room("#dev", made)),
            "[*] #dev: alice made bob a moderator.\r\n"
        );
        let rooms = ServerMsg::Rooms {
            rooms: vec![
                RoomEntry {
                    name: "#dev".into(),
                    members: 1,
                    topic: Some("Rust talk".into()),
                    persistent: false,
                },
                RoomEntry {
                    name: "#ops".into(),
                    members: 0,
                    topic: None,
                    persistent: true,
                },
            ],
        };
        assert_eq!(
            render(&rooms),
            "[*] Rooms (2):\r\n[*]   #dev (1 member): Rust talk\r\n[*]   #ops (0 members, persistent)\r\n"
        );
        let who = ServerMsg::Who {
            room: "#dev".into(),
            members: vec![
                MemberEntry {
                    name: "alice".into(),
                    moderator: true,
                    away: None,
                },
                MemberEntry {
                    name: "bob".into(),
                    moderator: false,
                    away: Some("lunch".into()),
                },
            ],
        };
        assert_eq!(
            render(&who),
            "[*] #dev (2): alice (moderator), bob (away: lunch)\r\n"
        );
        let topic = ServerMsg::Topic {
            room: "#dev".into(),
            topic: Some(TopicEntry {
                text: "Rust talk".into(),
                by: "alice".into(),
                at,
            }),
        };
        assert_eq!(
            render(&topic),
            "[*] Topic of #dev: Rust talk (set by alice on 1970-01-01 00:00:00)\r\n"
        );
    }
}
