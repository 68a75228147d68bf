//! What an executor's calls need from the store (its API key; its
//! executor's row and the upgrade offered to it), kept in memory, so a
//! heartbeat that changes nothing reads nothing: no store thread, no
//! PostgreSQL round trip.
//!
//! An entry is kept with the [`Store::epoch`] it was read under, and is good
//! while [`Store::fresh`] says so: a commit that writes it (here before its
//! caller goes on; in the other control planes on the database as soon as
//! they are told), or writes upgrades or organizations, makes it stale. An
//! entry is also dropped after [`TTL`], should a notification be lost. Only
//! a yes is taken from here: a call that finds nothing, or something that
//! does not fit, reads the store.

use crate::store::model::{ApiKey, ExecutorRow, UpgradeRow};
use crate::store::{Store, Table, API_KEYS, EXECUTORS};
use novacula_core::sync::LockExt;
use novacula_core::ObservedNodeState;
use novacula_core::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The longest anything is kept, whatever the epoch says.
pub const TTL: Duration = Duration::from_secs(60);

pub struct Known {
    keys: Mutex<Held<ApiKey>>,
    executors: Mutex<Held<(ExecutorRow, Option<UpgradeRow>)>>,
    /// Per node (`org/node`), a fingerprint of the observed state this
    /// process last wrote or found stored: a report that differs from it
    /// certainly changes something, and goes to its write without first
    /// reading whether it does. A node whose head moves (most reports) costs
    /// one read fewer; an equal fingerprint proves nothing (another replica
    /// may have written since), so that report reads as before.
    reports: Mutex<Reports>,
}

/// Fingerprints by node, each with when it was kept; those not renewed
/// within [`REPORTS_KEPT`] (nodes gone or moved) are dropped now and then.
#[derive(Default)]
struct Reports {
    held: HashMap<String, (u64, Timestamp)>,
    sweep_at: usize,
}

const REPORTS_KEPT: Duration = Duration::from_secs(600);

/// Rows of `table`, each with when and under which epoch it was read.
struct Held<T> {
    table: Table,
    rows: HashMap<String, (T, Timestamp, u64)>,
    /// When to drop the rows past their TTL (so rows of executors gone stay no longer).
    sweep_at: usize,
}

impl<T: Clone> Held<T> {
    fn new(table: Table) -> Self {
        Held { table, rows: HashMap::new(), sweep_at: SWEEP_MIN }
    }

    fn get(&self, store: &Store, k: &str, now: Timestamp) -> Option<T> {
        let (v, at, epoch) = self.rows.get(k)?;
        (now.since(*at) < TTL && store.fresh(self.table, k, *epoch)).then(|| v.clone())
    }

    fn put(&mut self, k: String, v: T, epoch: u64, now: Timestamp) {
        self.rows.insert(k, (v, now, epoch));
        sweep(&mut self.rows, &mut self.sweep_at, |(_, at, _)| now.since(*at) < TTL);
    }
}

/// Keep only the rows `keep` says, once `rows` has grown to `sweep_at`
/// (then twice what is left): rows of what is gone are dropped now and
/// then, at a cost spread over the insertions.
fn sweep<V>(rows: &mut HashMap<String, V>, sweep_at: &mut usize, keep: impl Fn(&V) -> bool) {
    if rows.len() >= *sweep_at {
        rows.retain(|_, v| keep(v));
        *sweep_at = (2 * rows.len()).max(SWEEP_MIN);
    }
}

const SWEEP_MIN: usize = 1024;

impl Default for Known {
    fn default() -> Self {
        Known { keys: Mutex::new(Held::new(API_KEYS)), executors: Mutex::new(Held::new(EXECUTORS)), reports: Default::default() }
    }
}

impl Known {
    /// API key `id`, if read less than [`TTL`] ago and still fresh in `store`.
    pub fn key(&self, store: &Store, id: &str, now: Timestamp) -> Option<ApiKey> {
        self.keys.locked().get(store, id, now)
    }

    /// Keep `key`, read under `epoch` (taken before the read).
    pub fn keep_key(&self, key: ApiKey, epoch: u64, now: Timestamp) {
        self.keys.locked().put(key.id.clone(), key, epoch, now);
    }

