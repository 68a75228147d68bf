//! Tron: one java-tron FullNode per node, configured by a HOCON file.
//!
//! The node's `config.conf` includes the network's own file, kept verbatim
//! from upstream (`mainnet.conf`: java-tron 4.8.2's `config.conf`;
//! `nile.conf`: the Nile testnet's `config-nile.conf`, with its genesis
//! block), then sets what the adapter owns and the spec's listed settings:
//! HOCON keeps the last value of a key. Logs go to the console through the
//! adapter's `logback.xml` (the journal or the pod's log), and the JVM's
//! heap comes from the spec's memory (start.sh's rule: 60 % heap, 10 %
//! direct memory). Sources: tronprotocol/documentation-en
//! (installing_javatron, metrics, getnowblock, getnodeinfo), java-tron
//! 4.8.2 `CLIParameter.java`, `Configuration.java`, `docker/`.

use super::single::{listed, override_keys, OneProcess};
use super::{ChainAdapter, ContainerImage, NamedPort, NodePaths, Probe, Program, RenderError, RenderedFile, RenderedUnit};
use novacula_core::executor::{ChainSupport, OverrideKind};
use novacula_core::spec::{ClientSpec, NodeSpec, NodeType, Resources};
use std::collections::BTreeMap;
use std::fmt::Write;

pub const CHAIN: &str = "tron";
pub const NODE: &str = "node";
pub const CLIENT: &str = "java-tron";
pub const NETWORKS: [&str; 2] = ["mainnet", "nile"];
const IMAGE: &str = "tronprotocol/java-tron";

const CONF_FILE: &str = "config.conf";
const NETWORK_FILE: &str = "network.conf";
const LOGBACK_FILE: &str = "logback.xml";

/// The upstream file of each network, verbatim.
fn network_file(network: &str) -> Option<&'static str> {
    match network {
        "mainnet" => Some(include_str!("mainnet.conf")),
        "nile" => Some(include_str!("nile.conf")),
        _ => None,
    }
}

/// Name, HOCON key and default port. P2P is TCP and UDP (discovery).
const PORTS: [(&str, &str, u16); 6] = [
    ("p2p", "node.listen.port", 18888),
    ("http", "node.http.fullNodePort", 8090),
    ("solidity", "node.http.solidityPort", 8091),
    ("grpc", "node.rpc.port", 50051),
    ("jsonrpc", "node.jsonrpc.httpFullNodePort", 8545),
    ("metrics", "node.metrics.prometheus.port", 9527),
];

/// 4.8.2 is a mandatory upgrade on both networks, and the first to fill
/// what a config leaves out from its built-in defaults.
const MIN_VERSION: &str = "4.8.2";

/// (key, type, bounds, allowed, default, description): the settings a spec
/// may set, from java-tron's reference config. Nothing that names a file, a
/// plugin (`event.subscribe`) or a key (`localwitness`) is among them.
pub const SETTINGS: &[super::single::Setting] = &[
    ("node.maxConnections", OverrideKind::Integer, Some((1, 1000)), &[], "30", "peer connections at most"),
    ("node.minConnections", OverrideKind::Integer, Some((0, 1000)), &[], "8", "peer connections it keeps looking for"),
    ("node.minActiveConnections", OverrideKind::Integer, Some((0, 1000)), &[], "3", "outbound connections at least"),
    ("node.maxConnectionsWithSameIp", OverrideKind::Integer, Some((1, 100)), &[], "2", "connections from one address at most"),
    ("node.maxHttpConnectNumber", OverrideKind::Integer, Some((1, 100_000)), &[], "50", "concurrent HTTP API connections at most"),
    ("node.http.solidityEnable", OverrideKind::Bool, None, &[], "1", "serve the solidified-state HTTP API"),
    ("node.jsonrpc.httpFullNodeEnable", OverrideKind::Bool, None, &[], "0", "serve the Ethereum-style JSON-RPC (eth_getLogs misses the time it was off)"),
    ("node.openHistoryQueryWhenLiteFN", OverrideKind::Bool, None, &[], "0", "a Lite FullNode answers history queries"),
    ("storage.db.engine", OverrideKind::Enum, None, &["LEVELDB", "ROCKSDB"], "LEVELDB", "database engine (fixed by the data's first start)"),
    ("storage.db.sync", OverrideKind::Bool, None, &[], "0", "flush every database write"),
    ("vm.supportConstant", OverrideKind::Bool, None, &[], "0", "answer constant calls (triggerconstantcontract, eth_call)"),
    ("vm.saveInternalTx", OverrideKind::Bool, None, &[], "0", "keep internal transactions"),
    ("vm.maxTimeRatio", OverrideKind::String, None, &[], "5.0", "time a constant call may take, relative to a block's"),
    ("trx.reference.block", OverrideKind::Enum, None, &["solid", "head"], "solid", "the block transactions reference"),
];

