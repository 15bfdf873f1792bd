//! The chat core: every rule of the chat, with no sockets and no clock of its own.
//!
//! [`Chat`] is a state machine. The shell calls [`Chat::handle`] once for each [`Input`], with the
//! time it read for that batch, then drains the [`Outbox`] and carries out each [`Action`] in order:
//! deliveries, closes, password jobs, stores, shutdown. The core never blocks, never fails, never
//! hashes a password and never looks at bytes: how a [`ServerMsg`] looks on the wire is the
//! codecs' business. Results of slow work come back as inputs ([`Input::PasswordDone`]), so the
//! core stays deterministic and every rule is tested without a network.

pub mod cluster;
pub mod cmd;
mod host;
pub mod input;
pub mod output;
pub mod rooms;
pub mod throttle;
pub mod users;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use input::{ConnId, Input, Now, PasswordJob, PasswordOutcome};
pub use output::{Action, CloseReason, Outbox, Recipients};

use crate::accounts::model::{Registry, Role};
use crate::proto::msg::{
    ClientMsg, Departure, Event, HostCommand, LeaveKind, LineId, Reject, RoomLine, ServerMsg,
    WELCOME_NAMES,
};
use crate::proto::DecodeError;
use rooms::{RoomConfig, RoomId, Rooms};
use throttle::{LoginPolicy, LoginThrottle};
use users::{Sessions, State};

/// Most messages held for a connection while its password is checked.
const MAX_HELD: usize = 16;

/// The chat rules a server operator can choose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatConfig {
    /// Whether only registered names may join.
    pub require_account: bool,
    /// Whether guests may `/register` their name.
    pub allow_register: bool,
    /// How many recent chat lines a joining user is shown.
    pub history: usize,
    /// Wrong passwords allowed on one connection before it is closed.
    pub max_login_failures: u8,
    /// How wrong passwords slow down further logins (see [`throttle`]).
    pub logins: LoginPolicy,
    /// How long a connection may take to give its name (and password).
    pub name_timeout: Duration,
    /// Over-long lines or bad frames allowed on one connection before it is closed.
    pub max_bad_input: u8,
    /// The rooms' rules and the persistent rooms.
    pub rooms: RoomConfig,
    /// Whether passwords may cross plain connections (false when the server has TLS, unless the
    /// operator allows them).
    pub plain_passwords: bool,
    /// This run of the server, for line ids (see [`LineId`]): the shell draws a new one at each
    /// start, so an id from an earlier run is known as such.
    pub epoch: u64,
    /// Whether the server has a history store: lines and direct messages are handed to it
    /// ([`Action::History`]), `/history` pages back through it, and registered users offline
    /// get direct messages in a mailbox. Without one, `/history` pages through what is kept in
    /// memory and a direct message needs its recipient online.
    pub store_history: bool,
    /// Whether this node is one of a cluster (see [`cluster`]): what changes the chat is
    /// published to the cluster's log and applied when it comes back from it.
    pub cluster: bool,
}

impl Default for ChatConfig {
    fn default() -> ChatConfig {
        ChatConfig {
            require_account: false,
            allow_register: true,
            history: 20,
            max_login_failures: 3,
            logins: LoginPolicy::default(),
            name_timeout: Duration::from_secs(30),
            max_bad_input: 3,
            rooms: RoomConfig::default(),
            plain_passwords: true,
            epoch: 1,
            store_history: false,
            cluster: false,
        }
    }
}

/// Who gets a broadcast to `room`: the default room keeps the recipients it had before rooms.
fn to_room(room: RoomId, except: Option<ConnId>, console: bool) -> Recipients {
    if room == RoomId::DEFAULT {
        Recipients::Room { except, console }
    } else {
        Recipients::InRoom {
            room,
            except,
            console,
        }
    }
}

/// The rooms, everyone in them, and the accounts and bans.
#[derive(Debug)]
pub struct Chat {
    config: ChatConfig,
    sessions: Sessions,
    registry: Registry,
    /// Every room, its members, topic and history (the default room's history is the backlog).
    rooms: Rooms,
    started: Instant,
    relayed: u64,
    shutting_down: bool,
    /// Recent failed logins, per (address, account) pair, account and address.
    logins: LoginThrottle,
    /// Password checks held back by the throttle, in the order they came.
    held_checks: Vec<cmd::auth::HeldCheck>,
    /// When each connection must have joined by, in connection order (so earliest first).
    name_deadlines: VecDeque<(Instant, ConnId)>,
    /// Say and dm frames dropped because their text did not match its digest.
    bad_digests: u64,
    /// Logins refused for a wrong password.
    failed_logins: u64,
    /// The monotonic time of the input being handled.
    now: Instant,
    /// Cluster mode: which sessions are admitted through the log, which are ghosts.
    replica: cluster::Replica,
}

/// What [`Chat::counts`] tells: the core's side of the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Users who have joined.
    pub users_online: usize,
    /// Rooms that exist, the default room included.
    pub rooms: usize,
    /// Logins refused for a wrong password since the start.
    pub failed_logins: u64,
    /// Password checks held back by the login throttle.
    pub password_checks_held: usize,
}

impl Chat {
    /// Whole seconds from the chat's start to `now` (saturating), as sessions keep their times.
    pub fn uptime(&self, now: Instant) -> u32 {
        let secs = now.saturating_duration_since(self.started).as_secs();
        u32::try_from(secs).unwrap_or(u32::MAX)
    }

    /// An empty room with the given rules and accounts, started at `started`.
    pub fn new(config: ChatConfig, registry: Registry, started: Instant) -> Chat {
        Chat {
            sessions: Sessions::default(),
            registry,
            rooms: Rooms::new(config.rooms.clone()),
            started,
            relayed: 0,
            shutting_down: false,
            bad_digests: 0,
            failed_logins: 0,
            logins: LoginThrottle::new(config.logins.clone()),
            held_checks: Vec::new(),
            name_deadlines: VecDeque::new(),
            now: started,
            replica: cluster::Replica::default(),
            config,
        }
    }

