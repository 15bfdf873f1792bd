//! Client lines: found in the byte stream, checked against the limits, and split into tags,
//! source, command and parameters. Pure functions over a byte slice: [`next_line`] is the
//! entry point a fuzz target calls.

use crate::proto::sanitize;

/// Longest line without its tags, the CR LF included (RFC 2812).
pub const MAX_LINE: usize = 512;
/// Longest tag section, its `@` and the space after it included (IRCv3 message tags).
pub const MAX_TAGS: usize = 8191;
/// Most parameters a line has (RFC 2812: 14 middle ones and a trailing one).
pub const MAX_PARAMS: usize = 15;

/// What the front of the input holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed<'a> {
    /// No line end yet, and the bytes could still be a line: wait for more.
    Partial,
    /// A whole line of `used` bytes (its line end included), without its CR LF.
    Line {
        /// The line's bytes.
        line: &'a [u8],
        /// Bytes to drop.
        used: usize,
    },
    /// A line over the limits: `used` bytes are dropped (up to its line end, or everything so far
    /// when no end has come; the rest is dropped as it comes).
    TooLong {
        /// Bytes to drop.
        used: usize,
        /// Whether its end has been seen.
        ended: bool,
    },
}

/// Finds the first line of `input`. A line may end in LF or CR LF (or a lone CR, as some
/// clients send).
pub fn next_line(input: &[u8]) -> Framed<'_> {
    let limit = MAX_LINE + MAX_TAGS;
    let end = memchr::memchr2(b'\n', b'\r', &input[..input.len().min(limit + 1)]);
    let Some(end) = end else {
        return if input.len() > limit {
            Framed::TooLong {
                used: input.len(),
                ended: false,
            }
        } else {
            Framed::Partial
        };
    };
    let mut used = end + 1;
    if input[end] == b'\r' {
        match input.get(end + 1) {
            Some(b'\n') => used += 1,
            Some(_) => {}
            // A CR at the end of what came so far: its LF may be on the way.
            None => return Framed::Partial,
        }
    }
    let line = &input[..end];
    if !fits(line) {
        return Framed::TooLong { used, ended: true };
    }
    Framed::Line { line, used }
}

/// Whether a line (without its line end) is within the limits: its tags within
/// [`MAX_TAGS`], the rest within [`MAX_LINE`] with its CR LF.
fn fits(line: &[u8]) -> bool {
    let (tags, rest) = match line.first() {
        Some(b'@') => match line.iter().position(|&b| b == b' ') {
            Some(space) => (space + 1, line.len() - space - 1),
            None => (line.len(), 0),
        },
        _ => (0, line.len()),
    };
    tags <= MAX_TAGS && rest + 2 <= MAX_LINE
}

/// A parsed line: the command in capitals, and the parameters (sanitized text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The command word, in capitals (or a three-digit numeric).
    pub command: String,
    /// Its parameters, the trailing one last; formatting codes and controls taken out.
    pub params: Vec<String>,
}

impl Message {
    /// Parameter `i`, if there is one.
    pub fn param(&self, i: usize) -> Option<&str> {
        self.params.get(i).map(String::as_str)
    }
}

/// Parses a line. Tags and a source from a client are read past and ignored. `None` for a
/// line with no command (blank, or only tags and a source).
pub fn parse(line: &[u8]) -> Option<Message> {
    let mut rest = line;
    if rest.first() == Some(&b'@') {
        rest = after_word(rest);
    }
    rest = skip_spaces(rest);
    if rest.first() == Some(&b':') {
        rest = after_word(rest);
    }
    rest = skip_spaces(rest);
    let (command, after) = word(rest);
    if command.is_empty() {
        return None;
    }
    let command = String::from_utf8_lossy(command).to_ascii_uppercase();
    // Room for the usual two (a target and text) at once.
    let mut params = Vec::with_capacity(2);
    rest = after;
    loop {
        rest = skip_spaces(rest);
        if rest.is_empty() {
            break;
        }
        if rest[0] == b':' || params.len() == MAX_PARAMS - 1 {
            let text = rest.strip_prefix(b":").unwrap_or(rest);
            params.push(text_of(text));
            break;
        }
        let (param, after) = word(rest);
        params.push(text_of(param));
        rest = after;
    }
    Some(Message { command, params })
}

fn word(bytes: &[u8]) -> (&[u8], &[u8]) {
    let end = bytes.iter().position(|&b| b == b' ').unwrap_or(bytes.len());
    (&bytes[..end], &bytes[end..])
}

fn after_word(bytes: &[u8]) -> &[u8] {
    word(bytes).1
}

fn skip_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    &bytes[start..]
}

/// The text of a parameter as the other modes may show it: IRC formatting codes (bold, colour,
/// italics, underline, strike-through, monospace, reverse, reset) taken out with a colour's
/// digits, a CTCP's `\x01` kept for the caller, the rest sanitized.
pub fn text_of(bytes: &[u8]) -> String {
    // No formatting code and no CTCP marker (the common case): only sanitizing is left to do.
    // Every byte is looked at, with no early exit, so the check runs many bytes at a time.
    let uncoded = bytes
        .iter()
        .fold(true, |ok, &b| ok & (b >= 0x20 || b == b'\t'));
    if uncoded {
        return sanitize(bytes);
    }
    let mut plain = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            0x02 | 0x0f | 0x11 | 0x16 | 0x1d | 0x1e | 0x1f => i += 1,
            0x03 => {
                i += 1 + colour_len(&bytes[i + 1..]);
            }
            0x04 => {
                // A hex colour: six hex digits, maybe a comma and six more.
                i += 1;
                let hex = |s: &[u8]| s.len() >= 6 && s[..6].iter().all(u8::is_ascii_hexdigit);
                if hex(&bytes[i..]) {
                    i += 6;
                    if bytes.get(i) == Some(&b',') && hex(&bytes[i + 1..]) {
                        i += 7;
                    }
                }
            }
            0x01 => {
                plain.push(0x01);
                i += 1;
            }
            b => {
                plain.push(b);
                i += 1;
            }
        }
    }
    // The CTCP marker survives sanitizing as itself; everything else unsafe does not.
    let mut out = String::with_capacity(plain.len());
    for (n, part) in plain.split(|&b| b == 0x01).enumerate() {
        if n > 0 {
            out.push('\u{1}');
        }
        out.push_str(&sanitize(part));
    }
    out
}

