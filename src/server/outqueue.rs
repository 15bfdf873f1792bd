//! A connection's pending output: shared, already-encoded messages written with vectored writes.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
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
    chunks: VecDeque<Rc<[u8]>>,
    /// How much of the front chunk has been written already.
    written: usize,
    /// Bytes still to write, over all chunks.
    pending: usize,
}

impl OutQueue {
    /// Queues `chunk` after everything already queued.
    pub fn push(&mut self, chunk: Rc<[u8]>) {
        if !chunk.is_empty() {
            self.pending += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// How many messages are queued (the first maybe partly written).
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Makes room for `more` chunks at once: a member taking a turn's broadcasts gets its queue
    /// in one allocation, not a doubling for every few lines (its queue is given back whenever it
    /// is drained).
    pub fn reserve(&mut self, more: usize) {
        self.chunks.reserve(more);
    }

    /// Bytes still to write.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Whether nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.written = 0;
        self.pending = 0;
    }

    /// Writes until the queue is empty or `sink` would block; returns the bytes written.
    pub fn write_to(&mut self, sink: &mut impl Write) -> io::Result<usize> {
        let mut total = 0;
        while !self.is_empty() {
            let written = if self.chunks.len() == 1 {
                // One message (the usual case at a chat's pace): a plain write.
                sink.write(&self.chunks[0][self.written..])
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
        for (i, chunk) in self.chunks.iter().take(N).enumerate() {
            let start = if i == 0 { self.written } else { 0 };
            slices[i] = IoSlice::new(&chunk[start..]);
            count += 1;
        }
        sink.write_vectored(&slices[..count])
    }

    fn consume(&mut self, mut n: usize) {
        self.pending -= n;
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.len() - self.written;
            if n < left {
                self.written += n;
                return;
            }
            n -= left;
            self.written = 0;
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
