//! The payload every load message carries: run, sender, sequence number and send time, padded.
//!
//! A payload is `ld|RUN|SENDER|SEQ|SENT_NS|` in lower-case hex, then `x` up to the asked size. A
//! warm-up probe uses the tag `lp|` instead. The marker is found anywhere in a received line, so it
//! survives whatever a server puts around it (`[14:02:09] load3 > ...`, or nothing at all). `|` is
//! not a name character in chatd, so a sender's name cannot fake a marker.

/// The tag of a measured message.
const DATA_TAG: &[u8] = b"ld|";
/// The tag of a warm-up probe (not counted as a delivery).
const PROBE_TAG: &[u8] = b"lp|";
/// The byte that fills a payload up to its size.
const PAD: u8 = b'x';

/// The longest marker the tool writes: the tag, then at most 8 hex digits of run, 5 of sender
/// (up to a million clients), 8 of sequence number and 12 of nanoseconds (78 hours), each with
/// its `|`. The smallest payload size the tool accepts.
pub const MAX_MARKER_LEN: usize = 3 + 9 + 6 + 9 + 13;

/// Whether a payload is measured or only shows that lines flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A measured message: counted, checked for loss and duplication, timed.
    Data,
    /// A warm-up probe, sent before the measurement starts.
    Probe,
}

/// What a payload says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    /// Measured or probe.
    pub kind: Kind,
    /// The run it belongs to, so lines from an earlier run (a backlog) are not counted.
    pub run: u32,
    /// The index of the client that sent it.
    pub sender: u32,
    /// Its number among the sender's messages, from 0.
    pub seq: u64,
    /// When it was sent, in nanoseconds on the load process's one monotonic clock.
    pub sent_ns: u64,
}

impl Marker {
    /// Appends the payload to `out`: the marker, then padding up to `size` bytes in all (a marker
    /// longer than `size` is written whole).
    pub fn write(&self, size: usize, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(match self.kind {
            Kind::Data => DATA_TAG,
            Kind::Probe => PROBE_TAG,
        });
        for field in [
            u64::from(self.run),
            u64::from(self.sender),
            self.seq,
            self.sent_ns,
        ] {
            push_hex(field, out);
            out.push(b'|');
        }
        let written = out.len() - start;
        out.resize(out.len() + size.saturating_sub(written), PAD);
    }

    /// The first well-formed marker in `line`, if any.
    pub fn find(line: &[u8]) -> Option<Marker> {
        // Every marker's first `|` follows its two-letter tag: look for the `|`s (a SIMD search),
        // not for the letters, which names and text are full of.
        for bar in memchr::memchr_iter(b'|', line) {
            let Some(start) = bar.checked_sub(DATA_TAG.len() - 1) else {
                continue;
            };
            if let Some(marker) = Marker::parse_at(&line[start..]) {
                return Some(marker);
            }
        }
        None
    }

    /// The marker at the very start of `text`, if there is one.
    fn parse_at(text: &[u8]) -> Option<Marker> {
        let kind = if text.starts_with(DATA_TAG) {
            Kind::Data
        } else if text.starts_with(PROBE_TAG) {
            Kind::Probe
        } else {
            return None;
        };
        let mut rest = &text[DATA_TAG.len()..];
        let mut next = || {
            let (value, after) = parse_hex_field(rest)?;
            rest = after;
            Some(value)
        };
        let run = u32::try_from(next()?).ok()?;
        let sender = u32::try_from(next()?).ok()?;
        let seq = next()?;
        let sent_ns = next()?;
        Some(Marker {
            kind,
            run,
            sender,
            seq,
            sent_ns,
        })
    }
}

fn push_hex(value: u64, out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = (64 - value.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(DIGITS[((value >> (i * 4)) & 0xf) as usize]);
    }
}

/// One to sixteen lower-case hex digits closed by a `|`, and what follows the `|`.
fn parse_hex_field(text: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, &b) in text.iter().enumerate().take(17) {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'|' if i > 0 => return Some((value, &text[i + 1..])),
            _ => return None,
        };
        value = value << 4 | u64::from(digit);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(sender: u32, seq: u64, sent_ns: u64) -> Marker {
        Marker {
            kind: Kind::Data,
            run: 0xdead_beef,
            sender,
            seq,
            sent_ns,
        }
    }

    #[test]
    fn a_payload_is_padded_to_its_size_and_reads_back() {
        let marker = data(17, 1999, 123_456_789);
        let mut out = Vec::new();
        marker.write(64, &mut out);
        assert_eq!(out.len(), 64);
        assert!(out.starts_with(b"ld|deadbeef|11|7cf|75bcd15|xxx"));
        assert_eq!(Marker::find(&out), Some(marker));
    }

    #[test]
    fn the_marker_is_found_inside_whatever_the_server_wraps_around_it() {
        let probe = Marker {
            kind: Kind::Probe,
            ..data(0, 3, 0)
        };
        let mut line = b"[14:02:09] load0 > ".to_vec();
        probe.write(0, &mut line);
        assert_eq!(Marker::find(&line), Some(probe));
        // A look-alike before the real marker is skipped.
        let mut line = b"[14:02:09] lold|zz > ld|1|".to_vec();
        data(2, 0, 9).write(40, &mut line);
        assert_eq!(Marker::find(&line), Some(data(2, 0, 9)));
    }

    #[test]
    fn the_longest_marker_fits_the_smallest_payload() {
        let widest = Marker {
            kind: Kind::Data,
            run: u32::MAX,
            sender: 0xf_ffff,
            seq: 0xffff_ffff,
            sent_ns: 0xffff_ffff_ffff,
        };
        let mut out = Vec::new();
        widest.write(0, &mut out);
        assert_eq!(out.len(), MAX_MARKER_LEN);
    }

    #[test]
    fn broken_markers_are_not_taken() {
        for line in [
            &b"ld|1|2|3|4"[..],             // last field not closed
            b"ld|1|2|3|",                   // a field missing
            b"ld|1|2|3G|4|",                // not hex
            b"ld|1|2|3|11112222333344445|", // too long for a u64
            b"ld|100000000|2|3|4|",         // run too big for a u32
            b"lx|1|2|3|4|",
            b"",
        ] {
            assert_eq!(
                Marker::find(line),
                None,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn hex_round_trips_at_the_edges() {
        for value in [0, 1, 0xf, 0x10, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            push_hex(value, &mut out);
            assert_eq!(out, format!("{value:x}").into_bytes());
            out.extend_from_slice(b"|rest");
            assert_eq!(
                parse_hex_field(&out),
                Some((value, &b"rest"[..])),
                "{value:x}"
            );
        }
        assert_eq!(parse_hex_field(b"|"), None);
        assert_eq!(parse_hex_field(b"12345678123456781|"), None);
        assert_eq!(parse_hex_field(b"12"), None);
    }
}
