//! One client connection as the shell sees it: socket, identity, buffers, and whether it is closing.

use std::net::IpAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::Interest;

use super::flood::Allowance;
use super::outqueue::OutQueue;
use crate::core::ConnId;
use crate::proto::{Decoder, Limits};

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
    /// Decoding state for its input.
    pub decoder: Decoder,
    /// Received bytes not yet decoded (a partial line or frame).
    pub inbuf: Vec<u8>,
    /// Encoded output not yet written.
    pub out: OutQueue,
    /// While in the room: the number of the first room broadcast not yet taken into `out`.
    pub room: Option<u64>,
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
        peer: IpAddr,
        limits: Limits,
        allowance: Allowance,
    ) -> Connection {
        Connection {
            socket,
            id,
            peer,
            decoder: Decoder::new(limits),
            inbuf: Vec::new(),
            out: OutQueue::default(),
            room: None,
            closing: None,
            writable_interest: false,
            readable: false,
            over_soft_since: None,
            last_heard: allowance.since(),
            pings_unanswered: 0,
            allowance,
        }
    }

    /// The interest it should be registered with: WRITABLE only while output is pending.
    pub fn wanted_interest(&self) -> Interest {
        if self.out.is_empty() {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        }
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
