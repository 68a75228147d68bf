//! BNB Smart Chain: one process of BNB Chain's geth fork (`bnb-chain/bsc`),
//! Parlia consensus built in (no engine API, no JWT).
//!
//! Since v1.3.8 the client carries both networks' genesis (`--mainnet`, chain
//! id 56; `--chapel`, 97), so it needs no `geth init` and no genesis
//! download; the release's `testnet.zip` config only adds Chapel's static
//! peers, which the adapter passes as `--bootnodes` instead (that config also
//! moves the log into the data dir). Sources: bnb-chain/bsc `cmd/utils/flags.go`
//! (BSCMainnetFlag, ChapelFlag), its README (hardware), the v1.7.x changelog.
//! Overrides are the client's own flags, as for Ethereum's execution clients.

use super::flags::Flags;
use super::single::OneProcess;
use super::{ChainAdapter, ContainerImage, NamedPort, NodePaths, Probe, Program, RenderError, RenderedUnit};
use novacula_core::executor::ChainSupport;
use novacula_core::spec::{ClientSpec, NodeSpec, NodeType, Resources};
use std::collections::BTreeMap;

pub const CHAIN: &str = "bsc";
/// The one process of a node.
pub const NODE: &str = "node";
/// BNB Chain's geth fork, by the name of its repository.
pub const CLIENT: &str = "bsc";
pub const NETWORKS: [&str; 2] = ["mainnet", "chapel"];
const IMAGE: &str = "ghcr.io/bnb-chain/bsc";

/// The ports BSC's documentation gives (its release configs set P2P to 30311).
const PORTS: [(&str, u16); 4] = [("p2p", 30311), ("http", 8545), ("ws", 8546), ("metrics", 6060)];

/// The Pasteur hard fork (BEP-673): Chapel from v1.7.4, mainnet on
/// 2026-08-25 with v1.7.7; older releases cannot follow either network.
const MIN_VERSIONS: [(&str, &str); 2] = [("mainnet", "1.7.7"), ("chapel", "1.7.4")];

/// Flags the adapter sets: the network, where data lives, what listens where.
const MANAGED: &[&str] = &[
    "mainnet",
    "chapel",
    "networkid",
    "datadir",
    "datadir.ancient",
    "config",
    "port",
    "discovery.port",
    "http.port",
    "ws.port",
    "metrics.port",
    "authrpc.jwtsecret",
    "ipcpath",
    "keystore",
    "unlock",
    "password",
    "mine",
    "history.state",
    "nodekey",
    "log.file",
];

/// Chapel's peers: the client carries only mainnet's. As BNB Chain's
/// reth-bsc lists them (`src/node/network/bootnodes.rs`, 2025-08), the same
/// hosts as the `testnet.zip` config's static nodes.
pub const CHAPEL_BOOTNODES: &[&str] = &[
    "enode://0637d1e62026e0c8685b1db0ca1c767c78c95c3fab64abc468d1a64b12ca4b530b46b8f80c915aec96f74f7ffc5999e8ad6d1484476f420f0c10e3d42361914b@52.199.214.252:30311",
    "enode://df1e8eb59e42cad3c4551b2a53e31a7e55a2fdde1287babd1e94b0836550b489ba16c40932e4dacb16cba346bd442c432265a299c4aca63ee7bb0f832b9f45eb@52.51.80.128:30311",
    "enode://ecd664250ca19b1074dcfbfb48576a487cc18d052064222a363adacd2650f8e08fb3db9de7a7aecb48afa410eaeb3285e92e516ead01fb62598553aed91ee15e@3.209.122.123:30311",
    "enode://665cf77ca26a8421cfe61a52ac312958308d4912e78ce8e0f61d6902e4494d4cc38f9b0dd1b23a427a7a5734e27e5d9729231426b06bb9c73b56a142f83f6b68@52.72.123.113:30311",
];

/// CPU and memory of a node, and its disk full and archive, per network. A
/// mainnet full node keeps every block (about 6 TB in BNB Chain's 2026
/// snapshots); Chapel's is about 440 GB.
fn network_defaults(network: &str) -> (Resources, u32, u32) {
    let r = |cpu_millis, memory_mib| Resources { cpu_millis, memory_mib };
    match network {
        "mainnet" => (r(8000, 32768), 6656, 12288),
        _ => (r(4000, 16384), 600, 1536),
    }
}

