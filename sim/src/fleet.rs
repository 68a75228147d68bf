//! A fleet scenario: one control plane, N fake executors with M nodes each.

use crate::{api, serve, SimClock, SimConnector, EPOCH};
use novacula_agent::backend::Processes;
use novacula_client::HttpApi;
use novacula_control_plane::services::{keys, orgs};
use novacula_control_plane::{AppState, Config, Store};
use novacula_core::entropy::Seeded;
use novacula_core::lifecycle::LifecycleAction;
use novacula_core::wire::NodeView;
use novacula_core::{Channel, ExecutorKind, NodePhase, NodeSpec, Revision};
use novacula_executor::adapter::Adapters;
use novacula_executor::loops::{Executor, Identity, Intervals, Jitter};
use novacula_fakes::FakeDriver;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const PASSWORD: &str = "simulation-password";

pub struct Fleet {
    pub executors: usize,
    pub nodes_per_executor: usize,
    pub seed: u64,
    pub drivers: Vec<FakeDriver>,
    /// Executor kind per host: agent-like or operator-like (both drive a `FakeDriver`).
    pub kinds: Vec<ExecutorKind>,
    /// Executor binary version per host, read at each (re)start of the host.
    pub versions: Arc<Mutex<Vec<String>>>,
    /// Control-plane config, read at each (re)start of the control plane.
    pub config: Arc<Mutex<Config>>,
    /// Store the control plane on this redb file (re-opened on restart) instead of memory.
    pub db: Option<PathBuf>,
    /// Per-host agent binaries (`<dir>/exec-<i>`) that self-upgrade swaps; none: upgrades ignored.
    pub bin_dir: Option<PathBuf>,
    /// The hosts' release directory: self-upgrades install only files from here.
    pub release_dir: Option<PathBuf>,
    /// Executors sharing one simulated machine (one IP). turmoil links every pair
    /// of hosts and scans them all each step, so 1,000 hosts is too slow; 1,000
    /// executors on 50 hosts is not.
    pub executors_per_host: usize,
    /// Simulated time per turmoil step. Every host is polled each step, so large fleets
    /// use a coarser step; 10 ms is far below every protocol interval (1 s and up).
    pub tick: Duration,
    /// One API key per executor, bound to it (as a real fleet's keys are).
    keys: Vec<String>,
    /// The control plane's state, for checks from outside the simulation (in-memory fleets).
    pub state: Option<std::sync::Arc<AppState>>,
    /// The control plane's clock (its skew can be stepped).
    pub clock: SimClock,
    /// A slow disk under the control plane: each write request waits this many ms.
    pub write_delay: crate::WriteDelay,
}

impl Fleet {
    pub fn new(executors: usize, nodes_per_executor: usize, seed: u64) -> Fleet {
        Fleet {
            executors,
            nodes_per_executor,
            seed,
            drivers: (0..executors).map(|_| FakeDriver::new()).collect(),
            kinds: vec![ExecutorKind::Agent; executors],
            versions: Arc::new(Mutex::new(vec!["1.0.0".into(); executors])),
            // Store work on the simulation's one thread: deterministic.
            config: Arc::new(Mutex::new(Config { store_threads: false, ..Config::default() })),
            db: None,
            bin_dir: None,
            release_dir: None,
            executors_per_host: 1,
            tick: Duration::from_millis(10),
            keys: Vec::new(),
            state: None,
            clock: SimClock::default(),
            write_delay: Default::default(),
        }
    }

    pub fn executor_name(i: usize) -> String {
        format!("exec-{i}")
    }

    pub fn node_name(i: usize, j: usize) -> String {
        format!("n-{i}-{j}")
    }

