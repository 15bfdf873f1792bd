//! What the core asks of the history store, and what the store answers: plain data, no I/O.
//!
//! Times are Unix seconds (the core turns them back into stamps in the server's offset); room
//! and user keys are lower-cased names.

use crate::core::rooms::RoomId;
use crate::core::ConnId;

/// Most lines one `/history` asks for.
pub const MAX_PAGE: usize = 200;

/// Most direct messages waiting for one registered user while offline.
pub const MAILBOX_PER_USER: usize = 100;

/// Most direct messages waiting for all offline users together.
pub const MAILBOX_TOTAL: usize = 10_000;

/// A room's line to keep (a chat or `/me` line), or one read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptLine {
    /// The room's name, lower-cased.
    pub room: String,
    /// Its number in the room.
    pub seq: u64,
    /// When it was said, in Unix seconds.
    pub at: i64,
    /// Who said it.
    pub from: String,
    /// What was said.
    pub text: String,
    /// Whether it is an action line (`/me`).
    pub me: bool,
}

/// A direct message to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptDm {
    /// When it was sent, in Unix seconds.
    pub at: i64,
    /// The sender's name, as shown.
    pub from: String,
    /// The recipient's name, as given.
    pub to: String,
    /// What was said.
    pub text: String,
}

/// A direct message waiting in an offline user's mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    /// Its number in the store (they only grow).
    pub id: i64,
    /// When it was sent, in Unix seconds.
    pub at: i64,
    /// Who sent it.
    pub from: String,
    /// What was said.
    pub text: String,
}

/// Work for the history store, in the order the core asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Job {
    /// Keep a room's line.
    Keep(KeptLine),
    /// Keep a direct message delivered at once (for the history of its two users).
    KeepDm(KeptDm),
    /// Put a direct message to an offline registered user in their mailbox, if it has room;
    /// answered with [`Answer::Mailed`] for the sender `conn`.
    Mail {
        /// The sender's connection.
        conn: ConnId,
        /// The message.
        dm: KeptDm,
    },
    /// Forget every line of the room `room` (lower-cased name): an ad-hoc room vanished, or a
    /// room of that name is made anew.
    ForgetRoom {
        /// The room's name, lower-cased.
        room: String,
    },
    /// Look up to `limit` lines of a room numbered below `before`; answered with
    /// [`Answer::Page`].
    Page {
        /// Who asked.
        conn: ConnId,
        /// The room, in this run.
        room: RoomId,
        /// The room's name, lower-cased.
        key: String,
        /// Only lines numbered below this one.
        before: u64,
        /// At most this many.
        limit: usize,
    },
    /// Look up what waits in `name`'s mailbox; answered with [`Answer::Mailbox`].
    Mailbox {
        /// The user's connection.
        conn: ConnId,
        /// The registered name.
        name: String,
    },
    /// The mail of `name` up to id `up_to` was delivered: out of the mailbox.
    Delivered {
        /// The registered name.
        name: String,
        /// The last id delivered.
        up_to: i64,
    },
}

/// What the history store answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The lines of a [`Job::Page`], oldest first (empty if the store failed).
    Page {
        /// Who asked.
        conn: ConnId,
        /// The room.
        room: RoomId,
        /// The lines.
        lines: Vec<KeptLine>,
        /// Whether older lines remain.
        more: bool,
    },
    /// Whether a [`Job::Mail`] was kept (not: the mailbox was full, or the store failed).
    Mailed {
        /// The sender.
        conn: ConnId,
        /// The recipient, as given.
        to: String,
        /// Whether it was kept.
        kept: bool,
    },
    /// What waits in a user's mailbox, oldest first.
    Mailbox {
        /// The user's connection.
        conn: ConnId,
        /// The registered name.
        name: String,
        /// The messages.
        mail: Vec<Mail>,
    },
}
