//! Codecs: bytes in, [`ClientMsg`]s out, and [`ServerMsg`]s back to bytes. No I/O, no clock, no users.
//!
//! Four wire modes share the port: newline-terminated text ([`text`]) for `nc`, `telnet` and
//! `socat`, length-prefixed frames ([`framed`]) for the `chat` client, JSON over WebSocket
//! ([`web`]) for the browser page, and IRC ([`irc`]) for IRC clients. The first bytes a client sends tell them apart (the shell's
//! sniffer; [`Mode::sniff`] tells text from frames). [`Decoder`] holds the per-connection decoding state, and
//! [`telnet::Telnet`] the state of the telnet layer in front of a text connection's decoder;
//! everything else here is a pure function.

pub mod framed;
pub mod irc;
pub mod msg;
pub mod telnet;
pub mod text;
pub mod web;

use std::fmt;

pub use msg::{ClientMsg, ServerMsg};

/// The wire modes a connection can speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Lines of UTF-8 text, for `nc` and friends.
    Text,
    /// Length-prefixed typed frames, for the `chat` client.
    Framed,
    /// JSON messages over WebSocket, for the browser page (after an HTTP upgrade).
    Web,
    /// IRC lines, for irssi, WeeChat and friends: with tags or without.
    Irc(irc::IrcWire),
}

impl Mode {
    /// The mode a connection speaks, told by the first byte it sends: a frame always starts with
    /// 0x00, which no text client sends.
    pub fn sniff(first_byte: u8) -> Mode {
        if first_byte == 0 {
            Mode::Framed
        } else {
            Mode::Text
        }
    }
}

/// Appends `msg` to `out` as `mode` lays it out for a client.
pub fn encode(mode: Mode, msg: &ServerMsg, out: &mut Vec<u8>) {
    match mode {
        Mode::Text => text::encode(msg, text::CLIENT_EOL, out),
        Mode::Framed => framed::encode(msg, out),
        Mode::Web => web::encode(msg, out),
        Mode::Irc(wire) => irc::encode::shared(wire, msg, out),
    }
}

/// Why bytes from a peer could not be decoded. The core decides what the peer is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A text line longer than the line limit; it is discarded up to the next newline.
    LineTooLong {
        /// The line limit in force, in bytes.
        max: usize,
    },
    /// An over-long text line went on past the discard limit with no newline: the peer is not
    /// sending lines, and the connection is closed.
    EndlessLine {
        /// The discard limit, in bytes.
        max: usize,
    },
    /// A frame header announced more bytes than the frame limit allows.
    FrameTooLong {
        /// The length the header announced.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// A frame type this side does not take.
    UnknownType {
        /// The type byte.
        code: u8,
    },
    /// A frame whose body does not fit its type's layout: too short, too long, or a bad field.
    Malformed {
        /// The type byte (0x00 for a frame too short to have one).
        code: u8,
    },
    /// A hello for a protocol version this side does not speak.
    BadVersion {
        /// The version the peer asked for.
        version: u16,
    },
    /// A say or dm frame whose text does not match its SHA-224 digest; the message was dropped.
    BadDigest {
        /// The message id the client gave it.
        id: u32,
    },
    /// A WebSocket message that is no message of the JSON vocabulary (not JSON, no known
    /// `type`, a field missing or of the wrong kind, or a binary message); it was dropped.
    WebMessage,
    /// A WebSocket message longer than the limit: the connection is closed.
    WebTooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// The WebSocket framing broke (an unmasked frame, a bad opcode, text that is not UTF-8).
    WebFraming,
    /// A hello for a version of the JSON vocabulary this side does not speak.
    WebVersion {
        /// The version the page asked for.
        version: u64,
    },
}

