//! One client connection as the shell sees it: socket, identity, buffers, and whether it is closing.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::Interest;
use rustls::ServerConfig;

use super::fanout::Cursors;
use super::flood::Allowance;
use super::outqueue::OutQueue;
use super::stack::ws::{Ws, WsFailure, WsItem};
use super::stack::{Transport, TransportError};
use crate::core::ConnId;
use crate::proto::irc::IrcSession;
use crate::proto::telnet::Telnet;
use crate::proto::{web, ClientMsg, DecodeError, Decoder, Limits, Mode, ServerMsg};

/// What a client socket is registered for while nothing waits to be written: READABLE, and on
/// Linux PRIORITY too, so that an event tells of urgent (out-of-band) data, which can end a read
/// early ([`Connection::read_ready`]).
#[cfg(target_os = "linux")]
pub const READ_INTEREST: Interest = Interest::READABLE.add(Interest::PRIORITY);
/// What a client socket is registered for while nothing waits to be written.
#[cfg(not(target_os = "linux"))]
pub const READ_INTEREST: Interest = Interest::READABLE;

/// Where a connection is in its opening.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Its wire mode is not known yet (its first bytes, or its TLS handshake, are awaited):
    /// input waits in `inbuf`, and the core has not been told of it.
    Sniffing,
    /// It sent an HTTP request whose head is awaited (within the name timeout): the core has
    /// not been told of it; it is answered and closed, or upgraded to the web mode.
    Http,
    /// It speaks this mode, and the core knows it.
    Open(Mode),
    /// It was refused before it reached the core: only the refusal is written, nothing is read.
    Refused,
}

/// What taking bytes from the socket did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Received {
    /// Output was queued (a telnet answer, a TLS handshake message).
    pub answered: bool,
    /// The TLS handshake finished.
    pub handshake_done: bool,
    /// The peer ended its TLS stream.
    pub peer_closed: bool,
}

/// When a closing connection may be dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closing {
    /// At once; queued output is dropped (errors, slow consumers, forced shutdown).
    Now,
    /// Once the output queue is empty, or at `deadline`, whichever comes first.
    AfterFlush {
        /// The latest time to drop it.
        deadline: Instant,
    },
    /// Its answer is written and its sending side shut: what the peer still sends (a request
    /// body) is read and dropped until it closes, `left` more bytes have come, or `deadline`, so
    /// that closing with unread bytes does not reset the connection under the answer.
    Draining {
        /// The latest time to drop it.
        deadline: Instant,
        /// How many more bytes are read before it is dropped anyway.
        left: usize,
    },
}

