//! "Last seen" of executors and API keys, and the time of nodes' last
//! reports, kept in memory. A heartbeat or a report that changes nothing but
//! that (most of them) writes nothing to the store; the
//! newest values are written in one transaction every few seconds (as
//! Nomad's servers keep heartbeat timers). After a crash, "last seen" may be
//! older by at most that interval; nothing a user wrote is lost, and anything
//! that changes meaning (first sync, kind, version, capabilities, channel,
//! key binding, `executor.connected`) is still written before the answer.

use crate::store::model::{Executor, ExecutorRow, KeyUsage, ObservedRow};
use crate::store::{key, Result, Store, EXECUTORS, KEY_USAGE, OBSERVED};
use novacula_core::sync::LockExt;
use novacula_core::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;

/// A record holding an executor's last heartbeat, as stored.
pub trait LastSeen {
    fn org_and_name(&self) -> (&str, &str);
    fn last_seen(&mut self) -> &mut Timestamp;
}

impl LastSeen for Executor {
    fn org_and_name(&self) -> (&str, &str) {
        (&self.org_id, &self.name)
    }
    fn last_seen(&mut self) -> &mut Timestamp {
        &mut self.updated_at
    }
}

impl LastSeen for ExecutorRow {
    fn org_and_name(&self) -> (&str, &str) {
        (&self.org_id, &self.name)
    }
    fn last_seen(&mut self) -> &mut Timestamp {
        &mut self.updated_at
    }
}

#[derive(Default)]
pub struct Liveness {
    inner: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// `org/executor` -> last heartbeat.
    executors: Pending<()>,
    /// Key id -> last use, and by which executor.
    keys: Pending<String>,
    /// `org/node` -> last report that changed nothing.
    reports: Pending<()>,
}

/// The newest time (and what goes with it) per key, and whether the store
/// has it yet.
struct Pending<V>(HashMap<String, (Timestamp, V, bool)>);

impl<V> Default for Pending<V> {
    fn default() -> Self {
        Pending(HashMap::new())
    }
}

impl<V: Clone> Pending<V> {
    /// Keep `at` (with `v`) unless a newer time is held already.
    fn set(&mut self, k: String, at: Timestamp, v: V) {
        let e = self.0.entry(k).or_insert_with(|| (at, v.clone(), false));
        if at >= e.0 {
            *e = (at, v, false);
        }
    }

    fn at(&self, k: &str) -> Option<Timestamp> {
        self.0.get(k).map(|e| e.0)
    }

    /// What the store does not have yet.
    fn unstored(&self) -> Vec<(String, Timestamp, V)> {
        self.0.iter().filter(|(_, e)| !e.2).map(|(k, (at, v, _))| (k.clone(), *at, v.clone())).collect()
    }

    /// The store has `k` as of `at`: marked so, unless something newer came in meanwhile.
    fn stored(&mut self, k: &str, at: Timestamp) {
        if let Some(e) = self.0.get_mut(k).filter(|e| e.0 == at) {
            e.2 = true;
        }
    }
}

impl Liveness {
    /// A heartbeat of executor `name` of `org` with key `key_id`, at `at`.
    pub fn touch(&self, org: &str, name: &str, key_id: &str, at: Timestamp) {
        let mut seen = self.inner.locked();
        seen.executors.set(key(&[org, name]), at, ());
        seen.keys.set(key_id.to_string(), at, name.to_string());
    }

    /// A report of node `node` of `org` at `at` that changed nothing else.
    pub fn reported(&self, org: &str, node: &str, at: Timestamp) {
        self.inner.locked().reports.set(key(&[org, node]), at, ());
    }

    /// `o` (node `org/node`'s last report) with its time: the store's, or a newer one held here.
    pub fn overlay_report(&self, node_key: &str, o: &mut ObservedRow) {
        if let Some(at) = self.inner.locked().reports.at(node_key) {
            o.reported_at = o.reported_at.max(at);
        }
    }

    /// `e` with its last heartbeat: the store's, or a newer one held here.
    pub fn overlay(&self, e: &mut impl LastSeen) {
        let (org, name) = e.org_and_name();
        if let Some(at) = self.inner.locked().executors.at(&key(&[org, name])) {
            let seen = e.last_seen();
            *seen = (*seen).max(at);
        }
    }

    /// The last use of key `key_id`: the store's, or a newer one held here.
    pub fn key_usage(&self, key_id: &str, stored: Option<KeyUsage>) -> Option<KeyUsage> {
        let held = self.inner.locked().keys.0.get(key_id).map(|(at, by, _)| KeyUsage { at: *at, by: by.clone() });
        match (stored, held) {
            (Some(s), Some(h)) => Some(if h.at > s.at { h } else { s }),
            (s, h) => s.or(h),
        }
    }

    /// Write what the store does not have yet, in one transaction; returns
    /// how many records were written. On failure it stays to be written next time.
    pub fn flush(&self, store: &Store) -> Result<usize> {
        let (execs, keys, reports) = {
            let seen = self.inner.locked();
            (seen.executors.unstored(), seen.keys.unstored(), seen.reports.unstored())
        };
        if execs.is_empty() && keys.is_empty() && reports.is_empty() {
            return Ok(0);
        }
        let written = store.write(|w| {
            let mut n = 0;
            for (k, at, ()) in &execs {
                // Read afresh: the row may have changed (deactivated, a new version) since the heartbeat.
                if let Some(mut e) = w.get::<ExecutorRow>(EXECUTORS, k)? {
                    if *at > e.updated_at {
                        e.updated_at = *at;
                        w.put(EXECUTORS, k, &e)?;
                        n += 1;
                    }
                }
            }
            for (id, at, by) in &keys {
                let stored: Option<KeyUsage> = w.get(KEY_USAGE, id)?;
                if stored.is_none_or(|s| *at > s.at) {
                    w.put(KEY_USAGE, id, &KeyUsage { at: *at, by: by.clone() })?;
                    n += 1;
                }
            }
            for (k, at, ()) in &reports {
                if let Some(mut o) = w.get::<ObservedRow>(OBSERVED, k)? {
                    if *at > o.reported_at {
                        o.reported_at = *at;
                        w.put(OBSERVED, k, &o)?;
                        n += 1;
                    }
                }
            }
            Ok::<_, crate::store::StoreError>(n)
        })?;
        let mut seen = self.inner.locked();
        for (k, at, ()) in execs {
            seen.executors.stored(&k, at);
        }
        for (k, at, _) in keys {
            seen.keys.stored(&k, at);
        }
        for (k, at, ()) in reports {
            seen.reports.stored(&k, at);
        }
        Ok(written)
    }
}
