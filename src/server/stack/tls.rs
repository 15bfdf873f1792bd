//! The TLS layer: a rustls server connection between the socket's bytes and the plaintext the
//! sniffer and the codecs read. It never touches the socket: the shell hands it what it read and
//! a sink to write to, and asks it whether it has bytes to send.
//!
//! It uses rustls's unbuffered API, so that the layer owns every buffer and keeps none while the
//! connection is idle: the records received but not yet whole, and the records encrypted but not
//! yet written, are each a `Vec` given back as soon as it is empty. (rustls's buffered
//! `ServerConnection` keeps a 4 KiB input buffer per session for as long as the session lives:
//! half of an idle TLS connection's memory.)

use std::io::{self, IoSlice, Write};
use std::sync::Arc;

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use rustls::ServerConfig;

use super::super::outqueue::OutQueue;

/// Encrypted bytes the layer holds for the socket before it encrypts no more plaintext: four
/// full records. What is queued for a connection waits in its [`OutQueue`] as shared plaintext
/// and is counted against the output limits there; this is only the part being written.
const TLS_BUFFER: usize = 64 * 1024;

/// The most plaintext encrypted in one go: one full record, so a turn's small messages are
/// gathered into as few records as they fill.
const MAX_RECORD_PLAINTEXT: usize = 16 * 1024;

