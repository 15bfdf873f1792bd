//! TLS for both ends: the server's certificate (from files or made on first start) and the
//! fingerprints that name a certificate to people (`SHA256:AB:CD:...`, as `openssl x509
//! -fingerprint -sha256` prints it, so the two can be compared by eye).

pub mod fingerprint;
pub mod server;

pub use fingerprint::Fingerprint;
pub use server::{ServerCert, TlsError};
