//! Cluster mode: several nodes, one chat, through one ordered log.
//!
//! With [`ChatConfig::cluster`](super::ChatConfig::cluster) on, the core does not change what is
//! shared (who is online, rooms, topics, moderators, away marks, the lines said) when a local
//! input asks for it: it asks the shell to append a [`Shared`] entry to the cluster's log
//! ([`Action::Publish`]), and applies it when the entry comes back from the log
//! ([`Input::Applied`](super::Input::Applied)), in the log's order, as every other node does. The core is deterministic, so every node holds the same chat. Users of other nodes are
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
//! before [`Input::Applied`](super::Input::Applied), so the core only ever sees its own ids. The
//! [`Now`] given with an applied entry carries the entry's stamp, so every node shows a line
//! with the same time.
//!
//! # The life of a user in a cluster
//!
//! 1. Before the name: all local, as on one server.
//! 2. The name is accepted here (free here, not claimed here, not banned; a registered one's
//!    password right): the session is [`State::Claiming`] it (reserved against other local
//!    claims; what the user types meanwhile is held) and `Publish(Admit)` is asked for. The
//!    shell claims the name's lease and appends the Admit, or answers
//!    [`Input::Unshared`](super::Input::Unshared): `NameTaken` or `Degraded`, told to the user
//!    (`[!] name taken: ...` or `[!] the chat is degraded: ...`) with the name prompt again.
//! 3. The Admit comes back from the log: the user joins exactly as on one server (welcome,
//!    history, `[*] NAME entered.` everywhere); at other nodes as a ghost. If the log already
//!    has the name (any case) held by an earlier Admit, the later one is ignored everywhere and
//!    its node tells its user the name is taken, asks again, and publishes a Left for it (which
//!    every node ignores; it tells the shell the claim is over).
//! 4. Joined: every message but those that must stay local is `Publish(Said)`, applied when it
//!    comes back; an `Unshared` line is refused with `[!] the chat is degraded: not sent ...`.
//! 5. The connection goes (or is closed by an applied kick or `/quit`): `Publish(Left)`; the
//!    session stays, connectionless, until the Left is applied: then it leaves everywhere
//!    (`[*] NAME exited.`, unless a kick told it already). A connection gone while claiming
//!    publishes a Left too, so that its Admit, if it reached the log, is undone. A user this
//!    node cuts off for a reason of its own (unreadable input, a ban that came meanwhile) is only
//!    closed: the Left does the rest. `EXIT` publishes a Left for each of this node's users, and
//!    a `/quit` the log cannot take (degraded) closes at once, its Left kept by the shell.
//!
//! **Take-over of a registered name**: on one server the right password takes a registered name
//! over from the connection holding it. In a cluster that would close a session (maybe of
//! another node) outside the log, so it is refused as taken while the name is held anywhere; the
//! owner logs in once the old session is gone (its Left, or its node declared gone). The core
//! has no renames.
//!
//! **Only the log decides.** Each node keeps its own accounts file, so nodes' accounts and bans
//! may differ; nothing of them may make nodes disagree. An Admit is refused only for a name the
//! log has someone under; a name banned after its node checked it is let in and then cut off by
//! its node (closed, so its Left follows); a node reading its accounts again leaves the roles of
//! users online as their Admit (or a GRANT through the log) made them.
//!
//! **Crowds.** The joins and leaves of a room of more than `crowd` members are gathered as on
//! one server, but told by the log's time rather than this node's ticks: before an entry is
//! applied, the crowds gathered a window or more before its stamp are told. Every node groups
//! the names alike; a crowd is told when the next entry comes (any user's, any room's), so in a
//! cluster where nothing happens for a while it waits for it.
//!
//! **What the shell must provide**:
//! - the same accounts at every node: `/register` and `/passwd` are judged on the node they
//!   were typed on, and GRANT (and an admin's checks against the last admin) read the node's own
//!   registry, so the shell keeps one registry for the cluster (in Redis: the node whose user
//!   made a change writes it, and every node reads it again);
//! - line ids carry [`ChatConfig::epoch`](super::ChatConfig::epoch), which must be the same at
//!   every node for a web client to resume on another node (and for the nodes' deliveries to be
//!   the same byte for byte): the shell gives every node the cluster's
//!   ([`Chat::set_epoch`], kept in Redis), and a node restored from a snapshot takes the
//!   snapshot's.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::input::{ConnId, Now};
use super::rooms::{HistoryLine, RoomId};
use super::users::State;
use super::{host, Action, Chat, CloseReason, Outbox, Recipients};
use crate::accounts::model::Role;
use crate::proto::msg::{
    ClientMsg, Command, HostCommand, LeaveKind, Notice, Reject, ServerMsg, TopicEntry,
};

