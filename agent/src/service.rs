//! The agent as a systemd service on its own host: `install` puts the binary,
//! `agent.toml` and two units in place and starts the service; `uninstall`
//! reverses it; `start`/`stop`/`restart`/`status` drive it over D-Bus.
//!
//! Defaults: `/usr/local/bin/novacula-agent`, `/etc/novacula/agent.toml` (0600:
//! it holds the API key, which is never on a command line or in a unit) and
//! `/etc/systemd/system/novacula-agent.service` with its
//! `novacula-agent-rollback.service`, which the service's `OnFailure=` starts
//! to put the replaced binary back when a self-upgraded one keeps failing.

use crate::config::AgentConfig;
use crate::systemd::{path_value, quote, Directive, ManagerProxy, MANAGED_HEADER};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const SERVICE: &str = "novacula-agent.service";
pub const ROLLBACK: &str = "novacula-agent-rollback.service";
pub const DEFAULT_BINARY: &str = "/usr/local/bin/novacula-agent";
pub const DEFAULT_CONFIG: &str = "/etc/novacula/agent.toml";
pub const DEFAULT_UNIT_DIR: &str = "/etc/systemd/system";

/// Markers in the service unit: how `uninstall` and `upgrade` find what `install` wrote.
const BINARY_MARKER: &str = "# novacula-binary=";
const CONFIG_MARKER: &str = "# novacula-config=";

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("systemd D-Bus call failed: {0} (is this host running systemd, and are you root?)")]
    Dbus(#[from] zbus::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("the agent is not installed here ({} is missing)", .0.display())]
    NotInstalled(PathBuf),
    #[error("{SERVICE} did not stay running ({state}); see `journalctl -u novacula-agent`")]
    NotRunning { state: String },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Upgrade(#[from] crate::upgrade::UpgradeError),
}

type Result<T> = std::result::Result<T, ServiceError>;

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ServiceError + 'a {
    move |source| ServiceError::Io { what, path: path.to_path_buf(), source }
}

/// Where an installed agent lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub binary: PathBuf,
    pub config: PathBuf,
    pub unit_dir: PathBuf,
}

impl Layout {
    pub fn service_path(&self) -> PathBuf {
        self.unit_dir.join(SERVICE)
    }

    fn wants_link(unit_dir: &Path) -> PathBuf {
        unit_dir.join("multi-user.target.wants").join(SERVICE)
    }

    /// Read back from the installed unit's markers.
    pub fn installed(unit_dir: &Path) -> Result<Layout> {
        let path = unit_dir.join(SERVICE);
        let text = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ServiceError::NotInstalled(path)),
            r => r.map_err(io("read", &path))?,
        };
        let marker = |m: &str| text.lines().find_map(|l| l.strip_prefix(m)).map(PathBuf::from);
        match (marker(BINARY_MARKER), marker(CONFIG_MARKER)) {
            (Some(binary), Some(config)) => Ok(Layout { binary, config, unit_dir: unit_dir.to_path_buf() }),
            _ => Err(ServiceError::Invalid(format!("{} was not written by `novacula-agent install`; remove it by hand", path.display()))),
        }
    }
}

/// Paths go into unit settings unquoted (`ReadWritePaths=`, `ConditionPathExists=`):
/// refuse the few characters that would change their meaning there.
fn check_path(what: &str, p: &Path) -> Result<()> {
    let s = p.to_str().ok_or_else(|| ServiceError::Invalid(format!("{what} {} is not UTF-8", p.display())))?;
    if !p.is_absolute() {
        return Err(ServiceError::Invalid(format!("{what} {s} must be an absolute path")));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\' | ';')) {
        return Err(ServiceError::Invalid(format!("{what} {s:?}: paths with spaces, quotes or backslashes are not supported")));
    }
    Ok(())
}

