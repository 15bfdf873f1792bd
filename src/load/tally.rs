//! Who received what: loss and duplicate accounting for every (receiver, sender) pair.
//!
//! Each receiver keeps one bit per message of each other sender, so a line that arrives twice is
//! a duplicate and a line that never arrives is lost, whatever order they come in. Memory is one
//! bit per expected delivery: 4.9 million deliveries take 600 KiB.
//!
//! Clients may be in groups (the rooms of a `--rooms` run): a receiver is due exactly the
//! messages of the other members of its group, and a message from another group is unexpected.

/// What one received marker turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The first time this receiver got this message.
    New,
    /// This receiver had it already.
    Duplicate,
    /// No such message was ever to be sent to this receiver (its own, an unknown sender, a
    /// sequence number past the plan).
    Unexpected,
}

/// The delivery accounting of one run.
#[derive(Clone, Debug)]
pub struct Tally {
    /// How many messages each sender is to send at most.
    planned: Vec<u64>,
    /// Each client's group: it is due the messages of the others in its group only.
    group: Vec<u32>,
    /// How many each sender has written out whole.
    sent: Vec<u64>,
    /// How many the members of each group have written out whole together.
    group_sent: Vec<u64>,
    /// `seen[receiver][sender]`: one bit per sequence number; a receiver's row is made on its
    /// first delivery, so thousands of idle clients cost nothing here.
    seen: Vec<Vec<Vec<u64>>>,
    /// Distinct deliveries per receiver.
    distinct: Vec<u64>,
    duplicates: u64,
    unexpected: u64,
}

impl Tally {
    /// Accounting for `clients` clients in one group, each to send at most `planned` messages.
    pub fn new(clients: usize, planned: u64) -> Tally {
        Tally::in_groups(vec![0; clients], planned)
    }

    /// Accounting for one client per entry of `group` (the client's group), each to send at most
    /// `planned` messages.
    pub fn in_groups(group: Vec<u32>, planned: u64) -> Tally {
        let clients = group.len();
        let groups = group.iter().max().map_or(0, |&g| g as usize + 1);
        Tally {
            planned: vec![planned; clients],
            group,
            sent: vec![0; clients],
            group_sent: vec![0; groups],
            seen: vec![Vec::new(); clients],
            distinct: vec![0; clients],
            duplicates: 0,
            unexpected: 0,
        }
    }

    /// Records that `sender` wrote `count` more whole messages to its socket.
    pub fn sent(&mut self, sender: usize, count: u64) {
        if let Some(sent) = self.sent.get_mut(sender) {
            *sent += count;
            self.group_sent[self.group[sender] as usize] += count;
        }
    }

    /// The messages due to `receiver`: those its group's other members have sent so far.
    fn due(&self, receiver: usize) -> u64 {
        let Some(&group) = self.group.get(receiver) else {
            return 0;
        };
        self.group_sent[group as usize] - self.sent[receiver]
    }

    fn same_group(&self, a: usize, b: usize) -> bool {
        matches!((self.group.get(a), self.group.get(b)), (Some(x), Some(y)) if x == y)
    }

    /// Messages written out whole by every sender together.
    pub fn total_sent(&self) -> u64 {
        self.sent.iter().sum()
    }

    /// Records that `receiver` got message `seq` of `sender`.
    pub fn receive(&mut self, receiver: usize, sender: usize, seq: u64) -> Delivery {
        let in_plan = sender != receiver
            && self.same_group(receiver, sender)
            && self.planned.get(sender).is_some_and(|&p| seq < p);
        if !in_plan {
            self.unexpected += 1;
            return Delivery::Unexpected;
        }
        let row = &mut self.seen[receiver];
        if row.is_empty() {
            row.resize(self.planned.len(), Vec::new());
        }
        let bits = &mut row[sender];
        let word = (seq / 64) as usize;
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        let mask = 1u64 << (seq % 64);
        if bits[word] & mask != 0 {
            self.duplicates += 1;
            return Delivery::Duplicate;
        }
        bits[word] |= mask;
        self.distinct[receiver] += 1;
        Delivery::New
    }

    /// Whether every receiver in `receivers` has everything its group's others have sent so far.
    pub fn all_delivered(&self, mut receivers: impl Iterator<Item = usize>) -> bool {
        receivers.all(|r| self.distinct.get(r).copied().unwrap_or(0) >= self.due(r))
    }

    /// Distinct deliveries over all receivers.
    pub fn delivered(&self) -> u64 {
        self.distinct.iter().sum()
    }

    /// Deliveries due to the receivers in `receivers` (their groups' others' messages, as sent).
    pub fn expected(&self, receivers: impl Iterator<Item = usize>) -> u64 {
        receivers.map(|r| self.due(r)).sum()
    }

    /// Messages sent whole that the receivers in `receivers` never got, counted once per receiver.
    pub fn lost(&self, receivers: impl Iterator<Item = usize>) -> u64 {
        let mut lost = 0;
        for receiver in receivers {
            if receiver >= self.seen.len() {
                continue;
            }
            for (sender, &sent) in self.sent.iter().enumerate() {
                if sender == receiver || !self.same_group(sender, receiver) {
                    continue;
                }
                let bits = self.seen[receiver]
                    .get(sender)
                    .map_or(&[][..], Vec::as_slice);
                lost += sent - count_below(bits, sent);
            }
        }
        lost
    }

