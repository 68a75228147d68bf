//! systemd driver: each process is a unit `novacula-<node>-<unit>.service`
//! managed over D-Bus (zbus). Files under `data_dir/nodes/<name>/` are laid out
//! as by the local driver, which this driver reuses for them; the running state
//! is read back from the processes' environment markers, which the unit sets.

use crate::driver::{DriverError, LocalDriver, ProcessDriver, Result, UnitDef, ENV_FINGERPRINT, ENV_GENERATION, ENV_UNIT};
use novacula_core::fingerprint::Fingerprint;
use novacula_core::reconcile::LocalNode;
use novacula_executor::adapter::NodePaths;
use std::path::PathBuf;
use std::time::Duration;
use zbus::OwnedObjectPath;

#[zbus::proxy(interface = "org.freedesktop.systemd1.Manager", default_service = "org.freedesktop.systemd1", default_path = "/org/freedesktop/systemd1")]
pub trait Manager {
    fn reload(&self) -> zbus::Result<()>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    #[allow(clippy::type_complexity)]
    fn list_units_by_names(&self, names: &[&str]) -> zbus::Result<Vec<UnitStatus>>;
}

/// `(name, description, load, active, sub, following, path, job id, job type, job path)`.
pub type UnitStatus = (String, String, String, String, String, String, OwnedObjectPath, u32, String, OwnedObjectPath);

pub struct SystemdDriver {
    files: LocalDriver,
    unit_dir: PathBuf,
    manager: ManagerProxy<'static>,
    /// Unprivileged account the node clients run as (`User=`); root when unset.
    run_as: Option<Account>,
    /// A journal directory to read logs from instead of the host's (tests).
    journal: Option<PathBuf>,
}

/// Unit files and drop-ins: systemd reads them; nobody else writes them.
fn write_unit_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    crate::files::write_atomic(path, text.as_bytes(), 0o644, None)
}

pub use crate::files::Account;

/// How long a start, restart or stop waits for systemd to get the process there.
const UNIT_STATE_WAIT: Duration = Duration::from_secs(10);
const UNIT_STATE_POLL_INTERVAL: Duration = Duration::from_millis(100);

pub use novacula_core::naming::unit_name;

/// Which directive a quoted word goes into: systemd expands `$VAR` in
/// `ExecStart=` (so a literal `$` is `$$`) but not in `Environment=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    ExecStart,
    Environment,
}

/// systemd's double-quoted word syntax. Every C0 control character and DEL is
/// written as a `\xNN` escape, so no value can end the line and start a new
/// directive (core validation refuses them in specs already; this is the
/// second wall).
pub fn quote(s: &str, directive: Directive) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if novacula_core::validate::is_forbidden_control(c) => out.push_str(&format!("\\x{:02x}", c as u32)),
            '%' => out.push_str("%%"),
            '$' if directive == Directive::ExecStart => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A path setting's value (`WorkingDirectory=`): systemd takes it unquoted,
/// and a quoted one is a fatal "path is not absolute" error; only `%` needs escaping.
pub fn path_value(p: &str) -> String {
    p.replace('%', "%%")
}

/// The first line of every unit file the agent writes: `uninstall` removes
/// exactly the files that carry it.
pub const MANAGED_HEADER: &str = "# Managed by novacula-agent; do not edit.";

/// The unit file. The fingerprint comment lets `observe`-side tools see which spec wrote it.
/// `env_file`: the unit's secret variables (root's alone; systemd reads it before dropping to `user`).
#[allow(clippy::too_many_arguments, reason = "a unit is made of all of these")]
pub fn render_unit(
    node: &str,
    unit: &str,
    unit_id: &str,
    workdir: &str,
    def: &UnitDef,
    fingerprint: Fingerprint,
    user: Option<&str>,
    env_file: Option<&str>,
) -> String {
    let exec: Vec<String> = def.command.iter().map(|a| quote(a, Directive::ExecStart)).collect();
    // The marker comes last: for a repeated variable systemd keeps the last assignment.
    let mut env: Vec<String> =
        def.env.iter().filter(|(k, _)| k.as_str() != ENV_UNIT).map(|(k, v)| quote(&format!("{k}={v}"), Directive::Environment)).collect();
    env.push(quote(&format!("{ENV_UNIT}={unit_id}"), Directive::Environment));
    // A client on the open p2p network never gains privileges, and runs unprivileged when configured.
    let user = user.map(|u| format!("User={}\n", path_value(u))).unwrap_or_default();
    let secrets = env_file.map(|f| format!("EnvironmentFile={}\n", path_value(f))).unwrap_or_default();
    format!(
        "{MANAGED_HEADER}\n# novacula-fingerprint={fingerprint}\n[Unit]\nDescription=Novacula node {node} ({unit})\nAfter=network-online.target\n\n[Service]\nExecStart={}\nEnvironment={}\n{secrets}WorkingDirectory={}\n{user}NoNewPrivileges=yes\nRestart=on-failure\nRestartSec=5\nKillMode=control-group\nTimeoutStopSec={}\n\n[Install]\nWantedBy=multi-user.target\n",
        exec.join(" "),
        env.join(" "),
        path_value(workdir),
        def.stop_grace_secs,
    )
}

