//! Rooms: names, members, each user's joined rooms and current room, topics, moderators,
//! per-room history, and the crowd rule that keeps big rooms cheap.
//!
//! # Design
//!
//! - **Ids.** Every room has a [`RoomId`] the core gives it when it is made and never reuses; the
//!   default room is always [`RoomId::DEFAULT`]. The shell only sees ids: a broadcast to a room is
//!   one `Deliver` to [`Recipients::InRoom`](super::Recipients::InRoom), membership changes are
//!   [`Action::EnteredRoom`](super::Action::EnteredRoom) and
//!   [`Action::LeftRoom`](super::Action::LeftRoom). The default room keeps the vocabulary it had
//!   before rooms existed (`Recipients::Room`, `Action::Joined`, `ServerMsg::Chat`,
//!   `ServerMsg::Backlog`, `Event::Entered`/`Left`), so a user who never types a room command
//!   gets exactly what they got before.
//! - **Lines.** Every other room's lines, and the new kinds of line in the default room (`/me`,
//!   topics, crowd notices), are [`ServerMsg::Room`](crate::proto::msg::ServerMsg::Room) with a
//!   [`RoomTag`] (name as created, and whether it is the default room) and a
//!   [`RoomLine`](crate::proto::msg::RoomLine). Text mode shows the default room's untagged and
//!   every other's with the room after the stamp.
//! - **The default room** holds everyone who has joined, so its members are the sessions'
//!   joined users (not kept twice); it cannot be parted (`/quit` leaves the server). Admins
//!   moderate every room; the creator of an ad-hoc room moderates it; `/mod` adds moderators.
//! - **Ad-hoc rooms** vanish with their history when their last member leaves. **Persistent
//!   rooms** (and the default room) stay, with topic and history; the core is given them at start
//!   ([`RoomConfig::persistent`]) and reports each change as
//!   [`Action::SaveRooms`](super::Action::SaveRooms) with the whole list, as account changes are
//!   reported with `Action::Store`.
//! - **Current room.** Plain lines go to it. Joining makes a room current; parting the current
//!   room falls back to the room joined last, then the default room.
//! - **Leaving the server** is told in every room the user was in: the default room as before
//!   (`[*] bob exited.`), each other room tagged (`[*] #dev: bob exited.`).
//! - **Line ids and resuming.** Every line that goes into a room's history (chat, `/me`, the
//!   host's) is numbered in the room and told as a
//!   [`ServerMsg::Line`](crate::proto::msg::ServerMsg::Line) with its
//!   [`LineId`](crate::proto::msg::LineId) (the run's epoch, the room's id, the number): live and
//!   as history alike. A room keeps its last `--history` lines and older ones up to
//!   [`RESUME_LINES`] within [`RESUME_BYTES`], so a client that says which line it has last
//!   gets exactly the lines after it, or a plain gap notice (see `Chat::show_history`).
//! - **Crowds.** In a room of more than [`RoomConfig::crowd`] members (100), joins and leaves are
//!   not told one by one: they are gathered for up to [`RoomConfig::crowd_window`] (1 s) and told
//!   as one line (`[*] alice, bob, carol and 38 others entered.`), sooner if anything else is said
//!   in the room (so the notice always comes before what the newcomers say). Smaller rooms hear
//!   every join and leave as it happens.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::input::ConnId;
use crate::proto::msg::{Reject, RoomTag, Stamp, TopicEntry};

pub use crate::names::{validate_room_name, MAX_ROOM_NAME_LEN};

/// How many names a crowd notice names before counting the rest.
pub const CROWD_NAMES: usize = 3;

/// A hash map keyed by the server's own ids ([`ConnId`], [`RoomId`]), with a fast hash: the keys
/// are never a peer's input, so no peer can make them collide.
pub type IdMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A room's identity for the life of the server; never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub u32);

impl RoomId {
    /// The default room's id.
    pub const DEFAULT: RoomId = RoomId(0);
}

/// A room that stays when empty and across restarts, as it is kept on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistentRoom {
    /// The name, with its `#`, as created.
    pub name: String,
    /// The topic, if set.
    pub topic: Option<TopicEntry>,
}