/// What the capabilities say of BSC.
fn one_process() -> OneProcess {
    OneProcess {
        chain: CHAIN,
        role: NODE,
        client: CLIENT,
        networks: NETWORKS.to_vec(),
        node_types: &[NodeType::Full, NodeType::Archive],
        min_versions: MIN_VERSIONS.to_vec(),
        ports: PORTS.to_vec(),
        managed: MANAGED,
        // A command line: any flag of the client's but the managed ones.
        overrides: vec![],
        defaults: network_defaults,
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Bsc;

impl Bsc {
    fn flags(spec: &NodeSpec, data: &str, listen: &str, ports: &BTreeMap<&str, u16>) -> Flags {
        let chapel = spec.network == "chapel";
        let f = Flags::new()
            .on(if chapel { "chapel" } else { "mainnet" })
            .set("datadir", data)
            .set("port", ports["p2p"])
            .on("http")
            .set("http.addr", listen)
            .set("http.port", ports["http"])
            .set("http.api", "eth,net,web3")
            .on("ws")
            .set("ws.addr", listen)
            .set("ws.port", ports["ws"])
            .set("ws.api", "eth,net,web3")
            .on("metrics")
            .set("metrics.addr", listen)
            .set("metrics.port", ports["metrics"]);
        // geth answers 403 to a Host header it does not list (a pod's address).
        let f = f.when(listen != "127.0.0.1", |f| f.set("http.vhosts", "*").set("ws.origins", "*"));
        let f = f.when(chapel, |f| f.set("bootnodes", CHAPEL_BOOTNODES.join(",")));
        if spec.node_type == NodeType::Archive {
            // Path-scheme state keeps 600,000 blocks of history unless told to keep all
            // (geth 1.16's path archive, merged in BSC 1.6; BNB Chain itself points archives at Erigon).
            f.set("syncmode", "full").set("gcmode", "archive").set("history.state", 0)
        } else {
            f.set("syncmode", "snap")
        }
    }
}

impl ChainAdapter for Bsc {
    fn chain(&self) -> &'static str {
        CHAIN
    }

    fn support(&self) -> ChainSupport {
        one_process().support()
    }

    fn render_client(&self, spec: &NodeSpec, c: &ClientSpec, paths: &NodePaths) -> Result<RenderedUnit, RenderError> {
        let ports = one_process().ports_of(spec, c)?;
        let data = paths.data(NODE).display().to_string();
        let flags = Self::flags(spec, &data, paths.listen.address(), &ports);
        let args = flags.overridden(CLIENT, &c.config_overrides, MANAGED)?.into_args();
        let port = |name: &str, peer: bool| NamedPort { name: name.into(), port: ports[name], tcp: true, udp: peer, exposed: true, peer };
        Ok(RenderedUnit {
            program: Program::Client { client: c.client.clone(), version: c.version.clone() },
            args,
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            files: vec![],
            probe: Probe::EthJsonRpc { url: format!("http://127.0.0.1:{}", ports["http"]) },
            needs: vec![],
            ports: vec![port("p2p", true), port("http", false), port("ws", false), port("metrics", false)],
            // geth writes its state trie to disk on shutdown.
            stop_grace_secs: 300,
            volumes: vec![],
        })
    }

    fn image(&self, _network: &str, client: &str, version: &str) -> Option<ContainerImage> {
        // Tags spell the version without a `v`; the image's entrypoint script
        // guesses a config and runs `geth init`, so run geth itself.
        (client == CLIENT).then(|| ContainerImage {
            reference: format!("{IMAGE}:{}", version.trim_start_matches('v')),
            command: vec!["geth".into()],
            writable_root: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(network: &str) -> NodeSpec {
        crate::adapter::single::spec(CHAIN, network, NODE, CLIENT, "1.7.8")
    }

    #[test]
    fn the_network_is_a_flag_and_chapel_gets_its_peers() {
        let u = Bsc.render_client(&spec("mainnet"), &spec("mainnet").clients[0], &NodePaths::host("/n")).unwrap();
        assert_eq!(u.args[..3], ["--mainnet", "--datadir=/n/data/node", "--port=30311"]);
        assert!(u.args.contains(&"--syncmode=snap".to_string()) && !u.args.iter().any(|a| a.starts_with("--bootnodes")));
        assert_eq!(u.probe, Probe::EthJsonRpc { url: "http://127.0.0.1:8545".into() });
        let chapel = spec("chapel");
        let u = Bsc.render_client(&chapel, &chapel.clients[0], &NodePaths::pod("/novacula")).unwrap();
        assert_eq!(u.args[0], "--chapel");
        assert!(u.args.contains(&"--http.vhosts=*".to_string()) && u.args.contains(&"--http.addr=0.0.0.0".to_string()));
        assert!(u.args.iter().any(|a| a.starts_with("--bootnodes=enode://")));
    }

    #[test]
    fn archive_syncs_in_full_and_managed_flags_are_refused() {
        let mut s = spec("mainnet");
        s.node_type = NodeType::Archive;
        s.clients[0].config_overrides.insert("cache".into(), "10000".into());
        let u = Bsc.render_client(&s, &s.clients[0], &NodePaths::host("/n")).unwrap();
        assert!(u.args.contains(&"--gcmode=archive".to_string()) && u.args.contains(&"--syncmode=full".to_string()));
        assert_eq!(u.args.last().map(String::as_str), Some("--cache=10000"));
        for key in ["datadir", "chapel", "config", "http.port"] {
            let mut bad = spec("mainnet");
            bad.clients[0].config_overrides.insert(key.into(), "x".into());
            assert!(Bsc.render_client(&bad, &bad.clients[0], &NodePaths::host("/n")).is_err(), "{key}");
        }
        assert_eq!(Bsc.image("mainnet", CLIENT, "v1.7.8").unwrap().reference, "ghcr.io/bnb-chain/bsc:1.7.8");
        assert_eq!(Bsc.support().client(NODE, CLIENT).unwrap().min_version("mainnet"), Some("1.7.7"));
    }
}
