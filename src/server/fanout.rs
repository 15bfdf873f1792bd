//! The rooms' broadcasts of the current turn of the loop, kept once for every member.
//!
//! A broadcast is appended to its room's log, not queued to each member. A member's queue takes
//! the broadcasts it has not taken yet just before anything else is queued for it, when it leaves
//! a room or the server, and when it is written (once a room's senders are read, or at the end of
//! the turn); so it gets everything in the order the core sent it. Every broadcast has a number
//! from one sequence shared by all the rooms, so a member of several rooms takes their broadcasts
//! merged in the order they were made, and looks only at the logs of its own rooms. A member
//! takes from all its rooms at once, and takes what it has not taken before it enters another
//! room, so one number says where it is in every room's log: a membership costs the shell four
//! bytes. The first member to take a log's broadcasts in a wire mode encodes them one after
//! another in one shared batch; every member's queue then holds ranges of the batch (a run of
//! lines not its own is one range), so a member's write is a few large slices. Members are
//! written one after another, so a turn's broadcasts sit in one member's queue at a time (and
//! stay only in those of members that cannot take them yet): a join storm of thousands does not
//! leave thousands of queues at their peak size.

use std::ops::Range;
use std::rc::Rc;

use super::outqueue::OutQueue;
use crate::core::rooms::{IdMap, RoomId};
use crate::core::ConnId;
use crate::proto::{self, Mode, ServerMsg};

/// Bytes of encoding room a long message (a list of thousands of names) leaves in the scratch
/// buffer after it.
const KEPT_CAPACITY: usize = 4096;
/// Entries a log keeps room for whatever its turns held (so that a trickle of lines never
/// reallocates it).
const MIN_KEPT: usize = 16;

/// A broadcast's number, and who it skips.
#[derive(Debug)]
struct Broadcast {
    seq: u64,
    except: Option<ConnId>,
}

/// One room's broadcasts of the turn, and their bytes in each wire mode a member took them in.
/// The messages are kept apart from their numbers: every member looks at every entry, and only
/// the first of a mode at the message.
#[derive(Debug, Default)]
struct Log {
    entries: Vec<Broadcast>,
    msgs: Vec<ServerMsg>,
    encoded: Vec<Encoded>,
}

/// A log's broadcasts encoded in one wire mode: the first `upto` of them, in batches.
#[derive(Debug)]
struct Encoded {
    mode: Mode,
    upto: usize,
    batches: Vec<Batch>,
}

/// Consecutive broadcasts of a log encoded one after another in one allocation, shared by every
/// member that takes them: a member's queue holds a few ranges of it, not a chunk per line.
#[derive(Debug)]
struct Batch {
    bytes: Rc<[u8]>,
    /// The log index of its first broadcast.
    first: usize,
    /// Where each of its broadcasts ends in `bytes`.
    ends: Vec<usize>,
}

impl Batch {
    /// The bytes of the log's broadcasts `indexes` (some of this batch's, at least one).
    fn span(&self, indexes: Range<usize>) -> Range<usize> {
        let (i, j) = (indexes.start - self.first, indexes.end - self.first);
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        start..self.ends[j - 1]
    }
}

impl Log {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.msgs.clear();
        self.encoded.clear();
    }

    /// Queues for `me` its broadcasts in `span` but its own, encoded in `mode`; returns how many.
    fn queue(
        &mut self,
        mode: Mode,
        scratch: &mut Vec<u8>,
        span: Range<usize>,
        me: ConnId,
        queue: &mut OutQueue,
    ) -> usize {
        let at = self.encode(mode, scratch);
        self.encoded[at].queue(&self.entries, span, me, queue)
    }

    /// Encodes in `mode` what it has not yet (in `scratch`, then one shared allocation);
    /// returns where the encodings of that mode are in `encoded`.
    fn encode(&mut self, mode: Mode, scratch: &mut Vec<u8>) -> usize {
        let at = match self.encoded.iter().position(|e| e.mode == mode) {
            Some(at) => at,
            None => {
                self.encoded.push(Encoded {
                    mode,
                    upto: 0,
                    batches: Vec::new(),
                });
                self.encoded.len() - 1
            }
        };
        let encoded = &mut self.encoded[at];
        if encoded.upto < self.entries.len() {
            scratch.clear();
            let fresh = &self.msgs[encoded.upto..];
            let mut ends = Vec::with_capacity(fresh.len());
            for msg in fresh {
                proto::encode(mode, msg, scratch);
                ends.push(scratch.len());
            }
            encoded.batches.push(Batch {
                bytes: Rc::from(&scratch[..]),
                first: encoded.upto,
                ends,
            });
            encoded.upto = self.entries.len();
        }
        at
    }
}

