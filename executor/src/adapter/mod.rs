//! Chain adapters: for a spec, render each process (the program it runs,
//! named logically, its arguments and config files) and say how to probe its
//! health and sync status. Each backend resolves the program: the agent to a
//! file on its host, the operator to a container's command. No backend undoes
//! another's rendering.
//!
//! - [`ethereum`]: the execution and consensus clients, networks and their rules.
//! - [`bitcoin`]: Bitcoin Core, configured by a `bitcoin.conf` of listed settings.
//! - [`bsc`]: BNB Smart Chain's geth fork, one process, flags as for Ethereum.
//! - [`tron`]: java-tron, its network's upstream config and listed settings.
//! - [`sui`]: sui-node, a generated fullnode.yaml and a fetched genesis.
//! - [`ink`]: the Ink OP Stack L2, op-reth and op-node, the L1 from secrets.
//! - [`standin`]: the harmless `demo` chain of the demo and the tests.
//! - [`flags`]: command lines as ordered flags that overrides replace.
//! - [`single`]: what the chains of one process share (capabilities, listed settings).

pub mod bitcoin;
pub mod bsc;
pub mod ethereum;
pub mod flags;
pub mod ink;
pub mod single;
pub mod standin;
pub mod sui;
pub mod tron;

pub use bitcoin::Bitcoin;
pub use bsc::Bsc;
pub use ethereum::Ethereum;
pub use ink::Ink;
pub use standin::StandIn;
pub use sui::Sui;
pub use tron::Tron;

use novacula_core::executor::ChainSupport;
use novacula_core::spec::{ClientSpec, NodeSpec, Sidecar};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where a node's files live (`data_dir/nodes/<name>/` on an agent host,
/// `/novacula` in a pod), and where its clients serve RPC, REST and metrics.
#[derive(Debug, Clone)]
pub struct NodePaths {
    pub root: PathBuf,
    /// The address RPC, REST and metrics bind to. The engine API binds to
    /// 127.0.0.1 whatever this says.
    pub listen: Listen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// 127.0.0.1: an agent host, where other processes of the host are the clients.
    Localhost,
    /// Every address of a pod, so its Service reaches the node inside the namespace.
    Pod,
}

impl Listen {
    pub fn address(self) -> &'static str {
        match self {
            Listen::Localhost => "127.0.0.1",
            Listen::Pod => "0.0.0.0",
        }
    }
}

impl NodePaths {
    /// A node on an agent host.
    pub fn host(root: impl Into<PathBuf>) -> NodePaths {
        NodePaths { root: root.into(), listen: Listen::Localhost }
    }

    /// A node in a pod.
    pub fn pod(root: impl Into<PathBuf>) -> NodePaths {
        NodePaths { root: root.into(), listen: Listen::Pod }
    }

    pub fn data(&self, unit: &str) -> PathBuf {
        self.root.join("data").join(unit)
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config")
    }

    /// Where [`FileContents::Fetched`] files are kept: the config directory on
    /// a host; in a pod, beside the data (its config is a read-only projection).
    pub fn fetched(&self) -> PathBuf {
        match self.listen {
            Listen::Pod => self.root.join("data").join(".fetched"),
            Listen::Localhost => self.config(),
        }
    }

    /// Where a client finds a storage volume of the spec beyond the first: in a
    /// pod, the volume's `mountPath`; on a host, a directory of the client's
    /// data dir named for it (mount a disk there to move that data off it).
    pub fn volume(&self, unit: &str, volume: &novacula_core::spec::StorageVolume) -> PathBuf {
        match self.listen {
            Listen::Pod => PathBuf::from(&volume.mount_path),
            Listen::Localhost => self.data(unit).join(&volume.name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Relative to the node's config directory.
    pub name: String,
    pub contents: FileContents,
}

/// What a rendered file holds. Rendering is pure: a secret is described,
/// and the backend generates it where the file is kept, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContents {
    /// Written (again) at every change of the node's config.
    Text(String),
    /// Generated when the file is first written and never replaced (e.g.
    /// the engine JWT both clients share, RPC credentials).
    Secret(Secret),
    /// Downloaded once into [`NodePaths::fetched`] (not the config
    /// directory), checked against its SHA-256, and kept: a genesis the
    /// client does not carry. The adapter names the URL, never a spec.
    Fetched(Fetched),
}

/// A file the backend downloads once where the node keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub url: String,
    /// Hex SHA-256 of the file's bytes: anything else is refused.
    pub sha256: String,
    /// Larger downloads are refused.
    pub max_bytes: u64,
}

/// A generated secret: `random_bytes` random bytes, hex-encoded, alone in
/// its file or written into a template at `{secret}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub random_bytes: usize,
    pub template: Option<String>,
}

