//! What the stack keeps to whatever bytes it is fed, in one place for its unit tests and its fuzz
//! target (`fuzz/fuzz_targets/sniff_stack.rs`): a violation panics.

use std::sync::Arc;

use rustls::ServerConfig;

use super::{Transport, TransportError};

/// How feeding a new transport some bytes ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every piece was taken; this plaintext came out.
    Taken(Vec<u8>),
    /// TLS came to a server without it.
    NotEnabled,
    /// The TLS layer gave up.
    Failed,
}

/// Feeds `data` to a new transport in the pieces `cuts` (ascending offsets) make, as reads give
/// them. Panics if a failure gives no reason or leaves anything but whole TLS records to write.
pub fn feed(config: Option<&Arc<ServerConfig>>, data: &[u8], cuts: &[usize]) -> Outcome {
    let mut transport = Transport::Unknown;
    let mut plain = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&data.len())) {
        match transport.receive(&data[start..end], config, &mut plain) {
            Ok(_) => {}
            Err(TransportError::TlsNotEnabled) => return Outcome::NotEnabled,
            Err(TransportError::Tls(failure)) => {
                assert!(!failure.why.is_empty(), "a failure says why");
                assert_whole_records(&failure.alert);
                return Outcome::Failed;
            }
        }
        start = end;
    }
    Outcome::Taken(plain)
}

/// Panics unless `bytes` are whole TLS records: what a failure leaves to write is what was
/// queued before it (which the peer needs to read an encrypted alert) and the alert, if rustls
/// sends one for it.
pub fn assert_whole_records(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        assert!(rest.len() >= 5, "a cut record header: {bytes:?}");
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        assert!(rest.len() >= 5 + len, "a cut record: {bytes:?}");
        assert!((0x14..=0x17).contains(&rest[0]), "a record type: {bytes:?}");
        rest = &rest[5 + len..];
    }
}
