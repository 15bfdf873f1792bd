//! Whether to trust the certificate a server shows: [`decide`] is the rule, pure;
//! [`PinVerifier`] is the rustls verifier that applies it during the handshake.
//!
//! The rule, in order: a fingerprint given with `--tls-fingerprint` must be the certificate's
//! (and then nothing else is asked); a certificate that verifies against the trusted roots (or
//! `--tls-ca`) for the host's name is taken; otherwise the `known_servers` file decides: a line
//! with this certificate pins it, a line with another is a changed certificate, no line is an
//! unknown one the window may offer to trust. The handshake's signatures are always checked
//! with the provider's algorithms, whichever way the certificate was taken.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use super::known::{KnownServers, Lookup};
use crate::tls::Fingerprint;

/// How a certificate was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// It verifies against the trusted roots for the host's name.
    Verified,
    /// Its fingerprint is the one given or the one remembered.
    Pinned,
}

/// Why a certificate was not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It does not verify and the server is not in the known-servers file: the window asks the
    /// user, the line mode wants `--tls-fingerprint`.
    Unknown {
        /// The certificate's fingerprint.
        seen: Fingerprint,
        /// Why it does not verify.
        why: String,
    },
    /// The known-servers file holds another certificate for the server.
    Changed {
        /// The certificate's fingerprint.
        seen: Fingerprint,
        /// The one remembered.
        expected: Fingerprint,
        /// The file.
        file: PathBuf,
        /// The line of the file that holds `expected`.
        line: usize,
    },
    /// It is not the one given with `--tls-fingerprint`.
    NotGiven {
        /// The certificate's fingerprint.
        seen: Fingerprint,
        /// The one given.
        given: Fingerprint,
    },
}

/// What [`decide`] came to.
pub type Verdict = Result<Accepted, Refusal>;

/// The rule: `verified` is what checking against the roots said (`Err` holds why it failed),
/// `seen` the certificate's fingerprint, `given` the `--tls-fingerprint`, `known` what the
/// known-servers `file` says of `seen`.
pub fn decide(
    verified: Result<(), String>,
    seen: Fingerprint,
    given: Option<Fingerprint>,
    known: Lookup,
    file: Option<&PathBuf>,
) -> Verdict {
    if let Some(given) = given {
        return if given == seen {
            Ok(Accepted::Pinned)
        } else {
            Err(Refusal::NotGiven { seen, given })
        };
    }
    let why = match verified {
        Ok(()) => return Ok(Accepted::Verified),
        Err(why) => why,
    };
    match (known, file) {
        (Lookup::Known { .. }, _) => Ok(Accepted::Pinned),
        (Lookup::Changed { expected, line }, Some(file)) => Err(Refusal::Changed {
            seen,
            expected,
            file: file.clone(),
            line,
        }),
        _ => Err(Refusal::Unknown { seen, why }),
    }
}

impl Refusal {
    /// The certificate's fingerprint.
    pub fn seen(&self) -> Fingerprint {
        match self {
            Refusal::Unknown { seen, .. }
            | Refusal::Changed { seen, .. }
            | Refusal::NotGiven { seen, .. } => *seen,
        }
    }

    /// The text for `server` (`host:port`), some lines long; the line mode adds how to go on
    /// for an unknown certificate (see [`Refusal::scripted_hint`]).
    pub fn explain(&self, server: &str) -> String {
        match self {
            Refusal::Unknown { seen, why } => format!(
                "the certificate of {server} is not trusted ({why}), and {server} is not among the \
                 known servers.\nIts fingerprint is {seen}"
            ),
            Refusal::Changed {
                seen,
                expected,
                file,
                line,
            } => format!(
                "WARNING: THE CERTIFICATE OF {server} HAS CHANGED!\n\
                 Someone may be listening in on the connection (a man in the middle), or the \
                 server was given a new certificate.\n\
                 expected {expected} ({}, line {line})\n\
                 received {seen}\n\
                 Not connecting. If the server's certificate was changed on purpose (ask its \
                 host: `chatd tls fingerprint`), remove line {line} of {} and connect again.",
                file.display(),
                file.display(),
            ),
            Refusal::NotGiven { seen, given } => format!(
                "the certificate of {server} is not the one given with --tls-fingerprint:\n\
                 expected {given}\nreceived {seen}\nNot connecting."
            ),
        }
    }

    /// How a script goes on after an unknown certificate.
    pub fn scripted_hint(&self) -> Option<String> {
        match self {
            Refusal::Unknown { seen, .. } => Some(format!(
                "Not connecting. If that is the server's certificate (its host sees it with \
                 `chatd tls fingerprint`), connect with --tls-fingerprint {seen}, or join once \
                 in the window (chat on a terminal), which offers to remember it."
            )),
            _ => None,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Unknown { seen, why } => write!(f, "unknown certificate {seen} ({why})"),
            Refusal::Changed { seen, expected, .. } => {
                write!(f, "changed certificate {seen}, expected {expected}")
            }
            Refusal::NotGiven { seen, given } => {
                write!(f, "certificate {seen} is not the given {given}")
            }
        }
    }
}