impl Secret {
    /// The hex of `random_bytes` random bytes, alone in the file.
    pub fn hex(random_bytes: usize) -> Secret {
        Secret { random_bytes, template: None }
    }

    /// The file's text for the generated value `hex`.
    pub fn text(&self, hex: &str) -> String {
        match &self.template {
            Some(t) => t.replace("{secret}", hex),
            None => hex.to_string(),
        }
    }

    /// The file's text with a value generated from `entropy` (the backend's, where the file is kept).
    pub fn generate(&self, entropy: &dyn novacula_core::entropy::Entropy) -> String {
        self.text(&novacula_core::entropy::random_hex(entropy, self.random_bytes))
    }
}

impl RenderedFile {
    pub fn text(name: &str, contents: impl Into<String>) -> RenderedFile {
        RenderedFile { name: name.into(), contents: FileContents::Text(contents.into()) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Probe {
    /// Healthy while the process lives.
    Alive,
    /// Execution client JSON-RPC: `eth_syncing`, `eth_blockNumber`, `net_peerCount`.
    EthJsonRpc { url: String },
    /// Consensus client beacon API: `/eth/v1/node/syncing` and `/eth/v1/node/peer_count`.
    BeaconApi { url: String },
    /// Bitcoin Core's JSON-RPC (`getblockchaininfo`, `getnetworkinfo`), with
    /// the user and password of the generated `rpcuser=`/`rpcpassword=` file.
    BitcoinRpc { url: String, credentials: String },
    /// java-tron's HTTP API: `/wallet/getnowblock` (head and its time, 3 s a
    /// block) and `/wallet/getnodeinfo` (peers).
    TronHttp { url: String },
    /// op-node's RPC: `optimism_syncStatus` (the L2 head, L1 derivation) and `opp2p_peerStats`.
    OpNode { url: String },
    /// sui-node's Prometheus metrics: checkpoints executed against the
    /// highest known, the last one's age, and peers.
    SuiMetrics { url: String },
}

/// Where the operator finds a client: its official image, and the command
/// to run when the image has no entrypoint of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    pub reference: String,
    /// Empty: the image's entrypoint, given the rendered arguments.
    pub command: Vec<String>,
    /// The client writes under its own install directory (logs, keystore),
    /// so its root filesystem cannot be read-only: a documented exception.
    pub writable_root: bool,
}

/// A port a process listens on, as the backend must open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPort {
    /// The spec's name for it (`p2p`, `http`, `engine`...).
    pub name: String,
    pub port: u16,
    pub tcp: bool,
    pub udp: bool,
    /// Reached from outside the node (a Service, peers): not the engine API
    /// or a private API, which only the node's own processes use.
    pub exposed: bool,
    /// Open to every peer of the network (P2P), not only to the node's neighbours.
    pub peer: bool,
}

/// What a process runs, named logically; the backend resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A chain client's release (`geth` at `1.14.11`).
    Client { client: String, version: String },
    /// A sidecar program the executor's configuration allows, by its name.
    Sidecar { name: String },
    /// The system shell (the stand-in demo chain only).
    Shell,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedUnit {
    pub program: Program,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Environment variables whose values are secrets the executor holds,
    /// by the secret's name (an L1 RPC URL with its key): the agent reads
    /// them from its `secrets_dir`, the operator from the namespace's Secrets.
    pub secret_env: BTreeMap<String, String>,
    pub files: Vec<RenderedFile>,
    pub probe: Probe,
    /// Processes of the node this one cannot work without (a consensus
    /// client needs its execution client): its health includes theirs.
    pub needs: Vec<String>,
    /// What the process listens on.
    pub ports: Vec<NamedPort>,
    /// How long a stop may take before the process is killed (an execution
    /// client flushes its state for minutes).
    pub stop_grace_secs: u32,
    /// The spec's storage volumes beyond the first that this process puts data
    /// on (a pod mounts only those, beside the data and config volumes).
    pub volumes: Vec<String>,
}

/// Why a unit could not be rendered: always the spec's doing here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("no adapter for chain {0:?}")]
    UnknownChain(String),
    #[error("spec has no process {0:?}")]
    UnknownProcess(String),
    #[error("the {chain} adapter cannot run client {client:?}")]
    UnsupportedClient { chain: &'static str, client: String },
    #[error("sidecar {process}: program {program:?} is not one this executor's configuration allows; not run")]
    ProgramNotAllowed { process: String, program: String },
    #[error("the {chain} adapter does not run network {network:?} with {client}")]
    UnsupportedNetwork { chain: &'static str, network: String, client: String },
    #[error("{client}: {key:?} is set by the adapter and cannot be overridden")]
    ManagedKey { client: String, key: String },
    #[error("{client}: {key:?} names a path on the host; a client's files are its adapter's to place")]
    HostPath { client: String, key: String },
    #[error("{client}: setting {key:?} is required (the name of a secret this executor holds)")]
    MissingSecret { client: String, key: String },
}

impl RenderError {
    pub fn category(&self) -> novacula_core::error::ErrorCategory {
        novacula_core::error::ErrorCategory::InvalidSpec
    }
}

pub trait ChainAdapter: Send + Sync {
    /// The chain's name in specs: cheap, unlike the whole [`ChainAdapter::support`].
    fn chain(&self) -> &'static str;
    fn support(&self) -> ChainSupport;
    fn render_client(&self, spec: &NodeSpec, client: &ClientSpec, paths: &NodePaths) -> Result<RenderedUnit, RenderError>;
    /// The official image of a client release for a network, for the operator
    /// (Sui tags its images per network).
    fn image(&self, network: &str, client: &str, version: &str) -> Option<ContainerImage>;
}

/// A process's stop grace unless its adapter says otherwise.
pub const DEFAULT_STOP_GRACE_SECS: u32 = 30;

/// Adapters by chain name, and the sidecar programs this host allows.
pub struct Adapters {
    chains: Vec<Box<dyn ChainAdapter>>,
    /// Names of the sidecar programs the executor's configuration allows.
    sidecars: Vec<String>,
}

impl Adapters {
    /// The real chains. The stand-in `demo` chain is not among them: see [`Adapters::with_demo_chain`].
    pub fn standard() -> Adapters {
        Adapters {
            chains: vec![Box::new(Ethereum::default()), Box::new(Bitcoin), Box::new(Bsc), Box::new(Tron), Box::new(Sui), Box::new(Ink)],
            sidecars: vec![],
        }
    }

    /// Also offer the stand-in `demo` chain (the demo and tests; `enable_demo_chain` in agent.toml).
    pub fn with_demo_chain(mut self) -> Adapters {
        self.chains.push(Box::new(StandIn));
        self
    }

    /// Allow specs to run the sidecar programs of these names (the backend
    /// knows what each name stands for).
    pub fn with_sidecars(mut self, names: Vec<String>) -> Adapters {
        self.sidecars = names;
        self
    }

    pub fn get(&self, chain: &str) -> Option<&dyn ChainAdapter> {
        self.chains.iter().find(|a| a.chain() == chain).map(std::convert::AsRef::as_ref)
    }

    /// Use this Ethereum adapter (checkpoint URLs from the executor's configuration) instead of the default one.
    pub fn with_ethereum(mut self, eth: Ethereum) -> Adapters {
        self.chains.retain(|a| a.chain() != ethereum::CHAIN);
        self.chains.insert(0, Box::new(eth));
        self
    }

    /// The official image of a spec's client, when its adapter knows one.
    pub fn image(&self, chain: &str, network: &str, client: &str, version: &str) -> Option<ContainerImage> {
        self.get(chain)?.image(network, client, version)
    }

    pub fn capabilities(&self) -> novacula_core::ExecutorCapabilities {
        novacula_core::ExecutorCapabilities {
            chains: self.chains.iter().map(|a| a.support()).collect(),
            programs: novacula_core::ProgramAllowlist { sidecar_programs: self.sidecars.clone(), image_prefixes: vec![] },
            // A host has no storage classes (not checked) and its ports are its
            // own: the operator fills in what its cluster offers.
            storage_classes: None,
            p2p_exposures: vec![],
        }
    }

    /// The allowed program a sidecar of the spec names, or why it may not run here.
    pub fn sidecar_program(&self, spec: &NodeSpec, unit: &str) -> Option<Result<String, RenderError>> {
        let s = spec.sidecars.iter().find(|s| s.name == unit)?;
        Some(
            self.sidecars
                .iter()
                .find(|p| **p == s.image)
                .cloned()
                .ok_or_else(|| RenderError::ProgramNotAllowed { process: unit.to_string(), program: s.image.clone() }),
        )
    }

    /// Render a unit of the spec: a client role through its chain's adapter, or a sidecar.
    pub fn render(&self, spec: &NodeSpec, unit: &str, paths: &NodePaths) -> Result<RenderedUnit, RenderError> {
        if let Some(c) = spec.client(unit) {
            let a = self.get(&spec.chain).ok_or_else(|| RenderError::UnknownChain(spec.chain.clone()))?;
            return a.render_client(spec, c, paths);
        }
        let name = self.sidecar_program(spec, unit).ok_or_else(|| RenderError::UnknownProcess(unit.to_string()))??;
        let s = spec.sidecars.iter().find(|s| s.name == unit).ok_or_else(|| RenderError::UnknownProcess(unit.to_string()))?;
        Ok(render_sidecar(s, name))
    }
}

fn render_sidecar(s: &Sidecar, name: String) -> RenderedUnit {
    // The spec names the program; the host's configuration says what it is.
    // Core validation refuses loader and marker variables; drop them here too.
    let env = s.env.iter().filter(|(k, _)| !novacula_core::validate::env_key_forbidden(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    RenderedUnit {
        program: Program::Sidecar { name },
        args: s.command.clone(),
        env,
        secret_env: BTreeMap::new(),
        files: vec![],
        probe: Probe::Alive,
        needs: vec![],
        ports: vec![],
        stop_grace_secs: DEFAULT_STOP_GRACE_SECS,
        volumes: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> NodePaths {
        NodePaths::host("/var/lib/novacula/nodes/eth")
    }

    fn eth() -> NodeSpec {
        NodeSpec { name: "eth".into(), ..novacula_core::fixtures::eth_spec("eth") }
    }

    #[test]
    fn execution_and_consensus_share_the_engine_port_and_jwt() {
        let mut spec = eth();
        spec.clients[0].ports.insert("engine".into(), 9551);
        spec.clients[0].config_overrides.insert("cache".into(), "4096".into());
        let a = Adapters::standard();
        let geth = a.render(&spec, "execution", &paths()).unwrap();
        assert_eq!(geth.program, Program::Client { client: "geth".into(), version: "1.14.11".into() });
        assert!(geth.args.contains(&"--sepolia".to_string()));
        assert!(geth.args.contains(&"--authrpc.port=9551".to_string()));
        assert_eq!(geth.args.last().map(String::as_str), Some("--cache=4096"), "overrides come after the adapter's flags");
        assert_eq!(geth.probe, Probe::EthJsonRpc { url: "http://127.0.0.1:8545".into() });
        let lh = a.render(&spec, "consensus", &paths()).unwrap();
        assert_eq!(lh.args[0], "bn");
        assert!(lh.args.contains(&"--execution-endpoint=http://127.0.0.1:9551".to_string()));
        assert!(lh.args.contains(&"--execution-jwt=/var/lib/novacula/nodes/eth/config/jwt.hex".to_string()));
        assert_eq!(lh.probe, Probe::BeaconApi { url: "http://127.0.0.1:5052".into() });
        assert_eq!(lh.needs, ["execution"], "a consensus client is only as healthy as its execution client");
        assert_eq!(geth.files[0].contents, FileContents::Secret(Secret::hex(32)), "the JWT is described, not generated: rendering is pure");
        assert_eq!(a.render(&spec, "execution", &paths()).unwrap(), geth, "the same spec renders the same unit");
    }

    #[test]
    fn managed_flags_are_refused_even_past_the_control_plane() {
        let mut spec = eth();
        spec.clients[0].config_overrides.insert("authrpc.port".into(), "9551".into());
        let err = Adapters::standard().render(&spec, "execution", &paths()).unwrap_err();
        assert!(matches!(&err, RenderError::ManagedKey { key, .. } if key == "authrpc.port"), "{err}");
    }

    #[test]
    fn sidecar_running_a_shell_as_root_is_not_rendered_by_the_agent() {
        // Even a spec that got past the control plane cannot choose a program here.
        let mut spec = eth();
        spec.sidecars.push(Sidecar {
            name: "pwn".into(),
            image: "/bin/sh".into(),
            command: vec!["-c".into(), "id > /tmp/pwned".into()],
            env: Default::default(),
            volumes: vec![],
        });
        let a = Adapters::standard();
        let err = a.render(&spec, "pwn", &paths()).unwrap_err();
        assert!(matches!(&err, RenderError::ProgramNotAllowed { program, .. } if program == "/bin/sh"), "{err}");
        assert_eq!(err.category(), novacula_core::error::ErrorCategory::InvalidSpec);
        let a = Adapters::standard().with_sidecars(vec!["exporter".into()]);
        assert!(a.render(&spec, "pwn", &paths()).is_err());
        spec.sidecars[0].image = "exporter".into();
        spec.sidecars[0].env.insert("LD_PRELOAD".into(), "/tmp/evil.so".into());
        spec.sidecars[0].env.insert("LOG".into(), "info".into());
        let r = a.render(&spec, "pwn", &paths()).unwrap();
        assert_eq!(r.program, Program::Sidecar { name: "exporter".into() }, "the allowed program, by name");
        assert_eq!(r.args, ["-c", "id > /tmp/pwned"], "arguments go to the trusted program only");
        assert_eq!(r.env.keys().collect::<Vec<_>>(), ["LOG"]);
        assert_eq!(a.capabilities().programs.sidecar_programs, ["exporter"]);
    }

    #[test]
    fn demo_chain_is_offered_only_when_enabled() {
        assert!(Adapters::standard().capabilities().chain("demo").is_none());
        assert!(Adapters::standard().render(&StandIn::spec("d"), "main", &paths()).is_err());
        assert!(Adapters::standard().with_demo_chain().capabilities().chain("demo").is_some());
    }

    #[test]
    fn capabilities_cover_every_adapter_and_unknown_units_fail() {
        let a = Adapters::standard().with_demo_chain();
        let caps = a.capabilities();
        assert!(caps.chain("ethereum").is_some() && caps.chain("demo").is_some());
        assert!(a.render(&eth(), "nope", &paths()).is_err());
        let mut s = eth();
        s.clients[0].client = "lighthouse".into();
        assert!(a.render(&s, "execution", &paths()).unwrap_err().to_string().contains("lighthouse"), "a client runs its own role only");
        s.clients[0].client = "ethereumjs".into();
        s.network = "holesky".into();
        assert!(a.render(&s, "execution", &paths()).unwrap_err().to_string().contains("holesky"));
    }
}
