//! Sessions and names: who is connected, in which state, and who holds which name.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::input::ConnId;
use crate::accounts::model::{Registry, Role};
use crate::proto::msg::{ClientMsg, LineId, Reject, UserEntry};

pub use crate::names::{validate_name, MAX_NAME_LEN, RESERVED_NAMES, SERVER_LIKE_NAMES};

/// Where a connection is in its life (the protocol's state machine).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Connected; the next line is the name it wants.
    AwaitingName,
    /// Gave a registered name; the next line is its password.
    AwaitingPassword {
        /// The name, as registered.
        name: String,
    },
    /// The password is being checked off the event loop; input is held until then.
    Verifying {
        /// The name, as registered.
        name: String,
    },
    /// Cluster mode: its name was accepted here and its Admit published to the cluster's log;
    /// it joins when the Admit comes back (input is held until then). The name is reserved.
    Claiming {
        /// The name.
        name: String,
    },
    /// Joined the room under `name`.
    Chatting {
        /// The name.
        name: String,
    },
    /// The core closed it; it waits for the shell to report it gone, and its input is ignored.
    Closing,
}

/// A password job a joined user is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    /// `/register`: a hash of the new password.
    Register,
    /// `/passwd`: a check of the old password and a hash of the new one.
    Passwd,
}

/// Everything the core knows of one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Where it is in its life.
    pub state: State,
    /// Whether its connection is encrypted.
    pub secure: bool,
    /// What it may do (guests are users).
    pub role: Role,
    /// Whether it logged in to a registered name (or registered its name since).
    pub registered: bool,
    /// Set while away: the reason, possibly empty.
    pub away: Option<String>,
    /// Wrong passwords so far on this connection.
    pub failures: u8,
    /// Messages received while the password was being checked, replayed after.
    pub held: Vec<ClientMsg>,
    /// A password job under way for a joined user.
    pub pending: Option<Pending>,
    /// Where it connected from.
    pub peer: IpAddr,
    /// Inputs that could not be decoded so far.
    pub bad_inputs: u8,
    /// Where an interactive `/passwd` is: the next line is the password it asks for.
    /// Boxed: the passwords typed so far are rare, and 56 bytes inline in every session.
    pub passwd: Option<Box<PasswdEntry>>,
    /// Per room (lower-cased name, `""` for the default room), the last line the client has,
    /// from its [`ClientMsg::Resume`]: used up when it joins the room.
    pub resume: Vec<(String, Option<LineId>)>,
    /// When it connected, and when it last said or asked something (for `/whois`), in seconds
    /// since the chat began ([`super::Chat::uptime`]): 4 bytes each, not an `Instant`'s 16.
    pub connected: u32,
    /// See `connected`.
    pub active: u32,
    /// Per room joined, the number of the oldest line the user has been shown: `/history`
    /// pages back from it.
    pub seen_from: Vec<(super::rooms::RoomId, u64)>,
    /// Whether a `/history` page is being looked up in the store (one at a time).
    pub paging: bool,
}

/// The steps of `/passwd` given alone: what the next line is, and what was typed so far.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswdEntry {
    /// The next line is the current password.
    Current,
    /// The next line is the new password.
    New {
        /// The current password, as typed.
        old: String,
    },
    /// The next line is the new password again.
    Again {
        /// The current password, as typed.
        old: String,
        /// The new password, as typed the first time.
        new: String,
    },
}

impl std::fmt::Debug for PasswdEntry {
    /// Never shows a password, not even in a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PasswdEntry::Current => "Current",
            PasswdEntry::New { .. } => "New",
            PasswdEntry::Again { .. } => "Again",
        })
    }
}

impl Session {
    fn new(peer: IpAddr, secure: bool) -> Session {
        Session {
            secure,
            state: State::AwaitingName,
            role: Role::User,
            registered: false,
            away: None,
            failures: 0,
            held: Vec::new(),
            pending: None,
            peer,
            bad_inputs: 0,
            passwd: None,
            resume: Vec::new(),
            connected: 0,
            active: 0,
            seen_from: Vec::new(),
            paging: false,
        }
    }
}

/// Every connection the core knows of, and the names in use.
#[derive(Debug, Default)]
pub struct Sessions {
    /// Boxed: a hash table keeps spare buckets (up to half of them resident once touched), and a
    /// spare bucket of a box is 8 bytes where one of a session is over 200.
    sessions: super::rooms::IdMap<ConnId, Box<Session>>,
    /// Lower-cased name -> the connection chatting under it; sorted, so lists need no sorting.
    names: BTreeMap<String, ConnId>,
    /// Cluster mode: lower-cased name -> the connection claiming it ([`State::Claiming`]).
    claims: BTreeMap<String, ConnId>,
}

