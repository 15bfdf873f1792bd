//! One client connection as the shell sees it: socket, identity, buffers, and whether it is closing.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Instant;

use mio::net::TcpStream;
use mio::Interest;

use super::fanout::Cursors;
use super::flood::Allowance;
use super::outqueue::OutQueue;
use crate::core::ConnId;
use crate::proto::telnet::Telnet;
use crate::proto::{Decoder, Limits, Mode, ServerMsg};

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
}

/// A client socket and its state in the shell.
#[derive(Debug)]
pub struct Connection {
    /// The socket, registered under the slab key as its token.
    pub socket: TcpStream,
    /// The identity the core knows it by.
    pub id: ConnId,
    /// The peer's address.
    pub peer: IpAddr,
    /// The peer's address and port, for the log.
    pub addr: SocketAddr,
    /// Why it is closing (the first reason given), and how loudly to log its disconnect line.
    pub why: Option<(log::Level, String)>,
    /// Decoding state for its input.
    pub decoder: Decoder,
    /// Received bytes not yet decoded (a partial line or frame); telnet commands already taken out.
    pub inbuf: Vec<u8>,
    /// The telnet layer in front of a text connection's decoder.
    pub telnet: Telnet,
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
    /// Whether the socket may hold unread bytes (set by a readable event, cleared at WouldBlock).
    pub readable: bool,
    /// How many more messages it may send before reading pauses.
    pub allowance: Allowance,
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
            peer: addr.ip(),
            addr,
            why: None,
            decoder: Decoder::new(limits),
            inbuf: Vec::new(),
            telnet: Telnet::new(),
            out: OutQueue::default(),
            rooms: Cursors::default(),
            closing: None,
            writable_interest: false,
            readable: false,
            over_soft_since: None,
            last_heard: allowance.since(),
            pings_unanswered: 0,
            allowance,
        }
    }

    /// Takes bytes read from the socket into `inbuf`: a text connection's pass the telnet layer
    /// first, whose answers are queued. Returns whether output was queued.
    pub fn receive(&mut self, bytes: &[u8]) -> bool {
        let first = self.inbuf.first().or(bytes.first());
        let mode = self.decoder.mode().or(first.map(|&b| Mode::sniff(b)));
        if mode != Some(Mode::Text) {
            self.inbuf.extend_from_slice(bytes);
            return false;
        }
        let mut reply = Vec::new();
        let received = self.telnet.receive(bytes, &mut self.inbuf, &mut reply);
        if received.interrupted && !self.inbuf.contains(&b'\n') {
            // The unfinished line was the over-long one being dropped: it ends here too.
            self.decoder.interrupt();
        }
        self.queue_bytes(reply)
    }

    /// Queues what the telnet layer sends ahead of `msg`: before a password prompt, a telnet
    /// client is asked not to echo. Returns whether output was queued.
    pub fn before_message(&mut self, msg: &ServerMsg) -> bool {
        if !msg.hides_input() || self.decoder.mode() != Some(Mode::Text) {
            return false;
        }
        let mut reply = Vec::new();
        self.telnet.hide_input(&mut reply);
        self.queue_bytes(reply)
    }

    fn queue_bytes(&mut self, bytes: Vec<u8>) -> bool {
        if bytes.is_empty() {
            return false;
        }
        self.out.push(Rc::from(bytes));
        true
    }

    /// The interest it should be registered with: WRITABLE only while output is pending.
    pub fn wanted_interest(&self) -> Interest {
        if self.out.is_empty() {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        }
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
            Some(Closing::AfterFlush { deadline }) => self.out.is_empty() || now >= deadline,
        }
    }
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
