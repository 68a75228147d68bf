//! Messages between executors and the control plane (JSON over HTTP).

use crate::compat::CompatStatus;
use crate::executor::{Channel, ExecutorCapabilities, ExecutorKind};
use crate::observed::ObservedNodeState;
use crate::spec::DesiredNode;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Header carrying the API key of an executor or a user.
pub const AUTH_HEADER: &str = "authorization";

/// `POST /api/v1/executors/sync`: heartbeat + self-description, every 5 s.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncExecutorRequest {
    pub name: String,
    pub kind: ExecutorKind,
    /// The executor binary's own version (semver).
    pub version: String,
    #[serde(default)]
    pub channel: Channel,
    pub capabilities: ExecutorCapabilities,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncExecutorResponse {
    pub executor_id: String,
    pub server_version: String,
    pub compat: CompatStatus,
    /// Set when the channel has a release other than the executor's version.
    pub upgrade: Option<UpgradeSpec>,
    pub server_time: Timestamp,
}

/// A release the executor should move to.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeSpec {
    pub channel: Channel,
    pub version: String,
    /// Agent: path of the new binary on the host. Operator: container image reference.
    pub artifact: String,
}

/// `GET /api/v1/executors/specs?since=<cursor>&waitSecs=<n>`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecPollResponse {
    /// Pass back as `since` to wait for the next change.
    pub cursor: u64,
    /// Every node assigned to the executor, deleted ones included until torn down.
    pub nodes: Vec<DesiredNode>,
}

/// `POST /api/v1/executors/report`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportRequest {
    pub nodes: Vec<ObservedNodeState>,
}

/// Body of every 4xx/5xx answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    #[serde(default)]
    pub details: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_request_json_shape() {
        let req: SyncExecutorRequest = serde_json::from_str(
            r#"{"name":"edge-1","kind":"agent","version":"1.2.3","capabilities":{"chains":[]}}"#,
        )
        .unwrap();
        assert_eq!(req.channel, Channel::Stable);
        assert!(serde_json::from_str::<SyncExecutorRequest>(
            r#"{"name":"e","kind":"robot","version":"1.2.3","capabilities":{"chains":[]}}"#
        )
        .is_err());
    }
}
