//! How the load tool talks to a server: what it sends to join and to say a payload, and how it
//! reads what comes back.
//!
//! Text mode works against any line-based chat server: the join bytes and the say bytes are
//! templates, and the welcome is recognised by a substring. Framed mode speaks chatd's frames with
//! [`crate::proto::framed`]: a hello frame to join, a say frame (with its SHA-224 digest) per
//! payload; the welcome frame is the welcome, and each chat frame's text is searched for the
//! payload marker, unless its digest does not match. The driver sees only [`Incoming`] items.

use std::fmt;
use std::str::FromStr;

use super::lines::LineBuffer;
use super::ws::{WsReader, WsWire};
use crate::proto::framed::{self, ClientFrame, ServerFrame, ServerFrameDecoder};

/// The wire protocol to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireMode {
    /// Lines of text ended by LF, as `nc` sends them.
    Text,
    /// chatd's length-prefixed frames, as the `chat` client sends them.
    Framed,
    /// chatd's WebSocket mode: an upgrade to `/ws`, then JSON messages in masked frames.
    Ws,
}

impl FromStr for WireMode {
    type Err = String;

    fn from_str(text: &str) -> Result<WireMode, String> {
        match text {
            "text" => Ok(WireMode::Text),
            "framed" => Ok(WireMode::Framed),
            "ws" => Ok(WireMode::Ws),
            other => Err(format!(
                "unknown wire mode {other:?}: use text, framed or ws"
            )),
        }
    }
}

impl fmt::Display for WireMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireMode::Text => "text",
            WireMode::Framed => "framed",
            WireMode::Ws => "ws",
        })
    }
}

/// A template with one kind of placeholder, and `\n`, `\r`, `\t`, `\\` escapes already applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// The literal pieces; the placeholder goes between each two.
    pieces: Vec<Vec<u8>>,
}

impl Template {
    /// Parses `text`, in which `placeholder` (e.g. `{name}`) may occur any number of times.
    pub fn parse(text: &str, placeholder: &str) -> Template {
        let pieces = text
            .split(placeholder)
            .map(|piece| unescape(piece).into_bytes())
            .collect();
        Template { pieces }
    }

    /// How many times the placeholder occurs.
    pub fn holes(&self) -> usize {
        self.pieces.len() - 1
    }

    /// Appends the template with `value` in every placeholder.
    pub fn render(&self, value: &[u8], out: &mut Vec<u8>) {
        for (i, piece) in self.pieces.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(value);
            }
            out.extend_from_slice(piece);
        }
    }
}

/// `text` with the backslash escapes `\n`, `\r`, `\t` and `\\` turned into their characters; any
/// other backslash stays as it is.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// The text wire's settings: how to join, how to say a payload, how a welcome looks, and how to
/// join a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextWire {
    /// What a client sends first, with `{name}` filled in.
    pub join: Template,
    /// What a client sends to say a payload, with `{payload}` filled in.
    pub say: Template,
    /// A line containing this means the client has joined; `None` means joined once the join
    /// bytes are written.
    pub welcome: Option<Vec<u8>>,
    /// What a client sends after its welcome to join its room (with `--rooms`), with `{room}`
    /// filled in.
    pub room_join: Template,
    /// A line containing any of these, with `{room}` filled in, means the client is in its room;
    /// none means in it once the room's join bytes are written.
    pub room_joined: Vec<Template>,
}

impl Default for TextWire {
    /// chatd's text mode: the name as the first line, plain lines, `[*] Welcome`, `/join #room`
    /// answered by `You joined #room (...` or, for the room's maker, `You made #room and ...`.
    fn default() -> TextWire {
        TextWire {
            join: Template::parse(r"{name}\n", "{name}"),
            say: Template::parse(r"{payload}\n", "{payload}"),
            welcome: Some(b"[*] Welcome".to_vec()),
            room_join: Template::parse(r"/join {room}\n", "{room}"),
            room_joined: vec![
                Template::parse("You joined {room} (", "{room}"),
                Template::parse("You made {room} and", "{room}"),
            ],
        }
    }
}

/// The wire the tool speaks, with its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wire {
    /// Text lines.
    Text(TextWire),
    /// chatd's frames: hello to join, say frames, the welcome frame as the welcome.
    Framed,
    /// chatd's WebSocket mode (see [`super::ws`]).
    Ws(WsWire),
}

