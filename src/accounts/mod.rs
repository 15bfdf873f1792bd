//! Accounts and bans: the pure model, the files under the data directory, and password hashing.

pub mod model;
