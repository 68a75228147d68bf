//! Spec validation: structural rules, then the target executor's capabilities.

use crate::executor::ExecutorCapabilities;
use crate::spec::NodeSpec;
use crate::version::Version;
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{field}: must not be empty")]
    Empty { field: String },
    #[error("{field}: {value:?} is not a valid name (lowercase letters, digits and '-', 1-63 chars, starting and ending with a letter or digit)")]
    BadName { field: String, value: String },
    #[error("{field}: {reason}")]
    BadVersion { field: String, reason: String },
    #[error("{field}: duplicate {value:?}")]
    Duplicate { field: String, value: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("chain {chain:?} is not supported by this executor (supported: {supported})")]
    UnknownChain { chain: String, supported: String },
    #[error("network {network:?} is not supported for chain {chain:?} (supported: {supported})")]
    UnknownNetwork { chain: String, network: String, supported: String },
    #[error("node type {node_type:?} is not supported for chain {chain:?}")]
    UnsupportedNodeType { chain: String, node_type: String },
    #[error("client {client:?} for role {role:?} is not supported for chain {chain:?} (supported: {supported})")]
    UnknownClient { chain: String, role: String, client: String, supported: String },
    #[error("version {version:?} of {client:?} is not offered by this executor (offered: {offered})")]
    UnknownVersion { client: String, version: String, offered: String },
}

/// A name usable as a systemd unit fragment, a directory, and a Kubernetes object (DNS-1123 label).
pub fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn check_name(errs: &mut Vec<ValidationError>, field: &str, value: &str) {
    if value.is_empty() {
        errs.push(ValidationError::Empty { field: field.into() });
    } else if !valid_name(value) {
        errs.push(ValidationError::BadName { field: field.into(), value: value.into() });
    }
}

/// Rules that hold for every spec, whatever executor runs it. Returns every problem found.
pub fn validate_structure(spec: &NodeSpec) -> Vec<ValidationError> {
    let mut errs = Vec::new();
    check_name(&mut errs, "name", &spec.name);
    check_name(&mut errs, "chain", &spec.chain);
    check_name(&mut errs, "network", &spec.network);
    if spec.clients.is_empty() {
        errs.push(ValidationError::Empty { field: "clients".into() });
    }
    let mut units = BTreeSet::new();
    for (i, c) in spec.clients.iter().enumerate() {
        check_name(&mut errs, &format!("clients[{i}].role"), &c.role);
        check_name(&mut errs, &format!("clients[{i}].client"), &c.client);
        if let Err(e) = c.version.parse::<Version>() {
            errs.push(ValidationError::BadVersion { field: format!("clients[{i}].version"), reason: e.to_string() });
        }
        if !units.insert(c.role.clone()) {
            errs.push(ValidationError::Duplicate { field: "clients.role".into(), value: c.role.clone() });
        }
        for key in c.config_overrides.keys() {
            if key.is_empty() || key.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
                errs.push(ValidationError::Invalid {
                    field: format!("clients[{i}].configOverrides"),
                    reason: format!("key {key:?} must be non-empty without whitespace"),
                });
            }
        }
        for v in c.config_overrides.values() {
            if v.chars().any(|ch| ch.is_control()) {
                errs.push(ValidationError::Invalid {
                    field: format!("clients[{i}].configOverrides"),
                    reason: "values must not contain control characters".into(),
                });
            }
        }
    }
    for (i, s) in spec.sidecars.iter().enumerate() {
        check_name(&mut errs, &format!("sidecars[{i}].name"), &s.name);
        if s.image.trim().is_empty() {
            errs.push(ValidationError::Empty { field: format!("sidecars[{i}].image") });
        }
        if !units.insert(s.name.clone()) {
            errs.push(ValidationError::Duplicate { field: "sidecars.name".into(), value: s.name.clone() });
        }
    }
    let mut vols = BTreeSet::new();
    for (i, v) in spec.storage.iter().enumerate() {
        check_name(&mut errs, &format!("storage[{i}].name"), &v.name);
        if v.size_gib == 0 {
            errs.push(ValidationError::Invalid { field: format!("storage[{i}].sizeGib"), reason: "must be at least 1".into() });
        }
        if !v.mount_path.starts_with('/') || v.mount_path.contains("..") {
            errs.push(ValidationError::Invalid {
                field: format!("storage[{i}].mountPath"),
                reason: format!("{:?} must be an absolute path without '..'", v.mount_path),
            });
        }
        if !vols.insert(v.name.clone()) {
            errs.push(ValidationError::Duplicate { field: "storage.name".into(), value: v.name.clone() });
        }
    }
    errs
}

