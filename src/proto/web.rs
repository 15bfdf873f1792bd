//! The browser page's wire mode: JSON messages over WebSocket, one message a text frame, mapped
//! to and from the same [`ClientMsg`] / [`ServerMsg`] as the framed mode (and laid out like its
//! frames: a chat line, a room line, a room event, the current room, the lines of a reply, an error
//! with its code). PROTOCOL.md ("WebSocket mode") is the reference; the tests quote its examples.
//!
//! Each server message is encoded once for every WebSocket recipient as the complete server
//! frame (server frames are not masked, so the bytes are the same for all of them).
//! [`ServerMsg::KeepAlive`] is the one message that is no JSON: it is a WebSocket ping, which a
//! browser answers by itself even in a background tab.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::framed::{error_code, RoomChange};
use super::msg::{
    gap_text, BanEntry, ClientMsg, Command, Departure, Done, Event, LeaveKind, LineId, MemberEntry,
    Notice, RoomEntry, RoomLine, RoomTag, ServerMsg, Stamp, TopicEntry, UserEntry,
};
use super::{sanitize, text, DecodeError};

/// The version of the JSON vocabulary: the page says it in its hello, the server in its greeting.
/// Version 2 made chat messages lean: `at` is Unix seconds alone, a live line has no `kind`.
/// Version 3 sends a live line as an array, its fields in a fixed order without their keys.
pub const VERSION: u64 = 3;

/// A message from the page, as its JSON reads.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum In {
    Hello {
        v: u64,
        name: String,
    },
    Say {
        text: String,
    },
    Line {
        text: String,
    },
    Command {
        name: String,
        #[serde(default)]
        args: String,
    },
    Dm {
        to: String,
        text: String,
    },
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    Bye {
        #[serde(default)]
        reason: Option<String>,
    },
    Resume {
        after: std::collections::BTreeMap<String, String>,
    },
}

/// The two messages nearly all of a page's are (`say` and `line`), read in place: serde reads a
/// tagged enum by first copying every field of the message into a buffer of its own.
#[derive(Debug, Deserialize)]
struct Said<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// The type and the text of a `say` or `line` message in the very shape the page and chatd-load
/// write it, `{"type":"say","text":"..."}`, with nothing in the text to unescape: that text is
/// the string JSON means, so it is taken as it lies. Anything else is `None` and read by serde.
fn plain_said(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix(r#"{"type":""#)?;
    let (kind, rest) = rest.split_once('"')?;
    let text = rest.strip_prefix(r#","text":""#)?.strip_suffix(r#""}"#)?;
    // Every byte is looked at, with no early exit, so the check runs many bytes at a time.
    let plain = text
        .bytes()
        .fold(true, |ok, b| ok & (b >= 0x20 && b != b'"' && b != b'\\'));
    plain.then_some((kind, text))
}

/// Decodes one text message from the page.
pub fn decode(message: &str) -> Result<ClientMsg, DecodeError> {
    let clean = |text: &str| sanitize(text.as_bytes());
    match plain_said(message) {
        Some(("say", text)) => return Ok(ClientMsg::Say { text: clean(text) }),
        Some(("line", text)) => return Ok(text::parse_owned(clean(text))),
        _ => {}
    }
    // Whatever this does not take (another type, a field twice, a mistyped field of another
    // message) is read whole below, with the same outcome as if it had not been tried.
    if let Ok(Said {
        kind,
        text: Some(text),
    }) = serde_json::from_str(message)
    {
        match &*kind {
            "say" => return Ok(ClientMsg::Say { text: clean(&text) }),
            "line" => return Ok(text::parse_owned(clean(&text))),
            _ => {}
        }
    }
    let parsed: In = serde_json::from_str(message).map_err(|_| DecodeError::WebMessage)?;
    Ok(match parsed {
        In::Hello { v, name } if v == VERSION => ClientMsg::Hello { name: clean(&name) },
        In::Hello { v, .. } => return Err(DecodeError::WebVersion { version: v }),
        In::Say { text } => ClientMsg::Say { text: clean(&text) },
        In::Line { text } => text::parse_owned(clean(&text)),
        In::Command { name, args } => {
            ClientMsg::Command(Command::parse(&clean(&name), &clean(&args)))
        }
        In::Dm { to, text } => ClientMsg::Command(Command::Dm {
            to: clean(&to),
            text: clean(&text),
        }),
        In::Ping { nonce } => ClientMsg::Ping { nonce },
        In::Pong { nonce } => ClientMsg::Pong { nonce },
        In::Bye { reason } => {
            let reason = reason.map(|r| clean(r.trim())).filter(|r| !r.is_empty());
            ClientMsg::Command(Command::Quit { reason })
        }
        In::Resume { after } => ClientMsg::Resume {
            rooms: after
                .into_iter()
                .map(|(room, id)| (clean(&room), LineId::parse(&id)))
                .collect(),
        },
    })
}

/// A stamp as the page reads it: Unix seconds (the page shows them in the reader's own time).
fn seconds(stamp: &Stamp) -> i64 {
    stamp.unix
}

/// A line's id, as it is displayed, formatted on the stack (no `String` of its own; serde_json's
/// `collect_str` escapes each piece of a `Display` as it comes).
fn line_id<S: serde::Serializer>(id: &Option<LineId>, out: S) -> Result<S::Ok, S::Error> {
    use std::io::Write as _;
    let Some(id) = id else {
        return out.serialize_none();
    };
    // Sixteen hex digits, ten and twenty decimal ones and two dashes at most.
    let mut buf = [0u8; 48];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cursor, "{id}");
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    out.serialize_str(std::str::from_utf8(&buf[..len]).unwrap_or_default())
}

/// A room as the page reads it.
#[derive(Debug, Serialize)]
struct Room<'a> {
    name: &'a str,
    default: bool,
}

impl<'a> From<&'a RoomTag> for Room<'a> {
    fn from(room: &'a RoomTag) -> Room<'a> {
        Room {
            name: &room.name,
            default: room.default,
        }
    }
}

#[derive(Debug, Serialize)]
struct RoomOut<'a> {
    name: &'a str,
    members: usize,
    persistent: bool,
    topic: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct MemberOut<'a> {
    name: &'a str,
    moderator: bool,
    away: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct UserOut<'a> {
    name: &'a str,
    role: &'static str,
    away: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct BanOut<'a> {
    name: &'a str,
    by: &'a str,
    at: i64,
    reason: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct TopicOut<'a> {
    text: &'a str,
    by: &'a str,
    at: i64,
}

