//! The agent's backend: nodes as local processes (systemd units or child
//! processes), core's reconcile diff applied unit by unit through a `ProcessDriver`.

use crate::artifacts::{ArtifactError, Artifacts};
use crate::config::SidecarProgram;
use crate::driver::{is_executable, DriverError, ProcessDriver, UnitDef};
use crate::probe::probe;
use novacula_core::error::ErrorCategory;
use novacula_core::reconcile::{diff, plan, Action};
use novacula_core::sync::LockExt;
use novacula_core::{DesiredNode, DesiredState, ExecutorCapabilities, ObservedNodeState, ObservedNodeStatus, ObservedProcess, Revision};
use novacula_executor::adapter::{Adapters, Program, RenderError};
pub use novacula_executor::backend::{Backend, BackendError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// Why one reconcile step failed; kept, and reported as the node's message.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
    /// A secret the spec names is not one this host holds.
    #[error("secret {name:?}: no readable file {path} (secrets_dir in agent.toml): {source}")]
    Secret { name: String, path: PathBuf, source: std::io::Error },
}

impl ApplyError {
    pub fn category(&self) -> ErrorCategory {
        match self {
            ApplyError::Render(e) => e.category(),
            // A genesis that is not the adapter's pin will not become it by retrying.
            ApplyError::Driver(DriverError::Fetch { source, .. }) => source.category(),
            ApplyError::Driver(_) => ErrorCategory::Transient,
            ApplyError::Artifact(e) => e.category(),
            ApplyError::Sidecar(SidecarError::Task(_)) => ErrorCategory::Transient,
            ApplyError::Sidecar(_) => ErrorCategory::Refused,
            // Someone must put it on the host.
            ApplyError::Secret { .. } => ErrorCategory::Refused,
        }
    }
}

/// Why a sidecar program may not start on this host.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("sidecar program {0:?} is not listed under [[sidecars]] in agent.toml")]
    NotListed(String),
    #[error("sidecar program {name}: cannot read {}: {source}", path.display())]
    Unreadable { name: String, path: PathBuf, source: std::io::Error },
    #[error("sidecar program {name}: {} has SHA-256 {actual}, agent.toml pins {pinned}; not started", path.display())]
    Changed { name: String, path: PathBuf, actual: String, pinned: String },
    #[error("sidecar check failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Nodes as local processes: the agent's backend (systemd or child processes).
pub struct Processes<D> {
    driver: D,
    adapters: Adapters,
    /// Last revision known fully materialized per node (re-learnt after a restart).
    materialized: Mutex<HashMap<String, Revision>>,
    /// Last apply error per node, reported as the process message.
    errors: Mutex<HashMap<String, String>>,
    /// Where missing client binaries are fetched from, if anywhere.
    artifacts: Option<Artifacts>,
    /// What each allowed sidecar name stands for on this host (agent.toml).
    sidecars: Vec<SidecarProgram>,
    /// Where the secrets specs name are kept, a file each (agent.toml's `secrets_dir`).
    secrets_dir: PathBuf,
    disk: crate::disk::DiskMeter,
}

impl<D: ProcessDriver> Processes<D> {
    pub fn new(driver: D, adapters: Adapters) -> Processes<D> {
        Processes {
            driver,
            adapters,
            materialized: Mutex::new(HashMap::new()),
            errors: Mutex::new(HashMap::new()),
            artifacts: None,
            sidecars: vec![],
            secrets_dir: PathBuf::from(crate::config::DEFAULT_SECRETS_DIR),
            disk: Default::default(),
        }
    }

    /// Read the secrets specs name from files of `dir`.
    pub fn with_secrets_dir(mut self, dir: PathBuf) -> Processes<D> {
        self.secrets_dir = dir;
        self
    }

    /// A unit that reads secrets gets their current values at each (re)start:
    /// a rotated secret file takes effect with a restart of the node.
    async fn refresh_secrets(&self, d: &DesiredNode, unit: &str, fingerprint: novacula_core::fingerprint::Fingerprint) -> Result<(), ApplyError> {
        let (def, _) = self.unit_def(d, unit)?;
        if !def.secret_env.is_empty() {
            self.driver.write_unit(&d.spec.name, unit, &def, fingerprint).await?;
        }
        Ok(())
    }

    /// The value of secret `name` of this host: its file, without the final newline.
    fn secret(&self, name: &str) -> Result<String, ApplyError> {
        // Names are checked by the adapter (a plain name, no path), again here.
        let path = self.secrets_dir.join(name);
        let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a secret's name");
        if !novacula_core::validate::valid_name(name) {
            return Err(ApplyError::Secret { name: name.into(), path, source: invalid() });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ApplyError::Secret { name: name.into(), path: path.clone(), source })?;
        Ok(text.trim_end_matches(['\n', '\r']).to_string())
    }

    /// Offer these sidecar programs (and only these) to specs.
    pub fn with_sidecar_programs(mut self, programs: Vec<SidecarProgram>) -> Processes<D> {
        self.adapters = self.adapters.with_sidecars(programs.iter().map(|p| p.name.clone()).collect());
        self.sidecars = programs;
        self
    }