/// Drop-in written at each start: what the started process runs under.
pub fn render_run_dropin(fingerprint: Fingerprint, generation: u64) -> String {
    format!(
        "[Service]\nEnvironment={} {}\n",
        quote(&format!("{ENV_FINGERPRINT}={fingerprint}"), Directive::Environment),
        quote(&format!("{ENV_GENERATION}={generation}"), Directive::Environment)
    )
}

impl SystemdDriver {
    /// Connect to the system bus.
    pub async fn system(data_dir: PathBuf, unit_dir: PathBuf) -> Result<SystemdDriver> {
        let conn = zbus::Connection::system().await.map_err(dbus)?;
        Self::with_connection(&conn, data_dir, unit_dir).await
    }

    pub async fn with_connection(conn: &zbus::Connection, data_dir: PathBuf, unit_dir: PathBuf) -> Result<SystemdDriver> {
        std::fs::create_dir_all(&unit_dir)?;
        let manager = ManagerProxy::new(conn).await.map_err(dbus)?;
        Ok(SystemdDriver { files: LocalDriver::new(data_dir)?, unit_dir, manager, run_as: None, journal: None })
    }

    /// Downloads of the files adapters name trust this CA bundle.
    pub fn with_ca_file(mut self, ca_file: Option<PathBuf>) -> SystemdDriver {
        self.files = self.files.with_ca_file(ca_file);
        self
    }

    /// Run node clients as `account` instead of root; their config, data and
    /// log directories become theirs.
    pub fn run_as(mut self, account: Account) -> SystemdDriver {
        self.files = self.files.with_client_account(account.clone());
        self.run_as = Some(account);
        self
    }

    /// Read node logs from the journal in `dir` (`journalctl --directory`), not the host's.
    pub fn journal_dir(mut self, dir: PathBuf) -> SystemdDriver {
        self.journal = Some(dir);
        self
    }

    fn unit_path(&self, node: &str, unit: &str) -> PathBuf {
        self.unit_dir.join(unit_name(node, unit))
    }

    fn dropin_dir(&self, node: &str, unit: &str) -> PathBuf {
        self.unit_dir.join(format!("{}.d", unit_name(node, unit)))
    }

    /// systemd's `(active, sub)` state of the unit.
    pub async fn unit_state(&self, node: &str, unit: &str) -> Result<(String, String)> {
        let name = unit_name(node, unit);
        let units = self.manager.list_units_by_names(&[name.as_str()]).await.map_err(dbus)?;
        Ok(units.into_iter().next().map(|u| (u.3, u.4)).unwrap_or_else(|| ("inactive".into(), "dead".into())))
    }

    /// Wait until the unit's process runs (or, with `None`, is gone); a failed unit ends the wait.
    async fn wait_for(&self, node: &str, unit: &str, want: Option<(Fingerprint, u64)>) -> Result<()> {
        let deadline = tokio::time::Instant::now() + UNIT_STATE_WAIT;
        while tokio::time::Instant::now() < deadline {
            let now = self.files.running(node, unit).await.map(|r| (r.fingerprint, r.generation));
            // A stop is done when systemd says so too: a unit between restarts
            // (auto-restart) runs no process yet still has its stop job pending.
            if now == want && (want.is_some() || self.settled(node, unit).await?) {
                return Ok(());
            }
            if want.is_some() {
                if let Some(why) = self.failed(node, unit).await {
                    return Err(DriverError::Other(why));
                }
            }
            tokio::time::sleep(UNIT_STATE_POLL_INTERVAL).await;
        }
        Err(DriverError::Other(format!("{} did not reach the expected state within {} s", unit_name(node, unit), UNIT_STATE_WAIT.as_secs())))
    }