/// A message to the page, as its JSON is laid out.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Out<'a> {
    Greeting {
        v: u64,
        online: usize,
    },
    Welcome {
        name: &'a str,
        others: &'a [String],
        more: usize,
    },
    Chat {
        /// None for a live line, the one a burst is made of.
        #[serde(skip_serializing_if = "Option::is_none")]
        kind: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "line_id")]
        id: Option<LineId>,
        at: i64,
        from: &'a str,
        text: &'a str,
    },
    RoomChat {
        room: Room<'a>,
        /// None for a live line.
        #[serde(skip_serializing_if = "Option::is_none")]
        kind: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "line_id")]
        id: Option<LineId>,
        at: i64,
        from: &'a str,
        text: &'a str,
    },
    Gap {
        room: Room<'a>,
        missing: Option<u64>,
        since: Option<i64>,
        text: String,
    },
    Event {
        kind: &'static str,
        name: &'a str,
        reason: Option<&'a str>,
    },
    Kicked {
        by: &'a str,
        reason: Option<&'a str>,
    },
    /// A user's away state changed: `away` is the reason (possibly empty), or `null` once back.
    Presence {
        name: &'a str,
        away: Option<&'a str>,
    },
    RoomEvent {
        room: Room<'a>,
        kind: &'static str,
        names: &'a [String],
        more: usize,
        by: &'a str,
        text: &'a str,
    },
    CurrentRoom {
        kind: &'static str,
        room: Room<'a>,
        created: bool,
        members: usize,
        current: &'a str,
        by: &'a str,
        reason: Option<&'a str>,
    },
    Reply {
        kind: &'static str,
        lines: Vec<String>,
    },
    Users {
        users: Vec<UserOut<'a>>,
        lines: Vec<String>,
    },
    Bans {
        bans: Vec<BanOut<'a>>,
        lines: Vec<String>,
    },
    Error {
        code: u16,
        text: String,
    },
    Rooms {
        rooms: Vec<RoomOut<'a>>,
    },
    Who {
        room: &'a str,
        members: Vec<MemberOut<'a>>,
    },
    Topic {
        room: &'a str,
        topic: Option<TopicOut<'a>>,
    },
    Bye,
    Pong {
        nonce: u64,
        at: i64,
    },
}

/// What a server message becomes on the WebSocket.
#[derive(Debug)]
enum Wire<'a> {
    /// A text frame of JSON.
    Json(Out<'a>),
    /// A ping frame with the nonce (eight bytes, big-endian).
    Ping(u64),
}

/// The lines text mode shows for `msg`, without their line ends.
fn lines(msg: &ServerMsg) -> Vec<String> {
    let mut bytes = Vec::new();
    text::encode(msg, text::CONSOLE_EOL, &mut bytes);
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn reply<'a>(kind: &'static str, msg: &'a ServerMsg) -> Wire<'a> {
    Wire::Json(Out::Reply {
        kind,
        lines: lines(msg),
    })
}

fn event<'a>(kind: &'static str, name: &'a str, reason: Option<&'a str>) -> Wire<'a> {
    Wire::Json(Out::Event { kind, name, reason })
}

fn user(entry: &UserEntry) -> UserOut<'_> {
    UserOut {
        name: &entry.name,
        role: entry.role.as_str(),
        away: entry.away.as_deref(),
    }
}

fn ban(entry: &BanEntry) -> BanOut<'_> {
    BanOut {
        name: &entry.name,
        by: &entry.by,
        at: seconds(&entry.at),
        reason: entry.reason.as_deref(),
    }
}

fn room_entry(entry: &RoomEntry) -> RoomOut<'_> {
    RoomOut {
        name: &entry.name,
        members: entry.members,
        persistent: entry.persistent,
        topic: entry.topic.as_deref(),
    }
}

fn member(entry: &MemberEntry) -> MemberOut<'_> {
    MemberOut {
        name: &entry.name,
        moderator: entry.moderator,
        away: entry.away.as_deref(),
    }
}

fn topic(entry: &TopicEntry) -> TopicOut<'_> {
    TopicOut {
        text: &entry.text,
        by: &entry.by,
        at: seconds(&entry.at),
    }
}

/// The current-room message for a change of the client's current room (what
/// [`RoomChange::of`] finds in `msg`), else the lines of a notice.
fn current_room<'a>(msg: &'a ServerMsg) -> Wire<'a> {
    let plain = |name: &'a str| Room {
        name,
        default: false,
    };
    let out = match msg {
        ServerMsg::Done(Done::JoinedRoom {
            room,
            members,
            created,
        }) => Out::CurrentRoom {
            kind: "joined",
            room: Room::from(room),
            created: *created,
            members: *members,
            current: &room.name,
            by: "",
            reason: None,
        },
        ServerMsg::Done(Done::SwitchedRoom { room }) => Out::CurrentRoom {
            kind: "switched",
            room: Room::from(room),
            created: false,
            members: 0,
            current: &room.name,
            by: "",
            reason: None,
        },
        ServerMsg::Done(Done::PartedRoom { room, current }) => Out::CurrentRoom {
            kind: "parted",
            room: plain(room),
            created: false,
            members: 0,
            current,
            by: "",
            reason: None,
        },
        ServerMsg::Notice(Notice::RemovedFromRoom {
            room,
            by,
            reason,
            current,
        }) => Out::CurrentRoom {
            kind: "removed",
            room: plain(room),
            created: false,
            members: 0,
            current,
            by,
            reason: reason.as_deref(),
        },
        _ => return reply("notice", msg),
    };
    Wire::Json(out)
}