/// Something that changes the chat, appended by one node to the cluster's log and applied by all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shared {
    /// `conn` may take `name`: its node claimed the name's lease; every node admits the user.
    /// If the log holds an earlier Admit of the same name (any case) whose user is still
    /// online, this one is refused at every node, and its node tells its user the name is taken
    /// and asks again. (A name banned meanwhile is admitted, then cut off by its node, whose Left
    /// follows: nodes' own accounts may differ, so only the log decides who is in.)
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
    ///
    /// When the log says a node is gone, every node applies a Left for each of that node's users
    /// right there, in the log's order: the others for its ghosts, and the node itself (should
    /// it read it) for its own users, still connected or not; the core closes those still
    /// connected ([`CloseReason::Gone`]). A node that only closed its connections would keep its
    /// users in its chat until their own Lefts came, and refuse meanwhile an Admit of one of
    /// their names that every other node takes: it would no longer hold the same chat.
    Left {
        /// Whose.
        conn: ConnId,
    },
    /// A console command typed on some node (KICK from any node moderates anyone).
    Host(HostCommand),
}

/// Why the shell could not share something. The shell says so only of an entry that is
/// certainly not in the log (an append whose outcome is unknown is retried, never reported as
/// unshared): a node that believes an Admit refused while the others apply it would disagree.
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
    /// The cluster's run for line ids ([`ChatConfig::epoch`](super::ChatConfig::epoch)): a node
    /// restored from the snapshot numbers lines as the others do, so that a web client may resume
    /// on any node (0: none given).
    #[serde(default)]
    pub epoch: u64,
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

/// What the core keeps of the cluster besides the sessions.
#[derive(Debug, Default)]
pub(super) struct Replica {
    /// Sessions admitted through the log whose Left has not been applied yet.
    admitted: HashSet<ConnId>,
    /// Sessions made here for users of other nodes (by an Admit or a snapshot).
    ghosts: HashSet<ConnId>,
    /// Local connections gone whose Left was published.
    leaving: HashSet<ConnId>,
}

impl Replica {
    /// Whether `conn` was admitted through the log (and its Left not applied yet).
    pub(super) fn is_admitted(&self, conn: ConnId) -> bool {
        self.admitted.contains(&conn)
    }
}

/// The log's time `unix` (an entry's stamp) as an instant of this node's clock: any two such
/// instants are as far apart as the stamps, so what is due by one is the same at every node.
fn log_time(started: Instant, unix: i64) -> Instant {
    /// Stamps are later than this (2020); an earlier one counts as this.
    const SINCE: i64 = 1_600_000_000;
    let secs = u64::try_from(unix.saturating_sub(SINCE)).unwrap_or(0);
    // A stamp no clock can hold (a damaged entry) counts as the start: never a panic.
    started
        .checked_add(Duration::from_secs(secs))
        .unwrap_or(started)
}

/// Whether a joined user's `msg` goes through the log: everything but what must stay on its node
/// (see the module doc).
pub(super) fn is_shared(msg: &ClientMsg) -> bool {
    match msg {
        ClientMsg::Say { .. } => true,
        ClientMsg::Command(command) => is_shared_command(command),
        ClientMsg::Hello { .. }
        | ClientMsg::Login { .. }
        | ClientMsg::Ping { .. }
        | ClientMsg::Pong { .. }
        | ClientMsg::Resume { .. } => false,
    }
}

/// Whether a joined user's `command` goes through the log: not those that carry a password, and
/// not [`Command::BadUsage`] (its usage line is answered here).
fn is_shared_command(command: &Command) -> bool {
    match command {
        Command::Register { .. }
        | Command::Passwd { .. }
        | Command::PasswdAsk
        | Command::BadUsage { .. } => false,
        Command::In { command, .. } => is_shared_command(command),
        _ => true,
    }
}