/// The agent's unit. It may write only its data dir, the unit dir (node units)
/// and its binary's dir (self-upgrade); the rest of the system is read-only.
/// Node clients are units of their own, so none of this confines them.
pub fn render_service(l: &Layout, data_dir: &Path) -> String {
    let bin_dir = l.binary.parent().unwrap_or(Path::new("/"));
    let writable = [data_dir, l.unit_dir.as_path(), bin_dir];
    // A private /tmp would hide a data dir kept under /tmp (tests, demos).
    let private_tmp = if writable.iter().any(|p| p.starts_with("/tmp") || p.starts_with("/var/tmp")) { "no" } else { "yes" };
    let rw: Vec<String> = writable.iter().map(|p| format!("-{}", path_value(&p.display().to_string()))).collect();
    format!(
        "{MANAGED_HEADER}
{BINARY_MARKER}{binary}
{CONFIG_MARKER}{config}
[Unit]
Description=Novacula agent: runs the blockchain nodes its control plane assigns to this host
Wants=network-online.target
After=network-online.target
OnFailure={ROLLBACK}
# Five failed starts within five minutes fail the unit; OnFailure= then puts
# back the binary a self-upgrade replaced, if there is one.
StartLimitIntervalSec=300
StartLimitBurst=5

[Service]
ExecStart={exec} \"run\" \"--config\" {config_arg}
# systemd forgets how the main process ended once it restarts it; keep that for `status`.
ExecStopPost=-{exec} \"record-exit\" \"--config\" {config_arg}
Restart=always
RestartSec=5
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={rw}
ProtectHome=read-only
PrivateTmp={private_tmp}
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
LockPersonality=yes
UMask=0027

[Install]
WantedBy=multi-user.target
",
        binary = l.binary.display(),
        config = l.config.display(),
        exec = quote(&l.binary.display().to_string(), Directive::ExecStart),
        config_arg = quote(&l.config.display().to_string(), Directive::ExecStart),
        rw = rw.join(" "),
    )
}

/// Started by the service's `OnFailure=`: if a replaced binary is kept, it
/// goes back, and the service starts again (the old binary then refuses the
/// release that failed, see `upgrade::probation`).
pub fn render_rollback(l: &Layout) -> String {
    let previous = crate::upgrade::previous_of(&l.binary);
    format!(
        "{MANAGED_HEADER}
[Unit]
Description=Novacula agent: put back the binary a failed self-upgrade replaced
ConditionPathExists={condition}

[Service]
Type=oneshot
ExecStart=/bin/mv -f {from} {to}
ExecStartPost=/bin/systemctl reset-failed {SERVICE}
ExecStartPost=/bin/systemctl --no-block start {SERVICE}
",
        condition = path_value(&previous.display().to_string()),
        from = quote(&previous.display().to_string(), Directive::ExecStart),
        to = quote(&l.binary.display().to_string(), Directive::ExecStart),
    )
}

/// What `install` was told.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub control_plane: String,
    pub api_key: String,
    pub name: String,
    pub driver: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub channel: Option<String>,
    pub layout: Layout,
    pub start: bool,
}

/// `agent.toml` as `install` leaves it: the settings given on the command line
/// over an existing file's, whose other settings (artifacts, sidecars, ...) and
/// comments stay. Checked with the agent's own parser, so `install` never
/// writes a config that `run` refuses.
pub fn merge_config(existing: Option<&str>, o: &InstallOptions) -> Result<(String, AgentConfig)> {
    let mut doc: toml_edit::DocumentMut =
        existing.unwrap_or("").parse().map_err(|e| ServiceError::Invalid(format!("{} is not valid TOML: {e}", o.layout.config.display())))?;
    doc["control_plane_url"] = toml_edit::value(o.control_plane.as_str());
    doc["name"] = toml_edit::value(o.name.as_str());
    doc.remove("api_key_file");
    doc["api_key"] = toml_edit::value(o.api_key.as_str());
    doc["unit_dir"] = toml_edit::value(o.layout.unit_dir.display().to_string());
    let mut set_or_default = |key: &str, given: Option<String>, default: &str| match given {
        Some(v) => doc[key] = toml_edit::value(v),
        None if !doc.contains_key(key) => doc[key] = toml_edit::value(default),
        None => {}
    };
    set_or_default("driver", o.driver.clone(), "systemd");
    set_or_default("data_dir", o.data_dir.as_ref().map(|d| d.display().to_string()), "/var/lib/novacula");
    set_or_default("channel", o.channel.clone(), "stable");
    let text = doc.to_string();
    let cfg: AgentConfig = toml::from_str(&text).map_err(|source| crate::config::ConfigError::Parse { path: o.layout.config.clone(), source })?;
    cfg.check()?;
    Ok((text, cfg))
}