fn room_line<'a>(room: &'a RoomTag, line: &'a RoomLine) -> Out<'a> {
    let said = |kind, at, from, text| Out::RoomChat {
        room: Room::from(room),
        kind,
        id: None,
        at: seconds(at),
        from,
        text,
    };
    let happened = |kind, names, more, by, text| Out::RoomEvent {
        room: Room::from(room),
        kind,
        names,
        more,
        by,
        text,
    };
    match line {
        RoomLine::Chat { at, from, text } => said(None, at, from, text),
        RoomLine::Me { at, from, text } => said(Some("action"), at, from, text),
        RoomLine::History { at, from, text, me } => {
            let kind = if *me { "history_action" } else { "history" };
            said(Some(kind), at, from, text)
        }
        RoomLine::Entered { names, more } => happened("entered", names, *more, "", ""),
        RoomLine::Left {
            names,
            more,
            how,
            reason,
        } => {
            let kind = match how {
                Departure::Parted => "parted",
                Departure::Exited => "exited",
                Departure::Kicked => "kicked",
            };
            happened(kind, names, *more, "", reason.as_deref().unwrap_or(""))
        }
        RoomLine::Removed { name, by, reason } => happened(
            "removed",
            std::slice::from_ref(name),
            0,
            by,
            reason.as_deref().unwrap_or(""),
        ),
        RoomLine::Topic { text, by } => happened("topic", &[], 0, by, text),
        RoomLine::Moderator { name, by } => {
            happened("moderator", std::slice::from_ref(name), 0, by, "")
        }
    }
}

/// How `msg` goes on the WebSocket. No catch-all: a new message must be given its form here.
fn wire(msg: &ServerMsg) -> Wire<'_> {
    let json = Wire::Json;
    match msg {
        ServerMsg::Greeting { online } => json(Out::Greeting {
            v: VERSION,
            online: *online,
        }),
        ServerMsg::NamePrompt => reply("name_prompt", msg),
        ServerMsg::PasswordPrompt => reply("password_prompt", msg),
        ServerMsg::Help { .. } => reply("help", msg),
        ServerMsg::HostHelp => reply("host_help", msg),
        ServerMsg::Away { .. } => reply("away", msg),
        ServerMsg::AwayChanged { name, away } => json(Out::Presence {
            name,
            away: away.as_deref(),
        }),
        ServerMsg::WhoAmI { .. } => reply("whoami", msg),
        ServerMsg::UserInfo { .. } => reply("whois", msg),
        ServerMsg::Time { .. } => reply("time", msg),
        ServerMsg::Stats { .. } => reply("stats", msg),
        ServerMsg::Users { users } => json(Out::Users {
            users: users.iter().map(user).collect(),
            lines: lines(msg),
        }),
        ServerMsg::Bans { bans } => json(Out::Bans {
            bans: bans.iter().map(ban).collect(),
            lines: lines(msg),
        }),
        ServerMsg::Done(_) | ServerMsg::Notice(_) => match RoomChange::of(msg) {
            Some(_) => current_room(msg),
            None if matches!(msg, ServerMsg::Done(_)) => reply("done", msg),
            None => reply("notice", msg),
        },
        ServerMsg::Welcome { name, others, more } => json(Out::Welcome {
            name,
            others,
            more: *more,
        }),
        ServerMsg::Chat { at, from, text } => json(Out::Chat {
            kind: None,
            id: None,
            at: seconds(at),
            from,
            text,
        }),
        ServerMsg::Backlog { at, from, text } => json(Out::Chat {
            kind: Some("history"),
            id: None,
            at: seconds(at),
            from,
            text,
        }),
        ServerMsg::Direct { at, from, text } => json(Out::Chat {
            kind: Some("direct"),
            id: None,
            at: seconds(at),
            from,
            text,
        }),
        ServerMsg::Room { room, line } => json(room_line(room, line)),
        ServerMsg::Event(Event::Entered { name }) => event("entered", name, None),
        ServerMsg::Event(Event::Left { name, kind, reason }) => {
            let kind = match kind {
                LeaveKind::Exited => "exited",
                LeaveKind::Kicked => "kicked",
            };
            event(kind, name, reason.as_deref())
        }
        ServerMsg::Event(Event::Shutdown) => event("shutdown", "", None),
        ServerMsg::Kicked { by, reason } => json(Out::Kicked {
            by,
            reason: reason.as_deref(),
        }),
        ServerMsg::Reject(reject) => json(Out::Error {
            code: error_code::of(reject),
            text: reject.to_string(),
        }),
        ServerMsg::Rooms { rooms } => json(Out::Rooms {
            rooms: rooms.iter().map(room_entry).collect(),
        }),
        ServerMsg::Who { room, members } => json(Out::Who {
            room,
            members: members.iter().map(member).collect(),
        }),
        ServerMsg::Topic { room, topic: entry } => json(Out::Topic {
            room,
            topic: entry.as_ref().map(topic),
        }),
        ServerMsg::Bye => json(Out::Bye),
        ServerMsg::KeepAlive { nonce } => Wire::Ping(*nonce),
        ServerMsg::Pong { nonce, at } => json(Out::Pong {
            nonce: *nonce,
            at: seconds(at),
        }),
        ServerMsg::Line { id, msg } => {
            let mut line = wire(msg);
            if let Wire::Json(Out::Chat { id: slot, .. } | Out::RoomChat { id: slot, .. }) =
                &mut line
            {
                *slot = Some(*id);
            }
            line
        }
        ServerMsg::Gap {
            room,
            missing,
            since,
        } => json(Out::Gap {
            room: Room::from(room),
            missing: *missing,
            since: since.as_ref().map(seconds),
            text: gap_text(&room.name, *missing, since.as_ref()),
        }),
    }
}

/// The longest header of an unmasked frame: two bytes and an eight-byte length.
const MAX_HEADER: usize = 10;

/// Writes one unmasked server frame's header for a payload of `len` bytes (at most
/// [`MAX_HEADER`] bytes: writing to a Vec, or to a slice that long, cannot fail).
fn frame_header(opcode: OpCode, len: usize, out: &mut impl std::io::Write) {
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    let _ = header.format(len as u64, out);
}

/// A line said now, in a room or the default room: the message a busy chat is made of, sent
/// in the array form (PROTOCOL.md, "Live lines").
struct LiveLine<'a> {
    /// The room, or `None` for the default room's `chat`.
    room: Option<&'a RoomTag>,
    id: Option<&'a LineId>,
    at: i64,
    from: &'a str,
    text: &'a str,
}

/// The live line `msg` is, if it is one.
fn live_line(msg: &ServerMsg) -> Option<LiveLine<'_>> {
    match msg {
        ServerMsg::Line { id, msg } => live_line(msg).map(|line| LiveLine {
            id: Some(id),
            ..line
        }),
        ServerMsg::Chat { at, from, text } => Some(LiveLine {
            room: None,
            id: None,
            at: at.unix,
            from,
            text,
        }),
        ServerMsg::Room {
            room,
            line: RoomLine::Chat { at, from, text },
        } => Some(LiveLine {
            room: Some(room),
            id: None,
            at: at.unix,
            from,
            text,
        }),
        _ => None,
    }
}

