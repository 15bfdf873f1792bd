//! The cluster's link to Redis (`--cluster redis://HOST:PORT`): several chatd nodes, one chat.
//!
//! Every node appends what changes the chat to one Redis stream, [`LOG`], and reads that stream
//! in order, so every node's core applies the same entries in the same order (see
//! [`crate::core::cluster`]). This module is the transport alone; it knows entries only as encoded
//! bytes, and the shell's bridge (`server/cluster.rs`) turns them into the core's inputs.
//!
//! - [`entry`]: the log's entries and their encoding (the byte format PROTOCOL.md describes).
//! - [`keys`]: the Redis keys and the Lua scripts that claim and release a name atomically with
//!   the entry that says so.
//! - [`link`]: the handle the loop keeps, and the three helper threads behind it: [`writer`]
//!   (appends, pipelined), [`reader`] (`XREAD BLOCK` from the last id applied) and [`lease`] (the
//!   node's heartbeat and its users' name leases, and the other nodes' heartbeats checked).
//!   Each wakes the loop through its `mio::Waker`, as the password worker does; none ever blocks
//!   the loop.
//! - [`registry`]: the cluster's accounts and bans, kept in Redis in the files' format.
//! - [`backoff`]: how long a thread waits before it tries Redis again.

pub mod backoff;
pub mod entry;
pub mod keys;
pub mod lease;
pub mod link;
pub mod reader;
pub mod registry;
pub mod settings;
pub mod writer;

pub use keys::LOG;
pub use link::{Event, Link, Outgoing, Part};
pub use settings::ClusterConfig;
