//! The shell's clock: reads the time once per batch and formats the `HH:MM:SS` stamp once per second.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use time::UtcOffset;

use crate::core::Now;
use crate::proto::msg::Stamp;

/// Wall and monotonic time for the core, in the local offset read at start-up.
#[derive(Debug)]
pub struct Clock {
    offset: UtcOffset,
    stamp: Stamp,
}

impl Clock {
    /// A clock showing times at `offset` from UTC.
    pub fn new(offset: UtcOffset) -> Clock {
        Clock {
            offset,
            stamp: Stamp::new(i64::MIN, 0, 0, 0),
        }
    }

    /// The current time; the stamp is rebuilt only when the second has changed.
    pub fn now(&mut self) -> Now {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
            });
        if unix != self.stamp.unix {
            self.stamp = stamp_at(unix, self.offset);
        }
        Now {
            instant: Instant::now(),
            stamp: self.stamp,
        }
    }
}

/// The stamp of `unix` in `offset`, keeping the offset, so that a stamp made from it for another
/// time (a line read back from the history store) is shown in the same offset.
fn stamp_at(unix: i64, offset: UtcOffset) -> Stamp {
    Stamp::local(unix, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_shown_in_the_given_offset() {
        let offset = UtcOffset::from_hms(2, 0, 0).unwrap();
        assert_eq!(stamp_at(3_600 + 59, offset).hms(), "03:00:59");
        assert_eq!(stamp_at(3_600 + 59, UtcOffset::UTC).hms(), "01:00:59");
    }
}
