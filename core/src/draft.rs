//! A spec from a few choices: what the console's deploy wizard and
//! `novacula nodes deploy --chain ...` build from an executor's capabilities,
//! with the network's defaults filled in. The control plane fills the same
//! defaults at deploy ([`fill_defaults`]) and validates the result as any spec.

use crate::executor::{ChainSupport, ExecutorCapabilities};
use crate::spec::{ClientSpec, DesiredState, NodeSpec, NodeType, Resources, StorageVolume};
use crate::validate::{validate_spec, ValidationError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One client and version for a role, and the settings it overrides.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientChoice {
    pub role: String,
    pub client: String,
    pub version: String,
    #[serde(default)]
    pub overrides: BTreeMap<String, String>,
    /// Requests; the network's defaults for the role when unset.
    #[serde(default)]
    pub resources: Option<Resources>,
}

/// What a user chooses; everything else comes from the executor's defaults.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Draft {
    pub name: String,
    pub chain: String,
    pub network: String,
    #[serde(default)]
    pub node_type: NodeType,
    pub clients: Vec<ClientChoice>,
    /// Disk for the node's data; the network's default for its node type when unset.
    #[serde(default)]
    pub disk_gib: Option<u32>,
    #[serde(default)]
    pub storage_class: Option<String>,
}

/// The roles of a chain's nodes, in the order the executor lists its clients.
pub fn roles(chain: &ChainSupport) -> Vec<&str> {
    let mut roles: Vec<&str> = vec![];
    for c in &chain.clients {
        if !roles.contains(&c.role.as_str()) {
            roles.push(&c.role);
        }
    }
    roles
}

/// Requests of the network's defaults for each client that sets none.
pub fn fill_defaults(spec: &mut NodeSpec, chain: &ChainSupport) {
    let Some(defaults) = chain.defaults(&spec.network) else { return };
    for c in &mut spec.clients {
        if c.resources == Resources::default() {
            if let Some(r) = defaults.resources.iter().find(|r| r.role == c.role) {
                c.resources = r.resources;
            }
        }
    }
}

