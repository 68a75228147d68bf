//! What the chains of one process (Bitcoin, BSC, Tron, Sui) share: their
//! capabilities from a few constants, their listed settings, and the check
//! of a spec's values against those settings.

use super::RenderError;
use novacula_core::executor::{ChainSupport, ClientSupport, MinVersion, NetworkDefaults, OverrideKey, OverrideKind, PortSupport, RoleResources};
use novacula_core::spec::{ClientSpec, NodeSpec, NodeType, Resources};
use std::collections::BTreeMap;

/// A setting a spec may set: its key, type, bounds, allowed values, the
/// client's default as its config spells it (empty: none said), and what it does.
pub type Setting = (&'static str, OverrideKind, Option<(i64, i64)>, &'static [&'static str], &'static str, &'static str);

/// The settings as capabilities list them.
pub fn override_keys(list: &[Setting]) -> Vec<OverrideKey> {
    list.iter()
        .map(|(name, kind, bounds, allowed, default, description)| OverrideKey {
            name: (*name).into(),
            kind: *kind,
            allowed: allowed.iter().map(ToString::to_string).collect(),
            min: bounds.map(|b| b.0),
            max: bounds.map(|b| b.1),
            default: (!default.is_empty()).then(|| (*default).into()),
            description: (*description).into(),
        })
        .collect()
}

/// The spec's settings, each checked again here (the control plane checked
/// them too): on the list, of its type, on one line; anything else is refused.
pub fn listed<'a>(c: &'a ClientSpec, allowed: &'a [OverrideKey]) -> Result<Vec<(&'a OverrideKey, &'a str)>, RenderError> {
    c.config_overrides
        .iter()
        .map(|(key, value)| {
            let refused = || RenderError::ManagedKey { client: c.client.clone(), key: key.clone() };
            let setting = allowed.iter().find(|o| o.name == *key).ok_or_else(refused)?;
            if setting.check(value).is_err() || value.contains(['\n', '\r']) {
                return Err(refused());
            }
            Ok((setting, value.as_str()))
        })
        .collect()
}

/// A chain whose nodes run one client in one role.
pub struct OneProcess {
    pub chain: &'static str,
    pub role: &'static str,
    pub client: &'static str,
    pub networks: Vec<&'static str>,
    pub node_types: &'static [NodeType],
    /// (network, the oldest release that runs it).
    pub min_versions: Vec<(&'static str, &'static str)>,
    /// Port names and defaults; `p2p` is the one peers reach.
    pub ports: Vec<(&'static str, u16)>,
    pub managed: &'static [&'static str],
    /// Listed settings; empty: the client's own flags (but the managed ones).
    pub overrides: Vec<OverrideKey>,
    /// Per network: a node's requests, its disk, and an archive's (0: as full).
    pub defaults: fn(&str) -> (Resources, u32, u32),
}

impl OneProcess {
    pub fn support(&self) -> ChainSupport {
        let networks: Vec<String> = self.networks.iter().map(ToString::to_string).collect();
        let client = ClientSupport {
            role: self.role.into(),
            client: self.client.into(),
            versions: vec![],
            networks: networks.clone(),
            min_versions: self.min_versions.iter().map(|(n, v)| MinVersion { network: (*n).into(), version: (*v).into() }).collect(),
            ports: self.ports.iter().map(|(name, default)| PortSupport { name: (*name).into(), default: *default, peer: *name == "p2p" }).collect(),
            managed_keys: self.managed.iter().map(ToString::to_string).collect(),
            volumes: vec![],
            overrides: self.overrides.clone(),
        };
        ChainSupport {
            chain: self.chain.into(),
            networks,
            node_types: self.node_types.to_vec(),
            clients: vec![client],
            network_defaults: self
                .networks
                .iter()
                .map(|n| {
                    let (resources, disk_gib, archive_disk_gib) = (self.defaults)(n);
                    NetworkDefaults {
                        network: (*n).into(),
                        resources: vec![RoleResources { role: self.role.into(), resources }],
                        disk_gib,
                        checkpoint_sync_url: None,
                        archive_disk_gib,
                    }
                })
                .collect(),
        }
    }

    /// The spec's client is this chain's, on one of its networks; its ports
    /// (the spec's, else the client's defaults).
    pub fn ports_of(&self, spec: &NodeSpec, c: &ClientSpec) -> Result<BTreeMap<&'static str, u16>, RenderError> {
        if c.role != self.role || c.client != self.client {
            return Err(RenderError::UnsupportedClient { chain: self.chain, client: c.client.clone() });
        }
        if !self.networks.contains(&spec.network.as_str()) {
            return Err(RenderError::UnsupportedNetwork { chain: self.chain, network: spec.network.clone(), client: c.client.clone() });
        }
        Ok(self.ports.iter().map(|(name, default)| (*name, c.ports.get(*name).copied().unwrap_or(*default))).collect())
    }
}

/// A spec of one process on `network`, for the adapters' tests.
#[cfg(test)]
pub fn spec(chain: &str, network: &str, role: &str, client: &str, version: &str) -> NodeSpec {
    let mut s = novacula_core::fixtures::eth_spec(chain);
    s.chain = chain.into();
    s.network = network.into();
    s.clients = vec![novacula_core::fixtures::client(role, client, version)];
    s
}
