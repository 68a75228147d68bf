//! The agent's TOML configuration.

use crate::artifacts::Artifact;
use novacula_core::Channel;
use novacula_executor::adapter::{Adapters, Ethereum};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A sidecar program this host trusts, from `[[sidecars]]`. A spec names it
/// by `name` (the sidecar's `image`); the agent runs `path`, and only while the
/// file's SHA-256 is `sha256`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SidecarProgram {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
}

/// Why agent.toml cannot be used; the agent refuses to start on any of these.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config {}: {source}", path.display())]
    Parse { path: PathBuf, source: toml::de::Error },
    /// A setting's value, named in the message.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid(message)
}

impl SidecarProgram {
    /// Well-formed entries: DNS-label names, absolute paths, 64 hex digits, no name twice.
    pub fn check(list: &[SidecarProgram]) -> Result<(), ConfigError> {
        for (i, p) in list.iter().enumerate() {
            if !novacula_core::validate::valid_name(&p.name) {
                return Err(invalid(format!("sidecar program {:?}: name must be a lowercase DNS label", p.name)));
            }
            if !p.path.is_absolute() {
                return Err(invalid(format!("sidecar program {}: path {} must be absolute", p.name, p.path.display())));
            }
            if !novacula_core::wire::is_sha256_hex(&p.sha256) {
                return Err(invalid(format!("sidecar program {}: sha256 must be 64 hex digits", p.name)));
            }
            if list[..i].iter().any(|q| q.name == p.name) {
                return Err(invalid(format!("sidecar program {} is listed twice", p.name)));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// e.g. `http://127.0.0.1:8080` or `https://novacula.example.com`; several
    /// replicas' URLs separated by commas, tried in turn when one cannot be reached.
    pub control_plane_url: String,
    /// PEM certificates to trust for an `https://` control plane, beside the
    /// system's roots (a private CA or a self-signed certificate).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The API key; or use `api_key_file`.
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// This executor's name in its organization.
    pub name: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub channel: Channel,
    /// `local` (child processes) or `systemd` (units over D-Bus).
    #[serde(default = "default_driver")]
    pub driver: String,
    /// Where the systemd driver writes unit files.
    #[serde(default = "default_unit_dir")]
    pub unit_dir: PathBuf,
    /// systemd driver: the unprivileged user the node clients run as
    /// (recommended, e.g. a `novacula` system user); root when unset.
    #[serde(default)]
    pub run_as: Option<String>,
    /// Client binaries to fetch when missing from `data_dir/bin`, each pinned by SHA-256.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    /// Sidecar programs specs may run here, by name, each a path pinned by
    /// SHA-256. Nothing else can run as a sidecar: a spec names a program, it
    /// never supplies one.
    #[serde(default)]
    pub sidecars: Vec<SidecarProgram>,
    /// Secrets specs may name (an Ink node's L1 RPC URL with its key): a file
    /// each, named like the secret, root's and 0600. A spec names a secret,
    /// never carries its value.
    #[serde(default = "default_secrets_dir")]
    pub secrets_dir: PathBuf,
    /// Self-upgrade releases: the control plane may only name a file in this
    /// directory (keep it root's), pinned by its SHA-256. Unset: self-upgrade is off.
    #[serde(default)]
    pub release_dir: Option<PathBuf>,
    /// Offer the stand-in `demo` chain (a process that only sleeps), for the
    /// demo and tests; production agents leave it off.
    #[serde(default)]
    pub enable_demo_chain: bool,
    /// Checkpoint-sync URLs by Ethereum network (`mainnet = "https://..."`),
    /// instead of the public defaults; a spec can still set its own.
    #[serde(default)]
    pub checkpoint_sync_urls: std::collections::BTreeMap<String, String>,
    /// Serve Prometheus metrics at `http://<this>/metrics` (e.g.
    /// `127.0.0.1:9465`): the agent's one listening socket, off when unset.
    #[serde(default)]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

fn default_unit_dir() -> PathBuf {
    PathBuf::from("/etc/systemd/system")
}

/// Where the secrets specs name are kept unless agent.toml says otherwise.
pub const DEFAULT_SECRETS_DIR: &str = "/etc/novacula/secrets";

fn default_secrets_dir() -> PathBuf {
    PathBuf::from(DEFAULT_SECRETS_DIR)
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/novacula")
}

fn default_driver() -> String {
    "local".into()
}

impl AgentConfig {
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let cfg: AgentConfig = toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.to_path_buf(), source })?;
        cfg.check()?;
        Ok(cfg)
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        if !novacula_core::validate::valid_name(&self.name) {
            return Err(invalid(format!("name {:?} must be a lowercase DNS label", self.name)));
        }
        if self.api_key.is_none() && self.api_key_file.is_none() {
            return Err(invalid("set api_key or api_key_file".into()));
        }
        if !matches!(self.driver.as_str(), "local" | "systemd") {
            return Err(invalid(format!("driver {:?} is not one of: local, systemd", self.driver)));
        }
        crate::artifacts::Artifacts::check(&self.artifacts)?;
        SidecarProgram::check(&self.sidecars)?;
        if self.run_as.is_some() && self.driver != "systemd" {
            return Err(invalid("run_as needs driver = \"systemd\" (the local driver runs clients as the agent's user)".into()));
        }
        self.ethereum()?;
        Ok(())
    }

    fn ethereum(&self) -> Result<Ethereum, ConfigError> {
        Ethereum::default().with_checkpoint_urls(self.checkpoint_sync_urls.iter().map(|(n, u)| (n.as_str(), u.as_str()))).map_err(|e| invalid(e.to_string()))
    }

    /// The chains this configuration offers to specs (sidecar programs are
    /// offered by the backend, which knows their paths: `Processes::with_sidecar_programs`).
    pub fn adapters(&self) -> Adapters {
        // `check` has refused a bad URL already; the defaults are the fallback.
        let adapters = Adapters::standard().with_ethereum(self.ethereum().unwrap_or_default());
        if self.enable_demo_chain {
            adapters.with_demo_chain()
        } else {
            adapters
        }
    }

    /// What this host allows self-upgrades to install.
    pub fn upgrade_policy(&self) -> crate::upgrade::UpgradePolicy {
        crate::upgrade::UpgradePolicy { release_dir: self.release_dir.clone(), state_dir: self.data_dir.join("agent") }
    }

    pub fn api_key(&self) -> Result<String, ConfigError> {
        match (&self.api_key, &self.api_key_file) {
            (Some(k), _) => Ok(k.trim().to_string()),
            (None, Some(f)) => std::fs::read_to_string(f).map(|k| k.trim().to_string()).map_err(|source| ConfigError::Read { path: f.clone(), source }),
            (None, None) => Err(invalid("no API key configured".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_defaults_and_rejects_bad_values() {
        let c: AgentConfig = toml::from_str("control_plane_url = \"http://cp:8080\"\napi_key = \"k\"\nname = \"edge-1\"").unwrap();
        c.check().unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/novacula"));
        assert_eq!(c.channel, Channel::Stable);
        assert_eq!(c.ca_file, None);
        let tls: AgentConfig =
            toml::from_str("control_plane_url = \"https://cp.example\"\napi_key = \"k\"\nname = \"edge-1\"\nca_file = \"/etc/novacula/ca.pem\"").unwrap();
        tls.check().unwrap();
        assert_eq!(tls.ca_file, Some(PathBuf::from("/etc/novacula/ca.pem")));
        let base = "control_plane_url = \"http://cp\"\napi_key = \"k\"\nname = \"edge-1\"\nrun_as = \"novacula\"\n";
        let local: AgentConfig = toml::from_str(base).unwrap();
        assert!(local.check().unwrap_err().to_string().contains("run_as needs driver"));
        let systemd: AgentConfig = toml::from_str(&format!("{base}driver = \"systemd\"")).unwrap();
        systemd.check().unwrap();
        assert_eq!(systemd.run_as.as_deref(), Some("novacula"));
        let pinned = format!("{base}driver = \"systemd\"\n[[artifacts]]\nclient = \"geth\"\nversion = \"1.14.11\"\nurl = \"https://example.invalid/geth.tar.gz\"\nsha256 = \"{}\"\n", "0".repeat(64));
        let pinned: AgentConfig = toml::from_str(&pinned).unwrap();
        pinned.check().unwrap();
        assert_eq!(pinned.artifacts[0].client, "geth");
        let bad: AgentConfig =
            toml::from_str(&format!("{base}driver = \"systemd\"\n[[artifacts]]\nclient = \"geth\"\nversion = \"1\"\nurl = \"https://x\"\nsha256 = \"00\"\n"))
                .unwrap();
        assert!(bad.check().unwrap_err().to_string().contains("sha256"));
        assert!(c.adapters().capabilities().chain("demo").is_none(), "no demo chain unless enabled");
        let demo: AgentConfig = toml::from_str(&format!(
            "{base}driver = \"systemd\"\nenable_demo_chain = true\n[[sidecars]]\nname = \"exporter\"\npath = \"/usr/local/bin/exporter\"\nsha256 = \"{}\"\n",
            "a".repeat(64)
        ))
        .unwrap();
        demo.check().unwrap();
        assert!(demo.adapters().capabilities().chain("demo").is_some());
        assert_eq!(demo.sidecars[0].name, "exporter");
        let relative: AgentConfig =
            toml::from_str(&format!("{base}driver = \"systemd\"\n[[sidecars]]\nname = \"exporter\"\npath = \"exporter\"\nsha256 = \"{}\"\n", "a".repeat(64)))
                .unwrap();
        assert!(relative.check().unwrap_err().to_string().contains("absolute"));
        let own: AgentConfig = toml::from_str(&format!("{base}driver = \"systemd\"\n[checkpoint_sync_urls]\nmainnet = \"https://cp.internal\"\n")).unwrap();
        own.check().unwrap();
        let caps = own.adapters().capabilities();
        let eth = caps.chain("ethereum").unwrap();
        assert_eq!(eth.defaults("mainnet").unwrap().checkpoint_sync_url.as_deref(), Some("https://cp.internal"));
        let wrong: AgentConfig = toml::from_str(&format!("{base}driver = \"systemd\"\n[checkpoint_sync_urls]\ndevnet = \"https://x\"\n")).unwrap();
        assert!(wrong.check().unwrap_err().to_string().contains("not a public Ethereum network"));
        let bad: AgentConfig = toml::from_str("control_plane_url = \"x\"\nname = \"Edge\"\napi_key = \"k\"").unwrap();
        assert!(bad.check().is_err());
        assert!(toml::from_str::<AgentConfig>("control_plane_url = \"x\"\nname = \"e\"\nbogus = 1").is_err());
    }
}
