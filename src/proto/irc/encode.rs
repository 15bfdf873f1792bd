//! Writing IRC lines, and the lines every IRC recipient of a message shares (room lines, joins,
//! quits): made once per message for each of the two encodings (with tags and without), whoever
//! receives them. Replies to one user are the session's ([`super::session`]).

use time::OffsetDateTime;

use super::{IrcContext, IrcWire};
use crate::proto::msg::{Departure, Event, LeaveKind, LineId, RoomLine, ServerMsg, Stamp};
use crate::proto::text;

/// The `user@host` every user shows: the name as the user name, and one host for everyone (no
/// user's address is shown to others).
pub const HOST: &str = "chatd";

/// Who a line is from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// The server (`:server-name`).
    Server(&'a str),
    /// A user (`:name!name@chatd`).
    User(&'a str),
}

/// Appends one line: `tags` (empty, or `@...` and a space), the source, the command, the
/// middle parameters and the trailing one, each cut at a UTF-8 boundary so that the line, without
/// its tags, fits in 512 bytes (a parameter that echoes a client's input may be longer: an
/// invalid byte read as U+FFFD takes three). CR, LF and NUL in what is written become spaces.
pub fn line(
    out: &mut Vec<u8>,
    tags: &str,
    source: Source<'_>,
    command: &str,
    middle: &[&str],
    trailing: Option<&str>,
) {
    out.extend_from_slice(tags.as_bytes());
    let start = out.len();
    match source {
        Source::Server(name) => {
            out.push(b':');
            clean(out, name);
        }
        Source::User(name) => {
            out.push(b':');
            clean(out, name);
            out.push(b'!');
            clean(out, name);
            out.push(b'@');
            out.extend_from_slice(HOST.as_bytes());
        }
    }
    out.push(b' ');
    out.extend_from_slice(command.as_bytes());
    // Two bytes are kept for the trailing parameter's ` :`.
    let reserve = if trailing.is_some() { 2 } else { 0 };
    for param in middle {
        let room = (super::line::MAX_LINE - 2).saturating_sub(out.len() - start + 1 + reserve);
        if room == 0 {
            break;
        }
        out.push(b' ');
        // A middle parameter is one word: a space in it would move the ones after.
        let at = out.len();
        clean(out, cut(param, room));
        for b in &mut out[at..] {
            if *b == b' ' {
                *b = b'_';
            }
        }
        if param.is_empty() {
            out.push(b'*');
        }
    }
    if let Some(text) = trailing {
        out.extend_from_slice(b" :");
        let room = (super::line::MAX_LINE - 2).saturating_sub(out.len() - start);
        clean(out, cut(text, room));
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `text` to `target` as `command` lines (PRIVMSG, NOTICE), as many as it takes: each
/// fits in 512 bytes, cut at UTF-8 boundaries (at a space when there is one near the cut).
pub fn text_lines(
    out: &mut Vec<u8>,
    tags: &str,
    source: Source<'_>,
    command: &str,
    target: &str,
    text: &str,
) {
    let source_len = match source {
        Source::Server(name) => 1 + name.len(),
        Source::User(name) => 3 + 2 * name.len() + HOST.len(),
    };
    let overhead = source_len + 1 + command.len() + 1 + target.len() + 2;
    let room = (super::line::MAX_LINE - 2).saturating_sub(overhead).max(16);
    let mut rest = text;
    loop {
        let mut piece = cut(rest, room);
        if piece.len() < rest.len() {
            // Prefer a break at a space in the last quarter of the piece.
            if let Some(space) = piece.rfind(' ').filter(|&at| at > piece.len() * 3 / 4) {
                piece = &piece[..space + 1];
            }
        }
        line(out, tags, source, command, &[target], Some(piece));
        rest = &rest[piece.len()..];
        if rest.is_empty() {
            break;
        }
    }
}

/// The longest start of `text` of at most `max` bytes that ends at a character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn clean(out: &mut Vec<u8>, text: &str) {
    out.extend(text.bytes().map(|b| match b {
        b'\r' | b'\n' | 0 => b' ',
        b => b,
    }));
}

/// An IRCv3 `time` tag value: `2026-12-01T15:04:05.000Z`.
pub fn server_time(at: &Stamp) -> String {
    let t = OffsetDateTime::from_unix_timestamp(at.unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Reads an IRCv3 time (`2026-12-01T15:04:05.123Z`, as in a `time` tag or CHATHISTORY's
/// `timestamp=`), in Unix milliseconds; the fraction may be left out or have 1 to 9 digits.
pub fn parse_server_time(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (date, clock) = text.split_once('T')?;
    let (clock, fraction) = match clock.split_once('.') {
        Some((_, "")) => return None,
        Some(parts) => parts,
        None => (clock, ""),
    };
    let number = |part: &str, len: usize| {
        (part.len() == len && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u32>().ok())
            .flatten()
    };
    let mut ymd = date.split('-');
    let year = number(ymd.next()?, 4)?;
    let month = time::Month::try_from(u8::try_from(number(ymd.next()?, 2)?).ok()?).ok()?;
    let day = u8::try_from(number(ymd.next()?, 2)?).ok()?;
    let mut hms = clock.split(':');
    let mut part = || u8::try_from(number(hms.next()?, 2)?).ok();
    let (hour, minute, second) = (part()?, part()?, part()?);
    if ymd.next().is_some() || hms.next().is_some() {
        return None;
    }
    let millis = match fraction.len() {
        0 => 0,
        1..=9 if fraction.bytes().all(|b| b.is_ascii_digit()) => {
            let digits = &fraction[..fraction.len().min(3)];
            let value: i64 = digits.parse().ok()?;
            value * 10_i64.pow(3 - digits.len() as u32)
        }
        _ => return None,
    };
    let date = time::Date::from_calendar_date(i32::try_from(year).ok()?, month, day).ok()?;
    let clock = time::Time::from_hms(hour, minute, second).ok()?;
    let at = time::PrimitiveDateTime::new(date, clock).assume_utc();
    Some(at.unix_timestamp() * 1000 + millis)
}

/// The tag section of a line said at `at` with id `id`: empty for the plain encoding.
fn tags_of(tagged: bool, at: Option<&Stamp>, id: Option<LineId>) -> String {
    if !tagged {
        return String::new();
    }
    let mut tags = Vec::new();
    if let Some(at) = at {
        tags.push(format!("time={}", server_time(at)));
    }
    if let Some(id) = id {
        tags.push(format!("msgid={id}"));
    }
    if tags.is_empty() {
        String::new()
    } else {
        format!("@{} ", tags.join(";"))
    }
}

/// Appends the lines `msg` is for any IRC recipient on `wire`. Messages that are replies to one
/// user and have no IRC form of their own are shown as the text mode shows them, in NOTICEs to
/// `*`; the session writes those with the user's nick instead.
pub fn shared(wire: IrcWire, msg: &ServerMsg, out: &mut Vec<u8>) {
    encode(wire, None, msg, "*", out);
}

/// [`shared`], for recipient `nick`, with `id` the line's id if it has one.
pub(super) fn encode(
    wire: IrcWire,
    id: Option<LineId>,
    msg: &ServerMsg,
    nick: &str,
    out: &mut Vec<u8>,
) {
    let (ctx, tagged) = (wire.ctx, wire.tags);
    let default = ctx.default_room.as_str();
    match msg {
        ServerMsg::Line { id, msg } => encode(wire, Some(*id), msg, nick, out),
        ServerMsg::Chat { at, from, text } => {
            let tags = tags_of(tagged, Some(at), id);
            say(out, &tags, from, default, text, false);
        }
        ServerMsg::Backlog { at, from, text } => {
            history(ctx, tagged, id, default, at, from, text, false, out)
        }
        ServerMsg::Room { room, line: what } => {
            let room = room.name.as_str();
            match what {
                RoomLine::Chat { at, from, text } => {
                    say(out, &tags_of(tagged, Some(at), id), from, room, text, false)
                }
                RoomLine::Me { at, from, text } => {
                    say(out, &tags_of(tagged, Some(at), id), from, room, text, true)
                }
                RoomLine::History { at, from, text, me } => {
                    history(ctx, tagged, id, room, at, from, text, *me, out)
                }
                RoomLine::Entered { names, .. } => {
                    for name in names {
                        line(out, "", Source::User(name), "JOIN", &[room], None);
                    }
                }
                RoomLine::Left {
                    names, how, reason, ..
                } => {
                    // Who left the server is told once, by the default room's QUIT.
                    if *how == Departure::Parted {
                        for name in names {
                            let reason = reason.as_deref();
                            line(out, "", Source::User(name), "PART", &[room], reason);
                        }
                    }
                }
                RoomLine::Removed { name, by, reason } => {
                    let reason = reason.as_deref().unwrap_or(by);
                    line(
                        out,
                        "",
                        Source::User(by),
                        "KICK",
                        &[room, name],
                        Some(reason),
                    );
                }
                RoomLine::Topic { text, by } => {
                    line(out, "", Source::User(by), "TOPIC", &[room], Some(text))
                }
                RoomLine::Moderator { name, by } => {
                    line(out, "", Source::User(by), "MODE", &[room, "+o", name], None)
                }
            }
        }
        ServerMsg::Event(Event::Entered { name }) => {
            line(out, "", Source::User(name), "JOIN", &[default], None)
        }
        ServerMsg::Event(Event::Left { name, kind, reason }) => {
            let why = match (kind, reason) {
                (LeaveKind::Exited, Some(reason)) => format!("Quit: {reason}"),
                (LeaveKind::Exited, None) => "Quit".to_owned(),
                (LeaveKind::Kicked, Some(reason)) => format!("Kicked: {reason}"),
                (LeaveKind::Kicked, None) => "Kicked".to_owned(),
            };
            line(out, "", Source::User(name), "QUIT", &[], Some(&why));
        }
        ServerMsg::Event(Event::Shutdown) => error(out, "Server shutting down"),
        // Only to clients that asked for away-notify. An empty reason would read as "back".
        ServerMsg::AwayChanged { name, away } if wire.away_notify => match away {
            Some(reason) => {
                let reason = if reason.is_empty() { "Away" } else { reason };
                line(out, "", Source::User(name), "AWAY", &[], Some(reason))
            }
            None => line(out, "", Source::User(name), "AWAY", &[], None),
        },
        ServerMsg::AwayChanged { .. } => {}
        // Before the core knows the connection (TLS required): its one line.
        ServerMsg::Reject(reject) => error(out, &reject.to_string()),
        other => notices(ctx, nick, other, out),
    }
}

/// `ERROR :why`, the last line a connection gets.
pub fn error(out: &mut Vec<u8>, why: &str) {
    out.extend_from_slice(b"ERROR :");
    clean(out, cut(why, super::line::MAX_LINE - 9));
    out.extend_from_slice(b"\r\n");
}

/// A chat line (an action as a CTCP ACTION).
fn say(out: &mut Vec<u8>, tags: &str, from: &str, room: &str, text: &str, me: bool) {
    if me {
        let action = format!("\u{1}ACTION {text}\u{1}");
        text_lines(out, tags, Source::User(from), "PRIVMSG", room, &action);
    } else {
        text_lines(out, tags, Source::User(from), "PRIVMSG", room, text);
    }
}

/// A line said before the user joined: with its time for a client that takes tags, else as a
/// NOTICE from the server that shows when and who.
#[allow(clippy::too_many_arguments)]
fn history(
    ctx: &IrcContext,
    tagged: bool,
    id: Option<LineId>,
    room: &str,
    at: &Stamp,
    from: &str,
    text: &str,
    me: bool,
    out: &mut Vec<u8>,
) {
    if tagged {
        return say(out, &tags_of(true, Some(at), id), from, room, text, me);
    }
    let shown = if me {
        format!("[{}] * {from} {text}", at.hms())
    } else {
        format!("[{}] <{from}> {text}", at.hms())
    };
    text_lines(out, "", Source::Server(&ctx.server), "NOTICE", room, &shown);
}

/// `msg` as the text mode shows it, one NOTICE from the server to `nick` per line.
pub fn notices(ctx: &IrcContext, nick: &str, msg: &ServerMsg, out: &mut Vec<u8>) {
    let mut shown = Vec::new();
    text::encode(msg, b"\n", &mut shown);
    let shown = String::from_utf8_lossy(&shown);
    for text in shown.lines().filter(|l| !l.trim().is_empty()) {
        // The text mode's marks of a server line are IRC's NOTICE itself.
        let text = text
            .strip_prefix("[*] ")
            .or_else(|| text.strip_prefix("[!] "))
            .unwrap_or(text);
        text_lines(out, "", Source::Server(&ctx.server), "NOTICE", nick, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::msg::RoomTag;

    fn ctx() -> &'static IrcContext {
        IrcContext::leak("irc.test", "#lobby", 0, true)
    }

    #[test]
    fn a_line_echoing_long_input_still_fits_in_512_bytes() {
        // 200 invalid bytes read as U+FFFD are 600 bytes of text (the fuzzer's find: a CAP
        // subcommand echoed in 410).
        let long = "\u{fffd}".repeat(200);
        for (middle, trailing) in [
            (vec!["alice", long.as_str()], Some("Invalid CAP command")),
            (vec!["alice", long.as_str(), long.as_str()], None),
            (vec![long.as_str()], Some(long.as_str())),
        ] {
            let mut out = Vec::new();
            line(
                &mut out,
                "",
                Source::Server("irc.test"),
                "410",
                &middle,
                trailing,
            );
            assert!(
                out.len() <= super::super::line::MAX_LINE,
                "{} bytes",
                out.len()
            );
            let text = String::from_utf8(out).expect("cut at UTF-8 boundaries");
            assert!(text.ends_with("\r\n"), "{text}");
            assert_eq!(text.matches('\n').count(), 1, "{text}");
        }
    }

    #[test]
    fn line_breaks_and_nul_in_what_is_written_become_spaces_and_the_rest_is_kept() {
        let mut out = Vec::new();
        line(
            &mut out,
            "",
            Source::User("bob"),
            "PRIVMSG",
            &["#dev"],
            Some("a\rb\nc\0d é"),
        );
        assert_eq!(out, ":bob!bob@chatd PRIVMSG #dev :a b c d é\r\n".as_bytes());
        out.clear();
        line(
            &mut out,
            "",
            Source::User("bob"),
            "PRIVMSG",
            &["#dev"],
            Some("plain text"),
        );
        assert_eq!(out, b":bob!bob@chatd PRIVMSG #dev :plain text\r\n");
    }

    fn shared_str(tagged: bool, msg: &ServerMsg) -> String {
        let mut out = Vec::new();
        let wire = IrcWire {
            tags: tagged,
            away_notify: false,
            ctx: ctx(),
        };
        shared(wire, msg, &mut out);
        String::from_utf8(out).expect("UTF-8")
    }

    fn at() -> Stamp {
        Stamp::new(1_764_601_445, 15, 4, 5)
    }

    #[test]
    fn room_lines_are_privmsgs_with_tags_only_for_those_who_take_them() {
        let chat = ServerMsg::Line {
            id: LineId {
                epoch: 0xab,
                room: 0,
                seq: 7,
            },
            msg: Box::new(ServerMsg::Chat {
                at: at(),
                from: "bob".into(),
                text: "hi all".into(),
            }),
        };
        assert_eq!(
            shared_str(false, &chat),
            ":bob!bob@chatd PRIVMSG #lobby :hi all\r\n"
        );
        assert_eq!(
            shared_str(true, &chat),
            "@time=2025-12-01T15:04:05.000Z;msgid=ab-0-7 :bob!bob@chatd PRIVMSG #lobby :hi all\r\n"
        );
        let me = ServerMsg::Room {
            room: RoomTag {
                name: "#dev".into(),
                default: false,
            },
            line: RoomLine::Me {
                at: at(),
                from: "bob".into(),
                text: "waves".into(),
            },
        };
        assert_eq!(
            shared_str(false, &me),
            ":bob!bob@chatd PRIVMSG #dev :\u{1}ACTION waves\u{1}\r\n"
        );
    }

    #[test]
    fn history_without_tags_is_a_notice_that_says_when_and_who() {
        let old = ServerMsg::Backlog {
            at: at(),
            from: "bob".into(),
            text: "earlier".into(),
        };
        assert_eq!(
            shared_str(false, &old),
            ":irc.test NOTICE #lobby :[15:04:05] <bob> earlier\r\n"
        );
        assert_eq!(
            shared_str(true, &old),
            "@time=2025-12-01T15:04:05.000Z :bob!bob@chatd PRIVMSG #lobby :earlier\r\n"
        );
    }

    #[test]
    fn events_are_joins_parts_quits_kicks_topics_and_modes() {
        let dev = RoomTag {
            name: "#dev".into(),
            default: false,
        };
        let room = |line| ServerMsg::Room {
            room: dev.clone(),
            line,
        };
        let cases = [
            (
                ServerMsg::Event(Event::Entered { name: "bob".into() }),
                ":bob!bob@chatd JOIN #lobby\r\n",
            ),
            (
                ServerMsg::Event(Event::Left {
                    name: "bob".into(),
                    kind: LeaveKind::Exited,
                    reason: Some("bye".into()),
                }),
                ":bob!bob@chatd QUIT :Quit: bye\r\n",
            ),
            (
                room(RoomLine::Left {
                    names: vec!["bob".into()],
                    more: 0,
                    how: Departure::Parted,
                    reason: None,
                }),
                ":bob!bob@chatd PART #dev\r\n",
            ),
            (
                room(RoomLine::Left {
                    names: vec!["bob".into()],
                    more: 0,
                    how: Departure::Exited,
                    reason: None,
                }),
                "",
            ),
            (
                room(RoomLine::Removed {
                    name: "bob".into(),
                    by: "ann".into(),
                    reason: Some("too loud".into()),
                }),
                ":ann!ann@chatd KICK #dev bob :too loud\r\n",
            ),
            (
                room(RoomLine::Topic {
                    text: "Rust".into(),
                    by: "ann".into(),
                }),
                ":ann!ann@chatd TOPIC #dev :Rust\r\n",
            ),
            (
                room(RoomLine::Moderator {
                    name: "bob".into(),
                    by: "ann".into(),
                }),
                ":ann!ann@chatd MODE #dev +o bob\r\n",
            ),
        ];
        for (msg, expected) in cases {
            assert_eq!(shared_str(false, &msg), expected, "{msg:?}");
        }
    }

    #[test]
    fn server_times_read_back_to_the_millisecond() {
        let at = at();
        let written = server_time(&at);
        assert_eq!(parse_server_time(&written), Some(at.unix * 1000));
        assert_eq!(
            parse_server_time("2025-12-01T15:04:05.5Z"),
            Some(at.unix * 1000 + 500)
        );
        assert_eq!(
            parse_server_time("2025-12-01T15:04:05.123456789Z"),
            Some(at.unix * 1000 + 123)
        );
        assert_eq!(
            parse_server_time("2025-12-01T15:04:05Z"),
            Some(at.unix * 1000)
        );
        for bad in [
            "2025-12-01T15:04:05",
            "2025-13-01T15:04:05Z",
            "2025-12-01 15:04:05Z",
            "2025-12-01T15:04Z",
            "2025-12-01T15:04:05.Z",
            "2025-12-01T15:04:05.1234567890Z",
            "+2025-12-01T15:04:05Z",
            "2025-12-01T15:04:05:06Z",
            "",
        ] {
            assert_eq!(parse_server_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn away_changes_are_away_lines_only_for_clients_with_away_notify() {
        let change = |away: Option<&str>| ServerMsg::AwayChanged {
            name: "bob".into(),
            away: away.map(Into::into),
        };
        let shown = |away_notify, msg: &ServerMsg| {
            let mut out = Vec::new();
            let wire = IrcWire {
                tags: true,
                away_notify,
                ctx: ctx(),
            };
            shared(wire, msg, &mut out);
            String::from_utf8(out).expect("UTF-8")
        };
        let cases = [
            (change(Some("lunch")), ":bob!bob@chatd AWAY :lunch\r\n"),
            (change(Some("")), ":bob!bob@chatd AWAY :Away\r\n"),
            (change(None), ":bob!bob@chatd AWAY\r\n"),
        ];
        for (msg, expected) in cases {
            assert_eq!(shown(true, &msg), expected);
            assert_eq!(shown(false, &msg), "", "{msg:?}");
        }
    }

    #[test]
    fn long_lines_are_split_at_utf8_boundaries_within_512_bytes() {
        let text = "é".repeat(600);
        let msg = ServerMsg::Chat {
            at: at(),
            from: "bob".into(),
            text: text.clone(),
        };
        let out = shared_str(false, &msg);
        let mut joined = String::new();
        for l in out.split_terminator("\r\n") {
            assert!(l.len() + 2 <= 512, "{} bytes", l.len() + 2);
            let (_, said) = l.split_once(" :").expect("a trailing parameter");
            joined.push_str(said);
        }
        assert_eq!(joined, text);
        assert!(out.matches("\r\n").count() >= 3);
    }

    #[test]
    fn what_is_written_never_breaks_a_line() {
        let mut out = Vec::new();
        line(
            &mut out,
            "",
            Source::Server("s"),
            "NOTICE",
            &["a b\r\nQUIT"],
            Some("x\r\ny\0"),
        );
        assert_eq!(out, b":s NOTICE a_b__QUIT :x  y \r\n");
    }
}
