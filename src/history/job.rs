//! What the core asks of the history store, and what the store answers: plain data, no I/O.
//!
//! Times are Unix seconds (the core turns them back into stamps in the server's offset); room
//! and user keys are lower-cased names.

use std::ops::Range;

use crate::core::rooms::RoomId;
use crate::core::ConnId;
pub use crate::proto::msg::Span;

/// Most lines one `/history` asks for.
pub const MAX_PAGE: usize = 200;

/// Most direct messages waiting for one registered user while offline.
pub const MAILBOX_PER_USER: usize = 100;

/// Most direct messages waiting for all offline users together.
pub const MAILBOX_TOTAL: usize = 10_000;

/// A place in a room's lines: a line's number, or a time in Unix milliseconds (lines are kept
/// to the second: one said at second S is at S x 1000 ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// Line number `seq` of the room.
    Seq(u64),
    /// This time.
    Millis(i64),
}

impl Point {
    /// Whether the line numbered `seq`, said at Unix second `at`, comes before the point.
    pub fn follows(self, seq: u64, at: i64) -> bool {
        match self {
            Point::Seq(s) => seq < s,
            Point::Millis(ms) => at.saturating_mul(1000) < ms,
        }
    }

    /// Whether the line numbered `seq`, said at Unix second `at`, comes after the point.
    pub fn precedes(self, seq: u64, at: i64) -> bool {
        match self {
            Point::Seq(s) => seq > s,
            Point::Millis(ms) => at.saturating_mul(1000) > ms,
        }
    }
}

/// The lines of `span` among `lines` (a room's lines in order, each as its number and Unix
/// second), at most `limit`: the range of them, and whether more lines of the span were left out.
pub fn select(lines: &[(u64, i64)], span: Span<Point>, limit: usize) -> (Range<usize>, bool) {
    // How many lines come before the point; the first line after it.
    let before = |p: Point| lines.partition_point(|&(seq, at)| p.follows(seq, at));
    let after = |p: Point| lines.partition_point(|&(seq, at)| !p.precedes(seq, at));
    let newest = |lo: usize, hi: usize| (hi.saturating_sub(limit).max(lo)..hi, hi - lo > limit);
    let oldest = |lo: usize, hi: usize| (lo..hi.min(lo + limit), hi.saturating_sub(lo) > limit);
    let len = lines.len();
    match span {
        Span::Latest(None) => newest(0, len),
        Span::Latest(Some(p)) => newest(after(p).min(len), len),
        Span::Before(p) => newest(0, before(p)),
        Span::After(p) => oldest(after(p), len),
        Span::Around(p) => {
            let mid = before(p);
            let lo = mid - mid.min(limit / 2);
            let hi = len.min(lo + limit);
            (lo..hi, lo > 0 || hi < len)
        }
        Span::Between(a, b) if before(a) <= before(b) => {
            let (lo, hi) = (after(a), before(b));
            oldest(lo, hi.max(lo))
        }
        Span::Between(a, b) => {
            let (lo, hi) = (after(b), before(a));
            newest(lo.min(hi), hi)
        }
    }
}

/// A room's line to keep (a chat or `/me` line), or one read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptLine {
    /// The room's name, lower-cased.
    pub room: String,
    /// Its number in the room.
    pub seq: u64,
    /// When it was said, in Unix seconds.
    pub at: i64,
    /// Who said it.
    pub from: String,
    /// What was said.
    pub text: String,
    /// Whether it is an action line (`/me`).
    pub me: bool,
}

/// A direct message to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptDm {
    /// When it was sent, in Unix seconds.
    pub at: i64,
    /// The sender's name, as shown.
    pub from: String,
    /// The recipient's name, as given.
    pub to: String,
    /// What was said.
    pub text: String,
}

/// A direct message waiting in an offline user's mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    /// Its number in the store (they only grow).
    pub id: i64,
    /// When it was sent, in Unix seconds.
    pub at: i64,
    /// Who sent it.
    pub from: String,
    /// What was said.
    pub text: String,
}

