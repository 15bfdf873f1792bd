//! What the core asks the shell to do: deliver messages, close connections, stop.

use std::fmt;

use super::input::{ConnId, PasswordJob};
use super::rooms::{PersistentRoom, RoomId};
use crate::accounts::model::Change;
use crate::proto::{DecodeError, ServerMsg};

/// Who gets a message. A broadcast is one action, so the shell can encode it once per wire mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipients {
    /// One connection, named or not.
    One(ConnId),
    /// The host console only.
    Console,
    /// Every user in the default room (everyone who has joined), but `except`; and the console
    /// if `console`.
    Room {
        /// A user to leave out (usually the one who caused the message).
        except: Option<ConnId>,
        /// Whether the console sees it too.
        console: bool,
    },
    /// Every member of `room` (never the default room: that is [`Recipients::Room`]), but
    /// `except`; and the console if `console`.
    InRoom {
        /// The room.
        room: RoomId,
        /// A user to leave out (usually the one who caused the message).
        except: Option<ConnId>,
        /// Whether the console sees it too.
        console: bool,
    },
    /// Every connection, named or not.
    Everyone,
}

/// One thing for the shell to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `msg` to `to`.
    Deliver {
        /// The recipients.
        to: Recipients,
        /// The message.
        msg: ServerMsg,
    },
    /// `conn` is in the room from here on: it gets every room broadcast that follows this action.
    Joined {
        /// The connection that joined.
        conn: ConnId,
    },
    /// `conn` is in `room` (never the default room) from here on: it gets every broadcast to the
    /// room that follows this action.
    EnteredRoom {
        /// The connection.
        conn: ConnId,
        /// The room.
        room: RoomId,
    },
    /// `conn` is out of `room` from here on: it still gets what was broadcast to the room before
    /// this action, and nothing after.
    LeftRoom {
        /// The connection.
        conn: ConnId,
        /// The room.
        room: RoomId,
    },
    /// The persistent rooms changed (one was made, or a topic set): here is the whole list, to
    /// write where they are kept. The core has applied the change already.
    SaveRooms {
        /// Every persistent room, the default room first.
        rooms: Vec<PersistentRoom>,
    },
    /// Close `conn` once what is queued for it has been written. The core has already forgotten it
    /// (it is out of the room, if it was in it).
    Close {
        /// The connection to close.
        conn: ConnId,
        /// Why, for the log.
        why: CloseReason,
    },
    /// Run a password job off the event loop; its result comes back as
    /// [`super::Input::PasswordDone`] for `conn`.
    Password {
        /// Who it is for.
        conn: ConnId,
        /// What to do.
        job: PasswordJob,
    },
    /// Persist a change to the accounts or bans (the core has applied it in memory already);
    /// then send `reply`, or a failure notice to the same recipients if it could not be written.
    Store {
        /// The change.
        change: Change,
        /// The confirmation, sent only once the change is on disk.
        reply: Option<(Recipients, ServerMsg)>,
    },
    /// Hand `job` to the history store (off the event loop, in the order asked); a job that
    /// asks something is answered with [`super::Input::History`]. Only asked for when
    /// [`super::ChatConfig::store_history`] is on.
    History(crate::history::Job),
    /// Cluster mode ([`super::ChatConfig::cluster`]): append `Shared` to the cluster's log. The
    /// core has not applied it: it does when the entry comes back as
    /// [`super::Input::Applied`], or learns that it could not be shared from
    /// [`super::Input::Unshared`].
    Publish(super::cluster::Shared),
    /// Stop the server: stop accepting, flush everyone within a short deadline, close, exit.
    Shutdown,
}

/// Why the core closes a connection; the shell logs it in the connection's one disconnect line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The user left with `/quit`, maybe saying why.
    Quit(Option<String>),
    /// The user was kicked (or banned) by `by`, maybe with a reason.
    Kicked {
        /// The admin or the host.
        by: String,
        /// Their reason.
        reason: Option<String>,
    },
    /// No name (and password) came within the time allowed.
    NameTimeout,
    /// The input cannot be read on from (e.g. a frame over the limit).
    BadInput(DecodeError),
    /// Too many inputs that could not be read.
    TooMuchBadInput,
    /// Too many wrong passwords.
    TooManyFailures,
    /// Cluster mode: the cluster's log took the user out (their node was declared gone).
    Gone,
    /// The owner of the registered name logged in on another connection, `by`.
    Replaced {
        /// The name.
        name: String,
        /// The connection that took it over.
        by: ConnId,
    },
}

impl fmt::Display for CloseReason {
    /// Human text; what users typed is quoted and escaped, so it cannot forge log lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Quit(None) => f.write_str("quit"),
            CloseReason::Quit(Some(reason)) => write!(f, "quit: {reason:?}"),
            CloseReason::Kicked { by, reason: None } => write!(f, "kicked by {by}"),
            CloseReason::Kicked {
                by,
                reason: Some(reason),
            } => write!(f, "kicked by {by}: {reason:?}"),
            CloseReason::NameTimeout => f.write_str("name timeout"),
            CloseReason::BadInput(error) => write!(f, "unreadable input: {error}"),
            CloseReason::TooMuchBadInput => f.write_str("too much unreadable input"),
            CloseReason::TooManyFailures => f.write_str("too many wrong passwords"),
            CloseReason::Gone => f.write_str("taken out by the cluster"),
            CloseReason::Replaced { name, by } => write!(f, "{name} logged in again on {by}"),
        }
    }
}

/// Where [`super::Chat::handle`] appends its actions; owned by the caller and drained after each call.
#[derive(Debug, Default)]
pub struct Outbox {
    actions: Vec<Action>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Sends `msg` to `to`.
    pub fn deliver(&mut self, to: Recipients, msg: ServerMsg) {
        self.actions.push(Action::Deliver { to, msg });
    }

    /// Appends any action.
    pub fn push(&mut self, action: Action) {
        self.actions.push(action);
    }

    /// Takes the actions out, in the order they were added.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Action> {
        self.actions.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_read_as_text_with_what_users_typed_quoted() {
        let quit = CloseReason::Quit(Some("gone for lunch".into()));
        assert_eq!(quit.to_string(), "quit: \"gone for lunch\"");
        assert_eq!(CloseReason::Quit(None).to_string(), "quit");
        let kicked = CloseReason::Kicked {
            by: "root".into(),
            reason: Some("line\nforged".into()),
        };
        assert_eq!(kicked.to_string(), "kicked by root: \"line\\nforged\"");
        assert_eq!(CloseReason::NameTimeout.to_string(), "name timeout");
    }
}
