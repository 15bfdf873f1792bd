//! Password hashing: argon2id with at least OWASP's parameters, stored as PHC strings.
//!
//! One hash costs 19 MiB and tens of milliseconds on purpose, so the server calls this only from
//! its worker thread, never from the event loop; `chatd user` calls it directly.

use std::fmt;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// Memory per hash in KiB: OWASP's minimum for argon2id, 19 MiB.
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Passes over the memory: OWASP's minimum with 19 MiB.
pub const ITERATIONS: u32 = 2;
/// Lanes: one, so a hash never takes more than one core.
pub const LANES: u32 = 1;

/// Most memory a stored hash may ask for when it is verified, in KiB (256 MiB).
///
/// A PHC string carries its own parameters; these bounds keep a hand-edited or damaged accounts
/// file from making one login allocate gigabytes or run for minutes.
pub const MAX_VERIFY_MEMORY_KIB: u32 = 256 * 1024;
/// Most passes a stored hash may ask for when it is verified.
pub const MAX_VERIFY_ITERATIONS: u32 = 16;
/// Most lanes a stored hash may ask for when it is verified.
pub const MAX_VERIFY_LANES: u32 = 16;

/// A password that could not be hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashError {
    reason: String,
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot hash the password: {}", self.reason)
    }
}

impl std::error::Error for HashError {}

fn hasher() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).map_err(|e| HashError {
        reason: e.to_string(),
    })?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with argon2id (19 MiB, 2 passes, 1 lane) and a fresh 16-byte salt from the
/// operating system's random source; returns the PHC string, e.g.
/// `$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH`.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let hash = hasher()?
        .hash_password(password.as_bytes())
        .map_err(|e| HashError {
            reason: e.to_string(),
        })?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`.
///
/// The parameters come from `phc`; a string that is not argon2id, cannot be parsed, or asks for
/// more than the `MAX_VERIFY_*` bounds never matches. The crate compares in constant time.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm.as_str() != Algorithm::Argon2id.as_str() {
        return false;
    }
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_VERIFY_MEMORY_KIB
        || params.t_cost() > MAX_VERIFY_ITERATIONS
        || params.p_cost() > MAX_VERIFY_LANES
    {
        return false;
    }
    let Ok(argon2) = hasher() else {
        return false;
    };
    argon2.verify_password(password.as_bytes(), &parsed).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_password() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horsE", &phc));
        assert!(!verify_password("", &phc));
    }

    #[test]
    fn salts_are_fresh() {
        let a = hash_password("same").unwrap();
        let b = hash_password("same").unwrap();
        assert_ne!(a, b);
        assert!(verify_password("same", &a) && verify_password("same", &b));
    }

    #[test]
    fn malformed_or_greedy_hashes_never_match() {
        let phc = hash_password("pw").unwrap();
        let greedy = phc.replace("m=19456", "m=4194304");
        let argon2i = phc.replace("$argon2id$", "$argon2i$");
        for bad in [
            "",
            "plaintext",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$",
            &greedy,
            &argon2i,
            &phc[..phc.len() - 2],
        ] {
            assert!(!verify_password("pw", bad), "{bad}");
        }
    }
}