/// Why a certificate did not verify, in a user's words.
pub fn describe(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "not signed by a trusted authority: self-signed?".to_owned()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "not issued for this name".to_owned(),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "expired".to_owned(),
        other => other.to_string(),
    }
}

/// A [`ServerCertVerifier`] that checks the roots first and falls back to the pins; it keeps
/// its verdict for the connection to read after the handshake.
#[derive(Debug)]
pub struct PinVerifier {
    /// `None` when there are no trusted roots at all (then only pins are taken).
    roots: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
    given: Option<Fingerprint>,
    known: KnownServers,
    /// The known-servers file, if the user has one (or may have).
    file: Option<PathBuf>,
    /// The server's `host:port`.
    server: String,
    verdict: Arc<Mutex<Option<Verdict>>>,
}

impl PinVerifier {
    /// A verifier for `server` (`host:port`).
    pub fn new(
        roots: Option<Arc<WebPkiServerVerifier>>,
        algorithms: WebPkiSupportedAlgorithms,
        given: Option<Fingerprint>,
        known: KnownServers,
        file: Option<PathBuf>,
        server: String,
    ) -> PinVerifier {
        PinVerifier {
            roots,
            algorithms,
            given,
            known,
            file,
            server,
            verdict: Arc::new(Mutex::new(None)),
        }
    }

    /// Where the verdict will be, once the server has shown its certificate.
    pub fn verdict(&self) -> Arc<Mutex<Option<Verdict>>> {
        Arc::clone(&self.verdict)
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = match &self.roots {
            Some(roots) => roots
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .map(drop)
                .map_err(|e| describe(&e)),
            None => Err("no trusted authorities on this machine".to_owned()),
        };
        let seen = Fingerprint::of(end_entity);
        let known = self.known.lookup(&self.server, &seen);
        let verdict = decide(verified, seen, self.given, known, self.file.as_ref());
        let taken = verdict.is_ok();
        *self.verdict.lock().unwrap_or_else(PoisonError::into_inner) = Some(verdict);
        if taken {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> PathBuf {
        PathBuf::from("/home/u/.config/chatd/known_servers")
    }

    fn run(
        verified: Result<(), &str>,
        seen: Fingerprint,
        given: Option<Fingerprint>,
        known: Lookup,
    ) -> Verdict {
        decide(
            verified.map_err(str::to_owned),
            seen,
            given,
            known,
            Some(&file()),
        )
    }

    #[test]
    fn a_verified_certificate_is_taken_whatever_the_file_says() {
        let (a, b) = (Fingerprint::of(b"a"), Fingerprint::of(b"b"));
        assert_eq!(
            run(Ok(()), a, None, Lookup::Unknown),
            Ok(Accepted::Verified)
        );
        let changed = Lookup::Changed {
            expected: b,
            line: 4,
        };
        assert_eq!(run(Ok(()), a, None, changed), Ok(Accepted::Verified));
    }

    #[test]
    fn an_unverified_certificate_is_taken_only_when_pinned() {
        let (a, b) = (Fingerprint::of(b"a"), Fingerprint::of(b"b"));
        let bad = Err("self-signed");
        assert_eq!(
            run(bad, a, None, Lookup::Known { line: 2 }),
            Ok(Accepted::Pinned)
        );
        assert_eq!(
            run(bad, a, None, Lookup::Unknown),
            Err(Refusal::Unknown {
                seen: a,
                why: "self-signed".into()
            })
        );
        assert_eq!(
            run(
                bad,
                a,
                None,
                Lookup::Changed {
                    expected: b,
                    line: 4
                }
            ),
            Err(Refusal::Changed {
                seen: a,
                expected: b,
                file: file(),
                line: 4
            })
        );
    }

    #[test]
    fn a_given_fingerprint_must_match_even_a_verified_certificate() {
        let (a, b) = (Fingerprint::of(b"a"), Fingerprint::of(b"b"));
        assert_eq!(
            run(Err("self-signed"), a, Some(a), Lookup::Unknown),
            Ok(Accepted::Pinned)
        );
        assert_eq!(
            run(Ok(()), a, Some(b), Lookup::Known { line: 1 }),
            Err(Refusal::NotGiven { seen: a, given: b })
        );
    }

    #[test]
    fn a_changed_certificate_names_the_file_and_line_and_both_prints() {
        let (a, b) = (Fingerprint::of(b"a"), Fingerprint::of(b"b"));
        let refusal = Refusal::Changed {
            seen: a,
            expected: b,
            file: file(),
            line: 4,
        };
        let text = refusal.explain("localhost:3001");
        assert!(text.contains("WARNING: THE CERTIFICATE OF localhost:3001 HAS CHANGED"));
        assert!(text.contains(&format!("expected {b} ({}, line 4)", file().display())));
        assert!(text.contains(&format!("received {a}")));
        assert!(text.contains(&format!("remove line 4 of {}", file().display())));
        assert_eq!(refusal.scripted_hint(), None);
    }
}