impl Sessions {
    /// Records a new connection, awaiting its name.
    pub fn connect(&mut self, conn: ConnId, peer: IpAddr, secure: bool) {
        self.sessions
            .insert(conn, Box::new(Session::new(peer, secure)));
    }

    /// The session of `conn`, if it is connected.
    pub fn get(&self, conn: ConnId) -> Option<&Session> {
        self.sessions.get(&conn).map(|session| &**session)
    }

    /// The session of `conn`, to change it.
    pub fn get_mut(&mut self, conn: ConnId) -> Option<&mut Session> {
        self.sessions.get_mut(&conn).map(|session| &mut **session)
    }

    /// Sets the state of `conn` (never to or from chatting: use join and close for that).
    pub fn set_state(&mut self, conn: ConnId, state: State) {
        if let Some(session) = self.sessions.get_mut(&conn) {
            session.state = state;
        }
    }

    /// The name `conn` chats under, if it has joined.
    pub fn name_of(&self, conn: ConnId) -> Option<&str> {
        match &self.sessions.get(&conn)?.state {
            State::Chatting { name } => Some(name),
            _ => None,
        }
    }

    /// The connection chatting under `name` (any case).
    pub fn find(&self, name: &str) -> Option<ConnId> {
        self.names.get(&name.to_lowercase()).copied()
    }

    /// Puts `conn` in the room as `name`, which must be free.
    pub fn join(&mut self, conn: ConnId, name: &str, role: Role, registered: bool) {
        if let Some(session) = self.sessions.get_mut(&conn) {
            self.names.insert(name.to_lowercase(), conn);
            session.state = State::Chatting {
                name: name.to_owned(),
            };
            session.role = role;
            session.registered = registered;
        }
    }

    /// Cluster mode: `conn` claims `name` (which must be free) as `role`, `registered`; it joins
    /// with [`Sessions::join`] once the cluster's log says so.
    pub fn claim(&mut self, conn: ConnId, name: &str, role: Role, registered: bool) {
        if let Some(session) = self.sessions.get_mut(&conn) {
            self.claims.insert(name.to_lowercase(), conn);
            session.state = State::Claiming {
                name: name.to_owned(),
            };
            session.role = role;
            session.registered = registered;
        }
    }

    /// The connection claiming `name` (any case), if one is.
    pub fn claimed(&self, name: &str) -> Option<ConnId> {
        self.claims.get(&name.to_lowercase()).copied()
    }

    /// Ends `conn`'s claim, if it has one: it awaits a name again. Returns the name claimed.
    pub fn end_claim(&mut self, conn: ConnId) -> Option<String> {
        let session = self.sessions.get_mut(&conn)?;
        let State::Claiming { name } = &session.state else {
            return None;
        };
        let name = name.clone();
        session.state = State::AwaitingName;
        self.claims.remove(&name.to_lowercase());
        Some(name)
    }

    /// Takes `conn` out of the room and marks it closing; returns the name it chatted under.
    pub fn close(&mut self, conn: ConnId) -> Option<String> {
        let session = self.sessions.get_mut(&conn)?;
        let state = std::mem::replace(&mut session.state, State::Closing);
        session.held.clear();
        session.passwd = None;
        self.free_name(state)
    }

    /// Forgets `conn`; returns the name it chatted under, if it was in the room.
    pub fn remove(&mut self, conn: ConnId) -> Option<String> {
        let session = self.sessions.remove(&conn)?;
        self.free_name(session.state)
    }

    fn free_name(&mut self, state: State) -> Option<String> {
        match state {
            State::Claiming { name } => {
                self.claims.remove(&name.to_lowercase());
                None
            }
            State::Chatting { name } => {
                self.names.remove(&name.to_lowercase());
                Some(name)
            }
            _ => None,
        }
    }

    /// How many users are in the room.
    pub fn joined_count(&self) -> usize {
        self.names.len()
    }

    /// The users in the room, sorted by name ignoring case.
    pub fn entries(&self) -> Vec<UserEntry> {
        self.names
            .values()
            .filter_map(|conn| {
                let session = self.sessions.get(conn)?;
                let State::Chatting { name } = &session.state else {
                    return None;
                };
                Some(UserEntry {
                    name: name.clone(),
                    role: session.role,
                    away: session.away.clone(),
                })
            })
            .collect()
    }

