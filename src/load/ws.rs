//! `--mode ws`: the load tool as a program speaking chatd's WebSocket mode (PROTOCOL.md,
//! "WebSocket mode").
//!
//! A client's join bytes are the upgrade request for `/ws` (no `Origin`: a program, not a page)
//! followed at once by its hello message; the server takes bytes after the head as the first
//! frames. Every client message is one masked text frame of JSON, formatted by tungstenite's
//! [`Frame`]. What comes back is the `101` head (checked with httparse, the accept key with
//! tungstenite's [`derive_accept_key`]), then server frames, whose headers tungstenite's
//! [`FrameHeader::parse`] reads in place from the driver's one read buffer: only a frame cut off
//! by the end of a read is kept, in the reader's own (usually empty) buffer. The server sends each
//! message as one unmasked frame, so the JSON is read where it lies.

use std::borrow::Cow;
use std::cell::Cell;
use std::io::Cursor;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use tungstenite::handshake::client::generate_key;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::{Frame, FrameHeader};

use super::wire::Incoming;

/// The version of the JSON vocabulary the hello says: the server's own.
const VOCABULARY_VERSION: u64 = crate::proto::web::VERSION;

/// How chatd's live lines begin (an array, its type first): a line in the default room, or in a
/// named room.
const CHAT_PREFIXES: [&[u8]; 2] = [br#"["chat","#, br#"["room_chat","#];

/// The most headers the upgrade's answer may carry.
const MAX_HEADERS: usize = 32;

/// The WebSocket wire's settings: where to upgrade and how each frame is masked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsWire {
    /// The `Host` header: the server's address.
    host: String,
    /// The run's `Sec-WebSocket-Key` (one for every connection: the key only proves that the
    /// server read this request, and the tool runs no other site's script).
    key: String,
    /// The `Sec-WebSocket-Accept` the server must answer the key with.
    accept: String,
    /// The state of the masks' sequence (splitmix64): each frame gets a new mask. RFC 6455 wants
    /// them unpredictable to protect proxies from a page's script; a load tool is no page.
    masks: Cell<u64>,
}

/// One client message of the JSON vocabulary, as the tool sends it.
#[derive(Serialize)]
struct Out<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    v: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

/// The fields of a server message the tool looks at; the others are ignored.
#[derive(Deserialize)]
struct In<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    /// `current_room`: the room the client is in now.
    #[serde(borrow, default)]
    current: Option<Cow<'a, str>>,
}

impl WsWire {
    /// The wire for a server at `addr`, with a fresh key for the run.
    pub fn new(addr: SocketAddr) -> WsWire {
        let key = generate_key();
        let accept = derive_accept_key(key.as_bytes());
        WsWire {
            host: addr.to_string(),
            key,
            accept,
            masks: Cell::new(u64::from(std::process::id()) << 32 | 0x9e37),
        }
    }

    /// Appends the upgrade request and the hello of a client named `name`.
    pub fn join(&self, name: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(b"GET /ws HTTP/1.1\r\nHost: ");
        out.extend_from_slice(self.host.as_bytes());
        out.extend_from_slice(
            b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ",
        );
        out.extend_from_slice(self.key.as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        self.message(
            &Out {
                kind: "hello",
                v: Some(VOCABULARY_VERSION),
                name: Some(name),
                text: None,
            },
            out,
        );
    }

    /// Appends a `say` message of `payload`.
    pub fn say(&self, payload: &[u8], out: &mut Vec<u8>) {
        let text = String::from_utf8_lossy(payload);
        self.message(&Out::text("say", &text), out);
    }

    /// Appends the `line` message `/join ROOM`.
    pub fn join_room(&self, room: &str, out: &mut Vec<u8>) {
        self.message(&Out::text("line", &format!("/join {room}")), out);
    }

    /// The bytes of one said payload of `payload_len` bytes, frame header included.
    pub fn said_len(&self, payload_len: usize) -> usize {
        let mut probe = Vec::new();
        self.say(&vec![b'x'; payload_len], &mut probe);
        probe.len()
    }

    /// A fresh reader for a new connection.
    pub fn reader(&self) -> WsReader {
        WsReader::default()
    }

    /// Appends `msg` as one masked text frame.
    fn message(&self, msg: &Out<'_>, out: &mut Vec<u8>) {
        // Serializing a struct of strings and numbers cannot fail.
        let json = serde_json::to_vec(msg).unwrap_or_default();
        let mut frame = Frame::message(json, OpCode::Data(Data::Text), true);
        frame.header_mut().mask = Some(self.next_mask());
        // Writing to a Vec cannot fail.
        let _ = frame.format(out);
    }

    /// The next mask of the sequence.
    fn next_mask(&self) -> [u8; 4] {
        let state = self.masks.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.masks.set(state);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let [a, b, c, d, ..] = (z ^ (z >> 31)).to_le_bytes();
        [a, b, c, d]
    }
}

impl<'a> Out<'a> {
    fn text(kind: &'a str, text: &'a str) -> Out<'a> {
        Out {
            kind,
            v: None,
            name: None,
            text: Some(text),
        }
    }
}

