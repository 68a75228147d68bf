//! Ethereum: an execution client and a consensus client per node, joined by
//! the engine API on localhost with a JWT both read.
//!
//! Each client is a [`ClientDef`]: its ports, the networks it runs, the
//! oldest release per network, the settings the adapter owns, its official
//! image and its command line. The flags come from each client's own
//! documentation (see `docs/clients/`); `executor/tests/golden/` pins one
//! rendered command per client, network and node type.

mod consensus;
mod devnet;
mod execution;

use super::flags::Flags;
use super::{ChainAdapter, ContainerImage, FileContents, NamedPort, NodePaths, Probe, Program, RenderError, RenderedFile, RenderedUnit};
use novacula_core::executor::{ChainSupport, ClientSupport, MinVersion, NetworkDefaults, PortSupport, RoleResources};
use novacula_core::spec::{ClientSpec, NodeSpec, NodeType, Resources};
use std::collections::BTreeMap;

pub use devnet::{DEVNET_GENESIS, DEVNET_GENESIS_HASH, DEVNET_PARAMS};

pub const CHAIN: &str = "ethereum";
pub const EXECUTION: &str = "execution";
pub const CONSENSUS: &str = "consensus";

/// The public networks and the local single-host `devnet`.
pub const NETWORKS: [&str; 4] = ["mainnet", "sepolia", "hoodi", "devnet"];
pub const DEVNET: &str = "devnet";

/// Where consensus clients fetch a finalized state unless the executor's
/// configuration or the spec says otherwise (eth-clients/checkpoint-sync-endpoints).
pub const CHECKPOINT_URLS: [(&str, &str); 3] = [
    ("mainnet", "https://mainnet.checkpoint.sigp.io"),
    ("sepolia", "https://checkpoint-sync.sepolia.ethpandaops.io"),
    ("hoodi", "https://checkpoint-sync.hoodi.ethpandaops.io"),
];

/// The JWT both clients of a node share, in its config directory.
const JWT_FILE: &str = "jwt.hex";
/// The engine API always binds here (both clients of a node share the host
/// or the pod); on an agent host RPC, REST and metrics do too.
const LOCALHOST: &str = "127.0.0.1";

/// What a client's command line is made from.
pub struct Ctx<'a> {
    pub network: &'a str,
    pub node_type: NodeType,
    /// The client's data directory.
    pub data: String,
    /// The node's config directory (the JWT, a devnet's genesis files).
    pub config: String,
    pub jwt: String,
    /// Where RPC, REST and metrics listen (127.0.0.1 on a host, all addresses in a pod).
    pub listen: &'static str,
    ports: BTreeMap<&'static str, u16>,
    /// The execution client's engine API (consensus clients).
    pub engine: String,
    /// The checkpoint-sync URL (consensus clients on public networks), unless opted out.
    pub checkpoint: Option<String>,
}

impl Ctx<'_> {
    /// The port named `name`: the spec's, else the client's default.
    pub fn port(&self, name: &str) -> u16 {
        self.ports.get(name).copied().unwrap_or_default()
    }

    pub fn archive(&self) -> bool {
        self.node_type == NodeType::Archive
    }

    pub fn devnet(&self) -> bool {
        self.network == DEVNET
    }

    /// Whether clients are reached from other hosts (a pod's Service): then
    /// the clients that filter requests by Host header must accept any.
    pub fn public(&self) -> bool {
        self.listen != LOCALHOST
    }
}

