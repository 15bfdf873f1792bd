//! The persistent rooms as data: the list, its changes, and the rooms file's format. No I/O.
//!
//! # The rooms file
//!
//! With `<TAB>` for a tab character:
//!
//! ```text
//! # chatd rooms: NAME, or NAME<TAB>TOPIC-SET-BY<TAB>UNIX-SECONDS<TAB>TOPIC, one per line
//! #dev<TAB>alice<TAB>1764583200<TAB>Rust talk
//! #ops
//! ```
//!
//! A line that is `#` alone or starts with `# ` is a comment (a room name holds no space), and
//! blank lines are skipped. The topic is the last field, so it may hold tabs; line breaks in a
//! topic are written as spaces.

use std::collections::BTreeMap;

pub use crate::datadir::ParseError;
use crate::names::{room_key, validate_room_name};

/// A topic as kept: what it says, who set it and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedTopic {
    /// The topic.
    pub text: String,
    /// Who set it.
    pub by: String,
    /// When, in Unix seconds.
    pub at: i64,
}

/// A persistent room as kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedRoom {
    /// The name, with its `#`, as created.
    pub name: String,
    /// The topic, if set.
    pub topic: Option<SavedTopic>,
}

/// One change to the persistent rooms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomChange {
    /// Adds a room, unless one of that name (any case) is there: then it stays as it is.
    Add(SavedRoom),
    /// Sets (or clears) the topic of a room that is there; does nothing if it is not.
    SetTopic {
        /// The room.
        name: String,
        /// The new topic.
        topic: Option<SavedTopic>,
    },
    /// Removes a room.
    Remove {
        /// The room.
        name: String,
    },
}

/// Every persistent room, keyed by lower-cased name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomList {
    rooms: BTreeMap<String, SavedRoom>,
}

/// The first line of the rooms file.
const HEADER: &str =
    "# chatd rooms: NAME, or NAME<TAB>TOPIC-SET-BY<TAB>UNIX-SECONDS<TAB>TOPIC, one per line\n";

impl RoomList {
    /// The room named `name` (any case).
    pub fn get(&self, name: &str) -> Option<&SavedRoom> {
        self.rooms.get(&room_key(name))
    }

    /// Every room, sorted by name ignoring case.
    pub fn iter(&self) -> impl Iterator<Item = &SavedRoom> {
        self.rooms.values()
    }

    /// How many rooms there are.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Applies `change`.
    pub fn apply(&mut self, change: &RoomChange) {
        match change {
            RoomChange::Add(room) => {
                self.rooms
                    .entry(room_key(&room.name))
                    .or_insert_with(|| room.clone());
            }
            RoomChange::SetTopic { name, topic } => {
                if let Some(room) = self.rooms.get_mut(&room_key(name)) {
                    room.topic.clone_from(topic);
                }
            }
            RoomChange::Remove { name } => {
                self.rooms.remove(&room_key(name));
            }
        }
    }

    /// The changes that turn the rooms `old` into `new`, to apply to the file as it is on disk
    /// now (which another writer may have changed since `old` was read): the rooms of `new`
    /// that `old` lacks (a room added on disk meanwhile stays as it is there, but takes a topic
    /// set since), and the topics that differ. A room of `old` missing from `new` is no change:
    /// only the offline `chatd room del` removes rooms.
    pub fn changes(old: &[SavedRoom], new: &[SavedRoom]) -> Vec<RoomChange> {
        let before: BTreeMap<String, &SavedRoom> =
            old.iter().map(|r| (room_key(&r.name), r)).collect();
        let mut changes = Vec::new();
        for room in new {
            let was = before.get(&room_key(&room.name));
            if was.is_none() {
                changes.push(RoomChange::Add(room.clone()));
            }
            let old_topic = was.and_then(|r| r.topic.as_ref());
            if room.topic.as_ref() != old_topic {
                changes.push(RoomChange::SetTopic {
                    name: room.name.clone(),
                    topic: room.topic.clone(),
                });
            }
        }
        changes
    }

