//! Process drivers materialize units. The contract is `LocalNode::apply` in core:
//! after an action succeeds, `observe` must show its effect.

use crate::files::{agent_dir, hand_over, owner_uid, Account};
use novacula_core::entropy::OsEntropy;
use novacula_core::fingerprint::Fingerprint;
use novacula_core::reconcile::{LocalNode, LocalProcess, RunningProcess};
use novacula_executor::adapter::{FileContents, NodePaths, RenderedFile};
use std::future::Future;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
    /// A file the adapter names could not be fetched, or was not the pinned one.
    #[error("{file}: {source}")]
    Fetch { file: String, source: Box<crate::artifacts::ArtifactError> },
}

pub type Result<T> = std::result::Result<T, DriverError>;

/// A unit as a driver materializes it: the program resolved to a file on
/// this host, its arguments, environment and config files.
#[derive(Clone, PartialEq, Eq)]
pub struct UnitDef {
    /// The resolved program first, then its arguments.
    pub command: Vec<String>,
    pub env: std::collections::BTreeMap<String, String>,
    /// Variables whose values are secrets this host holds, read from its
    /// `secrets_dir`: kept in a file only root reads, never in a unit file.
    pub secret_env: std::collections::BTreeMap<String, String>,
    pub files: Vec<RenderedFile>,
    /// How long a stop may take before the process is killed (systemd's
    /// `TimeoutStopSec`): an execution client flushes its state for minutes.
    pub stop_grace_secs: u32,
}

pub trait ProcessDriver: Send + Sync + 'static {
    fn paths(&self, node: &str) -> NodePaths;
    /// Where client releases live: `bin_dir/<client>/<version>/<client>`.
    fn bin_dir(&self) -> PathBuf;
    fn observe(&self, node: &str) -> impl Future<Output = Result<LocalNode>> + Send;
    /// Make the client binary available (download-free: it must exist at `binary`).
    fn install(&self, node: &str, unit: &str, client: &str, version: &str, binary: Option<PathBuf>) -> impl Future<Output = Result<()>> + Send;
    fn write_unit(&self, node: &str, unit: &str, def: &UnitDef, fingerprint: Fingerprint) -> impl Future<Output = Result<()>> + Send;
    fn start(&self, node: &str, unit: &str, fingerprint: Fingerprint, generation: u64) -> impl Future<Output = Result<()>> + Send;
    fn stop(&self, node: &str, unit: &str) -> impl Future<Output = Result<()>> + Send;
    fn restart(&self, node: &str, unit: &str, fingerprint: Fingerprint, generation: u64) -> impl Future<Output = Result<()>> + Send {
        async move {
            self.stop(node, unit).await?;
            self.start(node, unit, fingerprint, generation).await
        }
    }
    fn remove_unit(&self, node: &str, unit: &str) -> impl Future<Output = Result<()>> + Send;
    /// Why a unit that is not running has failed, if the backend knows it did.
    fn failed(&self, _node: &str, _unit: &str) -> impl Future<Output = Option<String>> + Send {
        async { None }
    }
    fn remove_data(&self, node: &str) -> impl Future<Output = Result<()>> + Send;
    /// Lines of `unit`'s log (see `Backend::logs`).
    fn logs(
        &self,
        _node: &str,
        _unit: &str,
        _after: Option<&str>,
        _tail: u32,
    ) -> impl Future<Output = Result<(Vec<novacula_core::logs::LogLine>, String)>> + Send {
        async { Err(DriverError::Other("this driver cannot read logs yet".into())) }
    }
}

/// Environment markers that make a process self-describing, so no pidfile is needed.
pub const ENV_UNIT: &str = "NOVACULA_UNIT";
pub const ENV_FINGERPRINT: &str = "NOVACULA_FINGERPRINT";
pub const ENV_GENERATION: &str = "NOVACULA_GENERATION";

