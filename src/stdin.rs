//! Lines typed on stdin, read inside a mio loop: shared by the host console and the `chat` client.
//!
//! [`PolledStdin`] makes fd 0 non-blocking and registers it with a poll; the flags belong to the
//! open file, which the shell that started us shares, so they are put back when it is dropped.
//! Stdin cannot always be polled (a regular file, `/dev/null`, a closed fd): then `open` fails and
//! the caller picks its fallback. [`LineSplitter`] turns the bytes into sanitized lines.

use std::io::{self, Read};
use std::os::fd::AsRawFd;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use rustix::fs::OFlags;

use crate::proto::sanitize;

/// What reading stdin gave.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Everything available was read; more may come.
    Open,
    /// Stdin reached end of file or failed; stop polling it.
    Closed,
}

/// Stdin, non-blocking and registered with a poll, until dropped.
#[derive(Debug)]
pub struct PolledStdin {
    /// The flags to put back on drop, if we changed them.
    restore: Option<OFlags>,
}

impl PolledStdin {
    /// Makes stdin non-blocking and registers it under `token`, or says why it cannot be polled.
    pub fn open(registry: &Registry, token: Token) -> io::Result<PolledStdin> {
        let stdin = io::stdin();
        let flags = rustix::fs::fcntl_getfl(&stdin)?;
        let fd = stdin.as_raw_fd();
        registry.register(&mut SourceFd(&fd), token, Interest::READABLE)?;
        let restore = if flags.contains(OFlags::NONBLOCK) {
            None
        } else {
            if let Err(e) = rustix::fs::fcntl_setfl(&stdin, flags | OFlags::NONBLOCK) {
                let _ = registry.deregister(&mut SourceFd(&fd));
                return Err(e.into());
            }
            Some(flags)
        };
        Ok(PolledStdin { restore })
    }

    /// Reads until stdin would block, handing every chunk read to `take`.
    pub fn read(&mut self, mut take: impl FnMut(&[u8])) -> ReadOutcome {
        let mut chunk = [0u8; 4096];
        let mut stdin = io::stdin().lock();
        loop {
            match stdin.read(&mut chunk) {
                Ok(0) => return ReadOutcome::Closed,
                Ok(n) => take(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("stdin read failed, closing it: {e}");
                    return ReadOutcome::Closed;
                }
            }
        }
    }

    /// Stops polling stdin.
    pub fn deregister(&self, registry: &Registry) {
        let fd = io::stdin().as_raw_fd();
        let _ = registry.deregister(&mut SourceFd(&fd));
    }
}

impl Drop for PolledStdin {
    fn drop(&mut self) {
        if let Some(flags) = self.restore {
            let _ = rustix::fs::fcntl_setfl(io::stdin(), flags);
        }
    }
}

/// A typed line longer than the line limit; it was dropped whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineTooLong;

/// Splits typed bytes into lines: LF ends a line, a CR before it is dropped, and the text is
/// sanitized. A line longer than the limit is dropped whole and reported once.
#[derive(Debug)]
pub struct LineSplitter {
    max_line: usize,
    pending: Vec<u8>,
    /// Set while the rest of an over-long line is skipped.
    discarding: bool,
}

impl LineSplitter {
    /// A splitter for lines of at most `max_line` bytes.
    pub fn new(max_line: usize) -> LineSplitter {
        LineSplitter {
            max_line,
            pending: Vec::new(),
            discarding: false,
        }
    }

    /// Takes `bytes`, appending each line they end to `lines`; a partial line waits for the rest.
    pub fn push(&mut self, bytes: &[u8], lines: &mut Vec<Result<String, LineTooLong>>) {
        for &byte in bytes {
            if byte == b'\n' {
                if !self.discarding {
                    let line = self.pending.strip_suffix(b"\r").unwrap_or(&self.pending);
                    lines.push(if line.len() > self.max_line {
                        Err(LineTooLong)
                    } else {
                        Ok(sanitize(line))
                    });
                }
                self.pending.clear();
                self.discarding = false;
            } else if self.discarding {
                continue;
            } else if self.pending.len() > self.max_line {
                // Past the limit even if what is held ends with a CR: drop the line.
                self.pending.clear();
                self.discarding = true;
                lines.push(Err(LineTooLong));
            } else {
                self.pending.push(byte);
            }
        }
    }

    /// The unfinished last line, if any (for the end of input).
    pub fn finish(&mut self) -> Option<Result<String, LineTooLong>> {
        let line = std::mem::take(&mut self.pending);
        let discarding = std::mem::replace(&mut self.discarding, false);
        (!line.is_empty() && !discarding).then(|| Ok(sanitize(&line)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_crs_dropped_and_a_partial_line_waits() {
        let mut splitter = LineSplitter::new(100);
        let mut lines = Vec::new();
        splitter.push(b"one\r\ntwo\n\x1b[2J\nthr", &mut lines);
        assert_eq!(
            lines,
            vec![Ok("one".into()), Ok("two".into()), Ok("\u{FFFD}[2J".into())]
        );
        lines.clear();
        splitter.push(b"ee\n", &mut lines);
        assert_eq!(lines, vec![Ok("three".into())]);
        splitter.push(b"no end", &mut lines);
        assert_eq!(splitter.finish(), Some(Ok("no end".into())));
        assert_eq!(splitter.finish(), None);
    }

    #[test]
    fn an_over_long_line_is_reported_once_and_dropped_whole() {
        let mut splitter = LineSplitter::new(4);
        let mut lines = Vec::new();
        splitter.push(b"abcd\r\nabcde\nabcdefgh", &mut lines);
        splitter.push(b"ijk\nok\n", &mut lines);
        assert_eq!(
            lines,
            vec![
                Ok("abcd".into()),
                Err(LineTooLong),
                Err(LineTooLong),
                Ok("ok".into())
            ]
        );
    }
}
