//! "Last seen" of executors and API keys, and the time of nodes' last
//! reports, kept in memory. A heartbeat or a report that changes nothing but
//! that (most of them) writes nothing to the store; the
//! newest values are written in one transaction every few seconds (as
//! Nomad's servers keep heartbeat timers). After a crash, "last seen" may be
//! older by at most that interval; nothing a user wrote is lost, and anything
//! that changes meaning (first sync, kind, version, capabilities, channel,
//! key binding, `executor.connected`) is still written before the answer.

use crate::store::model::{Executor, KeyUsage, ObservedRow};
use crate::store::{key, Result, Store, EXECUTORS, KEY_USAGE, OBSERVED};
use novacula_core::sync::LockExt;
use novacula_core::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct Liveness {
    inner: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// `org/executor` -> last heartbeat, and whether the store has it yet.
    executors: HashMap<String, (Timestamp, bool)>,
    /// Key id -> last use, and whether the store has it yet.
    keys: HashMap<String, (KeyUsage, bool)>,
    /// `org/node` -> last report that changed nothing, and whether the store has it yet.
    reports: HashMap<String, (Timestamp, bool)>,
}

impl Liveness {
    /// A heartbeat of executor `name` of `org` with key `key_id`, at `at`.
    pub fn touch(&self, org: &str, name: &str, key_id: &str, at: Timestamp) {
        let mut seen = self.inner.locked();
        let e = seen.executors.entry(key(&[org, name])).or_insert((at, false));
        if at >= e.0 {
            *e = (at, false);
        }
        let k = seen.keys.entry(key_id.to_string()).or_insert_with(|| (KeyUsage { at, by: name.to_string() }, false));
        if at >= k.0.at {
            *k = (KeyUsage { at, by: name.to_string() }, false);
        }
    }

    /// A report of node `node` of `org` at `at` that changed nothing else.
    pub fn reported(&self, org: &str, node: &str, at: Timestamp) {
        let mut seen = self.inner.locked();
        let r = seen.reports.entry(key(&[org, node])).or_insert((at, false));
        if at >= r.0 {
            *r = (at, false);
        }
    }

    /// `o` (node `org/node`'s last report) with its time: the store's, or a newer one held here.
    pub fn overlay_report(&self, node_key: &str, o: &mut ObservedRow) {
        if let Some((at, _)) = self.inner.locked().reports.get(node_key) {
            o.reported_at = o.reported_at.max(*at);
        }
    }

    /// `e` with its last heartbeat: the store's, or a newer one held here.
    pub fn overlay(&self, e: &mut Executor) {
        if let Some((at, _)) = self.inner.locked().executors.get(&key(&[&e.org_id, &e.name])) {
            e.updated_at = e.updated_at.max(*at);
        }
    }

    /// The last use of key `key_id`: the store's, or a newer one held here.
    pub fn key_usage(&self, key_id: &str, stored: Option<KeyUsage>) -> Option<KeyUsage> {
        let held = self.inner.locked().keys.get(key_id).map(|(u, _)| u.clone());
        match (stored, held) {
            (Some(s), Some(h)) => Some(if h.at > s.at { h } else { s }),
            (s, h) => s.or(h),
        }
    }

    /// Write what the store does not have yet, in one transaction; returns
    /// how many records were written. On failure it stays to be written next time.
    pub fn flush(&self, store: &Store) -> Result<usize> {
        let execs = {
            let seen = self.inner.locked();
            let execs: Vec<(String, Timestamp)> = seen.executors.iter().filter(|(_, (_, stored))| !stored).map(|(k, (at, _))| (k.clone(), *at)).collect();
            let keys: Vec<(String, KeyUsage)> = seen.keys.iter().filter(|(_, (_, stored))| !stored).map(|(k, (u, _))| (k.clone(), u.clone())).collect();
            let reports: Vec<(String, Timestamp)> = seen.reports.iter().filter(|(_, (_, stored))| !stored).map(|(k, (at, _))| (k.clone(), *at)).collect();
            (execs, keys, reports)
        };
        let (execs, keys, reports) = (execs.0, execs.1, execs.2);
        if execs.is_empty() && keys.is_empty() && reports.is_empty() {
            return Ok(0);
        }
        let written = store.write(|w| {
            let mut n = 0;
            for (k, at) in &execs {
                // Read afresh: the row may have changed (deactivated, a new version) since the heartbeat.
                if let Some(mut e) = w.get::<Executor>(EXECUTORS, k)? {
                    if *at > e.updated_at {
                        e.updated_at = *at;
                        w.put(EXECUTORS, k, &e)?;
                        n += 1;
                    }
                }
            }
            for (id, usage) in &keys {
                let stored: Option<KeyUsage> = w.get(KEY_USAGE, id)?;
                if stored.is_none_or(|s| usage.at > s.at) {
                    w.put(KEY_USAGE, id, usage)?;
                    n += 1;
                }
            }
            for (k, at) in &reports {
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
        // Marked stored only if nothing newer came in meanwhile.
        let mut seen = self.inner.locked();
        for (k, at) in execs {
            if let Some(e) = seen.executors.get_mut(&k).filter(|e| e.0 == at) {
                e.1 = true;
            }
        }
        for (id, usage) in keys {
            if let Some(k) = seen.keys.get_mut(&id).filter(|k| k.0.at == usage.at) {
                k.1 = true;
            }
        }
        for (k, at) in reports {
            if let Some(r) = seen.reports.get_mut(&k).filter(|r| r.0 == at) {
                r.1 = true;
            }
        }
        Ok(written)
    }
}
