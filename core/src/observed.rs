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
