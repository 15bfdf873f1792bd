//! Accounts and bans: the pure model, the files under the data directory, and password hashing.
//!
//! - [`model`]: accounts, bans, changes and their file formats; no I/O.
//! - [`store`]: locked, atomic read-modify-write of `DIR/accounts` and `DIR/bans` (the locking
//!   and replacing are [`crate::datadir`]'s, shared with the rooms file).
//! - [`hash`]: argon2id PHC strings; slow on purpose, so never on the event loop.
//! - [`usercmd`]: `chatd user ...`, the offline tool built on `store` and `hash`.

pub mod hash;
pub mod model;
pub mod store;
pub mod usercmd;

pub use store::{Store, StoreError};
