//! Password guessing: after `failures_max` wrong passwords for one key (a
//! username, or a client address) within `window`, sign-ins for that key are
//! refused until the oldest of those failures is `window` old. Kept here,
//! pure, rather than in a rate-limit crate: the rule is a few lines, tested
//! with a hand-driven clock, and shared by every replica's memory alike.
//!
//! Memory is bounded: at most `tracked_max` keys; when full, the key whose
//! last failure is oldest is forgotten first (a spray of new names evicts
//! other sprayed names, not the victim a slow attacker keeps locked).

use crate::time::Timestamp;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

/// Per username: five wrong passwords in 15 minutes.
pub const USER_LIMIT: Limit = Limit { failures_max: 5, window: Duration::from_secs(15 * 60), tracked_max: 10_000 };
/// Per client address: enough for an office behind one NAT, not for a spray.
pub const ADDRESS_LIMIT: Limit = Limit { failures_max: 20, window: Duration::from_secs(15 * 60), tracked_max: 10_000 };

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub failures_max: usize,
    pub window: Duration,
    pub tracked_max: usize,
}

#[derive(Debug)]
pub struct LoginThrottle {
    limit: Limit,
    failures: HashMap<String, VecDeque<Timestamp>>,
    /// `(last failure, key)`, to find the stalest key in O(log n).
    by_last: BTreeSet<(Timestamp, String)>,
}

impl LoginThrottle {
    pub fn new(limit: Limit) -> LoginThrottle {
        LoginThrottle { limit, failures: HashMap::new(), by_last: BTreeSet::new() }
    }

    /// `Err(wait)` while `key` is locked out.
    pub fn check(&self, key: &str, now: Timestamp) -> Result<(), Duration> {
        let Some(recent) = self.failures.get(key) else { return Ok(()) };
        let in_window: Vec<&Timestamp> = recent.iter().filter(|t| now.since(**t) < self.limit.window).collect();
        if in_window.len() < self.limit.failures_max {
            return Ok(());
        }
        let oldest = *in_window[in_window.len() - self.limit.failures_max];
        Err(self.limit.window.saturating_sub(now.since(oldest)))
    }

    pub fn failed(&mut self, key: &str, now: Timestamp) {
        if let Some(recent) = self.failures.get(key) {
            if let Some(last) = recent.back() {
                self.by_last.remove(&(*last, key.to_string()));
            }
        } else {
            while self.failures.len() >= self.limit.tracked_max {
                let Some((_, stalest)) = self.by_last.pop_first() else { break };
                self.failures.remove(&stalest);
            }
        }
        let recent = self.failures.entry(key.to_string()).or_default();
        recent.push_back(now);
        while recent.len() > self.limit.failures_max {
            recent.pop_front();
        }
        self.by_last.insert((now, key.to_string()));
    }

    pub fn succeeded(&mut self, key: &str) {
        if let Some(recent) = self.failures.remove(key) {
            if let Some(last) = recent.back() {
                self.by_last.remove(&(*last, key.to_string()));
            }
        }
    }

    pub fn tracked(&self) -> usize {
        self.failures.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_700_000_000_000);

    fn at(secs: u64) -> Timestamp {
        T0.plus(Duration::from_secs(secs))
    }

    #[test]
    fn locks_after_five_failures_and_reopens_when_the_oldest_ages_out() {
        let mut t = LoginThrottle::new(USER_LIMIT);
        for i in 0..4 {
            t.failed("alice", at(i * 60));
            assert_eq!(t.check("alice", at(i * 60)), Ok(()), "failure {} alone does not lock", i + 1);
        }
        t.failed("alice", at(240));
        // the five failures span 0..240 s: locked until the first is 15 min old
        assert_eq!(t.check("alice", at(300)), Err(Duration::from_secs(600)));
        assert_eq!(t.check("bob", at(300)), Ok(()), "other users are not affected");
        assert_eq!(t.check("alice", at(900)), Ok(()), "one failure has aged out");
        t.failed("alice", at(900));
        assert_eq!(t.check("alice", at(900)), Err(Duration::from_secs(60)), "five within the window again");
    }

    #[test]
    fn success_clears_the_count() {
        let mut t = LoginThrottle::new(USER_LIMIT);
        for i in 0..4 {
            t.failed("alice", at(i));
        }
        t.succeeded("alice");
        t.failed("alice", at(10));
        assert_eq!(t.check("alice", at(10)), Ok(()));
        assert_eq!(t.tracked(), 1);
    }

    #[test]
    fn a_spray_of_names_stays_bounded_and_evicts_the_stalest_first() {
        let limit = Limit { failures_max: 5, window: Duration::from_secs(900), tracked_max: 100 };
        let mut t = LoginThrottle::new(limit);
        // the victim is being guessed slowly, but keeps getting new failures
        for i in 0..5 {
            t.failed("victim", at(i));
        }
        for i in 0..1000 {
            t.failed(&format!("spray{i}"), at(10 + i / 10));
            if i % 50 == 0 {
                t.failed("victim", at(10 + i / 10));
            }
        }
        assert!(t.tracked() <= 100);
        assert!(t.check("victim", at(120)).is_err(), "the victim stays locked under a spray");
        assert_eq!(t.by_last.len(), t.tracked());
    }
}
