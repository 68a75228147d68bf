//! Chain adapters: for a spec, render each process's command line and config
//! files, and say how to probe its health and sync status.

use novacula_core::executor::{ChainSupport, ClientSupport};
use novacula_core::spec::{ClientSpec, NodeSpec, NodeType, Sidecar};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a node's files live: `data_dir/nodes/<name>/`.
#[derive(Debug, Clone)]
pub struct NodePaths {
    pub root: PathBuf,
    /// Client binaries: `bin_dir/<client>/<version>/<client>`.
    pub bin_dir: PathBuf,
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
    pub contents: String,
    /// Secrets generated once (JWT) are written only when absent.
    pub overwrite: bool,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedUnit {
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub files: Vec<RenderedFile>,
    pub probe: Probe,
}

pub trait ChainAdapter: Send + Sync {
    fn support(&self) -> ChainSupport;
    /// Path of the binary a client needs, so install can check it is there.
    fn binary(&self, client: &ClientSpec, paths: &NodePaths) -> PathBuf;
    fn render_client(&self, spec: &NodeSpec, client: &ClientSpec, paths: &NodePaths) -> Result<RenderedUnit, String>;
}

/// Overrides become `--key=value` flags, after the adapter's defaults so they win.
fn flags(overrides: &BTreeMap<String, String>) -> impl Iterator<Item = String> + '_ {
    overrides.iter().map(|(k, v)| if v.is_empty() { format!("--{k}") } else { format!("--{k}={v}") })
}

fn port(c: &ClientSpec, key: &str, default: u16) -> u16 {
    c.config_overrides.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn client_binary(c: &ClientSpec, paths: &NodePaths) -> PathBuf {
    paths.bin_dir.join(&c.client).join(&c.version).join(&c.client)
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

    fn binary(&self, client: &ClientSpec, paths: &NodePaths) -> PathBuf {
        client_binary(client, paths)
    }

    fn render_client(&self, spec: &NodeSpec, c: &ClientSpec, paths: &NodePaths) -> Result<RenderedUnit, String> {
        let jwt = paths.config().join(JWT_FILE);
        let jwt_file = RenderedFile { name: JWT_FILE.into(), contents: crate::random_hex(32), overwrite: false };
        let bin = self.binary(c, paths).display().to_string();
        let data = paths.data(&c.role).display().to_string();
        let (mut command, probe) = match c.client.as_str() {
            "geth" => {
                let http = port(c, "http.port", 8545);
                let mut cmd = vec![bin, format!("--{}", spec.network), format!("--datadir={data}")];
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
                    bin,
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
            other => return Err(format!("ethereum adapter cannot run client {other:?}")),
        };
        command.extend(flags(&c.config_overrides));
        Ok(RenderedUnit { command, env: BTreeMap::new(), files: vec![jwt_file], probe })
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

    fn binary(&self, _: &ClientSpec, _: &NodePaths) -> PathBuf {
        PathBuf::from("/bin/sh")
    }

    fn render_client(&self, spec: &NodeSpec, c: &ClientSpec, _: &NodePaths) -> Result<RenderedUnit, String> {
        let script = format!("echo stand-in node {} client {} {} started; exec sleep 2147483647", spec.name, c.client, c.version);
        Ok(RenderedUnit {
            command: vec!["/bin/sh".into(), "-c".into(), script],
            env: BTreeMap::new(),
            files: vec![RenderedFile { name: "standin.conf".into(), contents: format!("{:?}\n", c.config_overrides), overwrite: true }],
            probe: Probe::Alive,
        })
    }
}

/// A sidecar program this host trusts, from `[[sidecars]]` in agent.toml. A
/// spec names it by `name` (the sidecar's `image`); the agent runs `path`, and
/// only while the file's SHA-256 is `sha256`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SidecarProgram {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
}

impl SidecarProgram {
    /// Well-formed entries: DNS-label names, absolute paths, 64 hex digits, no name twice.
    pub fn check(list: &[SidecarProgram]) -> Result<(), String> {
        for (i, p) in list.iter().enumerate() {
            if !novacula_core::validate::valid_name(&p.name) {
                return Err(format!("sidecar program {:?}: name must be a lowercase DNS label", p.name));
            }
            if !p.path.is_absolute() {
                return Err(format!("sidecar program {}: path {} must be absolute", p.name, p.path.display()));
            }
            if p.sha256.len() != 64 || !p.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("sidecar program {}: sha256 must be 64 hex digits", p.name));
            }
            if list[..i].iter().any(|q| q.name == p.name) {
                return Err(format!("sidecar program {} is listed twice", p.name));
            }
        }
        Ok(())
    }

    /// The file at `path` is the one pinned (blocking: reads the whole file).
    pub fn verify(&self) -> Result<(), String> {
        let actual = crate::files::sha256_file(&self.path).map_err(|e| format!("sidecar program {}: cannot read {}: {e}", self.name, self.path.display()))?;
        if !actual.eq_ignore_ascii_case(&self.sha256) {
            return Err(format!("sidecar program {}: {} has SHA-256 {actual}, agent.toml pins {}; not started", self.name, self.path.display(), self.sha256));
        }
        Ok(())
    }
}