/// One client the adapter runs.
pub struct ClientDef {
    pub name: &'static str,
    pub role: &'static str,
    /// Port names and the client's own defaults.
    pub ports: &'static [(&'static str, u16)],
    /// Whether the client runs the local `devnet`.
    pub devnet: bool,
    /// The oldest release that runs a network.
    pub min_versions: &'static [(&'static str, &'static str)],
    /// Flags the adapter sets and a spec may not override.
    pub managed: &'static [&'static str],
    /// Consensus clients: the flag that carries the checkpoint URL, and the
    /// flag that opts out of it (syncing from genesis), if the client has one.
    pub checkpoint: Option<Checkpoint>,
    /// Official image repository and how its tags spell a version.
    pub image: &'static str,
    pub tag_prefix: &'static str,
    /// The command when the image has no entrypoint of its own.
    pub image_command: &'static [&'static str],
    /// The client writes under its install directory: no read-only root filesystem.
    pub writable_root: bool,
    /// Ports that stay inside the node: the engine API always, plus the
    /// client's private ones, and its RPC when the engine shares its address.
    pub internal: &'static [&'static str],
    pub stop_grace_secs: u32,
    /// Volumes beside the data dir, by the storage-volume name a spec gives
    /// them, and the flag that points the client at one.
    pub volumes: &'static [(&'static str, &'static str)],
    pub render: fn(&Ctx) -> Flags,
}

pub struct Checkpoint {
    pub flag: &'static str,
    pub opt_out: Option<&'static str>,
}

impl ClientDef {
    fn networks(&self) -> Vec<String> {
        NETWORKS.iter().filter(|n| self.devnet || **n != DEVNET).map(ToString::to_string).collect()
    }

    fn support(&self) -> ClientSupport {
        ClientSupport {
            role: self.role.into(),
            client: self.name.into(),
            versions: vec![],
            networks: self.networks(),
            min_versions: self.min_versions.iter().map(|(n, v)| MinVersion { network: (*n).into(), version: (*v).into() }).collect(),
            ports: self.ports.iter().map(|(name, default)| PortSupport { name: (*name).into(), default: *default, peer: protocols(name).1 }).collect(),
            managed_keys: self.managed().map(ToString::to_string).collect(),
            volumes: self.volumes.iter().map(|(name, _)| (*name).to_string()).collect(),
            // A command line: any flag of the client's but the managed ones.
            overrides: vec![],
        }
    }

    /// The flags the adapter sets: its own, and those pointing at volumes.
    fn managed(&self) -> impl Iterator<Item = &'static str> {
        self.managed.iter().copied().chain(self.volumes.iter().map(|(_, flag)| *flag).filter(|f| !self.managed.contains(f)))
    }

    /// The spec's ports, with the client's defaults for those it leaves out
    /// (a spec written before the control plane allocated ports).
    fn ports(&self, c: &ClientSpec) -> BTreeMap<&'static str, u16> {
        self.ports.iter().map(|(name, default)| (*name, c.ports.get(*name).copied().unwrap_or(*default))).collect()
    }
}

/// Which protocols a port carries, by its name: P2P (and Erigon's second
/// P2P port and torrents) TCP and UDP, discovery and QUIC UDP, the rest TCP.
fn protocols(name: &str) -> (bool, bool) {
    match name {
        "p2p" | "p2p-alt" | "torrent" => (true, true),
        "discovery" | "discv5" | "quic" => (false, true),
        _ => (true, false),
    }
}

/// Every client the adapter knows, execution clients first.
pub fn clients() -> impl Iterator<Item = &'static ClientDef> {
    execution::CLIENTS.iter().chain(consensus::CLIENTS.iter())
}

pub fn client(name: &str) -> Option<&'static ClientDef> {
    clients().find(|d| d.name == name)
}

/// Requests per role, and the disk of a whole node, per network.
fn network_defaults(network: &str) -> (Resources, Resources, u32) {
    let r = |cpu_millis, memory_mib| Resources { cpu_millis, memory_mib };
    match network {
        // About 4 CPU / 16 GiB / 2.5 TB for a mainnet full node.
        "mainnet" => (r(3000, 12288), r(1000, 4096), 2560),
        "sepolia" => (r(1500, 6144), r(500, 2048), 1024),
        "hoodi" => (r(1500, 6144), r(500, 2048), 512),
        _ => (r(500, 1024), r(500, 1024), 10),
    }
}