/// Bytes of the colour digits after a `\x03`: up to two, then a comma and up to two more.
fn colour_len(bytes: &[u8]) -> usize {
    let digits = |s: &[u8]| s.iter().take(2).take_while(|b| b.is_ascii_digit()).count();
    let fg = digits(bytes);
    if fg == 0 {
        return 0;
    }
    if bytes.get(fg) == Some(&b',') {
        let bg = digits(&bytes[fg + 1..]);
        if bg > 0 {
            return fg + 1 + bg;
        }
    }
    fg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(command: &str, params: &[&str]) -> Option<Message> {
        Some(Message {
            command: command.into(),
            params: params.iter().map(|p| p.to_string()).collect(),
        })
    }

    #[test]
    fn lines_end_in_lf_crlf_or_cr_and_wait_for_their_end() {
        assert_eq!(next_line(b"NICK a"), Framed::Partial);
        assert_eq!(
            next_line(b"NICK a\r\nUSER"),
            Framed::Line {
                line: b"NICK a",
                used: 8
            }
        );
        assert_eq!(
            next_line(b"NICK a\nX"),
            Framed::Line {
                line: b"NICK a",
                used: 7
            }
        );
        assert_eq!(next_line(b"NICK a\r"), Framed::Partial, "its LF may follow");
        assert_eq!(
            next_line(b"NICK a\rX"),
            Framed::Line {
                line: b"NICK a",
                used: 7
            }
        );
    }

    #[test]
    fn the_limits_are_512_bytes_and_8191_of_tags() {
        let ok = format!("PRIVMSG #a :{}\r\n", "x".repeat(510 - 12));
        assert_eq!(ok.len(), 512);
        assert!(matches!(next_line(ok.as_bytes()), Framed::Line { .. }));
        let long = format!("PRIVMSG #a :{}\r\n", "x".repeat(511 - 12));
        assert_eq!(
            next_line(long.as_bytes()),
            Framed::TooLong {
                used: 513,
                ended: true
            }
        );
        let tags = format!("@{} {ok}", "t".repeat(8189));
        assert!(matches!(next_line(tags.as_bytes()), Framed::Line { .. }));
        let tags = format!("@{} {ok}", "t".repeat(8190));
        assert!(matches!(next_line(tags.as_bytes()), Framed::TooLong { .. }));
        let endless = vec![b'x'; 9000];
        assert_eq!(
            next_line(&endless),
            Framed::TooLong {
                used: 9000,
                ended: false
            }
        );
    }

    #[test]
    fn a_line_is_a_command_and_parameters_with_tags_and_source_ignored() {
        assert_eq!(parse(b"nick alice"), msg("NICK", &["alice"]));
        assert_eq!(
            parse(b"USER al 0 * :Alice Liddell"),
            msg("USER", &["al", "0", "*", "Alice Liddell"])
        );
        assert_eq!(
            parse(b"@a=b;c :me!u@h PRIVMSG  #x   :hi  there "),
            msg("PRIVMSG", &["#x", "hi  there "])
        );
        assert_eq!(parse(b"PRIVMSG #x :"), msg("PRIVMSG", &["#x", ""]));
        assert_eq!(parse(b"CAP LS 302"), msg("CAP", &["LS", "302"]));
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"   "), None);
        assert_eq!(parse(b"@tags :source"), None);
        let many = "A ".repeat(20);
        let parsed = parse(format!("X {many}").as_bytes()).expect("a message");
        assert_eq!(parsed.params.len(), MAX_PARAMS);
        assert_eq!(parsed.params[14], "A A A A A A ");
    }

    #[test]
    fn formatting_codes_go_and_controls_are_replaced_but_ctcp_stays() {
        assert_eq!(
            text_of(b"\x02bold\x02 \x0304,12red\x03 \x1fu\x0f"),
            "bold red u"
        );
        assert_eq!(text_of(b"\x0399 \x03,x"), " ,x");
        assert_eq!(text_of(b"\x04ff00aa,00ff00hex"), "hex");
        assert_eq!(text_of(b"\x01ACTION waves\x01"), "\u{1}ACTION waves\u{1}");
        assert_eq!(text_of(b"a\x07b\xffc"), "a\u{FFFD}b\u{FFFD}c");
    }

    #[test]
    fn no_input_makes_the_parser_panic() {
        let mut seed = 0x1234_5678_9abc_def0_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            const SOME: &[u8] = b" :@\x01\x03\x0412,a\r\nNICK";
            let bytes: Vec<u8> = (0..len)
                .map(|i| SOME[((seed >> (i % 56)) % SOME.len() as u64) as usize])
                .collect();
            if let Framed::Line { line, .. } = next_line(&bytes) {
                let _ = parse(line);
            }
            let _ = text_of(&bytes);
        }
    }
}