    /// Build the simulation with the control plane and every executor host.
    pub fn build(&mut self) -> turmoil::Sim<'static> {
        let mut sim = turmoil::Builder::new()
            .rng_seed(self.seed)
            .simulation_duration(Duration::from_secs(3600))
            .tick_duration(self.tick)
            // Every executor keeps pooled connections open to the one control plane.
            .tcp_capacity(1 << 16)
            .build();
        let executors = self.executors;
        // Every id and secret comes from the seed; each start of the control
        // plane draws from its own stream (a restart must not repeat tokens).
        let seed = self.seed;
        let starts = Arc::new(AtomicU64::new(0));
        let entropy = move || Seeded::new(seed ^ 0x00e7_7a0b ^ starts.fetch_add(1, Ordering::SeqCst).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let seed_store = |store: &Store| {
            let e = Seeded::new(seed ^ 0x5eed_0001);
            orgs::create_org_with_owner(store, &e, EPOCH, "sim", "admin", PASSWORD).expect("org");
            (0..executors)
                .map(|i| keys::issue(store, &e, "sim", "fleet".into(), Some(Self::executor_name(i)), "admin", EPOCH).expect("key").0)
                .collect::<Vec<String>>()
        };
        let config = self.config.clone();
        match self.db.clone() {
            None => {
                let store = Store::in_memory().expect("in-memory store");
                self.keys = seed_store(&store);
                let state = AppState::with_entropy(store, self.clock.clone(), entropy(), config.lock().expect("config").clone());
                self.state = Some(state.clone());
                let delay = self.write_delay.clone();
                sim.host(crate::CP_HOST, move || serve(state.clone(), delay.clone()));
            }
            Some(path) => {
                self.keys = seed_store(&Store::open(&path).expect("redb file"));
                let (clock, delay) = (self.clock.clone(), self.write_delay.clone());
                sim.host(crate::CP_HOST, move || {
                    let (path, config, entropy) = (path.clone(), config.lock().expect("config").clone(), entropy());
                    let (clock, delay) = (clock.clone(), delay.clone());
                    async move {
                        let store = Store::open(&path).map_err(|e| e.to_string())?;
                        serve(AppState::with_entropy(store, clock, entropy, config), delay).await
                    }
                });
            }
        }
        let per_host = self.executors_per_host.max(1);
        for first in (0..self.executors).step_by(per_host) {
            let members: Vec<usize> = (first..self.executors.min(first + per_host)).collect();
            let ctx = ExecutorCtx {
                drivers: members.iter().map(|&i| self.drivers[i].clone()).collect(),
                kinds: members.iter().map(|&i| self.kinds[i]).collect(),
                bins: members.iter().map(|&i| self.bin_dir.as_ref().map(|d| d.join(Self::executor_name(i)))).collect(),
                release_dir: self.release_dir.clone(),
                keys: members.iter().map(|&i| self.keys[i].clone()).collect(),
                members,
                seed: self.seed,
                versions: self.versions.clone(),
            };
            let host = if per_host == 1 { Self::executor_name(first) } else { format!("host-{}", first / per_host) };
            sim.host(host.as_str(), move || ctx.clone().run());
        }
        sim
    }
}

/// What one simulated machine needs to run its executors.
#[derive(Clone)]
struct ExecutorCtx {
    members: Vec<usize>,
    drivers: Vec<FakeDriver>,
    kinds: Vec<ExecutorKind>,
    bins: Vec<Option<PathBuf>>,
    release_dir: Option<PathBuf>,
    keys: Vec<String>,
    seed: u64,
    versions: Arc<Mutex<Vec<String>>>,
}

impl ExecutorCtx {
    async fn run(self) -> Result<(), Box<dyn std::error::Error>> {
        let mut all = tokio::task::JoinSet::new();
        for (k, &i) in self.members.iter().enumerate() {
            let upgrades = self.bins[k].clone().map(|bin| {
                let policy = novacula_agent::upgrade::UpgradePolicy { release_dir: self.release_dir.clone(), state_dir: bin.with_extension("state") };
                (bin, policy)
            });
            all.spawn(Self::executor(i, self.drivers[k].clone(), self.kinds[k], upgrades, self.keys[k].clone(), self.seed, self.versions.clone()));
        }
        while all.join_next().await.is_some() {}
        Ok(())
    }

    /// One executor; each pass of the loop is one agent process, and a
    /// successful self-upgrade "re-execs" into the next.
    async fn executor(
        i: usize,
        driver: FakeDriver,
        kind: ExecutorKind,
        upgrades: Option<(PathBuf, novacula_agent::upgrade::UpgradePolicy)>,
        key: String,
        seed: u64,
        versions: Arc<Mutex<Vec<String>>>,
    ) {
        use novacula_agent::upgrade::{process_life, Restart};
        let seed = seed.wrapping_add(i as u64 + 1);
        // The version before the last upgrade, for a rollback after the "restart".
        let mut before_upgrade: Option<String> = None;
        loop {
            let version = versions.lock().expect("versions")[i].clone();
            let id = Identity { name: Fleet::executor_name(i), kind, version: version.clone(), channel: Channel::Stable };
            let backend = Processes::new(driver.clone(), Adapters::standard().with_demo_chain());
            let exec = Executor::with_jitter(id, api(Some(key.clone())), backend, Intervals::default(), Jitter::seeded(seed));
            let (mut offered, syncs) = (exec.upgrades(), exec.syncs());
            let (upgrades, versions) = (upgrades.clone(), versions.clone());
            let previous = before_upgrade.take();
            let next = Arc::new(Mutex::new(None));
            let next_set = next.clone();
            exec.run(async move {
                let Some((bin, policy)) = upgrades else { return std::future::pending().await };
                // As a real agent process: confirm or roll back, then wait for a release.
                let restart = process_life(&mut offered, syncs, &bin, &policy, &version).await;
                let new_version = match restart {
                    Restart::RolledBack => previous.unwrap_or(version.clone()),
                    Restart::Upgraded(spec) => {
                        *next_set.lock().expect("next") = Some(version.clone());
                        spec.version
                    }
                };
                versions.lock().expect("versions")[i] = new_version;
            })
            .await;
            before_upgrade = next.lock().expect("next").take();
        }
    }
}

