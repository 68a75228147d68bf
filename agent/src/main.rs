//! `novacula-agent`: the bare-metal executor.

use clap::{Parser, Subcommand};
use novacula_agent::artifacts::Artifacts;
use novacula_agent::backend::Processes;
use novacula_agent::config::AgentConfig;
use novacula_agent::driver::{LocalDriver, ProcessDriver};
use novacula_agent::service;
use novacula_agent::systemd::{Account, SystemdDriver};
use novacula_agent::upgrade::{self, Restart, UpgradePolicy};
use novacula_client::HttpApi;
use novacula_core::ExecutorKind;
use novacula_executor::loops::{Executor, Identity, Intervals};
use std::path::PathBuf;

/// A command's failure, printed to the user as it reads.
type Failure = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
#[command(
    name = "novacula-agent",
    version,
    about = "Novacula agent: runs the blockchain nodes a Novacula control plane assigns to this host. It only opens outbound connections."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect to the control plane and converge this host to its specs (what the service runs).
    Run {
        /// TOML config: control_plane_url, api_key or api_key_file, name, data_dir, channel,
        /// driver (local|systemd), unit_dir, run_as, [[artifacts]] (pinned client downloads),
        /// [[sidecars]] (the only programs a spec may run as sidecars), enable_demo_chain.
        #[arg(long, short, env = "NOVACULA_AGENT_CONFIG", default_value = service::DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Install this binary as the systemd service novacula-agent.service (as root), enable and start it.
    ///
    /// Copies this binary to --binary, writes --config (0600; it holds the API key, read from
    /// --api-key-file so it never shows on a command line), the hardened service unit and
    /// novacula-agent-rollback.service (puts the previous binary back after a failed
    /// self-upgrade). Running it again updates the given settings, keeps the others, and
    /// restarts the service. Logs: journalctl -u novacula-agent.
    Install {
        /// The control plane's URL, e.g. https://novacula.example.com (replicas: comma-separated).
        #[arg(long)]
        control_plane: String,
        /// A file holding the executor's API key (from the console's "Connect new executor").
        #[arg(long)]
        api_key_file: PathBuf,
        /// This executor's name in its organization (a lowercase DNS label).
        #[arg(long)]
        name: String,
        /// How nodes run: systemd (units over D-Bus; the default) or local (child processes).
        #[arg(long, value_parser = ["systemd", "local"])]
        driver: Option<String>,
        /// Where nodes keep their data (default /var/lib/novacula).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Release channel for upgrades: stable, beta or dev.
        #[arg(long, value_parser = ["stable", "beta", "dev"])]
        channel: Option<String>,
        #[arg(long, default_value = service::DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long, default_value = service::DEFAULT_BINARY)]
        binary: PathBuf,
        /// Where the service's and the nodes' unit files go.
        #[arg(long, default_value = service::DEFAULT_UNIT_DIR)]
        unit_dir: PathBuf,
        /// Write and enable everything, but do not start the service now.
        #[arg(long)]
        no_start: bool,
    },
    /// Stop and remove the service, the node units it made, its binary and its config.
    ///
    /// The nodes' data (data_dir) stays unless --purge is given.
    Uninstall {
        /// Also delete data_dir: every node's chain data and the downloaded clients.
        #[arg(long)]
        purge: bool,
        #[arg(long, default_value = service::DEFAULT_UNIT_DIR)]
        unit_dir: PathBuf,
    },
    /// Start the installed service.
    Start,
    /// Stop the installed service (its nodes' units keep running).
    Stop,
    /// Restart the installed service.
    Restart,
    /// The service's state, main PID, restarts and last exit (exit code 3 when it is
    /// not running, 4 when it is not installed).
    Status {
        #[arg(long, default_value = service::DEFAULT_UNIT_DIR)]
        unit_dir: PathBuf,
    },
    /// Run by the service's ExecStopPost=: keeps how the agent last exited for `status`.
    #[command(hide = true)]
    RecordExit {
        #[arg(long, default_value = service::DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Upgrade the installed agent to the binary FILE by hand, with the self-upgrade's rollback:
    /// the new binary must heartbeat within 2 minutes or the previous one is put back.
    Upgrade {
        /// The new novacula-agent binary.
        file: PathBuf,
        #[arg(long, default_value = service::DEFAULT_UNIT_DIR)]
        unit_dir: PathBuf,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    match command(Cli::parse().command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn command(c: Command) -> Result<std::process::ExitCode, Failure> {
    use std::process::ExitCode;
    match c {
        Command::Run { config } => run(config).await?,
        Command::Install { control_plane, api_key_file, name, driver, data_dir, channel, config, binary, unit_dir, no_start } => {
            let key = std::fs::read_to_string(&api_key_file).map_err(|e| format!("cannot read {}: {e}", api_key_file.display()))?;
            let api_key = key.trim().to_string();
            if api_key.is_empty() || api_key.contains(char::is_whitespace) {
                return Err(format!("{} must hold one API key", api_key_file.display()).into());
            }
            let layout = service::Layout { binary, config, unit_dir };
            let opts = service::InstallOptions { control_plane, api_key, name, driver, data_dir, channel, layout, start: !no_start };
            service::install(&opts).await?;
            println!("installed {}; it runs {}", service::SERVICE, opts.layout.binary.display());
            if !no_start {
                println!("started; check it with `novacula-agent status`, logs with `journalctl -u novacula-agent`");
            }
        }
        Command::Uninstall { purge, unit_dir } => {
            let removed = service::uninstall(&unit_dir, purge).await?;
            for unit in &removed.node_units {
                println!("removed node unit {unit}");
            }
            match removed.kept_data_dir {
                Some(d) => println!("uninstalled; kept {} (nodes' data): `novacula-agent uninstall --purge` removes it", d.display()),
                None => println!("uninstalled"),
            }
        }
        Command::Start => print!("{}", service::control(service::Action::Start).await?),
        Command::Stop => print!("{}", service::control(service::Action::Stop).await?),
        Command::Restart => print!("{}", service::control(service::Action::Restart).await?),
        Command::RecordExit { config } => {
            let line = service::record_exit(&config, |k| std::env::var(k).ok())?;
            tracing::info!(exit = %line, "novacula-agent exited");
        }
        Command::Status { unit_dir } => {
            let s = service::status(&unit_dir).await?;
            print!("{s}");
            if !s.running() {
                return Ok(ExitCode::from(if s.installed() { 3 } else { 4 }));
            }
        }
        Command::Upgrade { file, unit_dir } => {
            let version = service::upgrade(&unit_dir, &file).await?;
            println!("upgraded to {version}; it is rolled back unless it heartbeats within {} s", upgrade::PROBATION.as_secs());
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run(path: PathBuf) -> Result<(), Failure> {
    let cfg = AgentConfig::load(&path)?;
    if cfg.driver == "systemd" {
        let mut driver = SystemdDriver::system(cfg.data_dir.clone(), cfg.unit_dir.clone()).await.map_err(|e| e.to_string())?.with_ca_file(cfg.ca_file.clone());
        if let Some(user) = &cfg.run_as {
            driver = driver.run_as(Account::lookup(user)?);
        }
        return run_with(cfg, driver).await;
    }
    let driver = LocalDriver::new(&cfg.data_dir).map_err(|e| format!("data_dir {}: {e}", cfg.data_dir.display()))?.with_ca_file(cfg.ca_file.clone());
    run_with(cfg, driver).await
}

async fn run_with<D: ProcessDriver>(cfg: AgentConfig, driver: D) -> Result<(), Failure> {
    let api = HttpApi::with_ca(&cfg.control_plane_url, Some(cfg.api_key()?), cfg.ca_file.as_deref()).map_err(|e| e.to_string())?;
    let id = Identity { name: cfg.name.clone(), kind: ExecutorKind::Agent, version: env!("CARGO_PKG_VERSION").into(), channel: cfg.channel };
    tracing::info!(name = %cfg.name, url = %cfg.control_plane_url, data_dir = %cfg.data_dir.display(), driver = %cfg.driver, "agent starting");
    let artifacts = Artifacts::new(cfg.artifacts.clone(), cfg.ca_file.clone())?;
    let exec = Executor::new(
        id,
        api,
        Processes::new(driver, cfg.adapters()).with_sidecar_programs(cfg.sidecars.clone()).with_artifacts(artifacts).with_secrets_dir(cfg.secrets_dir.clone()),
        Intervals::default(),
    );
    if let Some(addr) = cfg.metrics_listen {
        let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("metrics_listen {addr}: {e}"))?;
        tracing::info!(url = %format!("http://{addr}/metrics"), "metrics listening");
        tokio::spawn(novacula_executor::metrics::serve(l, exec.metrics()));
    }
    let (upgrades, syncs) = (exec.upgrades(), exec.syncs());
    let policy = cfg.upgrade_policy();
    exec.run(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = self_upgrade(upgrades, syncs, policy) => {}
        }
    })
    .await;
    Ok(())
}

/// Confirm (or roll back) an upgrade that just restarted us, then wait for
/// the next one to land; either way, restart into the binary now in place.
async fn self_upgrade(
    mut upgrades: tokio::sync::watch::Receiver<Option<novacula_core::wire::UpgradeSpec>>,
    syncs: tokio::sync::watch::Receiver<u64>,
    policy: UpgradePolicy,
) {
    let Ok(current) = std::env::current_exe() else { return std::future::pending().await };
    match upgrade::process_life(&mut upgrades, syncs, &current, &policy, env!("CARGO_PKG_VERSION")).await {
        Restart::RolledBack => tracing::warn!("restarting into the previous binary"),
        Restart::Upgraded(spec) => tracing::info!(version = %spec.version, "restarting into the new binary"),
    }
    restart_into(&current);
}

fn restart_into(binary: &std::path::Path) {
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(binary).args(std::env::args_os().skip(1)).exec();
    tracing::error!(error = %err, "re-exec failed; exiting for the supervisor to restart us");
}