/// The unit definition as written to `units/<unit>.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UnitFile {
    pub command: Vec<String>,
    pub env: std::collections::BTreeMap<String, String>,
    pub fingerprint: Fingerprint,
}

/// Secret values never reach a log line or a failed assertion: their names do.
impl std::fmt::Debug for UnitDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitDef")
            .field("command", &self.command)
            .field("env", &self.env)
            .field("secret_env", &self.secret_env.keys().map(|k| format!("{k}=<secret>")).collect::<Vec<_>>())
            .field("files", &self.files)
            .field("stop_grace_secs", &self.stop_grace_secs)
            .finish()
    }
}

/// Variables as systemd's `EnvironmentFile=` reads them: `KEY="value"`, a
/// backslash before `"` and `\`; a value of several lines is refused.
pub fn env_file_text(vars: &std::collections::BTreeMap<String, String>) -> Result<String> {
    let mut out = String::new();
    for (k, v) in vars {
        if v.contains(['\n', '\r', '\0']) || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(DriverError::Other(format!("secret variable {k}: one line of text expected")));
        }
        out.push_str(&format!("{k}=\"{}\"\n", v.replace('\\', "\\\\").replace('"', "\\\"")));
    }
    Ok(out)
}

/// What [`env_file_text`] wrote (the local driver starts processes itself).
pub fn parse_env_file(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let v = v.strip_prefix('"')?.strip_suffix('"')?;
            let mut out = String::new();
            let mut chars = v.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next()? } else { c });
            }
            Some((k.to_string(), out))
        })
        .collect()
}

/// A regular file with an execute bit.
pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The agent's bookkeeping (unit definitions, install markers): root's alone.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    crate::files::write_atomic(path, contents, 0o600, None)
}

/// Child processes on this host, for development, demos and tests. Processes
/// run in their own process group and outlive the agent, as systemd units do.
/// Its file layout is shared with the systemd driver.
pub struct LocalDriver {
    data_dir: PathBuf,
    /// The account node clients run as (systemd's `run_as`): their data and
    /// log directories are handed to it; config stays the agent's, readable by its group.
    client_account: Option<Account>,
    /// Processes of other users are never taken for a node's, whatever their environment says.
    trusted_uids: Vec<u32>,
    /// The CA bundle downloads trust (agent.toml's `ca_file`), else the system's.
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy)]
struct Found {
    pid: i32,
    /// The process group it runs in; stop signals the whole group.
    pgrp: i32,
    running: RunningProcess,
}

impl LocalDriver {
    pub fn new(data_dir: impl Into<PathBuf>) -> std::io::Result<LocalDriver> {
        let data_dir = data_dir.into();
        std::fs::create_dir_all(data_dir.join("nodes"))?;
        let agent_uid = rustix::process::geteuid().as_raw();
        Ok(LocalDriver { data_dir: std::fs::canonicalize(data_dir)?, client_account: None, trusted_uids: vec![agent_uid], ca_file: None })
    }

    /// Downloads of the files adapters name (a genesis) trust this CA bundle.
    pub fn with_ca_file(mut self, ca_file: Option<PathBuf>) -> LocalDriver {
        self.ca_file = ca_file;
        self
    }

    /// Node clients run as `account`: see [`LocalDriver::client_account`].
    pub fn with_client_account(mut self, account: Account) -> LocalDriver {
        self.trusted_uids.push(account.uid);
        self.client_account = Some(account);
        self
    }

    fn node_dir(&self, node: &str) -> PathBuf {
        self.data_dir.join("nodes").join(node)
    }

    pub fn unit_id(&self, node: &str, unit: &str) -> String {
        format!("{}/{unit}", self.node_dir(node).display())
    }

    fn unit_file(&self, node: &str, unit: &str) -> PathBuf {
        self.node_dir(node).join("units").join(format!("{unit}.json"))
    }