async fn manager() -> Result<ManagerProxy<'static>> {
    let conn = zbus::Connection::system().await?;
    Ok(ManagerProxy::new(&conn).await?)
}

/// Install (or re-install: running it again with the same options changes
/// nothing but a restart), enable and start the service.
pub async fn install(o: &InstallOptions) -> Result<()> {
    let l = &o.layout;
    for (what, p) in [("binary", &l.binary), ("config", &l.config), ("unit dir", &l.unit_dir)] {
        check_path(what, p)?;
    }
    let existing = match std::fs::read_to_string(&l.config) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        r => Some(r.map_err(io("read", &l.config))?),
    };
    let (text, cfg) = merge_config(existing.as_deref(), o)?;
    check_path("data dir", &cfg.data_dir)?;
    let systemd = manager().await?;

    copy_self(&l.binary)?;
    let config_dir = l.config.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(config_dir).map_err(io("create", config_dir))?;
    crate::files::write_atomic(&l.config, text.as_bytes(), 0o600, None).map_err(io("write", &l.config))?;
    std::fs::create_dir_all(&cfg.data_dir).map_err(io("create", &cfg.data_dir))?;
    std::fs::create_dir_all(&l.unit_dir).map_err(io("create", &l.unit_dir))?;
    let unit = |name: &str, text: String| {
        let path = l.unit_dir.join(name);
        crate::files::write_atomic(&path, text.as_bytes(), 0o644, None).map_err(io("write", &path))
    };
    unit(SERVICE, render_service(l, &cfg.data_dir))?;
    unit(ROLLBACK, render_rollback(l))?;
    // `systemctl enable`, by hand: the link lives beside the unit, wherever unit_dir is.
    let link = Layout::wants_link(&l.unit_dir);
    let wants = link.parent().unwrap_or(&l.unit_dir);
    std::fs::create_dir_all(wants).map_err(io("create", wants))?;
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(l.service_path(), &link).map_err(io("link", &link))?;
    systemd.reload().await?;
    tracing::info!(unit = SERVICE, binary = %l.binary.display(), config = %l.config.display(), "installed");
    if o.start {
        let _ = systemd.reset_failed_unit(SERVICE).await;
        systemd.restart_unit(SERVICE, "replace").await?;
        stays_running(&systemd).await?;
        tracing::info!(unit = SERVICE, "started; logs: journalctl -u novacula-agent");
    }
    Ok(())
}

/// The running binary, copied to `dest` unless it already runs from there.
fn copy_self(dest: &Path) -> Result<()> {
    let me = std::env::current_exe().map_err(io("locate", Path::new("the running binary")))?;
    if std::fs::canonicalize(&me).ok() == std::fs::canonicalize(dest).ok() {
        return Ok(());
    }
    let bytes = std::fs::read(&me).map_err(io("read", &me))?;
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    crate::files::write_atomic(dest, &bytes, 0o755, None).map_err(io("write", dest))
}

/// What `uninstall` removed and kept, for the user.
#[derive(Debug, Default)]
pub struct Removed {
    pub node_units: Vec<String>,
    pub kept_data_dir: Option<PathBuf>,
}

/// Stop and remove the service, its rollback unit, the node units it made, its
/// binary and its config (which holds the key). The data dir (nodes' chain
/// data, downloaded clients) goes only with `purge`. Not installed: nothing to do.
pub async fn uninstall(unit_dir: &Path, purge: bool) -> Result<Removed> {
    let l = match Layout::installed(unit_dir) {
        Err(ServiceError::NotInstalled(_)) => return Ok(Removed::default()),
        r => r?,
    };
    let data_dir = AgentConfig::load(&l.config).ok().map(|c| c.data_dir);
    let systemd = manager().await?;
    // The agent first, so it cannot write node units back while they go.
    stop_and_wait(&systemd, SERVICE).await?;
    let mut removed = Removed::default();
    for name in node_units(&l.unit_dir)? {
        stop_and_wait(&systemd, &name).await?;
        remove_unit_files(&l.unit_dir, &name)?;
        removed.node_units.push(name);
    }
    for name in [SERVICE, ROLLBACK] {
        remove_unit_files(&l.unit_dir, name)?;
    }
    remove_if_present(&Layout::wants_link(&l.unit_dir))?;
    systemd.reload().await?;
    let _ = systemd.reset_failed_unit(SERVICE).await;
    for p in [l.binary.clone(), crate::upgrade::previous_of(&l.binary), l.binary.with_extension("new"), l.config.clone()] {
        remove_if_present(&p)?;
    }
    if let Some(dir) = l.config.parent() {
        let _ = std::fs::remove_dir(dir); // only if empty: it may hold the user's own files
    }
    match data_dir {
        Some(d) if purge => match std::fs::remove_dir_all(&d) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("remove", &d)(e)),
            _ => {}
        },
        d => removed.kept_data_dir = d.filter(|d| d.exists()),
    }
    Ok(removed)
}

