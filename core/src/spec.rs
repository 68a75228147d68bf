//! The desired state of a node, written only by the control plane.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// `Serialize` for a spec struct whose last fields (`new`) came after the
/// previous release. JSON (the executor protocol, the API) leaves them out
/// while they hold their default, so an executor of the previous release,
/// which refuses unknown fields, still reads every spec that does not use
/// them; postcard (the store, positional) always writes every field. The
/// fields are listed in declaration order (postcard's order), with their JSON names.
pub(crate) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

macro_rules! wire_struct {
    ($ty:ident { $($field:ident: $name:literal),*; new $($new:ident: $new_name:literal),* }) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                let readable = s.is_human_readable();
                let fields = [$($name,)* $($new_name,)*].len();
                let mut st = s.serialize_struct(stringify!($ty), fields)?;
                $(st.serialize_field($name, &self.$field)?;)*
                $(
                    if readable && $crate::spec::is_default(&self.$new) {
                        st.skip_field($new_name)?;
                    } else {
                        st.serialize_field($new_name, &self.$new)?;
                    }
                )*
                st.end()
            }
        }
    };
}
pub(crate) use wire_struct;

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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageVolume {
    pub name: String,
    pub size_gib: u32,
    pub mount_path: String,
    #[serde(default)]
    pub storage_class: Option<String>,
    /// The part of a client's data this volume holds, by the name the
    /// executor's capabilities give it (`ancient`: geth's ancient store); the
    /// adapter points the client at it. The first volume holds the data
    /// directories and names none; another volume without one is a sidecar's.
    #[serde(default)]
    pub holds: Option<String>,
}

wire_struct!(StorageVolume { name: "name", size_gib: "sizeGib", mount_path: "mountPath", storage_class: "storageClass"; new holds: "holds" });

/// An auxiliary process run beside the clients (metrics exporter, MEV relay...).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
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

wire_struct!(Sidecar { name: "name", image: "image", command: "command", env: "env"; new volumes: "volumes" });

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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
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

wire_struct!(NodeSpec {
    name: "name", chain: "chain", network: "network", node_type: "nodeType", clients: "clients", storage: "storage",
    sidecars: "sidecars", desired_state: "desiredState", restart_generation: "restartGeneration";
    new p2p_exposure: "p2pExposure"
});

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
    fn json_leaves_out_new_fields_at_their_default_and_postcard_keeps_all() {
        let mut spec = fixtures::eth_spec("n1");
        spec.sidecars.push(Sidecar { name: "x".into(), image: "x".into(), command: vec![], env: Default::default(), volumes: vec![] });
        let json = serde_json::to_value(&spec).unwrap();
        // What an executor of the previous release reads: no field it does not know.
        assert!(json.get("p2pExposure").is_none() && json["sidecars"][0].get("volumes").is_none() && json["storage"][0].get("holds").is_none(), "{json}");
        assert_eq!(json["storage"][0]["sizeGib"], 100, "the others keep their JSON names");
        assert_eq!(serde_json::from_value::<NodeSpec>(json).unwrap(), spec);
        spec.p2p_exposure = P2pExposure::LoadBalancer;
        spec.storage[0].holds = Some("ancient".into());
        spec.sidecars[0].volumes = vec![SidecarVolume { name: "data".into(), writable: true }];
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!((json["p2pExposure"].as_str(), json["storage"][0]["holds"].as_str()), (Some("loadBalancer"), Some("ancient")));
        assert_eq!(json["sidecars"][0]["volumes"][0]["writable"], true);
        let bytes = postcard::to_allocvec(&fixtures::eth_spec("n2")).unwrap();
        assert_eq!(postcard::from_bytes::<NodeSpec>(&bytes).unwrap(), fixtures::eth_spec("n2"), "postcard writes default fields too");
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