    /// Whether systemd has the unit at rest (inactive or failed), no job under way.
    async fn settled(&self, node: &str, unit: &str) -> Result<bool> {
        let (active, _) = self.unit_state(node, unit).await?;
        Ok(active == "inactive" || active == "failed")
    }

    async fn prepare_start(&self, node: &str, unit: &str, fingerprint: Fingerprint, generation: u64) -> Result<()> {
        let dir = self.dropin_dir(node, unit);
        std::fs::create_dir_all(&dir)?;
        write_unit_file(&dir.join("50-novacula-run.conf"), &render_run_dropin(fingerprint, generation))?;
        self.manager.reload().await.map_err(dbus)
    }
}

fn dbus(e: zbus::Error) -> DriverError {
    DriverError::Other(format!("systemd D-Bus call failed: {e}"))
}

impl ProcessDriver for SystemdDriver {
    fn paths(&self, node: &str) -> NodePaths {
        self.files.paths(node)
    }

    /// The unit's journal (its clients log to stdout and stderr).
    async fn logs(&self, node: &str, unit: &str, after: Option<&str>, tail: u32) -> Result<(Vec<novacula_core::logs::LogLine>, String)> {
        crate::journal::read(&unit_name(node, unit), self.journal.as_deref(), after, tail).await
    }

    fn bin_dir(&self) -> PathBuf {
        self.files.bin_dir()
    }

    async fn observe(&self, node: &str) -> Result<LocalNode> {
        self.files.observe(node).await
    }

    async fn install(&self, node: &str, unit: &str, client: &str, version: &str, binary: Option<PathBuf>) -> Result<()> {
        self.files.install(node, unit, client, version, binary).await
    }

    async fn write_unit(&self, node: &str, unit: &str, def: &UnitDef, fingerprint: Fingerprint) -> Result<()> {
        // Files, directories and their owners: as the local driver lays them out.
        self.files.write_unit(node, unit, def, fingerprint).await?;
        let paths = self.files.paths(node);
        let workdir = paths.root.display().to_string();
        let user = self.run_as.as_ref().map(|a| a.name.as_str());
        let env_file = (!def.secret_env.is_empty()).then(|| self.files.secret_env_file(node, unit).display().to_string());
        let text = render_unit(node, unit, &self.files.unit_id(node, unit), &workdir, def, fingerprint, user, env_file.as_deref());
        write_unit_file(&self.unit_path(node, unit), &text)?;
        self.manager.reload().await.map_err(dbus)
    }

    async fn start(&self, node: &str, unit: &str, fingerprint: Fingerprint, generation: u64) -> Result<()> {
        self.prepare_start(node, unit, fingerprint, generation).await?;
        self.manager.start_unit(&unit_name(node, unit), "replace").await.map_err(dbus)?;
        self.wait_for(node, unit, Some((fingerprint, generation))).await
    }

    async fn restart(&self, node: &str, unit: &str, fingerprint: Fingerprint, generation: u64) -> Result<()> {
        self.prepare_start(node, unit, fingerprint, generation).await?;
        self.manager.restart_unit(&unit_name(node, unit), "replace").await.map_err(dbus)?;
        self.wait_for(node, unit, Some((fingerprint, generation))).await
    }

    async fn stop(&self, node: &str, unit: &str) -> Result<()> {
        self.manager.stop_unit(&unit_name(node, unit), "replace").await.map_err(dbus)?;
        self.wait_for(node, unit, None).await
    }

    async fn remove_unit(&self, node: &str, unit: &str) -> Result<()> {
        for r in [std::fs::remove_file(self.unit_path(node, unit)), std::fs::remove_dir_all(self.dropin_dir(node, unit))] {
            if let Err(e) = r.filter_not_found() {
                return Err(e.into());
            }
        }
        self.manager.reload().await.map_err(dbus)?;
        self.files.remove_unit(node, unit).await
    }

    async fn remove_data(&self, node: &str) -> Result<()> {
        self.files.remove_data(node).await
    }

    async fn failed(&self, node: &str, unit: &str) -> Option<String> {
        match self.unit_state(node, unit).await {
            Ok((active, sub)) if active == "failed" => Some(format!("{} failed ({sub})", unit_name(node, unit))),
            // Restart=on-failure: a crashing process never reaches "failed", it loops through this
            Ok((_, sub)) if sub == "auto-restart" => Some(format!("{} exited with an error; systemd restarts it (auto-restart)", unit_name(node, unit))),
            _ => None,
        }
    }
}