/// Unit files in `unit_dir` that the agent wrote for nodes.
fn node_units(unit_dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(unit_dir).map_err(io("list", unit_dir))? {
        let entry = entry.map_err(io("list", unit_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("novacula-") || !name.ends_with(".service") || name == SERVICE || name == ROLLBACK {
            continue;
        }
        let first = std::fs::read_to_string(entry.path()).ok().and_then(|t| t.lines().next().map(String::from));
        if first.as_deref() == Some(MANAGED_HEADER) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn remove_unit_files(unit_dir: &Path, name: &str) -> Result<()> {
    remove_if_present(&unit_dir.join(name))?;
    let dropins = unit_dir.join(format!("{name}.d"));
    match std::fs::remove_dir_all(&dropins) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &dropins)(e)),
        _ => Ok(()),
    }
}

fn remove_if_present(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", p)(e)),
        _ => Ok(()),
    }
}

#[zbus::proxy(interface = "org.freedesktop.systemd1.Unit", default_service = "org.freedesktop.systemd1")]
trait Unit {
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;
}

#[zbus::proxy(interface = "org.freedesktop.systemd1.Service", default_service = "org.freedesktop.systemd1")]
trait Service {
    #[zbus(property, name = "MainPID")]
    fn main_pid(&self) -> zbus::Result<u32>;
    #[zbus(property, name = "NRestarts")]
    fn n_restarts(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn exec_main_code(&self) -> zbus::Result<i32>;
    #[zbus(property)]
    fn exec_main_status(&self) -> zbus::Result<i32>;
    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;
}

/// The service as systemd sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub load: String,
    pub active: String,
    pub sub: String,
    pub main_pid: u32,
    pub restarts: u32,
    /// How the main process last ended (`CLD_*` code, status or signal).
    pub last_exit: Option<(i32, i32)>,
    pub result: String,
    /// How the previous main process ended, as `record-exit` kept it.
    pub recorded_exit: Option<String>,
}

impl Status {
    pub fn installed(&self) -> bool {
        self.load != "not-found"
    }

    pub fn running(&self) -> bool {
        self.active == "active" && self.sub == "running"
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.installed() {
            return writeln!(f, "{SERVICE}: not installed (novacula-agent install --help)");
        }
        writeln!(f, "{SERVICE}: {} ({})", self.active, self.sub)?;
        writeln!(f, "main PID: {}", if self.main_pid == 0 { "-".to_string() } else { self.main_pid.to_string() })?;
        writeln!(f, "restarts: {}", self.restarts)?;
        // While a process runs, systemd's exit fields describe nothing; the recorded exit does.
        let exit = match (self.running(), self.last_exit, &self.recorded_exit) {
            (false, Some((code, status)), _) => describe_exit(code, status),
            (_, _, Some(recorded)) => recorded.clone(),
            _ => "-".to_string(),
        };
        writeln!(f, "last exit: {exit}")?;
        writeln!(f, "result: {}", self.result)?;
        writeln!(f, "logs: journalctl -u novacula-agent")
    }
}