/// The room rules a server operator can choose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomConfig {
    /// The room everyone is in (`--default-room`).
    pub default_room: String,
    /// Whether users may make ad-hoc rooms with `/join` (`--no-create-rooms` turns it off).
    pub create_rooms: bool,
    /// Most rooms on the server, the default room included (`--max-rooms`).
    pub max_rooms: usize,
    /// Most rooms one user may be in, the default room included (`--max-rooms-per-user`).
    pub max_rooms_per_user: usize,
    /// The persistent rooms, as read from disk at start.
    pub persistent: Vec<PersistentRoom>,
    /// Rooms of more members than this hear joins and leaves gathered (see the module doc).
    pub crowd: usize,
    /// How long joins and leaves in a crowded room are gathered at most.
    pub crowd_window: Duration,
}

impl Default for RoomConfig {
    fn default() -> RoomConfig {
        RoomConfig {
            default_room: "#lobby".to_owned(),
            create_rooms: true,
            max_rooms: 1000,
            max_rooms_per_user: 20,
            persistent: Vec::new(),
            crowd: 100,
            crowd_window: Duration::from_secs(1),
        }
    }
}

/// The key a room name is unique under: ignoring case.
fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// A line kept for users who join the room later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryLine {
    /// When it was said.
    pub at: Stamp,
    /// Who said it.
    pub from: String,
    /// What was said.
    pub text: String,
    /// Whether it was an action line (`/me`).
    pub me: bool,
    /// Its number in the room (see [`LineId`](crate::proto::msg::LineId)).
    pub seq: u64,
}

/// Fewest lines a room keeps for clients that resume after a reconnect (the web page), however
/// few `--history` shows on joining; `--history 0` keeps none at all.
pub const RESUME_LINES: usize = 200;

/// Most bytes of names and texts a room keeps beyond its `--history` lines, so that the resume
/// backlog of a room of long lines stays small (200 lines of 8 KiB would be 1.6 MiB).
pub const RESUME_BYTES: usize = 32 * 1024;

/// Joins and leaves of a crowded room not told yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Crowd {
    /// When the first of them happened.
    pub since: Option<Instant>,
    /// The first few who entered.
    pub entered: Vec<String>,
    /// How many more entered.
    pub entered_more: usize,
    /// The first few who left.
    pub left: Vec<String>,
    /// How many more left.
    pub left_more: usize,
}

impl Crowd {
    fn add(names: &mut Vec<String>, more: &mut usize, name: &str) {
        if names.len() < CROWD_NAMES {
            names.push(name.to_owned());
        } else {
            *more += 1;
        }
    }
}

/// A room's members, by connection: a sorted list, 8 bytes a member and at most a quarter more
/// spare (a tree took 24 and a hash set 14, and a user in 20 rooms is in 20 of these). A join
/// appends (ids only grow, so a newcomer sorts last); a leave shifts the members after it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members(Vec<ConnId>);

impl Members {
    /// Adds `conn`; returns whether it was not a member yet.
    pub fn insert(&mut self, conn: ConnId) -> bool {
        let Err(at) = self.0.binary_search(&conn) else {
            return false;
        };
        if self.0.len() == self.0.capacity() {
            // Grow by a quarter, not double: the spare room is paid for by every big room.
            self.0.reserve_exact((self.0.len() / 4).max(4));
        }
        self.0.insert(at, conn);
        true
    }

    /// Takes `conn` out; returns whether it was a member.
    pub fn remove(&mut self, conn: ConnId) -> bool {
        let Ok(at) = self.0.binary_search(&conn) else {
            return false;
        };
        self.0.remove(at);
        if self.0.capacity() > 2 * self.0.len() + 8 {
            self.0.shrink_to(self.0.len() + self.0.len() / 4);
        }
        true
    }

    /// Whether `conn` is a member.
    pub fn contains(&self, conn: ConnId) -> bool {
        self.0.binary_search(&conn).is_ok()
    }