/// Adapters by chain name, and the sidecar programs this host allows.
pub struct Adapters {
    chains: Vec<Box<dyn ChainAdapter>>,
    sidecars: Vec<SidecarProgram>,
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

    /// Allow specs to run these sidecar programs (checked with [`SidecarProgram::check`]).
    pub fn with_sidecars(mut self, programs: Vec<SidecarProgram>) -> Adapters {
        self.sidecars = programs;
        self
    }

    pub fn get(&self, chain: &str) -> Option<&dyn ChainAdapter> {
        self.chains.iter().find(|a| a.support().chain == chain).map(|a| a.as_ref())
    }

    pub fn capabilities(&self) -> novacula_core::ExecutorCapabilities {
        novacula_core::ExecutorCapabilities {
            chains: self.chains.iter().map(|a| a.support()).collect(),
            programs: novacula_core::ProgramAllowlist {
                sidecar_programs: self.sidecars.iter().map(|p| p.name.clone()).collect(),
                image_prefixes: vec![],
            },
        }
    }

    /// The trusted program a sidecar of the spec names, or why it may not run here.
    pub fn sidecar_program(&self, spec: &NodeSpec, unit: &str) -> Option<Result<&SidecarProgram, String>> {
        let s = spec.sidecars.iter().find(|s| s.name == unit)?;
        Some(self.sidecars.iter().find(|p| p.name == s.image).ok_or_else(|| {
            format!("sidecar {unit}: program {:?} is not listed under [[sidecars]] in this agent's configuration; not run", s.image)
        }))
    }

    /// Render a unit of the spec: a client role through its chain's adapter, or a sidecar.
    pub fn render(&self, spec: &NodeSpec, unit: &str, paths: &NodePaths) -> Result<RenderedUnit, String> {
        if let Some(c) = spec.client(unit) {
            let a = self.get(&spec.chain).ok_or_else(|| format!("no adapter for chain {:?}", spec.chain))?;
            return a.render_client(spec, c, paths);
        }
        let program = self.sidecar_program(spec, unit).ok_or_else(|| format!("spec has no unit {unit:?}"))??;
        let s = spec.sidecars.iter().find(|s| s.name == unit).ok_or_else(|| format!("spec has no unit {unit:?}"))?;
        Ok(render_sidecar(s, program))
    }

    /// The binary a client unit needs; `None` for sidecars.
    pub fn binary(&self, spec: &NodeSpec, unit: &str, paths: &NodePaths) -> Option<PathBuf> {
        let c = spec.client(unit)?;
        self.get(&spec.chain).map(|a| a.binary(c, paths))
    }
}

