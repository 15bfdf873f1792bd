//! A connection refused when it is accepted (the server is full, its address has too many), told
//! why in the form its client reads: an HTTP client gets `503 Service Unavailable`, an IRC client
//! `ERROR :...`, a chat client a reject frame, a person at nc or telnet the `[!]` line. As for a
//! connection let in, the mode is told from the first bytes ([`sniff`]), and silence (the caller's
//! timer, the greeting delay) makes it text.
//!
//! No TLS handshake is made for a refusal: it costs the server about as much as the rest of a
//! connection's opening, and a flood of refused connections must stay cheap. A ClientHello gets a
//! fatal `internal_error` alert in the clear instead (what a TLS client can read before any
//! handshake), so a browser or `openssl s_client` reports an alert from the server, not garbage.
//!
//! A refusal keeps no buffer: the first [`sniff::MAX_PROBE`] bytes, and for HTTP the last two
//! of the request head (to find its end; the answer waits for it, so that no unread request is
//! left in the socket to turn the close into a reset), at most [`MAX_HEAD`] bytes of it.

use super::http;
use super::sniff::{self, Sniffed, Verdict};
use crate::proto::irc::{IrcContext, IrcWire};
use crate::proto::msg::{Reject, ServerMsg};
use crate::proto::{self, Mode};

/// The most bytes of a request head read (and dropped) before a refused HTTP client is answered
/// all the same.
pub const MAX_HEAD: usize = http::MAX_HEAD;

/// A TLS alert record in the clear, as a server sends it before any handshake: fatal (2),
/// `internal_error` (80). (The record version 0x0303 is what TLS 1.2 and 1.3 both write.)
pub const TLS_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 80];

/// One refused connection's state: why it is refused and what its first bytes said.
#[derive(Debug)]
pub struct Refusal {
    reject: Reject,
    /// Accepted on the IRC listener: IRC whatever it sends (TLS aside).
    irc_only: bool,
    irc: &'static IrcContext,
    probe: [u8; sniff::MAX_PROBE],
    probed: usize,
    /// The mode, once the first bytes told it.
    mode: Option<Sniffed>,
    /// HTTP: how many bytes of the head came, and the last two of them.
    head_seen: usize,
    tail: [u8; 2],
}

impl Refusal {
    /// A connection refused for `reject`; `irc_only` if it came to the IRC listener, whose IRC
    /// names are `irc`.
    pub fn new(reject: Reject, irc_only: bool, irc: &'static IrcContext) -> Refusal {
        Refusal {
            reject,
            irc_only,
            irc,
            probe: [0; sniff::MAX_PROBE],
            probed: 0,
            mode: None,
            head_seen: 0,
            tail: [0; 2],
        }
    }

    /// Why the connection is refused.
    pub fn reject(&self) -> &Reject {
        &self.reject
    }

    /// Takes bytes the peer sent; returns the answer once they tell what it should be (then
    /// write it and close), `None` while more could still change it.
    pub fn receive(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let mut rest = bytes;
        if self.mode.is_none() {
            let take = rest.len().min(sniff::MAX_PROBE - self.probed);
            self.probe[self.probed..self.probed + take].copy_from_slice(&rest[..take]);
            self.probed += take;
            let probe = &self.probe[..self.probed];
            self.mode = match (self.irc_only, sniff::sniff(probe)) {
                (_, Verdict::Is(Sniffed::Tls)) => Some(Sniffed::Tls),
                (true, _) if !probe.is_empty() => Some(Sniffed::Irc),
                (_, Verdict::Is(mode)) => Some(mode),
                (_, Verdict::Undecided) => None,
            };
            if self.mode != Some(Sniffed::Http) {
                // What the probe took is not looked at again: it holds no end of a head.
                rest = &rest[take..];
            }
        }
        match self.mode? {
            Sniffed::Http if !self.head_ends(rest) => None,
            mode => Some(self.answer(mode)),
        }
    }

    /// The answer once the peer has been silent until the deadline (or ended its stream): by what
    /// its bytes said, text if they said nothing.
    pub fn silence(&self) -> Vec<u8> {
        let probe = &self.probe[..self.probed];
        let mode = match self.mode {
            Some(mode) => mode,
            None if self.irc_only => Sniffed::Irc,
            None => sniff::after_silence(probe),
        };
        self.answer(mode)
    }

