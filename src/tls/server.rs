//! The server's certificate: read from the operator's PEM files, or made once in the data
//! directory (`DATA_DIR/tls/cert.pem` and `key.pem`) and kept for every later start.
//!
//! [`load`] only reads (and, for a self-signed certificate that does not exist yet, makes it), so
//! it may be called again at any time, e.g. on SIGHUP: on success the caller swaps in the new
//! [`ServerCert::config`]; on failure nothing was changed and the old certificate keeps serving.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::version::{TLS12, TLS13};
use rustls::ServerConfig;

use super::Fingerprint;
use crate::config::CertSource;
use crate::datadir::{DataDir, StoreError, StoreErrorCause};

/// The directory under the data directory that holds the self-signed certificate and key.
pub const TLS_DIR: &str = "tls";
/// The self-signed certificate's file name in [`TLS_DIR`].
pub const CERT_FILE: &str = "cert.pem";
/// The self-signed key's file name in [`TLS_DIR`].
pub const KEY_FILE: &str = "key.pem";
/// The largest PEM file read: a chain of a few certificates is a few KiB.
pub const MAX_PEM_FILE: u64 = 1024 * 1024;

/// A certificate and key, ready to serve.
#[derive(Clone, Debug)]
pub struct ServerCert {
    /// The rustls settings serving it: TLS 1.3 and 1.2, the ring provider, no client certificates.
    pub config: Arc<ServerConfig>,
    /// The SHA-256 fingerprint of the server's own (first) certificate.
    pub fingerprint: Fingerprint,
    /// The file the certificate chain was read from.
    pub cert_file: PathBuf,
    /// How many certificates the chain has (the server's own included).
    pub chain_len: usize,
    /// Whether this call made the certificate (a self-signed one on its first start).
    pub created: bool,
}

impl ServerCert {
    /// The fingerprint of the server's own certificate, as people compare it.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The line the server prints and logs at start: `TLS certificate SHA256:... (FILE)`, saying
    /// so when the certificate was made just now.
    pub fn announcement(&self) -> String {
        let made = if self.created { ", made now" } else { "" };
        format!(
            "TLS certificate {} ({}{made})",
            self.fingerprint,
            self.cert_file.display()
        )
    }
}

/// Why no certificate could be served, with the file concerned.
#[derive(Debug)]
pub struct TlsError {
    /// The file (or directory) it failed on.
    pub path: PathBuf,
    /// What failed.
    pub cause: TlsErrorCause,
}

