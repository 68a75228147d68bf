//! `novacula-operator`: the Kubernetes executor.

use clap::{Parser, Subcommand};
use kube::{Api, Client};
use novacula_client::HttpApi;
use novacula_core::wire::UpgradeSpec;
use novacula_core::{Channel, ExecutorKind};
use novacula_executor::adapter::{Adapters, Ethereum};
use novacula_executor::loops::{Executor, Identity, Intervals};
use novacula_operator::crd::{crd_yaml, BlockchainNode};
use novacula_operator::nodes::{KubeNodes, StorageClasses};
use novacula_operator::render::{AntiAffinity, NodePods};
use novacula_operator::upgrade::{Outcome, SelfDeployment};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

/// A command's failure, printed to the user as it reads.
type Failure = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
#[command(
    name = "novacula-operator",
    version,
    about = "Novacula operator: runs the blockchain nodes a Novacula control plane assigns to this Kubernetes namespace, as BlockchainNode resources (validatoros.com/v1alpha1). It only opens outbound connections."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the BlockchainNode CustomResourceDefinition as YAML (the Helm chart ships this output).
    Crd,
    /// Run the executor loops and the controller. Configured by environment, as the Helm chart sets it.
    Run(Box<RunArgs>),
}

#[derive(clap::Args)]
struct RunArgs {
    /// This executor's name in its organization.
    #[arg(long, env = "NOVACULA_OPERATOR_NAME")]
    name: String,
    /// Control-plane base URL, e.g. https://novacula.example.com or http://novacula:8080;
    /// several replicas' URLs separated by commas, tried in turn when one cannot be reached.
    #[arg(long, env = "NOVACULA_CONTROL_PLANE_URL")]
    control_plane_url: String,
    /// PEM certificates to trust for an https:// control plane, beside the system's roots.
    #[arg(long, env = "NOVACULA_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// The organization API key; prefer --api-key-file (the chart mounts it from a Secret).
    #[arg(long, env = "NOVACULA_API_KEY", hide_env_values = true, required_unless_present = "api_key_file")]
    api_key: Option<String>,
    /// A file holding the API key (the chart mounts the Secret's key here).
    #[arg(long, env = "NOVACULA_API_KEY_FILE", conflicts_with = "api_key")]
    api_key_file: Option<PathBuf>,
    /// Where to answer Kubernetes' probes: GET /healthz and /readyz answer 200
    /// once the operator has started its loops (the chart's readiness probe,
    /// which a self-upgrade's rollout waits on).
    #[arg(long, env = "NOVACULA_HEALTH_ADDR", default_value = "0.0.0.0:8081")]
    health_addr: std::net::SocketAddr,
    /// Release channel for self-upgrades: stable, beta or dev.
    #[arg(long, env = "NOVACULA_CHANNEL", default_value = "stable")]
    channel: String,
    /// Namespace of the BlockchainNode resources and their objects (default: the pod's).
    #[arg(long, env = "POD_NAMESPACE")]
    namespace: Option<String>,
    /// The operator's own Deployment, patched by self-upgrades; none disables them.
    #[arg(long, env = "NOVACULA_OPERATOR_DEPLOYMENT")]
    deployment: Option<String>,
    /// The operator's container in that Deployment.
    #[arg(long, env = "NOVACULA_OPERATOR_CONTAINER", default_value = "operator")]
    container: String,
    /// Images node specs may use for sidecars or client images, comma-separated;
    /// an entry ending in '/' or ':' allows every image it prefixes. Empty: none.
    #[arg(long, env = "NOVACULA_ALLOWED_IMAGES", value_delimiter = ',', default_value = "")]
    allowed_images: Vec<String>,
    /// Checkpoint-sync URLs for Ethereum consensus clients instead of the
    /// public defaults, comma-separated NETWORK=URL pairs (e.g.
    /// `mainnet=https://beacon.internal`); a spec can still set its own.
    #[arg(long, env = "NOVACULA_CHECKPOINT_SYNC_URLS", value_delimiter = ',', default_value = "")]
    checkpoint_sync_urls: Vec<String>,
    /// Give every node a PodDisruptionBudget (minAvailable 1): a node drain
    /// waits until someone moves or stops the node instead of evicting it.
    #[arg(long, env = "NOVACULA_POD_DISRUPTION_BUDGET", default_value_t = false, action = clap::ArgAction::Set)]
    pod_disruption_budget: bool,
    /// Keep pods of nodes of one chain and network on different hosts:
    /// none, preferred (when the scheduler can) or required.
    #[arg(long, env = "NOVACULA_ANTI_AFFINITY", value_enum, default_value = "none")]
    anti_affinity: AntiAffinity,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let result = match Cli::parse().command {
        Command::Crd => {
            print!("{}", crd_yaml());
            Ok(())
        }
        Command::Run(args) => run(*args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs) -> Result<(), Failure> {
    let channel: Channel = args.channel.parse()?;
    let client = Client::try_default().await.map_err(|e| format!("kubernetes client: {e}"))?;
    let namespace = args.namespace.clone().unwrap_or_else(|| client.default_namespace().to_string());
    match novacula_operator::crd::install(client.clone()).await {
        Ok(true) => tracing::info!("applied the BlockchainNode CRD"),
        Ok(false) => tracing::info!("not allowed to apply the BlockchainNode CRD; using the one installed"),
        Err(e) => tracing::warn!(error = %e, "could not apply the BlockchainNode CRD; using the one installed"),
    }
    let key = match (&args.api_key, &args.api_key_file) {
        (Some(k), _) => k.trim().to_string(),
        (None, Some(f)) => std::fs::read_to_string(f).map_err(|e| format!("cannot read the API key file {}: {e}", f.display()))?.trim().to_string(),
        (None, None) => return Err("set --api-key-file (or --api-key)".into()),
    };
    let api = HttpApi::with_ca(&args.control_plane_url, Some(key), args.ca_file.as_deref()).map_err(|e| e.to_string())?;
    let id = Identity { name: args.name.clone(), kind: ExecutorKind::Operator, version: env!("CARGO_PKG_VERSION").into(), channel };
    tracing::info!(name = %args.name, url = %args.control_plane_url, namespace = %namespace, "operator starting");
    let allowed_images: Vec<String> = args.allowed_images.iter().map(|i| i.trim().to_string()).filter(|i| !i.is_empty()).collect();
    let checkpoints = Ethereum::parse_checkpoint_pairs(&args.checkpoint_sync_urls)?;
    let ethereum = Ethereum::default().with_checkpoint_urls(checkpoints.iter().map(|(n, u)| (n.as_str(), u.as_str())))?;
    let adapters = || Adapters::standard().with_ethereum(ethereum.clone());
    let classes = StorageClasses::default();
    classes.refresh(&client).await;
    let nodes = KubeNodes::new(Api::<BlockchainNode>::namespaced(client.clone(), &namespace), adapters())
        .with_allowed_images(allowed_images)
        .with_storage_classes(classes.clone())
        .with_pod_logs(Api::namespaced(client.clone(), &namespace));
    let exec = Executor::new(id, api, nodes, Intervals::default());
    let (upgrades, metrics) = (exec.upgrades(), exec.metrics());
    let own = args.deployment.clone().map(|name| SelfDeployment {
        deployments: Api::namespaced(client.clone(), &namespace),
        pods: Api::namespaced(client.clone(), &namespace),
        name,
        container: args.container.clone(),
    });
    let pods = NodePods { disruption_budget: args.pod_disruption_budget, anti_affinity: args.anti_affinity };
    let follow_classes = classes.follow(client.clone());
    let controller = novacula_operator::controller::run(client, &namespace, adapters(), pods);
    let health = tokio::net::TcpListener::bind(args.health_addr).await.map_err(|e| format!("health endpoint {}: {e}", args.health_addr))?;
    tracing::info!(addr = %args.health_addr, "answering probes");
    exec.run(async move {
        tokio::select! {
            _ = controller => tracing::info!("controller stopped"),
            _ = self_upgrade(upgrades, own) => {}
            _ = follow_classes => {}
            r = novacula_operator::health::serve(health, metrics) => tracing::error!(error = ?r.err(), "health endpoint stopped"),
        }
    })
    .await;
    Ok(())
}

/// Follow the control plane's upgrade spec. A failed image is not retried until the spec names another.
async fn self_upgrade(mut rx: watch::Receiver<Option<UpgradeSpec>>, own: Option<SelfDeployment>) {
    let Some(own) = own else { return std::future::pending().await };
    let mut failed = HashSet::new();
    loop {
        let spec = rx.borrow_and_update().clone();
        if let Some(spec) = spec.filter(|s| !novacula_core::version::same_release(&s.version, env!("CARGO_PKG_VERSION")) && !failed.contains(&s.artifact)) {
            match own.upgrade(&spec.artifact, Duration::from_secs(5), Duration::from_secs(600)).await {
                Ok(Outcome::RolledBack { reason }) => {
                    tracing::error!(image = %spec.artifact, reason = %reason, "upgrade rolled back");
                    failed.insert(spec.artifact);
                }
                Ok(outcome) => tracing::info!(?outcome, "upgrade finished"),
                Err(e @ novacula_operator::upgrade::Error::Refused { .. }) => {
                    tracing::error!(error = %e, "upgrade refused");
                    failed.insert(spec.artifact);
                }
                Err(e) => tracing::warn!(error = %e, "upgrade attempt failed; will retry"),
            }
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}