    /// Executor `org/name`'s row and upgrade offer, if read less than
    /// [`TTL`] ago and still fresh in `store`. Its "last seen" is as read: overlay it.
    pub fn executor(&self, store: &Store, k: &str, now: Timestamp) -> Option<(ExecutorRow, Option<UpgradeRow>)> {
        self.executors.locked().get(store, k, now)
    }

    /// Keep executor `k`'s row and upgrade offer, read under `epoch` (taken before the read).
    pub fn keep_executor(&self, k: String, row: ExecutorRow, upgrade: Option<UpgradeRow>, epoch: u64, now: Timestamp) {
        self.executors.locked().put(k, (row, upgrade), epoch, now);
    }
}

impl Known {
    /// Whether any of the states reported, each as its node's key
    /// (`org/node`) and [`fingerprint`], differs from what was last written
    /// or found for that node here (`false` when not known).
    pub fn report_changes(&self, reported: &[(String, u64)]) -> bool {
        let reports = self.reports.locked();
        reported.iter().any(|(k, print)| reports.held.get(k).is_some_and(|(held, _)| held != print))
    }

    /// These states (node key and [`fingerprint`]) are what the store has now.
    pub fn keep_reports<'a>(&self, reported: impl IntoIterator<Item = &'a (String, u64)>, now: Timestamp) {
        let Reports { held, sweep_at } = &mut *self.reports.locked();
        for (k, print) in reported {
            held.insert(k.clone(), (*print, now));
        }
        sweep(held, sweep_at, |(_, at)| now.since(*at) < REPORTS_KEPT);
    }
}

/// A report's state as a number: equal states, equal numbers (a collision
/// only costs a report the read it would have had anyway).
pub fn fingerprint(o: &ObservedNodeState) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    // Fixed keys: the same state, the same fingerprint, all process long.
    BuildHasherDefault::<DefaultHasher>::default().hash_one(postcard::to_allocvec(o).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::key as store_key;

    #[test]
    fn a_row_is_good_while_no_commit_wrote_it_and_for_its_ttl_only() {
        let store = Store::in_memory().unwrap();
        let mut held: Held<u32> = Held::new(EXECUTORS);
        let t = Timestamp(1_000_000);
        let e0 = store.epoch();
        held.put("o/a".into(), 1, e0, t);
        held.put("o/b".into(), 2, e0, t);
        assert_eq!(held.get(&store, "o/a", t.plus(TTL - Duration::from_millis(1))), Some(1));
        assert_eq!(held.get(&store, "o/a", t.plus(TTL)), None, "too old");
        store.write(|w| w.put(EXECUTORS, "o/a", &1u8)).unwrap();
        assert_eq!(held.get(&store, "o/a", t), None, "written since it was read");
        assert_eq!(held.get(&store, "o/b", t), Some(2), "another executor's row stays good");
        held.put("o/a".into(), 3, store.epoch(), t);
        assert_eq!(held.get(&store, "o/a", t), Some(3), "read again after the write");
        store.write(|w| w.put(crate::store::UPGRADES, "o/stable/agent", &1u8)).unwrap();
        assert_eq!((held.get(&store, "o/a", t), held.get(&store, "o/b", t)), (None, None), "an upgrade offer: every executor's row");
    }

    #[test]
    fn a_report_changes_something_only_when_it_differs_from_what_is_known() {
        let known = Known::default();
        let state = |org: &str, node: &str, revision: u64| {
            let o = ObservedNodeState { node: node.into(), revision: novacula_core::Revision(revision), processes: vec![], removed: false, disk: None };
            (store_key(&[org, node]), fingerprint(&o))
        };
        assert!(!known.report_changes(&[state("o", "a", 1)]), "nothing known: not certain");
        known.keep_reports(&[state("o", "a", 1), state("o", "b", 1)], Timestamp(1_000));
        assert!(!known.report_changes(&[state("o", "a", 1), state("o", "b", 1)]), "the same: not certain");
        assert!(known.report_changes(&[state("o", "a", 1), state("o", "b", 2)]), "one differs");
        assert!(!known.report_changes(&[state("p", "a", 2)]), "another organization's node");
    }
}
