//! The client's TLS layer against an in-memory rustls server with an rcgen certificate.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use rustls::{ServerConfig, ServerConnection};

use super::known::{self, server_key};
use super::verify::{Accepted, Refusal};
use super::{TlsFailure, TlsLayer, TlsOptions, TlsSetup};
use crate::datadir::TempDir;
use crate::tls::Fingerprint;

/// A server certificate for `names`, its fingerprint and its PEM, and a rustls server with it.
struct TestServer {
    config: Arc<ServerConfig>,
    fingerprint: Fingerprint,
    pem: String,
}

impl TestServer {
    fn new(names: &[&str]) -> TestServer {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let made = rcgen::generate_simple_self_signed(names).unwrap();
        let der = made.cert.der().clone();
        let key =
            PrivateKeyDer::from_pem_slice(made.signing_key.serialize_pem().as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], key)
            .unwrap();
        TestServer {
            config: Arc::new(config),
            fingerprint: Fingerprint::of(&der),
            pem: made.cert.pem(),
        }
    }

    fn connection(&self) -> ServerConnection {
        ServerConnection::new(Arc::clone(&self.config)).unwrap()
    }
}

/// Moves bytes both ways until neither side has any to send; the client's plaintext goes to
/// `plain`, and its first failure ends the exchange.
fn drive(
    client: &mut TlsLayer,
    server: &mut ServerConnection,
    plain: &mut Vec<u8>,
) -> Result<(), TlsFailure> {
    for _ in 0..20 {
        let mut to_server = Vec::new();
        client.write_to(&mut to_server).unwrap();
        if !to_server.is_empty() {
            let mut rest = &to_server[..];
            while !rest.is_empty() {
                server.read_tls(&mut rest).unwrap();
                if server.process_new_packets().is_err() {
                    break;
                }
            }
        }
        let mut to_client = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut to_client).unwrap();
        }
        if to_server.is_empty() && to_client.is_empty() {
            return Ok(());
        }
        client.received(&to_client, plain)?;
    }
    panic!("the handshake did not settle");
}

fn options(dir: &TempDir, ca: Option<&str>, fingerprint: Option<Fingerprint>) -> TlsOptions {
    let ca = ca.map(|pem| {
        let path = dir.0.join("ca.pem");
        std::fs::create_dir_all(&dir.0).unwrap();
        std::fs::write(&path, pem).unwrap();
        path
    });
    TlsOptions {
        ca,
        fingerprint,
        known_servers: Some(dir.0.join("config/chatd/known_servers")),
    }
}

#[test]
fn frames_cross_both_ways_once_the_ca_verifies_the_name() {
    let dir = TempDir::new("tls-client-ca");
    let server = TestServer::new(&["localhost"]);
    let setup = TlsSetup::new(options(&dir, Some(&server.pem), None)).unwrap();
    let mut client = setup.start("localhost", 3001).unwrap();
    let mut server_conn = server.connection();
    let mut hello = b"\x00hello before the handshake".to_vec();
    client.send(&mut hello);
    assert!(hello.is_empty(), "rustls holds what is sent early");
    let mut plain = Vec::new();
    drive(&mut client, &mut server_conn, &mut plain).unwrap();
    assert!(!client.is_handshaking());
    assert_eq!(client.accepted(), Some(Accepted::Verified));
    let mut got = vec![0; 27];
    server_conn.reader().read_exact(&mut got).unwrap();
    assert_eq!(got, b"\x00hello before the handshake");
    server_conn.writer().write_all(b"welcome").unwrap();
    drive(&mut client, &mut server_conn, &mut plain).unwrap();
    assert_eq!(plain, b"welcome");
    server_conn.send_close_notify();
    let mut records = Vec::new();
    server_conn.write_tls(&mut records).unwrap();
    assert_eq!(client.received(&records, &mut plain), Ok(true));
}

#[test]
fn the_ca_does_not_vouch_for_another_name_so_it_is_an_unknown_certificate() {
    let dir = TempDir::new("tls-client-name");
    let server = TestServer::new(&["localhost"]);
    let setup = TlsSetup::new(options(&dir, Some(&server.pem), None)).unwrap();
    let mut client = setup.start("127.0.0.1", 3001).unwrap();
    let failure = drive(&mut client, &mut server.connection(), &mut Vec::new());
    assert_eq!(
        failure,
        Err(TlsFailure::Refused(Refusal::Unknown {
            seen: server.fingerprint,
            why: "not issued for this name".into()
        }))
    );
}