    /// The first `limit` names of the users in the room, sorted ignoring case.
    pub fn first_names(&self, limit: usize) -> Vec<String> {
        self.names
            .values()
            .filter_map(|&conn| self.name_of(conn).map(str::to_owned))
            .take(limit)
            .collect()
    }

    /// The connections of the users in the room, in no particular order.
    pub fn members(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.names.values().copied()
    }

    /// Every connection with its session.
    pub fn iter(&self) -> impl Iterator<Item = (&ConnId, &Session)> {
        self.sessions
            .iter()
            .map(|(conn, session)| (conn, &**session))
    }

    /// Every connection with its session, to bring roles up to date after the accounts changed.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&ConnId, &mut Session)> {
        self.sessions
            .iter_mut()
            .map(|(conn, session)| (conn, &mut **session))
    }
}

/// Checks whether `name` may be used to join: the name rules, bans, names in use, and names that
/// would pass for the server (allowed only when registered).
pub fn check_join_name(name: &str, sessions: &Sessions, registry: &Registry) -> Result<(), Reject> {
    validate_name(name)?;
    if let Some(ban) = registry.ban(name) {
        return Err(Reject::Banned {
            name: name.to_owned(),
            reason: ban.reason.clone(),
        });
    }
    if sessions.find(name).is_some() || sessions.claimed(name).is_some() {
        return Err(Reject::NameTaken);
    }
    let server_like = SERVER_LIKE_NAMES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name));
    if server_like && registry.account(name).is_none() {
        return Err(Reject::NameReserved);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::model::{Account, Ban, Change};

    #[test]
    fn a_session_stays_small() {
        // Every connection has one, boxed, from its accept: idle memory per connection is a
        // target (under 1 KiB). Rare state goes behind a box, times are seconds in a u32.
        assert!(
            std::mem::size_of::<Session>() <= 168,
            "{}",
            std::mem::size_of::<Session>()
        );
    }

    #[test]
    fn names_follow_the_rules() {
        for good in ["a", "alice", "Bob_2", "x.y-z", &"n".repeat(32)] {
            assert_eq!(validate_name(good), Ok(()), "{good}");
        }
        let too_long = "n".repeat(33);
        for bad in [
            "",
            "two words",
            "tab\t",
            "semi;colon",
            "\u{FFFD}",
            "\u{e9}milie",
            "\u{430}lice",
            &too_long,
            "a/b",
        ] {
            assert_eq!(validate_name(bad), Err(Reject::NameInvalid), "{bad}");
        }
        for reserved in ["Host", "HOST", "host"] {
            assert_eq!(validate_name(reserved), Err(Reject::NameReserved));
        }
    }

    #[test]
    fn names_are_unique_ignoring_case_and_freed_on_leaving() {
        let registry = Registry::default();
        let mut sessions = Sessions::default();
        let here = IpAddr::from([127, 0, 0, 1]);
        sessions.connect(ConnId(1), here, false);
        sessions.connect(ConnId(2), here, false);
        sessions.join(ConnId(1), "Alice", Role::User, false);
        assert_eq!(
            check_join_name("aLiCe", &sessions, &registry),
            Err(Reject::NameTaken)
        );
        assert_eq!(sessions.find("ALICE"), Some(ConnId(1)));
        assert_eq!(sessions.close(ConnId(1)), Some("Alice".to_owned()));
        assert_eq!(
            sessions.get(ConnId(1)).map(|s| &s.state),
            Some(&State::Closing)
        );
        assert_eq!(check_join_name("alice", &sessions, &registry), Ok(()));
        assert_eq!(
            sessions.remove(ConnId(1)),
            None,
            "closing already freed the name"
        );
        assert_eq!(sessions.remove(ConnId(2)), None);
    }

    #[test]
    fn banned_and_server_like_names_are_refused_unless_registered() {
        let mut registry = Registry::default();
        let sessions = Sessions::default();
        let ban = Ban {
            name: "Eve".into(),
            by: "Host".into(),
            at: 0,
            reason: None,
        };
        registry.apply(&Change::PutBan(ban));
        assert_eq!(
            check_join_name("eve", &sessions, &registry),
            Err(Reject::Banned {
                name: "eve".into(),
                reason: None
            })
        );
        assert_eq!(
            check_join_name("ADMIN", &sessions, &registry),
            Err(Reject::NameReserved)
        );
        let admin = Account {
            name: "admin".into(),
            role: Role::Admin,
            password_hash: "$argon2id$x".into(),
        };
        registry.apply(&Change::PutAccount(admin));
        assert_eq!(check_join_name("admin", &sessions, &registry), Ok(()));
    }
}