/// Whether a console command goes through the log: those that change the chat (moderation and
/// what the host says). Reading commands are answered from this node's replica, and `EXIT`
/// stops this node only.
pub(super) fn is_shared_host(command: &HostCommand) -> bool {
    matches!(
        command,
        HostCommand::Moderate(_) | HostCommand::Say { .. } | HostCommand::SayIn { .. }
    )
}

impl Chat {
    /// Cluster mode: `conn` may take `name` here; it is reserved and its Admit published.
    pub(super) fn claim(
        &mut self,
        conn: ConnId,
        name: &str,
        role: Role,
        registered: bool,
        out: &mut Outbox,
    ) {
        self.sessions.claim(conn, name, role, registered);
        log::info!("{conn} claims {name} in the cluster");
        let name = name.to_owned();
        out.push(Action::Publish(Shared::Admit {
            conn,
            name,
            role,
            registered,
        }));
    }

    /// Cluster mode: a local connection is gone. A user admitted (or whose Admit may be in the
    /// log) stays, without a connection, until its Left comes back from the log.
    pub(super) fn disconnected_in_cluster(&mut self, conn: ConnId, out: &mut Outbox) {
        let Some(session) = self.sessions.get(conn) else {
            return;
        };
        if self.replica.ghosts.contains(&conn) {
            // Not a connection of this node: its own node reports it gone.
            return;
        }
        if self.replica.admitted.contains(&conn) {
            if self.replica.leaving.insert(conn) {
                out.push(Action::Publish(Shared::Left { conn }));
            }
            return;
        }
        let claiming = matches!(session.state, State::Claiming { .. });
        self.sessions.remove(conn);
        if claiming {
            // Its Admit may be in the log: the Left that follows it takes it out again.
            out.push(Action::Publish(Shared::Left { conn }));
        }
    }

    /// This node stops: a Left for every user of it still admitted, for the shell to send
    /// before it exits.
    pub(super) fn leave_cluster(&mut self, out: &mut Outbox) {
        for conn in self.own_users() {
            if self.replica.leaving.insert(conn) {
                out.push(Action::Publish(Shared::Left { conn }));
            }
        }
    }

    /// Cluster mode: numbers lines in the cluster's run `epoch` (read from the cluster at start,
    /// before any line), so that a line has one id at every node.
    pub fn set_epoch(&mut self, epoch: u64) {
        self.config.epoch = epoch;
    }

    /// Cluster mode: this node's own users admitted through the log whose Left has not been
    /// applied yet (still connected or not), in id order: when the log says this node is gone,
    /// the shell applies a Left for each of them right there, as the other nodes do for their
    /// ghosts of it.
    pub fn own_users(&self) -> Vec<ConnId> {
        let mut mine: Vec<ConnId> = (self.replica.admitted.iter())
            .filter(|conn| !self.replica.ghosts.contains(conn))
            .copied()
            .collect();
        mine.sort();
        mine
    }

    /// Applies an entry of the cluster's log.
    pub(super) fn apply(&mut self, now: &Now, shared: Shared, out: &mut Outbox) {
        // The rules that gather joins and leaves of crowded rooms run on the entry's time, the
        // same at every node: the crowds due by it are told before the entry is applied.
        self.now = log_time(self.started, now.stamp.unix);
        for room in self.rooms.crowds_due(self.now) {
            self.tell_crowd(room, out);
        }
        match shared {
            Shared::Admit {
                conn,
                name,
                role,
                registered,
            } => self.apply_admit(now, conn, &name, role, registered, out),
            Shared::Said { conn, msg } => {
                let uptime = self.uptime(now.instant);
                let Some(session) = self.sessions.get_mut(conn) else {
                    return;
                };
                if !matches!(session.state, State::Chatting { .. }) {
                    return;
                }
                session.active = uptime;
                self.joined_message(now, conn, msg, out);
            }
            Shared::Left { conn } => self.apply_left(conn, out),
            Shared::Host(command) => host::handle(self, now, command, out),
        }
    }

