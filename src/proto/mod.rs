//! Codecs: bytes in, [`ClientMsg`]s out, and [`ServerMsg`]s back to bytes. No I/O, no clock, no users.
//!
//! Two wire modes share the port: newline-terminated text ([`text`]) for `nc`, `telnet` and `socat`.
//! [`Decoder`] holds the per-connection decoding state; everything else here is a pure function.

pub mod msg;
pub mod text;

use std::fmt;

pub use msg::{ClientMsg, ServerMsg};

/// Why bytes from a peer could not be decoded. The core decides what the peer is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A text line longer than the line limit; it is discarded up to the next newline.
    LineTooLong,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::LineTooLong => "line too long",
        })
    }
}

impl std::error::Error for DecodeError {}

/// Size limits the decoders enforce before they buffer or allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest text line, in bytes, not counting the line end.
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_line: 8 * 1024 }
    }
}

/// The result of one decoding step over a byte slice.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    /// How many bytes of the input were used up (decoded or discarded); the caller drops them.
    pub used: usize,
    /// A message or an error, or `None` when more bytes are needed.
    pub item: Option<Result<ClientMsg, DecodeError>>,
}

/// The per-connection decoding state.
#[derive(Debug)]
pub struct Decoder {
    text: text::TextDecoder,
}

impl Decoder {
    /// A decoder for a new connection.
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            text: text::TextDecoder::new(limits.max_line),
        }
    }

    /// Decodes the next message from the front of `input`. Call again with the unused rest until
    /// `item` is `None`.
    pub fn decode(&mut self, input: &[u8]) -> Decoded {
        self.text.decode(input)
    }
}

/// Turns peer text into a `String` that is safe to show on anyone's terminal.
///
/// Invalid UTF-8 becomes U+FFFD, and so does every control or formatting character that could move
/// a cursor, ring a bell or reorder text: C0 controls but TAB, DEL, C1, and the bidi and zero-width
/// marks U+200B..U+200F, U+202A..U+202E, U+2066..U+2069.
pub fn sanitize(bytes: &[u8]) -> String {
    if bytes
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        // Printable ASCII (the common case) is kept as it is.
        return String::from_utf8_lossy(bytes).into_owned();
    }
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if is_unsafe_char(c) { '\u{FFFD}' } else { c })
        .collect()
}

fn is_unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{a}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

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