    /// The `[[sidecars]]` entry of agent.toml named `name`.
    fn listed_sidecar(&self, name: &str) -> Result<&SidecarProgram, SidecarError> {
        self.sidecars.iter().find(|p| p.name == name).ok_or_else(|| SidecarError::NotListed(name.to_string()))
    }

    /// The file on this host that a logical program stands for.
    fn resolve(&self, program: &Program) -> Result<PathBuf, SidecarError> {
        match program {
            Program::Client { client, version } => Ok(self.driver.bin_dir().join(client).join(version).join(client)),
            Program::Sidecar { name } => self.listed_sidecar(name).map(|p| p.path.clone()),
            Program::Shell => Ok(PathBuf::from("/bin/sh")),
        }
    }

    /// The unit as the driver writes it: rendered, its program resolved here.
    fn unit_def(&self, d: &DesiredNode, unit: &str) -> Result<(UnitDef, PathBuf), ApplyError> {
        let r = self.adapters.render(&d.spec, unit, &self.driver.paths(&d.spec.name))?;
        let program = self.resolve(&r.program)?;
        let mut command = vec![program.display().to_string()];
        command.extend(r.args);
        let secret_env = r.secret_env.iter().map(|(var, name)| Ok((var.clone(), self.secret(name)?))).collect::<Result<_, ApplyError>>()?;
        Ok((UnitDef { command, env: r.env, secret_env, files: r.files, stop_grace_secs: r.stop_grace_secs }, program))
    }

    /// Fetch client binaries missing from `data_dir/bin` from this catalog.
    pub fn with_artifacts(mut self, artifacts: Artifacts) -> Processes<D> {
        self.artifacts = Some(artifacts);
        self
    }

    pub fn driver(&self) -> &D {
        &self.driver
    }

    async fn apply(&self, d: &DesiredNode, a: &Action) -> Result<(), ApplyError> {
        let node = d.spec.name.as_str();
        let r = match a {
            Action::InstallBinary { unit, client, version } => {
                let (_, bin) = self.unit_def(d, unit)?;
                if let Some(catalog) = &self.artifacts {
                    if let Some(artifact) = catalog.find(client, version).filter(|_| !is_executable(&bin)) {
                        catalog.fetch(artifact, &bin).await?;
                    }
                }
                self.driver.install(node, unit, client, version, Some(bin)).await
            }
            Action::WriteConfig { unit, fingerprint } => {
                self.verify_sidecar(d, unit).await?;
                let (def, _) = self.unit_def(d, unit)?;
                self.driver.write_unit(node, unit, &def, *fingerprint).await
            }
            Action::Start { unit, fingerprint, generation } => {
                self.verify_sidecar(d, unit).await?;
                self.refresh_secrets(d, unit, *fingerprint).await?;
                self.driver.start(node, unit, *fingerprint, *generation).await
            }
            Action::Restart { unit, fingerprint, generation } => {
                self.verify_sidecar(d, unit).await?;
                self.refresh_secrets(d, unit, *fingerprint).await?;
                self.driver.restart(node, unit, *fingerprint, *generation).await
            }
            Action::Stop { unit } => self.driver.stop(node, unit).await,
            Action::RemoveUnit { unit } => self.driver.remove_unit(node, unit).await,
            Action::RemoveData => self.driver.remove_data(node).await,
        };
        Ok(r?)
    }
}

impl<D: ProcessDriver> Processes<D> {
    /// A sidecar runs only a program agent.toml lists, and only while its file
    /// is the one pinned there (hashed off the async workers).
    async fn verify_sidecar(&self, d: &DesiredNode, unit: &str) -> Result<(), ApplyError> {
        let Some(name) = self.adapters.sidecar_program(&d.spec, unit) else { return Ok(()) };
        let program = self.listed_sidecar(&name?)?.clone();
        let check = move || -> Result<(), SidecarError> {
            let actual = crate::files::sha256_file(&program.path).map_err(|source| SidecarError::Unreadable {
                name: program.name.clone(),
                path: program.path.clone(),
                source,
            })?;
            if !actual.eq_ignore_ascii_case(&program.sha256) {
                return Err(SidecarError::Changed { name: program.name, path: program.path, actual, pinned: program.sha256 });
            }
            Ok(())
        };
        Ok(tokio::task::spawn_blocking(check).await.map_err(SidecarError::from)??)
    }
}

impl<D: ProcessDriver> Backend for Processes<D> {
    fn capabilities(&self) -> ExecutorCapabilities {
        self.adapters.capabilities()
    }