/// What failed with a certificate or key file.
#[derive(Debug)]
pub enum TlsErrorCause {
    /// The file does not exist.
    Missing,
    /// The operating system refused.
    Io {
        /// What was being done, e.g. `read`.
        action: &'static str,
        /// The error it gave.
        error: io::Error,
    },
    /// The file is larger than [`MAX_PEM_FILE`].
    TooLarge,
    /// The file is not PEM.
    NotPem(String),
    /// No `CERTIFICATE` block in it.
    NoCertificate,
    /// No private key block in it.
    NoKey,
    /// Other users may read or change the private key.
    KeyExposed {
        /// The file's permission bits.
        mode: u32,
    },
    /// The key (`path`) is not the one the certificate was made for.
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The index of a later certificate in the chain that the key does match, if any (the
        /// chain is out of order).
        matches: Option<usize>,
    },
    /// The server's certificate is not a usable X.509 certificate.
    BadCertificate(rustls::Error),
    /// The key is of a kind the ring provider cannot sign with.
    BadKey(rustls::Error),
    /// `chatd tls fingerprint`: no self-signed certificate has been made yet.
    NoneYet,
    /// The self-signed certificate is there but its key (`key`) is not.
    KeyLost {
        /// The missing key file.
        key: PathBuf,
    },
    /// rcgen could not make the certificate.
    Generate(rcgen::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.cause {
            TlsErrorCause::Missing => write!(f, "{path}: no such file (name a PEM file that exists)"),
            TlsErrorCause::Io { action, error } => write!(f, "{path}: cannot {action}: {error}"),
            TlsErrorCause::TooLarge => write!(
                f,
                "{path}: larger than {MAX_PEM_FILE} bytes, so not a PEM certificate or key"
            ),
            TlsErrorCause::NotPem(why) => write!(
                f,
                "{path}: not a PEM file ({why}); expected -----BEGIN ...----- blocks"
            ),
            TlsErrorCause::NoCertificate => write!(
                f,
                "{path}: no certificate in it; expected the PEM chain (-----BEGIN CERTIFICATE----- blocks), the server's own first"
            ),
            TlsErrorCause::NoKey => write!(
                f,
                "{path}: no private key in it; expected one -----BEGIN PRIVATE KEY----- (or RSA / EC PRIVATE KEY) block"
            ),
            TlsErrorCause::KeyExposed { mode } => write!(
                f,
                "{path}: the private key may be read or changed by other users (mode {:04o}); run chmod 600 {path}",
                mode & 0o7777
            ),
            TlsErrorCause::KeyMismatch {
                cert,
                matches: Some(n),
            } => write!(
                f,
                "{path}: the key is not that of the first certificate in {} but of certificate {} there; put the server's own certificate first, then those that signed it",
                cert.display(),
                n + 1
            ),
            TlsErrorCause::KeyMismatch { cert, matches: None } => write!(
                f,
                "{path}: the key does not belong to the certificate in {}; give the key it was made for",
                cert.display()
            ),
            TlsErrorCause::BadCertificate(error) => write!(
                f,
                "{path}: the first certificate cannot be used: {error}"
            ),
            TlsErrorCause::BadKey(error) => write!(
                f,
                "{path}: the private key cannot be used: {error} (RSA, ECDSA P-256 / P-384 and Ed25519 keys are)"
            ),
            TlsErrorCause::NoneYet => write!(
                f,
                "{path}: no certificate yet; start chatd with --tls-self-signed once to make one, or name yours with --tls-cert FILE"
            ),
            TlsErrorCause::KeyLost { key } => write!(
                f,
                "{path}: its key {} is missing; restore it, or remove {path} too to make a new pair (clients that trusted the old one will warn)",
                key.display()
            ),
            TlsErrorCause::Generate(error) => {
                write!(f, "{path}: cannot make a self-signed certificate: {error}")
            }
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            TlsErrorCause::Io { error, .. } => Some(error),
            TlsErrorCause::BadCertificate(error) | TlsErrorCause::BadKey(error) => Some(error),
            TlsErrorCause::Generate(error) => Some(error),
            _ => None,
        }
    }
}

impl From<StoreError> for TlsError {
    fn from(error: StoreError) -> TlsError {
        let cause = match error.cause {
            StoreErrorCause::Io { action, error } => TlsErrorCause::Io { action, error },
            StoreErrorCause::Parse(parse) => TlsErrorCause::NotPem(parse.to_string()),
        };
        TlsError {
            path: error.path,
            cause,
        }
    }
}

fn error(path: &Path, cause: TlsErrorCause) -> TlsError {
    TlsError {
        path: path.to_owned(),
        cause,
    }
}

/// The self-signed certificate and key files of the data directory `data_dir`.
pub fn self_signed_files(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join(TLS_DIR);
    (dir.join(CERT_FILE), dir.join(KEY_FILE))
}

/// Reads the certificate and key `source` names (making the self-signed pair in `data_dir` if
/// it does not exist yet) and builds the settings that serve them. Changes nothing if it fails.
pub fn load(source: &CertSource, data_dir: &Path) -> Result<ServerCert, TlsError> {
    let (cert, key, created) = match source {
        CertSource::Files { cert, key } => (cert.clone(), key.clone(), false),
        CertSource::SelfSigned => {
            let created = make_self_signed_once(data_dir)?;
            let (cert, key) = self_signed_files(data_dir);
            (cert, key, created)
        }
    };
    let chain = read_chain(&cert)?;
    let key_der = read_key(&key)?;
    let provider = Arc::new(ring::default_provider());
    let certified = certify(&cert, &key, chain, key_der, &provider)?;
    let fingerprint = Fingerprint::of(certified.cert[0].as_ref());
    let chain_len = certified.cert.len();
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&TLS13, &TLS12])
        .map_err(|e| error(&cert, TlsErrorCause::BadCertificate(e)))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    Ok(ServerCert {
        config: Arc::new(config),
        fingerprint,
        cert_file: cert,
        chain_len,
        created,
    })
}