impl Encoded {
    /// Queues for `me` the log's broadcasts in `span` (all encoded) but its own, as ranges of
    /// the batches (consecutive ones joined by the queue); returns how many.
    fn queue(
        &self,
        entries: &[Broadcast],
        span: Range<usize>,
        me: ConnId,
        queue: &mut OutQueue,
    ) -> usize {
        let mut own = 0;
        let first = self.batches.partition_point(|b| b.first <= span.start);
        for batch in &self.batches[first.saturating_sub(1)..] {
            let start = span.start.max(batch.first);
            let end = span.end.min(batch.first + batch.ends.len());
            if start >= end {
                break;
            }
            // Runs of broadcasts not its own, one range each.
            let mut run = start;
            for (index, entry) in (start..end).zip(&entries[start..end]) {
                if entry.except == Some(me) {
                    if run < index {
                        queue.push_range(&batch.bytes, batch.span(run..index));
                    }
                    run = index + 1;
                    own += 1;
                }
            }
            if run < end {
                queue.push_range(&batch.bytes, batch.span(run..end));
            }
        }
        span.len() - own
    }
}

/// One member's place in the rooms' logs: the rooms it is in, and the number of the first
/// broadcast of any of them it has not taken. The default room is kept apart, so a member of no
/// other room (most of them) costs no allocation.
#[derive(Debug, Default)]
pub struct Cursors {
    next: u64,
    lobby: bool,
    others: Vec<RoomId>,
}

impl Cursors {
    /// In `room` from broadcast number `next` on, which must be where it is in its other rooms:
    /// a member takes what it has not taken before it enters a room.
    pub fn enter(&mut self, room: RoomId, next: u64) {
        self.next = next;
        if room == RoomId::DEFAULT {
            self.lobby = true;
        } else if !self.others.contains(&room) {
            // Joins are rare and a member is in few rooms: room for one more, not for double.
            self.others.reserve_exact(1);
            self.others.push(room);
        }
    }

    /// Out of `room`.
    pub fn leave(&mut self, room: RoomId) {
        if room == RoomId::DEFAULT {
            self.lobby = false;
        } else {
            self.others.retain(|&r| r != room);
            if self.others.is_empty() {
                self.others = Vec::new();
            }
        }
    }

    /// Out of every room.
    pub fn leave_all(&mut self) {
        *self = Cursors::default();
    }

    /// The rooms it is in.
    fn rooms(&self) -> impl Iterator<Item = RoomId> + '_ {
        let lobby = self.lobby.then_some(RoomId::DEFAULT);
        lobby.into_iter().chain(self.others.iter().copied())
    }

    /// The room it is written with: its first room besides the default one, else the default.
    /// Members written room by room read each room's log while it is still in the cache.
    pub fn group(&self) -> RoomId {
        self.others.first().copied().unwrap_or(RoomId::DEFAULT)
    }

    fn set_all(&mut self, next: u64) {
        self.next = next;
    }
}

/// This turn's broadcasts, per room, numbered on from the previous turns'.
#[derive(Debug, Default)]
pub struct Fanout {
    /// The number the next broadcast gets (every broadcast ever made has one).
    next: u64,
    /// The default room's log, kept apart: everyone is in it, so it is looked at most.
    lobby: Log,
    /// The other rooms' logs, of the rooms with broadcasts since the last [`Fanout::clear`].
    others: IdMap<RoomId, Log>,
    /// Emptied logs, for the next rooms with broadcasts: a turn written room by room goes on
    /// with the log (and the memory) the room before it was written from.
    spare: Vec<Log>,
    /// Where broadcasts are encoded before they get their shared allocation.
    scratch: Vec<u8>,
    /// Broadcasts queued for a member so far, over every turn (for the metrics).
    delivered: u64,
    /// Broadcasts made since the last [`Fanout::clear`].
    held: usize,
    /// This turn's most entries in one log of a room other than the default one, and most such
    /// logs at once, for what [`Fanout::end_turn`] keeps.
    most: (usize, usize),
    /// The most the default room's log held at once this turn.
    lobby_most: usize,
}

