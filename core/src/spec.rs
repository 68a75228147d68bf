//! The desired state of a node, written only by the control plane.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Monotonic per-node revision; every control-plane write bumps it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Revision(pub u64);

impl Revision {
    /// The revision of a node's first write.
    pub const FIRST: Revision = Revision(1);

    pub fn next(self) -> Revision {
        Revision(self.0 + 1)
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    #[default]
    Running,
    Stopped,
}

impl DesiredState {
    /// The word the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            DesiredState::Running => "running",
            DesiredState::Stopped => "stopped",
        }
    }
}

/// How peers outside the cluster reach a node's P2P ports (operator
/// executors; an agent's ports are its host's own).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum P2pExposure {
    /// Inside the cluster only: the node still dials out to its peers.
    #[default]
    None,
    /// A NodePort Service on every cluster node's address.
    NodePort,
    /// A LoadBalancer Service: an address of its own from the cluster's load balancer.
    LoadBalancer,
}

impl P2pExposure {
    /// The word the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            P2pExposure::None => "none",
            P2pExposure::NodePort => "nodePort",
            P2pExposure::LoadBalancer => "loadBalancer",
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeType {
    #[default]
    Full,
    Archive,
    Validator,
    Light,
}

impl NodeType {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::Full => "full",
            NodeType::Archive => "archive",
            NodeType::Validator => "validator",
            NodeType::Light => "light",
        }
    }
}

/// One client process of the node, e.g. role `execution` run by `geth 1.14.11`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientSpec {
    pub role: String,
    pub client: String,
    pub version: String,
    /// Container image (operator) or binary source hint (agent); the adapter's default when absent.
    #[serde(default)]
    pub image: Option<String>,
    /// Client flags/config keys that override the adapter's rendered defaults.
    #[serde(default)]
    pub config_overrides: BTreeMap<String, String>,
    #[serde(default)]
    pub resources: Resources,
    /// The ports this client listens on, by the names the executor declares
    /// (`p2p`, `http`, `engine`, `metrics`...). Allocated by the control plane
    /// at deploy so that no two nodes of an executor share one; a port set
    /// here is pinned.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::wire::text::ports))]
    pub ports: BTreeMap<String, u16>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    /// CPU request in millicores; 0 means unset.
    #[serde(default)]
    pub cpu_millis: u32,
    /// Memory request in MiB; 0 means unset.
    #[serde(default)]
    pub memory_mib: u32,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageVolume {
    /// The first volume holds the clients' data directories; every other one
    /// is named for the client volume it holds (`ancient` for geth's ancient
    /// store: see the executor's capabilities).
    pub name: String,
    pub size_gib: u32,
    pub mount_path: String,
    #[serde(default)]
    pub storage_class: Option<String>,
}

/// An auxiliary process run beside the clients (metrics exporter, MEV relay...).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sidecar {
    pub name: String,
    pub image: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The node's storage volumes the sidecar sees (in a pod; none otherwise),
    /// read-only unless declared writable.
    #[serde(default)]
    pub volumes: Vec<SidecarVolume>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarVolume {
    /// A storage volume of the spec, by name.
    pub name: String,
    #[serde(default)]
    pub writable: bool,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    pub chain: String,
    pub network: String,
    #[serde(default)]
    pub node_type: NodeType,
    pub clients: Vec<ClientSpec>,
    #[serde(default)]
    pub storage: Vec<StorageVolume>,
    #[serde(default)]
    pub sidecars: Vec<Sidecar>,
    #[serde(default)]
    pub desired_state: DesiredState,
    /// Bumped by each restart request; the executor restarts processes started under an older one.
    #[serde(default, deserialize_with = "int63")]
    pub restart_generation: u64,
    /// Whether peers outside the cluster reach the P2P ports, and how.
    #[serde(default)]
    pub p2p_exposure: P2pExposure,
}

/// Wire integers are at most 2^63-1 (what JSON tools and the API document
/// call int64): a larger one is refused when decoded.
fn int63<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if v > i64::MAX as u64 {
        return Err(serde::de::Error::custom(format!("{v} is larger than {}", i64::MAX)));
    }
    Ok(v)
}

impl NodeSpec {
    pub fn client(&self, role: &str) -> Option<&ClientSpec> {
        self.clients.iter().find(|c| c.role == role)
    }
}

impl DesiredNode {
    pub fn new(revision: Revision, spec: NodeSpec, deleted: bool) -> DesiredNode {
        DesiredNode { revision, spec, deleted }
    }
}

/// What the control plane serves to an executor for one node.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredNode {
    pub revision: Revision,
    pub spec: NodeSpec,
    /// Set by `deleteNode`: the executor tears the node down.
    pub deleted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn json_is_camel_case_and_rejects_unknown_fields() {
        let spec = fixtures::eth_spec("n1");
        let json = serde_json::to_value(&spec).unwrap();
        assert!(json.get("desiredState").is_some());
        assert!(json.get("restartGeneration").is_some());
        let mut bad = json.clone();
        bad["bogus"] = serde_json::json!(1);
        assert!(serde_json::from_value::<NodeSpec>(bad).is_err());
    }

    #[test]
    fn integers_beyond_int64_are_refused() {
        let mut json = serde_json::to_value(fixtures::eth_spec("n1")).unwrap();
        json["restartGeneration"] = serde_json::json!(u64::MAX);
        assert!(serde_json::from_value::<NodeSpec>(json.clone()).is_err());
        json["restartGeneration"] = serde_json::json!(i64::MAX);
        assert!(serde_json::from_value::<NodeSpec>(json).is_ok());
    }

    #[test]
    fn postcard_round_trip() {
        let spec = fixtures::eth_spec("n1");
        let bytes = postcard::to_allocvec(&spec).unwrap();
        assert_eq!(postcard::from_bytes::<NodeSpec>(&bytes).unwrap(), spec);
    }

    #[test]
    fn revision_next_increments() {
        assert_eq!(Revision::FIRST.next(), Revision(2));
    }
}