/// A client socket and its state in the shell.
#[derive(Debug)]
pub struct Connection {
    /// The socket, registered under the slab key as its token.
    pub socket: TcpStream,
    /// The identity the core knows it by.
    pub id: ConnId,
    /// The peer's address and port.
    pub addr: SocketAddr,
    /// TLS or plain, once the first byte has said.
    pub transport: Transport,
    /// Sniffing, open in a mode, or refused.
    pub phase: Phase,
    /// When the current stage of its opening began: its accept, or the end of its TLS
    /// handshake. Its opening deadlines count from here ([`Connection::opening_deadline`]).
    pub stage_began: Instant,
    /// Why it is closing (the first reason given), and how loudly to log its disconnect line
    /// (boxed: set once, at the end of a connection's life).
    pub why: Option<Box<(log::Level, String)>>,
    /// Decoding state for its input.
    pub decoder: Decoder,
    /// Received plaintext not yet decoded (a partial line or frame; while sniffing, everything so
    /// far); telnet commands already taken out of a text connection's.
    pub inbuf: Vec<u8>,
    /// The telnet layer in front of a text connection's decoder.
    pub telnet: Telnet,
    /// The WebSocket layer of a web connection (boxed: most connections have none).
    pub ws: Option<Box<Ws>>,
    /// The IRC state of an IRC connection: registration, capabilities, nick (boxed, as `ws`).
    pub irc: Option<Box<IrcSession>>,
    /// Accepted on `--listen-irc`: IRC whatever its first bytes.
    pub irc_only: bool,
    /// Encoded output not yet written.
    pub out: OutQueue,
    /// The rooms it is in, each with the number of the first broadcast to it not yet taken into
    /// `out` (none until it has joined the default room).
    pub rooms: Cursors,
    /// Set once the connection is on its way out; it is no longer read.
    pub closing: Option<Closing>,
    /// Whether the socket is registered for WRITABLE as well as READABLE.
    pub writable_interest: bool,
    /// When bytes last came from the peer.
    pub last_heard: Instant,
    /// Keepalive pings sent since then.
    pub pings_unanswered: u8,
    /// Since when more than the soft limit has been queued, if it is.
    pub over_soft_since: Option<Instant>,
    /// Whether the socket may hold unread bytes (set by a readable event, cleared at WouldBlock,
    /// or by a read that did not fill the buffer: see [`Connection::drained_by`]).
    pub readable: bool,
    /// Whether it is read until WouldBlock (or its end) whatever each read gives: an event told
    /// of the end of its stream, an error or urgent data (see [`Connection::drained_by`]).
    pub read_all: bool,
    /// How many more messages it may send before reading pauses.
    pub allowance: Allowance,
    /// Whether it drains the peer's input once its answer is written, before it is dropped (an
    /// HTTP answer: the request may have a body the server never reads).
    pub drain_on_close: bool,
    /// Whether it no longer counts toward the per-address limit (it is draining).
    pub released: bool,
}

impl Connection {
    /// A connection for a freshly accepted socket.
    pub fn new(
        socket: TcpStream,
        id: ConnId,
        addr: SocketAddr,
        limits: Limits,
        allowance: Allowance,
    ) -> Connection {
        Connection {
            socket,
            id,
            addr,
            transport: Transport::Unknown,
            phase: Phase::Sniffing,
            stage_began: allowance.since(),
            why: None,
            decoder: Decoder::new(limits),
            inbuf: Vec::new(),
            telnet: Telnet::new(),
            ws: None,
            irc: None,
            irc_only: false,
            out: OutQueue::default(),
            rooms: Cursors::default(),
            closing: None,
            writable_interest: false,
            readable: false,
            read_all: false,
            over_soft_since: None,
            last_heard: allowance.since(),
            pings_unanswered: 0,
            allowance,
            drain_on_close: false,
            released: false,
        }
    }

    /// Takes bytes read from the socket: their plaintext goes to `inbuf`, a text connection's
    /// through the telnet layer, whose answers are queued.
    pub fn receive(
        &mut self,
        bytes: &[u8],
        tls: Option<&Arc<ServerConfig>>,
    ) -> Result<Received, TransportError> {
        if let Transport::Plain = self.transport {
            // The usual case: no copy on the way to the decoder's buffer.
            let answered = self.take_plaintext(bytes);
            return Ok(Received {
                answered,
                ..Received::default()
            });
        }
        let mut plain = Vec::new();
        let got = self.transport.receive(bytes, tls, &mut plain)?;
        let answered = self.take_plaintext(&plain) || self.transport.wants_write();
        Ok(Received {
            answered,
            handshake_done: got.handshake_done,
            peer_closed: got.peer_closed,
        })
    }

    /// The peer's address.
    pub fn peer(&self) -> IpAddr {
        self.addr.ip()
    }

    /// While it is opening, when it must be decided on: a silent connection is taken for text
    /// `greeting_delay` after its accept (or its TLS handshake); a TLS handshake or an HTTP
    /// request head must be done within `name_timeout`.
    pub fn opening_deadline(&self, greeting_delay: Duration, name_timeout: Duration) -> Instant {
        if self.phase == Phase::Http || self.transport.is_handshaking() {
            self.stage_began + name_timeout
        } else {
            self.stage_began + greeting_delay
        }
    }

