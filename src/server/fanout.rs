//! The room's broadcasts of the current turn of the loop, kept once for every member.
//!
//! A broadcast is appended here, not queued to each member. A member's queue takes the broadcasts
//! it has not taken yet just before anything else is queued for it, when it leaves the room, and
//! when it is written at the end of the turn; so it gets everything in the order the core sent
//! it. Members are written one after another, so a turn's broadcasts sit in one member's queue at
//! a time (and stay only in those of members that cannot take them yet): a join storm of
//! thousands does not leave thousands of queues at their peak size.

use super::outqueue::OutQueue;
use super::wire::WireBytes;
use crate::core::ConnId;
use crate::proto::{Mode, ServerMsg};

/// Most entries whose room the log keeps from one turn to the next; a bigger turn's is given back.
const KEPT_CAPACITY: usize = 4096;

/// A broadcast and who it skips.
#[derive(Debug)]
struct Broadcast {
    wire: WireBytes,
    except: Option<ConnId>,
}

/// This turn's broadcasts, numbered on from the previous turns'.
#[derive(Debug, Default)]
pub struct RoomLog {
    /// The number of the first entry (every broadcast ever made has one).
    first: u64,
    entries: Vec<Broadcast>,
}

impl RoomLog {
    /// The number the next broadcast will get: a member that joins now takes broadcasts from it.
    pub fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// Whether nothing was broadcast this turn.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Broadcasts `msg` to every member but `except`.
    pub fn push(&mut self, msg: ServerMsg, except: Option<ConnId>) {
        self.entries.push(Broadcast {
            wire: WireBytes::new(msg),
            except,
        });
    }

    /// Queues for member `me`, speaking `mode`, the broadcasts from number `next` on (encoded once
    /// per mode and shared); returns the number it should take from next time.
    pub fn take(&mut self, next: u64, me: ConnId, mode: Mode, queue: &mut OutQueue) -> u64 {
        let skip = usize::try_from(next.saturating_sub(self.first)).unwrap_or(usize::MAX);
        for entry in self.entries.iter_mut().skip(skip) {
            if entry.except != Some(me) {
                queue.push(entry.wire.for_mode(mode));
            }
        }
        self.end()
    }

    /// Ends the turn: every member has taken every broadcast.
    pub fn clear(&mut self) {
        self.first = self.end();
        self.entries.clear();
        self.entries.shrink_to(KEPT_CAPACITY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::msg::Event;

    fn entered(name: &str) -> ServerMsg {
        ServerMsg::Event(Event::Entered { name: name.into() })
    }

    fn drain(queue: &mut OutQueue) -> String {
        let mut sink = Vec::new();
        queue.write_to(&mut sink).unwrap();
        String::from_utf8(sink).unwrap()
    }

    #[test]
    fn members_take_what_came_after_they_joined_but_their_own() {
        let mut log = RoomLog::default();
        let (alice, bob) = (ConnId(1), ConnId(2));
        let alice_next = log.end();
        log.push(entered("bob"), Some(bob));
        let bob_next = log.end();
        log.push(entered("carol"), None);
        let (mut to_alice, mut to_bob) = (OutQueue::default(), OutQueue::default());
        let alice_next = log.take(alice_next, alice, Mode::Text, &mut to_alice);
        let bob_next = log.take(bob_next, bob, Mode::Text, &mut to_bob);
        assert_eq!(
            drain(&mut to_alice),
            "[*] bob entered.\r\n[*] carol entered.\r\n"
        );
        assert_eq!(drain(&mut to_bob), "[*] carol entered.\r\n");
        // Taking again gives nothing new; after the turn, numbering goes on.
        assert_eq!(log.take(alice_next, alice, Mode::Text, &mut to_alice), 2);
        assert!(to_alice.is_empty());
        log.clear();
        assert!(log.is_empty());
        log.push(entered("dave"), None);
        log.take(bob_next, bob, Mode::Text, &mut to_bob);
        assert_eq!(drain(&mut to_bob), "[*] dave entered.\r\n");
    }

    #[test]
    fn a_big_turn_does_not_keep_its_room_after_it() {
        let mut log = RoomLog::default();
        for n in 0..5 * KEPT_CAPACITY {
            log.push(entered(&format!("u{n}")), None);
        }
        log.clear();
        assert!(log.entries.capacity() <= KEPT_CAPACITY);
        assert_eq!(log.end(), 5 * KEPT_CAPACITY as u64);
    }
}
