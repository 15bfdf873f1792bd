//! `chatd room ...`: offline management of the persistent rooms in the data directory.
//!
//! Safe while the server runs: every change is checked and written under the data directory's
//! lock. A running server reads the rooms file only at start, so a room added or removed here
//! takes effect at its next start; the server's own changes (`/room create`, topics) are merged
//! into the file as it is on disk then, so neither side loses the other's.

use std::fmt;
use std::io::{self, Write};
use std::path::Path;

use time::OffsetDateTime;

use super::model::{RoomChange, RoomList, SavedRoom, SavedTopic};
use super::store::RoomStore;
use crate::datadir::StoreError;
use crate::names::{validate_room_name, MAX_ROOM_NAME_LEN};

/// Who a topic given with `chatd room add --topic` was set by: the operator, who speaks as the
/// host on the console.
pub const OPERATOR: &str = "Host";

/// Longest `--topic`, in characters.
pub const MAX_TOPIC_LEN: usize = 400;

/// One `chatd room` subcommand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomsCommand {
    /// Makes a persistent room.
    Add {
        /// The name, `#` included.
        name: String,
        /// Its topic, if given.
        topic: Option<String>,
    },
    /// Removes a persistent room.
    Del {
        /// The name.
        name: String,
    },
    /// Prints every persistent room, with its topic.
    List,
}

/// Why a `chatd room` command failed.
#[derive(Debug)]
pub enum RoomsError {
    /// The data directory or the rooms file failed.
    Store(StoreError),
    /// A value given was refused: the flag or argument, the value, and what is allowed.
    Refused {
        /// `NAME` or `--topic`.
        what: &'static str,
        /// The value as given.
        value: String,
        /// What is allowed instead.
        allowed: String,
    },
    /// Standard output could not be written.
    Output(io::Error),
}

impl fmt::Display for RoomsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomsError::Store(e) => e.fmt(f),
            RoomsError::Refused {
                what,
                value,
                allowed,
            } => {
                // Control characters escaped, so that the message stays one line.
                let shown: String = value
                    .chars()
                    .map(|c| match c.is_control() {
                        true => c.escape_default().to_string(),
                        false => c.to_string(),
                    })
                    .collect();
                write!(f, "invalid value '{shown}' for {what}: {allowed}")
            }
            RoomsError::Output(e) => write!(f, "cannot write the output: {e}"),
        }
    }
}

impl std::error::Error for RoomsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RoomsError::Store(e) => Some(e),
            RoomsError::Output(e) => Some(e),
            RoomsError::Refused { .. } => None,
        }
    }
}

impl From<StoreError> for RoomsError {
    fn from(e: StoreError) -> RoomsError {
        RoomsError::Store(e)
    }
}

fn refused(what: &'static str, value: &str, allowed: impl Into<String>) -> RoomsError {
    RoomsError::Refused {
        what,
        value: value.to_owned(),
        allowed: allowed.into(),
    }
}

/// Checks a room name given as `NAME`: the core's rules.
pub fn check_name(name: &str) -> Result<(), RoomsError> {
    if validate_room_name(name).is_ok() {
        return Ok(());
    }
    let rule = format!(
        "a room name is '#' then 1 to {MAX_ROOM_NAME_LEN} ASCII letters, digits, '_', '-' or '.'"
    );
    let hint = if validate_room_name(&format!("#{name}")).is_ok() {
        // A shell takes an unquoted `#dev` for a comment.
        format!(", e.g. '#{name}' (quoted: a shell takes # for a comment)")
    } else {
        String::new()
    };
    Err(refused("NAME", name, format!("{rule}{hint}")))
}

/// Checks a topic given as `--topic`.
pub fn check_topic(topic: &str) -> Result<(), RoomsError> {
    let allowed = if topic.trim().is_empty() {
        "must not be empty (leave --topic out for a room without one)".to_owned()
    } else if topic.chars().any(char::is_control) {
        "must be one line, without tabs or other control characters".to_owned()
    } else if topic.chars().count() > MAX_TOPIC_LEN {
        format!("must be at most {MAX_TOPIC_LEN} characters")
    } else {
        return Ok(());
    };
    Err(refused("--topic", topic, allowed))
}

