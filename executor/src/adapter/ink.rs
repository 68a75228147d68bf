//! Ink, Kraken's OP Stack L2: op-reth (role `execution`) and op-node (role
//! `rollup`) joined by the engine API on localhost with a JWT both read, as
//! an Ethereum node's two clients are.
//!
//! op-geth cannot follow Ink since its Karst upgrade (mainnet 2026-07-08,
//! Sepolia 2026-06-17): OP Labs ended its support and names op-reth >= 2.3.3
//! with op-node >= 1.19.1, so op-reth is the execution client offered. Both
//! carry Ink's chain and rollup configs (superchain registry: `--chain ink`,
//! `--network=ink-mainnet`): no genesis or rollup.json download. op-node
//! derives the L2 from an L1 node the spec names by secret (`l1`,
//! `l1.beacon`: its URLs carry API keys), passed in its environment
//! (OP_NODE_L1_ETH_RPC, OP_NODE_L1_BEACON), never on a command line. It syncs
//! from L1 (`consensus-layer`): Ink's execution layer has no peers to snap
//! sync from. Sources: ethereum-optimism/optimism `op-node/flags`,
//! `rust/op-reth/crates/node/src/args.rs` (RollupArgs), reth node-core args,
//! the op-node 1.19.1 and op-reth 2.3.3 release notes, inkonchain/node
//! (sequencer URLs, op-node peers).

use super::flags::Flags;
use super::single::{listed, override_keys, Setting};
use super::{ChainAdapter, ContainerImage, FileContents, NamedPort, NodePaths, Probe, Program, RenderError, RenderedFile, RenderedUnit, Secret};
use novacula_core::executor::{ChainSupport, ClientSupport, MinVersion, NetworkDefaults, OverrideKind, PortSupport, RoleResources};
use novacula_core::spec::{ClientSpec, NodeSpec, NodeType, Resources};
use std::collections::BTreeMap;

pub const CHAIN: &str = "ink";
pub const EXECUTION: &str = "execution";
/// op-node: derives the L2 from L1 and drives the execution client.
pub const ROLLUP: &str = "rollup";
pub const OP_RETH: &str = "op-reth";
pub const OP_NODE: &str = "op-node";
pub const NETWORKS: [&str; 2] = ["ink-mainnet", "ink-sepolia"];
const IMAGES: &str = "us-docker.pkg.dev/oplabs-tools-artifacts/images";

const JWT_FILE: &str = "jwt.hex";
const LOCALHOST: &str = "127.0.0.1";

/// Per network: op-reth's chain name, the sequencer transactions go to,
/// and op-node's peers (Ink's bootnode and static peer).
struct Network {
    name: &'static str,
    reth_chain: &'static str,
    sequencer: &'static str,
    bootnodes: &'static str,
    statics: &'static str,
}

const NETWORK_DEFS: [Network; 2] = [
    Network {
        name: "ink-mainnet",
        reth_chain: "ink",
        sequencer: "https://rpc-gel.inkonchain.com",
        bootnodes: "enr:-Iu4QCqTQZVBnbPWXcdUxcakGoCCzCFr5vVzDfNTOr-Pi3KaOJZMXlnqTR9r9p4EemXS8fS59EdQaX8qrkyE01nvsNcBgmlkgnY0gmlwhCIgwYaJc2VjcDI1NmsxoQMW3w0F1AibYelKqJUKaie5RuKc7S9sPfWvH4lSJw4Fo4N0Y3CCIyuDdWRwgiMs",
        statics: "/ip4/34.32.193.134/tcp/9003/p2p/16Uiu2HAmECGb1vmBKhgxVHzX2aYkPcmV8CZjpPxrNkRiFA1wa3CN",
    },
    Network {
        name: "ink-sepolia",
        reth_chain: "ink-sepolia",
        sequencer: "https://rpc-gel-sepolia.inkonchain.com",
        bootnodes: "enr:-Iu4QN7Ohk84lCZMSAbuPbU1vSMF93J7FUUab2_JBNX8q6wSPBeWrGu85ENsL-s2fcf9gvYc_Eiw8ZzdBzP5i05g9DwBgmlkgnY0gmlwhCP2ulGJc2VjcDI1NmsxoQLqBVn4RC7vvLvOB95odV2bp6zKCQHPw7j60wBG68qGJYN0Y3CCIyuDdWRwgiMs",
        statics: "/ip4/35.246.186.81/tcp/9003/p2p/16Uiu2HAmBBC7aADaA9cfMeuHLZLYAdLNwEahKh7kc9WyUrcvPqXz",
    },
];

