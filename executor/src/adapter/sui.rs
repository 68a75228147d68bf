//! Sui: one `sui-node` full node per node, configured by a generated
//! `fullnode.yaml` (written as JSON, which YAML reads as it is).
//!
//! The config follows Mysten's `fullnode-template.yaml` and the full-node
//! guide: the network's seed peers, its checkpoint archive, the genesis blob
//! (fetched once from MystenLabs/sui-genesis and checked against its pin:
//! sui-node carries none). A full node prunes objects to the last epoch and
//! transactions to two; an archive node prunes nothing. Settings a spec may
//! override are the documented ones (pruning, indexing, execution). Sync
//! comes from its Prometheus metrics: checkpoints executed against the
//! highest known, and the last one's age. Sources: MystenLabs/sui docs
//! (operators/full-node, data-management), `crates/sui-config/src/node.rs`.

use super::single::{listed, override_keys, OneProcess};
use super::{ChainAdapter, ContainerImage, Fetched, FileContents, NamedPort, NodePaths, Probe, Program, RenderError, RenderedFile, RenderedUnit};
use novacula_core::executor::{ChainSupport, OverrideKind};
use novacula_core::spec::{ClientSpec, NodeSpec, NodeType, Resources};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const CHAIN: &str = "sui";
pub const NODE: &str = "node";
pub const CLIENT: &str = "sui-node";
pub const NETWORKS: [&str; 2] = ["mainnet", "testnet"];
const IMAGE: &str = "mysten/sui-node";

const CONF_FILE: &str = "fullnode.yaml";
const GENESIS_FILE: &str = "genesis.blob";

/// The genesis blob of each network: URL, SHA-256 and size (MystenLabs/sui-genesis; unchanged since 2023).
const GENESIS: [(&str, &str, &str, u64); 2] = [
    (
        "mainnet",
        "https://github.com/MystenLabs/sui-genesis/raw/main/mainnet/genesis.blob",
        "b57abe29e52ea89b68df6d08224c234f6e2cb1fa357203b12ba50dd4776f9038",
        642_945,
    ),
    (
        "testnet",
        "https://github.com/MystenLabs/sui-genesis/raw/main/testnet/genesis.blob",
        "df78eb5e525294d29c9f710a0d80c3b8e5c9f6e2e6485098584f0695d80de2aa",
        611_609,
    ),
];

/// State-sync seed peers, as the full-node guide lists them (address, peer id).
const MAINNET_SEEDS: &[(&str, &str)] = &[
    ("/dns/mel-00.mainnet.sui.io/udp/8084", "d32b55bdf1737ec415df8c88b3bf91e194b59ee3127e3f38ea46fd88ba2e7849"),
    ("/dns/ewr-00.mainnet.sui.io/udp/8084", "c7bf6cb93ca8fdda655c47ebb85ace28e6931464564332bf63e27e90199c50ee"),
    ("/dns/ewr-01.mainnet.sui.io/udp/8084", "3227f8a05f0faa1a197c075d31135a366a1c6f3d4872cb8af66c14dea3e0eb66"),
    ("/dns/lhr-00.mainnet.sui.io/udp/8084", "c619a5e0f8f36eac45118c1f8bda28f0f508e2839042781f1d4a9818043f732c"),
    ("/dns/sui-mainnet-ssfn-1.nodeinfra.com/udp/8084", "0c52ca8d2b9f51be4a50eb44ace863c05aadc940a7bd15d4d3f498deb81d7fc6"),
    ("/dns/sui-mainnet-ssfn-2.nodeinfra.com/udp/8084", "1dbc28c105aa7eb9d1d3ac07ae663ea638d91f2b99c076a52bbded296bd3ed5c"),
    ("/dns/sui-mainnet-ssfn-ashburn-na.overclock.run/udp/8084", "5ff8461ab527a8f241767b268c7aaf24d0312c7b923913dd3c11ee67ef181e45"),
    ("/dns/sui-mainnet-ssfn-dallas-na.overclock.run/udp/8084", "e1a4f40d66f1c89559a195352ba9ff84aec28abab1d3aa1c491901a252acefa6"),
    ("/dns/ssn01.mainnet.sui.rpcpool.com/udp/8084", "fadb7ccb0b7fc99223419176e707f5122fef4ea686eb8e80d1778588bf5a0bcd"),
    ("/dns/ssn02.mainnet.sui.rpcpool.com/udp/8084", "13783584a90025b87d4604f1991252221e5fd88cab40001642f4b00111ae9b7e"),
];

