//! A connection's pending output: shared, already-encoded messages written with vectored writes.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::ops::Range;
use std::rc::Rc;

/// How many queued messages one `write_vectored` call may carry: Linux's IOV_MAX. Measured: 64
/// made a burst cost 15 times more `writev` calls and twice the CPU per delivery.
const MAX_SLICES: usize = 1024;
/// Up to this many queued messages are written from a small array: filling the IOV_MAX-sized one
/// (16 KiB) for a message or two cost more than the copy into the socket.
const FEW_SLICES: usize = 8;

/// Encoded messages waiting to be written to one connection. A broadcast's bytes are shared by
/// every queue it is in.
#[derive(Debug, Default)]
pub struct OutQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes still to write, over all chunks.
    pending: usize,
}

/// Shared bytes still to write: `bytes[start..end]`.
#[derive(Debug)]
struct Chunk {
    bytes: Rc<[u8]>,
    start: usize,
    end: usize,
}

impl Chunk {
    fn left(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }
}

impl OutQueue {
    /// Queues `chunk` after everything already queued.
    pub fn push(&mut self, chunk: Rc<[u8]>) {
        let end = chunk.len();
        self.push_chunk(chunk, 0..end);
    }

    /// Queues `bytes[range]` after everything already queued, as part of the last chunk when it
    /// ends where `range` starts in the same bytes (a member taking a room's lines from one
    /// batch queues one chunk for all of them).
    pub fn push_range(&mut self, bytes: &Rc<[u8]>, range: Range<usize>) {
        if let Some(last) = self.chunks.back_mut() {
            if last.end == range.start && Rc::ptr_eq(&last.bytes, bytes) {
                self.pending += range.len();
                last.end = range.end;
                return;
            }
        }
        self.push_chunk(Rc::clone(bytes), range);
    }

    fn push_chunk(&mut self, bytes: Rc<[u8]>, range: Range<usize>) {
        if !range.is_empty() {
            self.pending += range.len();
            self.chunks.push_back(Chunk {
                bytes,
                start: range.start,
                end: range.end,
            });
        }
    }

    /// Bytes still to write.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// How many chunks are queued (a range of shared bytes each).
    #[cfg(test)]
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Whether nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.pending = 0;
    }

    /// Writes until the queue is empty or `sink` would block; returns the bytes written.
    pub fn write_to(&mut self, sink: &mut impl Write) -> io::Result<usize> {
        let mut total = 0;
        while !self.is_empty() {
            let written = if self.chunks.len() == 1 {
                // One message (the usual case at a chat's pace): a plain write.
                sink.write(self.chunks[0].left())
            } else if self.chunks.len() <= FEW_SLICES {
                self.write_some::<FEW_SLICES>(sink)
            } else {
                self.write_some::<MAX_SLICES>(sink)
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.consume(n);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// One `write_vectored` of the first `N` (at most) queued messages.
    fn write_some<const N: usize>(&self, sink: &mut impl Write) -> io::Result<usize> {
        let mut slices = [IoSlice::new(&[]); N];
        let mut count = 0;
        for (slice, chunk) in slices.iter_mut().zip(self.chunks.iter()) {
            *slice = IoSlice::new(chunk.left());
            count += 1;
        }
        sink.write_vectored(&slices[..count])
    }

    fn consume(&mut self, mut n: usize) {
        self.pending -= n;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let left = front.end - front.start;
            if n < left {
                front.start += n;
                return;
            }
            n -= left;
            self.chunks.pop_front();
        }
        if self.chunks.is_empty() {
            // An idle connection keeps no buffer: a join storm would leave every one its peak.
            self.chunks = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that takes at most `budget` bytes, then would block.
    struct Trickle {
        taken: Vec<u8>,
        budget: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.budget).min(3);
            self.budget -= n;
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn ranges_of_the_same_bytes_that_follow_each_other_are_one_chunk() {
        let mut queue = OutQueue::default();
        let batch: Rc<[u8]> = Rc::from(&b"one\ntwo\nthree\n"[..]);
        let other: Rc<[u8]> = Rc::from(&b"two\n"[..]);
        queue.push_range(&batch, 0..4);
        queue.push_range(&batch, 4..8);
        assert_eq!(queue.chunks(), 1);
        queue.push_range(&other, 0..4);
        queue.push_range(&batch, 8..14);
        assert_eq!(
            queue.chunks(),
            3,
            "other bytes, or not where the last ended: a new chunk"
        );
        queue.push_range(&batch, 14..14);
        assert_eq!((queue.chunks(), queue.pending()), (3, 18));
        let mut sink = Trickle {
            taken: Vec::new(),
            budget: 100,
        };
        queue.write_to(&mut sink).unwrap();
        assert_eq!(sink.taken, b"one\ntwo\ntwo\nthree\n");
    }

    #[test]
    fn partial_writes_resume_where_they_stopped_and_keep_order() {
        let mut queue = OutQueue::default();
        queue.push(Rc::from(&b"hello "[..]));
        queue.push(Rc::from(&b""[..]));
        queue.push(Rc::from(&b"world\n"[..]));
        assert_eq!(queue.pending(), 12);
        let mut sink = Trickle {
            taken: Vec::new(),
            budget: 7,
        };
        assert_eq!(queue.write_to(&mut sink).unwrap(), 7);
        assert_eq!(queue.pending(), 5);
        sink.budget = 100;
        assert_eq!(queue.write_to(&mut sink).unwrap(), 5);
        assert!(queue.is_empty());
        assert_eq!(sink.taken, b"hello world\n");
    }
}
