//! Liveness drift shows up without any request: an executor that stops syncing
//! sends nothing. The sweeper re-derives node phases on a timer and records
//! the transitions and `node_down` alerts that silence caused.
//!
//! It looks only where something can have changed. Executors: those due in
//! an index of deadlines (when each goes offline if not heard from; when its
//! `executor_offline` alert's "for" runs out), those heard from here while
//! not known online, and those that changed ([`AppState::executor_changed`],
//! told across replicas). Nodes: of executors whose online state flipped and
//! of executors whose nodes were written (a user's command moves a phase
//! too; [`AppState::take_touched`]). The first pass, after a start or on
//! taking over the lease, looks at every executor and node once. Changes are
//! written in bounded transactions.

use crate::services::alerts::{apply_open, open_key};
use crate::services::events::{self, data, NewEvent};
use crate::services::nodes::{alert_fires, evaluate, executor_online, phase_of};
use crate::state::AppState;
use crate::store::model::{ExecutorRow, NodeRow, ObservedRow};
use crate::store::{key, StoreError, ALERT_SETTINGS, EXECUTORS, NODES, OBSERVED, OPEN_INCIDENTS};
use crate::watch::Judged;
use novacula_core::alerts::{self, AlertSettings, Rule, Subject, SubjectKind};
use novacula_core::deadline::Deadlines;
use novacula_core::{events as ev, NodePhase, Timestamp};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Records read per call when many are looked at (a first pass, a fleet
/// coming back).
const BATCH: usize = 500;

/// Nodes re-derived per write transaction when many change at once (a fleet
/// going offline or coming back): other writers (deploys, reports' group
/// commits) get their turn between batches. Each changed node may take a few
/// reads for its alerts, a round trip each on PostgreSQL.
const WRITE_BATCH: usize = 100;

/// The phase of `row` given its executor (with its last heartbeat) and last report, as of `now`.
fn phase_now(s: &AppState, row: &NodeRow, mut exec: Option<ExecutorRow>, obs: Option<ObservedRow>, now: Timestamp) -> NodePhase {
    if let Some(e) = exec.as_mut() {
        s.liveness.overlay(e);
    }
    phase_of(row, obs.as_ref().map(|o| &o.state), executor_online(exec.as_ref(), now, s.config.heartbeat_timeout))
}

/// Node rows of `keys` (store keys) with the phase each is in now (a node
/// gone or removed: `None`), reading the rows, their executors and reports in
/// one call each (`$r`: a read or a write transaction).
macro_rules! phases_now {
    ($s:expr, $r:expr, $keys:expr, $now:expr) => {{
        let rows: Vec<Option<NodeRow>> = $r.get_many(NODES, $keys)?;
        let mut exec_keys: Vec<String> = rows.iter().flatten().map(|row| key(&[&row.org_id, &row.executor])).collect();
        exec_keys.sort();
        exec_keys.dedup();
        let execs: HashMap<String, ExecutorRow> =
            exec_keys.iter().cloned().zip($r.get_many::<ExecutorRow>(EXECUTORS, &exec_keys)?).filter_map(|(k, e)| Some((k, e?))).collect();
        let observed: Vec<Option<ObservedRow>> = $r.get_many(OBSERVED, $keys)?;
        rows.into_iter()
            .zip(observed)
            .map(|(row, obs)| {
                let row = row.filter(|row| !row.removed)?;
                let exec = execs.get(&key(&[&row.org_id, &row.executor])).cloned();
                let phase = phase_now($s, &row, exec, obs, $now);
                Some((row, phase))
            })
            .collect::<Vec<Option<(NodeRow, NodePhase)>>>()
    }};
}

/// Re-derive the nodes `keys` (store keys); returns how many rows changed.
fn settle(s: &AppState, keys: Vec<String>, now: Timestamp) -> Result<usize, StoreError> {
    // Read first: most passes change nothing and should not take the write lock.
    let stale_keys: Vec<String> = s.store.read(|r| {
        let mut out = Vec::new();
        for chunk in keys.chunks(BATCH) {
            for (k, found) in chunk.iter().zip(phases_now!(s, r, chunk, now)) {
                if found.is_some_and(|(row, phase)| row.last_phase != Some(phase) || row.alert_firing != alert_fires(&row, phase)) {
                    out.push(k.clone());
                }
            }
        }
        Ok::<_, StoreError>(out)
    })?;
    let mut n = 0;
    for batch in stale_keys.chunks(WRITE_BATCH) {
        n += s.store.write(|w| {
            // Re-derive inside the transaction: a report may have landed since the read.
            let mut changed = Vec::new();
            for (k, found) in batch.iter().zip(phases_now!(s, w, batch, now)) {
                let Some((mut row, phase)) = found else { continue };
                if evaluate(w, &mut row, phase, now, "system")? {
                    changed.push((k.clone(), row));
                }
            }
            w.put_many(NODES, &changed)?;
            Ok::<_, StoreError>(changed.len())
        })?;
    }
    Ok(n)
}

/// One pass over all nodes; returns how many rows changed.
pub fn sweep_once(s: &AppState) -> Result<usize, StoreError> {
    let now = s.now();
    let keys = s.store.read(|r| Ok::<_, StoreError>(r.scan::<NodeRow>(NODES, "")?.into_iter().map(|(k, _)| k).collect()))?;
    settle(s, keys, now)
}

/// What the sweeper remembers between passes.
#[derive(Default)]
pub struct Sweeper {
    /// The executors as last looked at; `None` before the first pass.
    fleet: Option<Fleet>,
    /// The rules that need time to pass (`node_stalled`, ...).
    watch: crate::watch::Watch,
    /// Executors read in the last pass.
    looked: usize,
    /// When the next pass looks at every executor ([`FULL_LOOK`]).
    full_look_at: Option<Timestamp>,
}

/// An offline executor (not deactivated) is looked at again at least this
/// often: a change of its organization's alert settings, or a heartbeat
/// through another control plane whose notification was lost, shows by then.
pub const RECHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// Every executor is looked at again this often: one whose change was told
/// by another replica in a notification that was lost (its listener was
/// reconnecting, a publish failed) is seen by then.
pub const FULL_LOOK: std::time::Duration = std::time::Duration::from_secs(300);

/// What the sweeper knows of each executor (`org/name`) between passes. It
/// looks at an executor only when it is due (it goes offline, its
/// `executor_offline` alert's "for" runs out), was heard from here while not
/// known online, or changed (see [`AppState::executor_changed`]): a pass
/// costs what happened since the last one, not the size of the fleet.
struct Fleet {
    /// Online as last looked at.
    online: HashMap<String, bool>,
    /// With an open `executor_offline` incident.
    offline_open: BTreeSet<String>,
    /// When each is next due a look if nothing comes of it first.
    due: Deadlines<String>,
}

/// What looking at some executors found.
#[derive(Default)]
struct Looked {
    /// Online state flipped: their nodes' phases may have moved.
    flipped: Vec<String>,
    /// Went from online to silent (not deactivated): one summary each.
    went_offline: Vec<ExecutorRow>,
    /// Every executor looked at that still exists.
    executors: Vec<String>,
}

impl Sweeper {
    /// Forget what was seen: the next pass looks at every node (after the
    /// lease was lost, another process may have changed anything).
    pub fn reset(&mut self) {
        self.fleet = None;
        self.watch.reset();
    }

    /// How many executors the last pass read: every one on a first pass,
    /// later only those due, changed or back.
    pub fn looked(&self) -> usize {
        self.looked
    }

    /// How many nodes and executors the last pass judged by the rules that need time ([`crate::watch`]).
    pub fn watch_judged(&self) -> usize {
        self.watch.judged()
    }

    /// One pass; returns how many node rows changed.
    pub fn pass(&mut self, s: &AppState) -> Result<usize, StoreError> {
        let now = s.now();
        let touched = s.take_touched();
        let heard = s.liveness.take_heard();
        let Some(fleet) = self.fleet.as_mut() else {
            // The first pass reads every executor and every node, once.
            let mut executors: Vec<(String, ExecutorRow)> = s.store.read(|r| r.scan(EXECUTORS, ""))?;
            for (_, e) in &mut executors {
                s.liveness.overlay(e);
            }
            self.looked = executors.len();
            let mut fleet = Fleet { online: HashMap::with_capacity(executors.len()), offline_open: open_offline_incidents(s)?, due: Deadlines::default() };
            fleet.look(s, executors.into_iter().map(|(k, e)| (k, Some(e))).collect(), now)?;
            self.fleet = Some(fleet);
            self.full_look_at = Some(now.plus(FULL_LOOK));
            return sweep_once(s);
        };
        // Heard here and known online: its deadline moves, with no read.
        let timeout = s.config.heartbeat_timeout;
        let mut look: BTreeSet<String> = touched.clone();
        for (k, at) in heard {
            if fleet.online.get(&k) == Some(&true) {
                if fleet.due.get(&k).is_none_or(|d| at.plus(timeout) > d) {
                    fleet.due.set(k, at.plus(timeout));
                }
            } else {
                look.insert(k);
            }
        }
        look.extend(fleet.due.take_due(now));
        let executors: Vec<(String, Option<ExecutorRow>)> = if self.full_look_at.is_none_or(|at| now >= at) {
            // Every executor, from one scan: one looked for and not found is deleted.
            self.full_look_at = Some(now.plus(FULL_LOOK));
            let mut all: HashMap<String, ExecutorRow> = s.store.read(|r| r.scan(EXECUTORS, ""))?.into_iter().collect();
            look.extend(all.keys().cloned());
            look.into_iter().map(|k| (k.clone(), all.remove(&k))).collect()
        } else {
            let look: Vec<String> = look.into_iter().collect();
            let rows: Vec<Option<ExecutorRow>> = s.store.read(|r| {
                let mut rows = Vec::with_capacity(look.len());
                for chunk in look.chunks(BATCH) {
                    rows.extend(r.get_many::<ExecutorRow>(EXECUTORS, chunk)?);
                }
                Ok::<_, StoreError>(rows)
            })?;
            look.into_iter().zip(rows).collect()
        };
        self.looked = executors.len();
        let looked = fleet.look(s, executors, now)?;
        // Nodes to re-derive: of executors that flipped, and whose nodes were written.
        let mut nodes_of: BTreeSet<String> = touched;
        nodes_of.extend(looked.flipped);
        let keys: Vec<String> = s.store.read(|r| {
            let mut keys = Vec::new();
            for exec in &nodes_of {
                let Some((org, name)) = exec.split_once('/') else { continue };
                keys.extend(r.executor_nodes(org, name)?.into_iter().map(|(node, _)| key(&[org, &node])));
            }
            Ok::<_, StoreError>(keys)
        })?;
        let moved: Vec<Judged> = keys.iter().cloned().map(Judged::Node).chain(looked.executors.into_iter().map(Judged::Executor)).collect();
        let changed = settle(s, keys, now)?;
        summarise(s, &looked.went_offline, now)?;
        self.watch.pass(s, moved)?;
        Ok(changed)
    }
}

/// Executors (`org/name`) with an open `executor_offline` incident.
fn open_offline_incidents(s: &AppState) -> Result<BTreeSet<String>, StoreError> {
    s.store.read(|r| {
        let rows: Vec<(String, String)> = r.scan(OPEN_INCIDENTS, "")?;
        let offline = rows.into_iter().filter_map(|(k, _)| {
            let mut parts = k.splitn(4, '/');
            let (org, rule, kind, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            (rule == Rule::ExecutorOffline.as_str() && kind == SubjectKind::Executor.as_str()).then(|| key(&[org, name]))
        });
        Ok::<_, StoreError>(offline.collect())
    })
}

impl Fleet {
    /// Look at `executors` (their rows as stored, `None`: deleted): record
    /// whether each is online, open or resolve its `executor_offline`
    /// incident, and set when it is next due a look.
    fn look(&mut self, s: &AppState, executors: Vec<(String, Option<ExecutorRow>)>, now: Timestamp) -> Result<Looked, StoreError> {
        let timeout = s.config.heartbeat_timeout;
        let mut looked = Looked::default();
        let mut settings: HashMap<String, AlertSettings> = HashMap::new();
        let mut changes = Vec::new();
        for (k, row) in executors {
            let Some(mut e) = row else {
                // Deleted: its incidents were resolved with it.
                if self.online.remove(&k) == Some(true) {
                    looked.flipped.push(k.clone());
                }
                self.offline_open.remove(&k);
                self.due.clear(&k);
                continue;
            };
            s.liveness.overlay(&mut e);
            looked.executors.push(k.clone());
            let on = executor_online(Some(&e), now, timeout);
            let before = self.online.insert(k.clone(), on);
            if before != Some(on) {
                looked.flipped.push(k.clone());
                if before == Some(true) && !e.deactivated {
                    looked.went_offline.push(e.clone());
                }
            }
            let (firing, next) = if e.deactivated {
                (None, None) // reactivating it is a change: looked at then
            } else if on {
                (None, Some(e.updated_at.plus(timeout)))
            } else {
                if !settings.contains_key(&e.org_id) {
                    let found: Option<AlertSettings> = s.store.read(|r| r.get(ALERT_SETTINGS, &e.org_id))?;
                    settings.insert(e.org_id.clone(), found.unwrap_or_default());
                }
                let org = &settings[&e.org_id];
                let firing = alerts::executor_offline(org, now.since(e.updated_at), timeout, false);
                let recheck = now.plus(RECHECK);
                let fires_at = alerts::executor_offline_at(org, e.updated_at, timeout).filter(|&at| at > now);
                (firing, Some(fires_at.map_or(recheck, |at| at.min(recheck))))
            };
            match next {
                Some(at) => self.due.set(k.clone(), at),
                None => self.due.clear(&k),
            }
            if firing.is_some() != self.offline_open.contains(&k) {
                changes.push((k, e.org_id, e.name, firing));
            }
        }
        for batch in changes.chunks(WRITE_BATCH) {
            s.store.write(|w| {
                let subjects: Vec<(&String, Subject)> = batch.iter().map(|(_, org, name, _)| (org, Subject::executor(name))).collect();
                let keys: Vec<String> = subjects.iter().map(|(org, subject)| open_key(org, Rule::ExecutorOffline, subject)).collect();
                let open: Vec<Option<String>> = w.get_many(OPEN_INCIDENTS, &keys)?;
                for (((org, subject), open), (_, _, _, firing)) in subjects.iter().zip(open).zip(batch) {
                    apply_open(w, org, Rule::ExecutorOffline, subject, firing.clone(), open, now)?;
                }
                Ok::<_, StoreError>(())
            })?;
            for (k, _, _, firing) in batch {
                if firing.is_some() {
                    self.offline_open.insert(k.clone());
                } else {
                    self.offline_open.remove(k);
                }
            }
        }
        Ok(looked)
    }
}

/// One event per executor found silent (its nodes' own events name each node).
fn summarise(s: &AppState, silent: &[ExecutorRow], now: Timestamp) -> Result<(), StoreError> {
    for batch in silent.chunks(BATCH) {
        // Counted before the write (a read each): the writer is held for writes only.
        let counts: Vec<usize> = s.store.read(|r| batch.iter().map(|e| Ok(r.executor_nodes(&e.org_id, &e.name)?.len())).collect::<Result<_, StoreError>>())?;
        s.store.write(|w| {
            for (e, nodes) in batch.iter().zip(counts) {
                let silent_secs = now.0.saturating_sub(e.updated_at.0) / 1000;
                events::record(
                    w,
                    &e.org_id,
                    now,
                    NewEvent {
                        kind: ev::EXECUTOR_DISCONNECTED,
                        node: None,
                        executor: Some(&e.name),
                        actor: "system",
                        data: data([("nodes", nodes.to_string()), ("silentSecs", silent_secs.to_string())]),
                    },
                )?;
            }
            Ok::<_, StoreError>(())
        })?;
    }
    Ok(())
}

/// Write the last heartbeats held in memory; then, on the one control plane
/// holding the lease, sweep. Whether this one holds it.
fn pass(s: &AppState, sweeper: &mut Sweeper) -> bool {
    // A newer release migrated the database (a rolling upgrade): this one
    // learns it here, even with no request coming, and steps aside.
    // (Logged once, by the store.)
    if let Err(crate::store::StoreError::Outdated { .. }) = s.store.read(|_| Ok::<_, crate::store::StoreError>(())) {
        sweeper.reset();
        let _ = s.store.hold_lease(); // gives it up
        return false;
    }
    let t = std::time::Instant::now();
    match s.liveness.flush(&s.store) {
        Ok(n) => tracing::debug!(written = n, took_ms = t.elapsed().as_millis() as u64, "last heartbeats and reports written"),
        Err(e) => tracing::error!(error = %e, "writing executors' last heartbeats failed; will retry"),
    }
    // One control plane at a time sweeps (several may share a database).
    match s.store.hold_lease() {
        Ok(true) => {}
        Ok(false) => {
            sweeper.reset();
            // What the sweeper would have looked at: the lease holder's own pass covers it.
            s.take_touched();
            s.liveness.take_heard();
            return false;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot tell whether this control plane holds the lease; not sweeping");
            sweeper.reset();
            return false;
        }
    }
    let t = std::time::Instant::now();
    match sweeper.pass(s) {
        Ok(n) => tracing::debug!(changed = n, executors_read = sweeper.looked(), took_ms = t.elapsed().as_millis() as u64, "swept node health"),
        Err(e) => {
            tracing::error!(error = %e, "sweep failed; the next pass looks at every node");
            sweeper.reset();
        }
    }
    true
}

pub async fn run(s: Arc<AppState>) {
    // The first pass one interval after start, as every later one: nothing
    // is due sooner (the offline timeout is several intervals), and a test
    // that sweeps by hand is then never raced by a late first pass.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + s.config.sweep_interval, s.config.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_prune = tokio::time::Instant::now();
    let mut next_announce = tokio::time::Instant::now();
    let mut sweeper = Some(Sweeper::default());
    loop {
        tick.tick().await;
        // Store work, off the async workers (the sweeper's memory goes along).
        let mut sw = sweeper.take().unwrap_or_default();
        let (sw, leader) = s
            .blocking(move |s| {
                let leader = pass(s, &mut sw);
                (sw, leader)
            })
            .await;
        sweeper = Some(sw);
        // On every replica: executors that changed here, for the lease holder's sweeper.
        s.blocking(AppState::publish_executor_changes).await;
        // On every replica: its viewers' log watches, for the replica an executor syncs with.
        if tokio::time::Instant::now() >= next_announce {
            next_announce = tokio::time::Instant::now() + crate::logs::ANNOUNCE_EVERY;
            s.blocking(AppState::publish_log_watches).await;
        }
        // Retention too runs on the lease holder alone: two replicas pruning
        // from the same count would remove twice as many events.
        if leader && tokio::time::Instant::now() >= next_prune {
            next_prune = tokio::time::Instant::now() + s.config.prune_interval;
            // A large backlog is many write transactions: keep them off the async workers.
            let now = s.now();
            if let Err(e) = s.blocking(move |s| crate::services::events::prune(s, now)).await {
                tracing::error!(error = %e, "event retention failed");
            }
            if let Err(e) = s.blocking(move |s| crate::services::audit::prune(s, now)).await {
                tracing::error!(error = %e, "audit retention failed");
            }
            match s.blocking(move |s| crate::services::users::prune_sessions(s, now)).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "expired sessions removed"),
                Err(e) => tracing::error!(error = %e, "removing expired sessions failed"),
            }
        }
    }
}
