//! What an executor reports it has materialized.

use crate::spec::Revision;
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObservedNodeStatus {
    Starting,
    Running,
    Syncing,
    Stopped,
    Error,
}

impl ObservedNodeStatus {
    /// The word the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ObservedNodeStatus::Starting => "starting",
            ObservedNodeStatus::Running => "running",
            ObservedNodeStatus::Syncing => "syncing",
            ObservedNodeStatus::Stopped => "stopped",
            ObservedNodeStatus::Error => "error",
        }
    }
}

/// How far a client has come, as its own API tells it. For an execution
/// client blocks, for a consensus client slots.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncMetrics {
    /// The head: the newest block (or slot) the client has.
    #[serde(default)]
    pub current_block: u64,
    /// The newest block (or slot) the client knows of.
    #[serde(default)]
    pub highest_block: u64,
    #[serde(default)]
    pub peers: u32,
    /// Blocks (or slots) behind: `highestBlock - currentBlock`.
    #[serde(default)]
    pub sync_distance: u64,
    /// `currentBlock / highestBlock`, in percent (100 when caught up).
    #[serde(default)]
    pub progress_percent: f64,
    /// Consensus clients: whether their execution client answers.
    #[serde(default)]
    pub execution_online: Option<bool>,
}

impl SyncMetrics {
    /// Metrics from a head, the highest known block and a peer count: the
    /// distance and the percentage are derived here, once.
    pub fn new(current: u64, highest: u64, peers: u32) -> SyncMetrics {
        let highest = highest.max(current);
        let progress_percent = if highest == 0 { 100.0 } else { (current as f64 * 10_000.0 / highest as f64).floor() / 100.0 };
        SyncMetrics { current_block: current, highest_block: highest, peers, sync_distance: highest - current, progress_percent, execution_online: None }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservedProcess {
    /// Client role (`execution`) or sidecar name.
    pub name: String,
    pub status: ObservedNodeStatus,
    #[serde(default)]
    pub sync: Option<SyncMetrics>,
    #[serde(default)]
    pub message: Option<String>,
}

/// Disk under a node's data: what the node uses, and what the filesystem
/// holding it has.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiskUsage {
    pub used_bytes: u64,
    pub free_bytes: u64,
    pub total_bytes: u64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservedNodeState {
    pub node: String,
    /// The newest revision fully materialized on the executor.
    pub revision: Revision,
    pub processes: Vec<ObservedProcess>,
    /// True once a deleted node has been torn down completely.
    #[serde(default)]
    pub removed: bool,
    /// Disk used by the node's data and free beside it, when the executor can tell.
    #[serde(default)]
    pub disk: Option<DiskUsage>,
}

/// A node's sync as one point of its history: the highest head and peer
/// count and the longest distance among its processes that report them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSample {
    pub at: crate::Timestamp,
    pub head: u64,
    pub peers: u32,
    pub sync_distance: u64,
    pub disk_used_bytes: Option<u64>,
}

/// How often a node's history takes a point, and how long it keeps them.
pub const HISTORY_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
pub const HISTORY_WINDOW: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl NodeSample {
    /// The point `o` makes at `at`; none when no process reports its sync.
    pub fn of(o: &ObservedNodeState, at: crate::Timestamp) -> Option<NodeSample> {
        let syncs: Vec<&SyncMetrics> = o.processes.iter().filter_map(|p| p.sync.as_ref()).collect();
        if syncs.is_empty() {
            return None;
        }
        Some(NodeSample {
            at,
            head: syncs.iter().map(|s| s.current_block).max().unwrap_or(0),
            peers: syncs.iter().map(|s| s.peers).max().unwrap_or(0),
            sync_distance: syncs.iter().map(|s| s.sync_distance).max().unwrap_or(0),
            disk_used_bytes: o.disk.map(|d| d.used_bytes),
        })
    }
}

/// A process whose peer is down is not healthy either: a consensus client
/// without its execution client produces nothing, even while its own API
/// answers (Lodestar's health stays 200). One whose peer is still starting
/// is starting too. `needs` names, per process, the processes it depends on.
pub fn combine(processes: &mut [ObservedProcess], needs: &[(String, Vec<String>)]) {
    let healthy = |p: &ObservedProcess| matches!(p.status, ObservedNodeStatus::Running | ObservedNodeStatus::Syncing);
    let others: Vec<(String, ObservedNodeStatus)> = processes.iter().filter(|p| !healthy(p)).map(|p| (p.name.clone(), p.status)).collect();
    for p in processes.iter_mut().filter(|p| healthy(p)) {
        let Some((_, deps)) = needs.iter().find(|(name, _)| *name == p.name) else { continue };
        let offline = p.sync.and_then(|s| s.execution_online) == Some(false);
        if let Some((dep, status)) = others.iter().find(|(name, _)| deps.contains(name)) {
            p.status = if *status == ObservedNodeStatus::Starting { ObservedNodeStatus::Starting } else { ObservedNodeStatus::Error };
            p.message = Some(format!("its {dep} client is {}", status.as_str()));
        } else if offline {
            p.status = ObservedNodeStatus::Error;
            p.message = Some("it cannot reach its execution client".into());
        }
    }
}

/// A report that claims a revision the control plane never wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("reported revision {reported} is ahead of desired revision {desired}")]
pub struct RevisionAhead {
    pub desired: Revision,
    pub reported: Revision,
}

/// An executor may not claim a revision the control plane never wrote.
pub fn check_reported_revision(desired: Revision, reported: Revision) -> Result<(), RevisionAhead> {
    if reported > desired {
        Err(RevisionAhead { desired, reported })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(name: &str, status: ObservedNodeStatus) -> ObservedProcess {
        ObservedProcess { name: name.into(), status, sync: None, message: None }
    }

    #[test]
    fn a_sample_takes_the_furthest_process() {
        let mut o = ObservedNodeState {
            node: "n".into(),
            revision: Revision(1),
            processes: vec![process("execution", ObservedNodeStatus::Running)],
            removed: false,
            disk: None,
        };
        assert_eq!(NodeSample::of(&o, crate::Timestamp(5)), None, "no sync reported, no point");
        o.processes[0].sync = Some(SyncMetrics::new(100, 150, 7));
        o.processes.push(ObservedProcess { sync: Some(SyncMetrics::new(3000, 3000, 40)), ..process("consensus", ObservedNodeStatus::Running) });
        o.disk = Some(DiskUsage { used_bytes: 9, free_bytes: 1, total_bytes: 10 });
        let s = NodeSample::of(&o, crate::Timestamp(5)).unwrap();
        assert_eq!((s.head, s.peers, s.sync_distance, s.disk_used_bytes), (3000, 40, 50, Some(9)));
    }

    #[test]
    fn metrics_derive_distance_and_progress() {
        let m = SyncMetrics::new(50, 200, 3);
        assert_eq!((m.sync_distance, m.progress_percent, m.peers), (150, 25.0, 3));
        assert_eq!(SyncMetrics::new(7, 7, 0).progress_percent, 100.0);
        assert_eq!(SyncMetrics::new(0, 0, 0).progress_percent, 100.0, "nothing to sync is synced");
        assert_eq!(SyncMetrics::new(9, 3, 0).sync_distance, 0, "a head past the highest known is not behind");
        assert_eq!(SyncMetrics::new(2, 3, 0).progress_percent, 66.66);
    }

    #[test]
    fn a_consensus_client_without_its_execution_client_is_not_healthy() {
        let needs = vec![("consensus".to_string(), vec!["execution".to_string()])];
        let mut ps = vec![process("execution", ObservedNodeStatus::Stopped), process("consensus", ObservedNodeStatus::Running)];
        combine(&mut ps, &needs);
        assert_eq!(ps[1].status, ObservedNodeStatus::Error);
        assert_eq!(ps[1].message.as_deref(), Some("its execution client is stopped"));
        assert_eq!(ps[0].status, ObservedNodeStatus::Stopped, "the cause keeps its own status");
        let mut ps = vec![process("execution", ObservedNodeStatus::Syncing), process("consensus", ObservedNodeStatus::Running)];
        combine(&mut ps, &needs);
        assert_eq!(ps[1].status, ObservedNodeStatus::Running);
        ps[1].sync = Some(SyncMetrics { execution_online: Some(false), ..SyncMetrics::new(1, 1, 0) });
        combine(&mut ps, &needs);
        assert_eq!(ps[1].status, ObservedNodeStatus::Error, "the client's own el_offline counts too");
        let mut starting = vec![process("execution", ObservedNodeStatus::Starting), process("consensus", ObservedNodeStatus::Running)];
        combine(&mut starting, &needs);
        assert_eq!(starting[1].status, ObservedNodeStatus::Starting, "a node coming up is starting, not in error (no node_down)");
        let mut alone = vec![process("consensus", ObservedNodeStatus::Running)];
        combine(&mut alone, &[]);
        assert_eq!(alone[0].status, ObservedNodeStatus::Running);
    }

    #[test]
    fn reported_revision_may_not_exceed_desired() {
        assert!(check_reported_revision(Revision(3), Revision(3)).is_ok());
        assert!(check_reported_revision(Revision(3), Revision(2)).is_ok());
        assert!(check_reported_revision(Revision(3), Revision(4)).is_err());
    }
}

/// Something that happened to a node's process, as its executor saw it
/// between two observations (`reportRuntimeEvents`; `runtime.event` in the feed).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeEvent {
    pub node: String,
    pub process: String,
    pub level: crate::events::Level,
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub message: String,
}

/// Runtime events a report carries at most; more are refused.
pub const RUNTIME_EVENTS_MAX: usize = 100;
/// A runtime event's message is cut to this many characters.
pub const RUNTIME_MESSAGE_MAX: usize = 500;

/// What changed in a node's processes between two observations: a process
/// that failed, stopped while the node should run, or recovered. A process
/// starting, or seen for the first time, is not an event.
pub fn runtime_events(before: &ObservedNodeState, now: &ObservedNodeState, desired_running: bool) -> Vec<RuntimeEvent> {
    use crate::events::Level;
    use ObservedNodeStatus::*;
    let healthy = |s: ObservedNodeStatus| matches!(s, Running | Syncing);
    let mut out = Vec::new();
    for p in &now.processes {
        let Some(was) = before.processes.iter().find(|b| b.name == p.name).map(|b| b.status) else { continue };
        let why = p.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
        let event = match (was, p.status) {
            (from, Error) if from != Error => Some((Level::Error, format!("process {} failed{why}", p.name))),
            (from, Stopped) if healthy(from) && desired_running => Some((Level::Warn, format!("process {} stopped while the node should run{why}", p.name))),
            (Error | Stopped, to) if healthy(to) => Some((Level::Info, format!("process {} recovered ({})", p.name, to.as_str()))),
            _ => None,
        };
        if let Some((level, message)) = event {
            out.push(RuntimeEvent { node: now.node.clone(), process: p.name.clone(), level, message: message.chars().take(RUNTIME_MESSAGE_MAX).collect() });
        }
    }
    out
}

#[cfg(test)]
mod runtime_event_tests {
    use super::*;
    use crate::events::Level;

