//! The input half of the shell: reading each socket through its transport, telling a new
//! connection's wire mode (and greeting it only then), and feeding decoded messages to the core.

use std::cmp::Reverse;
use std::io::{self, Read};

use super::conn::{Closing, Phase};
use super::stack::http::{self, Outcome, WebPolicy};
use super::stack::sniff::{self, Sniffed, Verdict};
use super::stack::{Transport, TransportError};
use super::wire::WireBytes;
use super::{Server, CLOSE_LINGER, MAX_MESSAGES_PER_TURN};
use crate::core::{Input, Now};
use crate::proto::irc::IrcWire;
use crate::proto::msg::{Reject, ServerMsg};
use crate::proto::Mode;

impl Server {
    /// Reads and decodes what `key` sent, feeding each message to the core, until the socket
    /// would block (or a read did not fill the buffer: [`super::conn::Connection::drained_by`]),
    /// the client's flood allowance runs out (then reading pauses and TCP slows the
    /// sender; nothing is dropped), or its share of this turn is used (then it waits on the ready
    /// list: with edge-triggered readiness no new event would come for bytes already there).
    pub(super) fn serve(&mut self, key: usize, now: &Now) {
        if let Some(Closing::Draining { .. }) = self.conns.get(key).and_then(|c| c.closing) {
            return self.drain(key);
        }
        let mut served = 0;
        let mut buf = std::mem::take(&mut self.read_buf);
        while self.decode_buffered(key, now, &mut served) {
            let Some(conn) = self
                .conns
                .get_mut(key)
                .filter(|c| c.closing.is_none() && c.readable)
            else {
                break;
            };
            match conn.socket.read(&mut buf) {
                Ok(0) => {
                    conn.readable = false;
                    self.peer_closed(key, now);
                }
                Ok(n) => {
                    if conn.drained_by(n, buf.len()) {
                        conn.readable = false;
                    }
                    self.counters.bytes_in += n as u64;
                    let was_tls = conn.transport.is_tls();
                    let received = match conn.receive(&buf[..n], self.tls.as_ref()) {
                        Ok(received) => received,
                        Err(error) => {
                            self.transport_failed(key, error);
                            continue;
                        }
                    };
                    conn.last_heard = now.instant;
                    conn.pings_unanswered = 0;
                    if !was_tls && conn.transport.is_tls() {
                        // A handshake has begun: it must be done within the name timeout.
                        let deadline = conn
                            .opening_deadline(self.config.greeting_delay, self.config.name_timeout);
                        self.openings.push(Reverse((deadline, key, conn.id)));
                    }
                    if received.handshake_done {
                        log::info!("{} TLS handshake done", conn.label());
                        // Inside TLS the client is sniffed again, and greeted after a silence.
                        conn.stage_began = now.instant;
                        let deadline = conn
                            .opening_deadline(self.config.greeting_delay, self.config.name_timeout);
                        self.openings.push(Reverse((deadline, key, conn.id)));
                    }
                    if received.answered {
                        self.dirty.push(key);
                        // Telnet answers count toward the output limits like any output.
                        self.check_queued(key, now);
                    }
                    self.sniff(key, now, false);
                    self.http(key, now);
                    if received.peer_closed {
                        self.peer_closed(key, now);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    self.close(key, Closing::Now, "closed by peer (connection reset)")
                }
                Err(e) => self.close(key, Closing::Now, format!("read failed: {e}")),
            }
        }
        self.read_buf = buf;
    }

    /// The peer ended its stream: what is queued for it is still written.
    fn peer_closed(&mut self, key: usize, now: &Now) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        // Nothing more comes: there is nothing to drain once the answer is written.
        conn.drain_on_close = false;
        // A message cut off by the end of the stream is dropped, never decoded.
        let why = match (conn.phase, conn.inbuf.len()) {
            (_, 0) if conn.transport.is_handshaking() => {
                "closed by peer during the TLS handshake".to_owned()
            }
            (_, 0) => "closed by peer".to_owned(),
            (Phase::Sniffing, n) => {
                format!("closed by peer after {n} bytes, before its mode was known")
            }
            (_, n) => format!("closed by peer, dropping {n} bytes of an unfinished message"),
        };
        let deadline = now.instant + CLOSE_LINGER;
        self.close(key, Closing::AfterFlush { deadline }, &why);
    }