/// op-reth: P2P (TCP, and UDP for both discovery versions on the same
/// number), JSON-RPC, WebSocket, the engine API, metrics.
const RETH_PORTS: [(&str, u16); 5] = [("p2p", 30303), ("http", 8545), ("ws", 8546), ("engine", 8551), ("metrics", 9001)];
/// op-node: its libp2p P2P (TCP and UDP), its RPC, metrics.
const NODE_PORTS: [(&str, u16); 3] = [("p2p", 9222), ("rpc", 9545), ("metrics", 7300)];

/// Karst: op-reth 2.3.3 and op-node 1.19.1, upgraded together (engine_getPayloadV5).
const MIN_RETH: &str = "2.3.3";
const MIN_NODE: &str = "1.19.1";

/// op-reth flags the adapter sets.
const RETH_MANAGED: &[&str] = &[
    "chain",
    "datadir",
    "port",
    "discovery.port",
    "discovery.v5.port",
    "http.port",
    "ws.port",
    "authrpc.addr",
    "authrpc.port",
    "authrpc.jwtsecret",
    "metrics",
    "rollup.sequencer",
    "rollup.sequencer-http",
    "full",
    "minimal",
    "ipcpath",
    "ipcdisable",
    "config",
    "dev",
    "instance",
    "p2p-secret-key",
    "datadir.static-files",
    "log.file.directory",
];

/// The secrets op-node reads from its environment: its setting, the variable.
const SECRETS: [(&str, &str); 2] = [("l1", "OP_NODE_L1_ETH_RPC"), ("l1.beacon", "OP_NODE_L1_BEACON")];

const RPC_KINDS: &[&str] = &["standard", "basic", "any", "alchemy", "quicknode", "infura", "parity", "nethermind", "debug_geth", "erigon"];

/// op-node's settings: the two secrets it needs, and how it treats its L1.
const NODE_SETTINGS: &[Setting] = &[
    ("l1", OverrideKind::Secret, None, &[], "", "L1 execution RPC URL (an Ethereum node of the network's L1): the name of a secret this executor holds"),
    ("l1.beacon", OverrideKind::Secret, None, &[], "", "L1 beacon API URL (blobs): the name of a secret this executor holds"),
    ("l1.rpckind", OverrideKind::Enum, None, RPC_KINDS, "standard", "the L1 RPC provider's kind (how receipts are fetched)"),
    ("l1.trustrpc", OverrideKind::Bool, None, &[], "0", "trust the L1 RPC's answers without checking them"),
    ("l1.rpc-max-batch-size", OverrideKind::Integer, Some((1, 1000)), &[], "20", "L1 requests per batch"),
    ("l1.max-concurrency", OverrideKind::Integer, Some((1, 1000)), &[], "10", "L1 requests at once"),
];

/// Requests per role and the disk of a node, full and archive (Ink's
/// guidance: 2 TB on mainnet, 500 GB on Sepolia; an archive about twice).
fn network_defaults(network: &str) -> (Resources, Resources, u32, u32) {
    let r = |cpu_millis, memory_mib| Resources { cpu_millis, memory_mib };
    match network {
        "ink-mainnet" => (r(4000, 16384), r(1000, 2048), 2048, 4096),
        _ => (r(2000, 8192), r(500, 1024), 512, 1024),
    }
}