/// The state of `unit` (which need not be installed).
pub async fn unit_status(systemd: &ManagerProxy<'_>, unit: &str) -> Result<Status> {
    let path = systemd.load_unit(unit).await?;
    let conn = systemd.inner().connection();
    let u = UnitProxy::builder(conn).path(path.clone()).build().await?;
    let (load, active, sub) = (u.load_state().await?, u.active_state().await?, u.sub_state().await?);
    if load == "not-found" {
        return Ok(Status { load, active, sub, main_pid: 0, restarts: 0, last_exit: None, result: String::new(), recorded_exit: None });
    }
    let s = ServiceProxy::builder(conn).path(path).build().await?;
    let code = s.exec_main_code().await?;
    Ok(Status {
        load,
        active,
        sub,
        main_pid: s.main_pid().await?,
        restarts: s.n_restarts().await?,
        last_exit: (code != 0).then_some((code, s.exec_main_status().await.unwrap_or_default())),
        result: s.result().await?,
        recorded_exit: None,
    })
}

/// The service's state, with the last exit `record-exit` kept in the data dir
/// of the agent installed into `unit_dir` (if this user may read its config).
pub async fn status(unit_dir: &Path) -> Result<Status> {
    let mut s = unit_status(&manager().await?, SERVICE).await?;
    if s.installed() {
        let data_dir = Layout::installed(unit_dir).ok().and_then(|l| AgentConfig::load(&l.config).ok()).map(|c| c.data_dir);
        s.recorded_exit = data_dir.and_then(|d| std::fs::read_to_string(last_exit_path(&d)).ok()).map(|t| t.trim().to_string());
    }
    Ok(s)
}

fn last_exit_path(data_dir: &Path) -> PathBuf {
    data_dir.join("agent").join("last-exit")
}

/// `waitid`'s code (`CLD_EXITED` 1, `CLD_KILLED` 2, `CLD_DUMPED` 3) and status, in words.
fn describe_exit(code: i32, status: i32) -> String {
    let signal = || nix::sys::signal::Signal::try_from(status).map(|s| s.as_str().to_string()).unwrap_or_else(|_| format!("signal {status}"));
    match code {
        1 => format!("exited with status {status}"),
        2 => format!("killed by {}", signal()),
        3 => format!("dumped core on {}", signal()),
        _ => format!("code {code}, status {status}"),
    }
}

/// `ExecStopPost=` of the service: systemd's `$EXIT_CODE` (exited, killed,
/// dumped), `$EXIT_STATUS` (a number or a signal name without `SIG`) and
/// `$SERVICE_RESULT`, kept in the data dir for `status`.
pub fn record_exit(config: &Path, env: impl Fn(&str) -> Option<String>) -> Result<String> {
    let cfg = AgentConfig::load(config)?;
    let (code, status) = (env("EXIT_CODE").unwrap_or_default(), env("EXIT_STATUS").unwrap_or_default());
    let how = match code.as_str() {
        "exited" => format!("exited with status {status}"),
        "killed" => format!("killed by SIG{status}"),
        "dumped" => format!("dumped core on SIG{status}"),
        _ => "-".to_string(),
    };
    let line = match env("SERVICE_RESULT") {
        // "signal" and "exit-code" repeat what `how` says; "oom-kill", "timeout", "watchdog" add to it.
        Some(r) if !matches!(r.as_str(), "success" | "signal" | "exit-code" | "core-dump") => format!("{how} ({r})"),
        _ => how,
    };
    let path = last_exit_path(&cfg.data_dir);
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{line}\n")).map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
    Ok(line)
}

/// What `start`/`stop`/`restart` do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
}

pub async fn control(action: Action) -> Result<Status> {
    let systemd = manager().await?;
    if !unit_status(&systemd, SERVICE).await?.installed() {
        return Err(ServiceError::NotInstalled(PathBuf::from(SERVICE)));
    }
    match action {
        Action::Stop => stop_and_wait(&systemd, SERVICE).await?,
        Action::Start | Action::Restart => {
            let _ = systemd.reset_failed_unit(SERVICE).await;
            if action == Action::Start {
                systemd.start_unit(SERVICE, "replace").await?;
            } else {
                systemd.restart_unit(SERVICE, "replace").await?;
            }
            stays_running(&systemd).await?;
        }
    }
    unit_status(&systemd, SERVICE).await
}

