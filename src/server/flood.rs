//! Flood control: each client has an allowance of messages that refills at a steady rate. Past
//! it the shell stops reading that client until the allowance is back, so TCP slows the sender
//! down and nothing it sent is lost.

use std::time::{Duration, Instant};

use crate::config::FloodPolicy;

/// One client's allowance: a token bucket.
#[derive(Clone, Copy, Debug)]
pub struct Allowance {
    tokens: f64,
    updated: Instant,
}

impl Allowance {
    /// A full allowance at `now`.
    pub fn new(now: Instant, policy: &FloodPolicy) -> Allowance {
        Allowance {
            tokens: policy.burst,
            updated: now,
        }
    }

    /// Takes one message's worth, or says when one will be there.
    pub fn take(&mut self, now: Instant, policy: &FloodPolicy) -> Result<(), Instant> {
        let refill = now.saturating_duration_since(self.updated).as_secs_f64() * policy.per_second;
        self.tokens = (self.tokens + refill).min(policy.burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - self.tokens) / policy.per_second;
        Err(now + Duration::from_secs_f64(wait))
    }
}

impl Allowance {
    /// When it was made or last used.
    pub fn since(&self) -> Instant {
        self.updated
    }

    /// Returns a message's worth taken for nothing.
    pub fn give_back(&mut self, policy: &FloodPolicy) {
        self.tokens = (self.tokens + 1.0).min(policy.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_steady_rate() {
        let policy = FloodPolicy::default();
        let start = Instant::now();
        let mut allowance = Allowance::new(start, &policy);
        for n in 0..10 {
            assert_eq!(
                allowance.take(start, &policy),
                Ok(()),
                "message {n} of the burst"
            );
        }
        let back = allowance
            .take(start, &policy)
            .expect_err("the burst is spent");
        assert_eq!(back, start + Duration::from_millis(200));
        assert_eq!(allowance.take(back, &policy), Ok(()));
        assert!(allowance.take(back, &policy).is_err());
        // A quiet minute refills no more than the burst.
        let later = back + Duration::from_secs(60);
        for _ in 0..10 {
            assert_eq!(allowance.take(later, &policy), Ok(()));
        }
        assert!(allowance.take(later, &policy).is_err());
    }
}