    /// Counts `bytes` of an HTTP request head; returns whether the head has ended (its blank
    /// line, CRLF or bare LF) or reached [`MAX_HEAD`].
    fn head_ends(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            let [c, d] = self.tail;
            // A line feed after an empty line: LF LF, or LF CR LF.
            if b == b'\n' && (d == b'\n' || (d == b'\r' && c == b'\n')) {
                return true;
            }
            self.tail = [d, b];
            self.head_seen += 1;
            if self.head_seen >= MAX_HEAD {
                return true;
            }
        }
        false
    }

    /// The bytes that tell a client speaking `mode` why it is refused.
    fn answer(&self, mode: Sniffed) -> Vec<u8> {
        let msg = ServerMsg::Reject(self.reject.clone());
        let mode = match mode {
            Sniffed::Tls => return TLS_ALERT.to_vec(),
            Sniffed::Http => {
                let head_only = self.probe[..self.probed].starts_with(b"HEAD ");
                return http::refused(&self.reject, head_only);
            }
            Sniffed::Text => Mode::Text,
            Sniffed::Framed => Mode::Framed,
            Sniffed::Irc => Mode::Irc(IrcWire {
                tags: false,
                away_notify: false,
                ctx: self.irc,
            }),
        };
        let mut out = Vec::new();
        proto::encode(mode, &msg, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::framed::{self, ServerFrame};

    fn full(irc_only: bool) -> Refusal {
        let ctx = IrcContext::leak("irc.test", "#lobby", 0, true);
        Refusal::new(Reject::ServerFull, irc_only, ctx)
    }

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).expect("text")
    }

    #[test]
    fn silence_is_text_and_typed_text_is_answered_at_once() {
        assert_eq!(
            full(false).silence(),
            b"[!] server full, try again later\r\n"
        );
        let mut typed = full(false);
        assert_eq!(
            typed.receive(b"bob\n").as_deref(),
            Some(&b"[!] server full, try again later\r\n"[..])
        );
        // A prefix of a protocol word waits; silence then makes it text.
        let mut prefix = full(false);
        assert_eq!(prefix.receive(b"GE"), None);
        assert!(prefix.silence().starts_with(b"[!] server full"));
    }

    #[test]
    fn an_http_request_gets_503_once_its_head_has_ended_split_anywhere() {
        let request = b"GET / HTTP/1.1\r\nHost: chat.example\r\n\r\n";
        for split in 0..request.len() {
            let mut refusal = full(false);
            let (a, b) = request.split_at(split);
            let first = refusal.receive(a);
            assert_eq!(first, None, "answered after {split} bytes");
            let answer = refusal.receive(b).expect("an answer at the head's end");
            let answer = text(&answer);
            assert!(
                answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
                "{answer}"
            );
            assert!(answer.contains("\r\nRetry-After: "), "{answer}");
            assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
            assert!(
                answer.ends_with("\r\n\r\n503 Service Unavailable: server full, try again later\n"),
                "{answer}"
            );
        }
        // Bare line feeds end a head too; HEAD gets no body; an endless head is cut.
        let mut bare = full(false);
        assert!(bare.receive(b"GET / HTTP/1.0\n\n").is_some());
        let mut head = full(false);
        let answer = head.receive(b"HEAD / HTTP/1.1\r\n\r\n").expect("an answer");
        assert!(text(&answer).ends_with("Connection: close\r\n\r\n"));
        let mut endless = full(false);
        assert_eq!(endless.receive(b"GET /"), None);
        let long = vec![b'a'; MAX_HEAD];
        assert!(endless.receive(&long).is_some());
        // Cut short by the deadline: answered as HTTP all the same.
        let mut cut = full(false);
        assert_eq!(cut.receive(b"GET / HTTP/1.1\r\nHost: x"), None);
        assert!(text(&cut.silence()).starts_with("HTTP/1.1 503 "));
    }

    #[test]
    fn the_per_address_limit_has_no_retry_after_and_a_banned_address_gets_403() {
        let ctx = IrcContext::leak("irc.test", "#lobby", 0, true);
        let mut refusal = Refusal::new(Reject::TooManyFromAddress, false, ctx);
        let answer = refusal
            .receive(b"GET / HTTP/1.1\r\n\r\n")
            .expect("an answer");
        let answer = text(&answer);
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(!answer.contains("Retry-After"), "{answer}");
        assert!(answer.ends_with("too many connections from your address\n"));
        let banned = Reject::Banned {
            name: "192.0.2.7".into(),
            reason: None,
        };
        let mut refusal = Refusal::new(banned, false, ctx);
        let answer = refusal
            .receive(b"GET / HTTP/1.1\r\n\r\n")
            .expect("an answer");
        assert!(text(&answer).starts_with("HTTP/1.1 403 Forbidden\r\n"));
    }

    #[test]
    fn irc_framed_and_tls_clients_get_their_own_form() {
        let mut irc = full(false);
        assert_eq!(
            irc.receive(b"NICK bob\r\nUSER bob 0 * :Bob\r\n").as_deref(),
            Some(&b"ERROR :server full, try again later\r\n"[..])
        );
        // On the IRC listener anything (or nothing) is IRC.
        let mut listener = full(true);
        assert!(listener
            .receive(b"b")
            .expect("an answer")
            .starts_with(b"ERROR :"));
        assert!(full(true).silence().starts_with(b"ERROR :"));
        let mut framed = full(false);
        let answer = framed.receive(b"\x00\x00\x00\x02").expect("a frame");
        let mut decoder = framed::ServerFrameDecoder::new(framed::MAX_FRAME_CAP);
        let decoded = decoder.decode(&answer);
        assert_eq!(decoded.used, answer.len());
        match decoded.item {
            Some(Ok(ServerFrame::Error { code, text, .. })) => {
                assert_eq!(code, framed::error_code::SERVER_FULL);
                assert_eq!(text, "server full, try again later");
            }
            other => panic!("{other:?}"),
        }
        let mut tls = full(false);
        assert_eq!(
            tls.receive(b"\x16\x03\x01").as_deref(),
            Some(&TLS_ALERT[..])
        );
        assert_eq!(full(true).receive(b"\x16").as_deref(), Some(&TLS_ALERT[..]));
    }
}