/// Manual upgrade to `artifact`: swapped in, recorded as pending (the new
/// binary must heartbeat within the probation or it is rolled back) and the
/// service restarted into it. Returns the new version.
pub async fn upgrade(unit_dir: &Path, artifact: &Path) -> Result<String> {
    let l = Layout::installed(unit_dir)?;
    let cfg = AgentConfig::load(&l.config)?;
    let (bin, file, policy) = (l.binary.clone(), artifact.to_path_buf(), cfg.upgrade_policy());
    let version = tokio::task::spawn_blocking(move || crate::upgrade::install_manually(&bin, &file, &policy))
        .await
        .map_err(|e| ServiceError::Invalid(format!("upgrade task failed: {e}")))??;
    let systemd = manager().await?;
    systemd.restart_unit(SERVICE, "replace").await?;
    stays_running(&systemd).await?;
    Ok(version)
}

const SETTLE: Duration = Duration::from_secs(2);
const WAIT: Duration = Duration::from_secs(15);

/// Wait until the service runs, then make sure it still runs the same process
/// a moment later (a bad config exits at once and would read as started).
async fn stays_running(systemd: &ManagerProxy<'_>) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = unit_status(systemd, SERVICE).await?;
        if s.running() {
            tokio::time::sleep(SETTLE).await;
            let later = unit_status(systemd, SERVICE).await?;
            if later.running() && later.main_pid == s.main_pid {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ServiceError::NotRunning { state: format!("{} ({})", s.active, s.sub) });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn stop_and_wait(systemd: &ManagerProxy<'_>, unit: &str) -> Result<()> {
    let s = unit_status(systemd, unit).await?;
    if !s.installed() || s.active == "inactive" || s.active == "failed" {
        return Ok(());
    }
    systemd.stop_unit(unit, "replace").await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let s = unit_status(systemd, unit).await?;
        if s.active == "inactive" || s.active == "failed" {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ServiceError::Invalid(format!("{unit} did not stop within 90 s ({} ({}))", s.active, s.sub)));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout { binary: DEFAULT_BINARY.into(), config: DEFAULT_CONFIG.into(), unit_dir: DEFAULT_UNIT_DIR.into() }
    }

    fn options(existing_layout: Layout) -> InstallOptions {
        InstallOptions {
            control_plane: "https://cp.example".into(),
            api_key: "nvk_secret".into(),
            name: "edge-1".into(),
            driver: None,
            data_dir: None,
            channel: None,
            layout: existing_layout,
            start: true,
        }
    }

    #[test]
    fn service_unit_is_hardened_and_names_its_rollback() {
        let l = layout();
        let text = render_service(&l, Path::new("/var/lib/novacula"));
        assert!(text.starts_with(MANAGED_HEADER), "{text}");
        for line in [
            "ExecStart=\"/usr/local/bin/novacula-agent\" \"run\" \"--config\" \"/etc/novacula/agent.toml\"",
            "Restart=always",
            "After=network-online.target",
            "OnFailure=novacula-agent-rollback.service",
            "ProtectSystem=strict",
            "ReadWritePaths=-/var/lib/novacula -/etc/systemd/system -/usr/local/bin",
            "ProtectHome=read-only",
            "PrivateTmp=yes",
            "NoNewPrivileges=yes",
            "WantedBy=multi-user.target",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("nvk_"), "no key in the unit");
        assert_eq!(
            Layout::installed(Path::new("/nonexistent")).unwrap_err().to_string(),
            "the agent is not installed here (/nonexistent/novacula-agent.service is missing)"
        );
        let under_tmp = render_service(&l, Path::new("/tmp/novacula"));
        assert!(under_tmp.lines().any(|l| l == "PrivateTmp=no"), "a data dir under /tmp stays visible");
        let rollback = render_rollback(&l);
        assert!(rollback.lines().any(|l| l == "ConditionPathExists=/usr/local/bin/novacula-agent.prev"), "{rollback}");
        assert!(rollback.lines().any(|l| l == "ExecStart=/bin/mv -f \"/usr/local/bin/novacula-agent.prev\" \"/usr/local/bin/novacula-agent\""), "{rollback}");
    }

    #[test]
    fn layout_reads_back_from_the_unit() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout { unit_dir: dir.path().into(), ..layout() };
        std::fs::write(l.service_path(), render_service(&l, Path::new("/var/lib/novacula"))).unwrap();
        assert_eq!(Layout::installed(dir.path()).unwrap(), l);
        std::fs::write(l.service_path(), "[Service]\nExecStart=/bin/true\n").unwrap();
        assert!(Layout::installed(dir.path()).unwrap_err().to_string().contains("not written by `novacula-agent install`"));
    }

    #[test]
    fn config_merge_keeps_the_users_settings_and_checks_the_result() {
        let o = options(layout());
        let (fresh, cfg) = merge_config(None, &o).unwrap();
        assert_eq!((cfg.driver.as_str(), cfg.name.as_str(), cfg.api_key.as_deref()), ("systemd", "edge-1", Some("nvk_secret")));
        assert_eq!(cfg.data_dir, PathBuf::from("/var/lib/novacula"));
        assert!(fresh.contains("unit_dir = \"/etc/systemd/system\""), "{fresh}");

        let edited =
            format!("{}# my comment\nenable_demo_chain = true\napi_key_file = \"/etc/novacula/key\"\n", fresh.replace("/var/lib/novacula", "/srv/novacula"));
        let again = InstallOptions { name: "edge-2".into(), ..o.clone() };
        let (text, cfg) = merge_config(Some(&edited), &again).unwrap();
        assert!(cfg.enable_demo_chain && text.contains("# my comment"), "the user's settings stay: {text}");
        assert_eq!((cfg.name.as_str(), cfg.data_dir.as_path(), cfg.api_key_file.as_ref()), ("edge-2", Path::new("/srv/novacula"), None));

        let bad = InstallOptions { name: "Not A Label".into(), ..o.clone() };
        assert!(merge_config(None, &bad).unwrap_err().to_string().contains("lowercase DNS label"));
        let bad = InstallOptions { driver: Some("docker".into()), ..o.clone() };
        assert!(merge_config(None, &bad).unwrap_err().to_string().contains("driver"));
        assert!(merge_config(Some("this is = = not toml"), &o).unwrap_err().to_string().contains("not valid TOML"));
        assert!(check_path("data dir", Path::new("/srv/my data")).is_err());
        assert!(check_path("data dir", Path::new("relative")).is_err());
    }

    #[test]
    fn exits_are_recorded_in_the_data_dir_and_described_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let o = InstallOptions { data_dir: Some(dir.path().join("data")), ..options(layout()) };
        let config = dir.path().join("agent.toml");
        std::fs::write(&config, merge_config(None, &o).unwrap().0).unwrap();
        let env = |vars: &'static [(&'static str, &'static str)]| move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        let line = record_exit(&config, env(&[("EXIT_CODE", "killed"), ("EXIT_STATUS", "KILL"), ("SERVICE_RESULT", "oom-kill")])).unwrap();
        assert_eq!(line, "killed by SIGKILL (oom-kill)");
        assert_eq!(std::fs::read_to_string(last_exit_path(&dir.path().join("data"))).unwrap(), "killed by SIGKILL (oom-kill)\n");
        assert_eq!(record_exit(&config, env(&[("EXIT_CODE", "killed"), ("EXIT_STATUS", "KILL"), ("SERVICE_RESULT", "signal")])).unwrap(), "killed by SIGKILL");
        assert_eq!(record_exit(&config, env(&[("EXIT_CODE", "exited"), ("EXIT_STATUS", "0"), ("SERVICE_RESULT", "success")])).unwrap(), "exited with status 0");
        assert!(record_exit(&dir.path().join("missing.toml"), env(&[])).is_err(), "no config, nothing recorded");

        assert_eq!(describe_exit(1, 3), "exited with status 3");
        assert_eq!(describe_exit(2, 9), "killed by SIGKILL");
        assert_eq!(describe_exit(3, 11), "dumped core on SIGSEGV");
        let stopped = Status {
            load: "loaded".into(),
            active: "failed".into(),
            sub: "failed".into(),
            main_pid: 0,
            restarts: 2,
            last_exit: Some((1, 1)),
            result: "exit-code".into(),
            recorded_exit: Some("killed by SIGKILL".into()),
        };
        assert!(stopped.to_string().contains("last exit: exited with status 1"), "a stopped unit's own exit comes first: {stopped}");
        let running = Status { active: "active".into(), sub: "running".into(), main_pid: 7, last_exit: Some((0, 0)), ..stopped };
        assert!(running.to_string().contains("last exit: killed by SIGKILL\n"), "{running}");
    }
}
