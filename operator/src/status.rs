//! What a `BlockchainNode` looks like from its StatefulSet and pod: the CR status
//! the controller writes and the executor side reports. Pure, so it is tested directly.

use crate::crd::{BlockchainNode, BlockchainNodeStatus};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use novacula_core::reconcile::plan;
use novacula_core::{derived_node_phase, DesiredState, ObservedNodeState, ObservedNodeStatus, ObservedProcess, PhaseInput, Revision};

/// Waiting reasons that will not fix themselves: the process is in error.
pub const FAILING_REASONS: [&str; 6] =
    ["CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"];

/// The failure reason of a container, if it is in one of `FAILING_REASONS`.
pub fn failing(c: &ContainerStatus) -> Option<String> {
    let w = c.state.as_ref()?.waiting.as_ref()?;
    let reason = w.reason.as_deref()?;
    FAILING_REASONS.contains(&reason).then(|| match &w.message {
        Some(m) => format!("{reason}: {m}"),
        None => reason.to_string(),
    })
}

fn process(name: &str, c: Option<&ContainerStatus>, starting: bool) -> ObservedProcess {
    let (status, message) = match c {
        None if starting => (ObservedNodeStatus::Starting, None),
        None => (ObservedNodeStatus::Stopped, None),
        Some(c) => match (failing(c), c.state.as_ref()) {
            (Some(why), _) => (ObservedNodeStatus::Error, Some(why)),
            (None, Some(s)) if s.running.is_some() && c.ready => (ObservedNodeStatus::Running, None),
            (None, Some(s)) if s.terminated.as_ref().is_some_and(|t| t.exit_code != 0) => {
                let code = s.terminated.as_ref().map_or(0, |t| t.exit_code);
                (ObservedNodeStatus::Error, Some(format!("exited with code {code}")))
            }
            (None, Some(s)) if s.terminated.is_some() => (ObservedNodeStatus::Stopped, None),
            _ => (ObservedNodeStatus::Starting, None),
        },
    };
    ObservedProcess { name: name.to_string(), status, sync: None, message }
}

/// True when the StatefulSet has fully rolled out the template it was last given.
pub fn rolled_out(sts: &StatefulSet, running: bool) -> bool {
    let Some(s) = &sts.status else { return false };
    let current = s.observed_generation.unwrap_or(0) >= sts.metadata.generation.unwrap_or(0);
    if !running {
        return current && s.replicas == 0;
    }
    current && s.ready_replicas == Some(1) && s.updated_replicas == Some(1) && s.update_revision.is_some() && s.update_revision == s.current_revision
}

pub fn status(cr: &BlockchainNode, sts: &StatefulSet, pod: Option<&Pod>) -> BlockchainNodeStatus {
    let running = cr.spec.node.desired_state == DesiredState::Running;
    let containers = pod.and_then(|p| p.status.as_ref()).and_then(|s| s.container_statuses.clone()).unwrap_or_default();
    let processes: Vec<ObservedProcess> =
        plan(&cr.spec.node).iter().map(|u| process(&u.unit, containers.iter().find(|c| c.name == u.unit), pod.is_some() || running)).collect();
    let rolled = rolled_out(sts, running);
    let previous = cr.status.as_ref().map_or(0, |s| s.observed_revision);
    let observed_revision = if rolled { cr.spec.revision } else { previous };
    // The control plane's rule and words for a node's phase, from what the cluster shows.
    let observed =
        ObservedNodeState { node: cr.spec.node.name.clone(), revision: Revision(observed_revision), processes: processes.clone(), removed: false, disk: None };
    let phase = derived_node_phase(&PhaseInput {
        desired_state: cr.spec.node.desired_state,
        desired_revision: Revision(cr.spec.revision),
        observed: Some(&observed),
        deleting: cr.metadata.deletion_timestamp.is_some(),
        executor_online: true,
    });
    let extra_objects = cr.status.as_ref().map(|s| s.extra_objects.clone()).unwrap_or_default();
    BlockchainNodeStatus { phase: phase.as_str().into(), observed_revision, processes, extra_objects }
}
