//! Bitcoin: one `node` process, Bitcoin Core's `bitcoind`, configured by a
//! `bitcoin.conf` the adapter writes (settings from Bitcoin Core's own
//! `bitcoind -help` and `doc/bitcoin-conf.md`).
//!
//! Everything the node needs is in the config file, under the network's
//! section (`[main]`, `[test]`, `[testnet4]`, `[signet]`, `[regtest]`), so
//! options Bitcoin Core reads per network apply. A spec may override only
//! the settings listed in [`SETTINGS`], each with its type: Bitcoin Core has
//! settings that run a shell command (`blocknotify`, `startupnotify`...) or
//! read and write files anywhere (`includeconf`, `debuglogfile`,
//! `walletdir`), and a spec never chooses a program or a path.
//!
//! RPC credentials are generated once, where the node's files are kept (a
//! file on the host, a Secret in the cluster), included from `rpc.conf`,
//! never in a spec. The node runs without a wallet: it serves the chain.

use super::single::{listed, override_keys, OneProcess};
use super::{ChainAdapter, ContainerImage, FileContents, NamedPort, NodePaths, Probe, Program, RenderError, RenderedFile, RenderedUnit, Secret};
use novacula_core::executor::{ChainSupport, OverrideKind};
use novacula_core::spec::{ClientSpec, NodeSpec, NodeType, Resources};
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub const CHAIN: &str = "bitcoin";
/// The one process of a node.
pub const NODE: &str = "node";
pub const BITCOIND: &str = "bitcoind";

/// Networks as specs name them, and the section of `bitcoin.conf` each reads.
pub const NETWORKS: [(&str, &str); 5] = [("mainnet", "main"), ("testnet", "test"), ("testnet4", "testnet4"), ("signet", "signet"), ("regtest", "regtest")];

/// The file of generated RPC credentials, in the node's config directory.
pub const RPC_FILE: &str = "rpc.conf";
pub const CONF_FILE: &str = "bitcoin.conf";
/// The RPC user of the generated credentials.
pub const RPC_USER: &str = "novacula";
/// Bitcoin Core publishes no image of its own: Docker Hub's `bitcoin/bitcoin`
/// (bitcoin-core-docker, unofficial, kept by a Bitcoin Core contributor;
/// tags are release names) is the one most used. Its entrypoint (which
/// chowns and switches user as root) is bypassed: `bitcoind` runs with the
/// rendered arguments as the pod's user. Clusters that build their own pass
/// it as the client's `image` (within the executor's allowlist).
pub const IMAGE: &str = "bitcoin/bitcoin";

/// Ports and Bitcoin Core's mainnet defaults (the control plane allocates a
/// free one per host; every network gets the one allocated).
const PORTS: [(&str, u16); 2] = [("p2p", 8333), ("rpc", 8332)];

