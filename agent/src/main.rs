//! `novacula-agent`: the bare-metal executor.

use clap::{Parser, Subcommand};
use novacula_agent::artifacts::Artifacts;
use novacula_agent::backend::Processes;
use novacula_agent::config::AgentConfig;
use novacula_agent::driver::{LocalDriver, ProcessDriver};
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
    /// Connect to the control plane and converge this host to its specs.
    Run {
        /// TOML config: control_plane_url, api_key or api_key_file, name, data_dir, channel,
        /// driver (local|systemd), unit_dir, run_as, [[artifacts]] (pinned client downloads),
        /// [[sidecars]] (the only programs a spec may run as sidecars), enable_demo_chain.
        #[arg(long, short, env = "NOVACULA_AGENT_CONFIG", default_value = "/etc/novacula/agent.toml")]
        config: PathBuf,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let Command::Run { config } = Cli::parse().command;
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(path: PathBuf) -> Result<(), Failure> {
    let cfg = AgentConfig::load(&path)?;
    if cfg.driver == "systemd" {
        let mut driver = SystemdDriver::system(cfg.data_dir.clone(), cfg.unit_dir.clone()).await.map_err(|e| e.to_string())?;
        if let Some(user) = &cfg.run_as {
            driver = driver.run_as(Account::lookup(user)?);
        }
        return run_with(cfg, driver).await;
    }
    let driver = LocalDriver::new(&cfg.data_dir).map_err(|e| format!("data_dir {}: {e}", cfg.data_dir.display()))?;
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
        Processes::new(driver, cfg.adapters()).with_sidecar_programs(cfg.sidecars.clone()).with_artifacts(artifacts),
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
