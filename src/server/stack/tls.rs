//! The TLS layer: a rustls server connection between the socket's bytes and the plaintext the
//! sniffer and the codecs read. It never touches the socket: the shell hands it what it read and
//! a sink to write to, and asks it whether it has bytes to send.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};

use super::super::outqueue::OutQueue;

/// Encrypted bytes rustls may hold for the socket before it takes no more plaintext: four full
/// records. What is queued for a connection waits in its [`OutQueue`] as shared plaintext and is
/// counted against the output limits there; this is only the part being encrypted and written.
const TLS_BUFFER: usize = 64 * 1024;

/// Why the TLS layer gave up on a connection.
#[derive(Debug)]
pub struct TlsFailure {
    /// What went wrong, for the log.
    pub why: String,
    /// The alert rustls queued for the peer, to write once before closing (may be empty).
    pub alert: Vec<u8>,
}

/// One connection's TLS session.
#[derive(Debug)]
pub struct Tls {
    session: ServerConnection,
}

/// What taking bytes from the peer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsReceived {
    /// The handshake finished with these bytes.
    pub handshake_done: bool,
    /// The peer sent close_notify: no more plaintext comes.
    pub peer_closed: bool,
}

impl Tls {
    /// A session for a connection whose first byte was a TLS handshake record.
    pub fn new(config: &Arc<ServerConfig>) -> Result<Tls, TlsFailure> {
        let mut session = ServerConnection::new(Arc::clone(config)).map_err(|e| TlsFailure {
            why: format!("TLS session could not start: {e}"),
            alert: Vec::new(),
        })?;
        session.set_buffer_limit(Some(TLS_BUFFER));
        Ok(Tls { session })
    }

    /// Takes `bytes` read from the socket; appends the plaintext they carried to `plain`.
    pub fn receive(
        &mut self,
        bytes: &[u8],
        plain: &mut Vec<u8>,
    ) -> Result<TlsReceived, TlsFailure> {
        let was_handshaking = self.session.is_handshaking();
        let mut rest = bytes;
        let mut received = TlsReceived::default();
        while !rest.is_empty() {
            if let Err(e) = self.session.read_tls(&mut rest) {
                return Err(self.failure(format!("TLS input refused: {e}")));
            }
            let state = match self.session.process_new_packets() {
                Ok(state) => state,
                Err(e) => return Err(self.failure(describe(&e))),
            };
            let readable = state.plaintext_bytes_to_read();
            if readable > 0 {
                let start = plain.len();
                plain.resize(start + readable, 0);
                if let Err(e) = self.session.reader().read_exact(&mut plain[start..]) {
                    plain.truncate(start);
                    return Err(self.failure(format!("TLS plaintext lost: {e}")));
                }
            }
            if state.peer_has_closed() {
                received.peer_closed = true;
                break;
            }
        }
        received.handshake_done = was_handshaking && !self.session.is_handshaking();
        Ok(received)
    }

    /// Whether the handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// Whether it holds encrypted bytes for the socket.
    pub fn wants_write(&self) -> bool {
        self.session.wants_write()
    }

    /// The name the client asked for (SNI), if any.
    pub fn server_name(&self) -> Option<&str> {
        self.session.server_name()
    }

    /// Encrypts what `out` holds (once the handshake is done) into as few records as its
    /// messages fill, and writes them to `socket` until everything is written or it would block.
    pub fn write(&mut self, out: &mut OutQueue, socket: &mut impl Write) -> io::Result<()> {
        loop {
            if !self.session.is_handshaking() && !out.is_empty() {
                out.write_to(&mut Plaintext(&mut self.session))?;
            }
            if !self.session.wants_write() {
                return Ok(());
            }
            while self.session.wants_write() {
                match self.session.write_tls(socket) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if out.is_empty() {
                return Ok(());
            }
        }
    }

    /// Queues close_notify, so the peer knows the end of the stream is not a cut.
    pub fn close_notify(&mut self) {
        self.session.send_close_notify();
    }

    fn failure(&mut self, why: String) -> TlsFailure {
        let mut alert = Vec::new();
        while self.session.wants_write() {
            if self.session.write_tls(&mut alert).is_err() {
                break;
            }
        }
        TlsFailure { why, alert }
    }
}

/// A rustls error as the log shows it.
fn describe(error: &rustls::Error) -> String {
    match error {
        rustls::Error::AlertReceived(alert) => format!("TLS alert from the client: {alert:?}"),
        other => format!("TLS handshake failed: {other}"),
    }
}

/// The session's plaintext side as a sink that says "would block" when its buffer is full, so an
/// [`OutQueue`] keeps the rest.
struct Plaintext<'a>(&'a mut ServerConnection);

impl Write for Plaintext<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.0.writer().write_vectored(bufs)? {
            0 if bufs.iter().any(|b| !b.is_empty()) => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