/// A stand-in node: the demo chain's process that only sleeps.
#[allow(clippy::expect_used, reason = "a fixed, valid spec")]
pub fn standin(name: &str) -> NodeSpec {
    serde_json::from_value(json!({
        "name": name, "chain": "demo", "network": "local",
        "clients": [{"role": "main", "client": "standin", "version": "1.0.0"}]
    }))
    .expect("stand-in spec")
}

pub async fn admin() -> HttpApi<SimConnector> {
    let anon = api(None);
    let r = anon.login("admin", PASSWORD).await.expect("login");
    anon.with_token(Some(r.token))
}

pub async fn nodes(admin: &HttpApi<SimConnector>) -> Vec<NodeView> {
    admin.nodes(None).await.expect("list nodes")
}

/// Every node of the fleet's `executors`, read executor by executor, many at
/// once: a large fleet's list in one sequence of pages would take a long
/// while in simulated time.
pub async fn nodes_by_executor(admin: &HttpApi<SimConnector>, executors: usize) -> Vec<NodeView> {
    let mut inflight = tokio::task::JoinSet::new();
    let mut all = Vec::new();
    for i in 0..executors {
        if inflight.len() == CALLS_IN_FLIGHT {
            all.extend(inflight.join_next().await.expect("task").expect("list"));
        }
        let admin = admin.clone();
        inflight.spawn(async move { admin.nodes(Some(&Fleet::executor_name(i))).await.expect("list an executor's nodes") });
    }
    while let Some(r) = inflight.join_next().await {
        all.extend(r.expect("list"));
    }
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

/// Poll every 5 simulated seconds until `done` holds for the node list; returns the nodes.
pub async fn until(admin: &HttpApi<SimConnector>, what: &str, done: impl Fn(&[NodeView]) -> bool) -> Vec<NodeView> {
    until_listed(admin, None, what, done).await
}

/// [`until`], reading the list per executor when `executors` is given (large fleets).
pub async fn until_listed(admin: &HttpApi<SimConnector>, executors: Option<usize>, what: &str, done: impl Fn(&[NodeView]) -> bool) -> Vec<NodeView> {
    for _ in 0..240 {
        let ns = match executors {
            Some(n) => nodes_by_executor(admin, n).await,
            None => nodes(admin).await,
        };
        for n in &ns {
            let observed = n.observed.as_ref().map_or(Revision(0), |o| o.revision);
            assert!(observed <= n.revision, "observed ahead of desired: {n:?}");
        }
        if done(&ns) {
            return ns;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    panic!("never reached: {what}");
}

pub fn all_converged(ns: &[NodeView], phase: NodePhase) -> bool {
    ns.iter().all(|n| n.phase == phase && n.drift.revisions_behind == 0)
}

/// The node is where its spec wants it: the phase of its desired state, nothing pending.
pub fn settled(n: &NodeView) -> bool {
    n.phase.as_str() == n.spec.desired_state.as_str() && n.drift.revisions_behind == 0
}

/// Concurrent API calls of the simulated users (a wave over a large fleet).
pub const CALLS_IN_FLIGHT: usize = 2048;

/// One write of the API, as a fleet's users send them.
#[derive(Debug, Clone)]
pub enum Call {
    Deploy { executor: String, spec: NodeSpec },
    Lifecycle { node: String, action: LifecycleAction },
}

/// Send `calls`, at most [`CALLS_IN_FLIGHT`] at once, as a fleet's API clients do.
pub async fn post_all(admin: &HttpApi<SimConnector>, calls: Vec<Call>) {
    let mut inflight = tokio::task::JoinSet::new();
    for call in calls {
        if inflight.len() == CALLS_IN_FLIGHT {
            inflight.join_next().await.expect("task").expect("call");
        }
        let admin = admin.clone();
        inflight.spawn(async move {
            let r = match &call {
                Call::Deploy { executor, spec } => admin.deploy(executor, spec.clone()).await,
                Call::Lifecycle { node, action } => admin.lifecycle(node, *action).await,
            };
            r.unwrap_or_else(|e| panic!("{call:?}: {e}"));
        });
    }
    while let Some(r) = inflight.join_next().await {
        r.expect("call");
    }
}

/// Wait until `executors` executors have synced, then deploy `per` stand-in nodes on each.
pub async fn deploy_all(admin: &HttpApi<SimConnector>, executors: usize, per: usize) {
    // Every 5 s: a listing of 10,000 executors with their capabilities is 80 MB of JSON.
    while admin.executors().await.map(|e| e.len()).unwrap_or(0) < executors {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let calls = (0..executors)
        .flat_map(|i| (0..per).map(move |j| Call::Deploy { executor: Fleet::executor_name(i), spec: standin(&Fleet::node_name(i, j)) }))
        .collect();
    post_all(admin, calls).await;
}
