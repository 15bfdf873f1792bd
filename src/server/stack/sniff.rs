//! Which wire mode a connection speaks, told from its first bytes, as a port multiplexer tells
//! protocols apart: a TLS ClientHello, a frame, an HTTP request and an IRC registration each start
//! in a way no person typing a name does. The same rules run again on the plaintext inside TLS.
//!
//! Every probe needs at most [`MAX_PROBE`] bytes. A client that waits for the server to speak
//! first (nc, telnet) sends nothing, so silence is decided by the caller's timer: it is text.

/// What a connection's first bytes say it speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// A TLS record (0x16: a handshake, which a ClientHello is).
    Tls,
    /// A chat client's frame (0x00 starts every frame).
    Framed,
    /// An HTTP request (`GET `, `HEAD `, `POST ` or `PUT `).
    Http,
    /// An IRC client registering (`CAP `, `NICK `, `PASS ` or `USER `).
    Irc,
    /// Anything else: lines of text.
    Text,
}

/// The outcome of looking at the bytes received so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The bytes so far could still start more than one mode: wait for more, or for silence.
    Undecided,
    /// They can only be this mode.
    Is(Sniffed),
}

/// The most bytes any rule needs to decide.
pub const MAX_PROBE: usize = 5;

/// How the line-based protocols start: the word and the space after it.
const LINE_STARTS: [(&[u8], Sniffed); 8] = [
    (b"GET ", Sniffed::Http),
    (b"HEAD ", Sniffed::Http),
    (b"POST ", Sniffed::Http),
    (b"PUT ", Sniffed::Http),
    (b"CAP ", Sniffed::Irc),
    (b"NICK ", Sniffed::Irc),
    (b"PASS ", Sniffed::Irc),
    (b"USER ", Sniffed::Irc),
];

/// What `bytes`, the first a connection sent (or the first plaintext inside TLS), say it speaks.
pub fn sniff(bytes: &[u8]) -> Verdict {
    match bytes.first() {
        None => Verdict::Undecided,
        Some(0x16) => Verdict::Is(Sniffed::Tls),
        Some(0x00) => Verdict::Is(Sniffed::Framed),
        Some(_) => {
            let mut could_be = false;
            for (start, mode) in LINE_STARTS {
                if bytes.starts_with(start) {
                    return Verdict::Is(mode);
                }
                could_be |= start.starts_with(bytes);
            }
            if could_be {
                Verdict::Undecided
            } else {
                Verdict::Is(Sniffed::Text)
            }
        }
    }
}

/// What `bytes` speak once the peer has gone quiet: text, unless they already say otherwise.
pub fn after_silence(bytes: &[u8]) -> Sniffed {
    match sniff(bytes) {
        Verdict::Is(mode) => mode,
        Verdict::Undecided => Sniffed::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_is_told_by_its_first_bytes() {
        let cases: [(&[u8], Sniffed); 13] = [
            (b"\x16\x03\x01\x02\x00", Sniffed::Tls),
            (b"\x16", Sniffed::Tls),
            (b"\x00\x00\x00\x05\x01", Sniffed::Framed),
            (b"GET / HTTP/1.1\r\n", Sniffed::Http),
            (b"POST /ws HTTP/1.1\r\n", Sniffed::Http),
            (b"CAP LS 302\r\n", Sniffed::Irc),
            (b"NICK alice\r\n", Sniffed::Irc),
            (b"PASS secret\r\n", Sniffed::Irc),
            (b"USER a 0 * :A\r\n", Sniffed::Irc),
            (b"alice\n", Sniffed::Text),
            (b"\xff\xfd\x03", Sniffed::Text),
            (b"GETTY\n", Sniffed::Text),
            (b"Nick\n", Sniffed::Text),
        ];
        for (bytes, mode) in cases {
            assert_eq!(sniff(bytes), Verdict::Is(mode), "{bytes:?}");
        }
    }

    #[test]
    fn a_prefix_of_a_protocol_word_waits_and_silence_makes_it_text() {
        for bytes in [&b""[..], b"G", b"GE", b"GET", b"NIC", b"NICK", b"US", b"C"] {
            assert_eq!(sniff(bytes), Verdict::Undecided, "{bytes:?}");
            assert_eq!(after_silence(bytes), Sniffed::Text);
        }
        assert_eq!(after_silence(b"\x00"), Sniffed::Framed);
    }

    #[test]
    fn no_rule_needs_more_than_the_probe_length() {
        for (start, _) in LINE_STARTS {
            assert!(start.len() <= MAX_PROBE);
        }
        let mut bytes = b"NICK".to_vec();
        bytes.push(b'x');
        assert_eq!(sniff(&bytes), Verdict::Is(Sniffed::Text));
    }
}
