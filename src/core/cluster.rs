//! Cluster mode: several nodes, one chat, through one ordered log.
//!
//! With [`ChatConfig::cluster`](super::ChatConfig::cluster) on, the core does not change what is
//! shared (who is online, rooms, topics, moderators, away marks, the lines said) when a local
//! input asks for it: it asks the shell to append a [`Shared`] entry to the cluster's log
//! ([`Action::Publish`](super::Action::Publish)), and applies it when the entry comes back from
//! the log ([`Input::Applied`](super::Input::Applied)), in the log's order, as every other node
//! does. The core is deterministic, so every node holds the same chat. Users of other nodes are
//! **ghost sessions** here: joined, with no connection of this node; what the core sends them the
//! shell drops (their own node delivers it to them).
//!
//! What stays local to the node holding the connection: everything before a user is admitted
//! (name prompt, passwords, the login throttle, the name timeout), keepalives, and what must not
//! cross the log (passwords: `/register`, `/passwd`; answers to commands the core cannot
//! serialize, as `Command::BadUsage`; console commands that only read, and `EXIT`, which stops
//! this node only).
//!
//! The conn ids in entries are the shell's business: it maps a remote conn to a local ghost id
//! before [`Input::Applied`](super::Input::Applied), so the core only ever sees its own ids.

use serde::{Deserialize, Serialize};

use super::input::ConnId;
use super::rooms::RoomId;
use super::users::State;
use super::Chat;
use crate::accounts::model::Role;
use crate::proto::msg::{ClientMsg, HostCommand};

/// Something that changes the chat, appended by one node to the cluster's log and applied by all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shared {
    /// `conn` may take `name`: its node claimed the name's lease; every node admits the user.
    /// If the log holds an earlier Admit of the same name (any case) whose user is still
    /// online, this one is refused at every node, and its node tells its user the name is taken.
    Admit {
        /// The connection, on the node that published it.
        conn: ConnId,
        /// The name, as the user gave it (or as registered).
        name: String,
        /// What the user may do.
        role: Role,
        /// Whether the user logged in to a registered name.
        registered: bool,
    },
    /// A joined user sent a message (every message of a joined user is shared, `/help` and
    /// `/who` too: other nodes compute the same reply and the shell drops it).
    Said {
        /// Who.
        conn: ConnId,
        /// What.
        msg: ClientMsg,
    },
    /// A joined user's connection is gone (or a connection whose Admit was published is gone).
    Left {
        /// Whose.
        conn: ConnId,
    },
    /// A console command typed on some node (KICK from any node moderates anyone).
    Host(HostCommand),
}

/// Why the shell could not share something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unshared {
    /// The name's lease is held by another node.
    NameTaken,
    /// The log cannot be reached: the chat is degraded.
    Degraded,
}

/// A node's share of the chat's state, for a node that joins late: the users
/// [`Chat::snapshot`](super::Chat::snapshot) was told are this node's, and every room.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The users, by name ignoring case.
    pub users: Vec<UserState>,
    /// Every room, the default room first.
    pub rooms: Vec<RoomState>,
    /// The id the next room made gets (so that every node numbers rooms alike).
    pub next_room: u32,
}

/// One user online, in a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserState {
    /// The connection, on the node that made the snapshot (the shell maps it to a ghost id).
    pub conn: ConnId,
    /// The name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// Whether the user logged in to a registered name.
    pub registered: bool,
    /// Set while away: the reason, possibly empty.
    pub away: Option<String>,
    /// The rooms joined besides the default room, by name, in the order joined.
    pub rooms: Vec<String>,
    /// The current room's name.
    pub current: String,
}

/// One room, in a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomState {
    /// Its id.
    pub id: u32,
    /// Its name, as created.
    pub name: String,
    /// Whether it stays when empty.
    pub persistent: bool,
    /// Its topic, if set.
    pub topic: Option<TopicState>,
    /// Who moderates it besides the admins, by lower-cased name.
    pub moderators: Vec<String>,
    /// The number of its last line.
    pub last_seq: u64,
    /// Its kept lines, oldest first (for history on join).
    pub history: Vec<LineState>,
}

/// A room's topic, in a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicState {
    /// The topic.
    pub text: String,
    /// Who set it.
    pub by: String,
    /// When, in seconds since the Unix epoch.
    pub at: i64,
}

/// A kept line of a room, in a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineState {
    /// Its number in the room.
    pub seq: u64,
    /// When it was said, in seconds since the Unix epoch.
    pub at: i64,
    /// Who said it.
    pub from: String,
    /// What was said.
    pub text: String,
    /// Whether it was an action line (`/me`).
    pub me: bool,
}

/// How the cluster is doing, for users' notices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    /// The log cannot be reached: what needs it is refused.
    Degraded,
    /// The log is reachable again.
    Restored,
}

impl Chat {
    /// The chat's state for a node that starts late: the users online `include` says are this
    /// node's (not ghosts), and every room with its topic, moderators and kept lines.
    pub fn snapshot(&self, include: impl Fn(ConnId) -> bool) -> Snapshot {
        let users = self
            .sessions
            .members()
            .filter(|&conn| include(conn))
            .filter_map(|conn| {
                let session = self.sessions.get(conn)?;
                let State::Chatting { name } = &session.state else {
                    return None;
                };
                Some(UserState {
                    conn,
                    name: name.clone(),
                    role: session.role,
                    registered: session.registered,
                    away: session.away.clone(),
                    rooms: (self.rooms.joined(conn).iter())
                        .map(|&room| self.rooms.name(room).to_owned())
                        .collect(),
                    current: self.rooms.name(self.rooms.current(conn)).to_owned(),
                })
            })
            .collect();
        let default = self.rooms.get(RoomId::DEFAULT).into_iter();
        let others = self.rooms.iter().filter(|r| r.id != RoomId::DEFAULT);
        let rooms = default
            .chain(others)
            .map(|r| RoomState {
                id: r.id.0,
                name: r.name.clone(),
                persistent: r.persistent,
                topic: r.topic.as_ref().map(|t| TopicState {
                    text: t.text.clone(),
                    by: t.by.clone(),
                    at: t.at.unix,
                }),
                moderators: r.moderators.iter().cloned().collect(),
                last_seq: r.last_seq,
                history: (r.history.iter())
                    .map(|line| LineState {
                        seq: line.seq,
                        at: line.at.unix,
                        from: line.from.clone(),
                        text: line.text.clone(),
                        me: line.me,
                    })
                    .collect(),
            })
            .collect();
        Snapshot {
            users,
            rooms,
            next_room: self.rooms.next_id(),
        }
    }
}