impl Fanout {
    /// The number the next broadcast will get: a member that joins a room now takes its
    /// broadcasts from it.
    pub fn end(&self) -> u64 {
        self.next
    }

    /// How many broadcasts members have taken into their queues since the server started: one
    /// for each member each broadcast reached.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Whether nothing was broadcast this turn.
    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// How many broadcasts were made this turn.
    pub fn len(&self) -> usize {
        self.held
    }

    /// Whether the default room had broadcasts this turn (everyone may be behind).
    pub fn lobby_has_news(&self) -> bool {
        self.lobby.len() > 0
    }

    /// The rooms other than the default one with broadcasts this turn.
    pub fn rooms_with_news(&self) -> impl Iterator<Item = RoomId> + '_ {
        self.others.keys().copied()
    }

    fn log(&self, room: RoomId) -> Option<&Log> {
        if room == RoomId::DEFAULT {
            Some(&self.lobby)
        } else {
            self.others.get(&room)
        }
    }

    fn log_mut(&mut self, room: RoomId) -> Option<&mut Log> {
        if room == RoomId::DEFAULT {
            Some(&mut self.lobby)
        } else {
            self.others.get_mut(&room)
        }
    }

    /// Broadcasts `msg` to every member of `room` but `except`.
    pub fn push(&mut self, room: RoomId, msg: ServerMsg, except: Option<ConnId>) {
        let seq = self.next;
        self.next += 1;
        self.held += 1;
        let spare = &mut self.spare;
        let log = if room == RoomId::DEFAULT {
            &mut self.lobby
        } else {
            self.others
                .entry(room)
                .or_insert_with(|| spare.pop().unwrap_or_default())
        };
        log.entries.push(Broadcast { seq, except });
        log.msgs.push(msg);
    }

    /// Whether a member at `cursors` has broadcasts to take.
    pub fn is_behind(&self, cursors: &Cursors) -> bool {
        let next = cursors.next;
        cursors.rooms().any(|room| {
            self.log(room)
                .and_then(|log| log.entries.last())
                .is_some_and(|last| last.seq >= next)
        })
    }

    /// Queues for member `me`, speaking `mode`, the broadcasts of its rooms it has not taken
    /// (encoded once per mode, in batches shared by every member), merged in the order they were
    /// made; moves its cursors past them.
    pub fn take(&mut self, cursors: &mut Cursors, me: ConnId, mode: Mode, queue: &mut OutQueue) {
        let mut scratch = std::mem::take(&mut self.scratch);
        // Counted once per take, not per broadcast.
        let mut taken = 0;
        // Where each of the member's rooms' untaken broadcasts start in its log.
        let next = cursors.next;
        let pending = |room: RoomId| {
            let log = self.log(room)?;
            let at = log.entries.partition_point(|b| b.seq < next);
            (at < log.len()).then_some((room, at))
        };
        let mut heads: Vec<(RoomId, usize)> = Vec::new();
        let mut only = None;
        for head in cursors.rooms().filter_map(pending) {
            match only.take() {
                None if heads.is_empty() => only = Some(head),
                None => heads.push(head),
                Some(first) => heads.extend([first, head]),
            }
        }
        if let Some((room, at)) = only {
            // The usual case, one room with news: its log in order, nothing to merge.
            if let Some(log) = self.log_mut(room) {
                let end = log.len();
                taken += log.queue(mode, &mut scratch, at..end, me, queue);
            }
        }
        loop {
            // The room whose next broadcast was made first; members are in few rooms.
            let mut first: Option<(usize, u64)> = None;
            for (i, &(room, at)) in heads.iter().enumerate() {
                let seq = self
                    .log(room)
                    .and_then(|log| log.entries.get(at))
                    .map(|b| b.seq);
                if let Some(seq) = seq {
                    if first.is_none_or(|(_, best)| seq < best) {
                        first = Some((i, seq));
                    }
                }
            }
            let Some((i, _)) = first else {
                break;
            };
            let (room, at) = heads[i];
            heads[i].1 += 1;
            if let Some(log) = self.log_mut(room) {
                taken += log.queue(mode, &mut scratch, at..at + 1, me, queue);
            }
        }
        cursors.set_all(self.next);
        self.delivered += taken as u64;
        self.scratch = scratch;
    }

    /// Moves `cursors` past every broadcast made so far, taking none (for a member cut off).
    pub fn skip(&self, cursors: &mut Cursors) {
        cursors.set_all(self.next);
    }

    /// Empties the logs once every member has taken every broadcast (a turn is written once or
    /// more, room by room), keeping their room for the rest of the turn.
    pub fn clear(&mut self) {
        self.most.1 = self.most.1.max(self.others.len());
        for (_, mut log) in self.others.drain() {
            self.most.0 = self.most.0.max(log.len());
            log.clear();
            self.spare.push(log);
        }
        self.lobby_most = self.lobby_most.max(self.lobby.len());
        self.lobby.clear();
        self.held = 0;
    }

    /// Ends the turn ([`Fanout::clear`] first): as many logs as were in use at once this turn
    /// are kept for the next one (a busy room is busy turn after turn), each with room for up
    /// to twice the most a log held; a quiet turn gives them up, and the default room's log keeps
    /// room for a few. Measured: shrinking every busy room's log to a fixed size made each turn
    /// of a burst in 50 rooms free the tails of 50 logs of 600 lines (110 KiB each), every one of
    /// them a `malloc_consolidate` of the turn's freed lines, and grow them again by doubling
    /// (5% of the server's time).
    pub fn end_turn(&mut self) {
        self.clear();
        let (most, logs) = std::mem::take(&mut self.most);
        self.spare.truncate(logs);
        for log in &mut self.spare {
            keep_room_for(log, most);
        }
        if self.spare.is_empty() {
            self.spare = Vec::new();
        }
        keep_room_for(&mut self.lobby, self.lobby_most);
        self.lobby_most = 0;
        // A long message (a list of thousands of names) does not keep its buffer's size.
        self.scratch.shrink_to(KEPT_CAPACITY);
    }
}

