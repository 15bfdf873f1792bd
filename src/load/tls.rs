//! TLS for the load tool's clients (`--tls`): one rustls client session per connection, with the
//! ring provider the server uses.
//!
//! chatd-load measures a server; it does not vouch for one. So it checks the server's
//! certificate in one of two ways, neither of which a real client should copy:
//!
//! - [`Trust::Pinned`] (`--tls-fingerprint SHA256:...`): the server's certificate must be the one
//!   with this SHA-256 fingerprint (as `chatd tls fingerprint` prints it); nothing else about it
//!   (names, expiry, issuer) is looked at.
//! - [`Trust::NoVerificationLoadTestingOnly`] (no fingerprint given): any certificate is taken.
//!   The handshake's signatures are still checked with the provider's algorithms, so the
//!   server does all the work of a real handshake and a broken one still fails, but anyone could
//!   stand in for the server. It is for load testing on loopback only.
//!
//! Sessions are never resumed: every connection makes a full handshake, the costly case a
//! connections-per-second figure must show.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

use crate::tls::Fingerprint;

/// How the load tool decides to go on with a server's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Only the certificate with this fingerprint.
    Pinned(Fingerprint),
    /// Any certificate: no verification, for load testing only (signatures are still checked).
    NoVerificationLoadTestingOnly,
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::Pinned(fingerprint) => write!(f, "pinned to {fingerprint}"),
            Trust::NoVerificationLoadTestingOnly => {
                f.write_str("no verification, load testing only")
            }
        }
    }
}

/// What every client's session is made from: the configuration and the name it asks for.
#[derive(Clone, Debug)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    trust: Trust,
}

impl TlsClient {
    /// Sessions to `addr` (its IP address is the server name: no SNI is sent), checked as
    /// `trust` says.
    pub fn new(addr: SocketAddr, trust: Trust) -> Result<TlsClient, rustls::Error> {
        let provider = Arc::new(ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = Arc::new(LoadVerifier {
            pinned: match trust {
                Trust::Pinned(fingerprint) => Some(fingerprint),
                Trust::NoVerificationLoadTestingOnly => None,
            },
            provider: Arc::clone(&provider),
        });
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.resumption = Resumption::disabled();
        Ok(TlsClient {
            config: Arc::new(config),
            name: ServerName::IpAddress(addr.ip().into()),
            trust,
        })
    }

    /// A fresh session for one connection. It takes any amount of plaintext (the tool bounds
    /// what it generates itself), so nothing written to it is ever refused.
    pub fn session(&self) -> Result<ClientConnection, rustls::Error> {
        let mut session = ClientConnection::new(Arc::clone(&self.config), self.name.clone())?;
        session.set_buffer_limit(None);
        Ok(session)
    }

    /// How the server's certificate is checked.
    pub fn trust(&self) -> Trust {
        self.trust
    }
}

/// The load tool's certificate check: a pinned fingerprint, or none at all; the handshake's
/// signatures are checked either way.
#[derive(Debug)]
struct LoadVerifier {
    pinned: Option<Fingerprint>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for LoadVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.pinned {
            Some(pinned) if Fingerprint::of(end_entity) != pinned => {
                Err(rustls::Error::General(format!(
                    "the server's certificate is {}, not the pinned {pinned}",
                    Fingerprint::of(end_entity)
                )))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{ServerConfig, ServerConnection};

    /// A server config for a fresh self-signed certificate, and that certificate's fingerprint.
    fn server() -> (Arc<ServerConfig>, Fingerprint) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let fingerprint = Fingerprint::of(cert.der());
        let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key");
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("config");
        (Arc::new(config), fingerprint)
    }

    /// Runs a handshake in memory; the client's error, if it failed.
    fn handshake(client: &TlsClient, server: Arc<ServerConfig>) -> Result<(), String> {
        let mut client = client.session().map_err(|e| e.to_string())?;
        let mut server = ServerConnection::new(server).map_err(|e| e.to_string())?;
        for _ in 0..10 {
            let mut wire = Vec::new();
            client.write_tls(&mut wire).map_err(|e| e.to_string())?;
            server.read_tls(&mut &wire[..]).map_err(|e| e.to_string())?;
            server.process_new_packets().map_err(|e| e.to_string())?;
            wire.clear();
            server.write_tls(&mut wire).map_err(|e| e.to_string())?;
            client.read_tls(&mut &wire[..]).map_err(|e| e.to_string())?;
            client.process_new_packets().map_err(|e| e.to_string())?;
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
        }
        Err("the handshake did not finish".into())
    }

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 3001))
    }

    #[test]
    fn a_pinned_fingerprint_takes_that_certificate_only() {
        let (config, fingerprint) = server();
        let pinned = TlsClient::new(addr(), Trust::Pinned(fingerprint)).expect("client");
        assert_eq!(handshake(&pinned, Arc::clone(&config)), Ok(()));
        let (other, _) = server();
        let refused = handshake(&pinned, other).unwrap_err();
        assert!(refused.contains("not the pinned"), "{refused}");
    }

    #[test]
    fn no_verification_takes_any_certificate_and_says_so() {
        let (config, _) = server();
        let any = TlsClient::new(addr(), Trust::NoVerificationLoadTestingOnly).expect("client");
        assert_eq!(handshake(&any, config), Ok(()));
        assert_eq!(
            any.trust().to_string(),
            "no verification, load testing only"
        );
    }

    /// A server that shows one certificate and signs with another key, as an impostor holding
    /// someone else's certificate would.
    #[derive(Debug)]
    struct Impostor(Arc<rustls::sign::CertifiedKey>);

    impl rustls::server::ResolvesServerCert for Impostor {
        fn resolve(
            &self,
            _hello: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(Arc::clone(&self.0))
        }
    }

    #[test]
    fn without_verification_a_handshake_signed_by_another_key_is_still_refused() {
        let shown = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&shown)
            .expect("cert");
        let other = rcgen::KeyPair::generate().expect("other key");
        let other = rustls::pki_types::PrivateKeyDer::try_from(other.serialize_der()).expect("key");
        let provider = Arc::new(ring::default_provider());
        let signer = provider
            .key_provider
            .load_private_key(other)
            .expect("signer");
        let impostor = Impostor(Arc::new(rustls::sign::CertifiedKey::new(
            vec![cert.der().clone()],
            signer,
        )));
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(impostor));
        let any = TlsClient::new(addr(), Trust::NoVerificationLoadTestingOnly).expect("client");
        let refused = handshake(&any, Arc::new(config)).unwrap_err();
        assert!(refused.to_lowercase().contains("signature"), "{refused}");
    }
}
