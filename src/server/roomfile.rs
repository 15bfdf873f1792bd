//! Between the core's persistent rooms and the rooms file's: topics are kept on disk in Unix
//! seconds and shown in the server's local offset.

use time::UtcOffset;

use crate::core::rooms::PersistentRoom;
use crate::names::room_key;
use crate::proto::msg::{Stamp, TopicEntry};
use crate::rooms::model::{RoomList, SavedRoom, SavedTopic};

/// The rooms of the file as the core takes them at start, topics stamped at `offset`.
pub fn to_core(rooms: &RoomList, offset: UtcOffset) -> Vec<PersistentRoom> {
    rooms
        .iter()
        .map(|room| PersistentRoom {
            name: room.name.clone(),
            topic: room.topic.as_ref().map(|t| TopicEntry {
                text: t.text.clone(),
                by: t.by.clone(),
                at: Stamp::local(t.at, offset),
            }),
        })
        .collect()
}

/// The core's persistent rooms as the file keeps them. The default room, which always exists,
/// is kept only for its topic.
pub fn from_core(rooms: &[PersistentRoom], default_room: &str) -> Vec<SavedRoom> {
    let bare_default = |room: &PersistentRoom| {
        room.topic.is_none() && room_key(&room.name) == room_key(default_room)
    };
    let kept: Vec<PersistentRoom> = rooms.iter().filter(|r| !bare_default(r)).cloned().collect();
    saved(&kept)
}

/// Every one of the core's persistent rooms as the file keeps it.
pub fn saved(rooms: &[PersistentRoom]) -> Vec<SavedRoom> {
    rooms
        .iter()
        .map(|room| SavedRoom {
            name: room.name.clone(),
            topic: room.topic.as_ref().map(|t| SavedTopic {
                text: t.text.clone(),
                by: t.by.clone(),
                at: t.at.unix,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_go_to_the_core_and_back_and_a_bare_default_room_is_not_kept() {
        let offset = UtcOffset::from_hms(2, 0, 0).unwrap();
        let file: RoomList = [
            SavedRoom {
                name: "#dev".into(),
                topic: Some(SavedTopic {
                    text: "Rust".into(),
                    by: "alice".into(),
                    at: 3_600,
                }),
            },
            SavedRoom {
                name: "#ops".into(),
                topic: None,
            },
        ]
        .into_iter()
        .collect();
        let core = to_core(&file, offset);
        assert_eq!(core[0].topic.as_ref().unwrap().at.hms(), "03:00:00");
        assert_eq!(
            from_core(&core, "#lobby"),
            file.iter().cloned().collect::<Vec<_>>()
        );
        let lobby = |topic: Option<TopicEntry>| PersistentRoom {
            name: "#Lobby".into(),
            topic,
        };
        assert_eq!(from_core(&[lobby(None)], "#lobby"), []);
        let topic = core[0].topic.clone();
        assert_eq!(from_core(&[lobby(topic)], "#lobby").len(), 1);
    }
}
