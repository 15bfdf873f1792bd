//! Login throttling: wrong passwords slow down whoever makes them, never the owner of an account
//! who types the right one from an address that has not failed.
//!
//! The rules, per [`LoginPolicy`] (the figures are the defaults):
//!
//! - **Pair delay.** An (address, account) pair with `n` recent failures has its next password
//!   check held until `2^(n-1)` s (at most `max_delay`, 60 s) after its last failure. A pair
//!   with no failures is checked at once, however many others have failed: one person's typos
//!   never hold back another behind the same NAT.
//! - **Account delay.** An account with `m` recent failures from anywhere holds the checks of
//!   every pair that has failed for it until `2^(m-1)` s (at most 60 s) after the account's last
//!   failure, and lets only one such check run at a time: guessers spread over many addresses are
//!   slowed together. Pairs with no failures are never held by it.
//! - **One at a time.** A pair that has failed has at most one check under way; a second waits for
//!   the first's answer.
//! - **Spraying cap.** An address that has failed for `spray_accounts` (20) distinct accounts
//!   within `memory` is refused, unchecked, for any further account until the oldest of those
//!   failures is forgotten.
//! - Failures are forgotten `memory` (15 min) after they happened; a right password clears its
//!   pair (not the account, which may still be under attack).
//!
//! Held checks are held, not refused: the core keeps the password job and starts it at the time
//! [`LoginThrottle::gate`] names (the shell ticks the core at its `next_deadline`).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::input::ConnId;

/// The throttle's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginPolicy {
    /// The longest a check is held.
    pub max_delay: Duration,
    /// How long a failure is remembered.
    pub memory: Duration,
    /// Distinct accounts one address may fail for within `memory` before further accounts are
    /// refused.
    pub spray_accounts: usize,
}

impl Default for LoginPolicy {
    fn default() -> LoginPolicy {
        LoginPolicy {
            max_delay: Duration::from_secs(60),
            memory: Duration::from_secs(15 * 60),
            spray_accounts: 20,
        }
    }
}

impl LoginPolicy {
    /// The hold after the `n`-th failure: 2^(n-1) s, at most `max_delay` (nothing before any).
    pub fn delay(&self, failures: usize) -> Duration {
        match failures {
            0 => Duration::ZERO,
            n => {
                let shift = u32::try_from(n - 1).unwrap_or(u32::MAX).min(20);
                Duration::from_secs(1 << shift).min(self.max_delay)
            }
        }
    }
}

/// What to do with a login's password check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Check it now.
    Go,
    /// Hold it until this time (`None`: until the check under way for its pair or account
    /// finishes), then ask again.
    Hold(Option<Instant>),
    /// Refuse it unchecked; a login to a further account is checked again after this long.
    Refuse(Duration),
}

/// Recent failures of one key: when, oldest first.
#[derive(Debug, Default)]
struct Failures {
    times: VecDeque<Instant>,
}

impl Failures {
    fn record(&mut self, now: Instant) {
        self.times.push_back(now);
    }

    fn forget_before(&mut self, cutoff: Option<Instant>) {
        while let (Some(&oldest), Some(cutoff)) = (self.times.front(), cutoff) {
            if oldest > cutoff {
                break;
            }
            self.times.pop_front();
        }
    }

    fn count(&self) -> usize {
        self.times.len()
    }

    fn last(&self) -> Option<Instant> {
        self.times.back().copied()
    }
}

/// A check under way: for which pair, and whether that pair had failed when it started.
#[derive(Debug)]
struct Running {
    peer: IpAddr,
    account: String,
    failed_pair: bool,
}

/// The failures the login rules need, per pair, per account and per address.
#[derive(Debug)]
pub struct LoginThrottle {
    policy: LoginPolicy,
    pairs: HashMap<(IpAddr, String), Failures>,
    accounts: HashMap<String, Failures>,
    running: HashMap<ConnId, Running>,
}

impl LoginThrottle {
    /// A throttle with nothing remembered.
    pub fn new(policy: LoginPolicy) -> LoginThrottle {
        LoginThrottle {
            policy,
            pairs: HashMap::new(),
            accounts: HashMap::new(),
            running: HashMap::new(),
        }
    }