trait NotFoundOk {
    fn filter_not_found(self) -> std::io::Result<()>;
}

impl NotFoundOk for std::io::Result<()> {
    fn filter_not_found(self) -> std::io::Result<()> {
        match self {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_resolve_or_fail_clearly() {
        assert_eq!(Account::lookup("root").unwrap(), Account { name: "root".into(), uid: 0, gid: 0 });
        let err = Account::lookup("no-such-novacula-user").unwrap_err().to_string();
        assert!(err.contains("no such user") && err.contains("useradd"), "{err}");
    }

    #[test]
    fn unit_file_injection_through_control_characters_is_escaped() {
        // Defence in depth: even if a value with a newline reached the writer,
        // it could not start a directive of its own.
        let def = UnitDef {
            command: vec!["/bin/geth".into(), "--x=1\nExecStartPre=/bin/sh -c id\r\0\u{7f}".into()],
            env: [("A".to_string(), "v\n[Service]\nUser=root".to_string())].into(),
            secret_env: Default::default(),
            files: vec![],
            stop_grace_secs: 300,
        };
        let text = render_unit("eth", "execution", "/d/nodes/eth/execution", "/d/nodes/eth", &def, Fingerprint(1), Some("eth"), None);
        assert!(!text.lines().any(|l| l.starts_with("ExecStartPre=") || l == "User=root"), "{text}");
        assert!(text.contains("--x=1\\x0aExecStartPre=/bin/sh -c id\\x0d\\x00\\x7f"), "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with("User=")).count(), 1);
    }

    #[test]
    fn environment_values_keep_dollars_and_exec_arguments_escape_them() {
        let def = UnitDef {
            command: vec!["/bin/x".into(), "$HOME".into()],
            env: [("P".to_string(), "a$b".to_string())].into(),
            secret_env: Default::default(),
            files: vec![],
            stop_grace_secs: 300,
        };
        let text = render_unit("n", "main", "/d/n/main", "/d/n", &def, Fingerprint(1), None, None);
        assert!(text.contains("ExecStart=\"/bin/x\" \"$$HOME\"\n"), "{text}");
        assert!(text.contains("Environment=\"P=a$b\" "), "{text}");
    }

    #[test]
    fn unit_file_quotes_arguments_and_carries_markers() {
        let def = UnitDef {
            command: vec!["/bin/geth".into(), "--graphql.vhosts=a b".into(), "say \"hi\" 100%".into()],
            env: [("RUST_LOG".to_string(), "info".to_string())].into(),
            secret_env: [("OP_NODE_L1_ETH_RPC".to_string(), "https://key@l1".to_string())].into(),
            files: vec![],
            stop_grace_secs: 300,
        };
        let text =
            render_unit("eth", "execution", "/d/nodes/eth/execution", "/d/nodes/eth", &def, Fingerprint(0xab), None, Some("/d/nodes/eth/units/execution.env"));
        assert!(text.contains("\nTimeoutStopSec=300\n"), "an execution client gets minutes to flush: {text}");
        assert!(!text.contains("User="), "root unless configured");
        assert!(text.contains("\nNoNewPrivileges=yes\n"));
        let as_user = render_unit("eth", "execution", "/d/nodes/eth/execution", "/d/nodes/eth", &def, Fingerprint(0xab), Some("eth"), None);
        assert!(as_user.contains("\nUser=eth\n"), "{as_user}");
        assert!(text.contains("ExecStart=\"/bin/geth\" \"--graphql.vhosts=a b\" \"say \\\"hi\\\" 100%%\"\n"), "{text}");
        assert!(text.contains("Environment=\"RUST_LOG=info\" \"NOVACULA_UNIT=/d/nodes/eth/execution\"\n"), "{text}");
        assert!(text.contains("# novacula-fingerprint=00000000000000ab"));
        assert!(text.contains("\nEnvironmentFile=/d/nodes/eth/units/execution.env\n") && !text.contains("key@l1"), "secrets stay out of the unit file: {text}");
        assert!(text.contains("\nWorkingDirectory=/d/nodes/eth\n"), "paths are not quoted: {text}");
        assert_eq!(path_value("/srv/100% data"), "/srv/100%% data");
        assert_eq!(unit_name("eth", "execution"), "novacula-eth.execution.service");
        assert_eq!(render_run_dropin(Fingerprint(1), 7), "[Service]\nEnvironment=\"NOVACULA_FINGERPRINT=0000000000000001\" \"NOVACULA_GENERATION=7\"\n");
    }
}