    fn apply_admit(
        &mut self,
        now: &Now,
        conn: ConnId,
        name: &str,
        role: Role,
        registered: bool,
        out: &mut Outbox,
    ) {
        // The log decides: an earlier Admit of the name whose user is still here wins. Nothing
        // of this node's own (its accounts and bans may differ from another's) refuses an Admit:
        // every node admits the same users.
        let held = self
            .sessions
            .find(name)
            .is_some_and(|holder| holder != conn);
        match self.sessions.get(conn).map(|session| &session.state) {
            Some(State::Claiming { name: claimed }) if claimed == name => {
                self.sessions.end_claim(conn);
                let waiting = self
                    .sessions
                    .get_mut(conn)
                    .map(|session| std::mem::take(&mut session.held))
                    .unwrap_or_default();
                if held {
                    log::info!("{conn}: {name} was admitted first elsewhere");
                    out.deliver(Recipients::One(conn), ServerMsg::Reject(Reject::NameTaken));
                    out.deliver(Recipients::One(conn), ServerMsg::NamePrompt);
                    // Nothing of it is in the chat; the Left lets the shell drop what it holds
                    // for it (its lease), and is ignored by every node.
                    out.push(Action::Publish(Shared::Left { conn }));
                } else {
                    self.replica.admitted.insert(conn);
                    self.admit(conn, name, role, registered, out);
                    if let Some(ban) = self.registry.ban(name) {
                        // Banned while its Admit was on its way: it is in the chat at every
                        // node now, so it leaves as anyone does, through the log: its connection
                        // closes here and its Left follows.
                        let (by, reason) = (ban.by.clone(), ban.reason.clone());
                        log::info!("{conn}: {name} was banned by {by} meanwhile");
                        let banned = Notice::Banned {
                            name: name.to_owned(),
                            by: by.clone(),
                            reason: reason.clone(),
                        };
                        out.deliver(Recipients::One(conn), ServerMsg::Notice(banned));
                        let kicked = ServerMsg::Kicked {
                            by: by.clone(),
                            reason: reason.clone(),
                        };
                        out.deliver(Recipients::One(conn), kicked);
                        let why = CloseReason::Kicked { by, reason };
                        return out.push(Action::Close { conn, why });
                    }
                }
                // What was typed meanwhile is read now: chat once joined, else the next name.
                for msg in waiting {
                    self.handle_message(now, conn, msg, out);
                }
            }
            None if !held => {
                self.sessions
                    .connect(conn, std::net::Ipv4Addr::UNSPECIFIED.into(), false);
                self.replica.ghosts.insert(conn);
                self.replica.admitted.insert(conn);
                self.admit(conn, name, role, registered, out);
            }
            // A second Admit of a name held, or of a connection that is no claim of it.
            _ => log::debug!("{conn}: Admit of {name} ignored"),
        }
    }

    fn apply_left(&mut self, conn: ConnId, out: &mut Outbox) {
        if !self.replica.admitted.remove(&conn) {
            return;
        }
        let ghost = self.replica.ghosts.remove(&conn);
        let gone = self.replica.leaving.remove(&conn);
        if !ghost && !gone {
            // A local user still connected, taken out by the log (its node was declared gone).
            out.push(Action::Close {
                conn,
                why: CloseReason::Gone,
            });
        }
        if let Some(name) = self.sessions.remove(conn) {
            self.announce_leave(conn, name, LeaveKind::Exited, None, out);
        }
    }

