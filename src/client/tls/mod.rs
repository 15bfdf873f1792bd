//! TLS for the `chat` client: a rustls [`ClientConnection`] between the socket and the framed
//! codec, sans-IO as the rest of the client (bytes in, bytes out, "wants write"); the
//! [`super::wire::Wire`] of both the line mode and the window moves its bytes.
//!
//! [`TlsSetup`] is made once per run (the trusted roots: the system's, or `--tls-ca`), and
//! [`TlsSetup::start`] makes a [`TlsLayer`] per connection, with the known-servers file read
//! afresh (the window may have just added a line to it). Trust is decided by
//! [`verify::decide`]; the file is [`known`].

pub mod known;
pub mod verify;

use std::fmt;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{AlertDescription, ClientConfig, ClientConnection, RootCertStore};

use crate::tls::Fingerprint;
use verify::{describe, Accepted, PinVerifier, Refusal, Verdict};

/// How much of what the server sends first is kept, to tell a server that answered without TLS.
const MAX_FIRST_BYTES: usize = 256;

/// What the user asked for, from the command line.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// `--tls-ca`: trust the certificates of this PEM file instead of the system's roots.
    pub ca: Option<PathBuf>,
    /// `--tls-fingerprint`: the certificate must be this one.
    pub fingerprint: Option<Fingerprint>,
    /// The known-servers file (`None`: the user has no config directory).
    pub known_servers: Option<PathBuf>,
}

/// Why a TLS connection did not work out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server's certificate was not taken.
    Refused(Refusal),
    /// The handshake failed otherwise: an alert, a protocol error, a close.
    Handshake(String),
    /// A TLS error after the handshake.
    Broken(String),
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFailure::Refused(refusal) => write!(f, "{refusal}"),
            TlsFailure::Handshake(why) | TlsFailure::Broken(why) => f.write_str(why),
        }
    }
}

/// The parts of a TLS client that last a run: the provider and the trusted roots.
#[derive(Debug)]
pub struct TlsSetup {
    provider: Arc<CryptoProvider>,
    roots: Option<Arc<WebPkiServerVerifier>>,
    options: TlsOptions,
}

impl TlsSetup {
    /// Loads the roots: `options.ca`'s certificates, or the system's. Only an unreadable
    /// `--tls-ca` is an error; a system without roots leaves pinned certificates only.
    pub fn new(options: TlsOptions) -> Result<TlsSetup, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut store = RootCertStore::empty();
        match &options.ca {
            Some(path) => {
                let shown = path.display();
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("cannot read --tls-ca {shown}: {}", pem_reason(&e)))?;
                for cert in certs {
                    let cert = cert
                        .map_err(|e| format!("cannot read --tls-ca {shown}: {}", pem_reason(&e)))?;
                    store
                        .add(cert)
                        .map_err(|e| format!("--tls-ca {shown}: not a usable certificate: {e}"))?;
                }
                if store.is_empty() {
                    return Err(format!("--tls-ca {shown}: no certificate in it"));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                store.add_parsable_certificates(found.certs);
            }
        }
        let roots = if store.is_empty() {
            None
        } else {
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), Arc::clone(&provider))
                    .build()
                    .map_err(|e| format!("cannot use the trusted certificates: {e}"))?;
            Some(verifier)
        };
        Ok(TlsSetup {
            provider,
            roots,
            options,
        })
    }

    /// A TLS layer for a connection to `host` (the SNI and the name checked) at `port`.
    pub fn start(&self, host: &str, port: u16) -> Result<TlsLayer, String> {
        let server = known::server_key(host, port);
        let known = match &self.options.known_servers {
            Some(path) => {
                known::load(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
            }
            None => known::KnownServers::default(),
        };
        let verifier = PinVerifier::new(
            self.roots.clone(),
            self.provider.signature_verification_algorithms,
            self.options.fingerprint,
            known,
            self.options.known_servers.clone(),
            server,
        );
        let verdict = verifier.verdict();
        let config = ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_owned())
            .map_err(|_| format!("{host} is not a host name TLS can check"))?;
        let conn = ClientConnection::new(Arc::new(config), name)
            .map_err(|e| format!("cannot start TLS: {e}"))?;
        Ok(TlsLayer {
            conn,
            verdict,
            first_bytes: Vec::new(),
        })
    }

    /// The known-servers file, if there is one for this user.
    pub fn known_servers(&self) -> Option<&PathBuf> {
        self.options.known_servers.as_ref()
    }
}

