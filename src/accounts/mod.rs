//! Accounts and bans: the pure model, the files under the data directory, and password hashing.
//!
//! - [`model`]: accounts, bans, changes and their file formats; no I/O.
//! - [`hash`]: argon2id PHC strings; slow on purpose, so never on the event loop.

pub mod hash;
pub mod model;