/// Appends `msg` to `out` as the complete server WebSocket frame the page receives.
pub fn encode(msg: &ServerMsg, out: &mut Vec<u8>) {
    let live = live_line(msg);
    let wired = match live {
        Some(_) => None,
        None => Some(wire(msg)),
    };
    match wired {
        None | Some(Wire::Json(_)) => {
            // The JSON goes straight into `out` after room for the longest header (its length is
            // known only then), and is moved back over the room the header did not need: no
            // buffer of its own.
            let start = out.len();
            out.resize(start + MAX_HEADER, 0);
            if let Some(line) = &live {
                write_live_line(line, out);
            } else if let Some(Wire::Json(json)) = &wired {
                if serde_json::to_writer(&mut *out, json).is_err() {
                    // Plain structs of strings and numbers into a Vec: it cannot fail; if it
                    // did, nothing is sent rather than a broken frame.
                    out.truncate(start);
                    return;
                }
            }
            let len = out.len() - start - MAX_HEADER;
            let mut header = [0u8; MAX_HEADER];
            let mut rest = &mut header[..];
            frame_header(OpCode::Data(Data::Text), len, &mut rest);
            let header_len = MAX_HEADER - rest.len();
            let payload_at = start + header_len;
            out.copy_within(start + MAX_HEADER.., payload_at);
            out.truncate(payload_at + len);
            out[start..payload_at].copy_from_slice(&header[..header_len]);
        }
        Some(Wire::Ping(nonce)) => {
            frame_header(OpCode::Control(Control::Ping), 8, out);
            out.extend_from_slice(&nonce.to_be_bytes());
        }
    }
}

