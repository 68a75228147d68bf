//! What an executor's calls need from the store (its API key; its
//! executor's row and the upgrade offered to it), kept in memory, so a
//! heartbeat that changes nothing reads nothing: no store thread, no
//! PostgreSQL round trip.
//!
//! An entry is good only under the [`Store::epoch`](crate::store::Store::epoch)
//! it was read under: a commit that writes keys, executors, upgrades or
//! organizations moves the epoch (here before its caller goes on; in the
//! other control planes on the database as soon as they are told) and
//! everything held is dropped. An entry is also dropped after [`TTL`], should
//! a notification be lost. Only a yes is taken from here: a call that finds
//! nothing, or something that does not fit, reads the store.

use crate::store::model::{ApiKey, ExecutorRow, UpgradeRow};
use novacula_core::sync::LockExt;
use novacula_core::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The longest anything is kept, whatever the epoch says.
pub const TTL: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Known {
    keys: Mutex<Held<ApiKey>>,
    executors: Mutex<Held<(ExecutorRow, Option<UpgradeRow>)>>,
}

/// Rows read under `epoch`, each with when it was read.
struct Held<T> {
    epoch: u64,
    rows: HashMap<String, (T, Timestamp)>,
}

impl<T> Default for Held<T> {
    fn default() -> Self {
        Held { epoch: 0, rows: HashMap::new() }
    }
}

impl<T: Clone> Held<T> {
    fn get(&mut self, k: &str, epoch: u64, now: Timestamp) -> Option<T> {
        if epoch != self.epoch {
            return None;
        }
        self.rows.get(k).filter(|(_, at)| now.since(*at) < TTL).map(|(v, _)| v.clone())
    }

    fn put(&mut self, k: String, v: T, epoch: u64, now: Timestamp) {
        if epoch > self.epoch {
            // A newer epoch: what was held is stale.
            self.rows.clear();
            self.epoch = epoch;
        }
        if epoch == self.epoch {
            self.rows.insert(k, (v, now));
        }
    }
}

impl Known {
    /// API key `id`, if read under `epoch` less than [`TTL`] ago.
    pub fn key(&self, id: &str, epoch: u64, now: Timestamp) -> Option<ApiKey> {
        self.keys.locked().get(id, epoch, now)
    }

    /// Keep `key`, read under `epoch` (taken before the read).
    pub fn keep_key(&self, key: ApiKey, epoch: u64, now: Timestamp) {
        self.keys.locked().put(key.id.clone(), key, epoch, now);
    }

    /// Executor `org/name`'s row and upgrade offer, if read under `epoch`
    /// less than [`TTL`] ago. Its "last seen" is as read: overlay it.
    pub fn executor(&self, k: &str, epoch: u64, now: Timestamp) -> Option<(ExecutorRow, Option<UpgradeRow>)> {
        self.executors.locked().get(k, epoch, now)
    }

    /// Keep executor `k`'s row and upgrade offer, read under `epoch` (taken before the read).
    pub fn keep_executor(&self, k: String, row: ExecutorRow, upgrade: Option<UpgradeRow>, epoch: u64, now: Timestamp) {
        self.executors.locked().put(k, (row, upgrade), epoch, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_good_under_its_epoch_and_for_its_ttl_only() {
        let mut held: Held<u32> = Held::default();
        let t = Timestamp(1_000_000);
        held.put("a".into(), 1, 3, t);
        assert_eq!(held.get("a", 3, t.plus(TTL - Duration::from_millis(1))), Some(1));
        assert_eq!(held.get("a", 3, t.plus(TTL)), None, "too old");
        assert_eq!(held.get("a", 4, t), None, "the epoch moved");
        held.put("b".into(), 2, 2, t);
        assert_eq!(held.get("b", 2, t), None, "read under an older epoch: not kept");
        held.put("b".into(), 2, 4, t);
        assert_eq!((held.get("a", 4, t), held.get("b", 4, t)), (None, Some(2)), "a newer epoch drops the rest");
    }
}