    #[tracing::instrument(name = "reconcile", skip_all, fields(node = %d.spec.name, revision = %d.revision))]
    async fn reconcile(&self, d: &DesiredNode) -> usize {
        let name = &d.spec.name;
        let local = match self.driver.observe(name).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot observe node");
                return 0;
            }
        };
        let actions = diff(Some(d), &local);
        let mut applied = 0;
        for a in &actions {
            tracing::info!(action = ?a, "apply");
            if let Err(e) = self.apply(d, a).await {
                tracing::warn!(action = ?a, error = %e, category = ?e.category(), "action failed; will retry");
                self.errors.locked().insert(name.clone(), e.to_string());
                return applied;
            }
            applied += 1;
        }
        self.errors.locked().remove(name);
        self.materialized.locked().insert(name.clone(), d.revision);
        applied
    }

    async fn logs(&self, node: &str, process: &str, after: Option<&str>, tail: u32) -> Result<(Vec<novacula_core::logs::LogLine>, String), BackendError> {
        // Names come from the control plane: paths and unit names are built from them.
        if !novacula_core::validate::valid_name(node) || !novacula_core::validate::valid_name(process) {
            return Err(BackendError::platform(ErrorCategory::Refused, format!("no log for {node:?}/{process:?}")));
        }
        self.driver.logs(node, process, after, tail).await.map_err(|e| BackendError::platform(ErrorCategory::Transient, e))
    }

    #[tracing::instrument(name = "observe", skip_all, fields(node = %d.spec.name, revision = %d.revision))]
    async fn observe(&self, d: &DesiredNode) -> Result<ObservedNodeState, BackendError> {
        let name = &d.spec.name;
        let local = self.driver.observe(name).await.map_err(|e| BackendError::platform(ErrorCategory::Transient, e))?;
        let converged = diff(Some(d), &local).is_empty();
        let revision = {
            let mut m = self.materialized.locked();
            if converged {
                m.insert(name.clone(), d.revision);
            }
            m.get(name).copied().unwrap_or_default()
        };
        let paths = self.driver.paths(name);
        if d.deleted {
            self.disk.forget(&paths.root);
            return Ok(ObservedNodeState { node: name.clone(), revision, processes: vec![], removed: local.is_empty() && converged, disk: None });
        }
        let error = self.errors.locked().get(name).cloned();
        let mut processes = Vec::new();
        let mut needs = Vec::new();
        for u in plan(&d.spec) {
            let rendered = self.adapters.render(&d.spec, &u.unit, &paths);
            if let Ok(r) = &rendered {
                needs.push((u.unit.clone(), r.needs.clone()));
            }
            let running = local.process(&u.unit).and_then(|p| p.running).is_some();
            let (status, sync) = if running {
                match &rendered {
                    Ok(def) => probe(&def.probe).await,
                    Err(_) => (ObservedNodeStatus::Error, None),
                }
            } else if error.is_some() && d.spec.desired_state == DesiredState::Running {
                (ObservedNodeStatus::Error, None)
            } else if let Some(why) = self.driver.failed(name, &u.unit).await {
                processes.push(ObservedProcess { name: u.unit, status: ObservedNodeStatus::Error, sync: None, message: Some(why) });
                continue;
            } else {
                (ObservedNodeStatus::Stopped, None)
            };
            processes.push(ObservedProcess { name: u.unit, status, sync, message: error.clone() });
        }
        if d.spec.desired_state == DesiredState::Running {
            novacula_core::observed::combine(&mut processes, &needs);
        }
        let disk = self.disk.measure(&paths.root).await;
        Ok(ObservedNodeState { node: name.clone(), revision, processes, removed: false, disk })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::LocalDriver;
    use novacula_core::Revision;

    #[test]
    fn a_named_secret_is_read_from_the_secrets_dir_and_only_from_there() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        std::fs::create_dir(&secrets).unwrap();
        std::fs::write(secrets.join("eth-l1"), "https://l1.example/KEY\n").unwrap();
        let p = Processes::new(LocalDriver::new(dir.path().join("data")).unwrap(), Adapters::standard()).with_secrets_dir(secrets);
        let mut spec = novacula_core::fixtures::eth_spec("ink");
        spec.chain = "ink".into();
        spec.network = "ink-sepolia".into();
        spec.clients = vec![novacula_core::fixtures::client("execution", "op-reth", "2.8.2"), novacula_core::fixtures::client("rollup", "op-node", "1.20.1")];
        spec.clients[1].config_overrides = [("l1".to_string(), "eth-l1".to_string()), ("l1.beacon".to_string(), "eth-beacon".to_string())].into();
        let d = DesiredNode { revision: Revision(1), spec, deleted: false };
        let err = p.unit_def(&d, "rollup").unwrap_err();
        assert!(matches!(&err, ApplyError::Secret { name, .. } if name == "eth-beacon"), "{err}");
        assert_eq!(err.category(), ErrorCategory::Refused);
        std::fs::write(dir.path().join("secrets/eth-beacon"), "https://beacon.example\n").unwrap();
        let (def, _) = p.unit_def(&d, "rollup").unwrap();
        assert_eq!(def.secret_env["OP_NODE_L1_ETH_RPC"], "https://l1.example/KEY", "the file's value, without its newline");
        assert!(!format!("{def:?}").contains("l1.example"), "a unit's debug form names its secrets, never their values");
        assert!(matches!(p.secret("../data"), Err(ApplyError::Secret { .. })), "a name, never a path");
    }
}