/// The fingerprint of the certificate in use: the first one in `cert_file` if given, else the
/// self-signed one of `data_dir` (never made here: [`TlsErrorCause::NoneYet`] if there is none).
pub fn fingerprint_in_use(
    cert_file: Option<&Path>,
    data_dir: &Path,
) -> Result<Fingerprint, TlsError> {
    let (path, self_signed) = match cert_file {
        Some(path) => (path.to_owned(), false),
        None => (self_signed_files(data_dir).0, true),
    };
    match read_chain(&path) {
        Ok(chain) => Ok(Fingerprint::of(chain[0].as_ref())),
        Err(TlsError {
            cause: TlsErrorCause::Missing,
            path,
        }) if self_signed => Err(error(&path, TlsErrorCause::NoneYet)),
        Err(e) => Err(e),
    }
}

/// Pairs the chain with its key, checking that the key is the first certificate's.
fn certify(
    cert: &Path,
    key: &Path,
    chain: Vec<CertificateDer<'static>>,
    key_der: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| error(key, TlsErrorCause::BadKey(e)))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            let matches = (1..certified.cert.len()).find(|&i| {
                CertifiedKey::new(vec![certified.cert[i].clone()], certified.key.clone())
                    .keys_match()
                    .is_ok()
            });
            Err(error(
                key,
                TlsErrorCause::KeyMismatch {
                    cert: cert.to_owned(),
                    matches,
                },
            ))
        }
        Err(e) => Err(error(cert, TlsErrorCause::BadCertificate(e))),
    }
}

/// The bytes of `path` (at most [`MAX_PEM_FILE`]) and its metadata, from one open.
fn read_file(path: &Path) -> Result<(Vec<u8>, fs::Metadata), TlsError> {
    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => error(path, TlsErrorCause::Missing),
        _ => error(
            path,
            TlsErrorCause::Io {
                action: "open",
                error: e,
            },
        ),
    })?;
    let io_error = |action| move |e| error(path, TlsErrorCause::Io { action, error: e });
    let meta = file.metadata().map_err(io_error("read the metadata of"))?;
    if !meta.is_file() {
        let not_file = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
        return Err(io_error("read")(not_file));
    }
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error("read"))?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(error(path, TlsErrorCause::TooLarge));
    }
    Ok((bytes, meta))
}

/// The certificate chain in the PEM file `path`, in file order (at least one).
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let (bytes, _) = read_file(path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(path, pem_cause(e, TlsErrorCause::NoCertificate)))?;
    if chain.is_empty() {
        return Err(error(path, TlsErrorCause::NoCertificate));
    }
    Ok(chain)
}

/// The private key in the PEM file `path`, which other users must not be able to read (its
/// group may: Debian's ssl-cert group shares keys so).
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let (bytes, meta) = read_file(path)?;
    let key = PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| error(path, pem_cause(e, TlsErrorCause::NoKey)))?;
    if meta.mode() & 0o007 != 0 {
        let mode = meta.mode();
        return Err(error(path, TlsErrorCause::KeyExposed { mode }));
    }
    Ok(key)
}

fn pem_cause(e: pem::Error, none: TlsErrorCause) -> TlsErrorCause {
    match e {
        pem::Error::NoItemsFound => none,
        e => TlsErrorCause::NotPem(e.to_string()),
    }
}