/// Writes a live line in its array form, `["chat",ID,AT,FROM,TEXT]` or
/// `["room_chat",ROOM,DEFAULT,ID,AT,FROM,TEXT]`: the object form's keys took 40% of the bytes
/// of a burst's delivery, and the bytes are most of what a delivery costs. Written by hand:
/// serde took 3,200 instructions a message, escaping each key and value a byte at a time.
fn write_live_line(line: &LiveLine<'_>, out: &mut Vec<u8>) {
    match line.room {
        None => out.extend_from_slice(br#"["chat","#),
        Some(room) => {
            out.extend_from_slice(br#"["room_chat","#);
            json_string(&room.name, out);
            out.extend_from_slice(if room.default { b",true," } else { b",false," });
        }
    }
    match line.id {
        // Digits and dashes: nothing to escape. Written by hand, as `LineId`'s `Display` writes
        // it: `write!` took 1,300 instructions a message for the id and the time.
        Some(id) => {
            out.push(b'"');
            push_hex(out, id.epoch);
            out.push(b'-');
            push_decimal(out, u64::from(id.room));
            out.push(b'-');
            push_decimal(out, id.seq);
            out.extend_from_slice(b"\",");
        }
        None => out.extend_from_slice(b"null,"),
    }
    if line.at < 0 {
        out.push(b'-');
    }
    push_decimal(out, line.at.unsigned_abs());
    out.push(b',');
    json_string(line.from, out);
    out.push(b',');
    json_string(line.text, out);
    out.push(b']');
}

/// Appends `n` in decimal digits.
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `n` in lowercase hexadecimal digits, as `{:x}` writes it.
fn push_hex(out: &mut Vec<u8>, n: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = HEX[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `text` as a JSON string, escaped as serde_json escapes it: `"` and `\` with a
/// backslash, the control characters by their short forms or `\u00XX`, the rest as it is.
fn json_string(text: &str, out: &mut Vec<u8>) {
    let plain = |b: u8| b >= 0x20 && b != b'"' && b != b'\\';
    out.push(b'"');
    // Every byte is looked at, with no early exit, so the check runs many bytes at a time.
    if text.bytes().fold(true, |ok, b| ok & plain(b)) {
        out.extend_from_slice(text.as_bytes());
    } else {
        for b in text.bytes() {
            match b {
                b'"' => out.extend_from_slice(br#"\""#),
                b'\\' => out.extend_from_slice(br"\\"),
                b'\n' => out.extend_from_slice(br"\n"),
                b'\r' => out.extend_from_slice(br"\r"),
                b'\t' => out.extend_from_slice(br"\t"),
                0x08 => out.extend_from_slice(br"\b"),
                0x0c => out.extend_from_slice(br"\f"),
                b if b < 0x20 => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(br"\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                b => out.push(b),
            }
        }
    }
    out.push(b'"');
}

/// The JSON text of `msg` as the page receives it (`None` for a keepalive, which is a ping).
pub fn to_json(msg: &ServerMsg) -> Option<String> {
    if let Some(line) = live_line(msg) {
        let mut out = Vec::new();
        write_live_line(&line, &mut out);
        return String::from_utf8(out).ok();
    }
    match wire(msg) {
        Wire::Json(json) => serde_json::to_string(&json).ok(),
        Wire::Ping(_) => None,
    }
}

/// Whether a close frame's reason fits: a control frame's payload is at most 125 bytes, two of
/// them the code. Cuts `reason` at a character boundary to fit.
pub fn close_reason(reason: &str) -> &str {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::msg::{Reject, Role};
    use serde_json::{json, Value};

    fn stamp() -> Stamp {
        Stamp::new(1_700_000_000, 22, 13, 20)
    }

    fn parsed(msg: &ServerMsg) -> Value {
        meaning(serde_json::from_str(&to_json(msg).expect("a JSON message")).expect("valid JSON"))
    }

    /// A message as the page reads it: a live line's array form becomes the object it stands
    /// for (PROTOCOL.md, "Live lines"); any other message is that already.
    fn meaning(value: Value) -> Value {
        let Value::Array(fields) = value else {
            return value;
        };
        let mut object = serde_json::Map::new();
        let keys: &[&str] = match fields.first().and_then(Value::as_str) {
            Some("chat") => &["type", "id", "at", "from", "text"],
            Some("room_chat") => &["type", "room", "default", "id", "at", "from", "text"],
            _ => panic!("an array that is no live line: {fields:?}"),
        };
        assert_eq!(fields.len(), keys.len(), "{fields:?}");
        for (key, field) in keys.iter().zip(fields) {
            if !(*key == "id" && field.is_null()) {
                object.insert((*key).into(), field);
            }
        }
        if let Some(name) = object.remove("room") {
            let default = object.remove("default").unwrap_or_default();
            object.insert("room".into(), json!({"name": name, "default": default}));
        }
        Value::Object(object)
    }

    /// The frame's header and payload, as a client reads them.
    fn unframe(bytes: &[u8]) -> (u8, Vec<u8>) {
        let mut cursor = std::io::Cursor::new(bytes);
        let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
        assert!(header.is_final && header.mask.is_none(), "{header:?}");
        let start = cursor.position() as usize;
        assert_eq!(bytes.len() - start, len as usize, "one whole frame");
        let opcode = match header.opcode {
            OpCode::Data(Data::Text) => 1,
            OpCode::Control(Control::Ping) => 9,
            other => panic!("unexpected opcode {other:?}"),
        };
        (opcode, bytes[start..].to_vec())
    }

    #[test]
    fn the_examples_in_protocol_md_decode() {
        let cases = [
            (
                r#"{"type":"hello","v":3,"name":"alice"}"#,
                ClientMsg::Hello {
                    name: "alice".into(),
                },
            ),
            (
                r#"{"type":"say","text":"hello all"}"#,
                ClientMsg::Say {
                    text: "hello all".into(),
                },
            ),
            (
                r##"{"type":"line","text":"/join #dev"}"##,
                ClientMsg::Command(Command::parse("join", "#dev")),
            ),
            (
                r##"{"type":"command","name":"join","args":"#dev"}"##,
                ClientMsg::Command(Command::parse("join", "#dev")),
            ),
            (
                r#"{"type":"dm","to":"bob","text":"psst"}"#,
                ClientMsg::Command(Command::Dm {
                    to: "bob".into(),
                    text: "psst".into(),
                }),
            ),
            (r#"{"type":"ping","nonce":7}"#, ClientMsg::Ping { nonce: 7 }),
            (r#"{"type":"pong","nonce":7}"#, ClientMsg::Pong { nonce: 7 }),
            (
                r#"{"type":"bye","reason":"lunch"}"#,
                ClientMsg::Command(Command::Quit {
                    reason: Some("lunch".into()),
                }),
            ),
            (
                r#"{"type":"bye"}"#,
                ClientMsg::Command(Command::Quit { reason: None }),
            ),
            (
                r##"{"type":"resume","after":{"#lobby":"5f3a-0-42","#dev":"5f3a-2-7"}}"##,
                ClientMsg::Resume {
                    rooms: vec![
                        (
                            "#dev".into(),
                            Some(LineId {
                                epoch: 0x5f3a,
                                room: 2,
                                seq: 7,
                            }),
                        ),
                        (
                            "#lobby".into(),
                            Some(LineId {
                                epoch: 0x5f3a,
                                room: 0,
                                seq: 42,
                            }),
                        ),
                    ],
                },
            ),
            (
                r##"{"type":"resume","after":{"":"not an id"}}"##,
                ClientMsg::Resume {
                    rooms: vec![("".into(), None)],
                },
            ),
        ];
        for (json, msg) in cases {
            assert_eq!(decode(json), Ok(msg), "{json}");
        }
    }

    #[test]
    fn text_from_the_page_is_sanitized_and_a_line_is_read_as_text_mode_reads_it() {
        assert_eq!(
            decode(r#"{"type":"say","text":"a\u001b[2Jb\u202e"}"#),
            Ok(ClientMsg::Say {
                text: "a\u{FFFD}[2Jb\u{FFFD}".into()
            })
        );
        assert_eq!(
            decode(r#"{"type":"line","text":"//not a command"}"#),
            Ok(ClientMsg::Say {
                text: "/not a command".into()
            })
        );
        assert_eq!(
            decode(r#"{"type":"line","text":"plain words"}"#),
            Ok(ClientMsg::Say {
                text: "plain words".into()
            })
        );
    }

    #[test]
    fn unknown_or_malformed_messages_are_refused_and_a_wrong_version_is_fatal() {
        for bad in [
            "",
            "hello",
            "[1,2]",
            r#"{"text":"no type"}"#,
            r#"{"type":"shout","text":"x"}"#,
            r#"{"type":"say"}"#,
            r#"{"type":"say","text":5}"#,
            r#"{"type":"ping","nonce":-1}"#,
        ] {
            assert_eq!(decode(bad), Err(DecodeError::WebMessage), "{bad}");
            assert!(!DecodeError::WebMessage.is_fatal());
        }
        // A page of version 1 (a tab left open across an upgrade) is told to reload.
        let old = decode(r#"{"type":"hello","v":1,"name":"alice"}"#);
        assert_eq!(old, Err(DecodeError::WebVersion { version: 1 }));
        assert!(DecodeError::WebVersion { version: 1 }.is_fatal());
        assert_eq!(
            DecodeError::WebVersion { version: 1 }.to_string(),
            "unsupported version 1: this server speaks version 3 over WebSocket; reload the page"
        );
        // So is a page of version 2, whose live lines were objects.
        let before = decode(r#"{"type":"hello","v":2,"name":"alice"}"#);
        assert_eq!(before, Err(DecodeError::WebVersion { version: 2 }));
        let later = decode(r#"{"type":"hello","v":4,"name":"alice"}"#);
        assert_eq!(later, Err(DecodeError::WebVersion { version: 4 }));
        // Fields this version does not know are ignored: a later page may add some.
        assert!(decode(r#"{"type":"say","text":"x","id":3}"#).is_ok());
        // Say and line are read in place; what that reading refuses is read whole, as before.
        assert_eq!(
            decode(r#"{"text":"a\"b\u00e9","type":"say","nonce":"n"}"#),
            Ok(ClientMsg::Say {
                text: "a\"b\u{e9}".into()
            })
        );
        assert_eq!(
            decode(r#"{"type":"say","text":"a","text":"b"}"#),
            Err(DecodeError::WebMessage)
        );
        assert_eq!(
            decode(r#"{"type":"ping","nonce":7,"text":5}"#),
            Ok(ClientMsg::Ping { nonce: 7 })
        );
        assert_eq!(
            decode(r#"{"type":"line","text":null}"#),
            Err(DecodeError::WebMessage)
        );
        // The exact shape the page writes is taken as it lies; anything to unescape, or more
        // after it, is read by serde.
        for (json, want) in [
            (r#"{"type":"say","text":"plain words"}"#, Ok("plain words")),
            (r#"{"type":"say","text":"a\"b"}"#, Ok("a\"b")),
            (r#"{"type":"say","text":"a\\b\u0041"}"#, Ok("a\\bA")),
            (
                r#"{"type":"say","text":"a"}x"}"#,
                Err(DecodeError::WebMessage),
            ),
            (
                r#"{"type":"say","text":"a"} "}"#,
                Err(DecodeError::WebMessage),
            ),
            // A raw tab (not `\t`) is no JSON.
            (
                "{\"type\":\"say\",\"text\":\"tab\u{9}in\"}",
                Err(DecodeError::WebMessage),
            ),
            (
                r#"{"type":"shout","text":"a"}"#,
                Err(DecodeError::WebMessage),
            ),
        ] {
            let want = want.map(|text| ClientMsg::Say { text: text.into() });
            assert_eq!(decode(json), want, "{json}");
        }
        assert_eq!(plain_said(r#"{"type":"say","text":"a\"b"}"#), None);
        assert_eq!(
            plain_said(r#"{"type":"line","text":"/join #dev"}"#),
            Some(("line", "/join #dev"))
        );
    }

    #[test]
    fn a_chat_line_is_one_text_frame_of_the_json_protocol_md_shows() {
        let msg = ServerMsg::Room {
            room: RoomTag {
                name: "#lobby".into(),
                default: true,
            },
            line: RoomLine::Chat {
                at: stamp(),
                from: "alice".into(),
                text: "<b>hi</b> & \"bye\"".into(),
            },
        };
        let mut out = Vec::new();
        encode(&msg, &mut out);
        let (opcode, payload) = unframe(&out);
        assert_eq!(opcode, 1);
        assert_eq!(
            String::from_utf8_lossy(&payload),
            r##"["room_chat","#lobby",true,null,1700000000,"alice","<b>hi</b> & \"bye\""]"##
        );
        let value: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            meaning(value),
            json!({"type":"room_chat","room":{"name":"#lobby","default":true},
                   "at":1_700_000_000,"from":"alice","text":"<b>hi</b> & \"bye\""})
        );
    }

    #[test]
    fn room_lines_carry_their_id_and_a_gap_says_what_was_lost() {
        let line = ServerMsg::Line {
            id: LineId {
                epoch: 0xabc,
                room: 3,
                seq: 9,
            },
            msg: Box::new(ServerMsg::Chat {
                at: stamp(),
                from: "bob".into(),
                text: "hi".into(),
            }),
        };
        assert_eq!(
            parsed(&line),
            json!({"type":"chat","id":"abc-3-9","at":1_700_000_000,"from":"bob","text":"hi"})
        );
        let direct = parsed(&ServerMsg::Direct {
            at: stamp(),
            from: "bob".into(),
            text: "psst".into(),
        });
        assert_eq!(direct.get("id"), None, "direct messages are not resumed");
        let gap = parsed(&ServerMsg::Gap {
            room: RoomTag {
                name: "#dev".into(),
                default: false,
            },
            missing: None,
            since: Some(stamp()),
        });
        assert_eq!(
            gap["text"],
            "Some messages in #dev could not be recovered (the server restarted or no longer has \
             your last line): the lines it has since 22:13:20 follow."
        );
        assert_eq!(gap["missing"], Value::Null);
        assert_eq!(
            LineId::parse("abc-3-9"),
            Some(LineId {
                epoch: 0xabc,
                room: 3,
                seq: 9
            })
        );
        for bad in ["", "abc-3", "abc-3-9-1", "xyz-3-9", "abc--9", "abc-3-x"] {
            assert_eq!(LineId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_live_line_of_the_burst_is_lean_on_the_wire() {
        // The burst's delivery: 64 characters from a 6-letter name in the default room, with an
        // id of this run (32 bits of epoch) past its 10,000th line. Text mode sends it in 86.
        let line = ServerMsg::Line {
            id: LineId {
                epoch: u64::from(u32::MAX),
                room: 0,
                seq: 98_765,
            },
            msg: Box::new(ServerMsg::Chat {
                at: stamp(),
                from: "load12".into(),
                text: "x".repeat(64),
            }),
        };
        let mut out = Vec::new();
        encode(&line, &mut out);
        assert_eq!(
            std::str::from_utf8(&out[2..]).unwrap(),
            format!(
                r#"["chat","ffffffff-0-98765",1700000000,"load12","{}"]"#,
                "x".repeat(64)
            )
        );
        assert_eq!(out.len(), 116, "version 2 took 149, version 1 185");
    }

    #[test]
    fn live_lines_write_their_numbers_as_serde_does_at_every_width() {
        let ats = [0, 7, 1_700_000_000, -1, -86_400, i64::MAX, i64::MIN];
        let ids = [
            (0, 0, 0),
            (0x5f3a, 1, 42),
            (0xffff_ffff, u32::MAX, u64::MAX),
            (u64::MAX, 10, 1_000_000_007),
        ];
        for at in ats {
            for (epoch, room, seq) in ids {
                let msg = ServerMsg::Line {
                    id: LineId { epoch, room, seq },
                    msg: Box::new(ServerMsg::Chat {
                        at: Stamp::new(at, 0, 0, 0),
                        from: "bob".into(),
                        text: "hi".into(),
                    }),
                };
                let mut fast = Vec::new();
                encode(&msg, &mut fast);
                let (_, payload) = unframe(&fast);
                assert_eq!(
                    String::from_utf8_lossy(&payload),
                    String::from_utf8_lossy(&array_by_serde(&msg))
                );
            }
        }
    }

    /// A live line's object form as serde writes it (`wire`), its values then written by serde
    /// as the array of PROTOCOL.md's order: what the hand-written encoder must match.
    fn array_by_serde(msg: &ServerMsg) -> Vec<u8> {
        let Wire::Json(json) = wire(msg) else {
            panic!("a JSON message");
        };
        let object = serde_json::to_value(&json).unwrap();
        let field = |key: &str| object.get(key).cloned().unwrap_or(Value::Null);
        let array = match object["type"].as_str() {
            Some("chat") => json!([
                "chat",
                field("id"),
                field("at"),
                field("from"),
                field("text")
            ]),
            _ => json!([
                "room_chat",
                object["room"]["name"],
                object["room"]["default"],
                field("id"),
                field("at"),
                field("from"),
                field("text")
            ]),
        };
        serde_json::to_vec(&array).unwrap()
    }

    #[test]
    fn live_lines_are_written_byte_for_byte_as_serde_writes_them() {
        let texts = [
            "hi",
            "",
            "x".repeat(200).as_str(),
            "\"quoted\" and \\back\\slashed",
            "tab\there, new\nline, cr\r, bell\u{7}, esc\u{1b}, nul\u{0}, \u{8}\u{c}\u{1f}",
            "é ☃ 𝄞 \u{7f} \u{2028} </script>",
        ]
        .map(str::to_owned);
        for text in &texts {
            for from in ["bob", "a\"b\\c"] {
                let said = ServerMsg::Chat {
                    at: stamp(),
                    from: from.into(),
                    text: text.clone(),
                };
                let numbered = ServerMsg::Line {
                    id: LineId {
                        epoch: 0x5f3a,
                        room: 0,
                        seq: 42,
                    },
                    msg: Box::new(said.clone()),
                };
                for msg in [said, numbered] {
                    let mut fast = Vec::new();
                    encode(&msg, &mut fast);
                    let (_, payload) = unframe(&fast);
                    assert_eq!(
                        String::from_utf8_lossy(&payload),
                        String::from_utf8_lossy(&array_by_serde(&msg)),
                        "{msg:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_keepalive_is_a_ping_frame_with_the_nonce() {
        let mut out = Vec::new();
        encode(&ServerMsg::KeepAlive { nonce: 258 }, &mut out);
        assert_eq!(unframe(&out), (9, 258u64.to_be_bytes().to_vec()));
        assert_eq!(to_json(&ServerMsg::KeepAlive { nonce: 258 }), None);
    }

    #[test]
    fn long_messages_get_the_longer_length_forms() {
        for len in [125, 126, 65_535, 65_536, 70_000] {
            let msg = ServerMsg::Chat {
                at: stamp(),
                from: "a".into(),
                text: "x".repeat(len),
            };
            // Appended after what `out` holds already.
            let mut out = b"before".to_vec();
            encode(&msg, &mut out);
            assert_eq!(&out[..6], b"before");
            let (_, payload) = unframe(&out[6..]);
            let value = meaning(serde_json::from_slice(&payload).unwrap());
            assert_eq!(value["text"].as_str().map(str::len), Some(len));
        }
    }

    /// One of every server message (and of every kind inside the room and current-room ones).
    fn every_message() -> Vec<ServerMsg> {
        let tag = RoomTag {
            name: "#dev".into(),
            default: false,
        };
        let room = |line| ServerMsg::Room {
            room: tag.clone(),
            line,
        };
        let names = vec!["bob".to_owned()];
        let mut all = vec![
            ServerMsg::Greeting { online: 3 },
            ServerMsg::NamePrompt,
            ServerMsg::PasswordPrompt,
            ServerMsg::Notice(Notice::Replaced),
            ServerMsg::Notice(Notice::RemovedFromRoom {
                room: "#dev".into(),
                by: "carol".into(),
                reason: Some("spam".into()),
                current: "#lobby".into(),
            }),
            ServerMsg::Welcome {
                name: "alice".into(),
                others: names.clone(),
                more: 0,
            },
            ServerMsg::Chat {
                at: stamp(),
                from: "bob".into(),
                text: "hi".into(),
            },
            ServerMsg::Backlog {
                at: stamp(),
                from: "bob".into(),
                text: "earlier".into(),
            },
            ServerMsg::Direct {
                at: stamp(),
                from: "bob".into(),
                text: "psst".into(),
            },
            ServerMsg::Event(Event::Entered { name: "bob".into() }),
            ServerMsg::Event(Event::Left {
                name: "bob".into(),
                kind: LeaveKind::Exited,
                reason: None,
            }),
            ServerMsg::Event(Event::Left {
                name: "bob".into(),
                kind: LeaveKind::Kicked,
                reason: Some("rude".into()),
            }),
            ServerMsg::Event(Event::Shutdown),
            ServerMsg::Help { admin: false },
            ServerMsg::HostHelp,
            ServerMsg::Users {
                users: vec![UserEntry {
                    name: "bob".into(),
                    role: Role::Admin,
                    away: Some("lunch".into()),
                }],
            },
            ServerMsg::Kicked {
                by: "carol".into(),
                reason: None,
            },
            ServerMsg::Bye,
            ServerMsg::Done(Done::Away),
            ServerMsg::Done(Done::JoinedRoom {
                room: tag.clone(),
                members: 2,
                created: true,
            }),
            ServerMsg::Done(Done::SwitchedRoom { room: tag.clone() }),
            ServerMsg::Done(Done::PartedRoom {
                room: "#dev".into(),
                current: "#lobby".into(),
            }),
            ServerMsg::Away {
                name: "bob".into(),
                reason: "lunch".into(),
            },
            ServerMsg::AwayChanged {
                name: "bob".into(),
                away: Some("lunch".into()),
            },
            ServerMsg::AwayChanged {
                name: "bob".into(),
                away: None,
            },
            ServerMsg::WhoAmI {
                name: "alice".into(),
                role: Role::User,
                registered: false,
            },
            ServerMsg::Time { at: stamp() },
            ServerMsg::Stats {
                relayed: 1,
                online: 2,
                uptime_secs: 3,
                bad_digests: 0,
            },
            ServerMsg::Bans {
                bans: vec![BanEntry {
                    name: "mallory".into(),
                    by: "carol".into(),
                    at: stamp(),
                    reason: None,
                }],
            },
            ServerMsg::Rooms {
                rooms: vec![RoomEntry {
                    name: "#dev".into(),
                    members: 2,
                    topic: Some("Rust".into()),
                    persistent: true,
                }],
            },
            ServerMsg::Who {
                room: "#dev".into(),
                members: vec![MemberEntry {
                    name: "bob".into(),
                    moderator: true,
                    away: None,
                }],
            },
            ServerMsg::Topic {
                room: "#dev".into(),
                topic: Some(TopicEntry {
                    text: "Rust".into(),
                    by: "bob".into(),
                    at: stamp(),
                }),
            },
            ServerMsg::Topic {
                room: "#dev".into(),
                topic: None,
            },
            ServerMsg::Pong {
                nonce: 7,
                at: stamp(),
            },
            room(RoomLine::Chat {
                at: stamp(),
                from: "bob".into(),
                text: "hi".into(),
            }),
            room(RoomLine::Me {
                at: stamp(),
                from: "bob".into(),
                text: "waves".into(),
            }),
            room(RoomLine::History {
                at: stamp(),
                from: "bob".into(),
                text: "old".into(),
                me: true,
            }),
            room(RoomLine::Entered {
                names: names.clone(),
                more: 2,
            }),
            room(RoomLine::Left {
                names: names.clone(),
                more: 0,
                how: Departure::Parted,
                reason: Some("bye".into()),
            }),
            room(RoomLine::Removed {
                name: "bob".into(),
                by: "carol".into(),
                reason: None,
            }),
            room(RoomLine::Topic {
                text: "Rust".into(),
                by: "bob".into(),
            }),
            room(RoomLine::Moderator {
                name: "bob".into(),
                by: "carol".into(),
            }),
        ];
        let id = |room, seq| LineId {
            epoch: 0x5f3a,
            room,
            seq,
        };
        let numbered = |id, msg| ServerMsg::Line {
            id,
            msg: Box::new(msg),
        };
        all.extend([
            numbered(id(0, 41), all[7].clone()),
            numbered(id(0, 42), all[6].clone()),
            numbered(
                id(2, 7),
                room(RoomLine::Chat {
                    at: stamp(),
                    from: "bob".into(),
                    text: "hi".into(),
                }),
            ),
            numbered(
                id(2, 8),
                room(RoomLine::History {
                    at: stamp(),
                    from: "bob".into(),
                    text: "old".into(),
                    me: false,
                }),
            ),
            ServerMsg::Gap {
                room: tag.clone(),
                missing: Some(3),
                since: Some(stamp()),
            },
            ServerMsg::Gap {
                room: RoomTag {
                    name: "#lobby".into(),
                    default: true,
                },
                missing: None,
                since: None,
            },
        ]);
        all.push(ServerMsg::Reject(Reject::NameTaken));
        all.push(ServerMsg::Reject(Reject::BadInput(DecodeError::WebMessage)));
        all
    }

    #[test]
    fn every_server_message_has_a_json_form_with_a_type() {
        for msg in every_message() {
            let value = parsed(&msg);
            assert!(value["type"].is_string(), "{msg:?}: {value}");
            let mut out = Vec::new();
            encode(&msg, &mut out);
            let (opcode, payload) = unframe(&out);
            assert_eq!(opcode, 1, "{msg:?}");
            assert_eq!(meaning(serde_json::from_slice(&payload).unwrap()), value);
        }
    }

    /// The example lines of PROTOCOL.md's WebSocket section: (`page` or `server`, the JSON).
    fn protocol_md_examples() -> Vec<(&'static str, &'static str)> {
        let doc = include_str!("../../PROTOCOL.md");
        let start = doc.find("## WebSocket mode").expect("the section");
        let section = &doc[start..];
        let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
        section[..end]
            .lines()
            .filter_map(|line| line.split_once(": "))
            .filter(|(who, json)| {
                matches!(*who, "page" | "server") && json.trim().starts_with(['{', '['])
            })
            .map(|(who, json)| (who, json.trim()))
            .collect()
    }

    #[test]
    fn every_example_in_protocol_md_is_what_the_code_reads_or_writes() {
        let examples = protocol_md_examples();
        assert!(examples.len() >= 20, "{examples:?}");
        // As the page receives them: a live line in its array form.
        let written: Vec<Value> = every_message()
            .iter()
            .filter_map(to_json)
            .map(|json| serde_json::from_str(&json).expect("valid JSON"))
            .collect();
        for (who, json) in examples {
            if who == "page" {
                assert!(decode(json).is_ok(), "PROTOCOL.md's {json} is refused");
            } else {
                let value: Value = serde_json::from_str(json).expect("valid JSON in PROTOCOL.md");
                assert!(
                    written.contains(&value),
                    "PROTOCOL.md's {json} is not what the server writes"
                );
            }
        }
    }

    #[test]
    fn the_cluster_notices_are_notice_replies_and_degraded_an_error_213() {
        assert_eq!(
            parsed(&ServerMsg::Notice(Notice::ClusterDegraded)),
            json!({"type":"reply","kind":"notice","lines":["[!] The chat is degraded: the servers cannot reach each other, so what you send is refused until it is whole again."]})
        );
        assert_eq!(
            parsed(&ServerMsg::Notice(Notice::ClusterRestored)),
            json!({"type":"reply","kind":"notice","lines":["[*] The chat is whole again."]})
        );
        assert_eq!(
            parsed(&ServerMsg::Reject(Reject::Degraded)),
            json!({"type":"error","code":213,"text":"the chat is degraded: not sent, as nothing can reach the other servers now; try again when it is whole"})
        );
    }

    #[test]
    fn structured_messages_carry_their_fields() {
        assert_eq!(
            parsed(&ServerMsg::Greeting { online: 3 }),
            json!({"type":"greeting","v":3,"online":3})
        );
        assert_eq!(
            parsed(&ServerMsg::Reject(Reject::NameTaken)),
            json!({"type":"error","code":101,"text":"name taken: someone online already uses it"})
        );
        let joined = parsed(&ServerMsg::Done(Done::JoinedRoom {
            room: RoomTag {
                name: "#dev".into(),
                default: false,
            },
            members: 2,
            created: true,
        }));
        assert_eq!(joined["type"], "current_room");
        assert_eq!(joined["kind"], "joined");
        assert_eq!(joined["created"], true);
        assert_eq!(joined["current"], "#dev");
        let help = parsed(&ServerMsg::Help { admin: false });
        assert_eq!(help["type"], "reply");
        assert_eq!(help["kind"], "help");
        assert!(help["lines"].as_array().is_some_and(|l| l.len() > 3));
        let who = parsed(&ServerMsg::Who {
            room: "#dev".into(),
            members: vec![MemberEntry {
                name: "bob".into(),
                moderator: true,
                away: Some("lunch".into()),
            }],
        });
        assert_eq!(
            who,
            json!({"type":"who","room":"#dev","members":[{"name":"bob","moderator":true,"away":"lunch"}]})
        );
    }

    #[test]
    fn a_close_reason_is_cut_to_fit_a_control_frame() {
        assert_eq!(close_reason("idle"), "idle");
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= 123 && long.starts_with(cut));
    }
}