const TESTNET_SEEDS: &[(&str, &str)] = &[
    ("/dns/yto-tnt-ssfn-01.testnet.sui.io/udp/8084", "2ed53564d5581ded9b6773970ac2f1c84d39f9edf01308ff5a1ffe09b1add7b3"),
    ("/dns/yto-tnt-ssfn-00.testnet.sui.io/udp/8084", "6563732e5ab33b4ae09c73a98fd37499b71b8f03c27b5cc51acc26934974aff2"),
    ("/dns/nrt-tnt-ssfn-00.testnet.sui.io/udp/8084", "23a1f7cd901b6277cbedaa986b3fc183f171d800cabba863d48f698f518967e1"),
    ("/dns/ewr-tnt-ssfn-00.testnet.sui.io/udp/8084", "df8a8d128051c249e224f95fcc463f518a0ebed8986bbdcc11ed751181fecd38"),
    ("/dns/lax-tnt-ssfn-00.testnet.sui.io/udp/8084", "f9a72a0a6c17eed09c27898eab389add704777c03e135846da2428f516a0c11d"),
    ("/dns/lhr-tnt-ssfn-00.testnet.sui.io/udp/8084", "9393d6056bb9c9d8475a3cf3525c747257f17c6a698a7062cbbd1875bc6ef71e"),
    ("/dns/mel-tnt-ssfn-00.testnet.sui.io/udp/8084", "c88742f46e66a11cb8c84aca488065661401ef66f726cb9afeb8a5786d83456e"),
];

/// Name, default, and whether peers reach it (P2P is QUIC: UDP only).
const PORTS: [(&str, u16); 5] = [("p2p", 8084), ("rpc", 9000), ("metrics", 9184), ("admin", 1337), ("network", 8080)];

/// u64::MAX epochs: objects are never pruned.
const KEEP_ALL: u64 = u64::MAX;

/// (dotted key, type, bounds, description): the settings Mysten documents
/// as an operator's (managing-data, the full-node guide).
pub const SETTINGS: &[super::single::Setting] = &[
    (
        "authority-store-pruning-config.num-epochs-to-retain",
        OverrideKind::Integer,
        Some((0, i64::MAX)),
        &[],
        "1",
        "epochs of object versions kept (0: prune as soon as possible)",
    ),
    (
        "authority-store-pruning-config.num-epochs-to-retain-for-checkpoints",
        OverrideKind::Integer,
        Some((2, i64::MAX)),
        &[],
        "2",
        "epochs of transactions and checkpoints kept",
    ),
    ("authority-store-pruning-config.num-latest-epoch-dbs-to-retain", OverrideKind::Integer, Some((1, 100)), &[], "3", "per-epoch databases kept"),
    ("authority-store-pruning-config.periodic-compaction-threshold-days", OverrideKind::Integer, Some((1, 365)), &[], "1", "days between compactions"),
    ("enable-index-processing", OverrideKind::Bool, None, &[], "1", "keep the JSON-RPC indexes"),
    ("rpc.enable-indexing", OverrideKind::Bool, None, &[], "0", "keep the gRPC indexes (more disk)"),
    ("checkpoint-executor-config.checkpoint-execution-max-concurrency", OverrideKind::Integer, Some((1, 1024)), &[], "4", "checkpoints executed at once"),
];

/// Keys the adapter writes: addresses, paths, peers, the genesis.
const MANAGED: &[&str] = &[
    "db-path",
    "network-address",
    "metrics-address",
    "json-rpc-address",
    "admin-interface-port",
    "p2p-config",
    "genesis",
    "state-archive-read-config",
    "supported-protocol-versions",
];

/// Requests and disk: the guide's full node is 16 vCPU and 128 GB; a
/// pruning mainnet node held 1.6 TB and an unpruned one 4.9 TB in 2024.
fn network_defaults(network: &str) -> (Resources, u32, u32) {
    let r = |cpu_millis, memory_mib| Resources { cpu_millis, memory_mib };
    match network {
        "mainnet" => (r(16000, 131_072), 4096, 8192),
        _ => (r(8000, 65536), 2048, 4096),
    }
}

/// What the capabilities say of Sui.
fn one_process() -> OneProcess {
    OneProcess {
        chain: CHAIN,
        role: NODE,
        client: CLIENT,
        networks: NETWORKS.to_vec(),
        node_types: &[NodeType::Full, NodeType::Archive],
        min_versions: vec![],
        ports: PORTS.to_vec(),
        managed: MANAGED,
        overrides: override_keys(SETTINGS),
        defaults: network_defaults,
    }
}

/// Sui releases are tagged per network (`mainnet-v1.78.0`), and so are its images.
pub fn release_tag(network: &str, version: &str) -> String {
    format!("{network}-v{}", version.trim_start_matches('v'))
}