/// Makes the self-signed key and certificate in `DATA_DIR/tls` unless they exist; true if it
/// made them. Concurrent first starts take turns on the directory's lock, so one makes the
/// pair and the others read it. The key is written (mode 0600, synced, renamed) before the
/// certificate, so a certificate never exists without its key unless someone removed it.
fn make_self_signed_once(data_dir: &Path) -> Result<bool, TlsError> {
    let dir = DataDir::open(&data_dir.join(TLS_DIR))?;
    let lock = dir.exclusive_lock()?;
    let (cert_path, key_path) = (dir.file(CERT_FILE), dir.file(KEY_FILE));
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => return Ok(false),
        (true, false) => return Err(error(&cert_path, TlsErrorCause::KeyLost { key: key_path })),
        // No certificate: a key alone is what a start killed mid-way left; it was never used.
        (false, _) => {}
    }
    let names = machine_names();
    let host = names
        .iter()
        .find(|n| n.parse::<IpAddr>().is_err() && *n != "localhost");
    let mut params = rcgen::CertificateParams::new(names.clone())
        .map_err(|e| error(&cert_path, TlsErrorCause::Generate(e)))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("chatd on {}", host.map_or("localhost", String::as_str)),
    );
    let key =
        rcgen::KeyPair::generate().map_err(|e| error(&key_path, TlsErrorCause::Generate(e)))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| error(&cert_path, TlsErrorCause::Generate(e)))?;
    for name in [KEY_FILE, CERT_FILE] {
        dir.remove_stale_temp_file(&lock, name)?;
    }
    if key_path.exists() {
        fs::remove_file(&key_path).map_err(|e| {
            error(
                &key_path,
                TlsErrorCause::Io {
                    action: "remove the key left without a certificate",
                    error: e,
                },
            )
        })?;
    }
    dir.replace(&lock, KEY_FILE, &key.serialize_pem(), 0o600)?;
    dir.sync(&lock)?;
    dir.replace(&lock, CERT_FILE, &cert.pem(), 0o600)?;
    dir.sync(&lock)?;
    Ok(true)
}

