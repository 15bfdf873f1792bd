//! A connection's layers between the socket and its codec, each a plain struct with no socket and
//! no clock: `[TLS] -> sniff -> one wire mode`, where the web mode is `HTTP -> WebSocket -> JSON`
//! ([`http`] answers the request head and upgrades, [`ws`] reads the frames). The shell reads bytes and hands them to
//! [`Transport::receive`], which gives back plaintext; the sniffer ([`sniff`]) tells the wire mode
//! from the first plaintext bytes; the mode's codec (in `proto`) does the rest. Output goes the
//! other way: the shell queues each message's shared plaintext bytes, and [`Transport::write`]
//! moves them to the socket, through TLS where there is TLS. A connection refused at accept
//! never gets these layers: [`refusal`] reads just enough of it to answer in its mode.

pub mod http;
pub mod properties;
pub mod refusal;
pub mod sniff;
pub mod tls;
pub mod ws;

use std::io::{self, Write};
use std::sync::Arc;

use rustls::ServerConfig;

use super::outqueue::OutQueue;
use tls::{Tls, TlsFailure, TlsReceived};

/// The outermost layer: whether the connection speaks TLS, once its first byte has said.
#[derive(Debug)]
pub enum Transport {
    /// No byte received yet.
    Unknown,
    /// Plain TCP: bytes are plaintext.
    Plain,
    /// TLS (boxed: a session is a few hundred bytes, and most connections on a LAN are plain).
    Tls(Box<Tls>),
}

/// Why the transport cannot go on.
#[derive(Debug)]
pub enum TransportError {
    /// A TLS ClientHello came to a server without a certificate.
    TlsNotEnabled,
    /// The TLS layer failed (bad records, a failed handshake, an alert).
    Tls(TlsFailure),
}

