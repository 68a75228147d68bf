//! Which records kept in memory (`crate::known`) a commit made stale.
//!
//! A commit that writes a table of [`MEANING`](super::MEANING) moves the
//! store's epoch. Rows of API keys and executors go stale one by one (a
//! fleet's first syncs and returns each write one executor: dropping every
//! held row at each of them had every call of a busy fleet read the store);
//! anything else of `MEANING` (upgrades, releases, organizations) makes every
//! held row stale. A row read under an epoch (taken before the read) is good
//! while neither its key nor everything went stale at a later epoch.

use super::{Table, API_KEYS, EXECUTORS};
use std::collections::{BTreeSet, HashMap};

/// What a transaction changed that [`crate::known`] may hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Moved {
    #[default]
    Nothing,
    /// These rows (table, key) only.
    Rows(BTreeSet<(Table, String)>),
    /// Anything held.
    All,
}

impl Moved {
    /// `t`'s row `k` was written (`None`: a range of it).
    pub fn wrote(&mut self, t: Table, k: Option<&str>) {
        if !super::MEANING.contains(&t) || *self == Moved::All {
            return;
        }
        match k.filter(|_| t == API_KEYS || t == EXECUTORS) {
            Some(k) => match self {
                Moved::Rows(rows) => drop(rows.insert((t, k.to_string()))),
                _ => *self = Moved::Rows(BTreeSet::from([(t, k.to_string())])),
            },
            None => *self = Moved::All,
        }
    }

    /// The message telling other processes on the database (a notification's
    /// payload holds under 8,000 bytes: more rows than fit say "everything").
    pub fn message(&self) -> Option<String> {
        let rows = match self {
            Moved::Nothing => return None,
            Moved::All => return Some(PREFIX.to_string()),
            Moved::Rows(rows) => rows,
        };
        let mut m = String::from(PREFIX);
        for (t, k) in rows {
            m.push_str(&format!("\n{}\t{k}", t.name()));
            if m.len() > MESSAGE_MAX {
                return Some(PREFIX.to_string());
            }
        }
        Some(m)
    }

    /// What another process's [`Self::message`] says moved (`None`: not such a message).
    pub fn parse(message: &str) -> Option<Moved> {
        let rest = message.strip_prefix(PREFIX)?;
        if rest.is_empty() {
            return Some(Moved::All);
        }
        let mut rows = BTreeSet::new();
        for line in rest.strip_prefix('\n')?.split('\n') {
            match line.split_once('\t') {
                Some((t, k)) if t == API_KEYS.name() => rows.insert((API_KEYS, k.to_string())),
                Some((t, k)) if t == EXECUTORS.name() => rows.insert((EXECUTORS, k.to_string())),
                // From a newer version, or garbled: the safe reading.
                _ => return Some(Moved::All),
            };
        }
        Some(Moved::Rows(rows))
    }
}

const PREFIX: &str = "epoch";
const MESSAGE_MAX: usize = 7_500;
/// Rows remembered as stale before they are summed up as "everything, as of now".
const ROWS_MAX: usize = 100_000;

/// The epoch at which each row, and everything, last went stale.
#[derive(Default)]
pub struct Stale {
    epoch: u64,
    all: u64,
    rows: HashMap<Table, HashMap<String, u64>>,
    /// How many rows `rows` holds.
    held: usize,
}

impl Stale {
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Move the epoch for `moved` (nothing moves for [`Moved::Nothing`]).
    pub fn moved(&mut self, moved: Moved) {
        let rows = match moved {
            Moved::Nothing => return,
            Moved::All => None,
            Moved::Rows(rows) => Some(rows),
        };
        self.epoch += 1;
        match rows {
            Some(rows) if self.held + rows.len() <= ROWS_MAX => {
                for (t, k) in rows {
                    self.held += usize::from(self.rows.entry(t).or_default().insert(k, self.epoch).is_none());
                }
            }
            _ => {
                self.all = self.epoch;
                self.rows.clear();
                self.held = 0;
            }
        }
    }

    /// Whether `t`'s row `k`, read under `epoch`, is still good.
    pub fn fresh(&self, t: Table, k: &str, epoch: u64) -> bool {
        epoch >= self.all && self.rows.get(&t).and_then(|rows| rows.get(k)).is_none_or(|&at| epoch >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{NODES, UPGRADES};
    use super::*;

    #[test]
    fn a_row_goes_stale_alone_and_everything_with_a_wider_change() {
        let mut s = Stale::default();
        let e0 = s.epoch();
        let mut m = Moved::default();
        m.wrote(NODES, Some("o/n"));
        assert_eq!(m, Moved::Nothing, "not a table of meaning");
        m.wrote(EXECUTORS, Some("o/a"));
        s.moved(m);
        assert!(s.epoch() > e0);
        assert!(!s.fresh(EXECUTORS, "o/a", e0), "read before it was written");
        assert!(s.fresh(EXECUTORS, "o/a", s.epoch()), "read after");
        assert!(s.fresh(EXECUTORS, "o/b", e0), "another executor stays good");
        assert!(s.fresh(API_KEYS, "o/a", e0), "another table's row of the same key stays good");

        let e1 = s.epoch();
        let mut m = Moved::default();
        m.wrote(EXECUTORS, Some("o/b"));
        m.wrote(UPGRADES, Some("o/stable/agent"));
        assert_eq!(m, Moved::All);
        s.moved(m);
        assert!(!s.fresh(EXECUTORS, "o/c", e1) && !s.fresh(API_KEYS, "k", e1), "everything read before it");
        assert!(s.fresh(EXECUTORS, "o/a", s.epoch()));
        let e2 = s.epoch();
        s.moved(Moved::Nothing);
        assert_eq!(s.epoch(), e2);
    }

    #[test]
    fn what_moved_is_told_to_other_processes_as_it_is_or_as_everything() {
        let mut m = Moved::default();
        assert_eq!(m.message(), None);
        m.wrote(EXECUTORS, Some("o/a"));
        m.wrote(API_KEYS, Some("k1"));
        assert_eq!(Moved::parse(&m.message().unwrap()), Some(m.clone()));
        for i in 0..1_000 {
            m.wrote(EXECUTORS, Some(&format!("o/executor-{i}")));
        }
        assert_eq!(m.message().as_deref(), Some(PREFIX), "too many rows for one notification: everything");
        assert_eq!(Moved::parse(PREFIX), Some(Moved::All));
        assert_eq!(Moved::parse("epoch\nupgrades\tx"), Some(Moved::All), "a table it does not know: everything");
        assert_eq!(Moved::parse("o/e/7"), None, "not about the epoch");
        assert_eq!(Moved::parse("epochs"), None);
    }
}