/// The names and addresses the self-signed certificate is made for: `localhost`, the host name,
/// 127.0.0.1, ::1, and the machine's other addresses as Linux lists them in /proc (none
/// elsewhere); link-local IPv6 addresses are left out (a certificate cannot name their scope).
pub fn machine_names() -> Vec<String> {
    let mut names = vec!["localhost".to_owned()];
    let uname = rustix::system::uname();
    if let Ok(host) = uname.nodename().to_str() {
        if is_dns_name(host) && !names.iter().any(|n| n.eq_ignore_ascii_case(host)) {
            names.push(host.to_owned());
        }
    }
    let mut addrs: Vec<IpAddr> = vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
    let proc_file = |path| fs::read_to_string(path).unwrap_or_default();
    let found = local_ipv4s(&proc_file("/proc/net/fib_trie"))
        .into_iter()
        .map(IpAddr::V4)
        .chain(
            local_ipv6s(&proc_file("/proc/net/if_inet6"))
                .into_iter()
                .map(IpAddr::V6),
        );
    for addr in found {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    names.extend(addrs.iter().map(IpAddr::to_string));
    names
}

/// A host name a certificate can carry: ASCII letters, digits, `-` and `.`.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The addresses of this host in the text of /proc/net/fib_trie: each `|-- ADDR` line followed
/// by a `/32 host LOCAL` line, except 127.0.0.0/8 beyond 127.0.0.1.
fn local_ipv4s(fib_trie: &str) -> Vec<Ipv4Addr> {
    let mut found = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in fib_trie.lines() {
        let line = line.trim();
        if let Some(addr) = line.strip_prefix("|-- ") {
            last = addr.parse().ok();
        } else if line == "/32 host LOCAL" {
            if let Some(addr) = last.take() {
                if !addr.is_loopback() && !found.contains(&addr) {
                    found.push(addr);
                }
            }
        }
    }
    found
}

/// The addresses in the text of /proc/net/if_inet6 (32 hex digits first on each line), except
/// loopback and link-local ones.
fn local_ipv6s(if_inet6: &str) -> Vec<Ipv6Addr> {
    let mut found = Vec::new();
    for line in if_inet6.lines() {
        let Some(hex_addr) = line.split_whitespace().next() else {
            continue;
        };
        let mut octets = [0u8; 16];
        if hex::decode_to_slice(hex_addr, &mut octets).is_err() {
            continue;
        }
        let addr = Ipv6Addr::from(octets);
        let link_local = addr.segments()[0] & 0xffc0 == 0xfe80;
        if !addr.is_loopback() && !link_local && !found.contains(&addr) {
            found.push(addr);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datadir::TempDir;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};

    /// A CA, a leaf it signed for `localhost`, and the leaf's key, as PEM.
    struct Pki {
        ca_pem: String,
        leaf_pem: String,
        leaf_der: CertificateDer<'static>,
        leaf_key_pem: String,
    }

    fn pki() -> Pki {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .signed_by(&leaf_key, &ca)
            .expect("leaf");
        Pki {
            ca_pem: ca.pem(),
            leaf_pem: leaf.pem(),
            leaf_der: leaf.der().clone(),
            leaf_key_pem: leaf_key.serialize_pem(),
        }
    }

    /// Writes `text` to `dir/name` with `mode`.
    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        fs::create_dir_all(dir).expect("test dir");
        let path = dir.join(name);
        let _ = fs::remove_file(&path);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .expect("create");
        io::Write::write_all(&mut file, text.as_bytes()).expect("write");
        path
    }

    fn files(cert: PathBuf, key: PathBuf) -> CertSource {
        CertSource::Files { cert, key }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    /// A full handshake in memory: a client trusting only `root` connects for `name`.
    fn handshake(
        server: Arc<ServerConfig>,
        root: CertificateDer<'static>,
        name: &str,
    ) -> Result<(), String> {
        let mut roots = RootCertStore::empty();
        roots.add(root).map_err(|e| e.to_string())?;
        let client = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
        let mut client =
            ClientConnection::new(Arc::new(client), name).map_err(|e| e.to_string())?;
        let mut server = ServerConnection::new(server).map_err(|e| e.to_string())?;
        for _ in 0..10 {
            let mut wire = Vec::new();
            client.write_tls(&mut wire).map_err(|e| e.to_string())?;
            server.read_tls(&mut &wire[..]).map_err(|e| e.to_string())?;
            server
                .process_new_packets()
                .map_err(|e| format!("server: {e}"))?;
            wire.clear();
            server.write_tls(&mut wire).map_err(|e| e.to_string())?;
            client.read_tls(&mut &wire[..]).map_err(|e| e.to_string())?;
            client
                .process_new_packets()
                .map_err(|e| format!("client: {e}"))?;
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
        }
        Err("the handshake did not finish".to_owned())
    }

    #[test]
    fn good_files_load_as_a_full_chain_that_serves_a_handshake() {
        let dir = TempDir::new("tls-good");
        let pki = pki();
        let chain = format!("{}{}", pki.leaf_pem, pki.ca_pem);
        let cert = write(&dir.0, "chain.pem", &chain, 0o644);
        let key = write(&dir.0, "key.pem", &pki.leaf_key_pem, 0o640);
        let loaded = load(&files(cert.clone(), key), &dir.0).expect("loads");
        assert_eq!(loaded.fingerprint(), Fingerprint::of(pki.leaf_der.as_ref()));
        assert_eq!((loaded.chain_len, loaded.created), (2, false));
        assert_eq!(loaded.cert_file, cert);
        let shown = loaded.announcement();
        assert!(
            shown.starts_with(&format!("TLS certificate {}", loaded.fingerprint)),
            "{shown}"
        );
        let ca = CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).expect("CA");
        assert_eq!(handshake(loaded.config.clone(), ca, "localhost"), Ok(()));
        assert!(!dir.0.join(TLS_DIR).exists(), "files given: nothing made");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_naming_both_files() {
        let dir = TempDir::new("tls-mismatch");
        let (one, other) = (pki(), pki());
        let cert = write(&dir.0, "cert.pem", &one.leaf_pem, 0o644);
        let key = write(&dir.0, "key.pem", &other.leaf_key_pem, 0o600);
        let refused = load(&files(cert.clone(), key.clone()), &dir.0).expect_err("mismatch");
        assert!(
            matches!(
                &refused.cause,
                TlsErrorCause::KeyMismatch { matches: None, .. }
            ),
            "{refused:?}"
        );
        let shown = refused.to_string();
        for wanted in [key.display().to_string(), cert.display().to_string()] {
            assert!(shown.contains(&wanted), "{shown}");
        }
        assert!(shown.contains("give the key it was made for"), "{shown}");
    }

    #[test]
    fn a_chain_out_of_order_is_refused_saying_to_put_the_leaf_first() {
        let dir = TempDir::new("tls-order");
        let pki = pki();
        let chain = format!("{}{}", pki.ca_pem, pki.leaf_pem);
        let cert = write(&dir.0, "chain.pem", &chain, 0o644);
        let key = write(&dir.0, "key.pem", &pki.leaf_key_pem, 0o600);
        let refused = load(&files(cert, key), &dir.0).expect_err("CA first");
        assert!(
            matches!(
                &refused.cause,
                TlsErrorCause::KeyMismatch {
                    matches: Some(1),
                    ..
                }
            ),
            "{refused:?}"
        );
        let shown = refused.to_string();
        assert!(shown.contains("certificate 2"), "{shown}");
        assert!(shown.contains("server's own certificate first"), "{shown}");
    }

    #[test]
    fn empty_missing_garbled_or_exposed_files_are_refused_each_with_its_reason() {
        let dir = TempDir::new("tls-bad-files");
        let pki = pki();
        let cert = write(&dir.0, "cert.pem", &pki.leaf_pem, 0o644);
        let key = write(&dir.0, "key.pem", &pki.leaf_key_pem, 0o600);
        let empty = write(&dir.0, "empty.pem", "", 0o600);
        let garbled = write(
            &dir.0,
            "garbled.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n",
            0o600,
        );
        let exposed = write(&dir.0, "exposed.pem", &pki.leaf_key_pem, 0o644);
        let missing = dir.0.join("missing.pem");
        let cases: [(PathBuf, PathBuf, &Path, &str); 6] = [
            (empty.clone(), key.clone(), &empty, "no certificate in it"),
            (cert.clone(), empty.clone(), &empty, "no private key in it"),
            (garbled.clone(), key.clone(), &garbled, "not a PEM file"),
            (cert.clone(), exposed.clone(), &exposed, "chmod 600"),
            (missing.clone(), key.clone(), &missing, "no such file"),
            // A certificate where the key should be: no key in it.
            (cert.clone(), cert.clone(), &cert, "no private key in it"),
        ];
        for (cert, key, named, why) in cases {
            let refused = load(&files(cert.clone(), key.clone()), &dir.0).expect_err("refused");
            let shown = refused.to_string();
            assert_eq!(refused.path, named, "{cert:?} {key:?}: {shown}");
            assert!(shown.contains(why), "{cert:?} {key:?}: {shown}");
        }
        let shown = load(&files(cert, exposed), &dir.0)
            .expect_err("exposed")
            .to_string();
        assert!(shown.contains("(mode 0644)"), "{shown}");
    }

    #[test]
    fn the_self_signed_pair_is_made_once_private_and_reused_with_the_same_fingerprint() {
        let data = TempDir::new("tls-self-signed");
        let none = fingerprint_in_use(None, &data.0).expect_err("none yet");
        assert!(matches!(none.cause, TlsErrorCause::NoneYet), "{none:?}");
        assert!(
            none.to_string().contains("--tls-self-signed once"),
            "{none}"
        );
        let first = load(&CertSource::SelfSigned, &data.0).expect("made");
        let (cert, key) = self_signed_files(&data.0);
        assert!(first.created);
        assert_eq!(first.cert_file, cert);
        assert!(
            first.announcement().ends_with(", made now)"),
            "{}",
            first.announcement()
        );
        assert_eq!(mode(&data.0.join(TLS_DIR)), 0o700);
        assert_eq!((mode(&cert), mode(&key)), (0o600, 0o600));
        let pem = fs::read_to_string(&cert).expect("cert");
        let again = load(&CertSource::SelfSigned, &data.0).expect("reused");
        assert!(!again.created);
        assert_eq!(again.fingerprint, first.fingerprint);
        assert_eq!(
            fs::read_to_string(&cert).expect("cert"),
            pem,
            "not rewritten"
        );
        assert_eq!(
            fingerprint_in_use(None, &data.0).expect("read"),
            first.fingerprint
        );
        assert_eq!(
            fingerprint_in_use(Some(&cert), Path::new("/nonexistent")).expect("named"),
            first.fingerprint
        );
        // The machine's names: a client verifying it (as a root) by name or address succeeds.
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM");
        for name in ["localhost", "127.0.0.1", "::1"] {
            let shaken = handshake(first.config.clone(), der.clone(), name);
            assert_eq!(shaken, Ok(()), "{name}");
        }
        let stranger = handshake(first.config.clone(), der, "example.org");
        assert!(stranger.is_err(), "not made for other names");
    }

    #[test]
    fn concurrent_first_starts_make_one_pair_and_all_read_it() {
        let data = TempDir::new("tls-concurrent");
        let starts: Vec<_> = (0..4)
            .map(|_| {
                let dir = data.0.clone();
                std::thread::spawn(move || load(&CertSource::SelfSigned, &dir).expect("loads"))
            })
            .collect();
        let loaded: Vec<ServerCert> = starts.into_iter().map(|t| t.join().expect("ran")).collect();
        assert_eq!(loaded.iter().filter(|c| c.created).count(), 1);
        assert!(loaded
            .iter()
            .all(|c| c.fingerprint == loaded[0].fingerprint));
        let left: Vec<_> = fs::read_dir(data.0.join(TLS_DIR))
            .expect("tls dir")
            .map(|e| e.expect("entry").file_name().into_string().expect("UTF-8"))
            .filter(|name| name.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_failing_reread_changes_nothing_and_a_lost_key_is_not_replaced() {
        let data = TempDir::new("tls-reread");
        let first = load(&CertSource::SelfSigned, &data.0).expect("made");
        let (cert, key) = self_signed_files(&data.0);
        let pem = fs::read_to_string(&cert).expect("cert");
        fs::remove_file(&key).expect("remove the key");
        let refused = load(&CertSource::SelfSigned, &data.0).expect_err("key lost");
        assert!(
            matches!(refused.cause, TlsErrorCause::KeyLost { .. }),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("remove"), "{refused}");
        assert_eq!(fs::read_to_string(&cert).expect("kept"), pem);
        assert!(!key.exists(), "no new key for the old certificate");
        assert_eq!(
            fingerprint_in_use(None, &data.0).expect("still"),
            first.fingerprint
        );
        // A key left by a start killed before its certificate was written is replaced.
        fs::remove_file(&cert).expect("remove the cert");
        write(&data.0.join(TLS_DIR), KEY_FILE, "half", 0o600);
        let remade = load(&CertSource::SelfSigned, &data.0).expect("remade");
        assert!(remade.created);
        assert_ne!(remade.fingerprint, first.fingerprint);
    }

    #[test]
    fn the_machines_addresses_are_read_from_procs_tables() {
        let fib_trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
             |-- 127.0.0.1\n              /32 host LOCAL\n           |-- 192.0.2.0\n              /24 link UNICAST\n\
             |-- 192.0.2.2\n              /32 host LOCAL\n        |-- 192.0.2.255\n           /32 link BROADCAST\n\
             Local:\n           |-- 192.0.2.2\n              /32 host LOCAL\n";
        assert_eq!(local_ipv4s(fib_trie), vec![Ipv4Addr::new(192, 0, 2, 2)]);
        let if_inet6 = "00000000000000000000000000000001 01 80 10 80       lo\n\
             fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n\
             fd000000000000000000000000000002 04 40 00 82     eth0\n";
        let expected: Ipv6Addr = "fd00::2".parse().expect("address");
        assert_eq!(local_ipv6s(if_inet6), vec![expected]);
        assert!(local_ipv4s("").is_empty());
        let names = machine_names();
        assert_eq!(&names[..1], ["localhost"]);
        assert!(names.contains(&"127.0.0.1".to_owned()) && names.contains(&"::1".to_owned()));
        assert!(!is_dns_name("my host") && is_dns_name("box-1.lan"));
    }
}