#[test]
fn a_self_signed_certificate_is_unknown_until_given_or_remembered() {
    let dir = TempDir::new("tls-client-tofu");
    let server = TestServer::new(&["localhost"]);
    let other = TestServer::new(&["localhost"]);
    // Verified against an unrelated CA: neither certificate chains to it.
    let ca = TestServer::new(&["localhost"]);
    let setup = TlsSetup::new(options(&dir, Some(&ca.pem), None)).unwrap();
    let mut client = setup.start("localhost", 3001).unwrap();
    let failure = drive(&mut client, &mut server.connection(), &mut Vec::new());
    let Err(TlsFailure::Refused(Refusal::Unknown { seen, .. })) = failure else {
        panic!("not refused as unknown: {failure:?}");
    };
    assert_eq!(seen, server.fingerprint);

    let given = TlsSetup::new(options(&dir, Some(&ca.pem), Some(seen))).unwrap();
    let mut client = given.start("localhost", 3001).unwrap();
    drive(&mut client, &mut server.connection(), &mut Vec::new()).unwrap();
    assert_eq!(client.accepted(), Some(Accepted::Pinned));

    let file = setup.known_servers().unwrap().clone();
    known::remember(&file, &server_key("localhost", 3001), seen).unwrap();
    let mut client = setup.start("localhost", 3001).unwrap();
    drive(&mut client, &mut server.connection(), &mut Vec::new()).unwrap();
    assert_eq!(client.accepted(), Some(Accepted::Pinned));

    // The same server with a new certificate: refused, naming the file and line.
    let mut client = setup.start("localhost", 3001).unwrap();
    let failure = drive(&mut client, &mut other.connection(), &mut Vec::new());
    assert_eq!(
        failure,
        Err(TlsFailure::Refused(Refusal::Changed {
            seen: other.fingerprint,
            expected: server.fingerprint,
            file,
            line: 1
        }))
    );
}

#[test]
fn a_wrong_given_fingerprint_is_refused() {
    let dir = TempDir::new("tls-client-given");
    let server = TestServer::new(&["localhost"]);
    let wrong = Fingerprint::of(b"another certificate");
    let setup = TlsSetup::new(options(&dir, Some(&server.pem), Some(wrong))).unwrap();
    let mut client = setup.start("localhost", 3001).unwrap();
    let failure = drive(&mut client, &mut server.connection(), &mut Vec::new());
    assert_eq!(
        failure,
        Err(TlsFailure::Refused(Refusal::NotGiven {
            seen: server.fingerprint,
            given: wrong
        }))
    );
}

#[test]
fn a_server_that_answers_in_plain_text_is_named_as_such() {
    let dir = TempDir::new("tls-client-plain");
    let server = TestServer::new(&["localhost"]);
    let setup = TlsSetup::new(options(&dir, Some(&server.pem), None)).unwrap();
    let mut client = setup.start("localhost", 3001).unwrap();
    client.write_to(&mut Vec::new()).unwrap();
    let failure = client.received(b"TLS is not on here\r\n", &mut Vec::new());
    assert_eq!(
        failure,
        Err(TlsFailure::Handshake(
            "the server does not speak TLS here; it said: \"TLS is not on here\"".into()
        ))
    );
    let mut closed = setup.start("localhost", 3001).unwrap();
    assert_eq!(
        closed.socket_closed(),
        Some(TlsFailure::Handshake(
            "the server closed the connection".into()
        ))
    );
    closed.send(&mut b"x".to_vec());
}

#[test]
fn an_alert_from_the_server_is_reported() {
    let dir = TempDir::new("tls-client-alert");
    let server = TestServer::new(&["localhost"]);
    let setup = TlsSetup::new(options(&dir, Some(&server.pem), None)).unwrap();
    let mut client = setup.start("localhost", 3001).unwrap();
    client.write_to(&mut Vec::new()).unwrap();
    // A fatal handshake_failure alert record, as a server with nothing in common sends.
    let alert = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];
    assert_eq!(
        client.received(&alert, &mut Vec::new()),
        Err(TlsFailure::Handshake(
            "the server sent the alert HandshakeFailure: no TLS version or cipher in common".into()
        ))
    );
}

#[test]
fn an_unreadable_ca_file_is_a_setup_error() {
    let dir = TempDir::new("tls-client-badca");
    let error = TlsSetup::new(options(&dir, Some("not a certificate"), None)).unwrap_err();
    assert!(error.contains("no certificate in it"), "{error}");
    let missing = TlsOptions {
        ca: Some(dir.0.join("missing.pem")),
        ..TlsOptions::default()
    };
    let error = TlsSetup::new(missing).unwrap_err();
    assert!(error.starts_with("cannot read --tls-ca"), "{error}");
}

#[test]
fn the_certificate_is_checked_for_the_given_name_sni_included() {
    let dir = TempDir::new("tls-client-sni");
    let server = TestServer::new(&["chat.example.org"]);
    let setup = TlsSetup::new(options(&dir, Some(&server.pem), None)).unwrap();
    let mut client = setup.start("Chat.Example.org", 3001).unwrap();
    let mut server_conn = server.connection();
    drive(&mut client, &mut server_conn, &mut Vec::new()).unwrap();
    assert_eq!(client.accepted(), Some(Accepted::Verified));
    assert_eq!(server_conn.server_name(), Some("chat.example.org"));
}