    /// The shell could not publish `shared`.
    pub(super) fn unshared(&mut self, now: &Now, shared: Shared, why: Unshared, out: &mut Outbox) {
        match shared {
            Shared::Admit { conn, name, .. } => {
                let claimed = self.sessions.get(conn).map(|session| &session.state);
                if !matches!(claimed, Some(State::Claiming { name: n }) if *n == name) {
                    return;
                }
                self.sessions.end_claim(conn);
                let reject = match why {
                    Unshared::NameTaken => Reject::NameTaken,
                    Unshared::Degraded => Reject::Degraded,
                };
                log::info!("{conn}: {name} not admitted: {reject}");
                out.deliver(Recipients::One(conn), ServerMsg::Reject(reject));
                out.deliver(Recipients::One(conn), ServerMsg::NamePrompt);
                let waiting = self
                    .sessions
                    .get_mut(conn)
                    .map(|session| std::mem::take(&mut session.held))
                    .unwrap_or_default();
                for msg in waiting {
                    self.handle_message(now, conn, msg, out);
                }
            }
            Shared::Said {
                conn,
                msg: ClientMsg::Command(Command::Quit { reason }),
            } if self.sessions.name_of(conn).is_some() => {
                // Leaving needs no log: the connection closes, and its Left waits in the shell
                // until the log is back (the others see the user exit then).
                out.deliver(Recipients::One(conn), ServerMsg::Bye);
                let why = CloseReason::Quit(reason);
                out.push(Action::Close { conn, why });
            }
            Shared::Said { conn, .. } => {
                if self.sessions.name_of(conn).is_some() {
                    out.deliver(Recipients::One(conn), ServerMsg::Reject(Reject::Degraded));
                }
            }
            // The shell keeps them and tries again.
            Shared::Left { .. } | Shared::Host(_) => {}
        }
    }

    /// Takes the state of another node's snapshot, silently: its users as ghosts, its rooms with
    /// their topics, moderators and kept lines (a room this node has with more lines is kept).
    /// Nobody is told anything; the persistent rooms are saved if they changed.
    pub(super) fn restore(&mut self, now: &Now, snapshot: Snapshot, out: &mut Outbox) {
        let history = self.config.history;
        let kept = self.rooms.persistent();
        for room in snapshot.rooms {
            let id = self
                .rooms
                .restore_room(room.id, &room.name, room.persistent);
            let Some(r) = self.rooms.get_mut(id) else {
                continue;
            };
            r.persistent |= room.persistent;
            r.topic = room.topic.map(|t| TopicEntry {
                at: now.stamp.with_unix(t.at),
                text: t.text,
                by: t.by,
            });
            r.moderators.extend(room.moderators);
            if room.last_seq >= r.last_seq {
                let lines = room.history.into_iter().map(|line| HistoryLine {
                    at: now.stamp.with_unix(line.at),
                    from: line.from,
                    text: line.text,
                    me: line.me,
                    seq: line.seq,
                });
                r.restore(history, lines, room.last_seq);
            }
        }
        self.rooms.reserve_ids(snapshot.next_room);
        if snapshot.epoch != 0 {
            self.config.epoch = snapshot.epoch;
        }
        let rooms = self.rooms.persistent();
        if rooms != kept {
            // Made or changed on other nodes while this one was away: kept here too.
            out.push(Action::SaveRooms { rooms });
        }
        for user in snapshot.users {
            let conn = user.conn;
            if self.sessions.get(conn).is_some() || self.sessions.find(&user.name).is_some() {
                continue;
            }
            self.sessions
                .connect(conn, std::net::Ipv4Addr::UNSPECIFIED.into(), false);
            self.sessions
                .join(conn, &user.name, user.role, user.registered);
            if let Some(session) = self.sessions.get_mut(conn) {
                session.away = user.away;
            }
            self.replica.ghosts.insert(conn);
            self.replica.admitted.insert(conn);
            for room in &user.rooms {
                if let Some(id) = self.rooms.lookup(room) {
                    self.rooms.add_member(id, conn);
                }
            }
            let current = self.rooms.lookup(&user.current).unwrap_or(RoomId::DEFAULT);
            if self.rooms.is_member(conn, current) {
                self.rooms.set_current(conn, current);
            }
        }
    }

    /// Tells every user (the shell delivers to this node's) and the console how the cluster is.
    pub(super) fn health(&mut self, health: Health, out: &mut Outbox) {
        let notice = match health {
            Health::Degraded => Notice::ClusterDegraded,
            Health::Restored => Notice::ClusterRestored,
        };
        let to = Recipients::Room {
            except: None,
            console: true,
        };
        out.deliver(to, ServerMsg::Notice(notice));
    }

    /// The chat's state for a node that starts late: the users online `include` says are this
    /// node's (not ghosts), and every room with its topic, moderators and kept lines. Made when
    /// the late node's request is applied from the log, so that the snapshot and the entries
    /// after the request make up the chat (users being admitted or gone whose Admit or Left
    /// follows are left out: the entries bring them).
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
            epoch: self.config.epoch,
        }
    }
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
