//! Splitting a received byte stream into lines without copying whole lines.

/// The longest partial line kept between reads; past it the piece is handed over as a line of
/// its own, so a server that never sends a line end cannot grow the buffer without bound.
const MAX_PARTIAL: usize = 64 * 1024;

/// The unfinished line left over from earlier reads.
#[derive(Debug, Default)]
pub struct LineBuffer {
    partial: Vec<u8>,
}

impl LineBuffer {
    /// Hands every whole line in `bytes` (after what was left over) to `each`, without its LF or
    /// a CR before it; keeps the unfinished rest for the next call.
    pub fn feed(&mut self, mut bytes: &[u8], mut each: impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            let Some(lf) = memchr::memchr(b'\n', bytes) else {
                self.keep(bytes, &mut each);
                return;
            };
            self.partial.extend_from_slice(&bytes[..lf]);
            each(strip_cr(&self.partial));
            self.partial.clear();
            bytes = &bytes[lf + 1..];
        }
        while let Some(lf) = memchr::memchr(b'\n', bytes) {
            each(strip_cr(&bytes[..lf]));
            bytes = &bytes[lf + 1..];
        }
        self.keep(bytes, &mut each);
    }

    fn keep(&mut self, bytes: &[u8], each: &mut impl FnMut(&[u8])) {
        self.partial.extend_from_slice(bytes);
        if self.partial.len() > MAX_PARTIAL {
            each(&self.partial);
            self.partial.clear();
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_in_pieces(stream: &[u8], piece: usize) -> Vec<Vec<u8>> {
        let mut buffer = LineBuffer::default();
        let mut lines = Vec::new();
        for chunk in stream.chunks(piece) {
            buffer.feed(chunk, |line| lines.push(line.to_vec()));
        }
        lines
    }

    #[test]
    fn lines_come_out_whole_however_the_stream_is_cut() {
        let stream = b"one\r\ntwo\n\nthree\r\nfour";
        let expected: Vec<Vec<u8>> =
            vec![b"one".to_vec(), b"two".to_vec(), vec![], b"three".to_vec()];
        for piece in 1..=stream.len() {
            assert_eq!(
                split_in_pieces(stream, piece),
                expected,
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn a_cr_is_dropped_only_before_the_lf() {
        assert_eq!(split_in_pieces(b"a\rb\r\r\n", 2), vec![b"a\rb\r".to_vec()]);
    }

    #[test]
    fn an_endless_line_is_cut_instead_of_buffered() {
        let stream = vec![b'x'; MAX_PARTIAL * 3];
        let lines = split_in_pieces(&stream, 1000);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.len() <= MAX_PARTIAL + 1000));
    }
}