/// The settings a spec may override, with their types and Bitcoin Core's
/// defaults (none shown where a release changed it: `dbcache` depends on the
/// memory from 31.0, `rpcthreads` and `rpcworkqueue` grew in 29.0,
/// `minrelaytxfee` fell in 30.0).
/// A setting: name, type, integer bounds, enum values, default, description.
pub const SETTINGS: &[super::single::Setting] = &[
    ("dbcache", OverrideKind::Integer, Some((4, 1_048_576)), &[], "", "UTXO database cache, MiB"),
    ("maxconnections", OverrideKind::Integer, Some((0, 10_000)), &[], "125", "peer connections at most"),
    ("maxmempool", OverrideKind::Integer, Some((5, 1_048_576)), &[], "300", "memory pool size, MiB"),
    ("mempoolexpiry", OverrideKind::Integer, Some((1, 100_000)), &[], "336", "hours a transaction stays in the memory pool"),
    ("maxuploadtarget", OverrideKind::Integer, Some((0, i64::MAX)), &[], "0", "upload target per 24 h, MiB (0: none)"),
    ("par", OverrideKind::Integer, Some((-64, 64)), &[], "0", "script verification threads (0: auto)"),
    ("rpcthreads", OverrideKind::Integer, Some((1, 1024)), &[], "", "threads serving RPC"),
    ("rpcworkqueue", OverrideKind::Integer, Some((1, 65_536)), &[], "", "RPC requests queued at most"),
    // 0 (keep every block) is the default, 1 manual pruning by RPC: neither is offered.
    ("prune", OverrideKind::Integer, Some((550, i64::MAX)), &[], "", "keep about this many MiB of blocks (full nodes; unset: all)"),
    ("blocksonly", OverrideKind::Bool, None, &[], "0", "relay blocks only, no loose transactions"),
    ("listen", OverrideKind::Bool, None, &[], "1", "accept connections from peers"),
    ("discover", OverrideKind::Bool, None, &[], "1", "discover and announce its own addresses"),
    ("dnsseed", OverrideKind::Bool, None, &[], "1", "ask DNS seeds for peers"),
    ("peerbloomfilters", OverrideKind::Bool, None, &[], "0", "serve BIP37 bloom filters"),
    ("blockfilterindex", OverrideKind::Bool, None, &[], "0", "keep the BIP158 block filter index"),
    ("coinstatsindex", OverrideKind::Bool, None, &[], "0", "keep the coin statistics index"),
    // onion, i2p and cjdns need a proxy or router setting a spec cannot set.
    ("onlynet", OverrideKind::Enum, None, &["ipv4", "ipv6"], "", "connect through this network only"),
    ("assumevalid", OverrideKind::String, None, &[], "", "block hash whose ancestors' scripts are not verified (0: verify all)"),
    ("minrelaytxfee", OverrideKind::String, None, &[], "", "lowest fee rate relayed, BTC/kvB"),
    (
        "debug",
        OverrideKind::Enum,
        None,
        &["0", "1", "net", "mempool", "rpc", "bench", "validation", "estimatefee", "leveldb", "prune", "coindb"],
        "0",
        "log category",
    ),
];

/// The oldest release that runs a network: testnet4 came with Bitcoin Core 28.0.
const MIN_VERSIONS: [(&str, &str); 1] = [("testnet4", "28.0.0")];

/// Settings the adapter writes itself, refused even past the control plane.
const MANAGED: &[&str] = &["server", "port", "rpcport", "rpcbind", "rpcallowip", "txindex", "disablewallet", "printtoconsole", "nodebuglogfile", "includeconf"];

fn section(network: &str) -> Option<&'static str> {
    NETWORKS.iter().find(|(n, _)| *n == network).map(|(_, s)| *s)
}

/// CPU, memory and disk of a node per network (a mainnet full node: about
/// 700 GB of blocks and chainstate in 2026), and an archive's: the
/// transaction index adds about a tenth.
fn network_defaults(network: &str) -> (Resources, u32, u32) {
    let r = |cpu_millis, memory_mib| Resources { cpu_millis, memory_mib };
    let (resources, disk_gib) = match network {
        "mainnet" => (r(2000, 4096), 900),
        "testnet" => (r(1000, 2048), 250),
        "testnet4" | "signet" => (r(1000, 2048), 50),
        _ => (r(500, 512), 10),
    };
    (resources, disk_gib, if disk_gib >= 100 { disk_gib + disk_gib / 10 } else { 0 })
}

/// What the capabilities say of Bitcoin.
fn one_process() -> OneProcess {
    OneProcess {
        chain: CHAIN,
        role: NODE,
        client: BITCOIND,
        networks: NETWORKS.iter().map(|(n, _)| *n).collect(),
        node_types: &[NodeType::Full, NodeType::Archive],
        min_versions: MIN_VERSIONS.to_vec(),
        ports: PORTS.to_vec(),
        managed: MANAGED,
        overrides: override_keys(SETTINGS),
        defaults: network_defaults,
    }
}