impl DecodeError {
    /// Whether the connection cannot go on after this error: the framing is lost, or the peer
    /// speaks something this side does not. The others drop one message and keep the connection.
    pub fn is_fatal(self) -> bool {
        match self {
            DecodeError::LineTooLong { .. }
            | DecodeError::BadDigest { .. }
            | DecodeError::WebMessage => false,
            DecodeError::EndlessLine { .. }
            | DecodeError::FrameTooLong { .. }
            | DecodeError::UnknownType { .. }
            | DecodeError::Malformed { .. }
            | DecodeError::BadVersion { .. }
            | DecodeError::WebTooLong { .. }
            | DecodeError::WebFraming
            | DecodeError::WebVersion { .. } => true,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::LineTooLong { max } => {
                write!(f, "line too long (limit {max} bytes); it was not sent.")
            }
            DecodeError::EndlessLine { max } => {
                write!(f, "line too long: no line end in {max} bytes, goodbye")
            }
            DecodeError::FrameTooLong { len, max } => {
                write!(f, "frame too long: {len} bytes, the limit is {max}")
            }
            DecodeError::UnknownType { code } => write!(f, "unknown frame type 0x{code:02x}"),
            DecodeError::Malformed { code } => write!(f, "malformed frame of type 0x{code:02x}"),
            DecodeError::BadVersion { version } => write!(
                f,
                "unsupported protocol version {version}: this server speaks version {}; use a chat client of that version",
                framed::PROTOCOL_VERSION
            ),
            DecodeError::BadDigest { id } => {
                write!(f, "digest mismatch in message {id}: not relayed")
            }
            DecodeError::WebMessage => f.write_str(
                "message not understood: send a JSON object with a known \"type\" (see PROTOCOL.md)",
            ),
            DecodeError::WebTooLong { max } => {
                write!(f, "message too long: the limit is {max} bytes, goodbye")
            }
            DecodeError::WebFraming => f.write_str("broken WebSocket framing, goodbye"),
            DecodeError::WebVersion { version } => write!(
                f,
                "unsupported version {version}: this server speaks version {} over WebSocket; reload the page",
                web::VERSION
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Size limits the decoders enforce before they buffer or allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest text line, in bytes, not counting the line end.
    pub max_line: usize,
    /// Longest frame, in bytes after the length field; at most [`framed::MAX_FRAME_CAP`].
    pub max_frame: usize,
    /// Longest line or frame before the connection has joined (its name, its password, a hello).
    pub max_before_join: usize,
    /// Most bytes of one unfinished over-long text line dropped before the connection is closed.
    pub max_discard: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line: 8 * 1024,
            max_frame: 64 * 1024,
            max_before_join: 4 * 1024,
            max_discard: 1024 * 1024,
        }
    }
}

/// The result of one decoding step over a byte slice.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded<T = ClientMsg> {
    /// How many bytes of the input were used up (decoded or discarded); the caller drops them.
    pub used: usize,
    /// A message or an error, or `None` when more bytes are needed.
    pub item: Option<Result<T, DecodeError>>,
}

/// The per-connection decoding state: the mode, once the first byte has told it, and that mode's
/// decoder.
#[derive(Debug)]
pub struct Decoder {
    state: DecoderState,
    limits: Limits,
    joined: bool,
}

#[derive(Debug)]
enum DecoderState {
    /// No byte seen yet.
    Sniffing,
    Text(text::TextDecoder),
    Framed(framed::ClientFrameDecoder),
}

impl Decoder {
    /// A decoder for a new connection.
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            state: DecoderState::Sniffing,
            limits,
            joined: false,
        }
    }

    /// The limits it enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Lifts the tighter limit of a connection that has not joined yet.
    pub fn joined(&mut self) {
        self.joined = true;
        match &mut self.state {
            DecoderState::Sniffing => {}
            DecoderState::Text(decoder) => decoder.set_max_line(self.limits.max_line),
            DecoderState::Framed(decoder) => decoder.set_max_frame(self.limits.max_frame),
        }
    }

    fn max_line(&self) -> usize {
        if self.joined {
            self.limits.max_line
        } else {
            self.limits.max_line.min(self.limits.max_before_join)
        }
    }

    fn max_frame(&self) -> usize {
        if self.joined {
            self.limits.max_frame
        } else {
            self.limits.max_frame.min(self.limits.max_before_join)
        }
    }

    /// Ends the over-long text line being dropped, if there is one (the user pressed Ctrl-C).
    pub fn interrupt(&mut self) {
        if let DecoderState::Text(decoder) = &mut self.state {
            decoder.interrupt();
        }
    }

    /// The connection's wire mode, or `None` before its first byte.
    pub fn mode(&self) -> Option<Mode> {
        match self.state {
            DecoderState::Sniffing => None,
            DecoderState::Text(_) => Some(Mode::Text),
            DecoderState::Framed(_) => Some(Mode::Framed),
        }
    }

    /// Decodes the next message from the front of `input`. Call again with the unused rest until
    /// `item` is `None`.
    pub fn decode(&mut self, input: &[u8]) -> Decoded {
        if let DecoderState::Sniffing = self.state {
            let Some(&first) = input.first() else {
                return Decoded {
                    used: 0,
                    item: None,
                };
            };
            self.state = match Mode::sniff(first) {
                Mode::Text => DecoderState::Text(text::TextDecoder::new(
                    self.max_line(),
                    self.limits.max_discard,
                )),
                // No first byte says web: that mode follows an HTTP upgrade, and its input goes
                // through the shell's WebSocket layer and `web::decode`, not through here.
                Mode::Framed | Mode::Web | Mode::Irc(_) => {
                    DecoderState::Framed(framed::ClientFrameDecoder::new(self.max_frame()))
                }
            };
        }
        match &mut self.state {
            DecoderState::Sniffing => Decoded {
                used: 0,
                item: None,
            },
            DecoderState::Text(decoder) => decoder.decode(input),
            DecoderState::Framed(decoder) => decoder.decode(input),
        }
    }
}