fn pem_reason(error: &rustls::pki_types::pem::Error) -> String {
    match error {
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        other => format!("{other:?}"),
    }
}

/// One connection's TLS: ciphertext from the socket in, plaintext out, and the other way.
#[derive(Debug)]
pub struct TlsLayer {
    conn: ClientConnection,
    verdict: Arc<Mutex<Option<Verdict>>>,
    /// The first bytes the server sent, while handshaking.
    first_bytes: Vec<u8>,
}

impl TlsLayer {
    /// Takes `bytes` from the socket and appends the plaintext they carry to `plain`; `Ok(true)`
    /// once the server has closed the TLS session (close_notify).
    pub fn received(&mut self, mut bytes: &[u8], plain: &mut Vec<u8>) -> Result<bool, TlsFailure> {
        if self.conn.is_handshaking() && self.first_bytes.len() < MAX_FIRST_BYTES {
            let room = MAX_FIRST_BYTES - self.first_bytes.len();
            self.first_bytes
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        let mut closed = false;
        while !bytes.is_empty() {
            if let Err(e) = self.conn.read_tls(&mut bytes) {
                return Err(self.failure(&e.to_string()));
            }
            let state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => return Err(self.rustls_failure(&e)),
            };
            let n = state.plaintext_bytes_to_read();
            closed |= state.peer_has_closed();
            if n > 0 {
                let start = plain.len();
                plain.resize(start + n, 0);
                if let Err(e) = self.conn.reader().read_exact(&mut plain[start..]) {
                    plain.truncate(start);
                    return Err(self.failure(&e.to_string()));
                }
            }
        }
        Ok(closed)
    }

    /// The socket closed (without close_notify): a failure if the handshake was not done.
    pub fn socket_closed(&self) -> Option<TlsFailure> {
        if !self.conn.is_handshaking() {
            return None;
        }
        Some(match self.not_tls() {
            Some(failure) => failure,
            None => TlsFailure::Handshake("the server closed the connection".to_owned()),
        })
    }

    /// Moves as much of `plain` into the TLS session as it takes (it holds what is sent during
    /// the handshake until it is done).
    pub fn send(&mut self, plain: &mut Vec<u8>) {
        if plain.is_empty() {
            return;
        }
        if let Ok(n) = self.conn.writer().write(plain) {
            plain.drain(..n);
        }
    }

    /// Whether there are TLS records to write.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Writes TLS records to `out` until it would block or none are left.
    pub fn write_to(&mut self, out: &mut impl Write) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether the handshake is still under way.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// How the server's certificate was taken, once it was.
    pub fn accepted(&self) -> Option<Accepted> {
        match *self.verdict.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(Ok(accepted)) => Some(accepted),
            _ => None,
        }
    }

    fn rustls_failure(&self, error: &rustls::Error) -> TlsFailure {
        if let Some(Err(refusal)) = self
            .verdict
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return TlsFailure::Refused(refusal);
        }
        let why = match error {
            rustls::Error::AlertReceived(alert) => alert_reason(*alert),
            rustls::Error::InvalidCertificate(_) => describe(error),
            rustls::Error::InvalidMessage(_) => match self.not_tls() {
                Some(failure) => return failure,
                None => error.to_string(),
            },
            other => other.to_string(),
        };
        self.failure(&why)
    }

    fn failure(&self, why: &str) -> TlsFailure {
        if self.conn.is_handshaking() {
            TlsFailure::Handshake(why.to_owned())
        } else {
            TlsFailure::Broken(why.to_owned())
        }
    }

    /// The server answered with something that is not a TLS record: say what it said.
    fn not_tls(&self) -> Option<TlsFailure> {
        let first = *self.first_bytes.first()?;
        if (0x14..=0x17).contains(&first) {
            return None;
        }
        let text = String::from_utf8_lossy(&self.first_bytes);
        let said: String = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join(" / ");
        Some(TlsFailure::Handshake(format!(
            "the server does not speak TLS here; it said: {said:?}"
        )))
    }
}

fn alert_reason(alert: AlertDescription) -> String {
    let what = match alert {
        AlertDescription::HandshakeFailure => ": no TLS version or cipher in common",
        AlertDescription::ProtocolVersion => ": no TLS version in common",
        AlertDescription::UnrecognisedName => ": it does not serve that name",
        _ => "",
    };
    format!("the server sent the alert {alert:?}{what}")
}

#[cfg(test)]
mod tests;
