//! "Last seen" of executors and API keys, and the time of nodes' last
//! reports, kept in memory. A heartbeat or a report that changes nothing but
//! that (most of them) writes nothing to the store; the newest values are
//! written in batches at the sweeper's pass, every few seconds (as Nomad's
//! servers keep heartbeat timers). After a crash, an executor's "last seen"
//! may be older by at most that interval, and a key's last use or a node's
//! last unchanged report by about a minute more (see [`LAG`]); nothing a
//! user wrote is lost, and anything that changes meaning (first sync, kind,
//! version, capabilities, channel, key binding, `executor.connected`) is
//! still written before the answer.

use crate::store::model::{Executor, ExecutorRow, KeyUsage, ObservedRow};
use crate::store::{key, Result, Store, EXECUTORS, KEY_USAGE, OBSERVED};
use novacula_core::sync::LockExt;
use novacula_core::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

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
    /// `org/executor` -> last heartbeat, since the sweeper last took them.
    heard: HashMap<String, Timestamp>,
}

/// The newest time (and what goes with it) per key, and the newest time the
/// store has (`None`: not known here).
struct Pending<V>(HashMap<String, (Timestamp, V, Option<Timestamp>)>);

impl<V> Default for Pending<V> {
    fn default() -> Self {
        Pending(HashMap::new())
    }
}

impl<V: Clone> Pending<V> {
    /// Keep `at` (with `v`) unless a newer time is held already; `stored`
    /// is the time the store has, when the caller read it.
    fn set(&mut self, k: String, at: Timestamp, v: V, stored: Option<Timestamp>) {
        let e = self.0.entry(k).or_insert_with(|| (at, v.clone(), stored));
        if at >= e.0 {
            (e.0, e.1) = (at, v);
        }
        e.2 = e.2.max(stored);
    }

    /// [`Pending::set`] with nothing stored known, the key copied only when
    /// new and `v` made only when it differs from the held one (`same`): a
    /// heartbeat renews what is held without allocating.
    fn renew(&mut self, k: &str, at: Timestamp, same: impl Fn(&V) -> bool, v: impl FnOnce() -> V) {
        match self.0.get_mut(k) {
            Some(e) if at >= e.0 => {
                e.0 = at;
                if !same(&e.1) {
                    e.1 = v();
                }
            }
            Some(_) => {}
            None => {
                self.0.insert(k.to_string(), (at, v(), None));
            }
        }
    }

    fn at(&self, k: &str) -> Option<Timestamp> {
        self.0.get(k).map(|e| e.0)
    }

    /// What the store has not had for `lag` or more (any newer time, for a
    /// zero lag).
    fn unstored(&self, lag: Duration) -> Vec<(String, Timestamp, V)> {
        let due = |at: Timestamp, stored: Option<Timestamp>| stored.is_none_or(|s| at > s && at.since(s) >= lag);
        self.0.iter().filter(|(_, e)| due(e.0, e.2)).map(|(k, (at, v, _))| (k.clone(), *at, v.clone())).collect()
    }

    /// The store has `k` as of `at`.
    fn stored(&mut self, k: &str, at: Timestamp) {
        if let Some(e) = self.0.get_mut(k) {
            e.2 = e.2.max(Some(at));
        }
    }
}

impl Liveness {
    /// A heartbeat of executor `name` of `org` with key `key_id`, at `at`.
    pub fn touch(&self, org: &str, name: &str, key_id: &str, at: Timestamp) {
        let k = key(&[org, name]);
        let mut seen = self.inner.locked();
        seen.executors.renew(&k, at, |()| true, || ());
        seen.keys.renew(key_id, at, |by| by == name, || name.to_string());
        match seen.heard.get_mut(&k) {
            Some(heard) => *heard = (*heard).max(at),
            None => {
                seen.heard.insert(k, at);
            }
        }
    }

    /// The executors (`org/name`) heard from here since the last call, each
    /// with its last heartbeat: the sweeper moves their deadlines without a read.
    pub fn take_heard(&self) -> HashMap<String, Timestamp> {
        std::mem::take(&mut self.inner.locked().heard)
    }