    /// The members, by id.
    pub fn iter(&self) -> impl Iterator<Item = &ConnId> + '_ {
        self.0.iter()
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it has no member.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One room.
#[derive(Debug)]
pub struct Room {
    /// Its id.
    pub id: RoomId,
    /// Its name, as created.
    pub name: String,
    /// Whether it stays when empty.
    pub persistent: bool,
    /// Its topic, if set.
    pub topic: Option<TopicEntry>,
    /// Who moderates it besides the admins, by lower-cased name.
    pub moderators: BTreeSet<String>,
    /// Its members (none for the default room: everyone is in it). Kept by connection, not by
    /// name, so a membership costs a few bytes; `/who` sorts the names when asked.
    pub members: Members,
    /// Its recent lines, oldest first: the last `--history` are shown on joining, and up to
    /// [`RESUME_LINES`] (within [`RESUME_BYTES`] beyond those) are kept for resuming.
    pub history: VecDeque<HistoryLine>,
    /// The bytes of names and texts in `history`.
    history_bytes: usize,
    /// The number of its last line (0 before the first).
    pub last_seq: u64,
    /// Joins and leaves not told yet (crowded rooms only).
    pub crowd: Crowd,
}

impl Room {
    fn new(id: RoomId, name: &str, persistent: bool) -> Room {
        Room {
            id,
            name: name.to_owned(),
            persistent,
            topic: None,
            moderators: BTreeSet::new(),
            members: Members::default(),
            history: VecDeque::new(),
            history_bytes: 0,
            last_seq: 0,
            crowd: Crowd::default(),
        }
    }

    /// Numbers a new line of the room and keeps it: the last `history` lines always, and older
    /// ones up to [`RESUME_LINES`] in all while they hold at most [`RESUME_BYTES`]. With
    /// `history` 0 nothing is kept. Returns the line's number.
    pub fn remember(&mut self, history: usize, at: Stamp, from: &str, text: &str, me: bool) -> u64 {
        self.last_seq += 1;
        if history == 0 {
            return self.last_seq;
        }
        let limit = history.max(RESUME_LINES);
        self.history_bytes += from.len() + text.len();
        self.history.push_back(HistoryLine {
            at,
            from: from.to_owned(),
            text: text.to_owned(),
            me,
            seq: self.last_seq,
        });
        while self.history.len() > limit
            || (self.history.len() > history && self.history_bytes > RESUME_BYTES)
        {
            let Some(old) = self.history.pop_front() else {
                break;
            };
            self.history_bytes -= old.from.len() + old.text.len();
        }
        self.last_seq
    }

    /// Takes `lines` (oldest first, numbered up to `last_seq`) as the room's history, as a run
    /// that remembered them would have kept them, and numbers the next line after `last_seq`.
    pub fn restore(
        &mut self,
        history: usize,
        lines: impl IntoIterator<Item = HistoryLine>,
        last_seq: u64,
    ) {
        self.history.clear();
        self.history_bytes = 0;
        for line in lines {
            self.last_seq = line.seq.saturating_sub(1);
            self.remember(history, line.at, &line.from, &line.text, line.me);
        }
        self.last_seq = self.last_seq.max(last_seq);
    }

    /// Whether `name` (any case) moderates the room (admins aside).
    pub fn is_moderator(&self, name: &str) -> bool {
        self.moderators.contains(&key(name))
    }
}

/// Where one user is: the rooms joined besides the default room, and the current room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Membership {
    /// In the order joined (the last is the one joined last).
    joined: Vec<RoomId>,
    current: Option<RoomId>,
}

/// Every room, and who is in which.
#[derive(Debug)]
pub struct Rooms {
    config: RoomConfig,
    rooms: IdMap<RoomId, Room>,
    /// Lower-cased name -> id; sorted, so `/rooms` needs no sorting.
    by_key: BTreeMap<String, RoomId>,
    next_id: u32,
    /// Only users in some room besides the default room are here.
    users: IdMap<ConnId, Membership>,
    /// Rooms with joins or leaves not told yet.
    crowded: Vec<RoomId>,
}

