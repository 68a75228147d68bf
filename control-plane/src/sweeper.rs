//! Liveness drift shows up without any request: an executor that stops syncing
//! sends nothing. The sweeper re-derives node phases on a timer and records
//! the transitions and `node_down` alerts that silence caused.
//!
//! It looks only where something can have changed: the nodes of executors
//! whose online state flipped since the last pass (a read of the executors,
//! not of every node) and of executors whose nodes were written (a user's
//! command moves a phase too; [`AppState::take_touched`]). The first pass,
//! after a start or on taking over the lease, looks at every node once.
//! Changes are written in bounded transactions.

use crate::services::events::{self, data, NewEvent};
use crate::services::nodes::{alert_fires, evaluate, executor_online, phase_of};
use crate::state::AppState;
use crate::store::model::{ExecutorRow, NodeRow, ObservedRow};
use crate::store::{key, StoreError, ALERT_SETTINGS, EXECUTORS, NODES, OBSERVED, OPEN_INCIDENTS};
use novacula_core::alerts::{self, AlertSettings, Rule, Subject, SubjectKind};
use novacula_core::{events as ev, NodePhase, Timestamp};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Nodes written per transaction when many change at once (a fleet going
/// offline): readers and other writers get their turn between batches.
const BATCH: usize = 500;

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
    for batch in stale_keys.chunks(BATCH) {
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
    /// Each executor's online state at the last pass (`org/name`); `None`
    /// before the first pass.
    online: Option<HashMap<String, bool>>,
    /// Executors (`org/name`) with an open `executor_offline` incident; `None`
    /// until read from the store.
    offline_open: Option<BTreeSet<String>>,
    /// The rules that need time to pass (`node_stalled`, ...).
    watch: crate::watch::Watch,
}

impl Sweeper {
    /// Forget what was seen: the next pass looks at every node (after the
    /// lease was lost, another process may have changed anything).
    pub fn reset(&mut self) {
        self.online = None;
        self.offline_open = None;
        self.watch.reset();
    }

    /// One pass; returns how many node rows changed.
    pub fn pass(&mut self, s: &AppState) -> Result<usize, StoreError> {
        let now = s.now();
        let touched = s.take_touched();
        let mut executors: Vec<(String, ExecutorRow)> = s.store.read(|r| r.scan(EXECUTORS, ""))?;
        for (_, e) in &mut executors {
            s.liveness.overlay(e);
        }
        self.executor_offline(s, &executors, now)?;
        let mut online = HashMap::with_capacity(executors.len());
        let mut look: BTreeSet<String> = touched;
        let mut went_offline = Vec::new();
        for (k, e) in executors {
            let on = executor_online(Some(&e), now, s.config.heartbeat_timeout);
            let before = self.online.as_ref().and_then(|m| m.get(&k).copied());
            if before != Some(on) {
                look.insert(k.clone());
                if before == Some(true) && !e.deactivated {
                    went_offline.push(e);
                }
            }
            online.insert(k, on);
        }
        let first = self.online.is_none();
        self.online = Some(online);
        if first {
            return sweep_once(s);
        }
        let keys: Vec<String> = s.store.read(|r| {
            let mut keys = Vec::new();
            for exec in &look {
                let Some((org, name)) = exec.split_once('/') else { continue };
                keys.extend(r.executor_nodes(org, name)?.into_iter().map(|(node, _)| key(&[org, &node])));
            }
            Ok::<_, StoreError>(keys)
        })?;
        let changed = settle(s, keys, now)?;
        summarise(s, &went_offline, now)?;
        self.watch.pass(s)?;
        Ok(changed)
    }
}

impl Sweeper {
    /// Open `executor_offline` incidents for executors silent past the
    /// heartbeat timeout and their organization's "for", resolve those heard
    /// from again (or deactivated). Settings are read only for silent ones.
    fn executor_offline(&mut self, s: &AppState, executors: &[(String, ExecutorRow)], now: Timestamp) -> Result<(), StoreError> {
        let mut open = match self.offline_open.take() {
            Some(open) => open,
            None => s.store.read(|r| {
                let rows: Vec<(String, String)> = r.scan(OPEN_INCIDENTS, "")?;
                let offline = rows.into_iter().filter_map(|(k, _)| {
                    let mut parts = k.splitn(4, '/');
                    let (org, rule, kind, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
                    (rule == Rule::ExecutorOffline.as_str() && kind == SubjectKind::Executor.as_str()).then(|| key(&[org, name]))
                });
                Ok::<_, StoreError>(offline.collect::<BTreeSet<String>>())
            })?,
        };
        let mut settings: HashMap<String, AlertSettings> = HashMap::new();
        let mut changes = Vec::new();
        for (k, e) in executors {
            let silent = now.since(e.updated_at);
            let firing = if silent < s.config.heartbeat_timeout {
                None
            } else {
                if !settings.contains_key(&e.org_id) {
                    let found: Option<AlertSettings> = s.store.read(|r| r.get(ALERT_SETTINGS, &e.org_id))?;
                    settings.insert(e.org_id.clone(), found.unwrap_or_default());
                }
                alerts::executor_offline(&settings[&e.org_id], silent, s.config.heartbeat_timeout, e.deactivated)
            };
            if firing.is_some() != open.contains(k) {
                changes.push((k.clone(), e.org_id.clone(), e.name.clone(), firing));
            }
        }
        // Executors deleted since: their incidents were resolved with them.
        open.retain(|k| executors.iter().any(|(ek, _)| ek == k));
        for batch in changes.chunks(BATCH) {
            s.store.write(|w| {
                for (_, org, name, firing) in batch {
                    crate::services::alerts::apply(w, org, Rule::ExecutorOffline, &Subject::executor(name), firing.clone(), now)?;
                }
                Ok::<_, StoreError>(())
            })?;
            for (k, _, _, firing) in batch {
                if firing.is_some() {
                    open.insert(k.clone());
                } else {
                    open.remove(k);
                }
            }
        }
        self.offline_open = Some(open);
        Ok(())
    }
}

/// One event per executor found silent (its nodes' own events name each node).
fn summarise(s: &AppState, silent: &[ExecutorRow], now: Timestamp) -> Result<(), StoreError> {
    for batch in silent.chunks(BATCH) {
        s.store.write(|w| {
            for e in batch {
                let nodes = w.executor_nodes(&e.org_id, &e.name)?.len();
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
        Ok(n) => tracing::debug!(changed = n, took_ms = t.elapsed().as_millis() as u64, "swept node health"),
        Err(e) => {
            tracing::error!(error = %e, "sweep failed; the next pass looks at every node");
            sweeper.reset();
        }
    }
    true
}

pub async fn run(s: Arc<AppState>) {
    let mut tick = tokio::time::interval(s.config.sweep_interval);
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