    fn state(statuses: &[(&str, ObservedNodeStatus)]) -> ObservedNodeState {
        let processes = statuses.iter().map(|(n, s)| ObservedProcess { name: n.to_string(), status: *s, sync: None, message: None }).collect();
        ObservedNodeState { node: "eth-1".into(), revision: Revision(1), processes, removed: false, disk: None }
    }

    #[test]
    fn failures_unexpected_stops_and_recoveries_are_events_nothing_else() {
        use ObservedNodeStatus::*;
        let before = state(&[("execution", Running), ("consensus", Syncing)]);
        let mut failed = state(&[("execution", Error), ("consensus", Syncing)]);
        failed.processes[0].message = Some("exited with status 1".into());
        let e = runtime_events(&before, &failed, true);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].level, e[0].message.as_str()), (Level::Error, "process execution failed: exited with status 1"));
        assert_eq!(runtime_events(&failed, &before, true)[0].level, Level::Info, "recovered");
        let stopped = state(&[("execution", Stopped), ("consensus", Syncing)]);
        assert_eq!(runtime_events(&before, &stopped, true)[0].level, Level::Warn);
        assert!(runtime_events(&before, &stopped, false).is_empty(), "asked to stop: no surprise");
        assert!(runtime_events(&state(&[("execution", Starting)]), &state(&[("execution", Running)]), true).is_empty());
        assert!(runtime_events(&state(&[]), &failed, true).is_empty(), "first seen: nothing to compare");
        assert!(runtime_events(&failed, &failed, true).is_empty(), "still failed: said once");
    }
}
