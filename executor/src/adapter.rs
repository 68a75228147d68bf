//! Chain adapters: for a spec, render each process (the program it runs,
//! named logically, its arguments and config files) and say how to probe its
//! health and sync status. Each backend resolves the program: the agent to a
//! file on its host, the operator to a container's command. No backend undoes
//! another's rendering.

use novacula_core::executor::{ChainSupport, ClientSupport};
use novacula_core::spec::{ClientSpec, NodeSpec, NodeType, Sidecar};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where a node's files live: `data_dir/nodes/<name>/` on an agent host,
/// `/novacula` in a pod.
#[derive(Debug, Clone)]
pub struct NodePaths {
    pub root: PathBuf,
}

impl NodePaths {
    pub fn data(&self, unit: &str) -> PathBuf {
        self.root.join("data").join(unit)
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config")
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
    /// `random_bytes` random bytes, hex-encoded, generated when the file is first
    /// written and never replaced (e.g. the engine JWT both clients share).
    Secret { random_bytes: usize },
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
    /// Execution client JSON-RPC (`eth_syncing`).
    EthJsonRpc { url: String },
    /// Consensus client beacon API (`/eth/v1/node/syncing`).
    BeaconApi { url: String },
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
    pub files: Vec<RenderedFile>,
    pub probe: Probe,
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
}

impl RenderError {
    pub fn category(&self) -> novacula_core::error::ErrorCategory {
        novacula_core::error::ErrorCategory::InvalidSpec
    }
}

pub trait ChainAdapter: Send + Sync {
    fn support(&self) -> ChainSupport;
    fn render_client(&self, spec: &NodeSpec, client: &ClientSpec, paths: &NodePaths) -> Result<RenderedUnit, RenderError>;
}

/// Overrides become `--key=value` flags, after the adapter's defaults so they win.
fn flags(overrides: &BTreeMap<String, String>) -> impl Iterator<Item = String> + '_ {
    overrides.iter().map(|(k, v)| if v.is_empty() { format!("--{k}") } else { format!("--{k}={v}") })
}

fn port(c: &ClientSpec, key: &str, default: u16) -> u16 {
    c.config_overrides.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Ethereum: geth (execution) + lighthouse (consensus), joined by an engine-API JWT.
pub struct Ethereum;

const JWT_FILE: &str = "jwt.hex";

impl ChainAdapter for Ethereum {
    fn support(&self) -> ChainSupport {
        ChainSupport {
            chain: "ethereum".into(),
            networks: vec!["mainnet".into(), "holesky".into(), "sepolia".into(), "hoodi".into()],
            node_types: vec![NodeType::Full, NodeType::Archive],
            clients: vec![
                ClientSupport { role: "execution".into(), client: "geth".into(), versions: vec![] },
                ClientSupport { role: "consensus".into(), client: "lighthouse".into(), versions: vec![] },
            ],
        }
    }

    fn render_client(&self, spec: &NodeSpec, c: &ClientSpec, paths: &NodePaths) -> Result<RenderedUnit, RenderError> {
        let jwt = paths.config().join(JWT_FILE);
        let jwt_file = RenderedFile { name: JWT_FILE.into(), contents: FileContents::Secret { random_bytes: 32 } };
        let data = paths.data(&c.role).display().to_string();
        let (mut command, probe) = match c.client.as_str() {
            "geth" => {
                let http = port(c, "http.port", 8545);
                let mut cmd = vec![format!("--{}", spec.network), format!("--datadir={data}")];
                cmd.extend([
                    "--http".into(),
                    "--http.addr=127.0.0.1".into(),
                    format!("--http.port={http}"),
                    format!("--authrpc.port={}", port(c, "authrpc.port", 8551)),
                    format!("--authrpc.jwtsecret={}", jwt.display()),
                    format!("--syncmode={}", if spec.node_type == NodeType::Archive { "full" } else { "snap" }),
                ]);
                if spec.node_type == NodeType::Archive {
                    cmd.push("--gcmode=archive".into());
                }
                (cmd, Probe::EthJsonRpc { url: format!("http://127.0.0.1:{http}") })
            }
            "lighthouse" => {
                let http = port(c, "http-port", 5052);
                let engine = spec.client("execution").map_or(8551, |e| port(e, "authrpc.port", 8551));
                let cmd = vec![
                    "bn".into(),
                    format!("--network={}", spec.network),
                    format!("--datadir={data}"),
                    format!("--execution-endpoint=http://127.0.0.1:{engine}"),
                    format!("--execution-jwt={}", jwt.display()),
                    "--http".into(),
                    format!("--http-port={http}"),
                ];
                (cmd, Probe::BeaconApi { url: format!("http://127.0.0.1:{http}") })
            }
            other => return Err(RenderError::UnsupportedClient { chain: "ethereum", client: other.to_string() }),
        };
        command.extend(flags(&c.config_overrides));
        let program = Program::Client { client: c.client.clone(), version: c.version.clone() };
        Ok(RenderedUnit { program, args: command, env: BTreeMap::new(), files: vec![jwt_file], probe })
    }
}

/// A harmless stand-in chain for demos and tests: the "client" just sleeps.
pub struct StandIn;

impl StandIn {
    /// A running stand-in node named `name`: chain `demo`, one `main` client.
    pub fn spec(name: &str) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            chain: "demo".into(),
            network: "local".into(),
            node_type: NodeType::Full,
            clients: vec![ClientSpec {
                role: "main".into(),
                client: "standin".into(),
                version: "1.0.0".into(),
                image: None,
                config_overrides: Default::default(),
                resources: Default::default(),
            }],
            storage: vec![],
            sidecars: vec![],
            desired_state: novacula_core::DesiredState::Running,
            restart_generation: 0,
        }
    }
}