/// The disk of an archive node (both clients' history kept), where it differs from a full node's.
fn archive_disk_gib(network: &str) -> u32 {
    match network {
        "mainnet" => 4096,
        "sepolia" => 2048,
        "hoodi" => 1024,
        _ => 0,
    }
}

/// The Ethereum adapter, with the checkpoint URLs this executor uses.
#[derive(Debug, Clone)]
pub struct Ethereum {
    checkpoint_urls: BTreeMap<String, String>,
}

impl Default for Ethereum {
    fn default() -> Self {
        Ethereum { checkpoint_urls: CHECKPOINT_URLS.iter().map(|(n, u)| ((*n).to_string(), (*u).to_string())).collect() }
    }
}

/// A checkpoint-sync URL the executor's configuration cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointUrlError {
    #[error("checkpoint sync URL for {0:?}: not a public Ethereum network (mainnet, sepolia, hoodi)")]
    Network(String),
    #[error("checkpoint sync URL {0:?}: expected an http:// or https:// URL without spaces")]
    Url(String),
    #[error("checkpoint sync URL {0:?}: expected NETWORK=URL")]
    Form(String),
}

impl Ethereum {
    /// Use `url` for checkpoint sync on `network` (the executor's configuration).
    pub fn with_checkpoint_url(mut self, network: &str, url: &str) -> Ethereum {
        self.checkpoint_urls.insert(network.into(), url.into());
        self
    }

    /// Use these URLs (network to URL, from agent.toml or the operator's flags)
    /// instead of the defaults, checked first.
    pub fn with_checkpoint_urls<'a>(mut self, urls: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Ethereum, CheckpointUrlError> {
        for (network, url) in urls {
            if !CHECKPOINT_URLS.iter().any(|(n, _)| *n == network) {
                return Err(CheckpointUrlError::Network(network.into()));
            }
            let scheme = url.starts_with("https://") || url.starts_with("http://");
            if !scheme || url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(CheckpointUrlError::Url(url.into()));
            }
            self = self.with_checkpoint_url(network, url);
        }
        Ok(self)
    }

    /// `NETWORK=URL` pairs (the operator's `--checkpoint-sync-urls`).
    pub fn parse_checkpoint_pairs(pairs: &[String]) -> Result<Vec<(String, String)>, CheckpointUrlError> {
        pairs
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.trim().split_once('=').map(|(n, u)| (n.to_string(), u.to_string())).ok_or_else(|| CheckpointUrlError::Form(p.clone())))
            .collect()
    }

    fn engine_url(spec: &NodeSpec) -> String {
        let port = spec.client(EXECUTION).and_then(|el| client(&el.client)?.ports(el).get("engine").copied()).unwrap_or(8551);
        format!("http://{LOCALHOST}:{port}")
    }
}

