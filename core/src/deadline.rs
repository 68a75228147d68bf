//! An index of deadlines ordered by time, so time-based work (an executor
//! going offline, an alert's "for" running out) looks only at what is due,
//! never at the whole fleet. One deadline per key; setting it again moves it.

use crate::time::Timestamp;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

#[derive(Debug, Clone)]
pub struct Deadlines<K> {
    by_time: BTreeSet<(Timestamp, K)>,
    at: HashMap<K, Timestamp>,
}

impl<K> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines { by_time: BTreeSet::new(), at: HashMap::new() }
    }
}

impl<K: Ord + Hash + Clone> Deadlines<K> {
    /// `k` is due at `at` (replacing any deadline it had).
    pub fn set(&mut self, k: K, at: Timestamp) {
        if let Some(old) = self.at.insert(k.clone(), at) {
            self.by_time.remove(&(old, k.clone()));
        }
        self.by_time.insert((at, k));
    }

    /// `k` is due at `at` or at its current deadline, whichever comes first.
    pub fn set_earlier(&mut self, k: K, at: Timestamp) {
        if self.at.get(&k).is_none_or(|&old| at < old) {
            self.set(k, at);
        }
    }

    /// `k` has no deadline any more.
    pub fn clear(&mut self, k: &K) {
        if let Some(old) = self.at.remove(k) {
            self.by_time.remove(&(old, k.clone()));
        }
    }

    pub fn get(&self, k: &K) -> Option<Timestamp> {
        self.at.get(k).copied()
    }

    /// The keys due at `now` (deadline at or before it), earliest first,
    /// removed from the index: the caller sets the next one of each.
    pub fn take_due(&mut self, now: Timestamp) -> Vec<K> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.by_time.first() {
            if *at > now {
                break;
            }
            let Some((_, k)) = self.by_time.pop_first() else { break };
            self.at.remove(&k);
            due.push(k);
        }
        due
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Timestamp> {
        self.by_time.first().map(|(at, _)| *at)
    }

    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_due_is_taken_and_a_moved_deadline_counts_once() {
        let mut d = Deadlines::default();
        d.set("a", Timestamp(30));
        d.set("b", Timestamp(10));
        d.set("c", Timestamp(20));
        d.set("a", Timestamp(5)); // moved earlier
        d.set("c", Timestamp(40)); // moved later
        assert_eq!(d.len(), 3);
        assert_eq!(d.next(), Some(Timestamp(5)));
        assert_eq!(d.take_due(Timestamp(9)), vec!["a"]);
        assert_eq!(d.take_due(Timestamp(10)), vec!["b"], "a deadline at now is due");
        assert_eq!(d.take_due(Timestamp(39)), Vec::<&str>::new(), "c's old deadline is gone");
        assert_eq!(d.get(&"c"), Some(Timestamp(40)));
        d.clear(&"c");
        assert!(d.take_due(Timestamp(1_000)).is_empty());
        assert!(d.is_empty());
    }

    #[test]
    fn set_earlier_never_postpones() {
        let mut d = Deadlines::default();
        d.set_earlier(1u32, Timestamp(50));
        d.set_earlier(1, Timestamp(70));
        assert_eq!(d.get(&1), Some(Timestamp(50)));
        d.set_earlier(1, Timestamp(20));
        assert_eq!(d.get(&1), Some(Timestamp(20)));
        assert_eq!(d.len(), 1);
    }

    /// Against the obvious model (a map scanned in full) over a pseudo-random
    /// sequence of operations.
    #[test]
    fn agrees_with_a_full_scan() {
        let mut d = Deadlines::default();
        let mut model: HashMap<u8, Timestamp> = HashMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut now = 0;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = (x % 64) as u8;
            let at = Timestamp(now + (x >> 8) % 100);
            match (x >> 40) % 4 {
                0 => {
                    d.set(k, at);
                    model.insert(k, at);
                }
                1 => {
                    d.set_earlier(k, at);
                    let e = model.entry(k).or_insert(at);
                    *e = (*e).min(at);
                }
                2 => {
                    d.clear(&k);
                    model.remove(&k);
                }
                _ => {
                    now += (x >> 20) % 30;
                    let mut due = d.take_due(Timestamp(now));
                    let mut expected: Vec<u8> = model.iter().filter(|(_, at)| at.0 <= now).map(|(k, _)| *k).collect();
                    model.retain(|_, at| at.0 > now);
                    due.sort();
                    expected.sort();
                    assert_eq!(due, expected);
                }
            }
            assert_eq!(d.len(), model.len());
            assert_eq!(d.next(), model.values().min().copied());
        }
    }
}