/// Something a client received, as the driver needs to know it.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// The server's sign that the client is in the room.
    Welcome,
    /// The server's sign that the client is in the room it asked to join with `--rooms`.
    RoomJoined,
    /// Any other line (or a chat message's text): searched for a payload marker.
    Line(&'a [u8]),
    /// Something else the server sent (a framed event or reply, a chat frame whose digest does
    /// not match its text): counted, never taken as a delivery.
    Other,
}

/// One connection's decoding state for what the server sends.
#[derive(Debug)]
pub enum Reader {
    /// Splits text lines, looking for the welcome until it has come.
    Text {
        /// The unfinished line.
        lines: LineBuffer,
        /// Whether the welcome is still to come (checked on each line only until then).
        awaiting_welcome: bool,
        /// The lines that confirm the room join asked for, until one has come.
        awaiting_room: Vec<Vec<u8>>,
    },
    /// Splits frames, skipping the text greeting before the first one.
    Framed {
        /// Received bytes not yet decoded (a partial frame).
        pending: Vec<u8>,
        /// The frame decoder.
        decoder: Box<ServerFrameDecoder>,
        /// Whether the welcome has come: from then on chat frames are read in place.
        welcomed: bool,
    },
    /// Reads the upgrade's answer, then server frames.
    Ws(WsReader),
}

impl Wire {
    /// Appends what a client named `name` sends to join.
    pub fn join(&self, name: &str, out: &mut Vec<u8>) {
        match self {
            Wire::Text(text) => text.join.render(name.as_bytes(), out),
            Wire::Framed => ClientFrame::hello(name).encode(out),
            Wire::Ws(ws) => ws.join(name, out),
        }
    }

    /// Appends what a client sends to say `payload`.
    pub fn say(&self, payload: &[u8], out: &mut Vec<u8>) {
        match self {
            Wire::Text(text) => text.say.render(payload, out),
            Wire::Framed => {
                // The id only names a message in an error; the marker already identifies it.
                ClientFrame::say(0, &String::from_utf8_lossy(payload)).encode(out)
            }
            Wire::Ws(ws) => ws.say(payload, out),
        }
    }

    /// Appends what a client sends to join room `room` (nothing in framed mode).
    pub fn join_room(&self, room: &str, out: &mut Vec<u8>) {
        match self {
            Wire::Text(text) => text.room_join.render(room.as_bytes(), out),
            Wire::Ws(ws) => ws.join_room(room, out),
            Wire::Framed => {}
        }
    }

    /// Whether the server confirms a room join; if not, a client counts as in its room once its
    /// room's join bytes are written.
    pub fn has_room_confirmation(&self) -> bool {
        match self {
            Wire::Text(text) => !text.room_joined.is_empty(),
            Wire::Ws(_) => true,
            Wire::Framed => false,
        }
    }

    /// Whether the server signals a join; if not, a client counts as joined once its join bytes
    /// are written.
    pub fn has_welcome(&self) -> bool {
        match self {
            Wire::Text(text) => text.welcome.is_some(),
            Wire::Framed | Wire::Ws(_) => true,
        }
    }

    /// A fresh reader for a new connection.
    pub fn reader(&self) -> Reader {
        match self {
            Wire::Text(text) => Reader::Text {
                lines: LineBuffer::default(),
                awaiting_welcome: text.welcome.is_some(),
                awaiting_room: Vec::new(),
            },
            Wire::Framed => Reader::Framed {
                pending: Vec::new(),
                // Frames from the server may be as long as the format allows (a long welcome).
                decoder: Box::new(ServerFrameDecoder::new(framed::MAX_FRAME_CAP)),
                welcomed: false,
            },
            Wire::Ws(ws) => Reader::Ws(ws.reader()),
        }
    }

    /// The bytes of one said payload of `payload_len` bytes, line end included.
    pub fn said_len(&self, payload_len: usize) -> usize {
        match self {
            Wire::Text(text) => {
                let mut probe = Vec::new();
                text.say.render(b"", &mut probe);
                probe.len() + payload_len * text.say.holes()
            }
            // Length, type, id, the text's length and the digest around the payload.
            Wire::Framed => framed::HEADER_LEN + 1 + 4 + 2 + payload_len + framed::DIGEST_LEN,
            Wire::Ws(ws) => ws.said_len(payload_len),
        }
    }
}

