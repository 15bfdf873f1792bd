//! Feeds arbitrary bytes, cut at two arbitrary points as socket reads would cut them, to the
//! connection stack: the sniffer (`server::stack::sniff::sniff`) and the outermost layer
//! (`server::stack::Transport`) with a real rustls server configuration.
//!
//! The sniffer must give on the bytes so far what it gives on the whole once it has decided,
//! decide within `MAX_PROBE` bytes, and never change its mind. The transport must never panic,
//! give the same outcome however the bytes are cut, pass plain bytes through unchanged, refuse
//! TLS cleanly where there is none, and fail with a reason and whole records to write.

#![no_main]

use std::sync::{Arc, OnceLock};

use chatd::server::stack::sniff::{sniff, Verdict, MAX_PROBE};
use chatd::server::stack::properties::{feed, Outcome};
use libfuzzer_sys::fuzz_target;
use rustls::crypto::ring;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

/// The server's TLS settings, with a certificate made once per fuzzing process.
fn config() -> &'static Arc<ServerConfig> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("rustls's versions")
            .with_no_client_auth()
            .with_single_cert(vec![made.cert.der().clone()], key)
            .expect("the server's settings");
        Arc::new(config)
    })
}

fuzz_target!(|data: &[u8]| {
    // The first two bytes say where the rest is cut.
    let [a, b, bytes @ ..] = data else {
        return;
    };
    let at = |n: &u8| usize::from(*n) % (bytes.len() + 1);
    let mut cuts = [at(a), at(b)];
    cuts.sort_unstable();

    let whole = sniff(bytes);
    let mut decided = None;
    for k in 0..=bytes.len().min(2 * MAX_PROBE) {
        let verdict = sniff(&bytes[..k]);
        match decided {
            Some(first) => assert_eq!(verdict, first, "more bytes changed the verdict"),
            None if verdict != Verdict::Undecided => {
                assert!(k <= MAX_PROBE, "decided only at {k} bytes");
                decided = Some(verdict);
            }
            None => {}
        }
    }
    if bytes.len() >= MAX_PROBE {
        assert_ne!(whole, Verdict::Undecided, "undecided past the probe");
        assert_eq!(decided, Some(whole));
    }

    let config = config();
    let outcome = feed(Some(config), bytes, &cuts);
    assert_eq!(outcome, feed(Some(config), bytes, &[]), "cut at {cuts:?}");
    match bytes.first() {
        Some(0x16) => {
            // No handshake finishes on the client's bytes alone: no plaintext comes out.
            assert!(
                matches!(&outcome, Outcome::Taken(p) if p.is_empty()) || outcome == Outcome::Failed
            );
            assert_eq!(feed(None, bytes, &cuts), Outcome::NotEnabled);
        }
        _ => {
            assert_eq!(
                outcome,
                Outcome::Taken(bytes.to_vec()),
                "plain passes unchanged"
            );
            assert_eq!(feed(None, bytes, &cuts), outcome);
        }
    }
});
