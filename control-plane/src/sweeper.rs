//! Liveness drift shows up without any request: an executor that stops syncing
//! sends nothing. The sweeper re-derives every node's phase on a timer and
//! records transitions and `node_down` alerts that silence caused.

use crate::services::nodes::{alert_fires, evaluate, executor_online, phase_of};
use crate::state::AppState;
use crate::store::model::{Executor, NodeRow, ObservedRow};
use crate::store::{key, StoreError, EXECUTORS, NODES, OBSERVED};
use novacula_core::{NodePhase, Timestamp};
use std::sync::Arc;

/// The phase of `row` given its executor (with its last heartbeat) and last report, as of `now`.
fn phase_now(s: &AppState, row: &NodeRow, mut exec: Option<Executor>, obs: Option<ObservedRow>, now: Timestamp) -> NodePhase {
    if let Some(e) = exec.as_mut() {
        s.liveness.overlay(e);
    }
    phase_of(row, obs.as_ref().map(|o| &o.state), executor_online(exec.as_ref(), now, s.config.heartbeat_timeout))
}

/// One pass over all nodes; returns how many rows changed.
pub fn sweep_once(s: &AppState) -> Result<usize, StoreError> {
    let now = s.now();
    // Read first: most passes change nothing and should not take the write lock.
    let stale: Vec<String> = s.store.read(|r| {
        let rows: Vec<(String, NodeRow)> = r.scan(NODES, "")?;
        let mut out = Vec::new();
        for (k, row) in rows.into_iter().filter(|(_, r)| !r.removed) {
            let exec = r.get(EXECUTORS, &key(&[&row.org_id, &row.executor]))?;
            let phase = phase_now(s, &row, exec, r.get(OBSERVED, &k)?, now);
            if row.last_phase != Some(phase) || row.alert_firing != alert_fires(&row, phase) {
                out.push(k);
            }
        }
        Ok::<_, StoreError>(out)
    })?;
    if stale.is_empty() {
        return Ok(0);
    }
    s.store.write(|w| {
        let mut n = 0;
        for k in stale {
            // Re-derive inside the transaction: a report may have landed since the read.
            let Some(mut row) = w.get::<NodeRow>(NODES, &k)? else { continue };
            let exec = w.get(EXECUTORS, &key(&[&row.org_id, &row.executor]))?;
            let phase = phase_now(s, &row, exec, w.get(OBSERVED, &k)?, now);
            if evaluate(w, &mut row, phase, now, "system")? {
                w.put(NODES, &k, &row)?;
                n += 1;
            }
        }
        Ok(n)
    })
}

pub async fn run(s: Arc<AppState>) {
    let mut tick = tokio::time::interval(s.config.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_prune = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        if let Err(e) = s.liveness.flush(&s.store) {
            tracing::error!(error = %e, "writing executors' last heartbeats failed; will retry");
        }
        // One control plane at a time sweeps (several may share a database).
        match s.store.hold_lease() {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell whether this control plane holds the lease; not sweeping");
                continue;
            }
        }
        match sweep_once(&s) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(changed = n, "sweep updated node health"),
            Err(e) => tracing::error!(error = %e, "sweep failed"),
        }
        if tokio::time::Instant::now() >= next_prune {
            next_prune = tokio::time::Instant::now() + s.config.prune_interval;
            // A large backlog is many write transactions: keep them off the async workers.
            // The clock is read here: a blocking thread may not see it (the simulator's does not).
            let (state, now) = (s.clone(), s.now());
            match tokio::task::spawn_blocking(move || crate::services::events::prune(&state, now)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "event retention failed"),
                Err(e) => tracing::error!(error = %e, "event retention task failed"),
            }
        }
    }
}