impl Rooms {
    /// The default room and the persistent rooms of `config`. A persistent room with a bad or
    /// repeated name is skipped (and logged); one named as the default room gives it its topic.
    /// Every other one is made, even past `max_rooms` (an operator's rooms are never dropped:
    /// the list is saved back as the server keeps it), and counts against it: when they reach
    /// it, a warning says that no room can be made until some are deleted.
    pub fn new(config: RoomConfig) -> Rooms {
        let mut rooms = Rooms {
            rooms: IdMap::default(),
            by_key: BTreeMap::new(),
            next_id: 0,
            users: IdMap::default(),
            crowded: Vec::new(),
            config: RoomConfig {
                persistent: Vec::new(),
                ..config.clone()
            },
        };
        let default = config.default_room.clone();
        rooms.insert(&default, true);
        for room in config.persistent {
            if let Err(e) = validate_room_name(&room.name) {
                log::warn!("persistent room skipped: {e}");
                continue;
            }
            let id = match rooms.lookup(&room.name) {
                Some(RoomId::DEFAULT) => RoomId::DEFAULT,
                Some(_) => {
                    log::warn!("persistent room {} is listed twice", room.name);
                    continue;
                }
                None => rooms.insert(&room.name, true),
            };
            if let Some(r) = rooms.rooms.get_mut(&id) {
                r.topic = room.topic;
            }
        }
        let (count, max) = (rooms.rooms.len(), rooms.config.max_rooms);
        if count > 1 && count >= max {
            log::warn!(
                "the persistent rooms make {count} rooms with the default room, and --max-rooms \
                 is {max}: no other room can be made (raise --max-rooms, or delete some with \
                 `chatd room del`)"
            );
        }
        rooms
    }

    fn insert(&mut self, name: &str, persistent: bool) -> RoomId {
        let id = RoomId(self.next_id);
        self.next_id += 1;
        self.by_key.insert(key(name), id);
        self.rooms.insert(id, Room::new(id, name, persistent));
        id
    }

    /// The id the next room made gets.
    pub fn next_id(&self) -> u32 {
        self.next_id
    }

    /// Makes no room with an id below `next` from now on (another node's numbering).
    pub fn reserve_ids(&mut self, next: u32) {
        self.next_id = self.next_id.max(next);
    }

    /// The room named `name` (any case), made with id `id` if it does not exist (another node's
    /// room, from its snapshot): with a new id if `id` is taken. Never refused for the limits.
    pub fn restore_room(&mut self, id: u32, name: &str, persistent: bool) -> RoomId {
        if let Some(found) = self.lookup(name) {
            return found;
        }
        let id = RoomId(id);
        if self.rooms.contains_key(&id) {
            return self.insert(name, persistent);
        }
        self.next_id = self.next_id.max(id.0.saturating_add(1));
        self.by_key.insert(key(name), id);
        self.rooms.insert(id, Room::new(id, name, persistent));
        id
    }

    /// The rules.
    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    /// The room named `name` (any case).
    pub fn lookup(&self, name: &str) -> Option<RoomId> {
        self.by_key.get(&key(name)).copied()
    }

    /// The room `id`.
    pub fn get(&self, id: RoomId) -> Option<&Room> {
        self.rooms.get(&id)
    }

    /// The room `id`, to change it.
    pub fn get_mut(&mut self, id: RoomId) -> Option<&mut Room> {
        self.rooms.get_mut(&id)
    }

    /// The default room.
    pub fn default_room(&self) -> &Room {
        // Made in `new` and never removed.
        &self.rooms[&RoomId::DEFAULT]
    }

    /// The tag lines of room `id` carry.
    pub fn tag(&self, id: RoomId) -> RoomTag {
        RoomTag {
            name: self.name(id).to_owned(),
            default: id == RoomId::DEFAULT,
        }
    }

    /// The name of room `id` (empty if there is none).
    pub fn name(&self, id: RoomId) -> &str {
        self.rooms.get(&id).map(|r| r.name.as_str()).unwrap_or("")
    }

