//! `novacula`: the control plane server, the demo (control plane plus a local
//! agent), and the client commands for the control plane's API.

use clap::{Parser, Subcommand};
use novacula_control_plane::clock::{Clock, SystemClock};
use novacula_control_plane::services::orgs;
use novacula_control_plane::{tls, AppState, Config, Store};

mod commands;
mod demo;

use commands as cli;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A command's failure, printed to the user as it reads.
type Failure = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
#[command(
    name = "novacula",
    version,
    about = "Novacula: run blockchain nodes on your own infrastructure from one control plane.",
    after_help = "Start with `novacula demo` (control plane and a local agent), or `novacula serve`; then `novacula login` and e.g. `novacula nodes list`. The web console is at the server's root URL."
)]
struct Cli {
    #[command(flatten)]
    global: cli::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane HTTP API on a local redb file (or on PostgreSQL with --database).
    Serve(Box<ServeArgs>),
    /// Run the control plane on a local redb file plus a local agent that runs a
    /// harmless stand-in node, to see a node go provisioning -> running.
    Demo(DemoArgs),
    #[command(flatten)]
    Client(cli::ClientCommand),
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Directory for the database, the agent's data and the demo API key.
    #[arg(long, default_value = "demo-data")]
    dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Database file; created on first start.
    #[arg(long, env = "NOVACULA_DB", default_value = "novacula.redb")]
    db: PathBuf,
    /// Keep the records in PostgreSQL instead of the redb file, e.g.
    /// postgres://novacula:PASSWORD@db.internal:5432/novacula (its tables are
    /// created at first start). Add ?sslmode=require for TLS (the server's
    /// certificate and name always verified, against the system's roots and
    /// &sslrootcert=/path/ca.pem); without sslmode, plain TCP.
    #[arg(long, env = "NOVACULA_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "NOVACULA_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Organization created on first start when none exists.
    #[arg(long, env = "NOVACULA_BOOTSTRAP_ORG", default_value = "default")]
    bootstrap_org: String,
    /// Owner created with that organization.
    #[arg(long, env = "NOVACULA_BOOTSTRAP_OWNER", default_value = "admin")]
    bootstrap_owner: String,
    /// Owner's password; a random one is generated and printed once when unset.
    #[arg(long, env = "NOVACULA_BOOTSTRAP_PASSWORD", hide_env_values = true)]
    bootstrap_password: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key); without it, plain HTTP.
    #[arg(long, env = "NOVACULA_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "NOVACULA_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Events older than this many days are removed (per organization).
    #[arg(long, env = "NOVACULA_EVENT_RETENTION_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..=36500))]
    event_retention_days: u64,
    /// At most this many events are kept per organization; the oldest go first.
    #[arg(long, env = "NOVACULA_EVENT_RETENTION_COUNT", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(100..))]
    event_retention_count: u64,
    /// Audit entries (who changed what) older than this many days are removed.
    #[arg(long, env = "NOVACULA_AUDIT_RETENTION_DAYS", default_value_t = 365, value_parser = clap::value_parser!(u64).range(1..=36500))]
    audit_retention_days: u64,
    /// Send invitations by mail through this SMTP server: smtp://host:25 (plain,
    /// a local relay), smtp://user:pass@host:587?tls=required (STARTTLS) or
    /// smtps://host:465. Without it, invitation links are only shown.
    #[arg(long, env = "NOVACULA_SMTP_URL", hide_env_values = true, requires = "public_url")]
    smtp_url: Option<String>,
    /// The sender of those mails.
    #[arg(long, env = "NOVACULA_MAIL_FROM", default_value = "Novacula <novacula@localhost>")]
    mail_from: String,
    /// The console's address as people reach it, for links in mail, e.g. https://novacula.example.com.
    #[arg(long, env = "NOVACULA_PUBLIC_URL")]
    public_url: Option<String>,
    /// Let anyone create an account with an organization of their own
    /// (POST /api/v1/signup, the console's "Create an account"); off by default.
    #[arg(long, env = "NOVACULA_ALLOW_SIGNUP")]
    allow_signup: bool,
    /// A platform administrator (repeat, or comma-separate in the variable):
    /// sees every organization, can deactivate one, publishes executor
    /// releases and can act as a user for support (`novacula platform`).
    /// Only this flag makes one, of an account that exists (the bootstrap
    /// owner, e.g.); none without it.
    #[arg(long = "platform-admin", env = "NOVACULA_PLATFORM_ADMINS", value_delimiter = ',')]
    platform_admins: Vec<String>,
    /// Let POST /graphql answer introspection queries (schema discovery for
    /// GraphQL tools); off by default.
    #[arg(long, env = "NOVACULA_GRAPHQL_INTROSPECTION")]
    graphql_introspection: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464),
    /// apart from the API; off when unset.
    #[arg(long, env = "NOVACULA_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Open connections at most; more wait until one closes (each executor holds one).
    #[arg(long, env = "NOVACULA_MAX_CONNECTIONS", default_value_t = 16_384, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: u64,
}

pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tower_http=warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

// A server allocates per request (JSON, records); glibc's malloc cost a third
// of the control plane's CPU under load (the `load` benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Serve(a) => serve(*a).await,
        Command::Demo(a) => demo::run(a.dir, a.listen).await,
        Command::Client(c) => cli::run(cli.global, c).await,
    };
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(a: ServeArgs) -> Result<(), Failure> {
    let (store, where_) = match &a.database {
        Some(url) => {
            // The URL may hold a password: only hosts and database are shown.
            let shown = Store::describe_postgres(url);
            (Store::open_postgres(url).map_err(|e| format!("cannot open database {shown}: {e}"))?, shown)
        }
        None => (Store::open(&a.db).map_err(|e| format!("cannot open database {}: {e}", a.db.display()))?, a.db.display().to_string()),
    };
    let mut config = Config {
        event_retention: novacula_control_plane::services::events::Retention {
            max_age: std::time::Duration::from_secs(a.event_retention_days * 24 * 3600),
            max_count: a.event_retention_count,
        },
        audit_retention: std::time::Duration::from_secs(a.audit_retention_days * 24 * 3600),
        allow_signup: a.allow_signup,
        graphql_introspection: a.graphql_introspection,
        platform_admins: a.platform_admins.iter().cloned().collect(),
        mail: a.smtp_url.map(|smtp_url| novacula_control_plane::mail::MailConfig {
            smtp_url,
            from: a.mail_from.clone(),
            public_url: a.public_url.clone().unwrap_or_default(),
        }),
        ..Config::default()
    };
    if let Some(m) = &config.mail {
        novacula_control_plane::mail::Mailer::new(m).map_err(|e| e.to_string())?;
    }
    config.http.connections_max = a.max_connections as usize;
    let state = AppState::new(store, SystemClock, config);
    if !orgs::org_exists(&state.store, &a.bootstrap_org)? {
        let generated = a.bootstrap_password.is_none();
        let password = a.bootstrap_password.unwrap_or_else(|| state.random_hex(12));
        orgs::create_org_with_owner(&state.store, state.entropy.as_ref(), SystemClock.now(), &a.bootstrap_org, &a.bootstrap_owner, &password)?;
        if generated {
            eprintln!(
                "created organization {:?} with owner {:?}, password: {password}\n(shown once; set NOVACULA_BOOTSTRAP_PASSWORD to choose it)",
                a.bootstrap_org, a.bootstrap_owner
            );
        }
    }
    // A platform administrator is an account that exists: a name nobody has
    // yet could be claimed by whoever signs up or is invited with it first.
    novacula_control_plane::services::platform::check_admins(&state)?;
    // Read the certificate before binding, so a bad one fails at once.
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(a.listen).await.map_err(|e| format!("cannot listen on {}: {e}", a.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(url = %format!("{scheme}://{}", a.listen), db = %where_, "control plane listening");
    // Metrics on a listener of their own: Prometheus scrapes it on a private
    // address, and the API's port exposes no fleet counts to the internet.
    if let Some(addr) = a.metrics_listen {
        let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr} for metrics: {e}"))?;
        tracing::info!(url = %format!("http://{addr}/metrics"), "metrics listening");
        tokio::spawn(novacula_control_plane::metrics::serve(l, state.clone()));
    }
    let res = match tls {
        Some(config) => novacula_control_plane::serve(tls::TlsListener::new(listener, config).map_err(|e| e.to_string())?, state, shutdown_signal()).await,
        None => novacula_control_plane::serve(listener, state, shutdown_signal()).await,
    };
    Ok(res?)
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}
