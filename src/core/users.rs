//! Sessions and names: who is connected, who has joined under which name.

use std::collections::HashMap;

use super::input::ConnId;
use crate::proto::msg::Reject;

/// Longest name, in characters.
pub const MAX_NAME_LEN: usize = 32;

/// Names kept for the server itself, compared ignoring case.
pub const RESERVED_NAMES: &[&str] = &["host"];

/// Where a connection is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Connected; the next line is the name it wants.
    AwaitingName,
    /// Joined the room under `name`.
    Chatting {
        /// The name, as the user spelled it.
        name: String,
    },
}

/// Every connection the core knows of, and the names in use.
#[derive(Debug, Default)]
pub struct Sessions {
    states: HashMap<ConnId, State>,
    /// Lower-cased name -> its holder.
    names: HashMap<String, ConnId>,
}

impl Sessions {
    /// Records a new connection, awaiting its name.
    pub fn connect(&mut self, conn: ConnId) {
        self.states.insert(conn, State::AwaitingName);
    }

    /// The state of `conn`, if it is connected.
    pub fn state(&self, conn: ConnId) -> Option<&State> {
        self.states.get(&conn)
    }

    /// The name `conn` joined under, if it has joined.
    pub fn name_of(&self, conn: ConnId) -> Option<&str> {
        match self.states.get(&conn)? {
            State::Chatting { name } => Some(name),
            State::AwaitingName => None,
        }
    }

    /// The connection holding `name` (any case).
    pub fn find(&self, name: &str) -> Option<ConnId> {
        self.names.get(&name.to_lowercase()).copied()
    }

    /// Checks `name` against the name rules and the names in use.
    pub fn check_name(&self, name: &str) -> Result<(), Reject> {
        validate_name(name)?;
        if self.find(name).is_some() {
            return Err(Reject::NameTaken);
        }
        Ok(())
    }

    /// Gives `conn` the name `name`, which [`Sessions::check_name`] accepted.
    pub fn join(&mut self, conn: ConnId, name: &str) {
        self.names.insert(name.to_lowercase(), conn);
        self.states.insert(
            conn,
            State::Chatting {
                name: name.to_owned(),
            },
        );
    }

    /// Forgets `conn`, returning the name it had joined under, if any.
    pub fn remove(&mut self, conn: ConnId) -> Option<String> {
        match self.states.remove(&conn)? {
            State::Chatting { name } => {
                self.names.remove(&name.to_lowercase());
                Some(name)
            }
            State::AwaitingName => None,
        }
    }

    /// How many users have joined.
    pub fn joined_count(&self) -> usize {
        self.names.len()
    }

    /// The names of the users who have joined, sorted ignoring case.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .states
            .values()
            .filter_map(|s| match s {
                State::Chatting { name } => Some(name.clone()),
                State::AwaitingName => None,
            })
            .collect();
        names.sort_by_key(|n| n.to_lowercase());
        names
    }

    /// The connections of the users who have joined, in no particular order.
    pub fn members(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.names.values().copied()
    }
}

/// Checks the name rules: 1 to 32 of ASCII letters, digits, `_`, `-`, `.`; not reserved.
///
/// ASCII only, so that no name can pass for another with look-alike letters from other scripts.
pub fn validate_name(name: &str) -> Result<(), Reject> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let len = name.chars().count();
    if len == 0 || len > MAX_NAME_LEN || !name.chars().all(valid_char) {
        return Err(Reject::NameInvalid);
    }
    if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(Reject::NameReserved);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules() {
        for good in ["a", "alice", "Bob_2", "x.y-z", &"n".repeat(32)] {
            assert_eq!(validate_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "two words",
            "tab\t",
            "semi;colon",
            "\u{FFFD}",
            "\u{e9}milie",
            "\u{430}lice",
            &"n".repeat(33),
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
        let mut sessions = Sessions::default();
        sessions.connect(ConnId(1));
        sessions.connect(ConnId(2));
        sessions.join(ConnId(1), "Alice");
        assert_eq!(sessions.check_name("aLiCe"), Err(Reject::NameTaken));
        assert_eq!(sessions.find("ALICE"), Some(ConnId(1)));
        assert_eq!(sessions.remove(ConnId(1)), Some("Alice".to_owned()));
        assert_eq!(sessions.check_name("alice"), Ok(()));
        assert_eq!(sessions.remove(ConnId(2)), None);
    }
}
