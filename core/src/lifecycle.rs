//! Spec transitions: the only way a node's desired state changes.
//!
//! Each accepted command yields the next record with the revision bumped by one;
//! a command that changes nothing yields `None` (no write, no event).

use crate::spec::{DesiredState, NodeSpec, Revision};
use crate::version::Version;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub spec: NodeSpec,
    pub revision: Revision,
    pub deleted: bool,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleAction {
    Start,
    Stop,
    Restart,
}

impl LifecycleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleAction::Start => "start",
            LifecycleAction::Stop => "stop",
            LifecycleAction::Restart => "restart",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeCommand {
    /// Replace the configuration; lifecycle fields are kept from the current spec.
    Edit(NodeSpec),
    UpgradeClient {
        role: String,
        version: String,
    },
    Lifecycle(LifecycleAction),
    Delete,
}

impl NodeCommand {
    /// The event an accepted command writes, and its data (the writer adds the new revision).
    pub fn event(&self) -> (&'static str, Vec<(&'static str, String)>) {
        match self {
            NodeCommand::Edit(_) => (crate::events::NODE_UPDATED, vec![("change", "config".into())]),
            NodeCommand::UpgradeClient { role, version } => {
                (crate::events::NODE_UPDATED, vec![("change", "upgrade".into()), ("role", role.clone()), ("version", version.clone())])
            }
            NodeCommand::Lifecycle(a) => (crate::events::NODE_LIFECYCLE_REQUESTED, vec![("action", a.as_str().into())]),
            NodeCommand::Delete => (crate::events::NODE_LIFECYCLE_REQUESTED, vec![("action", "delete".into())]),
        }
    }

    /// Whether the command changes what runs, so the executor must be able to run the result.
    pub fn changes_spec(&self) -> bool {
        matches!(self, NodeCommand::Edit(_) | NodeCommand::UpgradeClient { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("node has been deleted; deletion is irreversible")]
    Deleted,
    #[error("node is stopped; start it instead of restarting")]
    RestartWhileStopped,
    #[error("the node name cannot be changed (was {from:?}, got {to:?})")]
    Rename { from: String, to: String },
    #[error("node has no client with role {0:?}")]
    UnknownRole(String),
    #[error("{0}")]
    BadVersion(String),
}

/// The first record of a new node.
pub fn create(spec: NodeSpec) -> NodeRecord {
    NodeRecord { spec, revision: Revision::FIRST, deleted: false }
}

pub fn apply_command(current: &NodeRecord, cmd: &NodeCommand) -> Result<Option<NodeRecord>, LifecycleError> {
    if current.deleted {
        return Err(LifecycleError::Deleted);
    }
    let mut next = current.clone();
    match cmd {
        NodeCommand::Edit(spec) => {
            if spec.name != current.spec.name {
                return Err(LifecycleError::Rename { from: current.spec.name.clone(), to: spec.name.clone() });
            }
            next.spec = NodeSpec { desired_state: current.spec.desired_state, restart_generation: current.spec.restart_generation, ..spec.clone() };
        }
        NodeCommand::UpgradeClient { role, version } => {
            version.parse::<Version>().map_err(|e| LifecycleError::BadVersion(e.to_string()))?;
            let c = next.spec.clients.iter_mut().find(|c| &c.role == role).ok_or_else(|| LifecycleError::UnknownRole(role.clone()))?;
            c.version = version.clone();
        }
        NodeCommand::Lifecycle(LifecycleAction::Start) => next.spec.desired_state = DesiredState::Running,
        NodeCommand::Lifecycle(LifecycleAction::Stop) => next.spec.desired_state = DesiredState::Stopped,
        NodeCommand::Lifecycle(LifecycleAction::Restart) => {
            if current.spec.desired_state == DesiredState::Stopped {
                return Err(LifecycleError::RestartWhileStopped);
            }
            next.spec.restart_generation += 1;
        }
        NodeCommand::Delete => next.deleted = true,
    }
    if next == *current {
        return Ok(None);
    }
    next.revision = current.revision.next();
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::eth_spec;

    #[test]
    fn each_command_names_its_event_and_whether_it_changes_what_runs() {
        let restart = NodeCommand::Lifecycle(LifecycleAction::Restart);
        assert_eq!(restart.event(), (crate::events::NODE_LIFECYCLE_REQUESTED, vec![("action", "restart".to_string())]));
        assert_eq!(NodeCommand::Delete.event().1, vec![("action", "delete".to_string())]);
        let upgrade = NodeCommand::UpgradeClient { role: "execution".into(), version: "1.15.6".into() };
        assert_eq!(upgrade.event().0, crate::events::NODE_UPDATED);
        assert!(upgrade.changes_spec() && NodeCommand::Edit(eth_spec("n")).changes_spec());
        assert!(!restart.changes_spec() && !NodeCommand::Delete.changes_spec());
    }

    fn rec() -> NodeRecord {
        create(eth_spec("n"))
    }

    #[test]
    fn every_change_bumps_revision_by_one() {
        let r = rec();
        assert_eq!(r.revision, Revision(1));
        let stopped = apply_command(&r, &NodeCommand::Lifecycle(LifecycleAction::Stop)).unwrap().unwrap();
        assert_eq!(stopped.revision, Revision(2));
        assert_eq!(stopped.spec.desired_state, DesiredState::Stopped);
        let started = apply_command(&stopped, &NodeCommand::Lifecycle(LifecycleAction::Start)).unwrap().unwrap();
        assert_eq!(started.revision, Revision(3));
    }

    #[test]
    fn no_op_commands_write_nothing() {
        let r = rec();
        assert_eq!(apply_command(&r, &NodeCommand::Lifecycle(LifecycleAction::Start)), Ok(None));
        assert_eq!(apply_command(&r, &NodeCommand::Edit(r.spec.clone())), Ok(None));
        let same = NodeCommand::UpgradeClient { role: "execution".into(), version: "1.14.11".into() };
        assert_eq!(apply_command(&r, &same), Ok(None));
    }

    #[test]
    fn restart_bumps_generation_and_refuses_when_stopped() {
        let r = rec();
        let n = apply_command(&r, &NodeCommand::Lifecycle(LifecycleAction::Restart)).unwrap().unwrap();
        assert_eq!(n.spec.restart_generation, 1);
        let stopped = apply_command(&n, &NodeCommand::Lifecycle(LifecycleAction::Stop)).unwrap().unwrap();
        assert_eq!(apply_command(&stopped, &NodeCommand::Lifecycle(LifecycleAction::Restart)), Err(LifecycleError::RestartWhileStopped));
    }

    #[test]
    fn delete_is_terminal() {
        let r = rec();
        let d = apply_command(&r, &NodeCommand::Delete).unwrap().unwrap();
        assert!(d.deleted);
        assert_eq!(d.revision, Revision(2));
        for cmd in [NodeCommand::Delete, NodeCommand::Lifecycle(LifecycleAction::Start), NodeCommand::Edit(r.spec.clone())] {
            assert_eq!(apply_command(&d, &cmd), Err(LifecycleError::Deleted));
        }
    }

    #[test]
    fn edit_keeps_lifecycle_fields_and_name() {
        let r = apply_command(&rec(), &NodeCommand::Lifecycle(LifecycleAction::Restart)).unwrap().unwrap();
        let mut spec = r.spec.clone();
        spec.desired_state = DesiredState::Stopped;
        spec.restart_generation = 0;
        spec.clients[0].config_overrides.insert("cache".into(), "1024".into());
        let n = apply_command(&r, &NodeCommand::Edit(spec.clone())).unwrap().unwrap();
        assert_eq!(n.spec.desired_state, DesiredState::Running);
        assert_eq!(n.spec.restart_generation, 1);
        assert_eq!(n.spec.clients[0].config_overrides["cache"], "1024");
        spec.name = "other".into();
        assert!(matches!(apply_command(&r, &NodeCommand::Edit(spec)), Err(LifecycleError::Rename { .. })));
    }

    #[test]
    fn upgrade_checks_role_and_version() {
        let r = rec();
        let up = NodeCommand::UpgradeClient { role: "execution".into(), version: "1.15.0".into() };
        assert_eq!(apply_command(&r, &up).unwrap().unwrap().spec.clients[0].version, "1.15.0");
        let bad_role = NodeCommand::UpgradeClient { role: "mev".into(), version: "1.0.0".into() };
        assert_eq!(apply_command(&r, &bad_role), Err(LifecycleError::UnknownRole("mev".into())));
        let bad_ver = NodeCommand::UpgradeClient { role: "execution".into(), version: "latest".into() };
        assert!(matches!(apply_command(&r, &bad_ver), Err(LifecycleError::BadVersion(_))));
    }
}