    /// Applies one input, appending what must happen to `out`.
    pub fn handle(&mut self, now: &Now, input: Input, out: &mut Outbox) {
        if self.shutting_down {
            return;
        }
        self.now = now.instant;
        match input {
            Input::Connected { conn, peer, secure } => {
                self.sessions.connect(conn, peer, secure);
                let uptime = self.uptime(now.instant);
                if let Some(session) = self.sessions.get_mut(conn) {
                    session.connected = uptime;
                    session.active = uptime;
                }
                self.name_deadlines
                    .push_back((now.instant + self.config.name_timeout, conn));
                let online = self.sessions.joined_count();
                out.deliver(Recipients::One(conn), ServerMsg::Greeting { online });
            }
            Input::Message { conn, msg } => self.handle_message(now, conn, msg, out),
            Input::BadInput { conn, error } => self.bad_input(conn, error, out),
            Input::Tick => self.tick(now, out),
            Input::Disconnected { conn } if self.config.cluster => {
                self.disconnected_in_cluster(conn, out);
                cmd::auth::forget_checks(self, now, conn, out);
            }
            Input::Disconnected { conn } => {
                if let Some(name) = self.sessions.remove(conn) {
                    self.announce_leave(conn, name, LeaveKind::Exited, None, out);
                }
                cmd::auth::forget_checks(self, now, conn, out);
            }
            Input::Host(HostCommand::Exit) if self.config.cluster => {
                // The other nodes see this node's users leave now, not when its heartbeat ends.
                self.leave_cluster(out);
                host::handle(self, now, HostCommand::Exit, out)
            }
            Input::Host(command) if self.config.cluster && cluster::is_shared_host(&command) => {
                out.push(Action::Publish(cluster::Shared::Host(command)))
            }
            Input::Host(command) => host::handle(self, now, command, out),
            Input::PasswordDone { conn, outcome } => {
                cmd::auth::password_done(self, now, conn, outcome, out)
            }
            Input::RegistryLoaded(registry) => self.replace_registry(registry),
            Input::History(answer) => cmd::history::answered(self, now, answer, out),
            Input::Applied(shared) => self.apply(now, shared, out),
            Input::Unshared { shared, why } => self.unshared(now, shared, why, out),
            Input::Restore(snapshot) => self.restore(now, snapshot, out),
            Input::Cluster(health) => self.health(health, out),
        }
    }

    /// When the core next needs an [`Input::Tick`]; a tick before then is harmless.
    pub fn next_deadline(&self) -> Option<Instant> {
        let names = self.name_deadlines.front().map(|&(deadline, _)| deadline);
        let checks = self.held_checks.iter().filter_map(|held| held.until).min();
        // In cluster mode crowds are told by the log's time, not by ticks (see `cluster`).
        let crowds = self.rooms.next_deadline().filter(|_| !self.config.cluster);
        names.into_iter().chain(checks).chain(crowds).min()
    }

    /// How many say or dm frames were dropped because their text did not match its digest.
    pub fn bad_digests(&self) -> u64 {
        self.bad_digests
    }

    /// How many users, rooms and so on there are now, for the shell's metrics.
    pub fn counts(&self) -> Counts {
        Counts {
            users_online: self.sessions.joined_count(),
            rooms: self.rooms.len(),
            failed_logins: self.failed_logins,
            password_checks_held: self.held_checks.len(),
        }
    }

    /// The connections of everyone in the room, for the shell to deliver room messages to.
    pub fn members(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.sessions.members()
    }