    /// The wire mode, once it is open.
    pub fn mode(&self) -> Option<Mode> {
        match self.phase {
            // Its encoding follows the capabilities it has asked for so far.
            Phase::Open(Mode::Irc(_)) if self.irc.is_some() => {
                self.irc.as_ref().map(|irc| Mode::Irc(irc.wire()))
            }
            Phase::Open(mode) => Some(mode),
            Phase::Sniffing | Phase::Http | Phase::Refused => None,
        }
    }

    /// Opens it in `mode`: what it sent while being sniffed is that mode's input from now on.
    /// Returns whether output was queued (telnet answers).
    pub fn open(&mut self, mode: Mode) -> bool {
        self.phase = Phase::Open(mode);
        if let Mode::Irc(wire) = mode {
            self.irc = Some(Box::new(IrcSession::new(wire.ctx)));
        }
        if mode == Mode::Text {
            let sniffed = std::mem::take(&mut self.inbuf);
            return self.take_plaintext(&sniffed);
        }
        false
    }

    /// Takes plaintext into `inbuf` as the phase wants. Returns whether output was queued.
    fn take_plaintext(&mut self, bytes: &[u8]) -> bool {
        match self.phase {
            Phase::Refused => false,
            Phase::Sniffing
            | Phase::Http
            | Phase::Open(Mode::Framed | Mode::Web | Mode::Irc(_)) => {
                self.inbuf.extend_from_slice(bytes);
                false
            }
            Phase::Open(Mode::Text) => {
                let mut reply = Vec::new();
                let received = self.telnet.receive(bytes, &mut self.inbuf, &mut reply);
                if received.interrupted && !self.inbuf.contains(&b'\n') {
                    // The unfinished line was the over-long one being dropped: it ends here too.
                    self.decoder.interrupt();
                }
                self.queue_bytes(reply)
            }
        }
    }

    /// Upgrades it to WebSocket once its request head (`head_len` bytes of `inbuf`) is answered:
    /// what follows the head is its first frames.
    pub fn upgrade(&mut self, head_len: usize) {
        self.inbuf.drain(..head_len.min(self.inbuf.len()));
        let limits = self.decoder.limits();
        self.ws = Some(Box::new(Ws::new(
            limits.max_line.min(limits.max_before_join),
        )));
    }

    /// Lifts the tighter input limits of a connection without a name, now that it has joined.
    pub fn joined(&mut self) {
        self.decoder.joined();
        let max_line = self.decoder.limits().max_line;
        if let Some(ws) = &mut self.ws {
            ws.set_max_message(max_line);
        }
    }

    /// Whether the layers below the codec may hold whole messages not decoded yet, with no byte
    /// left in `inbuf`.
    pub fn holds_input(&self) -> bool {
        self.ws.as_ref().is_some_and(|ws| ws.holds_input()) || self.makes_input()
    }

    /// Whether the next message is one of its own layers' making (an IRC session's), not the
    /// peer's: flood control does not count it.
    pub fn makes_input(&self) -> bool {
        self.irc.as_ref().is_some_and(|irc| irc.holds_input())
    }

    /// Whether it wants its own chat lines back (an IRC client with `echo-message`).
    pub fn echoes(&self) -> bool {
        self.irc.as_ref().is_some_and(|irc| irc.echoes())
    }

    /// The bytes of `msg` for this connection alone, when its mode writes replies per user
    /// (IRC: numerics name the user); `None` for the shared bytes of its mode.
    pub fn encode_own(&mut self, msg: &ServerMsg) -> Option<Vec<u8>> {
        let irc = self.irc.as_mut()?;
        let mut out = Vec::new();
        irc.encode(msg, &mut out);
        Some(out)
    }