/// Bitcoin Core's image tags and download directories drop a zero patch (`28.0`, `28.1`).
pub fn release_name(version: &str) -> String {
    let v = version.trim_start_matches('v');
    v.strip_suffix(".0").filter(|s| s.matches('.').count() == 1).unwrap_or(v).to_string()
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Bitcoin;

impl Bitcoin {
    /// `bitcoin.conf`: the network, then its section with the adapter's
    /// settings and the spec's overrides (each checked again here).
    fn config(spec: &NodeSpec, c: &ClientSpec, paths: &NodePaths, ports: &BTreeMap<&str, u16>) -> Result<String, RenderError> {
        let network = &spec.network;
        let section = section(network).ok_or_else(|| RenderError::UnsupportedNetwork { chain: CHAIN, network: network.clone(), client: c.client.clone() })?;
        let mut conf = String::new();
        let _ = writeln!(conf, "# Written by Novacula for node {}; replaced at every change of its spec.", spec.name);
        match network.as_str() {
            "mainnet" => {}
            "testnet" => conf.push_str("testnet=1\n"),
            other => {
                let _ = writeln!(conf, "{other}=1");
            }
        }
        let _ = writeln!(conf, "includeconf={}", paths.config().join(RPC_FILE).display());
        let _ = writeln!(conf, "\n[{section}]");
        let (rpc_bind, rpc_allow) = match paths.listen {
            super::Listen::Localhost => ("127.0.0.1", "127.0.0.1"),
            // In a pod: the Service and the namespace's NetworkPolicy decide who reaches it.
            super::Listen::Pod => ("0.0.0.0", "0.0.0.0/0"),
        };
        let mut lines: Vec<(String, String)> = vec![
            ("server".into(), "1".into()),
            ("port".into(), ports["p2p"].to_string()),
            ("rpcport".into(), ports["rpc"].to_string()),
            ("rpcbind".into(), rpc_bind.into()),
            ("rpcallowip".into(), rpc_allow.into()),
            ("disablewallet".into(), "1".into()),
            ("printtoconsole".into(), "1".into()),
            // The console is the log (the journal, or the pod's); no second copy in the data dir.
            ("nodebuglogfile".into(), "1".into()),
        ];
        if spec.node_type == NodeType::Archive {
            if c.config_overrides.contains_key("prune") {
                // Bitcoin Core refuses to start with both.
                return Err(RenderError::ManagedKey { client: c.client.clone(), key: "prune".into() });
            }
            lines.push(("txindex".into(), "1".into()));
        }
        // The listed settings only (no managed key is one), each of its type, on one line.
        let allowed = override_keys(SETTINGS);
        for (setting, value) in listed(c, &allowed)? {
            lines.push((setting.name.clone(), value.to_string()));
        }
        for (k, v) in lines {
            let _ = writeln!(conf, "{k}={v}");
        }
        Ok(conf)
    }
}

impl ChainAdapter for Bitcoin {
    fn chain(&self) -> &'static str {
        CHAIN
    }

    fn support(&self) -> ChainSupport {
        one_process().support()
    }

    fn render_client(&self, spec: &NodeSpec, c: &ClientSpec, paths: &NodePaths) -> Result<RenderedUnit, RenderError> {
        let ports = one_process().ports_of(spec, c)?;
        let conf = Self::config(spec, c, paths, &ports)?;
        let data = paths.data(NODE);
        let config = paths.config();
        let args = vec![format!("-conf={}", config.join(CONF_FILE).display()), format!("-datadir={}", data.display())];
        let files = vec![
            RenderedFile::text(CONF_FILE, conf),
            RenderedFile {
                name: RPC_FILE.into(),
                contents: FileContents::Secret(Secret { random_bytes: 32, template: Some(format!("rpcuser={RPC_USER}\nrpcpassword={{secret}}\n")) }),
            },
        ];
        let port = |name: &str, peer: bool| NamedPort { name: name.into(), port: ports[name], tcp: true, udp: false, exposed: true, peer };
        Ok(RenderedUnit {
            program: Program::Client { client: c.client.clone(), version: c.version.clone() },
            args,
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            files,
            probe: Probe::BitcoinRpc { url: format!("http://127.0.0.1:{}", ports["rpc"]), credentials: config.join(RPC_FILE).display().to_string() },
            needs: vec![],
            ports: vec![port("p2p", true), port("rpc", false)],
            // Bitcoin Core flushes its UTXO cache on shutdown: minutes with a large dbcache.
            stop_grace_secs: 600,
            volumes: vec![],
        })
    }

    fn image(&self, _network: &str, client: &str, version: &str) -> Option<ContainerImage> {
        (client == BITCOIND).then(|| ContainerImage {
            reference: format!("{IMAGE}:{}", release_name(version)),
            command: vec!["bitcoind".into()],
            writable_root: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(network: &str) -> NodeSpec {
        crate::adapter::single::spec(CHAIN, network, NODE, BITCOIND, "28.1.0")
    }

    fn conf(u: &RenderedUnit) -> &str {
        match &u.files[0].contents {
            FileContents::Text(t) => t,
            _ => panic!("bitcoin.conf is text"),
        }
    }

    #[test]
    fn settings_go_in_the_network_section_and_credentials_in_a_generated_file() {
        let mut s = spec("signet");
        s.node_type = NodeType::Archive;
        s.clients[0].ports = [("p2p".to_string(), 38333), ("rpc".to_string(), 38332)].into();
        s.clients[0].config_overrides.insert("dbcache".into(), "2048".into());
        let u = Bitcoin.render_client(&s, &s.clients[0], &NodePaths::host("/srv/btc")).unwrap();
        assert_eq!(u.args, ["-conf=/srv/btc/config/bitcoin.conf", "-datadir=/srv/btc/data/node"]);
        let c = conf(&u);
        assert!(c.contains("signet=1\nincludeconf=/srv/btc/config/rpc.conf\n\n[signet]\nserver=1\nport=38333\nrpcport=38332\nrpcbind=127.0.0.1\n"), "{c}");
        assert!(c.contains("txindex=1\ndbcache=2048\n"), "archive keeps the transaction index; overrides come last: {c}");
        let FileContents::Secret(secret) = &u.files[1].contents else { panic!("the credentials are generated") };
        assert_eq!(secret.text("ab"), "rpcuser=novacula\nrpcpassword=ab\n");
        assert_eq!(u.probe, Probe::BitcoinRpc { url: "http://127.0.0.1:38332".into(), credentials: "/srv/btc/config/rpc.conf".into() });
        let pod = Bitcoin.render_client(&s, &s.clients[0], &NodePaths::pod("/novacula")).unwrap();
        assert!(conf(&pod).contains("rpcbind=0.0.0.0\nrpcallowip=0.0.0.0/0\n"));
        assert!(!conf(&Bitcoin.render_client(&spec("mainnet"), &spec("mainnet").clients[0], &NodePaths::host("/n")).unwrap()).contains("=1\nincludeconf"));
    }

    #[test]
    fn settings_that_run_programs_or_name_paths_are_never_written() {
        for (key, value) in [
            ("blocknotify", "curl x | sh"),
            ("includeconf", "/etc/shadow"),
            ("debuglogfile", "/etc/cron.d/x"),
            ("rpcbind", "0.0.0.0"),
            ("dbcache", "1\nblocknotify=sh"),
        ] {
            let mut s = spec("regtest");
            s.clients[0].config_overrides.insert(key.into(), value.into());
            let err = Bitcoin.render_client(&s, &s.clients[0], &NodePaths::host("/n")).unwrap_err();
            assert!(matches!(err, RenderError::ManagedKey { .. }), "{key}: {err}");
        }
        let mut archive = spec("mainnet");
        archive.node_type = NodeType::Archive;
        archive.clients[0].config_overrides.insert("prune".into(), "1000".into());
        assert!(Bitcoin.render_client(&archive, &archive.clients[0], &NodePaths::host("/n")).is_err(), "txindex and prune together stop bitcoind");
        archive.node_type = NodeType::Full;
        assert!(Bitcoin.render_client(&archive, &archive.clients[0], &NodePaths::host("/n")).is_ok());
        for m in MANAGED {
            assert!(SETTINGS.iter().all(|s| s.0 != *m), "{m} is the adapter's, never a setting");
        }
        let caps = Bitcoin.support();
        let node = caps.client(NODE, BITCOIND).unwrap();
        assert!(node.override_key("blocknotify").is_none() && node.override_key("dbcache").is_some());
        assert_eq!(node.min_version("testnet4"), Some("28.0.0"));
    }

    #[test]
    fn image_tags_are_bitcoin_cores_release_names() {
        assert_eq!(release_name("28.0.0"), "28.0");
        assert_eq!(release_name("28.1.0"), "28.1");
        assert_eq!(release_name("0.21.2"), "0.21.2");
        assert_eq!(Bitcoin.image("mainnet", BITCOIND, "28.1.0").unwrap().reference, "bitcoin/bitcoin:28.1");
        assert!(Bitcoin.image("mainnet", "geth", "1.0.0").is_none());
    }
}