/// Put `value` at the dotted `key` of `root`, making the maps on the way.
fn set_path(root: &mut Value, key: &str, value: Value) {
    let mut at = root;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        if !at.is_object() {
            *at = json!({});
        }
        let Some(map) = at.as_object_mut() else { return };
        if parts.peek().is_none() {
            map.insert(part.to_string(), value);
            return;
        }
        at = map.entry(part.to_string()).or_insert_with(|| json!({}));
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Sui;

impl Sui {
    fn config(spec: &NodeSpec, c: &ClientSpec, paths: &NodePaths, ports: &BTreeMap<&str, u16>) -> Result<String, RenderError> {
        let listen = paths.listen.address();
        let seeds = if spec.network == "mainnet" { MAINNET_SEEDS } else { TESTNET_SEEDS };
        let archive = spec.node_type == NodeType::Archive;
        let mut pruning = json!({
            "num-latest-epoch-dbs-to-retain": 3,
            "epoch-db-pruning-period-secs": 3600,
            "num-epochs-to-retain": if archive { KEEP_ALL } else { 1 },
            "max-checkpoints-in-batch": 10,
            "max-transactions-in-batch": 1000,
            "pruning-run-delay-seconds": 60,
        });
        if !archive {
            pruning["num-epochs-to-retain-for-checkpoints"] = json!(2);
        }
        let mut conf = json!({
            "db-path": paths.data(NODE).join("db").display().to_string(),
            // The validator interface: unused by a full node, kept on localhost.
            "network-address": format!("/ip4/127.0.0.1/tcp/{}/http", ports["network"]),
            "metrics-address": format!("{listen}:{}", ports["metrics"]),
            "json-rpc-address": format!("{listen}:{}", ports["rpc"]),
            "admin-interface-port": ports["admin"],
            "p2p-config": {
                "listen-address": format!("0.0.0.0:{}", ports["p2p"]),
                "seed-peers": seeds.iter().map(|(address, peer)| json!({"address": address, "peer-id": peer})).collect::<Vec<_>>(),
            },
            "genesis": {"genesis-file-location": paths.fetched().join(GENESIS_FILE).display().to_string()},
            "authority-store-pruning-config": pruning,
            // Checkpoints peers no longer hold (the public endpoint keeps 30 days).
            "state-archive-read-config": [{"ingestion-url": format!("https://checkpoints.{}.sui.io", spec.network), "concurrency": 5}],
        });
        // An archive prunes nothing: its retention is not a setting.
        let allowed: Vec<_> =
            override_keys(SETTINGS).into_iter().filter(|o| !(archive && o.name.starts_with("authority-store-pruning-config.num-epochs-to-retain"))).collect();
        for (setting, value) in listed(c, &allowed)? {
            let v = match setting.kind {
                OverrideKind::Bool => json!(value == "1"),
                OverrideKind::Integer => json!(value.parse::<i64>().unwrap_or_default()),
                OverrideKind::String | OverrideKind::Enum | OverrideKind::Secret => json!(value),
            };
            set_path(&mut conf, &setting.name, v);
        }
        let body = serde_json::to_string_pretty(&conf).unwrap_or_default();
        Ok(format!("# Written by Novacula for node {}; replaced at every change of its spec. JSON is YAML.\n{body}\n", spec.name))
    }
}

impl ChainAdapter for Sui {
    fn chain(&self) -> &'static str {
        CHAIN
    }

    fn support(&self) -> ChainSupport {
        one_process().support()
    }

    fn render_client(&self, spec: &NodeSpec, c: &ClientSpec, paths: &NodePaths) -> Result<RenderedUnit, RenderError> {
        let ports = one_process().ports_of(spec, c)?;
        let Some((_, url, sha256, size)) = GENESIS.iter().find(|g| g.0 == spec.network) else {
            return Err(RenderError::UnsupportedNetwork { chain: CHAIN, network: spec.network.clone(), client: c.client.clone() });
        };
        let files = vec![
            RenderedFile::text(CONF_FILE, Self::config(spec, c, paths, &ports)?),
            RenderedFile {
                name: GENESIS_FILE.into(),
                contents: FileContents::Fetched(Fetched { url: (*url).into(), sha256: (*sha256).into(), max_bytes: size * 2 }),
            },
        ];
        let port = |name: &str, exposed: bool| {
            let p2p = name == "p2p";
            NamedPort { name: name.into(), port: ports[name], tcp: !p2p, udp: p2p, exposed, peer: p2p }
        };
        Ok(RenderedUnit {
            program: Program::Client { client: c.client.clone(), version: c.version.clone() },
            args: vec!["--config-path".into(), paths.config().join(CONF_FILE).display().to_string()],
            env: BTreeMap::from([("RUST_LOG".to_string(), "info".to_string())]),
            secret_env: BTreeMap::new(),
            files,
            probe: Probe::SuiMetrics { url: format!("http://127.0.0.1:{}", ports["metrics"]) },
            needs: vec![],
            // The admin and validator interfaces stay inside the node.
            ports: vec![port("p2p", true), port("rpc", true), port("metrics", true), port("admin", false), port("network", false)],
            stop_grace_secs: 120,
            volumes: vec![],
        })
    }

    fn image(&self, network: &str, client: &str, version: &str) -> Option<ContainerImage> {
        // The image has no entrypoint; sui-node is on its PATH.
        (client == CLIENT).then(|| ContainerImage {
            reference: format!("{IMAGE}:{}", release_tag(network, version)),
            command: vec!["sui-node".into()],
            writable_root: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(network: &str) -> NodeSpec {
        crate::adapter::single::spec(CHAIN, network, NODE, CLIENT, "1.78.0")
    }

    fn config(u: &RenderedUnit) -> Value {
        let FileContents::Text(t) = &u.files[0].contents else { panic!("fullnode.yaml is text") };
        serde_json::from_str(t.split_once('\n').unwrap().1).unwrap()
    }

    #[test]
    fn the_config_names_the_networks_peers_archive_and_fetched_genesis() {
        let mut s = spec("testnet");
        s.clients[0].config_overrides.insert("rpc.enable-indexing".into(), "1".into());
        s.clients[0].config_overrides.insert("authority-store-pruning-config.num-epochs-to-retain".into(), "5".into());
        let u = Sui.render_client(&s, &s.clients[0], &NodePaths::host("/srv/s")).unwrap();
        assert_eq!(u.args, ["--config-path", "/srv/s/config/fullnode.yaml"]);
        let c = config(&u);
        assert_eq!(c["db-path"], "/srv/s/data/node/db");
        assert_eq!(c["json-rpc-address"], "127.0.0.1:9000");
        assert_eq!(c["genesis"]["genesis-file-location"], "/srv/s/config/genesis.blob");
        assert_eq!(c["p2p-config"]["seed-peers"].as_array().unwrap().len(), TESTNET_SEEDS.len());
        assert_eq!(c["state-archive-read-config"][0]["ingestion-url"], "https://checkpoints.testnet.sui.io");
        assert_eq!(c["rpc"]["enable-indexing"], true, "a dotted setting nests");
        assert_eq!(c["authority-store-pruning-config"]["num-epochs-to-retain"], 5);
        assert_eq!(c["authority-store-pruning-config"]["num-epochs-to-retain-for-checkpoints"], 2);
        let FileContents::Fetched(g) = &u.files[1].contents else { panic!("the genesis is fetched") };
        assert!(g.url.ends_with("/testnet/genesis.blob") && g.sha256.len() == 64);
        let pod = Sui.render_client(&s, &s.clients[0], &NodePaths::pod("/novacula")).unwrap();
        assert_eq!(config(&pod)["genesis"]["genesis-file-location"], "/novacula/data/.fetched/genesis.blob", "a pod keeps it with its data");
        assert_eq!(u.probe, Probe::SuiMetrics { url: "http://127.0.0.1:9184".into() });
    }

    #[test]
    fn an_archive_prunes_nothing_and_managed_keys_are_refused() {
        let mut s = spec("mainnet");
        s.node_type = NodeType::Archive;
        let c = config(&Sui.render_client(&s, &s.clients[0], &NodePaths::host("/n")).unwrap());
        assert_eq!(c["authority-store-pruning-config"]["num-epochs-to-retain"], json!(u64::MAX));
        assert!(c["authority-store-pruning-config"].get("num-epochs-to-retain-for-checkpoints").is_none());
        let mut pruned = s.clone();
        pruned.clients[0].config_overrides.insert("authority-store-pruning-config.num-epochs-to-retain".into(), "1".into());
        assert!(Sui.render_client(&pruned, &pruned.clients[0], &NodePaths::host("/n")).is_err(), "an archive keeps everything");
        for key in ["db-path", "genesis.genesis-file-location", "p2p-config.seed-peers", "supported-protocol-versions", "rpc.tls.key"] {
            let mut bad = spec("mainnet");
            bad.clients[0].config_overrides.insert(key.into(), "x".into());
            assert!(Sui.render_client(&bad, &bad.clients[0], &NodePaths::host("/n")).is_err(), "{key}");
        }
        assert_eq!(Sui.image("testnet", CLIENT, "1.78.0").unwrap().reference, "mysten/sui-node:testnet-v1.78.0");
    }
}