/// Where a WebSocket connection is in its life, as its reader sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// Waiting for the `101` answer.
    #[default]
    Upgrading,
    /// Reading frames.
    Frames,
    /// Refused, or the server's frames could not be read: the rest is ignored (the server
    /// closes the connection).
    Ignoring,
}

/// One WebSocket connection's decoding state.
#[derive(Debug, Default)]
pub struct WsReader {
    /// Received bytes not yet decoded: part of the answer's head, or a frame cut off by the end
    /// of a read. Empty (and unallocated) between frames.
    pending: Vec<u8>,
    phase: Phase,
    /// The room whose `current_room` message means the client is in it, until it has come.
    awaiting_room: Option<String>,
}

impl WsReader {
    /// From now on, a `current_room` message naming `room` is [`Incoming::RoomJoined`] (once).
    pub fn await_room(&mut self, room: &str) {
        self.awaiting_room = Some(room.to_owned());
    }

    /// Decodes `bytes` (the next ones received), handing each item to `each`.
    pub fn feed(&mut self, wire: &WsWire, bytes: &[u8], mut each: impl FnMut(Incoming<'_>)) {
        if self.phase == Phase::Upgrading {
            self.pending.extend_from_slice(bytes);
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut answer = httparse::Response::new(&mut headers);
            let head_len = match answer.parse(&self.pending) {
                Ok(httparse::Status::Partial) => return,
                Ok(httparse::Status::Complete(len)) => len,
                Err(e) => {
                    self.phase = Phase::Ignoring;
                    each(Incoming::Line(
                        format!("an unreadable answer to the upgrade: {e}").as_bytes(),
                    ));
                    self.pending = Vec::new();
                    return;
                }
            };
            let accepted = answer.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("sec-websocket-accept")
                    && h.value == wire.accept.as_bytes()
            });
            if answer.code != Some(101) || !accepted {
                // Its status line explains the refusal (`HTTP/1.1 403 Forbidden`).
                self.phase = Phase::Ignoring;
                let line_end = self.pending.iter().position(|&b| b == b'\r');
                let status = &self.pending[..line_end.unwrap_or(head_len)];
                each(Incoming::Line(status));
                self.pending = Vec::new();
                return;
            }
            self.phase = Phase::Frames;
            let rest = self.pending.split_off(head_len);
            self.pending = Vec::new();
            self.frames_in_place(&rest, &mut each);
            return;
        }
        if self.phase == Phase::Ignoring {
            return;
        }
        if self.pending.is_empty() {
            self.frames_in_place(bytes, &mut each);
            return;
        }
        // The rest of a cut-off frame: joined to its start, decoded, and what is left kept.
        let mut pending = std::mem::take(&mut self.pending);
        pending.extend_from_slice(bytes);
        let used = self.frames(&pending, &mut each);
        if self.phase == Phase::Frames && used < pending.len() {
            pending.drain(..used);
            self.pending = pending;
        }
    }

    /// Decodes the frames in `bytes`, keeping a cut-off last one for the next read.
    fn frames_in_place(&mut self, bytes: &[u8], each: &mut impl FnMut(Incoming<'_>)) {
        let used = self.frames(bytes, each);
        if self.phase == Phase::Frames && used < bytes.len() {
            self.pending.extend_from_slice(&bytes[used..]);
        }
    }

    /// Decodes the whole frames at the start of `bytes`; returns how many bytes they took.
    fn frames(&mut self, bytes: &[u8], each: &mut impl FnMut(Incoming<'_>)) -> usize {
        let mut used = 0;
        while used < bytes.len() {
            let mut cursor = Cursor::new(&bytes[used..]);
            let (header, len) = match FrameHeader::parse(&mut cursor) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => break,
                Err(_) => {
                    // Framing the tool cannot follow: nothing after it can be trusted.
                    self.phase = Phase::Ignoring;
                    self.pending = Vec::new();
                    each(Incoming::Other);
                    return bytes.len();
                }
            };
            let start = used + cursor.position() as usize;
            let Some(end) = usize::try_from(len)
                .ok()
                .and_then(|len| start.checked_add(len))
            else {
                self.phase = Phase::Ignoring;
                each(Incoming::Other);
                return bytes.len();
            };
            if end > bytes.len() {
                break;
            }
            used = end;
            let payload = &bytes[start..end];
            let whole_text = header.opcode == OpCode::Data(Data::Text)
                && header.is_final
                && header.mask.is_none();
            if whole_text {
                self.message(payload, each);
            } else {
                // Pings, the close frame, anything fragmented: no delivery.
                each(Incoming::Other);
            }
        }
        used
    }

    /// Takes one server message of JSON.
    fn message(&mut self, json: &[u8], each: &mut impl FnMut(Incoming<'_>)) {
        // Chat messages, nearly all of a run's, are known by their type, which chatd writes
        // first, and searched for the marker where they lie, as a text line is: a marker (hex
        // digits, `|` and `x`) needs no escaping in JSON, and no other field of a chat message
        // can hold a `|`. Parsing each whole with serde_json took 60% of the tool's time.
        if CHAT_PREFIXES.iter().any(|p| json.starts_with(p)) {
            return each(Incoming::Line(json));
        }
        let Ok(msg) = serde_json::from_slice::<In<'_>>(json) else {
            return each(Incoming::Other);
        };
        match (&*msg.kind, msg.text, msg.current) {
            ("welcome", _, _) => each(Incoming::Welcome),
            ("chat" | "room_chat", Some(text), _) => each(Incoming::Line(text.as_bytes())),
            ("current_room", _, Some(current))
                if self.awaiting_room.as_deref() == Some(&*current) =>
            {
                self.awaiting_room = None;
                each(Incoming::RoomJoined)
            }
            // An error explains a refused join; a greeting, reply or event is no delivery.
            ("error", Some(text), _) => each(Incoming::Line(text.as_bytes())),
            _ => each(Incoming::Other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(json: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let frame = Frame::message(json.as_bytes().to_vec(), OpCode::Data(Data::Text), true);
        frame.format(&mut out).unwrap();
        out
    }

    fn decoded(items: &mut Vec<String>) -> impl FnMut(Incoming<'_>) + '_ {
        |item| {
            items.push(match item {
                Incoming::Line(line) => format!("Line({})", String::from_utf8_lossy(line)),
                other => format!("{other:?}"),
            })
        }
    }

    #[test]
    fn the_join_is_an_upgrade_then_a_masked_hello() {
        let wire = WsWire::new(SocketAddr::from(([127, 0, 0, 1], 3001)));
        let mut out = Vec::new();
        wire.join("load3", &mut out);
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut request = httparse::Request::new(&mut headers);
        let head = match request.parse(&out).unwrap() {
            httparse::Status::Complete(len) => len,
            httparse::Status::Partial => panic!("a partial head"),
        };
        assert_eq!(request.path, Some("/ws"));
        assert!(request
            .headers
            .iter()
            .any(|h| h.name == "Host" && h.value == b"127.0.0.1:3001"));
        assert!(!request.headers.iter().any(|h| h.name == "Origin"));
        let mut cursor = Cursor::new(&out[head..]);
        let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
        assert_eq!(header.opcode, OpCode::Data(Data::Text));
        let mask = header.mask.expect("client frames are masked");
        let at = head + cursor.position() as usize;
        assert_eq!(out.len() - at, len as usize);
        let json: Vec<u8> = out[at..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(json, br#"{"type":"hello","v":3,"name":"load3"}"#);
        // Each frame its own mask; said_len is what say appends.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        wire.say(b"ld|1|", &mut a);
        wire.say(b"ld|1|", &mut b);
        assert_ne!(a, b);
        assert_eq!(a.len(), wire.said_len(5));
    }

    #[test]
    fn chat_texts_are_read_across_cut_frames_after_the_101() {
        let wire = WsWire::new(SocketAddr::from(([127, 0, 0, 1], 3001)));
        let mut stream = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            wire.accept
        )
        .into_bytes();
        stream.extend(server_frame(r#"{"type":"greeting","v":3,"online":0}"#));
        stream.extend(server_frame(
            r#"{"type":"welcome","name":"load3","others":[],"more":0}"#,
        ));
        stream.extend(server_frame(r#"["chat","a-0-1",1,"load1","ld|1|"]"#));
        stream.extend(server_frame(
            r##"{"type":"current_room","kind":"joined","room":{"name":"#r1","default":false},"created":true,"members":1,"current":"#r1","by":"","reason":null}"##,
        ));
        let mut reader = wire.reader();
        reader.await_room("#r1");
        let mut got = Vec::new();
        for piece in stream.chunks(7) {
            reader.feed(&wire, piece, decoded(&mut got));
        }
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(
            (&*got[0], &*got[1], &*got[3]),
            ("Other", "Welcome", "RoomJoined")
        );
        assert!(got[2].starts_with(r#"Line(["chat","#), "{got:?}");
        assert!(got[2].contains(r#""ld|1|""#), "{got:?}");
        assert!(reader.pending.is_empty());
        // A whole read is decoded in place, nothing kept.
        let mut got = Vec::new();
        reader.feed(
            &wire,
            &server_frame(r#"["chat",null,1,"bob","hi"]"#),
            decoded(&mut got),
        );
        assert_eq!(got, vec![r#"Line(["chat",null,1,"bob","hi"])"#]);
        assert_eq!(reader.pending.capacity(), 0);
    }

    #[test]
    fn a_refused_upgrade_is_told_by_its_status_line() {
        let wire = WsWire::new(SocketAddr::from(([127, 0, 0, 1], 3001)));
        let mut reader = wire.reader();
        let mut got = Vec::new();
        reader.feed(
            &wire,
            b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n403 Forbidden: not this page\r\n",
            decoded(&mut got),
        );
        assert_eq!(got, vec!["Line(HTTP/1.1 403 Forbidden)"]);
    }
}