/// Runs `command` on the data directory `data_dir`, `now` (Unix seconds) being when a topic
/// is set. Only `add` creates the directory if missing; `del` and `list` create nothing (`list`
/// of a missing directory lists no rooms). Results go to `out`; a note for the person reading
/// (there are no rooms) goes to `notes`.
pub fn run(
    data_dir: &Path,
    command: &RoomsCommand,
    now: i64,
    out: &mut impl Write,
    notes: &mut impl Write,
) -> Result<(), RoomsError> {
    // Every value is checked before anything is opened, let alone made.
    match command {
        RoomsCommand::Add { name, topic } => {
            check_name(name)?;
            if let Some(topic) = topic {
                check_topic(topic)?;
            }
        }
        RoomsCommand::Del { name } => check_name(name)?,
        RoomsCommand::List => {}
    }
    let store = match command {
        RoomsCommand::Add { .. } => RoomStore::open(data_dir)?,
        _ => match RoomStore::open_existing(data_dir)? {
            Some(store) => store,
            None => {
                return match command {
                    RoomsCommand::Del { name } => Err(unknown(name)),
                    _ => note_no_rooms(data_dir, notes),
                }
            }
        },
    };
    let message = match command {
        RoomsCommand::Add { name, topic } => {
            let room = SavedRoom {
                name: name.clone(),
                topic: topic.as_ref().map(|text| SavedTopic {
                    text: text.clone(),
                    by: OPERATOR.to_owned(),
                    at: now,
                }),
            };
            store.update(|rooms| match rooms.get(name) {
                Some(there) => Err(refused(
                    "NAME",
                    name,
                    format!(
                        "there is a room named {} already (names are unique ignoring case)",
                        there.name
                    ),
                )),
                None => Ok(vec![RoomChange::Add(room)]),
            })?;
            format!("added {name}\n")
        }
        RoomsCommand::Del { name } => {
            let mut removed = String::new();
            store.update(|rooms| {
                let room = rooms.get(name).ok_or_else(|| unknown(name))?;
                removed.clone_from(&room.name);
                Ok::<_, RoomsError>(vec![RoomChange::Remove {
                    name: room.name.clone(),
                }])
            })?;
            format!("removed {removed}\n")
        }
        RoomsCommand::List => {
            let rooms = store.load()?;
            if rooms.is_empty() {
                return note_no_rooms(data_dir, notes);
            }
            listing(&rooms)
        }
    };
    out.write_all(message.as_bytes())
        .and_then(|()| out.flush())
        .map_err(RoomsError::Output)
}

fn unknown(name: &str) -> RoomsError {
    refused(
        "NAME",
        name,
        "no persistent room has that name (`chatd room list` shows them)",
    )
}

/// One line per room: `NAME` alone, or `NAME: TOPIC (set by BY, YYYY-MM-DD HH:MM UTC)`.
pub fn listing(rooms: &RoomList) -> String {
    rooms
        .iter()
        .map(|room| match &room.topic {
            None => format!("{}\n", room.name),
            Some(topic) => format!(
                "{}: {} (set by {}, {})\n",
                room.name,
                topic.text,
                topic.by,
                utc_minute(topic.at)
            ),
        })
        .collect()
}

/// `YYYY-MM-DD HH:MM UTC`, or the bare seconds if out of the calendar's range.
fn utc_minute(unix: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => format!("{unix} Unix seconds"),
    }
}

/// Tells the reader that `data_dir` holds no persistent rooms (stdout stays empty).
fn note_no_rooms(data_dir: &Path, notes: &mut impl Write) -> Result<(), RoomsError> {
    let missing = if data_dir.exists() {
        ""
    } else {
        " (it does not exist yet: `chatd room add` makes it)"
    };
    writeln!(
        notes,
        "no persistent rooms in {}{missing}",
        data_dir.display()
    )
    .map_err(RoomsError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_topics_are_refused_naming_the_argument_the_value_and_the_rule() {
        assert!(check_name("#dev").is_ok());
        assert_eq!(
            check_name("dev").unwrap_err().to_string(),
            "invalid value 'dev' for NAME: a room name is '#' then 1 to 32 ASCII letters, \
             digits, '_', '-' or '.', e.g. '#dev' (quoted: a shell takes # for a comment)"
        );
        assert_eq!(
            check_name("#a b").unwrap_err().to_string(),
            "invalid value '#a b' for NAME: a room name is '#' then 1 to 32 ASCII letters, \
             digits, '_', '-' or '.'"
        );
        assert!(check_topic("Rust talk").is_ok());
        assert_eq!(
            check_topic(" ").unwrap_err().to_string(),
            "invalid value ' ' for --topic: must not be empty (leave --topic out for a room without one)"
        );
        assert!(check_topic("a\nb")
            .unwrap_err()
            .to_string()
            .ends_with("must be one line, without tabs or other control characters"));
        assert!(check_topic(&"x".repeat(MAX_TOPIC_LEN)).is_ok());
        assert!(check_topic(&"x".repeat(MAX_TOPIC_LEN + 1))
            .unwrap_err()
            .to_string()
            .ends_with("must be at most 400 characters"));
    }

    #[test]
    fn a_listing_shows_each_topic_with_who_set_it_and_when() {
        let rooms: RoomList = [
            SavedRoom {
                name: "#ops".into(),
                topic: None,
            },
            SavedRoom {
                name: "#dev".into(),
                topic: Some(SavedTopic {
                    text: "Rust talk".into(),
                    by: "alice".into(),
                    at: 1_764_583_200,
                }),
            },
        ]
        .into_iter()
        .collect();
        assert_eq!(
            listing(&rooms),
            "#dev: Rust talk (set by alice, 2025-12-01 10:00 UTC)\n#ops\n"
        );
    }
}