impl ChainAdapter for Ethereum {
    fn chain(&self) -> &'static str {
        CHAIN
    }

    fn support(&self) -> ChainSupport {
        let network_defaults = NETWORKS
            .iter()
            .map(|n| {
                let (execution, consensus, disk_gib) = network_defaults(n);
                NetworkDefaults {
                    network: (*n).into(),
                    resources: vec![
                        RoleResources { role: EXECUTION.into(), resources: execution },
                        RoleResources { role: CONSENSUS.into(), resources: consensus },
                    ],
                    disk_gib,
                    checkpoint_sync_url: self.checkpoint_urls.get(*n).cloned(),
                    archive_disk_gib: archive_disk_gib(n),
                }
            })
            .collect();
        ChainSupport {
            chain: CHAIN.into(),
            networks: NETWORKS.iter().map(ToString::to_string).collect(),
            node_types: vec![NodeType::Full, NodeType::Archive],
            clients: clients().map(ClientDef::support).collect(),
            network_defaults,
        }
    }

    fn render_client(&self, spec: &NodeSpec, c: &ClientSpec, paths: &NodePaths) -> Result<RenderedUnit, RenderError> {
        let unsupported = || RenderError::UnsupportedClient { chain: CHAIN, client: c.client.clone() };
        let def = client(&c.client).filter(|d| d.role == c.role).ok_or_else(unsupported)?;
        if !def.networks().contains(&spec.network) {
            return Err(RenderError::UnsupportedNetwork { chain: CHAIN, network: spec.network.clone(), client: c.client.clone() });
        }
        let opted_out = def.checkpoint.as_ref().and_then(|cp| cp.opt_out).is_some_and(|o| c.config_overrides.keys().any(|k| k.eq_ignore_ascii_case(o)));
        let ctx = Ctx {
            network: &spec.network,
            node_type: spec.node_type,
            data: paths.data(&c.role).display().to_string(),
            config: paths.config().display().to_string(),
            jwt: paths.config().join(JWT_FILE).display().to_string(),
            listen: paths.listen.address(),
            ports: def.ports(c),
            engine: Self::engine_url(spec),
            checkpoint: if def.checkpoint.is_some() && !opted_out { self.checkpoint_urls.get(&spec.network).cloned() } else { None },
        };
        let mut flags = (def.render)(&ctx);
        let mut volumes = vec![];
        // The spec's volumes beyond the first (which holds the data dirs) that hold part of this client's data.
        for v in spec.storage.iter().skip(1) {
            if let Some((_, flag)) = def.volumes.iter().find(|(name, _)| v.holds.as_deref() == Some(*name)) {
                flags = flags.set(flag, paths.volume(&c.role, v).display());
                volumes.push(v.name.clone());
            }
        }
        let managed: Vec<&str> = def.managed().collect();
        let args = flags.overridden(def.name, &c.config_overrides, &managed)?.into_args();
        let mut files = vec![RenderedFile { name: JWT_FILE.into(), contents: FileContents::Secret(super::Secret::hex(32)) }];
        if ctx.devnet() {
            files.push(match def.role {
                EXECUTION => RenderedFile::text(devnet::GENESIS_FILE, DEVNET_GENESIS),
                _ => RenderedFile::text(devnet::PARAMS_FILE, DEVNET_PARAMS),
            });
        }
        let (probe, needs) = match def.role {
            EXECUTION => (Probe::EthJsonRpc { url: format!("http://{LOCALHOST}:{}", ctx.port("http")) }, vec![]),
            _ => (Probe::BeaconApi { url: format!("http://{LOCALHOST}:{}", ctx.port("http")) }, vec![EXECUTION.to_string()]),
        };
        let program = Program::Client { client: c.client.clone(), version: c.version.clone() };
        let ports = ctx
            .ports
            .iter()
            .map(|(name, port)| {
                let (tcp, udp) = protocols(name);
                let exposed = *name != "engine" && !def.internal.contains(name);
                // The ports peers reach (P2P, discovery, QUIC, torrents) are the ones that carry UDP.
                let peer = udp;
                NamedPort { name: (*name).to_string(), port: *port, tcp, udp, exposed, peer }
            })
            .collect();
        Ok(RenderedUnit {
            program,
            args,
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            files,
            probe,
            needs,
            ports,
            stop_grace_secs: def.stop_grace_secs,
            volumes,
        })
    }

    fn image(&self, _network: &str, client_name: &str, version: &str) -> Option<ContainerImage> {
        let def = client(client_name)?;
        Some(ContainerImage {
            reference: format!("{}:{}{}", def.image, def.tag_prefix, version.trim_start_matches('v')),
            command: def.image_command.iter().map(ToString::to_string).collect(),
            writable_root: def.writable_root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_beyond_the_first_points_its_client_at_it() {
        use novacula_core::spec::StorageVolume;
        let mut spec = novacula_core::fixtures::eth_spec("n1");
        let volume = |name: &str, holds: Option<&str>| StorageVolume {
            name: name.into(),
            size_gib: 500,
            mount_path: format!("/{name}"),
            storage_class: None,
            holds: holds.map(Into::into),
        };
        spec.storage.push(volume("ancient", Some("ancient")));
        spec.storage.push(volume("freezer", Some("freezer")));
        spec.storage.push(volume("old", None));
        let eth = Ethereum::default();
        let geth = |paths: &NodePaths| eth.render_client(&spec, &spec.clients[0], paths).unwrap().args;
        assert!(geth(&NodePaths::pod("/novacula")).contains(&"--datadir.ancient=/ancient".to_string()), "in a pod: its mount path");
        assert!(geth(&NodePaths::host("/srv/n1")).contains(&"--datadir.ancient=/srv/n1/data/execution/ancient".to_string()), "on a host: in the data dir");
        let lighthouse = eth.render_client(&spec, &spec.clients[1], &NodePaths::pod("/novacula")).unwrap().args;
        assert!(lighthouse.contains(&"--freezer-dir=/freezer".to_string()), "{lighthouse:?}");
        assert!(!lighthouse.iter().any(|a| a.contains("/ancient")), "each client only its own volumes");
        assert!(!geth(&NodePaths::pod("/novacula")).iter().any(|a| a.contains("/old")), "a volume that holds nothing named is no client's");
        // The flag is the adapter's: a spec cannot point it elsewhere.
        spec.clients[0].config_overrides.insert("datadir.ancient".into(), "/etc".into());
        assert!(matches!(eth.render_client(&spec, &spec.clients[0], &NodePaths::pod("/novacula")), Err(RenderError::ManagedKey { .. })));
        let reth = client("reth").unwrap().support();
        assert!(reth.volumes == ["static-files"] && reth.managed_keys.iter().any(|k| k == "datadir.static-files"), "{reth:?}");
    }

    #[test]
    fn configured_checkpoint_urls_are_checked() {
        let ok = Ethereum::default().with_checkpoint_urls([("mainnet", "https://cp.internal:8443")]).unwrap();
        assert_eq!(ok.checkpoint_urls["mainnet"], "https://cp.internal:8443");
        assert_eq!(ok.checkpoint_urls["hoodi"], CHECKPOINT_URLS[2].1, "other networks keep their default");
        assert!(matches!(Ethereum::default().with_checkpoint_urls([("devnet", "https://x")]), Err(CheckpointUrlError::Network(_))));
        assert!(matches!(Ethereum::default().with_checkpoint_urls([("mainnet", "ftp://x")]), Err(CheckpointUrlError::Url(_))));
        assert!(matches!(Ethereum::default().with_checkpoint_urls([("mainnet", "https://x --evil")]), Err(CheckpointUrlError::Url(_))));
        let pairs = Ethereum::parse_checkpoint_pairs(&["mainnet=https://a".into(), " ".into()]).unwrap();
        assert_eq!(pairs, [("mainnet".to_string(), "https://a".to_string())]);
        assert!(Ethereum::parse_checkpoint_pairs(&["https://a".into()]).is_err());
    }

    #[test]
    fn every_client_declares_distinct_port_names_an_http_port_and_its_port_flags_as_managed() {
        for d in clients() {
            let names: std::collections::BTreeSet<_> = d.ports.iter().map(|p| p.0).collect();
            assert_eq!(names.len(), d.ports.len(), "{}: a port name twice", d.name);
            assert!(names.contains("http") && names.contains("p2p"), "{}: probes use the http port", d.name);
            assert!(!d.managed.is_empty(), "{}", d.name);
            for (_, v) in d.min_versions {
                assert!(v.parse::<novacula_core::Version>().is_ok(), "{}: {v}", d.name);
            }
        }
        let roles: Vec<(&str, &str)> = clients().map(|d| (d.role, d.name)).collect();
        assert_eq!(
            roles,
            [
                (EXECUTION, "geth"),
                (EXECUTION, "reth"),
                (EXECUTION, "nethermind"),
                (EXECUTION, "erigon"),
                (EXECUTION, "besu"),
                (EXECUTION, "ethereumjs"),
                (CONSENSUS, "lighthouse"),
                (CONSENSUS, "prysm"),
                (CONSENSUS, "lodestar"),
                (CONSENSUS, "teku"),
                (CONSENSUS, "nimbus"),
            ]
        );
    }
}
