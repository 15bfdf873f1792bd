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
    /// What rustls still had queued for the peer, to write once before closing: the rest of its
    /// handshake flight (a TLS 1.3 alert is encrypted with its keys) and the alert, if rustls
    /// sends one for this failure. May be empty.
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

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::crypto::ring;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore};

    /// A server config for `localhost` and a client that trusts it, both on the ring provider.
    fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca =
            rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let provider = Arc::new(ring::default_provider());
        let server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(ca.der().to_vec())).unwrap();
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }

    /// A server session with its handshake done against `client`, in memory.
    fn connected(server: &Arc<ServerConfig>, client: &mut ClientConnection) -> Tls {
        let mut tls = Tls::new(server).unwrap();
        let mut out = OutQueue::default();
        let mut plain = Vec::new();
        while client.is_handshaking() || tls.is_handshaking() {
            let mut wire = Vec::new();
            client.write_tls(&mut wire).unwrap();
            tls.receive(&wire, &mut plain).unwrap();
            let mut back = Vec::new();
            tls.write(&mut out, &mut back).unwrap();
            deliver(client, &back);
        }
        // What follows the handshake (TLS 1.3 session tickets) goes out before any message.
        let mut back = Vec::new();
        tls.write(&mut out, &mut back).unwrap();
        deliver(client, &back);
        assert!(plain.is_empty());
        tls
    }

    /// Hands `wire` to the client whole; returns the plaintext it carried.
    fn deliver(client: &mut ClientConnection, wire: &[u8]) -> Vec<u8> {
        let mut rest = wire;
        let mut plain = Vec::new();
        while !rest.is_empty() {
            client.read_tls(&mut rest).unwrap();
            let state = client.process_new_packets().unwrap();
            let start = plain.len();
            plain.resize(start + state.plaintext_bytes_to_read(), 0);
            client.reader().read_exact(&mut plain[start..]).unwrap();
        }
        plain
    }

    /// The TLS records in `wire`: (content type, length) of each.
    fn records(wire: &[u8]) -> Vec<(u8, usize)> {
        let mut found = Vec::new();
        let mut rest = wire;
        while rest.len() >= 5 {
            let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
            found.push((rest[0], len));
            rest = &rest[(5 + len).min(rest.len())..];
        }
        found
    }

    #[test]
    fn a_turns_queued_messages_go_out_in_as_few_records_as_they_fill() {
        let (server, client_config) = configs();
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = ClientConnection::new(client_config, name).unwrap();
        let mut tls = connected(&server, &mut client);
        let mut out = OutQueue::default();
        let line: std::rc::Rc<[u8]> = std::rc::Rc::from(&[b'x'; 63][..]);
        for _ in 0..600 {
            out.push(std::rc::Rc::clone(&line));
        }
        let mut wire = Vec::new();
        tls.write(&mut out, &mut wire).unwrap();
        assert!(out.is_empty());
        // 600 x 63 = 37,800 bytes: three records of at most 16 KiB, not 600.
        let data: Vec<_> = records(&wire).into_iter().filter(|r| r.0 == 0x17).collect();
        assert_eq!(data.len(), 3, "{data:?}");
        assert_eq!(deliver(&mut client, &wire), [b'x'; 600 * 63]);
    }

    #[test]
    fn a_socket_that_takes_little_keeps_the_rest_queued_in_order() {
        let (server, client_config) = configs();
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = ClientConnection::new(client_config, name).unwrap();
        let mut tls = connected(&server, &mut client);
        let mut out = OutQueue::default();
        let mut sent = Vec::new();
        for i in 0..5000u32 {
            let line = format!("line {i}\n");
            sent.extend_from_slice(line.as_bytes());
            out.push(std::rc::Rc::from(line.as_bytes()));
        }
        let mut got = Vec::new();
        for _ in 0..1000 {
            let mut socket = Budget {
                wire: Vec::new(),
                left: 1000,
            };
            tls.write(&mut out, &mut socket).unwrap();
            got.extend(deliver(&mut client, &socket.wire));
            if out.is_empty() && !tls.wants_write() {
                break;
            }
        }
        assert_eq!(got, sent);
    }

    #[test]
    fn garbage_after_a_handshake_byte_fails_the_session_for_good() {
        let (server, _) = configs();
        let mut tls = Tls::new(&server).unwrap();
        let failure = tls
            .receive(b"\x16\x03\x01\x00\x05hello", &mut Vec::new())
            .unwrap_err();
        assert!(
            failure.why.starts_with("TLS handshake failed: "),
            "{}",
            failure.why
        );
        assert!(
            failure.alert.is_empty() || failure.alert[0] == 0x15,
            "only an alert"
        );
        // The session stays failed: more bytes are refused, not read as a new handshake.
        assert!(tls.receive(b"\x16\x03\x01", &mut Vec::new()).is_err());
    }

    /// A socket that takes `left` bytes, then would block.
    struct Budget {
        wire: Vec<u8>,
        left: usize,
    }

    impl Write for Budget {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            self.wire.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
