//! Liveness drift shows up without any request: an executor that stops syncing
//! sends nothing. The sweeper re-derives every node's phase on a timer and
//! records transitions and `node_down` alerts that silence caused.

use crate::model::{Executor, NodeRow, ObservedRow};
use crate::nodes::{evaluate, executor_online, phase_of};
use crate::state::AppState;
use crate::store::{key, StoreError, EXECUTORS, NODES, OBSERVED};
use std::sync::Arc;

/// One pass over all nodes; returns how many rows changed.
pub fn sweep_once(s: &AppState) -> Result<usize, StoreError> {
    let now = s.now();
    let timeout = s.config.heartbeat_timeout;
    // Read first: most passes change nothing and should not take the write lock.
    let stale: Vec<(String, NodeRow, novacula_core::NodePhase)> = s.store.read(|r| {
        let rows: Vec<(String, NodeRow)> = r.scan(NODES, "")?;
        let mut out = Vec::new();
        for (k, row) in rows.into_iter().filter(|(_, r)| !r.removed) {
            let exec: Option<Executor> = r.get(EXECUTORS, &key(&[&row.org_id, &row.executor]))?;
            let obs: Option<ObservedRow> = r.get(OBSERVED, &k)?;
            let phase = phase_of(&row, obs.as_ref().map(|o| &o.state), executor_online(exec.as_ref(), now, timeout));
            let down = !row.record.deleted && novacula_core::phase::node_down(row.record.spec.desired_state, phase);
            if row.last_phase != Some(phase) || row.alert_firing != down {
                out.push((k, row, phase));
            }
        }
        Ok::<_, StoreError>(out)
    })?;
    if stale.is_empty() {
        return Ok(0);
    }
    s.store.write(|w| {
        let mut n = 0;
        for (k, _, phase) in stale {
            // Re-read inside the transaction: a report may have landed meanwhile.
            let Some(mut row) = w.get::<NodeRow>(NODES, &k)? else { continue };
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
    loop {
        tick.tick().await;
        match sweep_once(&s) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(changed = n, "sweep updated node health"),
            Err(e) => tracing::error!(error = %e, "sweep failed"),
        }
    }
}
