//! Executor identity: kind, release channel, capabilities.

use crate::spec::NodeType;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How an executor materializes nodes; immutable after its first sync.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// Bare metal / VM: systemd units.
    Agent,
    /// Kubernetes: `BlockchainNode` custom resources.
    Operator,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    #[default]
    Stable,
    Beta,
    Dev,
}

macro_rules! str_enum {
    ($ty:ty, $what:literal, $($variant:path => $s:literal),+) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($variant => $s),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = crate::error::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok($variant),)+
                    other => Err(crate::error::UnknownValue { what: $what, got: other.to_string(), expected: &[$($s),+] }),
                }
            }
        }
    };
}

str_enum!(ExecutorKind, "executor kind", ExecutorKind::Agent => "agent", ExecutorKind::Operator => "operator");
str_enum!(Channel, "release channel", Channel::Stable => "stable", Channel::Beta => "beta", Channel::Dev => "dev");

/// A client an executor can run for a role, and which versions.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientSupport {
    pub role: String,
    pub client: String,
    /// Exact versions offered; empty means any well-formed version.
    #[serde(default)]
    pub versions: Vec<String>,
    /// The networks this client can run; empty means every network of the chain.
    #[serde(default)]
    pub networks: Vec<String>,
    /// The oldest release that follows a network (`hoodi` needs geth >= 1.15.6).
    #[serde(default)]
    pub min_versions: Vec<MinVersion>,
    /// The ports the client listens on, each allocated per executor host.
    #[serde(default)]
    pub ports: Vec<PortSupport>,
    /// Settings the adapter sets itself (network, data dir, JWT, engine API,
    /// ports): refused as config overrides. Every other key may be overridden.
    #[serde(default)]
    pub managed_keys: Vec<String>,
    /// Volumes beside the data directory that the client can put part of its
    /// data on (geth's `ancient`), by the storage-volume name a spec gives them.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// The settings a spec may override, when the adapter lists them (the
    /// keys of a config file it writes): then no other key is accepted.
    /// Empty: any key but the managed ones (a command line's flags).
    #[serde(default)]
    pub overrides: Vec<OverrideKey>,
}

// A control plane of the previous release reads the capabilities of a client without settings.
crate::spec::wire_struct!(ClientSupport {
    role: "role", client: "client", versions: "versions", networks: "networks", min_versions: "minVersions",
    ports: "ports", managed_keys: "managedKeys", volumes: "volumes";
    new overrides: "overrides"
});

/// A setting a spec may override, with its type: what a deploy form offers
/// and what the control plane checks a value against.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverrideKey {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: OverrideKind,
    /// `enum`: the values allowed.
    #[serde(default)]
    pub allowed: Vec<String>,
    /// `integer`: the bounds, inclusive.
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    /// The client's own default, as the config file spells it.
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub description: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideKind {
    /// `0` or `1`.
    Bool,
    Integer,
    /// Any text of one line.
    String,
    /// One of `allowed`.
    Enum,
    /// The name of a secret the executor holds (a file of its `secrets_dir`,
    /// a Secret of the node's namespace), never the value: an L1 RPC URL
    /// with its API key. The node cannot run without it, so a spec must set it.
    Secret,
}

/// Why a value is not one of a setting's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideValueError {
    #[error("{0:?} is not 0 or 1")]
    NotBool(String),
    #[error("{0:?} is not an integer")]
    NotInteger(String),
    #[error("{value} is below the minimum {min}")]
    BelowMinimum { value: i64, min: i64 },
    #[error("{value} is above the maximum {max}")]
    AboveMaximum { value: i64, max: i64 },
    #[error("empty")]
    Empty,
    #[error("{value:?} is not one of {allowed}")]
    NotAllowed { value: String, allowed: String },
    #[error("{0:?} is not a secret's name (lowercase letters, digits and '-', 1-63 chars): name the secret, never its value")]
    NotSecretName(String),
}