    /// The unit's secret variables, in systemd's `EnvironmentFile=` syntax (0600, root's).
    pub fn secret_env_file(&self, node: &str, unit: &str) -> PathBuf {
        self.node_dir(node).join("units").join(format!("{unit}.env"))
    }

    fn installed_file(&self, node: &str, unit: &str) -> PathBuf {
        self.node_dir(node).join("units").join(format!("{unit}.installed"))
    }

    fn scanner(&self, node: &str) -> Scanner {
        Scanner { node_dir: self.node_dir(node), trusted_uids: self.trusted_uids.clone() }
    }

    /// Live processes of this node; the `/proc` walk runs off the async workers.
    async fn scan_all(&self, node: &str) -> Vec<(String, Found)> {
        let scanner = self.scanner(node);
        tokio::task::spawn_blocking(move || scanner.scan()).await.unwrap_or_default()
    }

    async fn scan(&self, node: &str) -> std::collections::BTreeMap<String, Found> {
        self.scan_all(node).await.into_iter().collect()
    }

    /// How the unit's live process was started, if it runs.
    pub async fn running(&self, node: &str, unit: &str) -> Option<RunningProcess> {
        self.found(node, unit).await.map(|f| f.running)
    }

    /// Live processes of a node, duplicates included (there should be none).
    /// Blocking: for tests and tools, not for the async workers.
    pub fn process_count(&self, node: &str) -> usize {
        self.scanner(node).scan().len()
    }

    async fn found(&self, node: &str, unit: &str) -> Option<Found> {
        self.scan(node).await.remove(unit)
    }

    /// Every live process of a unit (a client and the children that inherited its markers).
    async fn unit_processes(&self, node: &str, unit: &str) -> Vec<Found> {
        self.scan_all(node).await.into_iter().filter(|(u, _)| u == unit).map(|(_, f)| f).collect()
    }
}

/// Finds a node's processes by their environment markers in `/proc` (blocking).
struct Scanner {
    node_dir: PathBuf,
    trusted_uids: Vec<u32>,
}

impl Scanner {
    fn scan(&self) -> Vec<(String, Found)> {
        let prefix = format!("{ENV_UNIT}={}/", self.node_dir.display());
        let mut out = Vec::new();
        let mid_exec_deadline = std::time::Instant::now() + MID_EXEC_WAIT;
        let Ok(entries) = std::fs::read_dir("/proc") else { return out };
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
            if is_zombie(pid) || !owner_uid(&e.path()).is_ok_and(|uid| self.trusted_uids.contains(&uid)) {
                continue;
            }
            let Some(environ) = read_environ(pid, mid_exec_deadline) else { continue };
            let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
            let get = |k: &str| vars.iter().find_map(|v| std::str::from_utf8(v).ok()?.strip_prefix(k)?.strip_prefix('=').map(str::to_string));
            let Some(unit) = get(ENV_UNIT).and_then(|u| u.strip_prefix(&prefix[ENV_UNIT.len() + 1..]).map(str::to_string)) else {
                continue;
            };
            let fp = get(ENV_FINGERPRINT).and_then(|f| f.parse().ok());
            let generation = get(ENV_GENERATION).and_then(|g| g.parse().ok());
            if let (Some(fingerprint), Some(generation), Some(pgrp)) = (fp, generation, process_group(pid)) {
                out.push((unit, Found { pid, pgrp, running: RunningProcess { fingerprint, generation } }));
            }
        }
        out
    }
}

/// How long a stopping client may take before it is killed.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long one scan may re-read empty environments (see `read_environ`).
const MID_EXEC_WAIT: std::time::Duration = std::time::Duration::from_millis(50);
/// How long a start waits to see the new process's markers.
const START_VISIBLE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// How often waits on processes look again.
const PROCESS_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

