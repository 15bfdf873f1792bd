//! A certificate's SHA-256 fingerprint, as people read and type it.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The SHA-256 digest of a certificate's DER bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of the certificate `der`.
    pub fn of(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }
}

/// Shown as `SHA256:` and 32 pairs of upper-case hex digits joined by colons.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SHA256:")?;
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

/// Why a typed fingerprint was not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadFingerprint(String);

impl fmt::Display for BadFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a SHA-256 fingerprint: expected SHA256: and 64 hex digits (colons optional)",
            self.0
        )
    }
}

impl std::error::Error for BadFingerprint {}

/// Takes `SHA256:` (any case, optional) and 64 hex digits in any case, with or without colons.
impl FromStr for Fingerprint {
    type Err = BadFingerprint;

    fn from_str(typed: &str) -> Result<Fingerprint, BadFingerprint> {
        let bad = || BadFingerprint(typed.to_owned());
        let trimmed = typed.trim();
        let digits = match trimmed.get(..7) {
            Some(prefix) if prefix.eq_ignore_ascii_case("sha256:") => &trimmed[7..],
            _ => trimmed,
        };
        let hex_only: String = digits.chars().filter(|&c| c != ':').collect();
        let mut bytes = [0; 32];
        hex::decode_to_slice(&hex_only, &mut bytes).map_err(|_| bad())?;
        Ok(Fingerprint(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_as_openssl_prints_it_and_read_back_in_any_spelling() {
        let print = Fingerprint::of(b"certificate");
        let shown = print.to_string();
        assert!(shown.starts_with("SHA256:"));
        assert_eq!(shown.len(), 7 + 32 * 3 - 1);
        assert_eq!(shown.parse::<Fingerprint>(), Ok(print));
        let bare = hex::encode(print.0);
        assert_eq!(bare.parse::<Fingerprint>(), Ok(print));
        assert_eq!(format!("sha256:{bare}").parse::<Fingerprint>(), Ok(print));
        assert!("SHA256:12".parse::<Fingerprint>().is_err());
        assert!("".parse::<Fingerprint>().is_err());
        assert!(format!("{bare}00").parse::<Fingerprint>().is_err());
    }
}