/// The spec a draft makes on an executor with `caps`, or every reason it
/// cannot run there (the same errors as a deploy's).
pub fn build(d: &Draft, caps: &ExecutorCapabilities) -> Result<NodeSpec, Vec<ValidationError>> {
    let mut spec = NodeSpec {
        name: d.name.clone(),
        chain: d.chain.clone(),
        network: d.network.clone(),
        node_type: d.node_type,
        clients: d
            .clients
            .iter()
            .map(|c| ClientSpec {
                role: c.role.clone(),
                client: c.client.clone(),
                version: c.version.clone(),
                image: None,
                config_overrides: c.overrides.clone(),
                resources: c.resources.unwrap_or_default(),
                ports: BTreeMap::new(),
            })
            .collect(),
        storage: vec![],
        sidecars: vec![],
        desired_state: DesiredState::Running,
        restart_generation: 0,
        p2p_exposure: Default::default(),
    };
    if let Some(chain) = caps.chain(&d.chain) {
        fill_defaults(&mut spec, chain);
        let mut missing = vec![];
        for role in roles(chain) {
            if spec.client(role).is_none() {
                missing.push(ValidationError::Empty { field: format!("clients ({role})") });
            }
        }
        if !missing.is_empty() {
            return Err(missing);
        }
        let disk = d.disk_gib.or_else(|| chain.defaults(&d.network).map(|n| n.disk_for(d.node_type))).filter(|g| *g > 0);
        if let Some(size_gib) = disk {
            spec.storage.push(StorageVolume { name: "data".into(), size_gib, mount_path: "/data".into(), storage_class: d.storage_class.clone(), holds: None });
        }
    }
    validate_spec(&spec, caps, None)?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{ChainSupport, ClientSupport, MinVersion, NetworkDefaults, RoleResources};

    fn caps() -> ExecutorCapabilities {
        let client = |role: &str, client: &str| ClientSupport { role: role.into(), client: client.into(), ..Default::default() };
        let mut reth = client("execution", "reth");
        reth.min_versions = vec![MinVersion { network: "hoodi".into(), version: "2.0.0".into() }];
        ExecutorCapabilities {
            chains: vec![ChainSupport {
                chain: "ethereum".into(),
                networks: vec!["mainnet".into(), "hoodi".into()],
                node_types: vec![NodeType::Full, NodeType::Archive],
                clients: vec![reth, client("execution", "geth"), client("consensus", "lighthouse")],
                network_defaults: vec![NetworkDefaults {
                    network: "hoodi".into(),
                    resources: vec![RoleResources { role: "execution".into(), resources: Resources { cpu_millis: 1500, memory_mib: 6144 } }],
                    disk_gib: 512,
                    checkpoint_sync_url: None,
                    archive_disk_gib: 1024,
                }],
            }],
            ..Default::default()
        }
    }

    fn draft(node_type: NodeType, reth: &str) -> Draft {
        let choice = |role: &str, client: &str, version: &str| ClientChoice {
            role: role.into(),
            client: client.into(),
            version: version.into(),
            overrides: BTreeMap::new(),
            resources: None,
        };
        Draft {
            name: "n1".into(),
            chain: "ethereum".into(),
            network: "hoodi".into(),
            node_type,
            clients: vec![choice("execution", "reth", reth), choice("consensus", "lighthouse", "8.0.0")],
            disk_gib: None,
            storage_class: None,
        }
    }

    #[test]
    fn a_draft_takes_the_networks_defaults_and_the_archive_disk() {
        let spec = build(&draft(NodeType::Full, "2.0.0"), &caps()).unwrap();
        assert_eq!(spec.clients[0].resources, Resources { cpu_millis: 1500, memory_mib: 6144 });
        assert_eq!(spec.clients[1].resources, Resources::default(), "no default for that role: the executor's own");
        assert_eq!(spec.storage[0].size_gib, 512);
        assert_eq!(build(&draft(NodeType::Archive, "2.0.0"), &caps()).unwrap().storage[0].size_gib, 1024);
        assert_eq!(roles(&caps().chains[0]), ["execution", "consensus"]);
        let mut chosen = draft(NodeType::Full, "2.0.0");
        chosen.clients[0].resources = Some(Resources { cpu_millis: 4000, memory_mib: 8192 });
        chosen.disk_gib = Some(600);
        let spec = build(&chosen, &caps()).unwrap();
        assert_eq!(spec.clients[0].resources, Resources { cpu_millis: 4000, memory_mib: 8192 }, "a choice wins over the default");
        assert_eq!(spec.storage[0].size_gib, 600);
    }

    #[test]
    fn a_draft_reads_as_the_console_sends_it() {
        let d: Draft = serde_json::from_str(
            r#"{"name":"n1","chain":"ethereum","network":"hoodi","nodeType":"archive","clients":[{"role":"execution","client":"reth","version":"2.0.0","overrides":{"a":"1"}}],"diskGib":700}"#,
        )
        .unwrap();
        assert_eq!((d.node_type, d.disk_gib, d.clients[0].overrides["a"].as_str(), d.clients[0].resources), (NodeType::Archive, Some(700), "1", None));
        assert!(serde_json::from_str::<Draft>(r#"{"name":"n","chain":"c","network":"n","clients":[],"bogus":1}"#).is_err(), "unknown fields are refused");
    }

    #[test]
    fn a_draft_the_executor_cannot_run_says_why() {
        let errs = build(&draft(NodeType::Full, "1.9.0"), &caps()).unwrap_err();
        assert_eq!(errs.iter().map(ValidationError::code).collect::<Vec<_>>(), ["version_below_network_minimum"]);
        let mut d = draft(NodeType::Full, "2.0.0");
        d.clients.pop();
        assert_eq!(build(&d, &caps()).unwrap_err()[0].field(), "clients (consensus)");
        d.chain = "solana".into();
        assert_eq!(build(&d, &caps()).unwrap_err()[0].code(), "chain_not_supported_by_executor");
    }
}