/// A process's environment. A process in the middle of `execve` (a wrapper
/// like `sh -c 'exec client'`) briefly shows an empty one; missing it then
/// would look like "not running" and start a duplicate, so an empty read of a
/// user process is retried for a few milliseconds (kernel threads have none).
fn read_environ(pid: i32, deadline: std::time::Instant) -> Option<Vec<u8>> {
    loop {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        if !environ.is_empty() || std::time::Instant::now() >= deadline || is_kernel_thread(pid) || is_zombie(pid) {
            return Some(environ);
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// `/proc/<pid>/stat` after the command name (which may hold spaces and
/// parentheses): the state first, then the other fields, space-separated.
fn stat_after_name(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ").map(|(_, rest)| rest.to_string())
}

fn is_kernel_thread(pid: i32) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    // the flags word is the 7th field after the name
    stat_after_name(pid).and_then(|rest| rest.split(' ').nth(6)?.parse::<u64>().ok()).is_none_or(|flags| flags & PF_KTHREAD != 0)
}

/// Dead or gone (a vanished process counts as dead).
fn is_zombie(pid: i32) -> bool {
    stat_after_name(pid).is_none_or(|rest| rest.starts_with('Z') || rest.starts_with('X'))
}

/// The process group of `pid` (the 3rd field after the name in `/proc/<pid>/stat`).
fn process_group(pid: i32) -> Option<i32> {
    stat_after_name(pid)?.split(' ').nth(2)?.parse().ok()
}

/// Signal every process of a unit: each marked process and every process of
/// its group, so a client's children (a shell's `sleep`) go with it.
fn signal_unit(found: &[Found], sig: rustix::process::Signal) {
    use rustix::process::{kill_process, kill_process_group, Pid};
    for f in found {
        // Errors mean the process or group is gone already.
        if let Some(group) = Pid::from_raw(f.pgrp).filter(|g| g.as_raw_pid() > 1) {
            let _ = kill_process_group(group, sig);
        }
        if let Some(pid) = Pid::from_raw(f.pid) {
            let _ = kill_process(pid, sig);
        }
    }
}

impl ProcessDriver for LocalDriver {
    fn paths(&self, node: &str) -> NodePaths {
        NodePaths::host(self.node_dir(node))
    }

    /// The file the process's output goes to (`logs/<unit>.log`).
    async fn logs(&self, node: &str, unit: &str, after: Option<&str>, tail: u32) -> Result<(Vec<novacula_core::logs::LogLine>, String)> {
        let path = self.node_dir(node).join("logs").join(format!("{unit}.log"));
        let after = after.map(String::from);
        tokio::task::spawn_blocking(move || crate::logfile::read(&path, after.as_deref(), tail))
            .await
            .map_err(|e| DriverError::Other(e.to_string()))?
            .map_err(DriverError::from)
    }

    fn bin_dir(&self) -> PathBuf {
        self.data_dir.join("bin")
    }

    async fn observe(&self, node: &str) -> Result<LocalNode> {
        let dir = self.node_dir(node);
        let mut running = self.scan(node).await;
        let mut processes = Vec::new();
        if let Ok(entries) = std::fs::read_dir(dir.join("units")) {
            let mut names: Vec<String> = entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_str()?.to_string();
                    name.strip_suffix(".json").or_else(|| name.strip_suffix(".installed")).map(str::to_string)
                })
                .collect();
            names.sort();
            names.dedup();
            for unit in names {
                let def: Option<UnitFile> = std::fs::read(self.unit_file(node, &unit)).ok().and_then(|b| serde_json::from_slice(&b).ok());
                let installed = std::fs::read_to_string(self.installed_file(node, &unit))
                    .ok()
                    .and_then(|s| s.trim().split_once(' ').map(|(c, v)| (c.to_string(), v.to_string())));
                processes.push(LocalProcess { running: running.remove(&unit).map(|f| f.running), unit, installed, config: def.map(|d| d.fingerprint) });
            }
        }
        // A process whose unit file is gone is still ours to stop.
        processes.extend(running.into_iter().map(|(unit, f)| LocalProcess { unit, installed: None, config: None, running: Some(f.running) }));
        Ok(LocalNode { processes, data_present: dir.exists() })
    }

    async fn install(&self, node: &str, unit: &str, client: &str, version: &str, binary: Option<PathBuf>) -> Result<()> {
        if let Some(bin) = binary.filter(|b| !is_executable(b)) {
            return Err(DriverError::Other(format!(
                "binary for {client} {version} not found: place an executable at {} or pin a download under [[artifacts]] in agent.toml",
                bin.display()
            )));
        }
        let f = self.installed_file(node, unit);
        agent_dir(&self.node_dir(node).join("units"), 0o700, None)?;
        write_private(&f, format!("{client} {version}\n").as_bytes())?;
        Ok(())
    }

    #[allow(clippy::expect_used, reason = "a unit definition is plain data; serializing it cannot fail")]
    async fn write_unit(&self, node: &str, unit: &str, def: &UnitDef, fingerprint: Fingerprint) -> Result<()> {
        let paths = self.paths(node);
        let group = self.client_account.as_ref().map(|a| a.gid);
        // The node root, its config and the agent's bookkeeping stay the
        // agent's; clients read their config through the group.
        agent_dir(&paths.root, 0o755, None)?;
        agent_dir(&paths.config(), 0o750, group)?;
        agent_dir(&paths.root.join("units"), 0o700, None)?;
        for f in &def.files {
            let p = paths.config().join(&f.name);
            match &f.contents {
                FileContents::Text(text) => crate::files::write_atomic(&p, text.as_bytes(), 0o640, group)?,
                // generated once, here: a rewrite would split the clients that share it
                FileContents::Secret(secret) if std::fs::symlink_metadata(&p).is_err() => {
                    crate::files::write_atomic(&p, secret.generate(&OsEntropy).as_bytes(), 0o640, group)?;
                }
                FileContents::Secret(_) => {}
                // Downloaded once and kept, like a secret; checked against the adapter's pin.
                FileContents::Fetched(fetched) => {
                    crate::artifacts::fetch_file(fetched, &paths.fetched().join(&f.name), self.ca_file.as_deref(), group)
                        .await
                        .map_err(|source| DriverError::Fetch { file: f.name.clone(), source: Box::new(source) })?;
                }
            }
        }
        for dir in [paths.data(unit), paths.root.join("logs")] {
            std::fs::create_dir_all(&dir)?;
            if let Some(account) = &self.client_account {
                // Data can hold a whole chain: walk it only when it is not
                // the account's yet (first start, or run_as changed).
                if owner_uid(&dir)? != account.uid {
                    hand_over(&dir, account)?;
                }
            }
        }
        let env_file = self.secret_env_file(node, unit);
        if def.secret_env.is_empty() {
            match std::fs::remove_file(&env_file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        } else {
            write_private(&env_file, env_file_text(&def.secret_env)?.as_bytes())?;
        }
        let file = UnitFile { command: def.command.clone(), env: def.env.clone(), fingerprint };
        write_private(&self.unit_file(node, unit), &serde_json::to_vec_pretty(&file).expect("plain data"))?;
        Ok(())
    }

    async fn start(&self, node: &str, unit: &str, fingerprint: Fingerprint, generation: u64) -> Result<()> {
        if self.found(node, unit).await.is_some() {
            return Ok(()); // already running: never start a duplicate
        }
        let def: UnitFile =
            serde_json::from_slice(&std::fs::read(self.unit_file(node, unit))?).map_err(|e| DriverError::Other(format!("unit file of {node}/{unit}: {e}")))?;
        let (program, args) = def.command.split_first().ok_or_else(|| DriverError::Other("empty command".into()))?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.node_dir(node).join("logs").join(format!("{unit}.log")))?;
        let secrets = match std::fs::read_to_string(self.secret_env_file(node, unit)) {
            Ok(text) => parse_env_file(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
            Err(e) => return Err(e.into()),
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .envs(&def.env)
            .envs(&secrets)
            .env(ENV_UNIT, self.unit_id(node, unit))
            .env(ENV_FINGERPRINT, fingerprint.to_string())
            .env(ENV_GENERATION, generation.to_string())
            .current_dir(self.node_dir(node))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(false);
        let mut child = cmd.spawn().map_err(|e| DriverError::Other(format!("cannot start {program}: {e}")))?;
        tracing::info!(node, unit, pid = child.id(), generation, "process started");
        // Return once the process shows its markers (the scan sees through a
        // wrapper mid-exec, see `read_environ`), or report a client that exits
        // at once as this start's error, with where its output went.
        let mut visible = false;
        let deadline = tokio::time::Instant::now() + START_VISIBLE_WAIT;
        while tokio::time::Instant::now() < deadline {
            if self.found(node, unit).await.is_some() {
                visible = true;
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(DriverError::Other(format!(
                    "{program} exited at once ({status}); see {}",
                    self.node_dir(node).join("logs").join(format!("{unit}.log")).display()
                )));
            }
            tokio::time::sleep(PROCESS_POLL_INTERVAL).await;
        }
        if !visible {
            tracing::warn!(node, unit, wait_secs = START_VISIBLE_WAIT.as_secs(), "process started but not yet visible");
        }
        // Reap it when it exits so it does not linger as a zombie while we live.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(())
    }

    async fn stop(&self, node: &str, unit: &str) -> Result<()> {
        let found = self.unit_processes(node, unit).await;
        if found.is_empty() {
            return Ok(());
        }
        signal_unit(&found, rustix::process::Signal::TERM);
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let left = self.unit_processes(node, unit).await;
            if left.is_empty() {
                tracing::info!(node, unit, processes = found.len(), "process stopped");
                return Ok(());
            }
            // A child started while we waited joins the list.
            signal_unit(&left, rustix::process::Signal::TERM);
        }
        let left = self.unit_processes(node, unit).await;
        signal_unit(&left, rustix::process::Signal::KILL);
        tracing::warn!(node, unit, processes = left.len(), grace_secs = STOP_GRACE.as_secs(), "processes killed after the stop grace period");
        Ok(())
    }

    async fn remove_unit(&self, node: &str, unit: &str) -> Result<()> {
        for f in [self.unit_file(node, unit), self.installed_file(node, unit)] {
            match std::fs::remove_file(f) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    async fn remove_data(&self, node: &str) -> Result<()> {
        match std::fs::remove_dir_all(self.node_dir(node)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper() -> UnitDef {
        UnitDef {
            command: vec!["/bin/sh".into(), "-c".into(), "exec sleep 600".into()],
            env: Default::default(),
            secret_env: Default::default(),
            files: vec![],
            stop_grace_secs: 30,
        }
    }

    #[tokio::test]
    async fn processes_are_found_again_by_a_fresh_driver() {
        let dir = tempfile::tempdir().unwrap();
        let d = LocalDriver::new(dir.path()).unwrap();
        let fp = Fingerprint(42);
        d.write_unit("n", "main", &sleeper(), fp).await.unwrap();
        d.start("n", "main", fp, 3).await.unwrap();
        let again = LocalDriver::new(dir.path()).unwrap(); // as after an agent crash
        let local = again.observe("n").await.unwrap();
        assert_eq!(local.processes.len(), 1);
        assert_eq!(local.processes[0].running, Some(RunningProcess { fingerprint: fp, generation: 3 }));
        // starting again does not duplicate
        again.start("n", "main", fp, 3).await.unwrap();
        assert_eq!(again.process_count("n"), 1);
        again.stop("n", "main").await.unwrap();
        assert!(again.observe("n").await.unwrap().processes[0].running.is_none());
        again.remove_unit("n", "main").await.unwrap();
        again.remove_data("n").await.unwrap();
        assert!(again.observe("n").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn secret_variables_reach_the_process_from_a_file_only_root_reads() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = LocalDriver::new(dir.path()).unwrap();
        let value = r#"https://u:p"w\d@l1.example/key"#;
        let mut def = sleeper();
        def.command = vec!["/bin/sh".into(), "-c".into(), "printf %s \"$L1\" > l1-seen; exec sleep 600".into()];
        def.secret_env = [("L1".to_string(), value.to_string())].into();
        d.write_unit("n", "main", &def, Fingerprint(1)).await.unwrap();
        let env_file = d.secret_env_file("n", "main");
        assert_eq!(std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!std::fs::read_to_string(d.unit_file("n", "main")).unwrap().contains("l1.example"), "not in the unit's definition");
        d.start("n", "main", Fingerprint(1), 0).await.unwrap();
        let seen = d.node_dir("n").join("l1-seen");
        for _ in 0..100 {
            if std::fs::read_to_string(&seen).is_ok_and(|s| !s.is_empty()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(std::fs::read_to_string(&seen).unwrap(), value);
        d.stop("n", "main").await.unwrap();
        def.secret_env.clear();
        d.write_unit("n", "main", &def, Fingerprint(2)).await.unwrap();
        assert!(!env_file.exists(), "no secret left behind once the spec names none");
        assert!(env_file_text(&[("A".to_string(), "two\nlines".to_string())].into()).is_err());
    }

    #[tokio::test]
    async fn a_sidecars_children_do_not_survive_stop() {
        // `sh -c 'sleep 1000; true'`: the shell forks sleep, which is no group
        // leader; stop must take both, and the node must not stick in stopping.
        let dir = tempfile::tempdir().unwrap();
        let d = LocalDriver::new(dir.path()).unwrap();
        let def = UnitDef {
            command: vec!["/bin/sh".into(), "-c".into(), "sleep 1000; true".into()],
            env: Default::default(),
            secret_env: Default::default(),
            files: vec![],
            stop_grace_secs: 30,
        };
        d.write_unit("n", "side", &def, Fingerprint(1)).await.unwrap();
        d.start("n", "side", Fingerprint(1), 0).await.unwrap();
        for _ in 0..100 {
            if d.process_count("n") == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(d.process_count("n"), 2, "shell and sleep both carry the unit's markers");
        d.stop("n", "side").await.unwrap();
        assert_eq!(d.process_count("n"), 0, "nothing of the unit survives stop");
        assert!(d.observe("n").await.unwrap().processes[0].running.is_none());
    }

    #[test]
    fn processes_of_other_users_are_not_trusted() {
        // PID 1 runs as root; an agent trusting only another uid never sees it as its own.
        let dir = tempfile::tempdir().unwrap();
        let mut d = LocalDriver::new(dir.path()).unwrap();
        d.trusted_uids = vec![u32::MAX - 1];
        assert!(!owner_uid(Path::new("/proc/1")).is_ok_and(|uid| d.trusted_uids.contains(&uid)));
    }

    #[tokio::test]
    async fn install_requires_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let d = LocalDriver::new(dir.path()).unwrap();
        let missing = dir.path().join("bin/geth/1.0.0/geth");
        let err = d.install("n", "execution", "geth", "1.0.0", Some(missing)).await.unwrap_err();
        assert!(err.to_string().contains("place an executable"), "{err}");
        d.install("n", "execution", "geth", "1.0.0", Some("/bin/sh".into())).await.unwrap();
        let local = d.observe("n").await.unwrap();
        assert_eq!(local.processes.len(), 1);
        assert_eq!(local.processes[0].installed, Some(("geth".into(), "1.0.0".into())));
        assert_eq!((local.processes[0].config, local.processes[0].running), (None, None));
    }
}