    /// Messages received more than once, over all receivers.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Markers of this run that match no message due to their receiver.
    pub fn unexpected(&self) -> u64 {
        self.unexpected
    }
}

/// How many bits below `limit` are set.
fn count_below(bits: &[u64], limit: u64) -> u64 {
    let whole = (limit / 64) as usize;
    let mut count: u64 = bits
        .iter()
        .take(whole)
        .map(|w| u64::from(w.count_ones()))
        .sum();
    let rest = limit % 64;
    if rest > 0 {
        if let Some(word) = bits.get(whole) {
            count += u64::from((word & ((1u64 << rest) - 1)).count_ones());
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_delivered_once_is_nothing_lost() {
        let mut t = Tally::new(3, 100);
        for sender in 0..3 {
            t.sent(sender, 100);
        }
        for receiver in 0..3 {
            for sender in (0..3).filter(|&s| s != receiver) {
                for seq in 0..100 {
                    assert_eq!(t.receive(receiver, sender, seq), Delivery::New);
                }
            }
        }
        assert!(t.all_delivered(0..3));
        assert_eq!(t.delivered(), 600);
        assert_eq!(t.expected(0..3), 600);
        assert_eq!(t.lost(0..3), 0);
        assert_eq!(t.duplicates(), 0);
    }

    #[test]
    fn duplicates_and_losses_are_counted_per_receiver() {
        let mut t = Tally::new(2, 10);
        t.sent(0, 10);
        for seq in [0, 1, 2, 2, 9, 0] {
            t.receive(1, 0, seq);
        }
        assert_eq!(t.duplicates(), 2);
        assert_eq!(t.delivered(), 4);
        assert_eq!(t.lost(0..2), 6);
        assert_eq!(t.lost(std::iter::once(1)), 6);
        // Client 1 sent nothing, so client 0 misses nothing.
        assert_eq!(t.lost(std::iter::once(0)), 0);
        assert!(t.all_delivered(std::iter::once(0)));
        assert!(!t.all_delivered(0..2));
    }

    #[test]
    fn own_messages_unknown_senders_and_seqs_past_the_plan_are_unexpected() {
        let mut t = Tally::new(2, 10);
        assert_eq!(t.receive(0, 0, 1), Delivery::Unexpected);
        assert_eq!(t.receive(0, 7, 1), Delivery::Unexpected);
        assert_eq!(t.receive(0, 1, 10), Delivery::Unexpected);
        assert_eq!(t.receive(9, 1, 1), Delivery::Unexpected);
        assert_eq!(t.unexpected(), 4);
        assert_eq!(t.delivered(), 0);
    }

    #[test]
    fn only_messages_written_whole_can_be_lost() {
        // Sender 0 planned 200 but wrote 70 before the run ended; receiver 1 got 0..64.
        let mut t = Tally::new(2, 200);
        t.sent(0, 70);
        for seq in 0..64 {
            t.receive(1, 0, seq);
        }
        // A message written in part and delivered anyway is not lost, nor unexpected.
        assert_eq!(t.receive(1, 0, 71), Delivery::New);
        assert_eq!(t.lost(0..2), 6);
        assert_eq!(t.lost(std::iter::once(0)), 0);
    }

    #[test]
    fn in_groups_a_receiver_is_due_exactly_its_groups_others_messages() {
        // Clients 0 and 2 are in group 0, clients 1, 3 and 4 in group 1.
        let mut t = Tally::in_groups(vec![0, 1, 0, 1, 1], 10);
        for sender in 0..5 {
            t.sent(sender, 10);
        }
        // Client 0 is due client 2's 10 only; client 1 the 20 of clients 3 and 4.
        assert_eq!(t.expected(std::iter::once(0)), 10);
        assert_eq!(t.expected(std::iter::once(1)), 20);
        assert_eq!(t.expected(0..5), 10 + 20 + 10 + 20 + 20);
        assert_eq!(t.receive(0, 1, 3), Delivery::Unexpected, "another room's");
        assert_eq!(t.receive(4, 2, 0), Delivery::Unexpected, "another room's");
        for seq in 0..10 {
            assert_eq!(t.receive(0, 2, seq), Delivery::New);
            assert_eq!(t.receive(2, 0, seq), Delivery::New);
        }
        assert_eq!(t.receive(0, 2, 9), Delivery::Duplicate);
        assert!(t.all_delivered([0, 2].into_iter()));
        assert!(!t.all_delivered(0..5));
        assert_eq!(t.lost([0, 2].into_iter()), 0);
        // Group 1 got nothing: each of its 3 members lost the other two's 20.
        assert_eq!(t.lost(0..5), 60);
        assert_eq!(t.unexpected(), 2);
        assert_eq!(t.duplicates(), 1);
    }

    #[test]
    fn bits_are_counted_up_to_a_limit() {
        let bits = [u64::MAX, 0b1011];
        assert_eq!(count_below(&bits, 0), 0);
        assert_eq!(count_below(&bits, 64), 64);
        assert_eq!(count_below(&bits, 66), 66);
        assert_eq!(count_below(&bits, 65), 65);
        assert_eq!(count_below(&bits, 1000), 67);
        assert_eq!(count_below(&[], 10), 0);
    }
}
