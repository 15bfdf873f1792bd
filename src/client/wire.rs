//! The client's socket and its buffers: frames from the server decoded, frames to it queued and
//! written without blocking. Shared by the line loop and the window; neither knows the bytes.

use std::io::{self, Read, Write};

use mio::{Interest, Registry, Token};

use crate::proto::framed::{ClientFrame, ServerFrame, ServerFrameDecoder, MAX_FRAME_CAP};
use crate::proto::DecodeError;

/// How much of what the server sends before its first frame is kept, to explain an early close.
const MAX_PREAMBLE: usize = 1024;
/// Bytes read from the socket per call.
const READ_CHUNK: usize = 16 * 1024;

/// What a read of the socket came to, after the frames it gave.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// Everything available was read; the connection is open.
    Open,
    /// The server closed the connection, or it was lost.
    Closed,
    /// The server sent bytes that are not a frame; nothing after them was decoded.
    Bad(DecodeError),
}

/// A registered, non-blocking connection to the server.
#[derive(Debug)]
pub struct Wire {
    socket: mio::net::TcpStream,
    token: Token,
    writable_interest: bool,
    decoder: ServerFrameDecoder,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    /// The first bytes from the server (1 KiB at most): its text, if it closes before any frame.
    preamble: Vec<u8>,
    read_buf: Vec<u8>,
}

impl Wire {
    /// Registers `socket` under `token`: readable, and writable too while `connecting` (a connect
    /// in progress is finished when the socket turns writable).
    pub fn new(
        mut socket: mio::net::TcpStream,
        registry: &Registry,
        token: Token,
        connecting: bool,
    ) -> io::Result<Wire> {
        let interest = if connecting {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        registry.register(&mut socket, token, interest)?;
        Ok(Wire {
            socket,
            token,
            writable_interest: connecting,
            decoder: ServerFrameDecoder::new(MAX_FRAME_CAP),
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            preamble: Vec::new(),
            read_buf: vec![0; READ_CHUNK],
        })
    }

    /// For a connect in progress: `Ok(true)` once connected, `Ok(false)` while still under way, or
    /// why it failed.
    pub fn connected(&self) -> io::Result<bool> {
        if let Some(error) = self.socket.take_error()? {
            return Err(error);
        }
        match self.socket.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends small frames at once rather than waiting to fill a packet.
    pub fn set_nodelay(&self) -> io::Result<()> {
        self.socket.set_nodelay(true)
    }

    /// Reads what the server sent, appending each whole frame to `frames`.
    pub fn read(&mut self, frames: &mut Vec<ServerFrame>) -> ReadEnd {
        let mut chunk = std::mem::take(&mut self.read_buf);
        let end = loop {
            match self.socket.read(&mut chunk) {
                Ok(0) => break ReadEnd::Closed,
                Ok(n) => {
                    if let Err(error) = self.take_bytes(&chunk[..n], frames) {
                        break ReadEnd::Bad(error);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break ReadEnd::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break ReadEnd::Closed,
            }
        };
        self.read_buf = chunk;
        end
    }

    fn take_bytes(
        &mut self,
        bytes: &[u8],
        frames: &mut Vec<ServerFrame>,
    ) -> Result<(), DecodeError> {
        if self.preamble.len() < MAX_PREAMBLE {
            let room = MAX_PREAMBLE - self.preamble.len();
            self.preamble
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        self.inbuf.extend_from_slice(bytes);
        let mut start = 0;
        let result = loop {
            let step = self.decoder.decode(&self.inbuf[start..]);
            start += step.used;
            match step.item {
                None => break Ok(()),
                Some(Ok(frame)) => frames.push(frame),
                Some(Err(error)) => break Err(error),
            }
        };
        self.inbuf.drain(..start);
        result
    }

    /// Queues `frame` to be written by the next [`Wire::flush`].
    pub fn send(&mut self, frame: &ClientFrame) {
        frame.encode(&mut self.outbuf);
    }

    /// Writes what is queued; WRITABLE interest only while some is left. `false` if the socket is
    /// gone.
    pub fn flush(&mut self, registry: &Registry) -> bool {
        while !self.outbuf.is_empty() {
            match self.socket.write(&self.outbuf) {
                Ok(0) => return false,
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        let writable = !self.outbuf.is_empty();
        if writable != self.writable_interest {
            let interest = if writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if registry
                .reregister(&mut self.socket, self.token, interest)
                .is_err()
            {
                return false;
            }
            self.writable_interest = writable;
        }
        true
    }

    /// What the server sent before its first frame (1 KiB at most).
    pub fn preamble(&self) -> &[u8] {
        &self.preamble
    }
}
