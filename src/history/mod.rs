//! The history store: every room's lines and every direct message, kept on disk in SQLite
//! (`DATA_DIR/history.sqlite`), so that history survives a restart and registered users get the
//! direct messages sent while they were offline.
//!
//! - [`job`]: the pure vocabulary between the core and the store: what the core asks to keep or
//!   to look up ([`Job`]), and what comes back ([`Answer`]). No I/O.
//! - [`store`]: the SQLite file and the queries on it; used by the server's history thread and at
//!   start-up, never on the event loop.
//!
//! # The query API
//!
//! Everything a reader needs is four calls on [`store::HistoryStore`], so that another mode (IRC's
//! `draft/chathistory`) asks the same questions:
//!
//! - [`store::HistoryStore::recent`]`(room, limit)`: the last lines of a room, oldest first, and
//!   the room's last line number (what start-up loads into memory);
//! - [`store::HistoryStore::before`]`(room, seq, limit)`: up to `limit` lines of a room numbered
//!   below `seq`, oldest first, and whether older ones remain (what `/history` pages with);
//! - [`store::HistoryStore::mailbox`]`(name)`: the direct messages waiting for a registered user;
//! - [`store::HistoryStore::dms_between`]`(a, b, limit)`: the last direct messages between two users.
//!
//! A room's lines are keyed by the room's name, lower-cased, and the line's number in the room
//! (which goes on across restarts: the core starts each room after its last kept line).

pub mod job;
pub mod store;

pub use job::{Answer, Job, KeptDm, KeptLine, Mail};
pub use store::{HistoryError, HistoryStore};