    /// Decodes the next message from the front of `input`, through the WebSocket layer for a
    /// web connection (whose answers to pings and to a close are queued here). An IRC session's
    /// own answer is not queued: it is in [`Step::reply`], for the shell to queue after the room
    /// lines already due.
    pub fn decode(&mut self, input: &[u8]) -> Step {
        if let Some(irc) = &mut self.irc {
            let mut reply = Vec::new();
            let step = irc.receive(input, &mut reply);
            return Step {
                used: step.used,
                item: step.item,
                control: step.taken,
                reply,
                ..Step::default()
            };
        }
        let Some(ws) = &mut self.ws else {
            let decoded = self.decoder.decode(input);
            return Step {
                used: decoded.used,
                item: decoded.item,
                ..Step::default()
            };
        };
        let mut reply = Vec::new();
        let step = ws.receive(input, &mut reply);
        let answered = self.queue_bytes(reply);
        let control = step.item == Some(WsItem::Control);
        let (item, peer_closed) = match step.item {
            None | Some(WsItem::Control) => (None, None),
            Some(WsItem::Text(text)) => (Some(web::decode(&text)), None),
            Some(WsItem::Binary) => (Some(Err(DecodeError::WebMessage)), None),
            Some(WsItem::Failed(WsFailure::TooLong { max })) => {
                (Some(Err(DecodeError::WebTooLong { max })), None)
            }
            Some(WsItem::Failed(WsFailure::Protocol(why))) => {
                log::debug!("{} WebSocket framing broke: {why}", self.label());
                (Some(Err(DecodeError::WebFraming)), None)
            }
            Some(WsItem::Failed(WsFailure::NotUtf8)) => (Some(Err(DecodeError::WebFraming)), None),
            Some(WsItem::Closed(code)) => {
                let code = code.map_or_else(|| "no code".to_owned(), |c| format!("code {c}"));
                (
                    None,
                    Some(format!("closed by peer (WebSocket close, {code})")),
                )
            }
        };
        Step {
            used: step.used,
            item,
            control,
            peer_closed,
            answered,
            reply: Vec::new(),
        }
    }

    /// Queues the WebSocket close frame that ends a web connection (`why` its reason; the code
    /// says going away when the server stops); after it, nothing more is queued. Returns whether
    /// bytes were queued.
    pub fn seal(&mut self, why: &str, shutdown: bool) -> bool {
        if let Some(irc) = &mut self.irc {
            // An IRC connection ends with an ERROR line, unless one was sent.
            let bytes = irc.seal(why);
            return self.queue_bytes(bytes);
        }
        let Some(ws) = &mut self.ws else {
            return false;
        };
        let bytes = ws.seal(why, shutdown);
        self.queue_bytes(bytes)
    }

    /// Whether nothing more may be queued for it: a WebSocket whose close frame is queued.
    pub fn is_sealed(&self) -> bool {
        self.ws.as_ref().is_some_and(|ws| ws.is_sealed())
    }

    /// Queues what the telnet layer sends ahead of `msg`: before a password prompt, a telnet
    /// client is asked not to echo. Returns whether output was queued.
    pub fn before_message(&mut self, msg: &ServerMsg) -> bool {
        if !msg.hides_input() || self.mode() != Some(Mode::Text) {
            return false;
        }
        let mut reply = Vec::new();
        self.telnet.hide_input(&mut reply);
        self.queue_bytes(reply)
    }

    /// Queues bytes of its own (a telnet answer, a refusal). Returns whether any were queued.
    pub fn queue_bytes(&mut self, bytes: Vec<u8>) -> bool {
        if bytes.is_empty() {
            return false;
        }
        self.out.push(Rc::from(bytes));
        true
    }

    /// The interest it should be registered with: WRITABLE only while output is pending.
    pub fn wanted_interest(&self) -> Interest {
        if !self.has_output() {
            READ_INTEREST
        } else {
            READ_INTEREST | Interest::WRITABLE
        }
    }

    /// Notes a readiness event for its socket: it may hold bytes, and whether a short read can
    /// still tell that it holds none ([`Connection::drained_by`]).
    pub fn read_ready(&mut self, event: &mio::event::Event) {
        self.readable = true;
        self.read_all |= event.is_read_closed() || event.is_error() || event.is_priority();
    }