impl Reader {
    /// From now on, a line confirming that the client is in room `room` is
    /// [`Incoming::RoomJoined`] (once).
    pub fn await_room(&mut self, wire: &Wire, room: &str) {
        if let Reader::Ws(ws) = self {
            return ws.await_room(room);
        }
        if let (
            Reader::Text {
                awaiting_room: awaiting,
                ..
            },
            Wire::Text(text),
        ) = (self, wire)
        {
            *awaiting = text
                .room_joined
                .iter()
                .map(|t| {
                    let mut line = Vec::new();
                    t.render(room.as_bytes(), &mut line);
                    line
                })
                .collect();
        }
    }

    /// Decodes `bytes` (the next ones received), handing each item to `each`.
    pub fn feed(&mut self, wire: &Wire, bytes: &[u8], mut each: impl FnMut(Incoming<'_>)) {
        match (self, wire) {
            (
                Reader::Text {
                    lines,
                    awaiting_welcome,
                    awaiting_room,
                },
                Wire::Text(text),
            ) => lines.feed(bytes, |line| {
                let welcome =
                    *awaiting_welcome && text.welcome.as_deref().is_some_and(|w| contains(line, w));
                if welcome {
                    *awaiting_welcome = false;
                    each(Incoming::Welcome);
                } else if awaiting_room.iter().any(|w| contains(line, w)) {
                    awaiting_room.clear();
                    each(Incoming::RoomJoined);
                } else {
                    each(Incoming::Line(line));
                }
            }),
            (
                Reader::Framed {
                    pending,
                    decoder,
                    welcomed,
                },
                _,
            ) => {
                pending.extend_from_slice(bytes);
                let mut used = 0;
                loop {
                    // Chat frames, nearly all of a run's, are read without decoding them whole.
                    let chat = framed::peek_chat(&pending[used..]).filter(|_| *welcomed);
                    if let Some(chat) = chat {
                        used += chat.len;
                        if framed::digest(chat.text) == chat.digest {
                            each(Incoming::Line(chat.text));
                        } else {
                            each(Incoming::Other);
                        }
                        continue;
                    }
                    let step = decoder.decode(&pending[used..]);
                    used += step.used;
                    match step.item {
                        None => break,
                        Some(Ok(ServerFrame::Welcome { .. })) => {
                            *welcomed = true;
                            each(Incoming::Welcome)
                        }
                        Some(Ok(ServerFrame::Chat {
                            text,
                            digest_ok: true,
                            ..
                        })) => each(Incoming::Line(text.as_bytes())),
                        // A frame that does not parse is skipped by the decoder; it is no
                        // delivery either.
                        Some(_) => each(Incoming::Other),
                    }
                }
                pending.drain(..used);
            }
            (Reader::Ws(reader), Wire::Ws(ws)) => reader.feed(ws, bytes, each),
            (Reader::Text { .. } | Reader::Ws(_), _) => {}
        }
    }
}

/// Whether `needle` occurs in `haystack` (an empty needle occurs everywhere).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(join: &str, say: &str, welcome: Option<&str>) -> Wire {
        Wire::Text(TextWire {
            join: Template::parse(join, "{name}"),
            say: Template::parse(say, "{payload}"),
            welcome: welcome.map(|w| w.as_bytes().to_vec()),
            ..TextWire::default()
        })
    }

    #[test]
    fn templates_take_escapes_and_any_number_of_placeholders() {
        let irc = wire(
            r"NICK {name}\r\nUSER {name} 0 * :{name}\r\nJOIN #load\r\n",
            r"PRIVMSG #load :{payload}\r\n",
            None,
        );
        let mut out = Vec::new();
        irc.join("load7", &mut out);
        assert_eq!(
            out,
            b"NICK load7\r\nUSER load7 0 * :load7\r\nJOIN #load\r\n".to_vec()
        );
        out.clear();
        irc.say(b"ld|1|", &mut out);
        assert_eq!(out, b"PRIVMSG #load :ld|1|\r\n".to_vec());
        assert_eq!(irc.said_len(5), out.len());
        assert!(!irc.has_welcome());
    }

    #[test]
    fn unknown_escapes_and_a_trailing_backslash_stay() {
        assert_eq!(unescape(r"a\qb\\n\"), "a\\qb\\n\\");
        assert_eq!(unescape(r"{name}\n"), "{name}\n");
    }

    #[test]
    fn the_welcome_line_is_recognised_by_its_substring() {
        let chatd = wire("{name}\n", "{payload}\n", Some("[*] Welcome"));
        let mut reader = chatd.reader();
        let mut got = Vec::new();
        let stream = b"Welcome to chatd! Users online: 0.\r\nEnter your name:\r\n[*] Welcome, load0! Online: nobody else yet.\r\n[12:00:00] load1 > ld|";
        reader.feed(&chatd, stream, |item| {
            got.push(match item {
                Incoming::Welcome => "<welcome>".to_owned(),
                Incoming::Line(line) => String::from_utf8_lossy(line).into_owned(),
                Incoming::Other => "<other>".to_owned(),
                Incoming::RoomJoined => "<in room>".to_owned(),
            })
        });
        assert_eq!(
            got,
            vec![
                "Welcome to chatd! Users online: 0.",
                "Enter your name:",
                "<welcome>"
            ]
        );
        // Once welcomed, a line that looks like a welcome is just a line.
        got.clear();
        reader.feed(&chatd, b"] [*] Welcome\r\n", |item| {
            got.push(format!("{item:?}"));
        });
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("Line("), "{got:?}");
    }

    #[test]
    fn a_room_join_is_confirmed_by_its_line_once_asked_for() {
        let chatd = Wire::Text(TextWire::default());
        let mut out = Vec::new();
        chatd.join_room("#load3", &mut out);
        assert_eq!(out, b"/join #load3\n");
        assert!(chatd.has_room_confirmation());
        let mut reader = chatd.reader();
        let mut got = Vec::new();
        let mut feed = |reader: &mut Reader, bytes: &[u8]| {
            reader.feed(&chatd, bytes, |item| got.push(format!("{item:?}")));
        };
        // Not awaited yet: just a line.
        feed(
            &mut reader,
            b"[*] Welcome, load3!\r\n[*] You made #load3 and moderate it.\r\n",
        );
        reader.await_room(&chatd, "#load3");
        feed(
            &mut reader,
            b"[*] You joined #load30 (2 members)\r\n[*] You joined #load3 (2 members): plain lines go there now.\r\n[*] You joined #load3 (2 members)\r\n",
        );
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(got[0], "Welcome");
        assert!(got[1].starts_with("Line("), "{got:?}");
        assert!(
            got[2].starts_with("Line("),
            "another room is not ours: {got:?}"
        );
        assert_eq!(got[3], "RoomJoined");
        assert!(got[4].starts_with("Line("), "only once: {got:?}");
        // The maker of a room is told so instead.
        let mut reader = chatd.reader();
        reader.await_room(&chatd, "#load0");
        let mut made = Vec::new();
        reader.feed(&chatd, b"[*] You made #load0 and moderate it\r\n", |item| {
            made.push(format!("{item:?}"))
        });
        assert_eq!(made, vec!["RoomJoined"]);
    }

    #[test]
    fn wire_modes_are_named_text_and_framed() {
        assert_eq!("text".parse(), Ok(WireMode::Text));
        assert_eq!("framed".parse(), Ok(WireMode::Framed));
        assert!("binary".parse::<WireMode>().is_err());
        assert_eq!(WireMode::Framed.to_string(), "framed");
    }

    #[test]
    fn framed_mode_joins_with_a_hello_and_reads_chat_frames_after_the_greeting() {
        use crate::proto::msg::{ServerMsg, Stamp};
        let wire = Wire::Framed;
        let mut hello = Vec::new();
        wire.join("load3", &mut hello);
        assert_eq!(hello[0], 0, "a framed client's first byte is 0x00");
        let mut said = Vec::new();
        wire.say(b"ld|1|", &mut said);
        assert_eq!(said.len(), wire.said_len(5));

        let mut stream = b"Welcome to chatd! Users online: 1.\r\nEnter your name:\r\n".to_vec();
        let welcome = ServerMsg::Welcome {
            name: "load3".into(),
            others: vec!["load1".into()],
            more: 0,
        };
        framed::encode(&welcome, &mut stream);
        let chat = ServerMsg::Chat {
            at: Stamp::new(1_700_000_000, 12, 0, 0),
            from: "load1".into(),
            text: "ld|1|2|3|4|xx".into(),
        };
        framed::encode(&chat, &mut stream);
        // A chat frame whose text was changed on the way fails its digest.
        let mut corrupt = Vec::new();
        framed::encode(&chat, &mut corrupt);
        let at = corrupt.len() - framed::DIGEST_LEN - 1;
        corrupt[at] = b'y';
        stream.extend_from_slice(&corrupt);

        let mut reader = wire.reader();
        let mut got = Vec::new();
        for piece in stream.chunks(7) {
            reader.feed(&wire, piece, |item| got.push(format!("{item:?}")));
        }
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], "Welcome");
        assert!(got[1].contains("Line([108, 100, 124"), "{got:?}");
        assert_eq!(got[2], "Other");
    }
}