fn ports(defaults: &[(&'static str, u16)], c: &ClientSpec) -> BTreeMap<&'static str, u16> {
    defaults.iter().map(|(name, default)| (*name, c.ports.get(*name).copied().unwrap_or(*default))).collect()
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Ink;

impl Ink {
    fn reth(spec: &NodeSpec, net: &Network, c: &ClientSpec, paths: &NodePaths, p: &BTreeMap<&str, u16>) -> Result<Vec<String>, RenderError> {
        let listen = paths.listen.address();
        let f = Flags::new()
            .word("node")
            .set("chain", net.reth_chain)
            .set("datadir", paths.data(EXECUTION).display())
            .set("port", p["p2p"])
            .set("discovery.port", p["p2p"])
            .set("discovery.v5.port", p["p2p"])
            .on("http")
            .set("http.addr", listen)
            .set("http.port", p["http"])
            .set("http.api", "eth,net,web3")
            .on("ws")
            .set("ws.addr", listen)
            .set("ws.port", p["ws"])
            .set("ws.api", "eth,net,web3")
            .set("authrpc.addr", LOCALHOST)
            .set("authrpc.port", p["engine"])
            .set("authrpc.jwtsecret", paths.config().join(JWT_FILE).display())
            .set("metrics", format!("{listen}:{}", p["metrics"]))
            .set("rollup.sequencer", net.sequencer)
            .on("rollup.disable-tx-pool-gossip")
            // reth's default socket, /tmp/reth.ipc, would be every node's on a host.
            .on("ipcdisable");
        // reth keeps everything unless told; `--full` keeps recent state history, every body.
        let f = f.when(spec.node_type == NodeType::Full, |f| f.on("full"));
        Ok(f.overridden(OP_RETH, &c.config_overrides, RETH_MANAGED)?.into_args())
    }

    fn node(
        spec: &NodeSpec,
        net: &Network,
        c: &ClientSpec,
        paths: &NodePaths,
        p: &BTreeMap<&str, u16>,
    ) -> Result<(Vec<String>, BTreeMap<String, String>), RenderError> {
        let listen = paths.listen.address();
        let engine = spec.client(EXECUTION).map_or(8551, |el| ports(&RETH_PORTS, el)["engine"]);
        let data = paths.data(ROLLUP);
        let mut f = Flags::new()
            .set("network", net.name)
            .set("l2", format!("http://{LOCALHOST}:{engine}"))
            .set("l2.jwt-secret", paths.config().join(JWT_FILE).display())
            .set("l2.enginekind", "reth")
            .set("syncmode", "consensus-layer")
            .set("rpc.addr", listen)
            .set("rpc.port", p["rpc"])
            .set("p2p.listen.ip", "0.0.0.0")
            .set("p2p.listen.tcp", p["p2p"])
            .set("p2p.listen.udp", p["p2p"])
            .set("p2p.priv.path", data.join("opnode_p2p_priv.txt").display())
            .set("p2p.peerstore.path", data.join("opnode_peerstore_db").display())
            .set("p2p.discovery.path", data.join("opnode_discovery_db").display())
            .set("p2p.bootnodes", net.bootnodes)
            .set("p2p.static", net.statics)
            .on("metrics.enabled")
            .set("metrics.addr", listen)
            .set("metrics.port", p["metrics"])
            .set("rollup.load-protocol-versions", "true");
        let mut secret_env = BTreeMap::new();
        for (name, var) in SECRETS {
            // Its value, a secret's name, is checked with the other settings below.
            let secret = c.config_overrides.get(name).ok_or_else(|| RenderError::MissingSecret { client: c.client.clone(), key: name.into() })?;
            secret_env.insert(var.to_string(), secret.clone());
        }
        // The listed settings only, each of its type; the secrets went to the environment.
        let allowed = override_keys(NODE_SETTINGS);
        for (setting, value) in listed(c, &allowed)? {
            f = match setting.kind {
                OverrideKind::Secret => f,
                OverrideKind::Bool if value == "1" => f.on(&setting.name),
                OverrideKind::Bool => f,
                _ => f.set(&setting.name, value),
            };
        }
        Ok((f.into_args(), secret_env))
    }
}

impl ChainAdapter for Ink {
    fn chain(&self) -> &'static str {
        CHAIN
    }

    fn support(&self) -> ChainSupport {
        let min = |v: &str| NETWORKS.iter().map(|n| MinVersion { network: (*n).into(), version: v.into() }).collect();
        let port_support =
            |defaults: &[(&str, u16)]| defaults.iter().map(|(name, d)| PortSupport { name: (*name).into(), default: *d, peer: *name == "p2p" }).collect();
        let networks: Vec<String> = NETWORKS.iter().map(ToString::to_string).collect();
        ChainSupport {
            chain: CHAIN.into(),
            networks: networks.clone(),
            node_types: vec![NodeType::Full, NodeType::Archive],
            clients: vec![
                ClientSupport {
                    role: EXECUTION.into(),
                    client: OP_RETH.into(),
                    versions: vec![],
                    networks: networks.clone(),
                    min_versions: min(MIN_RETH),
                    ports: port_support(&RETH_PORTS),
                    managed_keys: RETH_MANAGED.iter().map(ToString::to_string).collect(),
                    volumes: vec![],
                    // A command line: any of op-reth's flags but the managed ones.
                    overrides: vec![],
                },
                ClientSupport {
                    role: ROLLUP.into(),
                    client: OP_NODE.into(),
                    versions: vec![],
                    networks,
                    min_versions: min(MIN_NODE),
                    ports: port_support(&NODE_PORTS),
                    managed_keys: vec![],
                    volumes: vec![],
                    overrides: override_keys(NODE_SETTINGS),
                },
            ],
            network_defaults: NETWORKS
                .iter()
                .map(|n| {
                    let (execution, rollup, disk_gib, archive_disk_gib) = network_defaults(n);
                    NetworkDefaults {
                        network: (*n).into(),
                        resources: vec![
                            RoleResources { role: EXECUTION.into(), resources: execution },
                            RoleResources { role: ROLLUP.into(), resources: rollup },
                        ],
                        disk_gib,
                        checkpoint_sync_url: None,
                        archive_disk_gib,
                    }
                })
                .collect(),
        }
    }

    fn render_client(&self, spec: &NodeSpec, c: &ClientSpec, paths: &NodePaths) -> Result<RenderedUnit, RenderError> {
        let net = NETWORK_DEFS.iter().find(|n| n.name == spec.network).ok_or_else(|| RenderError::UnsupportedNetwork {
            chain: CHAIN,
            network: spec.network.clone(),
            client: c.client.clone(),
        })?;
        let jwt = RenderedFile { name: JWT_FILE.into(), contents: FileContents::Secret(Secret::hex(32)) };
        let (args, secret_env, defaults, probe, needs, grace): (_, _, &[(&str, u16)], _, _, _) = match (c.role.as_str(), c.client.as_str()) {
            (EXECUTION, OP_RETH) => {
                let p = ports(&RETH_PORTS, c);
                let probe = Probe::EthJsonRpc { url: format!("http://{LOCALHOST}:{}", p["http"]) };
                (Self::reth(spec, net, c, paths, &p)?, BTreeMap::new(), &RETH_PORTS, probe, vec![], 300)
            }
            (ROLLUP, OP_NODE) => {
                let p = ports(&NODE_PORTS, c);
                let probe = Probe::OpNode { url: format!("http://{LOCALHOST}:{}", p["rpc"]) };
                let (args, secret_env) = Self::node(spec, net, c, paths, &p)?;
                (args, secret_env, &NODE_PORTS, probe, vec![EXECUTION.to_string()], 60)
            }
            _ => return Err(RenderError::UnsupportedClient { chain: CHAIN, client: c.client.clone() }),
        };
        let p = ports(defaults, c);
        let ports = p
            .iter()
            .map(|(name, port)| {
                let peer = *name == "p2p";
                NamedPort { name: (*name).to_string(), port: *port, tcp: true, udp: peer, exposed: *name != "engine", peer }
            })
            .collect();
        Ok(RenderedUnit {
            program: Program::Client { client: c.client.clone(), version: c.version.clone() },
            args,
            env: BTreeMap::new(),
            secret_env,
            files: vec![jwt],
            probe,
            needs,
            ports,
            stop_grace_secs: grace,
            volumes: vec![],
        })
    }

    fn image(&self, _network: &str, client: &str, version: &str) -> Option<ContainerImage> {
        // op-reth's image runs op-reth (the arguments start with `node`);
        // op-node's has no entrypoint.
        let command = match client {
            OP_RETH => vec![],
            OP_NODE => vec!["op-node".to_string()],
            _ => return None,
        };
        Some(ContainerImage { reference: format!("{IMAGES}/{client}:v{}", version.trim_start_matches('v')), command, writable_root: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(network: &str) -> NodeSpec {
        let mut s = novacula_core::fixtures::eth_spec("ink");
        s.chain = CHAIN.into();
        s.network = network.into();
        s.clients = vec![novacula_core::fixtures::client(EXECUTION, OP_RETH, "2.8.2"), novacula_core::fixtures::client(ROLLUP, OP_NODE, "1.20.1")];
        s.clients[1].config_overrides = [("l1".to_string(), "eth-l1".to_string()), ("l1.beacon".to_string(), "eth-beacon".to_string())].into();
        s
    }

    #[test]
    fn op_node_reads_the_l1_from_secrets_and_drives_op_reth_over_the_engine_api() {
        let mut s = spec("ink-sepolia");
        s.clients[0].ports.insert("engine".into(), 9551);
        s.clients[1].config_overrides.insert("l1.rpckind".into(), "alchemy".into());
        s.clients[1].config_overrides.insert("l1.trustrpc".into(), "1".into());
        let paths = NodePaths::host("/srv/ink");
        let reth = Ink.render_client(&s, &s.clients[0], &paths).unwrap();
        assert_eq!(reth.args[..3], ["node", "--chain=ink-sepolia", "--datadir=/srv/ink/data/execution"]);
        assert!(reth.args.contains(&"--authrpc.port=9551".to_string()) && reth.args.contains(&"--full".to_string()));
        assert!(reth.args.contains(&"--rollup.sequencer=https://rpc-gel-sepolia.inkonchain.com".to_string()));
        let node = Ink.render_client(&s, &s.clients[1], &paths).unwrap();
        assert!(node.args.contains(&"--l2=http://127.0.0.1:9551".to_string()) && node.args.contains(&"--l2.jwt-secret=/srv/ink/config/jwt.hex".to_string()));
        assert!(node.args.contains(&"--l1.rpckind=alchemy".to_string()) && node.args.contains(&"--l1.trustrpc".to_string()));
        assert!(!node.args.iter().any(|a| a.contains("eth-l1") || a.starts_with("--l1=")), "the L1 never on the command line: {:?}", node.args);
        assert_eq!(
            node.secret_env,
            BTreeMap::from([("OP_NODE_L1_BEACON".to_string(), "eth-beacon".to_string()), ("OP_NODE_L1_ETH_RPC".to_string(), "eth-l1".to_string())])
        );
        assert_eq!(node.needs, ["execution"]);
        assert_eq!(node.probe, Probe::OpNode { url: "http://127.0.0.1:9545".into() });
        assert_eq!(reth.files, node.files, "one JWT, both read it");
    }

    #[test]
    fn a_missing_secret_or_a_setting_off_the_list_is_refused() {
        let mut s = spec("ink-mainnet");
        s.clients[1].config_overrides.remove("l1.beacon");
        assert!(matches!(Ink.render_client(&s, &s.clients[1], &NodePaths::host("/n")), Err(RenderError::MissingSecret { .. })));
        for (key, value) in [("l1", "https://key@l1.example"), ("network", "op-mainnet"), ("l2", "http://evil"), ("l1.rpckind", "nope")] {
            let mut s = spec("ink-mainnet");
            s.clients[1].config_overrides.insert(key.into(), value.into());
            assert!(Ink.render_client(&s, &s.clients[1], &NodePaths::host("/n")).is_err(), "{key}");
        }
        let mut archive = spec("ink-mainnet");
        archive.node_type = NodeType::Archive;
        assert!(
            !Ink.render_client(&archive, &archive.clients[0], &NodePaths::host("/n")).unwrap().args.contains(&"--full".to_string()),
            "reth keeps everything by default"
        );
        let caps = Ink.support();
        assert_eq!(caps.client(ROLLUP, OP_NODE).unwrap().override_key("l1").unwrap().kind, OverrideKind::Secret);
        assert_eq!(Ink.image("ink-mainnet", OP_NODE, "1.20.1").unwrap().command, ["op-node"]);
        assert_eq!(Ink.image("ink-mainnet", OP_RETH, "v2.8.2").unwrap().reference, "us-docker.pkg.dev/oplabs-tools-artifacts/images/op-reth:v2.8.2");
    }
}