    /// Every room, by name ignoring case.
    pub fn iter(&self) -> impl Iterator<Item = &Room> + '_ {
        self.by_key.values().filter_map(|id| self.rooms.get(id))
    }

    /// How many rooms there are.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Whether there are no rooms (never: the default room always exists).
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Makes a room named `name` (checked), persistent or ad hoc.
    pub fn create(&mut self, name: &str, persistent: bool) -> Result<RoomId, Reject> {
        validate_room_name(name)?;
        if let Some(id) = self.lookup(name) {
            return Err(Reject::RoomExists {
                room: self.name(id).to_owned(),
            });
        }
        if self.rooms.len() >= self.config.max_rooms {
            return Err(Reject::TooManyRooms {
                max: self.config.max_rooms,
            });
        }
        Ok(self.insert(name, persistent))
    }

    /// The persistent rooms, the default room first, as they are to be kept.
    pub fn persistent(&self) -> Vec<PersistentRoom> {
        let default = self.default_room();
        let first = PersistentRoom {
            name: default.name.clone(),
            topic: default.topic.clone(),
        };
        let others = self
            .iter()
            .filter(|r| r.persistent && r.id != RoomId::DEFAULT)
            .map(|r| PersistentRoom {
                name: r.name.clone(),
                topic: r.topic.clone(),
            });
        std::iter::once(first).chain(others).collect()
    }

    /// The rooms `conn` joined besides the default room, in the order joined.
    pub fn joined(&self, conn: ConnId) -> &[RoomId] {
        self.users
            .get(&conn)
            .map(|m| m.joined.as_slice())
            .unwrap_or(&[])
    }

    /// Whether `conn` is in room `id` (everyone who joined is in the default room).
    pub fn is_member(&self, conn: ConnId, id: RoomId) -> bool {
        id == RoomId::DEFAULT || self.joined(conn).contains(&id)
    }

    /// `conn`'s current room.
    pub fn current(&self, conn: ConnId) -> RoomId {
        self.users
            .get(&conn)
            .and_then(|m| m.current)
            .unwrap_or(RoomId::DEFAULT)
    }

    /// Makes `id` (one `conn` is in) its current room.
    pub fn set_current(&mut self, conn: ConnId, id: RoomId) {
        if id == RoomId::DEFAULT {
            if let Some(m) = self.users.get_mut(&conn) {
                m.current = None;
            }
        } else if let Some(m) = self.users.get_mut(&conn) {
            m.current = Some(id);
        }
    }

    /// Puts `conn` in room `id` (not the default room), as its current room.
    pub fn add_member(&mut self, id: RoomId, conn: ConnId) {
        let Some(room) = self.rooms.get_mut(&id) else {
            return;
        };
        room.members.insert(conn);
        let m = self.users.entry(conn).or_default();
        m.joined.retain(|&r| r != id);
        // Joins are rare and a user is in few rooms: room for one more, not for double.
        m.joined.reserve_exact(1);
        m.joined.push(id);
        m.current = Some(id);
    }

    /// Takes `conn` out of room `id` (not the default room); if it was the
    /// current room, the room joined last becomes current, else the default room. An ad-hoc room
    /// left empty is gone. Returns whether `conn` was in it.
    pub fn remove_member(&mut self, id: RoomId, conn: ConnId) -> bool {
        let Some(room) = self.rooms.get_mut(&id) else {
            return false;
        };
        if !room.members.remove(conn) {
            return false;
        }
        if room.members.is_empty() && !room.persistent {
            self.rooms.remove(&id);
            self.by_key.retain(|_, r| *r != id);
            self.crowded.retain(|&r| r != id);
        }
        if let Some(m) = self.users.get_mut(&conn) {
            m.joined.retain(|&r| r != id);
            if m.current == Some(id) {
                m.current = m.joined.last().copied();
            }
            if m.joined.is_empty() {
                self.users.remove(&conn);
            }
        }
        true
    }

    /// Notes a join (`entered`) or a leave of `name` in crowded room `id`, to tell later.
    pub fn gather(&mut self, id: RoomId, name: &str, entered: bool, now: Instant) {
        let Some(room) = self.rooms.get_mut(&id) else {
            return;
        };
        let crowd = &mut room.crowd;
        if crowd.since.is_none() {
            crowd.since = Some(now);
            self.crowded.push(id);
        }
        if entered {
            Crowd::add(&mut crowd.entered, &mut crowd.entered_more, name);
        } else {
            Crowd::add(&mut crowd.left, &mut crowd.left_more, name);
        }
    }

    /// Takes room `id`'s joins and leaves not told yet.
    pub fn take_crowd(&mut self, id: RoomId) -> Option<Crowd> {
        let room = self.rooms.get_mut(&id)?;
        room.crowd.since?;
        self.crowded.retain(|&r| r != id);
        Some(std::mem::take(&mut room.crowd))
    }

    /// The crowded rooms whose joins and leaves are due by `now`.
    pub fn crowds_due(&self, now: Instant) -> Vec<RoomId> {
        let window = self.config.crowd_window;
        self.crowded
            .iter()
            .copied()
            .filter(|id| {
                self.rooms
                    .get(id)
                    .and_then(|r| r.crowd.since)
                    .is_some_and(|since| since + window <= now)
            })
            .collect()
    }

    /// When the next crowd notice is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        let window = self.config.crowd_window;
        self.crowded
            .iter()
            .filter_map(|id| self.rooms.get(id)?.crowd.since)
            .min()
            .map(|since| since + window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_a_hash_and_1_to_32_plain_characters() {
        for good in [
            "#a",
            "#dev",
            "#Rust-2024_x.y",
            &format!("#{}", "x".repeat(32)),
        ] {
            assert_eq!(validate_room_name(good), Ok(()), "{good}");
        }
        for bad in [
            "dev",
            "#",
            "#a b",
            "#é",
            "##",
            &format!("#{}", "x".repeat(33)),
        ] {
            assert_eq!(
                validate_room_name(bad),
                Err(Reject::RoomNameInvalid { room: bad.into() }),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_are_unique_ignoring_case_and_shown_as_created() {
        let mut rooms = Rooms::new(RoomConfig::default());
        let id = rooms.create("#Dev", false).unwrap();
        assert_eq!(rooms.lookup("#DEV"), Some(id));
        assert_eq!(
            rooms.create("#dev", false),
            Err(Reject::RoomExists {
                room: "#Dev".into()
            })
        );
        assert_eq!(rooms.name(id), "#Dev");
        assert_eq!(rooms.lookup("#LOBBY"), Some(RoomId::DEFAULT));
    }

    #[test]
    fn members_stay_sorted_once_each_and_give_their_spare_room_back() {
        let mut members = Members::default();
        for id in [5, 1, 9, 3] {
            assert!(members.insert(ConnId(id)));
        }
        assert!(!members.insert(ConnId(3)), "already in");
        assert_eq!(
            members.iter().map(|c| c.0).collect::<Vec<_>>(),
            [1, 3, 5, 9]
        );
        assert!(members.contains(ConnId(9)) && !members.contains(ConnId(2)));
        assert!(members.remove(ConnId(3)));
        assert!(!members.remove(ConnId(3)));
        assert_eq!(members.len(), 3);
        for id in 100..10_100 {
            members.insert(ConnId(id));
        }
        assert!(members.0.capacity() <= members.len() + members.len() / 4 + 4);
        for id in 100..10_100 {
            members.remove(ConnId(id));
        }
        assert_eq!(members.len(), 3);
        assert!(members.0.capacity() <= 16, "{}", members.0.capacity());
    }

    #[test]
    fn the_room_limit_counts_the_default_room() {
        let config = RoomConfig {
            max_rooms: 2,
            ..RoomConfig::default()
        };
        let mut rooms = Rooms::new(config);
        rooms.create("#a", false).unwrap();
        assert_eq!(
            rooms.create("#b", false),
            Err(Reject::TooManyRooms { max: 2 })
        );
    }

    #[test]
    fn persistent_rooms_past_the_room_limit_are_all_made_and_count_against_it() {
        let config = RoomConfig {
            max_rooms: 2,
            persistent: ["#a", "#b"]
                .into_iter()
                .map(|name| PersistentRoom {
                    name: name.into(),
                    topic: None,
                })
                .collect(),
            ..RoomConfig::default()
        };
        let mut rooms = Rooms::new(config);
        assert_eq!(rooms.len(), 3, "the default room, #a and #b");
        assert!(rooms.lookup("#a").is_some() && rooms.lookup("#b").is_some());
        assert_eq!(
            rooms.create("#c", false),
            Err(Reject::TooManyRooms { max: 2 })
        );
        assert_eq!(rooms.persistent().len(), 3, "all saved back");
    }

    #[test]
    fn an_ad_hoc_room_vanishes_when_empty_and_a_persistent_one_stays() {
        let mut rooms = Rooms::new(RoomConfig::default());
        let adhoc = rooms.create("#adhoc", false).unwrap();
        let kept = rooms.create("#kept", true).unwrap();
        for id in [adhoc, kept] {
            rooms.add_member(id, ConnId(1));
        }
        assert_eq!(rooms.joined(ConnId(1)), &[adhoc, kept]);
        assert!(rooms.remove_member(adhoc, ConnId(1)));
        assert!(rooms.remove_member(kept, ConnId(1)));
        assert_eq!(rooms.lookup("#adhoc"), None);
        assert_eq!(rooms.lookup("#kept"), Some(kept));
        assert!(!rooms.remove_member(kept, ConnId(1)));
    }

    #[test]
    fn the_current_room_falls_back_to_the_last_joined_then_the_default() {
        let mut rooms = Rooms::new(RoomConfig::default());
        let a = rooms.create("#a", false).unwrap();
        let b = rooms.create("#b", false).unwrap();
        let c = rooms.create("#c", false).unwrap();
        let me = ConnId(1);
        assert_eq!(rooms.current(me), RoomId::DEFAULT);
        for id in [a, b, c] {
            rooms.add_member(id, me);
        }
        rooms.set_current(me, a);
        rooms.remove_member(a, me);
        assert_eq!(rooms.current(me), c, "the room joined last");
        rooms.remove_member(c, me);
        assert_eq!(rooms.current(me), b);
        rooms.remove_member(b, me);
        assert_eq!(rooms.current(me), RoomId::DEFAULT);
    }

    #[test]
    fn persistent_rooms_come_from_the_config_and_go_back_in_the_list() {
        let topic = TopicEntry {
            text: "all welcome".into(),
            by: "root".into(),
            at: Stamp::new(1, 0, 0, 1),
        };
        let config = RoomConfig {
            persistent: vec![
                PersistentRoom {
                    name: "#Lobby".into(),
                    topic: Some(topic.clone()),
                },
                PersistentRoom {
                    name: "#ops".into(),
                    topic: None,
                },
                PersistentRoom {
                    name: "bad name".into(),
                    topic: None,
                },
                PersistentRoom {
                    name: "#OPS".into(),
                    topic: None,
                },
            ],
            ..RoomConfig::default()
        };
        let rooms = Rooms::new(config);
        assert_eq!(rooms.len(), 2);
        assert_eq!(
            rooms.persistent(),
            vec![
                PersistentRoom {
                    name: "#lobby".into(),
                    topic: Some(topic)
                },
                PersistentRoom {
                    name: "#ops".into(),
                    topic: None
                },
            ]
        );
    }

    #[test]
    fn a_crowd_names_the_first_three_and_counts_the_rest_and_is_due_after_its_window() {
        let mut rooms = Rooms::new(RoomConfig::default());
        let start = Instant::now();
        for n in 0..5 {
            rooms.gather(RoomId::DEFAULT, &format!("u{n}"), true, start);
        }
        rooms.gather(RoomId::DEFAULT, "gone", false, start);
        assert_eq!(rooms.next_deadline(), Some(start + Duration::from_secs(1)));
        assert!(rooms.crowds_due(start).is_empty());
        assert_eq!(
            rooms.crowds_due(start + Duration::from_secs(1)),
            vec![RoomId::DEFAULT]
        );
        let crowd = rooms.take_crowd(RoomId::DEFAULT).unwrap();
        assert_eq!(crowd.entered, vec!["u0", "u1", "u2"]);
        assert_eq!(crowd.entered_more, 2);
        assert_eq!(crowd.left, vec!["gone"]);
        assert_eq!(rooms.next_deadline(), None);
        assert_eq!(rooms.take_crowd(RoomId::DEFAULT), None);
    }
}