impl OverrideKey {
    /// Why `value` is not a value of this setting, if it is not.
    pub fn check(&self, value: &str) -> Result<(), OverrideValueError> {
        match self.kind {
            OverrideKind::Bool if value == "0" || value == "1" => Ok(()),
            OverrideKind::Bool => Err(OverrideValueError::NotBool(value.into())),
            OverrideKind::Integer => {
                let n: i64 = value.parse().map_err(|_| OverrideValueError::NotInteger(value.into()))?;
                match (self.min, self.max) {
                    (Some(min), _) if n < min => Err(OverrideValueError::BelowMinimum { value: n, min }),
                    (_, Some(max)) if n > max => Err(OverrideValueError::AboveMaximum { value: n, max }),
                    _ => Ok(()),
                }
            }
            OverrideKind::String if value.trim().is_empty() => Err(OverrideValueError::Empty),
            OverrideKind::String => Ok(()),
            OverrideKind::Secret if crate::validate::valid_name(value) => Ok(()),
            OverrideKind::Secret => Err(OverrideValueError::NotSecretName(value.into())),
            OverrideKind::Enum if self.allowed.iter().any(|a| a == value) => Ok(()),
            OverrideKind::Enum => Err(OverrideValueError::NotAllowed { value: value.into(), allowed: self.allowed.join(", ") }),
        }
    }
}

/// The oldest version of a client that runs `network`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MinVersion {
    pub network: String,
    pub version: String,
}

/// A port a client listens on: its name in the spec's `ports` and the
/// client's own default, which the control plane picks when it is free.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSupport {
    pub name: String,
    pub default: u16,
    /// Peers reach it from outside (P2P, discovery): the ports a node's
    /// `p2pExposure` opens.
    #[serde(default)]
    pub peer: bool,
}

/// What a node of a network gets when the spec does not say.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkDefaults {
    pub network: String,
    /// Requests per client role, applied at deploy to clients that set none.
    #[serde(default)]
    pub resources: Vec<RoleResources>,
    /// Disk a node of this network needs, all clients together.
    #[serde(default)]
    pub disk_gib: u32,
    /// Where consensus clients fetch a recent finalized state (checkpoint
    /// sync); a spec overrides it through the client's own flag.
    #[serde(default)]
    pub checkpoint_sync_url: Option<String>,
    /// Disk an archive node of this network needs; 0: as a full node.
    #[serde(default)]
    pub archive_disk_gib: u32,
}

crate::spec::wire_struct!(NetworkDefaults {
    network: "network", resources: "resources", disk_gib: "diskGib", checkpoint_sync_url: "checkpointSyncUrl";
    new archive_disk_gib: "archiveDiskGib"
});

