//! The control plane under load: a child process of this binary (so its CPU
//! and memory are its own), one in this process (the CI test), or one
//! already running elsewhere.

use novacula_control_plane::clock::{Clock, SystemClock};
use novacula_control_plane::services::orgs;
use novacula_control_plane::{AppState, Config, Store};
use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The organization and owner the generator sets up and signs in as.
pub const ORG: &str = "load";
pub const OWNER: &str = "admin";

/// Where the generator sends its load, and what it can read of the server.
pub struct Target {
    pub url: String,
    pub user: String,
    pub password: String,
    /// The server's process, when it has one of its own here.
    pub pid: Option<u32>,
    /// Store commits and reads so far, when the server tells.
    pub store: Option<Arc<StoreCounts>>,
    /// What keeps the server alive; dropped last.
    _guard: Guard,
}

/// A server's store transactions so far.
#[derive(Default)]
pub struct StoreCounts {
    pub commits: AtomicU64,
    pub reads: AtomicU64,
}

impl StoreCounts {
    fn set(&self, commits: u64, reads: u64) {
        self.commits.store(commits, Ordering::Relaxed);
        self.reads.store(reads, Ordering::Relaxed);
    }
}

enum Guard {
    None,
    Child(std::process::Child),
    InProcess(Option<tokio::sync::oneshot::Sender<()>>, Option<std::thread::JoinHandle<()>>),
}

impl Drop for Guard {
    fn drop(&mut self) {
        match self {
            Guard::None => {}
            Guard::Child(c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            Guard::InProcess(stop, thread) => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("starting the control plane: {0}")]
    Start(String),
}

impl Target {
    /// A control plane someone else runs.
    pub fn external(url: &str, user: &str, password: &str) -> Target {
        Target { url: url.into(), user: user.into(), password: password.into(), pid: None, store: None, _guard: Guard::None }
    }

    /// This binary's `serve` in a child process, on `store_args` (`--db FILE`
    /// or `--database URL`), answering on a free local port.
    pub fn child(program: &std::path::Path, store_args: &[String]) -> Result<Target, ServerError> {
        let password = random_password();
        let mut child = std::process::Command::new(program)
            .arg("serve")
            .args(store_args)
            .env("NOVACULA_LOAD_PASSWORD", &password)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| ServerError::Start(format!("{}: {e}", program.display())))?;
        let stdout = child.stdout.take().ok_or_else(|| ServerError::Start("no stdout".into()))?;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(url) = l.strip_prefix("listening ") {
                        break url.to_string();
                    }
                }
                _ => {
                    let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                    return Err(ServerError::Start(format!("the server exited before listening ({status})")));
                }
            }
        };
        let counts = Arc::new(StoreCounts::default());
        let c = counts.clone();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                let mut n = l.strip_prefix("store ").into_iter().flat_map(|n| n.split(' ')).map(str::parse::<u64>);
                if let (Some(Ok(commits)), Some(Ok(reads))) = (n.next(), n.next()) {
                    c.set(commits, reads);
                }
            }
        });
        Ok(Target { url, user: OWNER.into(), password, pid: Some(child.id()), store: Some(counts), _guard: Guard::Child(child) })
    }

    /// A control plane on `store` in this process, on two worker threads of its own.
    pub fn in_process(store: Store) -> Result<Target, ServerError> {
        let password = random_password();
        orgs::create_org_with_owner(&store, &novacula_core::entropy::OsEntropy, SystemClock.now(), ORG, OWNER, &password)
            .map_err(|e| ServerError::Start(e.to_string()))?;
        let state = AppState::new(store, SystemClock, load_config());
        let counts = Arc::new(StoreCounts::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let c = counts.clone();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return drop(ready_tx.send(Err(e.to_string()))),
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await.and_then(|l| Ok((l.local_addr()?, l))) {
                    Ok((addr, l)) => {
                        let _ = ready_tx.send(Ok(format!("http://{addr}")));
                        l
                    }
                    Err(e) => return drop(ready_tx.send(Err(e.to_string()))),
                };
                let s = state.clone();
                let counter = tokio::spawn(async move {
                    loop {
                        c.set(s.store.commits(), s.store.reads());
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                });
                let _ = novacula_control_plane::serve(listener, state, async move { drop(stop_rx.await) }).await;
                counter.abort();
            });
        });
        let url = ready_rx.recv().map_err(|e| ServerError::Start(e.to_string()))?.map_err(ServerError::Start)?;
        Ok(Target { url, user: OWNER.into(), password, pid: None, store: Some(counts), _guard: Guard::InProcess(Some(stop_tx), Some(thread)) })
    }
}

/// The server's settings under load: connections for every executor's two.
pub fn load_config() -> Config {
    let mut config = Config::default();
    config.http.connections_max = 1_000_000;
    config
}

fn random_password() -> String {
    let mut b = [0u8; 16];
    novacula_core::entropy::Entropy::fill(&novacula_core::entropy::OsEntropy, &mut b);
    hex::encode(b)
}

/// Raise this process's open-file limit as far as it may go: every emulated
/// executor holds two connections (the server as many sockets).
pub fn raise_open_files() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let want = 1 << 20;
    // Root may raise the hard limit too; otherwise the soft one up to it.
    if setrlimit(Resource::Nofile, Rlimit { current: Some(want), maximum: Some(want) }).is_err() {
        let hard = getrlimit(Resource::Nofile).maximum;
        let _ = setrlimit(Resource::Nofile, Rlimit { current: hard, maximum: hard });
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// `serve`: what the child runs. Prints `listening URL`, then `store COMMITS READS` twice a second.
pub async fn serve_child(store: Store, password: &str) -> Result<(), ServerError> {
    raise_open_files();
    if !orgs::org_exists(&store, ORG).map_err(|e| ServerError::Start(e.to_string()))? {
        orgs::create_org_with_owner(&store, &novacula_core::entropy::OsEntropy, SystemClock.now(), ORG, OWNER, password)
            .map_err(|e| ServerError::Start(e.to_string()))?;
    }
    let state = AppState::new(store, SystemClock, load_config());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| ServerError::Start(e.to_string()))?;
    let addr = listener.local_addr().map_err(|e| ServerError::Start(e.to_string()))?;
    println!("listening http://{addr}");
    let s = state.clone();
    tokio::spawn(async move {
        loop {
            println!("store {} {}", s.store.commits(), s.store.reads());
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    });
    novacula_control_plane::serve(listener, state, async { drop(tokio::signal::ctrl_c().await) }).await.map_err(|e| ServerError::Start(e.to_string()))
}