    /// What to do now with a check of `account`'s password from `peer`.
    pub fn gate(&self, peer: IpAddr, account: &str, now: Instant) -> Gate {
        let account = account.to_lowercase();
        let pair_failures = self.pair_failures(peer, &account, now);
        if pair_failures == 0 {
            return self.spray_gate(peer, now);
        }
        let running = |same: &dyn Fn(&Running) -> bool| self.running.values().any(same);
        if running(&|r| r.peer == peer && r.account == account)
            || running(&|r| r.failed_pair && r.account == account)
        {
            return Gate::Hold(None);
        }
        let pair_last = self
            .pairs
            .get(&(peer, account.clone()))
            .and_then(Failures::last);
        let mut ready = pair_last.map(|last| last + self.policy.delay(pair_failures));
        if let Some(failures) = self.accounts.get(&account) {
            let recent = self.recent(failures, now);
            if let (Some(last), true) = (failures.last(), recent > 0) {
                let account_ready = last + self.policy.delay(recent);
                ready = ready.max(Some(account_ready));
            }
        }
        match ready {
            Some(ready) if ready > now => Gate::Hold(Some(ready)),
            _ => Gate::Go,
        }
    }

    /// A check for `conn` (of `account` from `peer`) starts now.
    pub fn started(&mut self, conn: ConnId, peer: IpAddr, account: &str, now: Instant) {
        let account = account.to_lowercase();
        let failed_pair = self.pair_failures(peer, &account, now) > 0;
        self.running.insert(
            conn,
            Running {
                peer,
                account,
                failed_pair,
            },
        );
    }

    /// The check for `conn` ended: `wrong` if the password was wrong (recorded as a failure of
    /// its pair, account and address), else right (clearing its pair) or not done at all.
    pub fn finished(&mut self, conn: ConnId, outcome: Finished, now: Instant) {
        let Some(run) = self.running.remove(&conn) else {
            return;
        };
        let pair = (run.peer, run.account.clone());
        match outcome {
            Finished::Wrong => {
                self.pairs.entry(pair).or_default().record(now);
                self.accounts.entry(run.account).or_default().record(now);
            }
            Finished::Right => {
                self.pairs.remove(&pair);
            }
            Finished::Undone => {}
        }
    }

    /// Forgets failures older than the policy's memory, so the maps do not grow without end.
    pub fn prune(&mut self, now: Instant) {
        let cutoff = now.checked_sub(self.policy.memory);
        for failures in self.pairs.values_mut().chain(self.accounts.values_mut()) {
            failures.forget_before(cutoff);
        }
        self.pairs.retain(|_, f| f.count() > 0);
        self.accounts.retain(|_, f| f.count() > 0);
    }

    /// Whether nothing is remembered and no check is under way.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty() && self.accounts.is_empty() && self.running.is_empty()
    }

    fn recent(&self, failures: &Failures, now: Instant) -> usize {
        let cutoff = now.checked_sub(self.policy.memory);
        failures
            .times
            .iter()
            .filter(|&&t| cutoff.is_none_or(|cutoff| t > cutoff))
            .count()
    }

    fn pair_failures(&self, peer: IpAddr, account: &str, now: Instant) -> usize {
        self.pairs
            .get(&(peer, account.to_owned()))
            .map_or(0, |failures| self.recent(failures, now))
    }

    /// A clean pair is checked at once unless its address sprays: it failed for too many
    /// distinct accounts lately.
    fn spray_gate(&self, peer: IpAddr, now: Instant) -> Gate {
        let mut lasts: Vec<Instant> = self
            .pairs
            .iter()
            .filter(|((addr, _), failures)| *addr == peer && self.recent(failures, now) > 0)
            .filter_map(|(_, failures)| failures.last())
            .collect();
        if lasts.len() < self.policy.spray_accounts {
            return Gate::Go;
        }
        // Free again once all but spray_accounts - 1 of them are forgotten.
        lasts.sort_unstable();
        let freeing = lasts[lasts.len() - self.policy.spray_accounts];
        let wait = (freeing + self.policy.memory).saturating_duration_since(now);
        Gate::Refuse(wait.max(Duration::from_secs(1)))
    }
}