    /// The rooms file: a comment header, then one room per line (see the module doc).
    pub fn file(&self) -> String {
        let mut text = String::from(HEADER);
        for room in self.rooms.values() {
            text.push_str(&room.name);
            if let Some(topic) = &room.topic {
                let one_line = topic.text.replace(['\n', '\r'], " ");
                text.push_str(&format!("\t{}\t{}\t{one_line}", topic.by, topic.at));
            }
            text.push('\n');
        }
        text
    }

    /// Reads a rooms file as written by [`RoomList::file`].
    pub fn parse(text: &str) -> Result<RoomList, ParseError> {
        let mut list = RoomList::default();
        let mut first_seen: BTreeMap<String, usize> = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let error = |reason: String| ParseError {
                line: number,
                reason,
            };
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed == "#" || trimmed.starts_with("# ") {
                continue;
            }
            let fields: Vec<&str> = line.trim_start().splitn(4, '\t').collect();
            let (name, topic) = match fields[..] {
                [name] => (name.trim(), None),
                [name, by, at, text] => (name.trim(), Some((by.trim(), at.trim(), text))),
                _ => {
                    return Err(error(
                        "expected NAME alone, or NAME, TOPIC-SET-BY, UNIX-SECONDS and TOPIC \
                         separated by tabs"
                            .to_owned(),
                    ))
                }
            };
            validate_room_name(name).map_err(|e| error(e.to_string()))?;
            if let Some(first) = first_seen.insert(room_key(name), number) {
                return Err(error(format!(
                    "{name} is listed twice (also on line {first}; names are unique ignoring case)"
                )));
            }
            let topic = match topic {
                None => None,
                Some((by, at, text)) => {
                    if by.is_empty() || by.contains(char::is_whitespace) {
                        return Err(error("who set the topic must be one name".to_owned()));
                    }
                    let at = at
                        .parse()
                        .map_err(|_| error("the time must be whole Unix seconds".to_owned()))?;
                    if text.trim().is_empty() {
                        return Err(error(
                            "the topic is empty (give NAME alone for a room without one)"
                                .to_owned(),
                        ));
                    }
                    Some(SavedTopic {
                        text: text.to_owned(),
                        by: by.to_owned(),
                        at,
                    })
                }
            };
            list.apply(&RoomChange::Add(SavedRoom {
                name: name.to_owned(),
                topic,
            }));
        }
        Ok(list)
    }
}

impl FromIterator<SavedRoom> for RoomList {
    fn from_iter<I: IntoIterator<Item = SavedRoom>>(rooms: I) -> RoomList {
        let mut list = RoomList::default();
        for room in rooms {
            list.apply(&RoomChange::Add(room));
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str, topic: Option<(&str, &str, i64)>) -> SavedRoom {
        SavedRoom {
            name: name.into(),
            topic: topic.map(|(text, by, at)| SavedTopic {
                text: text.into(),
                by: by.into(),
                at,
            }),
        }
    }

    fn parse_error(text: &str) -> (usize, String) {
        let e = RoomList::parse(text).unwrap_err();
        (e.line, e.reason)
    }

    #[test]
    fn the_file_round_trips_sorted_by_name() {
        let list: RoomList = [
            room("#ops", None),
            room("#Dev", Some(("Rust\ttalk", "alice", 1_764_583_200))),
            room("#a.b-c_d", Some(("x", "Host", -5))),
        ]
        .into_iter()
        .collect();
        let text = list.file();
        assert_eq!(
            text,
            format!("{HEADER}#a.b-c_d\tHost\t-5\tx\n#Dev\talice\t1764583200\tRust\ttalk\n#ops\n")
        );
        assert_eq!(RoomList::parse(&text), Ok(list.clone()));
        assert_eq!(RoomList::parse(""), Ok(RoomList::default()));
        let names: Vec<&str> = list.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["#a.b-c_d", "#Dev", "#ops"]);
        assert_eq!(list.get("#DEV").map(|r| r.name.as_str()), Some("#Dev"));
    }

