//! Derived node phase: computed from desired + observed on every read, never stored.

use crate::observed::{ObservedNodeState, ObservedNodeStatus};
use crate::spec::{DesiredState, Revision};
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodePhase {
    Provisioning,
    Configuring,
    Starting,
    Running,
    Syncing,
    Stopping,
    Stopped,
    Error,
    Deleting,
}

impl NodePhase {
    pub const ALL: [NodePhase; 9] = [
        NodePhase::Provisioning,
        NodePhase::Configuring,
        NodePhase::Starting,
        NodePhase::Running,
        NodePhase::Syncing,
        NodePhase::Stopping,
        NodePhase::Stopped,
        NodePhase::Error,
        NodePhase::Deleting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NodePhase::Provisioning => "provisioning",
            NodePhase::Configuring => "configuring",
            NodePhase::Starting => "starting",
            NodePhase::Running => "running",
            NodePhase::Syncing => "syncing",
            NodePhase::Stopping => "stopping",
            NodePhase::Stopped => "stopped",
            NodePhase::Error => "error",
            NodePhase::Deleting => "deleting",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PhaseInput<'a> {
    pub desired_state: DesiredState,
    pub desired_revision: Revision,
    pub observed: Option<&'a ObservedNodeState>,
    /// Delete requested and not yet confirmed removed by the executor.
    pub deleting: bool,
    pub executor_online: bool,
}

/// The phase a user sees. Precedence: deleting, then an unreachable executor
/// (we cannot vouch for the node: error), then no report yet, then a process
/// in error (an executor that cannot apply a revision must not look busy
/// forever), then revision drift (still applying the newest write), then
/// process status.
pub fn derived_node_phase(input: &PhaseInput<'_>) -> NodePhase {
    use ObservedNodeStatus as S;
    if input.deleting {
        return NodePhase::Deleting;
    }
    if !input.executor_online {
        return NodePhase::Error;
    }
    let Some(obs) = input.observed else {
        return NodePhase::Provisioning;
    };
    let any = |s: S| obs.processes.iter().any(|p| p.status == s);
    let stopped_desired = input.desired_state == DesiredState::Stopped;

    if any(S::Error) {
        return NodePhase::Error;
    }
    if obs.revision < input.desired_revision {
        return match (stopped_desired, obs.processes.is_empty()) {
            (true, _) => NodePhase::Stopping,
            (false, true) => NodePhase::Provisioning,
            (false, false) => NodePhase::Configuring,
        };
    }
    if obs.processes.is_empty() {
        return if stopped_desired { NodePhase::Stopped } else { NodePhase::Provisioning };
    }
    if stopped_desired {
        return if obs.processes.iter().all(|p| p.status == S::Stopped) { NodePhase::Stopped } else { NodePhase::Stopping };
    }
    if any(S::Stopped) {
        NodePhase::Stopped
    } else if any(S::Starting) {
        NodePhase::Starting
    } else if any(S::Syncing) {
        NodePhase::Syncing
    } else {
        NodePhase::Running
    }
}

/// The `node_down` alert rule: the user wants it running, it is not.
pub fn node_down(desired_state: DesiredState, phase: NodePhase) -> bool {
    desired_state == DesiredState::Running && matches!(phase, NodePhase::Stopped | NodePhase::Error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::ObservedProcess;

    fn obs(rev: u64, statuses: &[ObservedNodeStatus]) -> ObservedNodeState {
        ObservedNodeState {
            node: "n".into(),
            revision: Revision(rev),
            processes: statuses.iter().enumerate().map(|(i, s)| ObservedProcess { name: format!("p{i}"), status: *s, sync: None, message: None }).collect(),
            removed: false,
            disk: None,
        }
    }

    fn phase(desired: DesiredState, rev: u64, o: Option<&ObservedNodeState>) -> NodePhase {
        derived_node_phase(&PhaseInput { desired_state: desired, desired_revision: Revision(rev), observed: o, deleting: false, executor_online: true })
    }

    use DesiredState::{Running as R, Stopped as St};
    use ObservedNodeStatus as S;

    #[test]
    fn no_report_is_provisioning() {
        assert_eq!(phase(R, 1, None), NodePhase::Provisioning);
    }

    #[test]
    fn deleting_wins_over_everything() {
        let o = obs(1, &[S::Error]);
        let p = derived_node_phase(&PhaseInput { desired_state: R, desired_revision: Revision(2), observed: Some(&o), deleting: true, executor_online: false });
        assert_eq!(p, NodePhase::Deleting);
    }

    #[test]
    fn offline_executor_is_error() {
        let o = obs(1, &[S::Running]);
        let p =
            derived_node_phase(&PhaseInput { desired_state: R, desired_revision: Revision(1), observed: Some(&o), deleting: false, executor_online: false });
        assert_eq!(p, NodePhase::Error);
    }

    #[test]
    fn revision_drift_phases() {
        assert_eq!(phase(R, 2, Some(&obs(1, &[S::Running]))), NodePhase::Configuring);
        assert_eq!(phase(R, 2, Some(&obs(0, &[]))), NodePhase::Provisioning);
        assert_eq!(phase(St, 2, Some(&obs(1, &[S::Running]))), NodePhase::Stopping);
    }

    #[test]
    fn error_while_applying_a_revision_is_error() {
        assert_eq!(phase(R, 2, Some(&obs(0, &[S::Error, S::Stopped]))), NodePhase::Error);
        assert_eq!(phase(St, 3, Some(&obs(2, &[S::Error]))), NodePhase::Error);
    }

    #[test]
    fn status_phases_when_caught_up() {
        assert_eq!(phase(R, 1, Some(&obs(1, &[S::Running, S::Running]))), NodePhase::Running);
        assert_eq!(phase(R, 1, Some(&obs(1, &[S::Running, S::Syncing]))), NodePhase::Syncing);
        assert_eq!(phase(R, 1, Some(&obs(1, &[S::Starting, S::Syncing]))), NodePhase::Starting);
        assert_eq!(phase(R, 1, Some(&obs(1, &[S::Running, S::Stopped]))), NodePhase::Stopped);
        assert_eq!(phase(R, 1, Some(&obs(1, &[S::Running, S::Error]))), NodePhase::Error);
        assert_eq!(phase(St, 1, Some(&obs(1, &[S::Stopped, S::Stopped]))), NodePhase::Stopped);
        assert_eq!(phase(St, 1, Some(&obs(1, &[S::Stopped, S::Running]))), NodePhase::Stopping);
        assert_eq!(phase(St, 1, Some(&obs(1, &[]))), NodePhase::Stopped);
        assert_eq!(phase(R, 1, Some(&obs(1, &[]))), NodePhase::Provisioning);
    }

    #[test]
    fn node_down_rule() {
        assert!(node_down(R, NodePhase::Stopped));
        assert!(node_down(R, NodePhase::Error));
        assert!(!node_down(R, NodePhase::Running));
        assert!(!node_down(R, NodePhase::Configuring));
        assert!(!node_down(St, NodePhase::Stopped));
    }

    #[test]
    fn all_has_nine_distinct_phases() {
        let mut names: Vec<_> = NodePhase::ALL.iter().map(|p| p.as_str()).collect();
        names.dedup();
        assert_eq!(names.len(), 9);
    }
}
