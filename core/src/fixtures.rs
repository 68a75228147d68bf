//! The one Ethereum node spec the tests of every crate start from (geth
//! 1.14.11 and lighthouse v5.3.0 on sepolia, one 100 GiB volume). Tests that
//! need something else change a copy, so the differences show where they matter.

use crate::spec::{ClientSpec, DesiredState, NodeSpec, NodeType, Resources, StorageVolume};
use std::collections::BTreeMap;

/// A client of role `role` running `client` at `version`, with no overrides.
pub fn client(role: &str, client: &str, version: &str) -> ClientSpec {
    ClientSpec {
        role: role.into(),
        client: client.into(),
        version: version.into(),
        image: None,
        config_overrides: BTreeMap::new(),
        resources: Resources::default(),
        ports: BTreeMap::new(),
    }
}

pub fn eth_spec(name: &str) -> NodeSpec {
    NodeSpec {
        name: name.to_string(),
        chain: "ethereum".into(),
        network: "sepolia".into(),
        node_type: NodeType::Full,
        clients: vec![client("execution", "geth", "1.14.11"), client("consensus", "lighthouse", "v5.3.0")],
        storage: vec![StorageVolume { name: "data".into(), size_gib: 100, mount_path: "/data".into(), storage_class: None, holds: None }],
        sidecars: vec![],
        desired_state: DesiredState::Running,
        restart_generation: 0,
        p2p_exposure: Default::default(),
    }
}