    /// The connections of `room`'s members (none for a room that does not exist), for the shell
    /// to find whom a room's broadcasts are for without looking at every connection.
    pub fn room_members(&self, room: RoomId) -> impl Iterator<Item = ConnId> + '_ {
        self.rooms
            .get(room)
            .into_iter()
            .flat_map(|r| r.members.iter().copied())
    }

    /// The accounts and bans as the core knows them.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn handle_message(&mut self, now: &Now, conn: ConnId, msg: ClientMsg, out: &mut Outbox) {
        let uptime = self.uptime(now.instant);
        let Some(session) = self.sessions.get_mut(conn) else {
            return;
        };
        if let ClientMsg::Pong { .. } = msg {
            // An answer to the shell's keepalive: it only shows the client is there.
            return;
        }
        if let ClientMsg::Ping { nonce } = msg {
            if session.state != State::Closing {
                out.deliver(
                    Recipients::One(conn),
                    ServerMsg::Pong {
                        nonce,
                        at: now.stamp,
                    },
                );
            }
            return;
        }
        if let ClientMsg::Resume { rooms } = msg {
            // One per room the user may be in; the rest could never be used.
            let most = self.rooms.config().max_rooms_per_user;
            session.resume = rooms
                .into_iter()
                .take(most)
                .map(|(room, id)| (room.to_ascii_lowercase(), id))
                .collect();
            return;
        }
        session.active = uptime;
        if session.passwd.is_some() {
            return cmd::auth::passwd_step(self, now, conn, msg, out);
        }
        let chatting = matches!(session.state, State::Chatting { .. });
        if chatting && self.config.cluster && cluster::is_shared(&msg) {
            return out.push(Action::Publish(cluster::Shared::Said { conn, msg }));
        }
        match (&session.state, msg) {
            (State::Closing, _) => {}
            (State::Verifying { .. } | State::Claiming { .. }, msg) => {
                if session.held.len() < MAX_HELD {
                    session.held.push(msg);
                } else {
                    out.deliver(Recipients::One(conn), ServerMsg::Reject(Reject::Busy));
                }
            }
            (State::AwaitingName, ClientMsg::Say { text: name } | ClientMsg::Hello { name })
            | (State::AwaitingPassword { .. }, ClientMsg::Hello { name }) => {
                cmd::auth::choose_name(self, conn, &name, out)
            }
            (
                State::AwaitingName | State::AwaitingPassword { .. },
                ClientMsg::Login { name, password },
            ) => cmd::auth::login(self, now, conn, &name, password, out),
            (State::AwaitingPassword { .. }, ClientMsg::Say { text: password }) => {
                cmd::auth::check_password(self, now, conn, password, out)
            }
            (State::AwaitingName | State::AwaitingPassword { .. }, ClientMsg::Command(command)) => {
                cmd::dispatch_before_join(self, conn, command, out)
            }
            (State::Chatting { .. }, msg) => self.joined_message(now, conn, msg, out),
            (_, ClientMsg::Ping { .. } | ClientMsg::Pong { .. } | ClientMsg::Resume { .. }) => {}
        }
    }

    /// What a joined user's message does (here, or from the cluster's log).
    fn joined_message(&mut self, now: &Now, conn: ConnId, msg: ClientMsg, out: &mut Outbox) {
        match msg {
            ClientMsg::Say { text } => cmd::chat::say(self, now, conn, text, out),
            ClientMsg::Command(command) => cmd::dispatch(self, now, conn, command, out),
            ClientMsg::Hello { .. } | ClientMsg::Login { .. } => {
                out.deliver(
                    Recipients::One(conn),
                    ServerMsg::Reject(Reject::AlreadyJoined),
                );
            }
            ClientMsg::Ping { .. } | ClientMsg::Pong { .. } | ClientMsg::Resume { .. } => {}
        }
    }

    /// Closes connections that took too long to give a name, starts the password checks whose
    /// hold is over, and forgets old failed logins.
    fn tick(&mut self, now: &Now, out: &mut Outbox) {
        while let Some(&(deadline, conn)) = self.name_deadlines.front() {
            if deadline > now.instant {
                break;
            }
            self.name_deadlines.pop_front();
            let waiting = self.sessions.get(conn).map(|s| &s.state);
            if let Some(State::Verifying { .. } | State::Claiming { .. }) = waiting {
                // Its password is being checked, or held back by the throttle: if it fails, the
                // connection gets another while to give a name (pushed last, so still in order).
                self.name_deadlines
                    .push_back((now.instant + self.config.name_timeout, conn));
                continue;
            }
            if matches!(
                waiting,
                Some(State::AwaitingName | State::AwaitingPassword { .. })
            ) {
                log::info!("{conn}: no name within {:?}", self.config.name_timeout);
                out.deliver(
                    Recipients::One(conn),
                    ServerMsg::Reject(Reject::NameTimeout),
                );
                self.close(conn, CloseReason::NameTimeout, LeaveKind::Exited, None, out);
            }
        }
        self.logins.prune(now.instant);
        cmd::auth::release_checks(self, now, out);
        if self.config.cluster {
            return;
        }
        for room in self.rooms.crowds_due(now.instant) {
            self.tell_crowd(room, out);
        }
    }

    /// Refuses input that could not be decoded. A message whose digest did not match is dropped
    /// and counted (damage, not abuse: it does not count toward closing); a stream that cannot be
    /// read on is closed; a connection that keeps sending unreadable input is closed too.
    fn bad_input(&mut self, conn: ConnId, error: DecodeError, out: &mut Outbox) {
        let Some(session) = self.sessions.get_mut(conn) else {
            return;
        };
        if session.state == State::Closing {
            return;
        }
        log::info!("{conn}: bad input: {error}");
        out.deliver(
            Recipients::One(conn),
            ServerMsg::Reject(Reject::BadInput(error)),
        );
        if let DecodeError::BadDigest { .. } = error {
            self.bad_digests += 1;
            return;
        }
        if error.is_fatal() {
            return self.cut(conn, CloseReason::BadInput(error), out);
        }
        session.bad_inputs = session.bad_inputs.saturating_add(1);
        if session.bad_inputs >= self.config.max_bad_input {
            log::warn!(
                "{conn}: closed after {} inputs it could not read",
                session.bad_inputs
            );
            out.deliver(
                Recipients::One(conn),
                ServerMsg::Reject(Reject::TooMuchBadInput),
            );
            self.cut(conn, CloseReason::TooMuchBadInput, out);
        }
    }

    /// Closes `conn` for a reason of its own input, as [`Chat::close`] does; but in cluster mode
    /// a user admitted through the log is only cut off here: its Left, published when the
    /// connection is gone, takes it out at every node.
    fn cut(&mut self, conn: ConnId, why: CloseReason, out: &mut Outbox) {
        if self.config.cluster && self.replica.is_admitted(conn) {
            return out.push(Action::Close { conn, why });
        }
        self.close(conn, why, LeaveKind::Exited, None, out);
    }

    /// Puts `conn` in the room as `name` (in cluster mode: claims the name, and asks for the
    /// Admit to be published, see [`cluster`]).
    fn join(&mut self, conn: ConnId, name: &str, role: Role, registered: bool, out: &mut Outbox) {
        if self.config.cluster {
            return self.claim(conn, name, role, registered, out);
        }
        self.admit(conn, name, role, registered, out);
    }

    /// Puts `conn` in the room as `name`: welcome, backlog, and the news to everyone else.
    fn admit(&mut self, conn: ConnId, name: &str, role: Role, registered: bool, out: &mut Outbox) {
        let others = self.sessions.first_names(WELCOME_NAMES);
        let more = self.sessions.joined_count().saturating_sub(others.len());
        self.sessions.join(conn, name, role, registered);
        log::info!(
            "{conn} joined as {name} ({role}, {})",
            if registered { "registered" } else { "guest" }
        );
        out.deliver(
            Recipients::One(conn),
            ServerMsg::Welcome {
                name: name.to_owned(),
                others,
                more,
            },
        );
        out.push(Action::Joined { conn });
        self.show_history(conn, RoomId::DEFAULT, out);
        if registered && self.config.store_history {
            let name = name.to_owned();
            out.push(Action::History(crate::history::Job::Mailbox { conn, name }));
        }
        if self.is_crowded(RoomId::DEFAULT) {
            return self.rooms.gather(RoomId::DEFAULT, name, true, self.now);
        }
        let entered = Event::Entered {
            name: name.to_owned(),
        };
        self.broadcast(RoomId::DEFAULT, Some(conn), ServerMsg::Event(entered), out);
    }

    /// Shows `conn` the history of `room`, marked as history: the last `--history` lines, or,
    /// if the connection said in its [`ClientMsg::Resume`] which line of the room it has last,
    /// every line after that one (told of a gap first when they are not all kept).
    fn show_history(&mut self, conn: ConnId, room: RoomId, out: &mut Outbox) {
        let key = self.rooms.name(room).to_ascii_lowercase();
        let after = self.sessions.get_mut(conn).and_then(|session| {
            let at = session.resume.iter().position(|(name, _)| {
                *name == key || (room == RoomId::DEFAULT && name.is_empty())
            })?;
            Some(session.resume.swap_remove(at).1)
        });
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let epoch = self.config.epoch;
        let skip = match after {
            None => r.history.len().saturating_sub(self.config.history),
            Some(after) => {
                // The line is known if it is of this run, this room, and said already.
                let known = after
                    .filter(|id| id.epoch == epoch && id.room == room.0 && id.seq <= r.last_seq)
                    .map(|id| id.seq);
                let first = r.history.front().map_or(r.last_seq + 1, |line| line.seq);
                let missing = match known {
                    Some(seq) if seq + 1 >= first => Some(0),
                    Some(seq) => Some(first - seq - 1),
                    None => None,
                };
                if missing != Some(0) {
                    let gap = ServerMsg::Gap {
                        room: self.rooms.tag(room),
                        missing,
                        since: r.history.front().map(|line| line.at),
                    };
                    out.deliver(Recipients::One(conn), gap);
                }
                let seq = known.unwrap_or(0);
                r.history.iter().take_while(|line| line.seq <= seq).count()
            }
        };
        let oldest = r.history.get(skip).map_or(r.last_seq + 1, |line| line.seq);
        if let Some(session) = self.sessions.get_mut(conn) {
            session.seen_from.retain(|&(r, _)| r != room);
            session.seen_from.push((room, oldest));
        }
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        for line in r.history.iter().skip(skip) {
            out.deliver(Recipients::One(conn), self.history_msg(room, line));
        }
    }

    /// A kept line of `room` as it is shown as history, with its id.
    fn history_msg(&self, room: RoomId, line: &rooms::HistoryLine) -> ServerMsg {
        ServerMsg::Line {
            id: self.line_id(room, line.seq),
            msg: Box::new(self.history_line(room, line)),
        }
    }

    /// A kept line of `room` as it is shown as history, without its id (a `/history` page: the
    /// web page resumes from the last id it was given, which such an older line must not move).
    fn history_line(&self, room: RoomId, line: &rooms::HistoryLine) -> ServerMsg {
        if room == RoomId::DEFAULT && !line.me {
            ServerMsg::Backlog {
                at: line.at,
                from: line.from.clone(),
                text: line.text.clone(),
            }
        } else {
            ServerMsg::Room {
                room: self.rooms.tag(room),
                line: RoomLine::History {
                    at: line.at,
                    from: line.from.clone(),
                    text: line.text.clone(),
                    me: line.me,
                },
            }
        }
    }

    /// The id of line `seq` of `room`.
    fn line_id(&self, room: RoomId, seq: u64) -> LineId {
        LineId {
            epoch: self.config.epoch,
            room: room.0,
            seq,
        }
    }

    /// How many users are in `room`.
    fn member_count(&self, room: RoomId) -> usize {
        if room == RoomId::DEFAULT {
            return self.sessions.joined_count();
        }
        self.rooms.get(room).map_or(0, |r| r.members.len())
    }

    /// Whether `room` is crowded once one more user is in it.
    fn is_crowded_after_join(&self, room: RoomId) -> bool {
        self.member_count(room) + 1 > self.rooms.config().crowd
    }

    /// Whether joins and leaves in `room` are gathered rather than told one by one.
    fn is_crowded(&self, room: RoomId) -> bool {
        self.member_count(room) > self.rooms.config().crowd
    }

    /// Sends `msg` to every member of `room` but `except`, and the console; whatever joins and
    /// leaves the room had gathered are told first.
    fn broadcast(
        &mut self,
        room: RoomId,
        except: Option<ConnId>,
        msg: ServerMsg,
        out: &mut Outbox,
    ) {
        self.tell_crowd(room, out);
        out.deliver(to_room(room, except, true), msg);
    }

    /// Tells `room` the joins and leaves it had gathered, as one line each.
    fn tell_crowd(&mut self, room: RoomId, out: &mut Outbox) {
        let Some(crowd) = self.rooms.take_crowd(room) else {
            return;
        };
        let tag = self.rooms.tag(room);
        let to = to_room(room, None, true);
        if !crowd.entered.is_empty() {
            let line = RoomLine::Entered {
                names: crowd.entered,
                more: crowd.entered_more,
            };
            let room = tag.clone();
            out.deliver(to, ServerMsg::Room { room, line });
        }
        if !crowd.left.is_empty() {
            let how = if room == RoomId::DEFAULT {
                Departure::Exited
            } else {
                Departure::Parted
            };
            let line = RoomLine::Left {
                names: crowd.left,
                more: crowd.left_more,
                how,
                reason: None,
            };
            out.deliver(to, ServerMsg::Room { room: tag, line });
        }
    }

    /// Closes `conn` after what is queued for it is written; tells the room if it was in it.
    fn close(
        &mut self,
        conn: ConnId,
        why: CloseReason,
        kind: LeaveKind,
        reason: Option<String>,
        out: &mut Outbox,
    ) {
        out.push(Action::Close { conn, why });
        if let Some(name) = self.sessions.close(conn) {
            self.announce_leave(conn, name, kind, reason, out);
        }
    }

    /// Tells every room `conn` was in that it left the server, and takes it out of them.
    fn announce_leave(
        &mut self,
        conn: ConnId,
        name: String,
        kind: LeaveKind,
        reason: Option<String>,
        out: &mut Outbox,
    ) {
        // The shell logs the one disconnect line, with the reason.
        log::debug!("{conn} ({name}) left: {kind:?}");
        let how = match kind {
            LeaveKind::Exited => Departure::Exited,
            LeaveKind::Kicked => Departure::Kicked,
        };
        for room in self.rooms.joined(conn).to_vec() {
            let crowded = self.is_crowded(room);
            self.remove_member(room, conn, out);
            if crowded && how == Departure::Exited {
                self.rooms.gather(room, &name, false, self.now);
                continue;
            }
            if self.rooms.get(room).is_none() {
                continue;
            }
            let line = RoomLine::Left {
                names: vec![name.clone()],
                more: 0,
                how,
                reason: reason.clone(),
            };
            let tag = self.rooms.tag(room);
            self.broadcast(room, None, ServerMsg::Room { room: tag, line }, out);
        }
        // The user has left the default room's count already: it was crowded if the count with
        // the user in it was over the limit.
        if kind == LeaveKind::Exited
            && self.member_count(RoomId::DEFAULT) >= self.rooms.config().crowd
        {
            return self.rooms.gather(RoomId::DEFAULT, &name, false, self.now);
        }
        let left = Event::Left { name, kind, reason };
        self.broadcast(RoomId::DEFAULT, None, ServerMsg::Event(left), out);
    }

    /// Numbers a chat line of the default room and remembers it for the backlog; returns it
    /// with its id.
    fn remember(&mut self, msg: ServerMsg, out: &mut Outbox) -> ServerMsg {
        self.remember_in(RoomId::DEFAULT, msg, out)
    }

    /// Numbers a line of `room` (a [`ServerMsg::Chat`], or a [`ServerMsg::Room`] chat or
    /// action line: what goes into the history) and remembers it; returns it with its id.
    fn remember_in(&mut self, room: RoomId, msg: ServerMsg, out: &mut Outbox) -> ServerMsg {
        let (at, from, text, me) = match &msg {
            ServerMsg::Chat { at, from, text }
            | ServerMsg::Room {
                line: RoomLine::Chat { at, from, text },
                ..
            } => (*at, from, text, false),
            ServerMsg::Room {
                line: RoomLine::Me { at, from, text },
                ..
            } => (*at, from, text, true),
            _ => return msg,
        };
        let history = self.config.history;
        let Some(r) = self.rooms.get_mut(room) else {
            return msg;
        };
        let seq = r.remember(history, at, from, text, me);
        if self.config.store_history {
            out.push(Action::History(crate::history::Job::Keep(
                crate::history::KeptLine {
                    room: r.name.to_ascii_lowercase(),
                    seq,
                    at: at.unix,
                    from: from.clone(),
                    text: text.clone(),
                    me,
                },
            )));
        }
        ServerMsg::Line {
            id: self.line_id(room, seq),
            msg: Box::new(msg),
        }
    }

    /// Gives the room named `room` (any case) the lines it had when the server last stopped,
    /// oldest first, and its last line number, so that its numbering goes on after them and
    /// users joining see them as history. `now` gives the offset their stamps are shown in. For
    /// start-up, before any input; a room the core does not have is skipped.
    pub fn restore_history(
        &mut self,
        now: &Now,
        room: &str,
        lines: Vec<crate::history::KeptLine>,
        last_seq: u64,
    ) {
        let history = self.config.history;
        let Some(r) = self
            .rooms
            .lookup(room)
            .and_then(|id| self.rooms.get_mut(id))
        else {
            return;
        };
        r.restore(
            history,
            lines.into_iter().map(|line| rooms::HistoryLine {
                at: now.stamp.with_unix(line.at),
                from: line.from,
                text: line.text,
                me: line.me,
                seq: line.seq,
            }),
            last_seq,
        );
    }

    /// The names of every room the core has, for the shell to restore their history.
    pub fn room_names(&self) -> Vec<String> {
        self.rooms.iter().map(|r| r.name.clone()).collect()
    }

    /// Takes `conn` out of `room`; an ad-hoc room left empty vanishes, and so do its kept lines.
    fn remove_member(&mut self, room: RoomId, conn: ConnId, out: &mut Outbox) {
        let key = self.rooms.name(room).to_ascii_lowercase();
        self.rooms.remove_member(room, conn);
        if self.config.store_history && self.rooms.get(room).is_none() && !key.is_empty() {
            out.push(Action::History(crate::history::Job::ForgetRoom {
                room: key,
            }));
        }
    }

    /// A room was just made: whatever the store kept under its name (an ad-hoc room of the same
    /// name that vanished, or one of a run that stopped) is not its history.
    fn made_room(&mut self, room: RoomId, out: &mut Outbox) {
        if self.config.store_history {
            let key = self.rooms.name(room).to_ascii_lowercase();
            out.push(Action::History(crate::history::Job::ForgetRoom {
                room: key,
            }));
        }
    }

    /// Takes accounts read again from disk, bringing the roles of users online up to date.
    ///
    /// In cluster mode the roles of users online stay as the log made them: this node's
    /// accounts may differ from another's, and every node must judge a user's commands alike.
    fn replace_registry(&mut self, registry: Registry) {
        self.registry = registry;
        if self.config.cluster {
            return;
        }
        for (_, session) in self.sessions.iter_mut() {
            let State::Chatting { name } = &session.state else {
                continue;
            };
            if !session.registered {
                continue;
            }
            match self.registry.account(name) {
                Some(account) => session.role = account.role,
                None => {
                    session.registered = false;
                    session.role = Role::User;
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A scripted room for the core's tests: a fixed clock, fake connections, recorded actions.

    use super::*;
    use crate::proto::msg::{HostCommand, Stamp};

    /// A chat with a fixed clock whose every step returns the actions it produced.
    pub struct Script {
        pub chat: Chat,
        pub now: Now,
    }

    impl Script {
        pub fn new() -> Script {
            Script {
                chat: Chat::new(ChatConfig::default(), Registry::default(), Instant::now()),
                now: Now {
                    instant: Instant::now(),
                    stamp: Stamp::new(1_700_000_000, 12, 34, 56),
                },
            }
        }

        pub fn with_config(config: ChatConfig) -> Script {
            let mut s = Script::new();
            s.chat = Chat::new(config, Registry::default(), s.now.instant);
            s
        }

        pub fn input(&mut self, input: Input) -> Vec<Action> {
            let mut out = Outbox::new();
            self.chat.handle(&self.now, input, &mut out);
            out.drain().collect()
        }

        pub fn connect(&mut self, id: u64) -> Vec<Action> {
            self.connect_from(id, std::net::IpAddr::from([127, 0, 0, 1]))
        }

        pub fn connect_from(&mut self, id: u64, peer: std::net::IpAddr) -> Vec<Action> {
            self.input(Input::Connected {
                conn: ConnId(id),
                peer,
                secure: false,
            })
        }

        pub fn line(&mut self, id: u64, line: &str) -> Vec<Action> {
            let msg = crate::proto::text::parse_line(line);
            self.input(Input::Message {
                conn: ConnId(id),
                msg,
            })
        }

        /// Connects `id` and logs it in to the registered name `name`, the password check passing.
        pub fn login(&mut self, id: u64, name: &str) {
            self.connect(id);
            self.line(id, name);
            self.line(id, "the password");
            let done = Input::PasswordDone {
                conn: ConnId(id),
                outcome: PasswordOutcome::Verified,
            };
            let actions = self.input(done);
            assert!(
                matches!(
                    actions.first(),
                    Some(Action::Deliver {
                        msg: ServerMsg::Welcome { .. },
                        ..
                    })
                ),
                "{name} could not log in: {actions:?}"
            );
        }

        /// Connects `id` and joins it as `name`, returning what joining did.
        pub fn line_after_connect(&mut self, id: u64, name: &str) -> Vec<Action> {
            self.connect(id);
            self.line(id, name)
        }

        pub fn host(&mut self, command: HostCommand) -> Vec<Action> {
            self.input(Input::Host(command))
        }

        /// Connects `id` and joins it as `name`.
        pub fn join(&mut self, id: u64, name: &str) {
            self.connect(id);
            let actions = self.line(id, name);
            assert!(
                matches!(
                    actions.first(),
                    Some(Action::Deliver {
                        msg: ServerMsg::Welcome { .. },
                        ..
                    })
                ),
                "{name} could not join: {actions:?}"
            );
        }
    }

    pub fn to_one(id: u64, msg: ServerMsg) -> Action {
        Action::Deliver {
            to: Recipients::One(ConnId(id)),
            msg,
        }
    }

    /// `msg` as line `seq` of room `room` in the script's run of the server.
    pub fn numbered(room: u32, seq: u64, msg: ServerMsg) -> ServerMsg {
        let id = LineId {
            epoch: ChatConfig::default().epoch,
            room,
            seq,
        };
        ServerMsg::Line {
            id,
            msg: Box::new(msg),
        }
    }

    /// `action`, a delivery, with its message numbered as line `seq` of room `room`.
    pub fn nth(action: Action, room: u32, seq: u64) -> Action {
        match action {
            Action::Deliver { to, msg } => Action::Deliver {
                to,
                msg: numbered(room, seq, msg),
            },
            other => other,
        }
    }

    pub fn event_to_room(event: Event, except: Option<u64>) -> Action {
        let to = Recipients::Room {
            except: except.map(ConnId),
            console: true,
        };
        Action::Deliver {
            to,
            msg: ServerMsg::Event(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::proto::DecodeError;
    use std::time::Duration;

    #[test]
    fn a_new_connection_is_greeted_with_the_count_online() {
        let mut s = Script::new();
        s.join(1, "alice");
        assert_eq!(
            s.connect(2),
            vec![to_one(2, ServerMsg::Greeting { online: 1 })]
        );
    }

    #[test]
    fn joining_welcomes_the_user_and_tells_the_others_and_the_console() {
        let mut s = Script::new();
        s.join(1, "bob");
        s.connect(2);
        assert_eq!(
            s.line(2, "alice"),
            vec![
                to_one(
                    2,
                    ServerMsg::Welcome {
                        name: "alice".into(),
                        others: vec!["bob".into()],
                        more: 0,
                    }
                ),
                Action::Joined { conn: ConnId(2) },
                event_to_room(
                    Event::Entered {
                        name: "alice".into()
                    },
                    Some(2)
                ),
            ]
        );
        let mut members: Vec<ConnId> = s.chat.members().collect();
        members.sort();
        assert_eq!(members, vec![ConnId(1), ConnId(2)]);
    }

    #[test]
    fn a_refused_name_gets_the_reason_and_the_prompt_and_the_connection_stays() {
        let mut s = Script::new();
        s.join(1, "Bob");
        s.connect(2);
        for (name, reject) in [
            ("BOB", Reject::NameTaken),
            ("host", Reject::NameReserved),
            ("a b", Reject::NameInvalid),
        ] {
            assert_eq!(
                s.line(2, name),
                vec![
                    to_one(2, ServerMsg::Reject(reject)),
                    to_one(2, ServerMsg::NamePrompt)
                ],
                "{name}"
            );
        }
        assert_eq!(s.line(2, "   "), vec![to_one(2, ServerMsg::NamePrompt)]);
        s.join(3, "carol");
    }

    #[test]
    fn leaving_frees_the_name_and_tells_the_room_once() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        let gone = Input::Disconnected { conn: ConnId(1) };
        let exited = Event::Left {
            name: "alice".into(),
            kind: LeaveKind::Exited,
            reason: None,
        };
        assert_eq!(s.input(gone.clone()), vec![event_to_room(exited, None)]);
        assert_eq!(s.input(gone), vec![]);
        s.join(3, "ALICE");
    }

    #[test]
    fn a_connection_that_never_named_itself_leaves_silently() {
        let mut s = Script::new();
        s.connect(1);
        assert_eq!(s.input(Input::Disconnected { conn: ConnId(1) }), vec![]);
    }

    #[test]
    fn a_line_too_long_is_refused_and_the_connection_stays() {
        let mut s = Script::new();
        s.join(1, "alice");
        let bad = Input::BadInput {
            conn: ConnId(1),
            error: DecodeError::LineTooLong { max: 8192 },
        };
        assert_eq!(
            s.input(bad),
            vec![to_one(
                1,
                ServerMsg::Reject(Reject::BadInput(DecodeError::LineTooLong { max: 8192 }))
            )]
        );
        assert_eq!(s.chat.members().count(), 1);
    }

    #[test]
    fn a_connection_without_a_name_is_closed_at_the_deadline_and_not_before() {
        let mut s = Script::new();
        s.connect(1);
        s.join(2, "bob");
        let deadline = s.chat.next_deadline().expect("a name deadline");
        assert_eq!(deadline, s.now.instant + ChatConfig::default().name_timeout);
        s.now.instant = deadline - Duration::from_millis(1);
        assert_eq!(
            s.input(Input::Tick),
            vec![],
            "a tick before the deadline does nothing"
        );
        s.now.instant = deadline;
        assert_eq!(
            s.input(Input::Tick),
            vec![
                to_one(1, ServerMsg::Reject(Reject::NameTimeout)),
                Action::Close {
                    conn: ConnId(1),
                    why: CloseReason::NameTimeout,
                }
            ]
        );
        assert_eq!(s.chat.next_deadline(), None, "bob joined in time");
        assert_eq!(s.chat.members().collect::<Vec<_>>(), vec![ConnId(2)]);
    }

    #[test]
    fn a_connection_that_keeps_sending_unreadable_input_is_closed() {
        let mut s = Script::new();
        s.join(1, "alice");
        let bad = Input::BadInput {
            conn: ConnId(1),
            error: DecodeError::LineTooLong { max: 8192 },
        };
        let refused = to_one(
            1,
            ServerMsg::Reject(Reject::BadInput(DecodeError::LineTooLong { max: 8192 })),
        );
        assert_eq!(s.input(bad.clone()), vec![refused.clone()]);
        assert_eq!(s.input(bad.clone()), vec![refused.clone()]);
        let closed = s.input(bad);
        assert_eq!(
            closed[..3],
            [
                refused,
                to_one(1, ServerMsg::Reject(Reject::TooMuchBadInput)),
                Action::Close {
                    conn: ConnId(1),
                    why: CloseReason::TooMuchBadInput,
                }
            ]
        );
    }

    #[test]
    fn a_digest_mismatch_is_refused_naming_the_message_counted_and_not_relayed() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        let error = DecodeError::BadDigest { id: 42 };
        let bad = Input::BadInput {
            conn: ConnId(1),
            error,
        };
        assert_eq!(
            s.input(bad.clone()),
            vec![to_one(1, ServerMsg::Reject(Reject::BadInput(error)))]
        );
        s.input(bad);
        assert_eq!(s.chat.bad_digests(), 2);
        assert_eq!(s.chat.members().count(), 2, "nobody is closed");
    }

    #[test]
    fn a_fatal_decode_error_is_told_then_closes_and_the_room_hears_an_exit() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        let error = DecodeError::FrameTooLong {
            len: 1 << 20,
            max: 1 << 16,
        };
        let exited = Event::Left {
            name: "alice".into(),
            kind: LeaveKind::Exited,
            reason: None,
        };
        assert_eq!(
            s.input(Input::BadInput {
                conn: ConnId(1),
                error
            }),
            vec![
                to_one(1, ServerMsg::Reject(Reject::BadInput(error))),
                Action::Close {
                    conn: ConnId(1),
                    why: CloseReason::BadInput(error),
                },
                event_to_room(exited, None),
            ]
        );
        assert_eq!(s.chat.bad_digests(), 0);
        assert_eq!(s.chat.members().collect::<Vec<_>>(), vec![ConnId(2)]);
        assert_eq!(s.input(Input::Disconnected { conn: ConnId(1) }), vec![]);
    }

    #[test]
    fn a_bad_version_closes_a_connection_that_never_joined_silently() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.connect(2);
        let error = DecodeError::BadVersion { version: 9 };
        assert_eq!(
            s.input(Input::BadInput {
                conn: ConnId(2),
                error
            }),
            vec![
                to_one(2, ServerMsg::Reject(Reject::BadInput(error))),
                Action::Close {
                    conn: ConnId(2),
                    why: CloseReason::BadInput(error),
                },
            ]
        );
    }

    #[test]
    fn the_welcome_names_the_first_twenty_by_name_and_counts_the_rest() {
        let mut s = Script::new();
        for n in (0..25).rev() {
            s.join(n, &format!("U{n:02}"));
        }
        s.connect(99);
        let joined = s.line(99, "zed");
        let expected: Vec<String> = (0..20).map(|n| format!("U{n:02}")).collect();
        assert_eq!(
            joined.first(),
            Some(&to_one(
                99,
                ServerMsg::Welcome {
                    name: "zed".into(),
                    others: expected,
                    more: 5,
                }
            ))
        );
    }

    #[test]
    fn a_framed_hello_joins_like_a_typed_name() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.connect(2);
        let hello = |name: &str| Input::Message {
            conn: ConnId(2),
            msg: ClientMsg::Hello { name: name.into() },
        };
        assert_eq!(
            s.input(hello("ALICE")),
            vec![
                to_one(2, ServerMsg::Reject(Reject::NameTaken)),
                to_one(2, ServerMsg::NamePrompt)
            ]
        );
        let joined = s.input(hello("bob"));
        assert_eq!(
            joined.first(),
            Some(&to_one(
                2,
                ServerMsg::Welcome {
                    name: "bob".into(),
                    others: vec!["alice".into()],
                    more: 0,
                }
            ))
        );
        assert_eq!(
            s.input(hello("carol")),
            vec![to_one(2, ServerMsg::Reject(Reject::AlreadyJoined))]
        );
    }

    #[test]
    fn ping_is_answered_with_the_server_time_in_any_state() {
        let mut s = Script::new();
        s.connect(1);
        let ping = Input::Message {
            conn: ConnId(1),
            msg: ClientMsg::Ping { nonce: 7 },
        };
        assert_eq!(
            s.input(ping),
            vec![to_one(
                1,
                ServerMsg::Pong {
                    nonce: 7,
                    at: s.now.stamp
                }
            )]
        );
    }

    /// The resume tests: alice says lines, bob comes back saying which line he has last.
    mod resume {
        use super::*;
        use crate::core::rooms::{RESUME_BYTES, RESUME_LINES};

        fn id(room: u32, seq: u64) -> LineId {
            LineId {
                epoch: ChatConfig::default().epoch,
                room,
                seq,
            }
        }

        /// alice (1) in the lobby says `count` lines, `line 1` to `line {count}`.
        fn said(count: u64) -> Script {
            let mut s = Script::new();
            s.join(1, "alice");
            for n in 1..=count {
                s.line(1, &format!("line {n}"));
            }
            s
        }

        /// bob (2) connects, says he has `after` of the lobby, and joins: what he is sent after
        /// the welcome and the join itself, as (id, text) of each line and any gap.
        fn rejoin(
            s: &mut Script,
            after: Option<LineId>,
        ) -> (Vec<(LineId, String)>, Vec<ServerMsg>) {
            s.connect(2);
            let resume = ClientMsg::Resume {
                rooms: vec![("".into(), after)],
            };
            let none = s.input(Input::Message {
                conn: ConnId(2),
                msg: resume,
            });
            assert_eq!(none, vec![], "a resume is only remembered");
            let mut lines = Vec::new();
            let mut gaps = Vec::new();
            for action in s.line(2, "bob") {
                let Action::Deliver { to, msg } = action else {
                    continue;
                };
                match msg {
                    ServerMsg::Line { id, msg } => {
                        assert_eq!(to, Recipients::One(ConnId(2)));
                        match *msg {
                            ServerMsg::Backlog { text, .. } => lines.push((id, text)),
                            other => panic!("not a history line: {other:?}"),
                        }
                    }
                    gap @ ServerMsg::Gap { .. } => {
                        assert!(lines.is_empty(), "the gap is told before the lines");
                        gaps.push(gap);
                    }
                    _ => {}
                }
            }
            (lines, gaps)
        }

        fn texts(from: u64, to: u64) -> Vec<(LineId, String)> {
            (from..=to)
                .map(|n| (id(0, n), format!("line {n}")))
                .collect()
        }

        #[test]
        fn with_nothing_missed_nothing_is_sent_again() {
            let mut s = said(3);
            assert_eq!(rejoin(&mut s, Some(id(0, 3))), (vec![], vec![]));
        }

        #[test]
        fn after_k_lines_exactly_those_come_in_order() {
            let mut s = said(30);
            // More than --history (20) lines after: all of them, not just the last 20.
            assert_eq!(rejoin(&mut s, Some(id(0, 5))), (texts(6, 30), vec![]));
        }

        #[test]
        fn without_a_resume_the_history_is_the_last_lines_with_their_ids() {
            let mut s = said(30);
            s.connect(2);
            let shown: Vec<LineId> = s
                .line(2, "bob")
                .into_iter()
                .filter_map(|a| match a {
                    Action::Deliver {
                        msg: ServerMsg::Line { id, .. },
                        ..
                    } => Some(id),
                    _ => None,
                })
                .collect();
            assert_eq!(shown, (11..=30).map(|n| id(0, n)).collect::<Vec<_>>());
        }

        #[test]
        fn past_the_backlog_the_gap_is_told_with_how_many_lines_are_lost() {
            let total = RESUME_LINES as u64 + 30;
            let mut s = said(total);
            let (lines, gaps) = rejoin(&mut s, Some(id(0, 5)));
            // Kept: the last 200, lines 31 to 230; lost: 6 to 30.
            assert_eq!(lines, texts(31, total));
            assert_eq!(
                gaps,
                vec![ServerMsg::Gap {
                    room: s.chat.rooms.tag(RoomId::DEFAULT),
                    missing: Some(25),
                    since: Some(s.now.stamp),
                }]
            );
        }

        #[test]
        fn an_id_of_another_run_or_unreadable_is_unknown_and_gets_what_is_kept() {
            for after in [
                Some(LineId {
                    epoch: 99,
                    ..id(0, 2)
                }),
                Some(id(7, 2)),
                Some(id(0, 4)),
                None,
            ] {
                let mut s = said(3);
                let (lines, gaps) = rejoin(&mut s, after);
                assert_eq!(lines, texts(1, 3), "{after:?}");
                assert_eq!(
                    gaps,
                    vec![ServerMsg::Gap {
                        room: s.chat.rooms.tag(RoomId::DEFAULT),
                        missing: None,
                        since: Some(s.now.stamp),
                    }],
                    "{after:?}"
                );
            }
        }

        #[test]
        fn a_room_resumes_when_joined_again_and_the_resume_is_used_once() {
            let mut s = Script::new();
            s.join(1, "alice");
            s.line(1, "/join #dev");
            for n in 1..=4 {
                s.line(1, &format!("dev {n}"));
            }
            s.connect(2);
            s.input(Input::Message {
                conn: ConnId(2),
                msg: ClientMsg::Resume {
                    rooms: vec![("#DEV".into(), Some(id(1, 2)))],
                },
            });
            s.line(2, "bob");
            let history = |actions: Vec<Action>| -> Vec<LineId> {
                actions
                    .into_iter()
                    .filter_map(|a| match a {
                        Action::Deliver {
                            to: Recipients::One(ConnId(2)),
                            msg: ServerMsg::Line { id, .. },
                        } => Some(id),
                        _ => None,
                    })
                    .collect()
            };
            assert_eq!(history(s.line(2, "/join #dev")), vec![id(1, 3), id(1, 4)]);
            s.line(2, "/part #dev");
            assert_eq!(
                history(s.line(2, "/join #dev")).len(),
                4,
                "the next join shows the history as usual"
            );
        }

        #[test]
        fn the_backlog_is_bounded_in_lines_and_in_bytes() {
            let mut s = said(RESUME_LINES as u64 * 2);
            let lobby = s.chat.rooms.default_room();
            assert_eq!(lobby.history.len(), RESUME_LINES);
            assert_eq!(lobby.last_seq, RESUME_LINES as u64 * 2);
            let long = "x".repeat(4000);
            for _ in 0..100 {
                s.line(1, &long);
            }
            let lobby = s.chat.rooms.default_room();
            let bytes: usize = lobby
                .history
                .iter()
                .map(|l| l.from.len() + l.text.len())
                .sum();
            // The last 20 (--history) stay whatever their size; older ones only within the cap.
            assert!(bytes <= RESUME_BYTES.max(20 * (4000 + 5)), "{bytes}");
            assert_eq!(lobby.history.len(), 20);
            // What README and PROTOCOL.md say a kept line costs besides its name and text.
            assert!(std::mem::size_of::<crate::core::rooms::HistoryLine>() <= 96);
        }

        #[test]
        fn history_0_keeps_nothing_and_a_resume_is_told_the_gap() {
            let mut s = Script::with_config(ChatConfig {
                history: 0,
                ..ChatConfig::default()
            });
            s.join(1, "alice");
            s.line(1, "one");
            s.line(1, "two");
            assert!(s.chat.rooms.default_room().history.is_empty());
            let (lines, gaps) = rejoin(&mut s, Some(id(0, 1)));
            assert_eq!(lines, vec![]);
            assert_eq!(
                gaps,
                vec![ServerMsg::Gap {
                    room: s.chat.rooms.tag(RoomId::DEFAULT),
                    missing: Some(1),
                    since: None,
                }]
            );
        }
    }
}
