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

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncMetrics {
    #[serde(default)]
    pub current_block: u64,
    #[serde(default)]
    pub highest_block: u64,
    #[serde(default)]
    pub peers: u32,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservedNodeState {
    pub node: String,
    /// The newest revision fully materialized on the executor.
    pub revision: Revision,
    pub processes: Vec<ObservedProcess>,
    /// True once a deleted node has been torn down completely.
    #[serde(default)]
    pub removed: bool,
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

    #[test]
    fn reported_revision_may_not_exceed_desired() {
        assert!(check_reported_revision(Revision(3), Revision(3)).is_ok());
        assert!(check_reported_revision(Revision(3), Revision(2)).is_ok());
        assert!(check_reported_revision(Revision(3), Revision(4)).is_err());
    }
}