/// Gives back the room of an emptied log that held `held` entries this turn, past twice that:
/// a turn like this one fits again without growing, a much quieter one gives the room back.
fn keep_room_for(log: &mut Log, held: usize) {
    let keep = held.max(MIN_KEPT) * 2;
    if log.entries.capacity() > 2 * keep {
        log.entries.shrink_to(keep);
        log.msgs.shrink_to(keep);
    }
    if log.encoded.is_empty() {
        log.encoded = Vec::new();
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

    const LOBBY: RoomId = RoomId::DEFAULT;

    #[test]
    fn members_take_what_came_after_they_joined_but_their_own() {
        let mut log = Fanout::default();
        let (alice, bob) = (ConnId(1), ConnId(2));
        let mut alice_at = Cursors::default();
        alice_at.enter(LOBBY, log.end());
        log.push(LOBBY, entered("bob"), Some(bob));
        let mut bob_at = Cursors::default();
        bob_at.enter(LOBBY, log.end());
        log.push(LOBBY, entered("carol"), None);
        let (mut to_alice, mut to_bob) = (OutQueue::default(), OutQueue::default());
        log.take(&mut alice_at, alice, Mode::Text, &mut to_alice);
        log.take(&mut bob_at, bob, Mode::Text, &mut to_bob);
        assert_eq!(
            drain(&mut to_alice),
            "[*] bob entered.\r\n[*] carol entered.\r\n"
        );
        assert_eq!(drain(&mut to_bob), "[*] carol entered.\r\n");
        assert_eq!(log.delivered(), 3, "two to alice, one to bob");
        // Taking again gives nothing new; after the turn, numbering goes on.
        assert!(!log.is_behind(&alice_at));
        log.take(&mut alice_at, alice, Mode::Text, &mut to_alice);
        assert!(to_alice.is_empty());
        assert_eq!((alice_at.lobby, alice_at.next), (true, 2));
        log.end_turn();
        assert!(log.is_empty());
        log.push(LOBBY, entered("dave"), None);
        log.take(&mut bob_at, bob, Mode::Text, &mut to_bob);
        assert_eq!(drain(&mut to_bob), "[*] dave entered.\r\n");
    }

    #[test]
    fn a_big_turn_keeps_its_room_while_turns_are_as_big_and_gives_it_back_after_a_quiet_one() {
        let mut log = Fanout::default();
        let dev = RoomId(1);
        let fill = |log: &mut Fanout, lines: usize| {
            for n in 0..lines {
                log.push(LOBBY, entered(&format!("u{n}")), None);
                log.push(dev, entered(&format!("u{n}")), None);
            }
        };
        fill(&mut log, 20_000);
        let dev_log = log.others[&dev].entries.as_ptr();
        log.end_turn();
        let kept = (
            log.lobby.entries.capacity(),
            log.spare[0].entries.capacity(),
        );
        assert!(kept.0 >= 20_000 && kept.1 >= 20_000, "{kept:?}");
        assert_eq!(log.spare.len(), 1);
        // As busy again: the same logs, no reallocation.
        let lobby_log = log.lobby.entries.as_ptr();
        fill(&mut log, 20_000);
        assert_eq!(
            (lobby_log, dev_log),
            (
                log.lobby.entries.as_ptr(),
                log.others[&dev].entries.as_ptr()
            )
        );
        log.end_turn();
        assert_eq!(
            (
                log.lobby.entries.capacity(),
                log.spare[0].entries.capacity()
            ),
            kept
        );
        // A turn of one line gives the room back, down to room for a few; a quiet turn gives
        // the spare log up.
        fill(&mut log, 1);
        log.end_turn();
        assert!(
            log.lobby.entries.capacity() <= 4 * MIN_KEPT,
            "{}",
            log.lobby.entries.capacity()
        );
        assert!(log.spare[0].entries.capacity() <= 4 * MIN_KEPT);
        log.end_turn();
        assert!(log.spare.is_empty());
        assert_eq!(log.end(), 80_002);
    }

    #[test]
    fn a_busy_room_takes_only_what_is_new_turn_after_turn() {
        let mut log = Fanout::default();
        let (busy, quiet) = (RoomId(1), RoomId(2));
        let me = ConnId(1);
        let mut cursors = Cursors::default();
        cursors.enter(busy, log.end());
        log.push(busy, entered("a"), None);
        log.push(quiet, entered("b"), None);
        let mut queue = OutQueue::default();
        log.take(&mut cursors, me, Mode::Text, &mut queue);
        log.end_turn();
        assert!(log.is_empty());
        assert_eq!(log.spare.len(), 2, "two logs were in use");
        // The next turn: the busy room again, the quiet one not.
        log.push(busy, entered("c"), None);
        assert!(log.is_behind(&cursors));
        log.take(&mut cursors, me, Mode::Text, &mut queue);
        assert_eq!(drain(&mut queue), "[*] a entered.\r\n[*] c entered.\r\n");
        log.end_turn();
        assert_eq!(log.spare.len(), 1, "one log was in use");
        log.end_turn();
        assert!(log.spare.is_empty(), "quiet for a turn: given up");
        assert!(!log.is_behind(&cursors));
    }

    #[test]
    fn a_turn_written_room_by_room_goes_on_with_one_log() {
        let mut log = Fanout::default();
        let (dev, ops) = (RoomId(1), RoomId(2));
        let mut dev_at = Cursors::default();
        dev_at.enter(dev, log.end());
        for n in 0..600 {
            log.push(dev, entered(&format!("u{n}")), None);
        }
        assert_eq!(log.len(), 600);
        let first = log.others[&dev].entries.as_ptr();
        // The turn's first flush writes #dev, the second #ops, from the same log.
        log.clear();
        assert!(log.is_empty() && log.rooms_with_news().next().is_none());
        assert!(!log.is_behind(&dev_at));
        for n in 0..600 {
            log.push(ops, entered(&format!("u{n}")), None);
        }
        assert_eq!(log.rooms_with_news().collect::<Vec<_>>(), vec![ops]);
        assert_eq!(log.others[&ops].entries.as_ptr(), first);
        assert!(!log.is_behind(&dev_at));
        log.end_turn();
        assert_eq!(log.spare.len(), 1, "one log at a time");
    }

    #[test]
    fn a_room_is_encoded_once_per_mode_and_a_member_queues_a_chunk_per_run_of_others_lines() {
        let mut log = Fanout::default();
        let dev = RoomId(1);
        let (alice, bob, carol) = (ConnId(1), ConnId(2), ConnId(3));
        let mut at: Vec<Cursors> = (0..3).map(|_| Cursors::default()).collect();
        for cursors in &mut at {
            cursors.enter(dev, log.end());
        }
        let said = |n: usize| entered(&format!("u{n}"));
        // alice says 0 to 2, bob 3 to 5, alice 6 and 7 (each line skips its sender).
        for n in 0..8 {
            let from = if (3..6).contains(&n) { bob } else { alice };
            log.push(dev, said(n), Some(from));
        }
        let mut queues: Vec<OutQueue> = (0..3).map(|_| OutQueue::default()).collect();
        for (i, me) in [alice, bob, carol].into_iter().enumerate() {
            log.take(&mut at[i], me, Mode::Text, &mut queues[i]);
        }
        assert_eq!(log.others[&dev].encoded.len(), 1, "one encoding, in text");
        assert_eq!(log.others[&dev].encoded[0].batches.len(), 1);
        let chunks: Vec<usize> = queues.iter().map(OutQueue::chunks).collect();
        assert_eq!(
            chunks,
            vec![1, 2, 1],
            "alice: bob's run; bob: two runs; carol: one"
        );
        let lines = |range: Range<usize>| -> String {
            range.map(|n| format!("[*] u{n} entered.\r\n")).collect()
        };
        assert_eq!(drain(&mut queues[0]), lines(3..6));
        assert_eq!(drain(&mut queues[1]), lines(0..3) + &lines(6..8));
        assert_eq!(drain(&mut queues[2]), lines(0..8));
        // Lines after a member took the first ones are a second batch; a framed member gets
        // them all in its own mode.
        log.push(dev, said(8), None);
        log.take(&mut at[2], carol, Mode::Text, &mut queues[2]);
        assert_eq!(drain(&mut queues[2]), lines(8..9));
        let mut framed = Cursors::default();
        framed.enter(dev, 0);
        let mut queue = OutQueue::default();
        log.take(&mut framed, ConnId(4), Mode::Framed, &mut queue);
        let dev_log = &log.others[&dev];
        assert_eq!(dev_log.encoded[0].batches.len(), 2);
        assert_eq!(
            (dev_log.encoded[1].mode, dev_log.encoded[1].batches.len()),
            (Mode::Framed, 1)
        );
        assert_eq!(queue.chunks(), 1);
        let mut sink = Vec::new();
        queue.write_to(&mut sink).unwrap();
        let mut one = Vec::new();
        for n in 0..9 {
            proto::encode(Mode::Framed, &said(n), &mut one);
        }
        assert_eq!(sink, one);
    }

    #[test]
    fn a_member_of_several_rooms_takes_theirs_in_the_order_made_and_no_other_rooms() {
        let mut log = Fanout::default();
        let (dev, ops, other) = (RoomId(1), RoomId(2), RoomId(3));
        let me = ConnId(1);
        let mut cursors = Cursors::default();
        for room in [LOBBY, dev, ops] {
            cursors.enter(room, 0);
        }
        assert_eq!(cursors.rooms().collect::<Vec<_>>(), vec![LOBBY, dev, ops]);
        log.push(dev, entered("a"), None);
        log.push(other, entered("not for me"), None);
        log.push(LOBBY, entered("b"), None);
        log.push(ops, entered("c"), None);
        log.push(dev, entered("d"), None);
        assert!(log.is_behind(&cursors));
        let mut elsewhere = Cursors::default();
        elsewhere.enter(RoomId(9), 0);
        assert!(!log.is_behind(&elsewhere));
        let mut queue = OutQueue::default();
        log.take(&mut cursors, me, Mode::Text, &mut queue);
        assert_eq!(
            drain(&mut queue),
            "[*] a entered.\r\n[*] b entered.\r\n[*] c entered.\r\n[*] d entered.\r\n"
        );
        assert_eq!(cursors.next, 5);
        // Joined later: only what came after; and a room left gives nothing more.
        let mut late = Cursors::default();
        late.enter(other, 4);
        log.take(&mut late, me, Mode::Text, &mut queue);
        assert!(queue.is_empty());
        cursors.leave(dev);
        log.push(dev, entered("e"), None);
        assert!(!log.is_behind(&cursors));
    }
}