/// How a check ended, for [`LoginThrottle::finished`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    /// The password matched.
    Right,
    /// The password did not match.
    Wrong,
    /// No answer (the worker was busy, or the connection left).
    Undone,
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// One wrong password for `account` from `peer` on connection `conn`, at `at`.
    fn fail(t: &mut LoginThrottle, conn: u64, peer: IpAddr, account: &str, at: Instant) {
        t.started(ConnId(conn), peer, account, at);
        t.finished(ConnId(conn), Finished::Wrong, at);
    }

    #[test]
    fn the_delay_doubles_from_one_second_up_to_the_cap() {
        let policy = LoginPolicy::default();
        let delays: Vec<u64> = (0..9).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(delays, [0, 1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(policy.delay(usize::MAX), secs(60));
    }

    #[test]
    fn others_failures_from_the_same_address_never_hold_a_clean_pair() {
        let start = Instant::now();
        let mut t = LoginThrottle::new(LoginPolicy::default());
        fail(&mut t, 1, A, "alice", start);
        fail(&mut t, 2, A, "bob", start);
        fail(&mut t, 3, A, "bob", start);
        for _ in 0..10 {
            fail(&mut t, 4, B, "admin", start);
        }
        assert_eq!(
            t.gate(A, "admin", start),
            Gate::Go,
            "admin never failed from A"
        );
        assert_eq!(t.gate(A, "alice", start), Gate::Hold(Some(start + secs(1))));
        assert_eq!(t.gate(A, "BOB", start), Gate::Hold(Some(start + secs(2))));
        assert_eq!(t.gate(A, "bob", start + secs(2)), Gate::Go);
    }

    #[test]
    fn a_pairs_hold_grows_with_its_failures_and_a_right_password_clears_it() {
        let start = Instant::now();
        let mut t = LoginThrottle::new(LoginPolicy::default());
        let mut at = start;
        for n in 1..=8u32 {
            fail(&mut t, 1, A, "carol", at);
            let wait = LoginPolicy::default().delay(n as usize);
            assert_eq!(t.gate(A, "carol", at), Gate::Hold(Some(at + wait)), "{n}");
            at += wait;
            assert_eq!(t.gate(A, "carol", at), Gate::Go, "{n}");
        }
        t.started(ConnId(2), A, "carol", at);
        t.finished(ConnId(2), Finished::Right, at);
        fail(&mut t, 3, A, "carol", at);
        // The pair starts over at one second; the account still remembers all nine failures.
        assert_eq!(t.gate(A, "carol", at), Gate::Hold(Some(at + secs(60))));
    }

    #[test]
    fn an_account_under_attack_holds_every_pair_that_failed_for_it_but_no_clean_pair() {
        let start = Instant::now();
        let mut t = LoginThrottle::new(LoginPolicy::default());
        // One guess each from many addresses: every pair has one failure, the account six.
        for n in 0..6u8 {
            fail(&mut t, 1, IpAddr::from([10, 1, 0, n]), "admin", start);
        }
        let guesser = IpAddr::from([10, 1, 0, 0]);
        assert_eq!(
            t.gate(guesser, "admin", start + secs(1)),
            Gate::Hold(Some(start + secs(32))),
            "the account's 2^5 s, not the pair's 1 s"
        );
        assert_eq!(
            t.gate(A, "admin", start),
            Gate::Go,
            "the owner from a clean address"
        );
        // One held check at a time for the account: the others wait for its answer.
        let other = IpAddr::from([10, 1, 0, 1]);
        t.started(ConnId(7), guesser, "admin", start + secs(32));
        assert_eq!(t.gate(other, "admin", start + secs(32)), Gate::Hold(None));
        assert_eq!(t.gate(A, "admin", start + secs(32)), Gate::Go);
        t.finished(ConnId(7), Finished::Wrong, start + secs(32));
        assert_eq!(
            t.gate(other, "admin", start + secs(32)),
            Gate::Hold(Some(start + secs(92)))
        );
    }

    #[test]
    fn a_failed_pair_has_one_check_at_a_time_and_a_clean_one_is_not_serialised() {
        let start = Instant::now();
        let mut t = LoginThrottle::new(LoginPolicy::default());
        t.started(ConnId(1), A, "dave", start);
        assert_eq!(
            t.gate(A, "dave", start),
            Gate::Go,
            "clean: checked in parallel"
        );
        t.finished(ConnId(1), Finished::Wrong, start);
        t.started(ConnId(2), A, "dave", start + secs(1));
        assert_eq!(t.gate(A, "dave", start + secs(5)), Gate::Hold(None));
        t.finished(ConnId(2), Finished::Undone, start + secs(5));
        assert_eq!(t.gate(A, "dave", start + secs(5)), Gate::Go);
    }

    #[test]
    fn an_address_that_fails_for_many_accounts_is_refused_further_ones_until_it_forgets() {
        let start = Instant::now();
        let policy = LoginPolicy::default();
        let mut t = LoginThrottle::new(policy.clone());
        for n in 0..policy.spray_accounts {
            let at = start + secs(n as u64);
            assert_eq!(t.gate(A, &format!("user{n}"), at), Gate::Go, "{n}");
            fail(&mut t, 1, A, &format!("user{n}"), at);
        }
        let later = start + secs(100);
        assert_eq!(
            t.gate(A, "fresh", later),
            Gate::Refuse(policy.memory - secs(100))
        );
        assert_eq!(t.gate(B, "fresh", later), Gate::Go, "another address");
        assert!(matches!(
            t.gate(A, "user3", later),
            Gate::Go | Gate::Hold(_)
        ));
        let forgotten = start + policy.memory + secs(1);
        assert_eq!(t.gate(A, "fresh", forgotten), Gate::Go, "user0 forgotten");
        t.prune(start + policy.memory + secs(100));
        assert!(t.is_empty());
    }
}