/// Work for the history store, in the order the core asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Job {
    /// Keep a room's line.
    Keep(KeptLine),
    /// Keep a direct message delivered at once (for the history of its two users).
    KeepDm(KeptDm),
    /// Put a direct message to an offline registered user in their mailbox, if it has room;
    /// answered with [`Answer::Mailed`] for the sender `conn`.
    Mail {
        /// The sender's connection.
        conn: ConnId,
        /// The message.
        dm: KeptDm,
    },
    /// Forget every line of the room `room` (lower-cased name): an ad-hoc room vanished, or a
    /// room of that name is made anew.
    ForgetRoom {
        /// The room's name, lower-cased.
        room: String,
    },
    /// Look up to `limit` lines of a room in `span` (`/history`: those numbered below the
    /// oldest shown); answered with [`Answer::Page`].
    Page {
        /// Who asked.
        conn: ConnId,
        /// The room, in this run.
        room: RoomId,
        /// The room's name, lower-cased.
        key: String,
        /// Which lines.
        span: Span<Point>,
        /// At most this many.
        limit: usize,
        /// Whether the lines are shown with their ids (IRC's CHATHISTORY), not as a `/history`
        /// page (which moves the asker's place back).
        ids: bool,
    },
    /// Look up what waits in `name`'s mailbox; answered with [`Answer::Mailbox`].
    Mailbox {
        /// The user's connection.
        conn: ConnId,
        /// The registered name.
        name: String,
    },
    /// The mail of `name` up to id `up_to` was delivered: out of the mailbox.
    Delivered {
        /// The registered name.
        name: String,
        /// The last id delivered.
        up_to: i64,
    },
}

/// What the history store answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The lines of a [`Job::Page`], oldest first (empty if the store failed).
    Page {
        /// Who asked.
        conn: ConnId,
        /// The room.
        room: RoomId,
        /// The lines.
        lines: Vec<KeptLine>,
        /// Whether more lines of the span remain.
        more: bool,
        /// As asked in the [`Job::Page`].
        ids: bool,
    },
    /// Whether a [`Job::Mail`] was kept (not: the mailbox was full, or the store failed).
    Mailed {
        /// The sender.
        conn: ConnId,
        /// The recipient, as given.
        to: String,
        /// Whether it was kept.
        kept: bool,
    },
    /// What waits in a user's mailbox, oldest first.
    Mailbox {
        /// The user's connection.
        conn: ConnId,
        /// The registered name.
        name: String,
        /// The messages.
        mail: Vec<Mail>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines 1 to 10, said at seconds 100, 100, 101, 101, ... (two a second).
    fn lines() -> Vec<(u64, i64)> {
        (1..=10)
            .map(|seq| (seq, 100 + (seq as i64 - 1) / 2))
            .collect()
    }

    /// The numbers of the lines `span` selects, and whether more remain.
    fn chosen(span: Span<Point>, limit: usize) -> (Vec<u64>, bool) {
        let all = lines();
        let (range, more) = select(&all, span, limit);
        (all[range].iter().map(|&(seq, _)| seq).collect(), more)
    }

    #[test]
    fn each_span_selects_its_lines_oldest_first_with_exclusive_points() {
        use Point::{Millis, Seq};
        let cases = [
            (Span::Latest(None), 3, vec![8, 9, 10], true),
            (Span::Latest(Some(Seq(8))), 5, vec![9, 10], false),
            (Span::Before(Seq(5)), 2, vec![3, 4], true),
            (Span::Before(Seq(1)), 2, vec![], false),
            (Span::After(Seq(8)), 5, vec![9, 10], false),
            (Span::After(Seq(2)), 2, vec![3, 4], true),
            (Span::Around(Seq(5)), 3, vec![4, 5, 6], true),
            (Span::Around(Seq(1)), 3, vec![1, 2, 3], true),
            (Span::Between(Seq(2), Seq(6)), 10, vec![3, 4, 5], false),
            (Span::Between(Seq(2), Seq(9)), 2, vec![3, 4], true),
            (Span::Between(Seq(9), Seq(2)), 2, vec![7, 8], true),
            (Span::Between(Seq(4), Seq(4)), 5, vec![], false),
            // Line 3 and 4 were said at second 101: a time is to the millisecond.
            (Span::Before(Millis(101_000)), 10, vec![1, 2], false),
            (Span::After(Millis(101_000)), 2, vec![5, 6], true),
            (Span::After(Millis(100_500)), 2, vec![3, 4], true),
            (Span::Around(Millis(101_000)), 4, vec![1, 2, 3, 4], true),
            (Span::Between(Millis(0), Seq(3)), 5, vec![1, 2], false),
        ];
        for (span, limit, seqs, more) in cases {
            assert_eq!(chosen(span, limit), (seqs, more), "{span:?} {limit}");
        }
    }

    #[test]
    fn a_span_maps_its_points_or_fails_whole() {
        let span = Span::Between(1, 2);
        assert_eq!(
            span.try_map(|n| Some(Point::Seq(n * 10))),
            Some(Span::Between(Point::Seq(10), Point::Seq(20)))
        );
        assert_eq!(span.try_map(|n| (n == 1).then_some(n)), None);
        assert_eq!(
            Span::Latest(None::<u8>).try_map(|_| None::<u8>),
            Some(Span::Latest(None))
        );
    }
}