impl ChainAdapter for StandIn {
    fn support(&self) -> ChainSupport {
        ChainSupport {
            chain: "demo".into(),
            networks: vec!["local".into()],
            node_types: vec![NodeType::Full],
            clients: vec![ClientSupport { role: "main".into(), client: "standin".into(), versions: vec![] }],
        }
    }

    fn render_client(&self, spec: &NodeSpec, c: &ClientSpec, _: &NodePaths) -> Result<RenderedUnit, RenderError> {
        let script = format!("echo stand-in node {} client {} {} started; exec sleep 2147483647", spec.name, c.client, c.version);
        Ok(RenderedUnit {
            program: Program::Shell,
            args: vec!["-c".into(), script],
            env: BTreeMap::new(),
            files: vec![RenderedFile::text("standin.conf", format!("{:?}\n", c.config_overrides))],
            probe: Probe::Alive,
        })
    }
}

/// Adapters by chain name, and the sidecar programs this host allows.
pub struct Adapters {
    chains: Vec<Box<dyn ChainAdapter>>,
    /// Names of the sidecar programs the executor's configuration allows.
    sidecars: Vec<String>,
}

impl Adapters {
    /// The real chains. The stand-in `demo` chain is not among them: see [`Adapters::with_demo_chain`].
    pub fn standard() -> Adapters {
        Adapters { chains: vec![Box::new(Ethereum)], sidecars: vec![] }
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
        self.chains.iter().find(|a| a.support().chain == chain).map(std::convert::AsRef::as_ref)
    }

    pub fn capabilities(&self) -> novacula_core::ExecutorCapabilities {
        novacula_core::ExecutorCapabilities {
            chains: self.chains.iter().map(|a| a.support()).collect(),
            programs: novacula_core::ProgramAllowlist { sidecar_programs: self.sidecars.clone(), image_prefixes: vec![] },
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
    RenderedUnit { program: Program::Sidecar { name }, args: s.command.clone(), env, files: vec![], probe: Probe::Alive }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> NodePaths {
        NodePaths { root: "/var/lib/novacula/nodes/eth".into() }
    }

    fn eth() -> NodeSpec {
        NodeSpec { name: "eth".into(), ..novacula_core::fixtures::eth_spec("eth") }
    }

    #[test]
    fn geth_and_lighthouse_share_engine_port_and_jwt() {
        let mut spec = eth();
        spec.clients[0].config_overrides.insert("authrpc.port".into(), "9551".into());
        spec.clients[0].config_overrides.insert("cache".into(), "4096".into());
        let a = Adapters::standard();
        let geth = a.render(&spec, "execution", &paths()).unwrap();
        assert_eq!(geth.program, Program::Client { client: "geth".into(), version: "1.14.11".into() });
        assert!(geth.args.contains(&"--holesky".to_string()));
        assert!(geth.args.contains(&"--cache=4096".to_string()));
        assert_eq!(geth.probe, Probe::EthJsonRpc { url: "http://127.0.0.1:8545".into() });
        let lh = a.render(&spec, "consensus", &paths()).unwrap();
        assert_eq!(lh.args[0], "bn");
        assert!(lh.args.contains(&"--execution-endpoint=http://127.0.0.1:9551".to_string()));
        assert!(lh.args.contains(&"--execution-jwt=/var/lib/novacula/nodes/eth/config/jwt.hex".to_string()));
        assert_eq!(lh.probe, Probe::BeaconApi { url: "http://127.0.0.1:5052".into() });
        assert_eq!(geth.files[0].contents, FileContents::Secret { random_bytes: 32 }, "the JWT is described, not generated: rendering is pure");
        assert_eq!(a.render(&spec, "execution", &paths()).unwrap(), geth, "the same spec renders the same unit");
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
        s.clients[0].client = "erigon".into();
        assert!(a.render(&s, "execution", &paths()).unwrap_err().to_string().contains("erigon"));
    }
}