impl Transport {
    /// Takes bytes read from the socket and appends their plaintext to `plain`. The first byte
    /// decides the transport: 0x16 starts a TLS handshake, anything else is plain.
    pub fn receive(
        &mut self,
        bytes: &[u8],
        tls_config: Option<&Arc<ServerConfig>>,
        plain: &mut Vec<u8>,
    ) -> Result<TlsReceived, TransportError> {
        if let Transport::Unknown = self {
            match bytes.first() {
                None => return Ok(TlsReceived::default()),
                Some(&first)
                    if sniff::sniff(&[first]) == sniff::Verdict::Is(sniff::Sniffed::Tls) =>
                {
                    let config = tls_config.ok_or(TransportError::TlsNotEnabled)?;
                    *self =
                        Transport::Tls(Box::new(Tls::new(config).map_err(TransportError::Tls)?));
                }
                Some(_) => *self = Transport::Plain,
            }
        }
        match self {
            Transport::Unknown => Ok(TlsReceived::default()),
            Transport::Plain => {
                plain.extend_from_slice(bytes);
                Ok(TlsReceived::default())
            }
            Transport::Tls(tls) => tls.receive(bytes, plain).map_err(TransportError::Tls),
        }
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// Whether a TLS handshake has begun and not finished.
    pub fn is_handshaking(&self) -> bool {
        matches!(self, Transport::Tls(tls) if tls.is_handshaking())
    }

    /// Whether the layer itself has bytes for the socket (a handshake message, an alert).
    pub fn wants_write(&self) -> bool {
        matches!(self, Transport::Tls(tls) if tls.wants_write())
    }

    /// Writes what `out` holds to `socket`, through TLS where there is TLS.
    pub fn write(&mut self, out: &mut OutQueue, socket: &mut impl Write) -> io::Result<()> {
        match self {
            Transport::Tls(tls) => tls.write(out, socket),
            Transport::Unknown | Transport::Plain => out.write_to(socket).map(|_| ()),
        }
    }

    /// Ends a TLS stream properly before the socket closes.
    pub fn close_notify(&mut self) {
        if let Transport::Tls(tls) = self {
            tls.close_notify();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::properties::{feed, Outcome};
    use super::sniff::{sniff, Verdict, MAX_PROBE};
    use super::*;
    use rustls::crypto::ring;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore};

    /// A small deterministic generator (xorshift), as the codec tests use.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// Up to `max` bytes, mostly from the few that start a mode and their neighbours.
        fn bytes(&mut self, max: usize) -> Vec<u8> {
            const SOME: &[u8] = b"\x00\x16\x03\x01\x15\xff GETNICKPASURHDO\r\nx";
            let len = self.below(max + 1);
            (0..len)
                .map(|_| match self.below(3) {
                    0 => self.next() as u8,
                    _ => SOME[self.below(SOME.len())],
                })
                .collect()
        }
    }

    /// A server certificate for `localhost` and the settings that serve it.
    fn server_config() -> (Arc<ServerConfig>, CertificateDer<'static>) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a test certificate");
        let cert = made.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .expect("the server's settings");
        (Arc::new(config), cert)
    }

    /// A TLS client trusting `root`, asking for `localhost`.
    fn client(root: CertificateDer<'static>) -> ClientConnection {
        let mut roots = RootCertStore::empty();
        roots.add(root).expect("a root");
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").expect("a name");
        ClientConnection::new(Arc::new(config), name).expect("a client session")
    }

    /// Everything the client has for the wire.
    fn client_bytes(client: &mut ClientConnection) -> Vec<u8> {
        let mut wire = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut wire).expect("write to a Vec");
        }
        wire
    }

    /// What the shell may be given: random bytes, or a real ClientHello cut, damaged or trailed.
    fn input(rng: &mut Rng, hello: &[u8]) -> Vec<u8> {
        match rng.below(4) {
            0 => rng.bytes(48),
            1 => {
                let mut damaged = hello[..1 + rng.below(hello.len())].to_vec();
                for _ in 0..1 + rng.below(3) {
                    let at = 1 + rng.below(damaged.len().max(2) - 1);
                    if let Some(byte) = damaged.get_mut(at) {
                        *byte = rng.next() as u8;
                    }
                }
                damaged
            }
            2 => hello[..rng.below(hello.len() + 1)].to_vec(),
            _ => {
                let mut trailed = hello.to_vec();
                trailed.extend(rng.bytes(32));
                trailed
            }
        }
    }

    #[test]
    fn sniffing_in_pieces_agrees_with_the_whole_and_decides_within_the_probe() {
        let mut rng = Rng(0x5eed_cafe_f00d_0001);
        let words: [&[u8]; 10] = [
            b"GET ", b"HEAD ", b"POST ", b"PUT ", b"NICK ", b"CAP ", b"PASS ", b"USER ", b"\x16",
            b"\x00",
        ];
        for _ in 0..5000 {
            let mut data = words[rng.below(words.len())].to_vec();
            data.truncate(rng.below(data.len() + 1));
            data.extend(rng.bytes(8));
            let whole = sniff(&data);
            let mut decided = None;
            for k in 0..=data.len() {
                let verdict = sniff(&data[..k]);
                if let Some(first) = decided {
                    assert_eq!(verdict, first, "{data:?}: more bytes changed the verdict");
                } else if verdict != Verdict::Undecided {
                    assert!(k <= MAX_PROBE, "{data:?}: decided only at {k} bytes");
                    decided = Some(verdict);
                }
            }
            assert_eq!(decided.unwrap_or(Verdict::Undecided), whole, "{data:?}");
            if data.len() >= MAX_PROBE {
                assert_ne!(
                    whole,
                    Verdict::Undecided,
                    "{data:?}: undecided past the probe"
                );
            }
        }
    }

    #[test]
    fn a_transport_takes_any_bytes_in_any_pieces_alike_and_fails_cleanly() {
        let (config, root) = server_config();
        let hello = client_bytes(&mut client(root));
        let mut rng = Rng(0x5eed_cafe_f00d_0002);
        for _ in 0..3000 {
            let data = input(&mut rng, &hello);
            let mut cuts: Vec<usize> = (0..rng.below(4))
                .map(|_| rng.below(data.len() + 1))
                .collect();
            cuts.sort_unstable();
            let whole = feed(Some(&config), &data, &[]);
            let pieces = feed(Some(&config), &data, &cuts);
            assert_eq!(pieces, whole, "{data:?} cut at {cuts:?}");
            match data.first() {
                Some(0x16) => {
                    // No handshake finishes from the client's first flight alone.
                    assert!(
                        matches!(whole, Outcome::Taken(ref p) if p.is_empty())
                            || whole == Outcome::Failed
                    );
                    assert_eq!(feed(None, &data, &cuts), Outcome::NotEnabled);
                }
                _ => {
                    assert_eq!(whole, Outcome::Taken(data.clone()), "plain passes as it is");
                    assert_eq!(feed(None, &data, &cuts), whole);
                }
            }
        }
    }

    #[test]
    fn a_tls_stream_gives_its_plaintext_and_bytes_after_close_notify_are_ignored() {
        let (config, root) = server_config();
        let mut client = client(root);
        let mut server = Transport::Unknown;
        let mut plain = Vec::new();
        let mut done = false;
        for _ in 0..10 {
            let wire = client_bytes(&mut client);
            let got = server
                .receive(&wire, Some(&config), &mut plain)
                .expect("taken");
            done |= got.handshake_done;
            let mut back = Vec::new();
            server
                .write(&mut OutQueue::default(), &mut back)
                .expect("write to a Vec");
            client.read_tls(&mut &back[..]).expect("the server's bytes");
            client.process_new_packets().expect("the client is content");
            if done && !client.is_handshaking() {
                break;
            }
        }
        assert!(done && server.is_tls() && !server.is_handshaking());
        assert!(plain.is_empty());

        io::Write::write_all(&mut client.writer(), b"alice\n").expect("plaintext");
        client.send_close_notify();
        let got = server
            .receive(&client_bytes(&mut client), Some(&config), &mut plain)
            .expect("taken");
        assert!(got.peer_closed);
        assert_eq!(plain, b"alice\n");
        // Whatever comes after the end of the stream is ignored, not waited on for ever.
        let late = server
            .receive(b"\x17\x03\x03\x00\x01x", Some(&config), &mut plain)
            .expect("ignored");
        assert!(late.peer_closed);
        assert_eq!(plain, b"alice\n");
    }
}
