//! Login throttling: too many wrong passwords for one account or from one address, and further
//! attempts are refused for a while without even being checked.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Counts recent failures per key (an account name or an address) within a sliding window.
#[derive(Debug)]
pub struct Throttle {
    window: Duration,
    max_failures: usize,
    failures: HashMap<String, VecDeque<Instant>>,
}

impl Throttle {
    /// Allows `max_failures` failures per key within `window`.
    pub fn new(max_failures: usize, window: Duration) -> Throttle {
        Throttle {
            window,
            max_failures,
            failures: HashMap::new(),
        }
    }

    /// Whether any of `keys` has had its fill of failures within the window before `now`.
    pub fn is_blocked(&self, keys: &[String], now: Instant) -> bool {
        keys.iter().any(|key| {
            self.failures.get(key).is_some_and(|times| {
                times
                    .iter()
                    .filter(|&&t| now.duration_since(t) < self.window)
                    .count()
                    >= self.max_failures
            })
        })
    }

    /// Records a failure for each of `keys` at `now`.
    pub fn record(&mut self, keys: &[String], now: Instant) {
        for key in keys {
            let times = self.failures.entry(key.clone()).or_default();
            times.push_back(now);
            while times.len() > self.max_failures {
                times.pop_front();
            }
        }
    }

    /// Forgets failures older than the window, so the map does not grow without end.
    pub fn prune(&mut self, now: Instant) {
        let window = self.window;
        self.failures.retain(|_, times| {
            times
                .back()
                .is_some_and(|&t| now.duration_since(t) < window)
        });
    }

    /// Whether no key has recent failures.
    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_blocked_after_its_failures_until_the_window_passes() {
        let start = Instant::now();
        let mut throttle = Throttle::new(3, Duration::from_secs(60));
        let keys = vec!["account:alice".to_owned(), "addr:10.0.0.1".to_owned()];
        for n in 0..3 {
            assert!(!throttle.is_blocked(&keys, start), "after {n} failures");
            throttle.record(&keys, start + Duration::from_secs(n));
        }
        assert!(throttle.is_blocked(&keys, start + Duration::from_secs(3)));
        assert!(throttle.is_blocked(
            &["addr:10.0.0.1".to_owned()],
            start + Duration::from_secs(3)
        ));
        assert!(!throttle.is_blocked(&["account:bob".to_owned()], start + Duration::from_secs(3)));
        assert!(
            !throttle.is_blocked(&keys, start + Duration::from_secs(61)),
            "the oldest failure expired"
        );
        throttle.prune(start + Duration::from_secs(120));
        assert!(throttle.is_empty());
    }
}
