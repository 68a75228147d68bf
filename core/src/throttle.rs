//! Password guessing: after `MAX_FAILURES` wrong passwords for one username
//! within `WINDOW`, sign-ins as that user are refused until the oldest of
//! those failures is `WINDOW` old. Per username, so guesses spread over many
//! addresses count together.

use crate::time::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Usernames tracked at most; beyond it, stale ones are dropped first.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: HashMap<String, VecDeque<Timestamp>>,
}

impl LoginThrottle {
    /// `Err(wait)` while `username` is locked out.
    pub fn check(&self, username: &str, now: Timestamp) -> Result<(), Duration> {
        let Some(recent) = self.failures.get(username) else { return Ok(()) };
        let in_window: Vec<&Timestamp> = recent.iter().filter(|t| now.since(**t) < WINDOW).collect();
        if in_window.len() < MAX_FAILURES {
            return Ok(());
        }
        let oldest = *in_window[in_window.len() - MAX_FAILURES];
        Err(WINDOW.saturating_sub(now.since(oldest)))
    }

    pub fn failed(&mut self, username: &str, now: Timestamp) {
        if self.failures.len() >= MAX_TRACKED && !self.failures.contains_key(username) {
            self.failures.retain(|_, ts| ts.back().is_some_and(|t| now.since(*t) < WINDOW));
            if self.failures.len() >= MAX_TRACKED {
                return; // under a spray of names, forget the newest rather than grow without bound
            }
        }
        let recent = self.failures.entry(username.to_string()).or_default();
        recent.push_back(now);
        while recent.len() > MAX_FAILURES {
            recent.pop_front();
        }
    }

    pub fn succeeded(&mut self, username: &str) {
        self.failures.remove(username);
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
        let mut t = LoginThrottle::default();
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
        let mut t = LoginThrottle::default();
        for i in 0..4 {
            t.failed("alice", at(i));
        }
        t.succeeded("alice");
        t.failed("alice", at(10));
        assert_eq!(t.check("alice", at(10)), Ok(()));
    }

    #[test]
    fn a_spray_of_names_stays_bounded() {
        let mut t = LoginThrottle::default();
        for i in 0..(MAX_TRACKED + 50) {
            t.failed(&format!("user{i}"), at(0));
        }
        assert!(t.failures.len() <= MAX_TRACKED);
        // once those are stale, new names are tracked again
        t.failed("late", at(WINDOW.as_secs() + 1));
        assert!(t.failures.contains_key("late"));
    }
}