/// What a record adds to its plaintext at most (header, content type, AEAD tag and, in TLS 1.2,
/// the explicit nonce), to size the output before encrypting.
const RECORD_OVERHEAD: usize = 5 + 1 + 16 + 8;

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
pub struct Tls {
    session: UnbufferedServerConnection,
    /// Records received and not yet processed (a record cut by the read); empty and without an
    /// allocation between reads that end on a record's boundary.
    incoming: Vec<u8>,
    /// Records for the socket, from `written` on; without an allocation once all are written.
    outgoing: Vec<u8>,
    written: usize,
    /// The session failed: it is not given another byte (rustls would take the bad input again).
    failed: bool,
    /// The peer ended its stream (close_notify): whatever it sends later is ignored.
    peer_closed: bool,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("handshaking", &self.session.is_handshaking())
            .field("incoming", &self.incoming.len())
            .field("outgoing", &(self.outgoing.len() - self.written))
            .finish()
    }
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
        let session =
            UnbufferedServerConnection::new(Arc::clone(config)).map_err(|e| TlsFailure {
                why: format!("TLS session could not start: {e}"),
                alert: Vec::new(),
            })?;
        Ok(Tls {
            session,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            written: 0,
            failed: false,
            peer_closed: false,
        })
    }

    /// Takes `bytes` read from the socket; appends the plaintext they carried to `plain`. The
    /// handshake's answers are kept for [`Tls::write`].
    pub fn receive(
        &mut self,
        bytes: &[u8],
        plain: &mut Vec<u8>,
    ) -> Result<TlsReceived, TlsFailure> {
        if self.failed {
            return Err(TlsFailure {
                why: "TLS input after the session failed".into(),
                alert: Vec::new(),
            });
        }
        if self.peer_closed {
            // rustls tells of the end once; the shell hears of it every time.
            return Ok(TlsReceived {
                handshake_done: false,
                peer_closed: true,
            });
        }
        let was_handshaking = self.session.is_handshaking();
        self.incoming.extend_from_slice(bytes);
        let mut received = TlsReceived::default();
        loop {
            let UnbufferedStatus { discard, state } =
                self.session.process_tls_records(&mut self.incoming[..]);
            let mut done = false;
            let outcome = match state {
                Err(e) => Err(describe(&e)),
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    let mut outcome = Ok(());
                    while let Some(record) = traffic.next_record() {
                        match record {
                            Ok(record) => plain.extend_from_slice(record.payload),
                            Err(e) => {
                                outcome = Err(describe(&e));
                                break;
                            }
                        }
                    }
                    outcome
                }
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    encode(&mut self.outgoing, |out| data.encode(out))
                }
                Ok(ConnectionState::TransmitTlsData(data)) => {
                    // The records are in `outgoing`, written in order before anything later.
                    data.done();
                    Ok(())
                }
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => {
                    received.peer_closed = true;
                    done = true;
                    Ok(())
                }
                Ok(_) => {
                    // Waiting for more of the handshake, or for traffic: all is taken.
                    done = true;
                    Ok(())
                }
            };
            self.incoming.drain(..discard);
            if let Err(why) = outcome {
                return Err(self.failure(why));
            }
            if done {
                break;
            }
        }
        if received.peer_closed {
            self.peer_closed = true;
            self.incoming = Vec::new();
        }
        if self.incoming.is_empty() {
            self.incoming = Vec::new();
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
        self.written < self.outgoing.len()
    }

    /// Encrypts what `out` holds (once the handshake is done) into as few records as its
    /// messages fill, and writes them to `socket` until everything is written or it would block.
    pub fn write(&mut self, out: &mut OutQueue, socket: &mut impl Write) -> io::Result<()> {
        loop {
            if !self.session.is_handshaking() && !out.is_empty() {
                out.write_to(&mut Plaintext(self))?;
            }
            while self.written < self.outgoing.len() {
                match socket.write(&self.outgoing[self.written..]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => self.written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            // All written: the buffer is given back, not kept for the next turn.
            self.outgoing = Vec::new();
            self.written = 0;
            if out.is_empty() || self.session.is_handshaking() {
                return Ok(());
            }
        }
    }

    /// Queues close_notify, so the peer knows the end of the stream is not a cut.
    pub fn close_notify(&mut self) {
        if self.failed {
            return;
        }
        let UnbufferedStatus { discard, state } =
            self.session.process_tls_records(&mut self.incoming[..]);
        if let Ok(ConnectionState::WriteTraffic(mut traffic)) = state {
            let _ = encrypt(&mut self.outgoing, 0, |out| traffic.queue_close_notify(out));
        }
        self.incoming.drain(..discard);
    }

    /// Encrypts `bufs` (as much of them as fits in one record and the room left) into
    /// `outgoing`; returns the plaintext bytes taken, 0 when there is no room.
    fn encrypt_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let room = TLS_BUFFER.saturating_sub(self.outgoing.len() - self.written);
        let most = room.min(MAX_RECORD_PLAINTEXT);
        if most == 0 || self.failed {
            return Ok(0);
        }
        // The session is always given the records it has not taken yet (a partial one at most:
        // `receive` takes every whole one): it keeps positions in them between calls.
        let UnbufferedStatus { discard, state } =
            self.session.process_tls_records(&mut self.incoming[..]);
        let Ok(ConnectionState::WriteTraffic(mut traffic)) = state else {
            self.incoming.drain(..discard);
            return Ok(0);
        };
        let taken;
        match bufs {
            [one] => {
                taken = one.len().min(most);
                encrypt(&mut self.outgoing, taken, |out| {
                    traffic.encrypt(&one[..taken], out)
                })?;
            }
            _ => {
                // Small messages are gathered first: one record for the lot, not one for each.
                let mut gathered = Vec::with_capacity(most.min(bufs.iter().map(|b| b.len()).sum()));
                for buf in bufs {
                    let take = buf.len().min(most - gathered.len());
                    gathered.extend_from_slice(&buf[..take]);
                    if gathered.len() == most {
                        break;
                    }
                }
                taken = gathered.len();
                encrypt(&mut self.outgoing, taken, |out| {
                    traffic.encrypt(&gathered, out)
                })?;
            }
        }
        self.incoming.drain(..discard);
        Ok(taken)
    }

    fn failure(&mut self, why: String) -> TlsFailure {
        // rustls queued an alert for the peer (if it has one for this failure): it comes out as
        // records to encode, ahead of anything else. Only while it has them: once they are out,
        // the session would read the bad input again.
        self.failed = true;
        let mut alert = Vec::new();
        while self.session.wants_write() {
            let UnbufferedStatus { state, .. } =
                self.session.process_tls_records(&mut self.incoming[..]);
            let Ok(ConnectionState::EncodeTlsData(mut data)) = state else {
                break;
            };
            if encode(&mut alert, |out| data.encode(out)).is_err() {
                break;
            }
        }
        self.incoming = Vec::new();
        TlsFailure { why, alert }
    }
}

/// Appends a handshake record to `outgoing` with `encode`, growing it to the size asked for.
fn encode(
    outgoing: &mut Vec<u8>,
    encode: impl FnMut(&mut [u8]) -> Result<usize, EncodeError>,
) -> Result<(), String> {
    let needs = |e: &EncodeError| match e {
        EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(*required_size)
        }
        _ => None,
    };
    append(outgoing, 512, encode, needs)
        .map_err(|e| format!("TLS record could not be encoded: {e}"))
}

/// Appends the records of `plain_len` bytes of plaintext to `outgoing` with `encrypt`, growing
/// it to the size asked for.
fn encrypt(
    outgoing: &mut Vec<u8>,
    plain_len: usize,
    encrypt: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>,
) -> io::Result<()> {
    let needs = |e: &EncryptError| match e {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(*required_size)
        }
        _ => None,
    };
    let size = plain_len + RECORD_OVERHEAD * (plain_len / MAX_RECORD_PLAINTEXT + 1);
    append(outgoing, size, encrypt, needs)
        .map_err(|e| io::Error::other(format!("TLS could not encrypt: {e}")))
}