fn render_sidecar(s: &Sidecar, program: &SidecarProgram) -> RenderedUnit {
    // The spec names the program; the host's configuration says where it is.
    let mut command = vec![program.path.display().to_string()];
    command.extend(s.command.iter().cloned());
    // Core validation refuses loader and marker variables; drop them here too.
    let env = s.env.iter().filter(|(k, _)| !novacula_core::validate::env_key_forbidden(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    RenderedUnit { command, env, files: vec![], probe: Probe::Alive }
}

pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use novacula_core::spec::Resources;

    fn paths() -> NodePaths {
        NodePaths { root: "/var/lib/novacula/nodes/eth".into(), bin_dir: "/var/lib/novacula/bin".into() }
    }

    fn eth() -> NodeSpec {
        let c = |role: &str, client: &str, v: &str| ClientSpec {
            role: role.into(),
            client: client.into(),
            version: v.into(),
            image: None,
            config_overrides: BTreeMap::new(),
            resources: Resources::default(),
        };
        NodeSpec {
            name: "eth".into(),
            chain: "ethereum".into(),
            network: "holesky".into(),
            node_type: NodeType::Full,
            clients: vec![c("execution", "geth", "1.14.11"), c("consensus", "lighthouse", "v5.3.0")],
            storage: vec![],
            sidecars: vec![],
            desired_state: Default::default(),
            restart_generation: 0,
        }
    }

    #[test]
    fn geth_and_lighthouse_share_engine_port_and_jwt() {
        let mut spec = eth();
        spec.clients[0].config_overrides.insert("authrpc.port".into(), "9551".into());
        spec.clients[0].config_overrides.insert("cache".into(), "4096".into());
        let a = Adapters::standard();
        let geth = a.render(&spec, "execution", &paths()).unwrap();
        assert_eq!(geth.command[0], "/var/lib/novacula/bin/geth/1.14.11/geth");
        assert!(geth.command.contains(&"--holesky".to_string()));
        assert!(geth.command.contains(&"--cache=4096".to_string()));
        assert_eq!(geth.probe, Probe::EthJsonRpc { url: "http://127.0.0.1:8545".into() });
        let lh = a.render(&spec, "consensus", &paths()).unwrap();
        assert!(lh.command.contains(&"--execution-endpoint=http://127.0.0.1:9551".to_string()));
        assert!(lh.command.contains(&"--execution-jwt=/var/lib/novacula/nodes/eth/config/jwt.hex".to_string()));
        assert_eq!(lh.probe, Probe::BeaconApi { url: "http://127.0.0.1:5052".into() });
        assert!(!geth.files[0].overwrite, "the JWT is generated once");
    }

    #[test]
    fn sidecar_running_a_shell_as_root_is_not_rendered_by_the_agent() {
        // Even a spec that got past the control plane cannot choose a program here.
        let mut spec = eth();
        spec.sidecars.push(Sidecar { name: "pwn".into(), image: "/bin/sh".into(), command: vec!["-c".into(), "id > /tmp/pwned".into()], env: Default::default() });
        let a = Adapters::standard();
        let err = a.render(&spec, "pwn", &paths()).unwrap_err();
        assert!(err.contains("not listed under [[sidecars]]"), "{err}");
        let exporter = SidecarProgram { name: "exporter".into(), path: "/usr/local/bin/exporter".into(), sha256: "0".repeat(64) };
        let a = Adapters::standard().with_sidecars(vec![exporter]);
        assert!(a.render(&spec, "pwn", &paths()).is_err());
        spec.sidecars[0].image = "exporter".into();
        spec.sidecars[0].env.insert("LD_PRELOAD".into(), "/tmp/evil.so".into());
        spec.sidecars[0].env.insert("LOG".into(), "info".into());
        let r = a.render(&spec, "pwn", &paths()).unwrap();
        assert_eq!(r.command, ["/usr/local/bin/exporter", "-c", "id > /tmp/pwned"], "arguments go to the trusted program only");
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
        assert!(a.render(&s, "execution", &paths()).unwrap_err().contains("erigon"));
    }
}