    /// A report of node `node` of `org` at `at` that changed nothing else;
    /// the store has the report of `stored`.
    pub fn reported(&self, org: &str, node: &str, at: Timestamp, stored: Timestamp) {
        self.inner.locked().reports.set(key(&[org, node]), at, (), Some(stored));
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

    /// Write what is due (see [`LAG`]), in transactions of at most
    /// [`FLUSH_BATCH`] records (so reports' commits are not held behind one
    /// of 20,000 rows); returns how many records were written. What fails
    /// stays to be written next time.
    pub fn flush(&self, store: &Store) -> Result<usize> {
        self.flush_lagging(store, LAG)
    }

    /// Write everything the store does not have yet (on shutdown).
    pub fn flush_all(&self, store: &Store) -> Result<usize> {
        self.flush_lagging(store, Lag { executors: Duration::ZERO, keys: Duration::ZERO, reports: Duration::ZERO })
    }

    fn flush_lagging(&self, store: &Store, lag: Lag) -> Result<usize> {
        let pending: Vec<Unstored> = {
            let seen = self.inner.locked();
            let execs = seen.executors.unstored(lag.executors).into_iter().map(|(k, at, ())| Unstored::Executor(k, at));
            let keys = seen.keys.unstored(lag.keys).into_iter().map(|(k, at, by)| Unstored::Key(k, at, by));
            let reports = seen.reports.unstored(lag.reports).into_iter().map(|(k, at, ())| Unstored::Report(k, at));
            execs.chain(keys).chain(reports).collect()
        };
        let mut written = 0;
        for batch in pending.chunks(FLUSH_BATCH) {
            written += store.write(|w| write_newer(w, batch))?;
            let mut seen = self.inner.locked();
            for u in batch {
                match u {
                    Unstored::Executor(k, at) => seen.executors.stored(k, *at),
                    Unstored::Key(k, at, _) => seen.keys.stored(k, *at),
                    Unstored::Report(k, at) => seen.reports.stored(k, *at),
                }
            }
        }
        Ok(written)
    }
}

/// Records written per transaction by [`Liveness::flush`]: about 5 ms of
/// the single writer, which reports' group commits wait for (1,000 held them
/// past 50 ms with 10,000 executors).
pub const FLUSH_BATCH: usize = 200;

/// How far behind memory the store may fall, per kind of record.
#[derive(Debug, Clone, Copy)]
pub struct Lag {
    pub executors: Duration,
    pub keys: Duration,
    pub reports: Duration,
}

/// Heartbeats are written at every flush: another replica, and this one
/// after a restart, tell online from the stored time (30 s timeout). A key's
/// "last used" and a node's last unchanged report are shown, never acted on:
/// each is written once a minute (not 10,000 keys and 100,000 reports every
/// few seconds), spread over the flushes as the reports came in.
pub const LAG: Lag = Lag { executors: Duration::ZERO, keys: Duration::from_secs(60), reports: Duration::from_secs(60) };

/// A time held in memory that the store does not have yet.
enum Unstored {
    /// `org/executor`'s last heartbeat.
    Executor(String, Timestamp),
    /// A key's last use, and by which executor.
    Key(String, Timestamp, String),
    /// `org/node`'s last report.
    Report(String, Timestamp),
}

/// Write the times of `batch` the store has older (a row may have changed,
/// deactivated or a new version, since the heartbeat: each is read afresh);
/// how many records were written. Each kind of record is one read and one
/// write of the engine, not one per record (round trips, on PostgreSQL).
fn write_newer(w: &mut crate::store::Write, batch: &[Unstored]) -> Result<usize> {
    fn ids<T>(v: &[(String, T)]) -> Vec<String> {
        v.iter().map(|(k, _)| k.clone()).collect()
    }
    let (mut execs, mut keys, mut reports) = (Vec::new(), Vec::new(), Vec::new());
    for u in batch {
        match u {
            Unstored::Executor(k, at) => execs.push((k.clone(), *at)),
            Unstored::Key(id, at, by) => keys.push((id.clone(), KeyUsage { at: *at, by: by.clone() })),
            Unstored::Report(k, at) => reports.push((k.clone(), *at)),
        }
    }
    let rows: Vec<Option<ExecutorRow>> = w.get_many(EXECUTORS, &ids(&execs))?;
    let execs: Vec<(String, ExecutorRow)> =
        execs.into_iter().zip(rows).filter_map(|((k, at), row)| row.filter(|e| at > e.updated_at).map(|e| (k, ExecutorRow { updated_at: at, ..e }))).collect();
    let stored: Vec<Option<KeyUsage>> = w.get_many(KEY_USAGE, &ids(&keys))?;
    let keys: Vec<(String, KeyUsage)> = keys.into_iter().zip(stored).filter(|((_, u), s)| s.as_ref().is_none_or(|s| u.at > s.at)).map(|(k, _)| k).collect();
    let rows: Vec<Option<ObservedRow>> = w.get_many(OBSERVED, &ids(&reports))?;
    let reports: Vec<(String, ObservedRow)> = reports
        .into_iter()
        .zip(rows)
        .filter_map(|((k, at), row)| row.filter(|o| at > o.reported_at).map(|o| (k, ObservedRow { reported_at: at, ..o })))
        .collect();
    w.put_times(EXECUTORS, &execs)?;
    w.put_many(KEY_USAGE, &keys)?;
    w.put_many(OBSERVED, &reports)?;
    Ok(execs.len() + keys.len() + reports.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_flush_is_written_in_bounded_transactions() {
        let store = Store::in_memory().unwrap();
        let live = Liveness::default();
        let n = FLUSH_BATCH * 2 + 1;
        for i in 0..n {
            // No executor rows exist: only the keys' last use is written.
            live.touch("acme", &format!("edge-{i}"), &format!("key-{i}"), Timestamp(1_000));
        }
        let before = store.commits();
        assert_eq!(live.flush_all(&store).unwrap(), n);
        // n executors (no rows: nothing to write) and n keys, FLUSH_BATCH a transaction
        assert_eq!(store.commits() - before, (2 * n).div_ceil(FLUSH_BATCH) as u64);
        assert_eq!(live.flush(&store).unwrap(), 0, "all marked stored");
        let usage: Option<KeyUsage> = store.read(|r| r.get(KEY_USAGE, &format!("key-{}", n - 1))).unwrap();
        assert_eq!(usage.map(|u| (u.at, u.by)), Some((Timestamp(1_000), format!("edge-{}", n - 1))));
    }

    #[test]
    fn heartbeats_are_written_at_every_flush_and_shown_times_once_they_lag() {
        let store = Store::in_memory().unwrap();
        let live = Liveness::default();
        let usage = || store.read(|r| r.get::<KeyUsage>(KEY_USAGE, "key-1")).unwrap().map(|u| u.at);
        live.touch("acme", "edge-1", "key-1", Timestamp(1_000));
        assert_eq!(live.flush(&store).unwrap(), 1, "a key's use not known to be stored is written");
        let minute = LAG.keys.as_millis() as u64;
        live.touch("acme", "edge-1", "key-1", Timestamp(1_000 + minute - 1));
        live.flush(&store).unwrap();
        assert_eq!(usage(), Some(Timestamp(1_000)), "less than a minute behind: kept in memory");
        live.touch("acme", "edge-1", "key-1", Timestamp(1_000 + minute));
        live.flush(&store).unwrap();
        assert_eq!(usage(), Some(Timestamp(1_000 + minute)), "a minute behind: written");
        live.touch("acme", "edge-1", "key-1", Timestamp(2_000 + minute));
        assert_eq!(live.flush_all(&store).unwrap(), 1, "on shutdown, everything");
        assert_eq!(usage(), Some(Timestamp(2_000 + minute)));
    }
}