/// Turns peer text into a `String` that is safe to show on anyone's terminal.
///
/// Invalid UTF-8 becomes U+FFFD, and so does every control or formatting character that could move
/// a cursor, ring a bell or reorder text: C0 controls but TAB, DEL, C1, and the bidi and zero-width
/// marks U+200B..U+200F, U+202A..U+202E, U+2066..U+2069.
pub fn sanitize(bytes: &[u8]) -> String {
    // Every byte is looked at, with no early exit, so the check runs many bytes at a time.
    let printable = bytes.iter().fold(true, |ok, &b| {
        ok & (b == b'\t' || (0x20..0x7f).contains(&b))
    });
    if printable {
        // Printable ASCII (the common case) is kept as it is; it is valid UTF-8.
        if let Ok(text) = std::str::from_utf8(bytes) {
            return text.to_owned();
        }
    }
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if is_unsafe_char(c) { '\u{FFFD}' } else { c })
        .collect()
}

pub(crate) fn is_unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{a}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the codecs' tests.

    use super::{DecodeError, Decoded};

    /// Feeds `chunks` one after another as a socket reader does: append, decode all whole messages,
    /// keep the rest.
    pub fn feed<T>(
        mut decode: impl FnMut(&[u8]) -> Decoded<T>,
        chunks: &[&[u8]],
    ) -> Vec<Result<T, DecodeError>> {
        let mut buffer = Vec::new();
        let mut items = Vec::new();
        for chunk in chunks {
            buffer.extend_from_slice(chunk);
            loop {
                let step = decode(&buffer);
                assert!(step.used <= buffer.len(), "used more than given");
                buffer.drain(..step.used);
                match step.item {
                    Some(item) => items.push(item),
                    None => break,
                }
            }
        }
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_byte_picks_the_mode_and_no_byte_leaves_it_open() {
        let mut decoder = Decoder::new(Limits::default());
        assert_eq!(decoder.decode(b"").item, None);
        assert_eq!(decoder.mode(), None);
        assert_eq!(
            decoder.decode(b"alice\n").item,
            Some(Ok(ClientMsg::Say {
                text: "alice".into()
            }))
        );
        assert_eq!(decoder.mode(), Some(Mode::Text));

        let mut decoder = Decoder::new(Limits::default());
        let mut hello = Vec::new();
        framed::ClientFrame::hello("bob").encode(&mut hello);
        assert_eq!(
            decoder.decode(&hello).item,
            Some(Ok(ClientMsg::Hello { name: "bob".into() }))
        );
        assert_eq!(decoder.mode(), Some(Mode::Framed));
        assert_eq!(
            decoder.decode(b"a line\n").item,
            Some(Err(DecodeError::FrameTooLong {
                len: u32::from_be_bytes(*b"a li"),
                max: 4 * 1024
            })),
            "once framed, always framed (and before joining, 4 KiB at most)"
        );
    }

    #[test]
    fn the_limit_before_joining_is_tighter_until_lifted() {
        let line = |len: usize| format!("{}\n", "x".repeat(len)).into_bytes();
        let mut decoder = Decoder::new(Limits::default());
        assert_eq!(
            decoder.decode(&line(5000)).item,
            Some(Err(DecodeError::LineTooLong { max: 4096 }))
        );
        assert!(matches!(decoder.decode(&line(4096)).item, Some(Ok(_))));
        decoder.joined();
        assert!(matches!(decoder.decode(&line(8192)).item, Some(Ok(_))));
        assert_eq!(
            decoder.decode(&line(8193)).item,
            Some(Err(DecodeError::LineTooLong { max: 8192 }))
        );
        // Joined before the first byte: the full limit from the start.
        let mut decoder = Decoder::new(Limits::default());
        decoder.joined();
        assert!(matches!(decoder.decode(&line(8000)).item, Some(Ok(_))));
    }

    #[test]
    fn only_framing_errors_are_fatal() {
        assert!(!DecodeError::LineTooLong { max: 1 }.is_fatal());
        assert!(DecodeError::EndlessLine { max: 1 }.is_fatal());
        assert!(!DecodeError::BadDigest { id: 1 }.is_fatal());
        assert!(DecodeError::Malformed { code: 2 }.is_fatal());
        assert!(DecodeError::UnknownType { code: 2 }.is_fatal());
        assert!(DecodeError::BadVersion { version: 2 }.is_fatal());
        assert!(DecodeError::FrameTooLong { len: 2, max: 1 }.is_fatal());
    }

    #[test]
    fn sanitize_keeps_printable_text_and_tabs() {
        assert_eq!(sanitize(b"hello\tworld ~!"), "hello\tworld ~!");
        assert_eq!(
            sanitize("h\u{e9}llo \u{1f600}".as_bytes()),
            "h\u{e9}llo \u{1f600}"
        );
    }

    #[test]
    fn sanitize_replaces_controls_bidi_and_bad_utf8() {
        assert_eq!(sanitize(b"a\x1b[31mb\x07"), "a\u{FFFD}[31mb\u{FFFD}");
        assert_eq!(sanitize(b"x\rY\x7f"), "x\u{FFFD}Y\u{FFFD}");
        assert_eq!(
            sanitize("a\u{202e}b\u{85}c\u{200b}".as_bytes()),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}"
        );
        assert_eq!(sanitize(b"ok\xff\xfe"), "ok\u{FFFD}\u{FFFD}");
    }
}