/// Settings the adapter writes: ports, where data lives, what it serves.
const MANAGED: &[&str] = &[
    "node.listen.port",
    "node.http.fullNodePort",
    "node.http.solidityPort",
    "node.http.PBFTEnable",
    "node.rpc.port",
    "node.rpc.solidityEnable",
    "node.rpc.PBFTEnable",
    "node.jsonrpc.httpFullNodePort",
    "node.jsonrpc.httpSolidityEnable",
    "node.jsonrpc.httpPBFTEnable",
    "node.metrics.prometheus.enable",
    "node.metrics.prometheus.port",
    "storage.db.directory",
    "localwitness",
    "event.subscribe",
];

/// Requests and disk per network: a mainnet full node holds about 3 TB in
/// 2026 (java-tron 4.8.2 notes); Nile's about 30 GB.
fn network_defaults(network: &str) -> (Resources, u32, u32) {
    let r = |cpu_millis, memory_mib| Resources { cpu_millis, memory_mib };
    match network {
        "mainnet" => (r(8000, 32768), 3584, 0),
        _ => (r(4000, 16384), 100, 0),
    }
}

/// What the capabilities say of Tron.
fn one_process() -> OneProcess {
    OneProcess {
        chain: CHAIN,
        role: NODE,
        client: CLIENT,
        networks: NETWORKS.to_vec(),
        // A Lite FullNode is the same node started from a Lite snapshot.
        node_types: &[NodeType::Full],
        min_versions: NETWORKS.iter().map(|n| (*n, MIN_VERSION)).collect(),
        ports: PORTS.iter().map(|(name, _, default)| (*name, *default)).collect(),
        managed: MANAGED,
        overrides: override_keys(SETTINGS),
        defaults: network_defaults,
    }
}

/// The JVM's options from the spec's memory: start.sh's 60 % heap and 10 %
/// direct memory; none when the spec sets no memory (the JVM's own sizing).
/// No garbage collector is named: x86 images run JDK 8 and arm64 JDK 17,
/// which share no collector flag.
fn jvm_options(memory_mib: u32) -> String {
    let mut o = vec![];
    if memory_mib > 0 {
        let heap = u64::from(memory_mib) * 6 / 10;
        o.push(format!("-Xms{heap}m"));
        o.push(format!("-Xmx{heap}m"));
        o.push(format!("-XX:MaxDirectMemorySize={}m", memory_mib / 10));
    }
    o.extend(["-XX:ReservedCodeCacheSize=256m", "-XX:MetaspaceSize=256m", "-XX:MaxMetaspaceSize=512m"].map(String::from));
    o.join(" ")
}

/// A setting's value as HOCON: booleans and numbers bare, text quoted.
fn hocon_value(kind: OverrideKind, value: &str) -> String {
    match kind {
        OverrideKind::Bool => (value == "1").to_string(),
        OverrideKind::Integer => value.to_string(),
        // A JSON string is a HOCON quoted string.
        OverrideKind::String | OverrideKind::Enum | OverrideKind::Secret => serde_json::Value::String(value.to_string()).to_string(),
    }
}