    /// Closes `key` after its transport failed, writing a TLS alert first where there is one.
    fn transport_failed(&mut self, key: usize, error: TransportError) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let why = match error {
            TransportError::TlsNotEnabled => {
                "sent a TLS ClientHello, but this server has no TLS (start chatd with \
                 --tls-self-signed or --tls-cert and --tls-key)"
                    .to_owned()
            }
            TransportError::Tls(failure) => {
                // One try: the peer learns why if its socket takes the alert at once.
                let _ = io::Write::write(&mut conn.socket, &failure.alert);
                failure.why
            }
        };
        self.close_with(key, Closing::Now, log::Level::Warn, why);
    }

    /// Tells the mode of a sniffing connection from what it sent so far, or, once it has been
    /// `silent` past its deadline, takes it for text.
    pub(super) fn sniff(&mut self, key: usize, now: &Now, silent: bool) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        if conn.phase != Phase::Sniffing || conn.closing.is_some() {
            return;
        }
        if conn.transport.is_handshaking() {
            if silent {
                let why = format!(
                    "TLS handshake not finished within the name timeout ({} s)",
                    self.config.name_timeout.as_secs()
                );
                self.close_with(key, Closing::Now, log::Level::Warn, why);
            }
            return;
        }
        let found = if conn.irc_only && (silent || !matches!(conn.transport, Transport::Unknown)) {
            // Its listener is for IRC: no sniffing past TLS.
            Sniffed::Irc
        } else if silent {
            sniff::after_silence(&conn.inbuf)
        } else if matches!(conn.transport, Transport::Unknown) {
            return;
        } else {
            match sniff::sniff(&conn.inbuf) {
                Verdict::Undecided => return,
                Verdict::Is(found) => found,
            }
        };
        match found {
            Sniffed::Text => self.open(key, Mode::Text, now),
            Sniffed::Framed => self.open(key, Mode::Framed, now),
            Sniffed::Tls => self.refuse(key, now, Vec::new(), "a TLS handshake inside TLS"),
            Sniffed::Http => self.begin_http(key, now),
            Sniffed::Irc => {
                let wire = IrcWire {
                    tags: false,
                    away_notify: false,
                    ctx: self.irc,
                };
                self.open(key, Mode::Irc(wire), now)
            }
        }
    }

    /// Starts reading an HTTP request: its head must be whole within the name timeout.
    fn begin_http(&mut self, key: usize, now: &Now) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.phase = Phase::Http;
        let deadline = conn.opening_deadline(self.config.greeting_delay, self.config.name_timeout);
        self.openings.push(Reverse((deadline, key, conn.id)));
        self.http(key, now);
    }

    /// Answers the HTTP request of `key` once its head is whole: the page or a refusal (then it
    /// closes), or the WebSocket upgrade (then it opens in the web mode).
    fn http(&mut self, key: usize, now: &Now) {
        let tls_required = self.config.tls.as_ref().is_some_and(|tls| tls.required);
        let Some(conn) = self
            .conns
            .get_mut(key)
            .filter(|c| c.phase == Phase::Http && c.closing.is_none())
        else {
            return;
        };
        let policy = WebPolicy {
            hosts: &self.config.web_hosts,
            origins: &self.config.web_origins,
            tls_required,
        };
        match http::respond(&conn.inbuf, &policy, conn.transport.is_tls()) {
            Outcome::Partial => {}
            Outcome::Answer { bytes, status, why } => {
                let why = format!("HTTP {status}: {why}");
                self.refuse(key, now, bytes, why);
            }
            Outcome::Upgrade { bytes, head_len } => {
                conn.queue_bytes(bytes);
                self.dirty.push(key);
                conn.upgrade(head_len);
                log::info!("{} upgraded to WebSocket", conn.label());
                self.open(key, Mode::Web, now);
            }
        }
    }

    /// Opens `key` in `mode` and tells the core it is there (which greets it), unless this server
    /// takes TLS only and the connection is plain.
    fn open(&mut self, key: usize, mode: Mode, now: &Now) {
        let required = self.config.tls.as_ref().is_some_and(|tls| tls.required);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Transport::Unknown = conn.transport {
            conn.transport = Transport::Plain;
        }
        let secure = conn.transport.is_tls();
        if required && !secure {
            let port = self.config.listen.port();
            let refusal = ServerMsg::Reject(Reject::TlsRequired { port });
            let bytes = WireBytes::new(refusal).for_mode(mode).to_vec();
            return self.refuse(key, now, bytes, "a plain connection, and TLS is required");
        }
        if conn.open(mode) {
            self.dirty.push(key);
        }
        log::debug!("{} speaks {mode:?}", conn.label());
        let (conn, peer) = (conn.id, conn.peer());
        self.feed(now, Input::Connected { conn, peer, secure });
    }

    /// Refuses `key` before it reaches the core: `bytes` are written, then it is closed. (An HTTP
    /// answer, the page included, leaves the same way.)
    fn refuse(&mut self, key: usize, now: &Now, bytes: Vec<u8>, why: impl Into<String>) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        // An HTTP request may have a body, never read: it is drained once the answer is out.
        conn.drain_on_close = conn.phase == Phase::Http;
        conn.phase = Phase::Refused;
        conn.inbuf = Vec::new();
        if conn.queue_bytes(bytes) {
            self.dirty.push(key);
        }
        let deadline = now.instant + CLOSE_LINGER;
        self.close(key, Closing::AfterFlush { deadline }, why);
    }

    /// Sniffing connections whose deadline has come: silence makes them text, and an unfinished
    /// TLS handshake closes them.
    pub(super) fn check_openings(&mut self, now: &Now) {
        while let Some(&Reverse((at, key, id))) = self.openings.peek() {
            if at > now.instant {
                break;
            }
            self.openings.pop();
            let Some(conn) = self.conns.get(key).filter(|c| c.id == id) else {
                continue;
            };
            if !matches!(conn.phase, Phase::Sniffing | Phase::Http) {
                continue;
            }
            if conn.opening_deadline(self.config.greeting_delay, self.config.name_timeout)
                > now.instant
            {
                // The deadline moved on (a handshake or a request began); its own entry is in
                // the heap.
                continue;
            }
            if conn.phase == Phase::Http {
                if conn.closing.is_none() {
                    let why = format!(
                        "HTTP 408: request head not whole within the name timeout ({} s)",
                        self.config.name_timeout.as_secs()
                    );
                    self.refuse(key, now, http::timed_out(), why);
                }
                continue;
            }
            self.sniff(key, now, true);
            if self.key(id) == Some(key) {
                // Bytes sniffed as text while the connection waited are its first input.
                self.serve(key, now);
            }
        }
    }

    /// Feeds the whole messages buffered for `key` to the core. Returns whether it wants more
    /// bytes (false: paused, out of turn, or closing).
    pub(super) fn decode_buffered(&mut self, key: usize, now: &Now, served: &mut usize) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        match conn.phase {
            Phase::Open(_) => {}
            Phase::Sniffing | Phase::Http => return conn.closing.is_none(),
            Phase::Refused => return false,
        }
        let pending = std::mem::take(&mut conn.inbuf);
        let mut start = 0;
        let wants_more = loop {
            let Some(conn) = self.conns.get_mut(key).filter(|c| c.closing.is_none()) else {
                break false;
            };
            if start == pending.len() && !conn.holds_input() {
                break true;
            }
            if *served >= MAX_MESSAGES_PER_TURN {
                self.ready.push((key, conn.id));
                break false;
            }
            let id = conn.id;
            if self.cluster_holds_input(key, id, now.instant) {
                break false;
            }
            let Some(conn) = self.conns.get_mut(key) else {
                break false;
            };
            if let Some(policy) = self.config.flood.as_ref().filter(|_| !conn.makes_input()) {
                if let Err(back) = conn.allowance.take(now.instant, policy) {
                    self.counters.flood_pauses += 1;
                    self.paused.push(Reverse((back, key, conn.id)));
                    break false;
                }
            }
            let mut step = conn.decode(&pending[start..]);
            start += step.used;
            let conn = conn.id;
            if !step.reply.is_empty() {
                // An IRC session answered a line itself: after the room lines already due, so
                // that an answer comes in the order the lines were sent. (Taking them before
                // every line, answered or not, cut a member's batches into a few lines each.)
                let reply = std::mem::take(&mut step.reply);
                self.take_broadcasts(key, now);
                if let Some(c) = self.conns.get_mut(key) {
                    step.answered |= c.queue_bytes(reply);
                }
            }
            if step.answered {
                self.dirty.push(key);
                self.check_queued(key, now);
            }
            if let Some(why) = step.peer_closed {
                let deadline = now.instant + CLOSE_LINGER;
                self.close(key, Closing::AfterFlush { deadline }, why);
                break false;
            }
            match step.item {
                // A WebSocket ping or pong: it used its allowance, as a message does.
                None if step.control => *served += 1,
                None => {
                    // The allowance taken was not needed: nothing whole was there.
                    if let (Some(policy), Some(c)) = (&self.config.flood, self.conns.get_mut(key)) {
                        c.allowance.give_back(policy);
                    }
                    break true;
                }
                Some(item) => {
                    *served += 1;
                    let input = match item {
                        Ok(msg) => {
                            self.counters.messages_in += 1;
                            Input::Message { conn, msg }
                        }
                        Err(error) => Input::BadInput { conn, error },
                    };
                    self.feed(now, input);
                }
            }
        };
        if let Some(conn) = self.conns.get_mut(key) {
            let mut pending = pending;
            pending.drain(..start);
            // Nothing left over (the usual case): an idle connection keeps no input buffer.
            conn.inbuf = if pending.is_empty() {
                Vec::new()
            } else {
                pending
            };
        }
        wants_more
    }
}
