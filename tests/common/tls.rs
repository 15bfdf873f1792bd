//! Certificates for the TLS tests, made with rcgen when a test runs (no key is committed).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A certificate and its key, written as PEM files.
pub struct TestCert {
    /// The certificate file (PEM, one certificate).
    pub cert: PathBuf,
    /// Its private key (PEM, mode 0600).
    pub key: PathBuf,
    /// The certificate's DER bytes.
    pub der: Vec<u8>,
}

/// Makes a self-signed certificate for `names` and writes it as `dir/NAME.pem` and its key as
/// `dir/NAME.key` (mode 0600, as chatd wants a key).
pub fn write_test_cert(dir: &Path, name: &str, names: &[&str]) -> TestCert {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let made = rcgen::generate_simple_self_signed(names).expect("make a test certificate");
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    write_file(&cert, &made.cert.pem(), 0o644);
    write_file(&key, &made.signing_key.serialize_pem(), 0o600);
    TestCert {
        cert,
        key,
        der: made.cert.der().to_vec(),
    }
}

/// Writes `text` to a new file `path` made with `mode`.
pub fn write_file(path: &Path, text: &str, mode: u32) {
    let _ = std::fs::remove_file(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    file.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// What `openssl x509 -noout -fingerprint -sha256 -in CERT` prints, as `SHA256:AB:...`.
pub fn openssl_fingerprint(cert: &Path) -> String {
    let output = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("run openssl (Debian package openssl; .ci/run installs it)");
    assert!(output.status.success(), "openssl: {output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let (_, hex) = text
        .trim()
        .split_once('=')
        .unwrap_or_else(|| panic!("openssl printed {text:?}"));
    format!("SHA256:{hex}")
}

/// The SHA-256 fingerprint (`SHA256:AB:...`) of the certificate the server at `addr` serves to a
/// new connection, as `openssl s_client -connect ADDR </dev/null | openssl x509 -fingerprint
/// -sha256` shows it.
pub fn served_fingerprint(addr: std::net::SocketAddr) -> String {
    let mut client = super::Piped::spawn("openssl", &["s_client", "-connect", &addr.to_string()]);
    client.close_stdin();
    let shown = client.expect_end().join("\n");
    let begin = shown
        .find("-----BEGIN CERTIFICATE-----")
        .unwrap_or_else(|| panic!("no certificate in s_client's output: {shown}"));
    let end = shown[begin..]
        .find("-----END CERTIFICATE-----")
        .unwrap_or_else(|| panic!("an unfinished certificate: {shown}"))
        + begin
        + "-----END CERTIFICATE-----".len();
    let dir = super::DataDir::new();
    let pem = dir.path().join("served.pem");
    write_file(&pem, &format!("{}\n", &shown[begin..end]), 0o644);
    openssl_fingerprint(&pem)
}

/// The first flight of a real TLS client (rustls, asking for `localhost`): a ClientHello record.
pub fn client_hello() -> Vec<u8> {
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("rustls's default versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a server name");
    let mut client =
        rustls::ClientConnection::new(Arc::new(config), name).expect("a TLS client session");
    let mut hello = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut hello).expect("write to a Vec");
    }
    assert_eq!(hello.first(), Some(&0x16), "a handshake record");
    hello
}
