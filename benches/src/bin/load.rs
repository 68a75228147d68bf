//! `load`: emulated executors against a control plane, with figures.
//!
//! By default it starts the control plane itself (this binary's `serve`, in a
//! child process, on a fresh redb file) so the server's CPU and memory are
//! measured apart from the generator's.

use clap::{Parser, Subcommand};
use novacula_benches::load::{self, server, Options};
use novacula_control_plane::Store;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "load",
    about = "Emulate executors over real sockets with the real protocol (sync every 5 s, 5 s long-poll, report every 10 s) against a control plane, with users paging nodes and restarting them; print rates, latency p50/p99/max per call, errors, the server's CPU, memory and store commits/s, and whether the fleet converged.",
    after_help = "Example: cargo run --release -p novacula-benches --bin load -- --executors 10000 --nodes-per-executor 10 --duration 60s\nExits 1 when a call failed or the fleet did not converge.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    serve: Option<Serve>,
    #[arg(long, default_value_t = 1_000)]
    executors: usize,
    #[arg(long, default_value_t = 10)]
    nodes_per_executor: usize,
    /// The measured window (`60s`, `2m`), after the warm-up.
    #[arg(long, default_value = "60s", value_parser = duration)]
    duration: Duration,
    /// Steady load before measuring, so every executor has reported once.
    #[arg(long, default_value = "12s", value_parser = duration)]
    warmup: Duration,
    /// Node restarts a user sends per second during the window.
    #[arg(long, default_value_t = 5.0)]
    restarts_per_sec: f64,
    /// Users paging the node list and reading a node, each 10 times a second.
    #[arg(long, default_value_t = 2)]
    readers: usize,
    /// Reports repeat the same state (a head that never moves): nothing to write.
    #[arg(long)]
    static_reports: bool,
    /// Each executor sends syncs and reports over a connection of its own
    /// (two per executor) instead of a shared pool (as behind an L7 load balancer).
    #[arg(long)]
    own_connections: bool,
    /// After the window, send heartbeats as fast as the control plane answers
    /// them for this long (`10s`) over HTTP/1.1 (one in flight per
    /// connection), then as long over HTTP/2 (many per connection, as a load
    /// balancer multiplexes), and print each rate beside the disk's fdatasync rate.
    #[arg(long, value_parser = duration)]
    saturate: Option<Duration>,
    /// Run the control plane on a fresh database of a PostgreSQL server started in a temporary directory (commits flushed to disk, as redb's are).
    #[arg(long, conflicts_with_all = ["database", "url"])]
    postgres: bool,
    /// Run the control plane on this PostgreSQL database (it must be empty or Novacula's).
    #[arg(long, conflicts_with = "url")]
    database: Option<String>,
    /// Load a control plane already running here instead (sign in with --user and NOVACULA_PASSWORD).
    #[arg(long)]
    url: Option<String>,
    #[arg(long, default_value = server::OWNER, requires = "url")]
    user: String,
}

#[derive(Subcommand)]
enum Serve {
    /// The control plane for the generator (what the child process runs).
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        db: Option<std::path::PathBuf>,
        #[arg(long)]
        database: Option<String>,
    },
}

// As the `novacula` binary: its child is the control plane under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn duration(s: &str) -> Result<Duration, std::num::ParseIntError> {
    let (n, unit) = match s.strip_suffix('m') {
        Some(n) => (n, 60),
        None => (s.strip_suffix('s').unwrap_or(s), 1),
    };
    Ok(Duration::from_secs(n.parse::<u64>()? * unit))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .try_init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    if let Some(Serve::Serve { db, database }) = cli.serve {
        let store = match (db, database) {
            (_, Some(url)) => Store::open_postgres(&url),
            (Some(path), None) => Store::open(&path),
            (None, None) => return fail("serve needs --db FILE or --database URL"),
        };
        let password = std::env::var("NOVACULA_LOAD_PASSWORD").unwrap_or_default();
        return match store.map_err(|e| e.to_string()).map(|s| rt.block_on(server::serve_child(s, &password))) {
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err(e)) => fail(e),
            Err(e) => fail(e),
        };
    }
    let open_files = server::raise_open_files();
    let needed = (cli.executors as u64) * if cli.own_connections { 2 } else { 1 } + 1_000;
    if open_files < needed {
        eprintln!("warning: {open_files} open files allowed, about {needed} needed for {} executors", cli.executors);
    }
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let (target, store) = match (&cli.url, cli.postgres, &cli.database) {
        (Some(url), _, _) => (Ok(server::Target::external(url, &cli.user, &std::env::var("NOVACULA_PASSWORD").unwrap_or_default())), "external".to_string()),
        (None, true, _) => match novacula_control_plane::store::pg_server::fresh_durable_database() {
            Ok(url) => (server::Target::child(&exe, &["--database".into(), url]), "PostgreSQL (a server of its own)".into()),
            Err(e) => return fail(e),
        },
        (None, false, Some(url)) => (server::Target::child(&exe, &["--database".into(), url.clone()]), "PostgreSQL".into()),
        (None, false, None) => {
            let file = dir.path().join("load.redb");
            (server::Target::child(&exe, &["--db".into(), file.display().to_string()]), "redb (a file in a temporary directory)".into())
        }
    };
    let target = match target {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let options = Options {
        executors: cli.executors,
        nodes_per_executor: cli.nodes_per_executor,
        duration: cli.duration,
        warmup: cli.warmup,
        restarts_per_sec: cli.restarts_per_sec,
        readers: cli.readers,
        static_reports: cli.static_reports,
        own_connections: cli.own_connections,
        saturate: cli.saturate,
        ..Options::default()
    };
    eprintln!("control plane at {} on {store}; setting up {} executors x {} nodes", target.url, cli.executors, cli.nodes_per_executor);
    match rt.block_on(load::run(&target, options)) {
        Ok(outcome) => {
            println!("store: {store}\n{outcome}");
            if outcome.errors() == 0 && outcome.not_converged.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => fail(e),
    }
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}