    /// Whether a read of `n` bytes into a buffer of `room` leaves the socket empty for now, so
    /// that no read is needed until the next readiness event (each one that found it empty was
    /// a system call: a burst's senders made thousands).
    ///
    /// Why that holds on Linux (not on every system mio runs on, whose rule is to read until
    /// WouldBlock): mio registers the socket with epoll, edge-triggered (EPOLLET), and keeps no
    /// readiness of its own there. A TCP socket's read copies until the buffer is full or the
    /// receive queue is empty, so a read that gives fewer than `room` bytes (and more than 0)
    /// found the queue empty when it returned. Every segment added to the queue after that wakes
    /// the socket's waiters, which puts it back on epoll's ready list: the next `poll` reports
    /// it (epoll(7) on stream sockets says as much). Two things can end a read early with bytes
    /// still queued, and both are told by the event this connection was read after: urgent
    /// data (the read stops at its mark; PRIORITY is registered, [`READ_INTEREST`]) and the
    /// end of the stream (the FIN; read-closed), and so are errors; after any of them
    /// [`Connection::read_all`] keeps reading until WouldBlock or the end, as before. Anything of
    /// the kind that comes after the event was collected raises an event of its own. TLS changes
    /// nothing here: its records are in the bytes read (the layer decrypts every whole record it
    /// is given), and so are WebSocket frames.
    pub fn drained_by(&self, n: usize, room: usize) -> bool {
        cfg!(target_os = "linux") && !self.read_all && 0 < n && n < room
    }

    /// Whether anything waits to be written: queued messages, or the TLS layer's own bytes.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || self.transport.wants_write()
    }

    /// How its log lines start: `conn 12 127.0.0.1:51544`.
    pub fn label(&self) -> Label {
        Label(self.id, self.addr)
    }

    /// Whether it can be dropped now.
    pub fn is_done(&self, now: Instant) -> bool {
        match self.closing {
            None => false,
            Some(Closing::Now) => true,
            Some(Closing::AfterFlush { deadline }) => !self.has_output() || now >= deadline,
            Some(Closing::Draining { deadline, left }) => left == 0 || now >= deadline,
        }
    }

    /// Whether, now that it is done, it should drain its input first: its answer was written
    /// whole (not cut off by its deadline) and the peer has not closed.
    pub fn should_drain(&self) -> bool {
        self.drain_on_close
            && matches!(self.closing, Some(Closing::AfterFlush { .. }))
            && !self.has_output()
    }
}

/// One decoding step over a connection's input.
#[derive(Debug, Default)]
pub struct Step {
    /// Bytes of the input used up.
    pub used: usize,
    /// A message or a decoding error; `None` when more bytes are needed (or for a control frame).
    pub item: Option<Result<ClientMsg, DecodeError>>,
    /// A WebSocket ping or pong was taken: no message for the core, but one for flood control.
    pub control: bool,
    /// The peer ended the WebSocket (why, for the log); its close is answered.
    pub peer_closed: Option<String>,
    /// Output was queued (an answer to a ping or a close).
    pub answered: bool,
    /// An IRC session's answer of its own (a PONG, a refusal), not queued yet.
    pub reply: Vec<u8>,
}

/// The connection id for slab key `key`: the key in the low 32 bits, so the shell finds the slot
/// without a map, and a serial number above it, so a reused key never carries an old id.
pub fn conn_id(serial: u64, key: usize) -> ConnId {
    ConnId((serial << 32) | (key as u64 & 0xffff_ffff))
}

/// The slab key inside `id`.
pub fn key_of(id: ConnId) -> usize {
    (id.0 & 0xffff_ffff) as usize
}

/// A connection as its log lines name it: its id and the peer's address.
#[derive(Clone, Copy, Debug)]
pub struct Label(ConnId, SocketAddr);

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}
