//! What the core asks the shell to do: deliver messages, close connections, stop.

use super::input::{ConnId, PasswordJob};
use crate::accounts::model::Change;
use crate::proto::ServerMsg;

/// Who gets a message. A broadcast is one action, so the shell can encode it once per wire mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipients {
    /// One connection, named or not.
    One(ConnId),
    /// The host console only.
    Console,
    /// Every user in the room, but `except`; and the console if `console`.
    Room {
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
    /// Close `conn` once what is queued for it has been written. The core has already forgotten it
    /// (it is out of the room, if it was in it).
    Close {
        /// The connection to close.
        conn: ConnId,
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
    /// Stop the server: stop accepting, flush everyone within a short deadline, close, exit.
    Shutdown,
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
