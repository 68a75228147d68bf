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
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($variant),)+
                    other => Err(format!(concat!("unknown ", $what, " {:?}; expected one of: {}"), other, [$($s),+].join(", "))),
                }
            }
        }
    };
}

str_enum!(ExecutorKind, "executor kind", ExecutorKind::Agent => "agent", ExecutorKind::Operator => "operator");
str_enum!(Channel, "release channel", Channel::Stable => "stable", Channel::Beta => "beta", Channel::Dev => "dev");

/// A client an executor can run for a role, and which versions.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientSupport {
    pub role: String,
    pub client: String,
    /// Exact versions offered; empty means any well-formed version.
    #[serde(default)]
    pub versions: Vec<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChainSupport {
    pub chain: String,
    pub networks: Vec<String>,
    pub node_types: Vec<NodeType>,
    pub clients: Vec<ClientSupport>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutorCapabilities {
    pub chains: Vec<ChainSupport>,
}

impl ExecutorCapabilities {
    pub fn chain(&self, chain: &str) -> Option<&ChainSupport> {
        self.chains.iter().find(|c| c.chain == chain)
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
        assert!(err.contains("stable, beta, dev"), "{err}");
    }
}