/// Structural rules plus what the target executor says it can run.
pub fn validate_spec(spec: &NodeSpec, caps: &ExecutorCapabilities) -> Result<(), Vec<ValidationError>> {
    let mut errs = validate_structure(spec);
    match caps.chain(&spec.chain) {
        None => errs.push(ValidationError::UnknownChain {
            chain: spec.chain.clone(),
            supported: list(caps.chains.iter().map(|c| c.chain.as_str())),
        }),
        Some(chain) => {
            if !chain.networks.iter().any(|n| n == &spec.network) {
                errs.push(ValidationError::UnknownNetwork {
                    chain: spec.chain.clone(),
                    network: spec.network.clone(),
                    supported: list(chain.networks.iter().map(String::as_str)),
                });
            }
            if !chain.node_types.contains(&spec.node_type) {
                errs.push(ValidationError::UnsupportedNodeType {
                    chain: spec.chain.clone(),
                    node_type: spec.node_type.as_str().into(),
                });
            }
            for c in &spec.clients {
                let Some(sup) = chain.clients.iter().find(|s| s.role == c.role && s.client == c.client) else {
                    errs.push(ValidationError::UnknownClient {
                        chain: spec.chain.clone(),
                        role: c.role.clone(),
                        client: c.client.clone(),
                        supported: list(chain.clients.iter().filter(|s| s.role == c.role).map(|s| s.client.as_str())),
                    });
                    continue;
                };
                if !sup.versions.is_empty() && !sup.versions.iter().any(|v| v == &c.version) {
                    errs.push(ValidationError::UnknownVersion {
                        client: c.client.clone(),
                        version: c.version.clone(),
                        offered: list(sup.versions.iter().map(String::as_str)),
                    });
                }
            }
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = items.collect();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{ChainSupport, ClientSupport};
    use crate::spec::{fixtures::eth_spec, NodeType, Sidecar};

    fn caps() -> ExecutorCapabilities {
        ExecutorCapabilities {
            chains: vec![ChainSupport {
                chain: "ethereum".into(),
                networks: vec!["mainnet".into(), "holesky".into()],
                node_types: vec![NodeType::Full, NodeType::Archive],
                clients: vec![
                    ClientSupport { role: "execution".into(), client: "geth".into(), versions: vec![] },
                    ClientSupport { role: "consensus".into(), client: "lighthouse".into(), versions: vec!["v5.3.0".into()] },
                ],
            }],
        }
    }

    #[test]
    fn valid_spec_passes() {
        assert_eq!(validate_spec(&eth_spec("node-1"), &caps()), Ok(()));
    }

    #[test]
    fn names_follow_dns_label_rules() {
        assert!(valid_name("a"));
        assert!(valid_name("eth-holesky-1"));
        assert!(!valid_name(""));
        assert!(!valid_name("-a"));
        assert!(!valid_name("a-"));
        assert!(!valid_name("A"));
        assert!(!valid_name("a_b"));
        assert!(!valid_name("a/../b"));
        assert!(valid_name(&"a".repeat(63)));
        assert!(!valid_name(&"a".repeat(64)));
    }

    #[test]
    fn empty_name_reported() {
        let mut s = eth_spec("");
        s.clients.clear();
        let errs = validate_spec(&s, &caps()).unwrap_err();
        assert!(errs.contains(&ValidationError::Empty { field: "name".into() }));
        assert!(errs.contains(&ValidationError::Empty { field: "clients".into() }));
    }

    #[test]
    fn unknown_chain_and_client_reported() {
        let mut s = eth_spec("n");
        s.chain = "solana".into();
        let errs = validate_spec(&s, &caps()).unwrap_err();
        assert!(matches!(&errs[..], [ValidationError::UnknownChain { chain, .. }] if chain == "solana"));

        let mut s = eth_spec("n");
        s.clients[0].client = "nethermind".into();
        let errs = validate_spec(&s, &caps()).unwrap_err();
        assert!(matches!(&errs[..], [ValidationError::UnknownClient { client, .. }] if client == "nethermind"));
        assert!(errs[0].to_string().contains("supported: geth"));
    }

    #[test]
    fn unknown_network_and_node_type_reported() {
        let mut s = eth_spec("n");
        s.network = "sepolia".into();
        s.node_type = NodeType::Validator;
        let errs = validate_spec(&s, &caps()).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
    }

    #[test]
    fn bad_and_unoffered_versions_reported() {
        let mut s = eth_spec("n");
        s.clients[0].version = "latest".into();
        s.clients[1].version = "v5.2.0".into();
        let errs = validate_spec(&s, &caps()).unwrap_err();
        assert!(errs.iter().any(|e| matches!(e, ValidationError::BadVersion { .. })));
        assert!(errs.iter().any(|e| matches!(e, ValidationError::UnknownVersion { version, .. } if version == "v5.2.0")));
    }

    #[test]
    fn duplicates_and_bad_storage_reported() {
        let mut s = eth_spec("n");
        s.clients[1].role = "execution".into();
        s.storage[0].size_gib = 0;
        s.storage[0].mount_path = "data".into();
        s.sidecars.push(Sidecar { name: "execution".into(), image: " ".into(), command: vec![], env: Default::default() });
        let errs = validate_structure(&s);
        assert!(errs.iter().filter(|e| matches!(e, ValidationError::Duplicate { .. })).count() == 2, "{errs:?}");
        assert!(errs.iter().any(|e| matches!(e, ValidationError::Invalid { field, .. } if field == "storage[0].sizeGib")));
        assert!(errs.iter().any(|e| matches!(e, ValidationError::Invalid { field, .. } if field == "storage[0].mountPath")));
        assert!(errs.iter().any(|e| matches!(e, ValidationError::Empty { field } if field == "sidecars[0].image")));
    }

    #[test]
    fn override_keys_checked() {
        let mut s = eth_spec("n");
        s.clients[0].config_overrides.insert("bad key".into(), "1".into());
        assert!(!validate_structure(&s).is_empty());
    }
}