/// Appends what `write` puts into the space it is given, starting with `size` bytes and growing
/// to what an error says it `needs`; on any other error `outgoing` is left as it was.
fn append<E>(
    outgoing: &mut Vec<u8>,
    mut size: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
    needs: impl Fn(&E) -> Option<usize>,
) -> Result<(), E> {
    let start = outgoing.len();
    loop {
        outgoing.resize(start + size, 0);
        match write(&mut outgoing[start..]) {
            Ok(n) => {
                outgoing.truncate(start + n);
                return Ok(());
            }
            Err(e) => match needs(&e) {
                Some(required) => size = required,
                None => {
                    outgoing.truncate(start);
                    return Err(e);
                }
            },
        }
    }
}

/// A rustls error as the log shows it.
fn describe(error: &rustls::Error) -> String {
    match error {
        rustls::Error::AlertReceived(alert) => format!("TLS alert from the client: {alert:?}"),
        other => format!("TLS handshake failed: {other}"),
    }
}

/// The session's plaintext side as a sink that says "would block" when the records waiting for
/// the socket fill [`TLS_BUFFER`], so an [`OutQueue`] keeps the rest.
struct Plaintext<'a>(&'a mut Tls);

impl Write for Plaintext<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.0.encrypt_vectored(bufs)? {
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
    use std::io::Read;
    use std::rc::Rc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::ring;
    use rustls::pki_types::{
        CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime,
    };
    use rustls::{
        ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
    };