const LOGBACK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by Novacula: java-tron logs to the console only (the journal or the pod's log). -->
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder>
      <pattern>%d{HH:mm:ss.SSS} %-5level [%t] [%c{1}] %m%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="STDOUT"/>
  </root>
</configuration>
"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct Tron;

impl Tron {
    fn config(spec: &NodeSpec, c: &ClientSpec, paths: &NodePaths, ports: &BTreeMap<&str, u16>) -> Result<String, RenderError> {
        let mut conf = String::new();
        let _ = writeln!(conf, "# Written by Novacula for node {}; replaced at every change of its spec.", spec.name);
        let _ = writeln!(conf, "# The network's own configuration, then the adapter's settings and the spec's (the last value of a key wins).");
        let _ = writeln!(conf, "include file({})\n", serde_json::Value::String(paths.config().join(NETWORK_FILE).display().to_string()));
        for (name, key, _) in PORTS {
            let _ = writeln!(conf, "{key} = {}", ports[name]);
        }
        // One of each API per node: the PBFT and solidity gRPC servers would
        // take ports the control plane does not allocate.
        conf.push_str(
            "node.http.PBFTEnable = false\nnode.rpc.solidityEnable = false\nnode.rpc.PBFTEnable = false\n\
             node.jsonrpc.httpSolidityEnable = false\nnode.jsonrpc.httpPBFTEnable = false\n\
             node.metrics.prometheus.enable = true\nstorage.db.directory = \"database\"\nlocalwitness = []\n",
        );
        let allowed = override_keys(SETTINGS);
        for (setting, value) in listed(c, &allowed)? {
            let _ = writeln!(conf, "{} = {}", setting.name, hocon_value(setting.kind, value));
        }
        Ok(conf)
    }
}

impl ChainAdapter for Tron {
    fn chain(&self) -> &'static str {
        CHAIN
    }

    fn support(&self) -> ChainSupport {
        one_process().support()
    }

    fn render_client(&self, spec: &NodeSpec, c: &ClientSpec, paths: &NodePaths) -> Result<RenderedUnit, RenderError> {
        let ports = one_process().ports_of(spec, c)?;
        let network = network_file(&spec.network).ok_or_else(|| RenderError::UnsupportedNetwork {
            chain: CHAIN,
            network: spec.network.clone(),
            client: c.client.clone(),
        })?;
        let config = paths.config();
        let args = vec![
            "-c".into(),
            config.join(CONF_FILE).display().to_string(),
            "-d".into(),
            paths.data(NODE).display().to_string(),
            "--log-config".into(),
            config.join(LOGBACK_FILE).display().to_string(),
        ];
        // The launcher (the distribution's bin/FullNode, the image's entrypoint) reads JAVA_OPTS.
        let env = BTreeMap::from([("JAVA_OPTS".to_string(), jvm_options(c.resources.memory_mib))]);
        let files = vec![
            RenderedFile::text(CONF_FILE, Self::config(spec, c, paths, &ports)?),
            RenderedFile::text(NETWORK_FILE, network),
            RenderedFile::text(LOGBACK_FILE, LOGBACK),
        ];
        let port = |name: &str| NamedPort { name: name.into(), port: ports[name], tcp: true, udp: name == "p2p", exposed: true, peer: name == "p2p" };
        Ok(RenderedUnit {
            program: Program::Client { client: c.client.clone(), version: c.version.clone() },
            args,
            env,
            secret_env: BTreeMap::new(),
            files,
            probe: Probe::TronHttp { url: format!("http://127.0.0.1:{}", ports["http"]) },
            needs: vec![],
            ports: PORTS.iter().map(|(name, _, _)| port(name)).collect(),
            // It closes its databases on SIGTERM; start.sh waits a minute.
            stop_grace_secs: 120,
            volumes: vec![],
        })
    }

    fn image(&self, _network: &str, client: &str, version: &str) -> Option<ContainerImage> {
        // Tags are the release names (`GreatVoyage-v4.8.2`); the entrypoint
        // runs bin/FullNode with the container's arguments. Logs go to the
        // console (our logback.xml), data to the volume; the x86 image's
        // `-Xloggc:./gc.log` only warns on a read-only root.
        (client == CLIENT).then(|| ContainerImage {
            reference: format!("{IMAGE}:GreatVoyage-v{}", version.trim_start_matches('v')),
            command: vec![],
            writable_root: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::FileContents;

    fn spec(network: &str) -> NodeSpec {
        crate::adapter::single::spec(CHAIN, network, NODE, CLIENT, "4.8.2")
    }

    fn text<'a>(u: &'a RenderedUnit, name: &str) -> &'a str {
        match &u.files.iter().find(|f| f.name == name).unwrap().contents {
            FileContents::Text(t) => t,
            _ => panic!("{name} is text"),
        }
    }

    #[test]
    fn the_config_includes_the_networks_file_and_sets_ports_and_settings_after_it() {
        let mut s = spec("nile");
        s.clients[0].ports.insert("http".into(), 18090);
        s.clients[0].resources.memory_mib = 16384;
        s.clients[0].config_overrides.insert("vm.supportConstant".into(), "1".into());
        s.clients[0].config_overrides.insert("storage.db.engine".into(), "ROCKSDB".into());
        let u = Tron.render_client(&s, &s.clients[0], &NodePaths::host("/srv/t")).unwrap();
        assert_eq!(u.args, ["-c", "/srv/t/config/config.conf", "-d", "/srv/t/data/node", "--log-config", "/srv/t/config/logback.xml"]);
        let conf = text(&u, CONF_FILE);
        assert!(conf.contains("include file(\"/srv/t/config/network.conf\")\n"), "{conf}");
        assert!(conf.contains("node.http.fullNodePort = 18090\n") && conf.contains("node.listen.port = 18888\n"), "{conf}");
        assert!(conf.ends_with("storage.db.engine = \"ROCKSDB\"\nvm.supportConstant = true\n"), "settings last, typed: {conf}");
        assert!(text(&u, NETWORK_FILE).contains("p2p") && text(&u, NETWORK_FILE).contains("201910292"), "Nile's network id and genesis");
        assert!(u.env["JAVA_OPTS"].starts_with("-Xms9830m -Xmx9830m -XX:MaxDirectMemorySize=1638m"), "{}", u.env["JAVA_OPTS"]);
        assert_eq!(u.probe, Probe::TronHttp { url: "http://127.0.0.1:18090".into() });
        assert!(!jvm_options(0).contains("-Xmx"), "no memory in the spec: the JVM sizes itself");
    }

    #[test]
    fn settings_outside_the_list_are_never_written() {
        for (key, value) in [
            ("event.subscribe.path", "/tmp/plugin.zip"),
            ("localwitness", "[\"key\"]"),
            ("node.listen.port", "1"),
            ("node.maxConnections", "30\nevent.subscribe.enable = true"),
            ("storage.db.engine", "MYSQL"),
        ] {
            let mut s = spec("mainnet");
            s.clients[0].config_overrides.insert(key.into(), value.into());
            assert!(Tron.render_client(&s, &s.clients[0], &NodePaths::host("/n")).is_err(), "{key}");
        }
        for m in MANAGED {
            assert!(SETTINGS.iter().all(|s| !s.0.starts_with(m)), "{m} is the adapter's");
        }
        assert_eq!(hocon_value(OverrideKind::String, "a\"b"), "\"a\\\"b\"");
        // A text setting cannot end its string and start a key of its own.
        let mut s = spec("mainnet");
        s.clients[0].config_overrides.insert("vm.maxTimeRatio".into(), "5.0\"\nlocalwitness = [\"k\"]".into());
        assert!(Tron.render_client(&s, &s.clients[0], &NodePaths::host("/n")).is_err(), "a new line is refused");
        s.clients[0].config_overrides.insert("vm.maxTimeRatio".into(), "5.0\" localwitness = [\"k\"]".into());
        let u = Tron.render_client(&s, &s.clients[0], &NodePaths::host("/n")).unwrap();
        assert!(text(&u, CONF_FILE).ends_with("vm.maxTimeRatio = \"5.0\\\" localwitness = [\\\"k\\\"]\"\n"), "{}", text(&u, CONF_FILE));
        assert_eq!(Tron.image("mainnet", CLIENT, "4.8.2").unwrap().reference, "tronprotocol/java-tron:GreatVoyage-v4.8.2");
    }

    #[test]
    fn both_networks_files_carry_their_genesis_block() {
        for n in NETWORKS {
            let f = network_file(n).unwrap();
            assert!(f.starts_with("# Source: "), "{n}: upstream, cited");
            let nile = n == "nile";
            assert_eq!(f.contains("TMWXhuxiT1KczhBxCseCDDsrhmpYGUcoA9"), nile, "{n}: Nile's genesis asset holder only in Nile's file");
        }
    }
}
