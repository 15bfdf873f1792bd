//! The client's socket and its buffers: frames from the server decoded, frames to it queued and
//! written without blocking, through a [`TlsLayer`] when the connection is TLS. Shared by the
//! line loop and the window; neither knows the bytes.

use std::io::{self, Read, Write};

use mio::{Interest, Registry, Token};

use super::tls::{TlsFailure, TlsLayer};
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
    /// TLS failed: the handshake, the certificate, or a record.
    Tls(TlsFailure),
}

/// A registered, non-blocking connection to the server.
#[derive(Debug)]
pub struct Wire {
    socket: mio::net::TcpStream,
    token: Token,
    writable_interest: bool,
    /// The TLS session, on a TLS connection.
    tls: Option<TlsLayer>,
    /// Plaintext from the TLS session, not yet decoded.
    plain: Vec<u8>,
    decoder: ServerFrameDecoder,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    /// The first bytes from the server (1 KiB at most): its text, if it closes before any frame.
    preamble: Vec<u8>,
    read_buf: Vec<u8>,
}

impl Wire {
    /// Registers `socket` under `token`: readable, and writable too while `connecting` (a connect
    /// in progress is finished when the socket turns writable). With `tls`, frames go through it.
    pub fn new(
        mut socket: mio::net::TcpStream,
        registry: &Registry,
        token: Token,
        connecting: bool,
        tls: Option<TlsLayer>,
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
            tls,
            plain: Vec::new(),
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
                Ok(0) => break self.socket_closed(),
                Ok(n) => {
                    if let Some(end) = self.received(&chunk[..n], frames) {
                        break end;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break ReadEnd::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break self.socket_closed(),
            }
        };
        self.read_buf = chunk;
        end
    }

    /// Bytes from the socket: through TLS if on, then decoded; `Some` if they end the reading.
    fn received(&mut self, bytes: &[u8], frames: &mut Vec<ServerFrame>) -> Option<ReadEnd> {
        let Some(tls) = &mut self.tls else {
            return self.take_bytes(bytes, frames).err().map(ReadEnd::Bad);
        };
        let mut plain = std::mem::take(&mut self.plain);
        let result = tls.received(bytes, &mut plain);
        let decoded = self.take_bytes(&plain, frames);
        plain.clear();
        self.plain = plain;
        match (result, decoded) {
            (Err(failure), _) => {
                // Best effort: the alert rustls queued tells the server why.
                if let Some(tls) = &mut self.tls {
                    let _ = tls.write_to(&mut self.socket);
                }
                Some(ReadEnd::Tls(failure))
            }
            (Ok(_), Err(error)) => Some(ReadEnd::Bad(error)),
            (Ok(true), Ok(())) => Some(ReadEnd::Closed),
            (Ok(false), Ok(())) => None,
        }
    }

    /// The socket closed: a TLS handshake cut short says so.
    fn socket_closed(&self) -> ReadEnd {
        match self.tls.as_ref().and_then(TlsLayer::socket_closed) {
            Some(failure) => ReadEnd::Tls(failure),
            None => ReadEnd::Closed,
        }
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
        let writable = match &mut self.tls {
            Some(tls) => {
                tls.send(&mut self.outbuf);
                match tls.write_to(&mut self.socket) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return false,
                }
                // Plaintext rustls could not take yet goes in once records have left.
                tls.send(&mut self.outbuf);
                tls.wants_write()
            }
            None => match self.flush_plain() {
                Some(left) => left,
                None => return false,
            },
        };
        if writable == self.writable_interest {
            return true;
        }
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
        true
    }

    /// Writes the queue to the socket as it is; `Some(true)` if some is left, `None` if the
    /// socket is gone.
    fn flush_plain(&mut self) -> Option<bool> {
        while !self.outbuf.is_empty() {
            match self.socket.write(&self.outbuf) {
                Ok(0) => return None,
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        Some(!self.outbuf.is_empty())
    }

    /// What the server sent before its first frame (1 KiB at most).
    pub fn preamble(&self) -> &[u8] {
        &self.preamble
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use mio::{Events, Poll};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;

    use super::*;
    use crate::client::tls::{TlsOptions, TlsSetup};
    use crate::datadir::TempDir;
    use crate::proto::msg::ServerMsg;

    /// A rustls server on a loopback thread: it reads `expect.len()` bytes, checks them, and
    /// answers `answer`.
    fn serve_once(expect: Vec<u8>, answer: Vec<u8>) -> (std::net::SocketAddr, String) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let key =
            PrivateKeyDer::from_pem_slice(made.signing_key.serialize_pem().as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![made.cert.der().clone()], key)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (socket, _) = listener.accept().unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, socket);
            let mut got = vec![0; expect.len()];
            tls.read_exact(&mut got).unwrap();
            assert_eq!(got, expect);
            tls.write_all(&answer).unwrap();
            tls.flush().unwrap();
            // Hold the connection until the client has read the answer and gone.
            let _ = tls.read(&mut [0; 1]);
        });
        (addr, made.cert.pem())
    }

    #[test]
    fn frames_cross_a_real_socket_through_tls() {
        let mut hello = Vec::new();
        ClientFrame::hello("bob").encode(&mut hello);
        let mut prompt = Vec::new();
        crate::proto::framed::encode(&ServerMsg::NamePrompt, &mut prompt);
        let (addr, pem) = serve_once(hello, prompt.clone());
        let dir = TempDir::new("wire-tls");
        std::fs::create_dir_all(&dir.0).unwrap();
        let ca = dir.0.join("ca.pem");
        std::fs::write(&ca, pem).unwrap();
        let setup = TlsSetup::new(TlsOptions {
            ca: Some(ca),
            ..TlsOptions::default()
        })
        .unwrap();
        let tls = setup.start("localhost", addr.port()).unwrap();
        let mut poll = Poll::new().unwrap();
        let socket = std::net::TcpStream::connect(addr).unwrap();
        socket.set_nonblocking(true).unwrap();
        let socket = mio::net::TcpStream::from_std(socket);
        let mut wire = Wire::new(socket, poll.registry(), Token(0), false, Some(tls)).unwrap();
        wire.send(&ClientFrame::hello("bob"));
        let mut events = Events::with_capacity(8);
        let mut frames = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while frames.is_empty() {
            assert!(Instant::now() < deadline, "no frame through TLS");
            assert!(wire.flush(poll.registry()));
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
            assert_eq!(wire.read(&mut frames), ReadEnd::Open);
        }
        let mut decoder = ServerFrameDecoder::new(MAX_FRAME_CAP);
        let expected = decoder.decode(&prompt).item.unwrap().unwrap();
        assert_eq!(frames, vec![expected]);
    }
}