impl NetworkDefaults {
    /// The disk a node of this type needs.
    pub fn disk_for(&self, node_type: NodeType) -> u32 {
        match node_type {
            NodeType::Archive if self.archive_disk_gib > 0 => self.archive_disk_gib,
            _ => self.disk_gib,
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleResources {
    pub role: String,
    pub resources: crate::spec::Resources,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChainSupport {
    pub chain: String,
    pub networks: Vec<String>,
    pub node_types: Vec<NodeType>,
    pub clients: Vec<ClientSupport>,
    /// Per-network defaults and constraints.
    #[serde(default)]
    pub network_defaults: Vec<NetworkDefaults>,
}

impl ChainSupport {
    pub fn client(&self, role: &str, client: &str) -> Option<&ClientSupport> {
        self.clients.iter().find(|c| c.role == role && c.client == client)
    }

    pub fn defaults(&self, network: &str) -> Option<&NetworkDefaults> {
        self.network_defaults.iter().find(|d| d.network == network)
    }
}

impl ClientSupport {
    pub fn runs_network(&self, network: &str) -> bool {
        self.networks.is_empty() || self.networks.iter().any(|n| n == network)
    }

    pub fn min_version(&self, network: &str) -> Option<&str> {
        self.min_versions.iter().find(|m| m.network == network).map(|m| m.version.as_str())
    }

    /// The setting `key` a spec may override, if this client lists its settings.
    pub fn override_key(&self, key: &str) -> Option<&OverrideKey> {
        self.overrides.iter().find(|o| o.name == key)
    }
}

/// The programs a spec may name beyond the chain clients of the adapters,
/// as the executor host's own configuration lists them (agent.toml, the
/// operator's Helm values). This is the trust boundary: a spec never chooses
/// a program, it picks one the host already trusts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProgramAllowlist {
    /// Agent: sidecar programs by name (`[[sidecars]]` in agent.toml, each a path and its SHA-256).
    #[serde(default)]
    pub sidecar_programs: Vec<String>,
    /// Operator: container images a spec may use for sidecars or client images. An entry ending
    /// in `/` or `:` allows every image it prefixes; any other entry allows exactly that image.
    #[serde(default)]
    pub image_prefixes: Vec<String>,
}

impl ProgramAllowlist {
    /// Whether a sidecar's `image` names a program this executor allows.
    pub fn allows_sidecar(&self, image: &str) -> bool {
        self.sidecar_programs.iter().any(|p| p == image) || self.allows_image(image)
    }

    /// Whether a container image reference is allowed (operator).
    pub fn allows_image(&self, image: &str) -> bool {
        self.image_prefixes.iter().any(|p| {
            if p.ends_with('/') || p.ends_with(':') {
                // A prefix never lets a path climb out of its repository.
                image.starts_with(p.as_str()) && image.len() > p.len() && !image.contains("..")
            } else {
                image == p
            }
        })
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutorCapabilities {
    pub chains: Vec<ChainSupport>,
    /// What sidecars (and client images) this executor's configuration allows; none when absent.
    #[serde(default)]
    pub programs: ProgramAllowlist,
    /// The storage classes a volume may name; absent when the executor cannot
    /// tell (an operator not allowed to list them), empty when it has none (an agent).
    #[serde(default)]
    pub storage_classes: Option<Vec<String>>,
    /// How this executor can expose a node's P2P ports beyond `none`.
    #[serde(default)]
    pub p2p_exposures: Vec<crate::spec::P2pExposure>,
}

impl ExecutorCapabilities {
    pub fn chain(&self, chain: &str) -> Option<&ChainSupport> {
        self.chains.iter().find(|c| c.chain == chain)
    }

    /// SHA-256 of the capabilities' postcard encoding, in hex: what an
    /// executor sends instead of its capabilities once the control plane has
    /// them, and what the control plane keeps to compare.
    pub fn digest(&self) -> String {
        use sha2::Digest;
        // Encoding plain fields cannot fail; an empty encoding would only
        // make the digest differ, and the capabilities be sent again.
        let bytes = postcard::to_stdvec(self).unwrap_or_default();
        hex::encode(sha2::Sha256::digest(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_and_channel_parse_and_display() {
        assert_eq!("agent".parse::<ExecutorKind>().unwrap(), ExecutorKind::Agent);
        assert_eq!(ExecutorKind::Operator.to_string(), "operator");
        assert_eq!("beta".parse::<Channel>().unwrap(), Channel::Beta);
        let err = "nightly".parse::<Channel>().unwrap_err();
        assert!(err.to_string().contains("expected one of: stable, beta, dev"), "{err}");
    }

    #[test]
    fn allowlist_matches_names_exactly_and_images_by_declared_prefix() {
        let a = ProgramAllowlist {
            sidecar_programs: vec!["metrics-exporter".into()],
            image_prefixes: vec!["ghcr.io/ethpandaops/".into(), "docker.io/library/busybox:1.36".into()],
        };
        assert!(a.allows_sidecar("metrics-exporter"));
        assert!(!a.allows_sidecar("/bin/sh"));
        assert!(!a.allows_sidecar("metrics-exporter2"));
        assert!(a.allows_image("ghcr.io/ethpandaops/ethereum-metrics-exporter:0.24.0"));
        assert!(!a.allows_image("ghcr.io/ethpandaops/"), "a prefix alone is no image");
        assert!(!a.allows_image("ghcr.io/ethpandaops/../evil/x:1"));
        assert!(!a.allows_image("ghcr.io/ethpandaopsx/x:1"));
        assert!(a.allows_image("docker.io/library/busybox:1.36"));
        assert!(!a.allows_image("docker.io/library/busybox:1.36-evil"), "an exact entry is not a prefix");
        assert!(!ProgramAllowlist::default().allows_sidecar("anything"));
    }
}