    #[test]
    fn a_topic_with_line_breaks_is_written_on_one_line() {
        let list: RoomList = [room("#dev", Some(("one\ntwo\r\nthree", "bob", 7)))]
            .into_iter()
            .collect();
        let read = RoomList::parse(&list.file()).unwrap();
        let topic = read.get("#dev").and_then(|r| r.topic.clone()).unwrap();
        assert_eq!(topic.text, "one two  three");
    }

    #[test]
    fn comments_and_blank_lines_are_skipped_and_hand_edits_are_read() {
        let text = "# a comment\n#\n\n  #dev  \n#ops\tHost\t 100 \ttopic \n";
        let list = RoomList::parse(text).unwrap();
        assert_eq!(
            list.iter().cloned().collect::<Vec<_>>(),
            [
                room("#dev", None),
                room("#ops", Some(("topic ", "Host", 100)))
            ]
        );
    }

    #[test]
    fn bad_lines_are_refused_with_their_line_numbers() {
        let expect = |text: &str, line: usize, reason: &str| {
            let (got_line, got) = parse_error(text);
            assert_eq!(got_line, line, "{text:?}: {got}");
            assert!(got.contains(reason), "{text:?}: {got:?} lacks {reason:?}");
        };
        expect("#ok\ndev\n", 2, "invalid room name dev");
        expect("#ok\n#a b\n", 2, "invalid room name #a b");
        expect(&format!("#{}\n", "n".repeat(33)), 1, "1 to 32");
        expect(
            "# c\n#dev\n#DEV\n",
            3,
            "#DEV is listed twice (also on line 2",
        );
        expect(
            "#dev\talice\n",
            1,
            "expected NAME alone, or NAME, TOPIC-SET-BY",
        );
        expect("#dev\talice\t5\n", 1, "separated by tabs");
        expect(
            "#dev\t\t5\ttopic\n",
            1,
            "who set the topic must be one name",
        );
        expect("#dev\ta b\t5\ttopic\n", 1, "one name");
        expect("#dev\talice\tnoon\ttopic\n", 1, "whole Unix seconds");
        expect("#dev\talice\t5\t \n", 1, "the topic is empty");
        expect("#!\n", 1, "invalid room name #!");
    }

    #[test]
    fn changes_add_new_rooms_and_set_changed_topics_only() {
        let old = [room("#lobby", None), room("#dev", Some(("a", "x", 1)))];
        let new = [
            room("#lobby", Some(("hi", "root", 2))),
            room("#DEV", Some(("a", "x", 1))),
            room("#ops", None),
            room("#news", Some(("n", "root", 3))),
        ];
        let set = |name: &str, topic: &Option<SavedTopic>| RoomChange::SetTopic {
            name: name.into(),
            topic: topic.clone(),
        };
        assert_eq!(
            RoomList::changes(&old, &new),
            [
                set("#lobby", &new[0].topic),
                RoomChange::Add(room("#ops", None)),
                RoomChange::Add(new[3].clone()),
                set("#news", &new[3].topic),
            ]
        );
        assert_eq!(RoomList::changes(&new, &old[1..]), []);
    }

    #[test]
    fn changes_leave_what_another_writer_did_on_disk() {
        // On disk meanwhile: #ops and #news were added with topics, #dev was removed.
        let mut disk: RoomList = [
            room("#lobby", None),
            room("#OPS", Some(("t", "Host", 3))),
            room("#news", Some(("offline", "Host", 3))),
        ]
        .into_iter()
        .collect();
        let old = [room("#lobby", None), room("#dev", None)];
        let new = [
            room("#lobby", None),
            room("#dev", Some(("late", "alice", 4))),
            room("#ops", None),
            room("#News", Some(("later", "root", 5))),
        ];
        for change in RoomList::changes(&old, &new) {
            disk.apply(&change);
        }
        assert_eq!(
            disk.iter().cloned().collect::<Vec<_>>(),
            [
                room("#lobby", None),
                room("#news", Some(("later", "root", 5))),
                room("#OPS", Some(("t", "Host", 3))),
            ]
        );
        disk.apply(&RoomChange::Remove {
            name: "#ops".into(),
        });
        assert_eq!(disk.len(), 2);
    }
}
