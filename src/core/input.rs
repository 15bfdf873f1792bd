//! What the core is told: connections coming and going, decoded messages, console commands.

use std::fmt;
use std::time::Instant;

use super::cluster::{Health, Shared, Snapshot, Unshared};
use crate::accounts::model::Registry;
use crate::proto::msg::{ClientMsg, HostCommand, Stamp};
use crate::proto::DecodeError;

/// A connection's identity for the life of the server; never reused, unlike a slab key.
///
/// The shell packs a serial number (1, 2, 3, ... in order of arrival) in the high 32 bits and
/// its own slot in the low 32. Logs show the serial alone (`conn 12`): short and stable. An id
/// without a serial (as in tests) is shown whole.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 >> 32 {
            0 => write!(f, "conn {}", self.0),
            serial => write!(f, "conn {serial}"),
        }
    }
}

/// The time, as the shell read it once for a batch of inputs.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// Monotonic time, for deadlines.
    pub instant: Instant,
    /// Wall-clock time, for what users are shown.
    pub stamp: Stamp,
}

/// One thing that happened, for [`super::Chat::handle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A client connected.
    Connected {
        /// Its identity.
        conn: ConnId,
        /// Where from (for per-address limits).
        peer: std::net::IpAddr,
        /// Whether what it sends is encrypted (TLS), so that a password may cross it.
        secure: bool,
    },
    /// A client sent a whole message.
    Message {
        /// Who sent it.
        conn: ConnId,
        /// What it says.
        msg: ClientMsg,
    },
    /// A client sent bytes that could not be decoded.
    BadInput {
        /// Who sent them.
        conn: ConnId,
        /// What was wrong.
        error: DecodeError,
    },
    /// A client's connection is gone (closed by either side, lost, or cut by the shell).
    Disconnected {
        /// Whose.
        conn: ConnId,
    },
    /// A deadline from [`super::Chat::next_deadline`] has passed (spurious ticks are harmless).
    Tick,
    /// The host typed a command on the console.
    Host(HostCommand),
    /// A password job the core asked for ([`super::Action::Password`]) finished.
    PasswordDone {
        /// The connection it was for.
        conn: ConnId,
        /// How it went.
        outcome: PasswordOutcome,
    },
    /// The accounts and bans were read again from disk (changed by `chatd user`, or SIGHUP).
    RegistryLoaded(Registry),
    /// The history store answered an [`super::Action::History`] job.
    History(crate::history::Answer),
    /// Cluster mode: an entry of the cluster's log, applied in the log's order, its ids already
    /// this node's (a user of another node has a local ghost id). See [`super::cluster`].
    Applied(Shared),
    /// Cluster mode: the shell could not append `shared` (asked for by
    /// [`super::Action::Publish`]) to the log, for the reason `why`.
    Unshared {
        /// What was not shared.
        shared: Shared,
        /// Why.
        why: Unshared,
    },
    /// Cluster mode: the chat's state as other nodes have it, for a node that starts late;
    /// applied silently (the only action it may ask for is saving the persistent rooms), before
    /// any entry that follows it in the log.
    Restore(Snapshot),
    /// Cluster mode: how the cluster is doing; the users are told when it changes.
    Cluster(Health),
}

/// Slow password work, done off the event loop.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordJob {
    /// Check `password` against the stored hash `phc`.
    Verify {
        /// The password given.
        password: String,
        /// The stored PHC string.
        phc: String,
    },
    /// Hash a new password.
    Hash {
        /// The new password.
        password: String,
    },
    /// Check `old` against `phc`, and if it matches, hash `new`.
    Rehash {
        /// The current password given.
        old: String,
        /// The stored PHC string.
        phc: String,
        /// The new password.
        new: String,
    },
}

impl fmt::Debug for PasswordJob {
    /// Never shows a password, not even in a debug log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PasswordJob::Verify { .. } => "Verify",
            PasswordJob::Hash { .. } => "Hash",
            PasswordJob::Rehash { .. } => "Rehash",
        })
    }
}

/// What a [`PasswordJob`] came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordOutcome {
    /// The password matched.
    Verified,
    /// The password did not match.
    Wrong,
    /// The new hash, as a PHC string.
    Hashed(String),
    /// The job could not be done (hashing failed, or too many jobs queued).
    Failed,
}