    fn server_config() -> Arc<ServerConfig> {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["chat.example".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let key = PrivateKeyDer::try_from(key.serialize_der()).expect("key");
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("config");
        Arc::new(config)
    }

    /// Takes any certificate: these tests are about the server's layer, not about trust.
    #[derive(Debug)]
    struct AnyCert;

    impl ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }

        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }

    fn client(name: &str) -> ClientConnection {
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert))
            .with_no_client_auth();
        let name = ServerName::try_from(name.to_owned()).expect("name");
        ClientConnection::new(Arc::new(config), name).expect("client")
    }

    /// Moves bytes both ways until neither side has more to say; returns the server's plaintext.
    fn exchange(client: &mut ClientConnection, server: &mut Tls, out: &mut OutQueue) -> Vec<u8> {
        let mut plain = Vec::new();
        for _ in 0..20 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire).expect("client writes");
            }
            if !wire.is_empty() {
                // One byte at a time: records cut anywhere must come out whole.
                for byte in wire.chunks(1) {
                    server.receive(byte, &mut plain).expect("server takes it");
                }
            }
            let mut back = Vec::new();
            server.write(out, &mut back).expect("server writes");
            if !back.is_empty() {
                client.read_tls(&mut &back[..]).expect("client reads");
                client.process_new_packets().expect("client processes");
            }
            if wire.is_empty() && back.is_empty() {
                break;
            }
        }
        plain
    }

    #[test]
    fn a_session_carries_plaintext_both_ways_and_keeps_no_buffer_when_idle() {
        let mut server = Tls::new(&server_config()).expect("session");
        let mut client = client("chat.example");
        let mut out = OutQueue::default();
        client.writer().write_all(b"alice\n").expect("queue");
        let got = exchange(&mut client, &mut server, &mut out);
        assert!(!server.is_handshaking() && !client.is_handshaking());
        assert_eq!(got, b"alice\n");
        // Many small messages in one turn: all arrive, in few records.
        for i in 0..200 {
            out.push(Rc::from(format!("line {i}\r\n").into_bytes()));
        }
        let mut wire = Vec::new();
        server.write(&mut out, &mut wire).expect("write");
        assert!(out.is_empty());
        let records = count_records(&wire);
        assert!(records <= 2, "{records} records for 200 small messages");
        client.read_tls(&mut &wire[..]).expect("client reads");
        client.process_new_packets().expect("client processes");
        let mut text = String::new();
        let _ = client.reader().read_to_string(&mut text);
        assert!(text.starts_with("line 0\r\nline 1\r\n"), "{text}");
        assert!(text.ends_with("line 199\r\n"), "{text}");
        // Idle: nothing is held for the next read or write.
        assert_eq!(server.incoming.capacity(), 0);
        assert_eq!(server.outgoing.capacity(), 0);
        assert!(!server.wants_write());
    }

    /// How many TLS records `wire` holds (5-byte headers with a 2-byte length).
    fn count_records(mut wire: &[u8]) -> usize {
        let mut records = 0;
        while wire.len() >= 5 {
            let len = usize::from(u16::from_be_bytes([wire[3], wire[4]]));
            wire = &wire[(5 + len).min(wire.len())..];
            records += 1;
        }
        records
    }

    #[test]
    fn output_waits_in_the_queue_once_the_layer_holds_its_limit() {
        let mut server = Tls::new(&server_config()).expect("session");
        let mut client = client("chat.example");
        let mut out = OutQueue::default();
        exchange(&mut client, &mut server, &mut out);
        for _ in 0..40 {
            out.push(Rc::from(vec![b'x'; 4096]));
        }
        // A socket that takes nothing: the layer encrypts up to its limit, the rest stays queued.
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::WouldBlock.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        server.write(&mut out, &mut Full).expect("write");
        assert!(server.wants_write());
        assert!(server.outgoing.len() <= TLS_BUFFER + RECORD_OVERHEAD);
        let taken = 40 * 4096 - out.pending();
        assert!(
            (TLS_BUFFER - 4 * RECORD_OVERHEAD..=TLS_BUFFER).contains(&taken),
            "{taken}"
        );
    }

    #[test]
    fn garbage_fails_with_an_alert_for_the_peer() {
        let mut server = Tls::new(&server_config()).expect("session");
        let mut plain = Vec::new();
        // A ClientHello of four bytes that are no ClientHello.
        let failure = server
            .receive(b"\x16\x03\x01\x00\x08\x01\x00\x00\x04abcd", &mut plain)
            .unwrap_err();
        assert!(failure.why.contains("TLS"), "{}", failure.why);
        assert!(
            !failure.alert.is_empty(),
            "no alert queued: {}",
            failure.why
        );
        assert_eq!(failure.alert[0], 0x15, "an alert record");
    }

    #[test]
    fn close_notify_reaches_the_client_and_the_clients_is_seen() {
        let mut server = Tls::new(&server_config()).expect("session");
        let mut client = client("chat.example");
        let mut out = OutQueue::default();
        exchange(&mut client, &mut server, &mut out);
        server.close_notify();
        let mut wire = Vec::new();
        server.write(&mut out, &mut wire).expect("write");
        client.read_tls(&mut &wire[..]).expect("client reads");
        let state = client.process_new_packets().expect("client processes");
        assert!(state.peer_has_closed());
        client.send_close_notify();
        let mut wire = Vec::new();
        client.write_tls(&mut wire).expect("client writes");
        let got = server
            .receive(&wire, &mut Vec::new())
            .expect("server reads");
        assert!(got.peer_closed);
    }

    #[test]
    fn cut_and_changed_client_hellos_never_panic() {
        let config = server_config();
        let mut hello = Vec::new();
        client("chat.example").write_tls(&mut hello).expect("hello");
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..2000 {
            let mut bytes = hello.clone();
            bytes.truncate(1 + (next() as usize) % hello.len());
            for _ in 0..case % 4 {
                let at = (next() as usize) % bytes.len();
                bytes[at] = next() as u8;
            }
            if case % 3 == 0 {
                bytes.extend((0..next() % 64).map(|_| next() as u8));
            }
            let mut server = Tls::new(&config).expect("session");
            let mut plain = Vec::new();
            let step = 1 + (next() as usize) % 7;
            for piece in bytes.chunks(step) {
                if server.receive(piece, &mut plain).is_err() {
                    break;
                }
            }
            server.close_notify();
            let _ = server.write(&mut OutQueue::default(), &mut Vec::new());
        }
    }

    #[test]
    fn changed_records_after_the_handshake_fail_that_session_only() {
        let config = server_config();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..200 {
            let mut server = Tls::new(&config).expect("session");
            let mut client = client("chat.example");
            let mut out = OutQueue::default();
            exchange(&mut client, &mut server, &mut out);
            client.writer().write_all(b"hello there\n").expect("queue");
            let mut wire = Vec::new();
            client.write_tls(&mut wire).expect("records");
            let at = (next() as usize) % wire.len();
            wire[at] ^= 1 << (case % 8);
            let mut plain = Vec::new();
            let got = server.receive(&wire, &mut plain);
            // The record's tag no longer matches, or its header no longer parses: never plaintext.
            assert!(got.is_err() || plain.is_empty() || plain == b"hello there\n");
            server.close_notify();
            let _ = server.write(&mut out, &mut Vec::new());
        }
    }

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
