//! The load generator: emulated executors over real sockets with the real
//! protocol against a running control plane, with users reading the node
//! list and restarting nodes meanwhile. It measures every call of a window
//! of steady load, then checks the fleet converged: every node running at
//! its latest revision on an online executor.

pub mod executor;
pub mod h2;
pub mod jitter;
pub mod saturate;
pub mod server;
pub mod stats;

use executor::{Emulated, Shared};
use novacula_client::{ClientError, HttpApi};
use novacula_core::lifecycle::LifecycleAction;
use novacula_core::wire::{CreateKeyRequest, SyncExecutorRequest};
use novacula_core::{Channel, ExecutorKind, NodePhase, NodeSpec};
use server::Target;
use stats::{CallSummary, ServerUse, SlowSecond, NODES_PAGE, NODE_READ, RESTART, TARGET};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

#[derive(Debug, Clone)]
pub struct Options {
    pub executors: usize,
    pub nodes_per_executor: usize,
    /// The window measured, after `warmup`.
    pub duration: Duration,
    /// Steady load before the window: every executor has reported once.
    pub warmup: Duration,
    /// Node restarts a user sends per second during the window.
    pub restarts_per_sec: f64,
    /// Users paging the node list and reading a node, each 10 times a second.
    pub readers: usize,
    /// Reports repeat the same state (no head moving): nothing to store.
    pub static_reports: bool,
    /// Each executor sends its syncs and reports over connections of its own
    /// (two per executor, as agents connecting directly), instead of over a
    /// shared pool (as through an L7 load balancer; one per executor, its
    /// long-poll's).
    pub own_connections: bool,
    /// Setup calls in flight at once (keys, first syncs, deploys).
    pub setup_in_flight: usize,
    /// How long the fleet may take to converge after the window.
    pub converge_within: Duration,
    /// After the window: heartbeats as fast as the server takes them, for this long.
    pub saturate: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            executors: 1_000,
            nodes_per_executor: 10,
            duration: Duration::from_secs(60),
            warmup: Duration::from_secs(12),
            restarts_per_sec: 5.0,
            readers: 2,
            static_reports: false,
            own_connections: false,
            setup_in_flight: 64,
            converge_within: Duration::from_secs(60),
            saturate: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{what}: {source}")]
    Call { what: String, source: ClientError },
    #[error("{0}")]
    Task(String),
}

fn call_err(what: impl Into<String>) -> impl FnOnce(ClientError) -> LoadError {
    let what = what.into();
    move |source| LoadError::Call { what, source }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub options: Options,
    /// How long setting up took: keys, first syncs, deploys.
    pub setup: Duration,
    pub deploys_per_sec: f64,
    /// The capabilities an executor's first sync carries, as JSON (the next
    /// ones carry their digest).
    pub capabilities_bytes: usize,
    pub window: Duration,
    pub calls: Vec<CallSummary>,
    /// Seconds of the window with calls over the target.
    pub slow_seconds: Vec<SlowSecond>,
    pub server: ServerUse,
    /// `None` when every node converged; otherwise what did not.
    pub not_converged: Option<String>,
    /// One per wire (see [`saturate::WIRES`]), when asked for.
    pub saturation: Vec<Saturation>,
}

/// Heartbeats at saturation: many syncs in flight, round-robin over the
/// executors, on top of the fleet's steady load, against the disk's flush rate.
#[derive(Debug, Clone)]
pub struct Saturation {
    /// How the syncs travelled.
    pub wire: saturate::Wire,
    pub syncs_per_sec: f64,
    pub p99: Duration,
    pub errors: u64,
    /// The first error's message, when there was one.
    pub first_error: Option<String>,
    pub server: ServerUse,
    /// `fdatasync`s per second the disk took (a 4 KiB write each), measured
    /// before the fleet started; `None` if the measurement failed.
    pub disk_flushes_per_sec: Option<f64>,
}

impl Saturation {
    /// A saturation phase that could not run.
    fn failed(wire: saturate::Wire, why: String, disk_flushes_per_sec: Option<f64>) -> Saturation {
        Saturation { wire, syncs_per_sec: 0.0, p99: Duration::ZERO, errors: 1, first_error: Some(why), server: ServerUse::default(), disk_flushes_per_sec }
    }
}

impl Outcome {
    pub fn errors(&self) -> u64 {
        self.calls.iter().map(|c| c.errors).sum()
    }

    pub fn call(&self, name: &str) -> Option<&CallSummary> {
        self.calls.iter().find(|c| c.name == name)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let o = &self.options;
        writeln!(
            f,
            "{} executors x {} nodes ({}); setup {:.1}s ({:.0} deploys/s); capabilities {} bytes on a first sync, a digest after; window {:.0}s",
            o.executors,
            o.nodes_per_executor,
            if o.own_connections { "two connections each" } else { "a long-poll connection each, syncs and reports pooled" },
            self.setup.as_secs_f64(),
            self.deploys_per_sec,
            self.capabilities_bytes,
            self.window.as_secs_f64()
        )?;
        writeln!(f, "{:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}", "call", "count", "per s", "p50 ms", "p99 ms", "max ms", "errors")?;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        for c in &self.calls {
            writeln!(f, "{:<12} {:>9} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>7}", c.name, c.count, c.per_sec, ms(c.p50), ms(c.p99), ms(c.max), c.errors)?;
            for m in &c.messages {
                writeln!(f, "    {m}")?;
            }
        }
        writeln!(f, "(poll: how long past its 5 s wait an unchanged long-poll answered; propagation: restart answered -> executor's poll has it)")?;
        let slow: Vec<String> = self.slow_seconds.iter().map(|s| format!("+{}s {} (max {:.0} ms)", s.at, s.over, ms(s.max))).collect();
        writeln!(f, "calls over {} ms, by second of the window: {}", TARGET.as_millis(), if slow.is_empty() { "none".into() } else { slow.join(", ") })?;
        let s = &self.server;
        let or_na = |v: Option<String>| v.unwrap_or_else(|| "n/a".into());
        writeln!(
            f,
            "server: cpu {} cores, rss max {}, store commits {}/s, reads {}/s; generator: cpu {} cores",
            or_na(s.cpu_cores.map(|c| format!("{c:.2}"))),
            or_na(s.rss_max_bytes.map(|b| format!("{} MiB", b >> 20))),
            or_na(s.commits_per_sec.map(|c| format!("{c:.0}"))),
            or_na(s.reads_per_sec.map(|c| format!("{c:.0}"))),
            or_na(s.generator_cpu_cores.map(|c| format!("{c:.2}")))
        )?;
        for sat in &self.saturation {
            let or_na = |v: Option<f64>| v.map_or_else(|| "n/a".into(), |v| format!("{v:.0}"));
            writeln!(
                f,
                "heartbeats at saturation ({}, on top of the fleet): {:.0} syncs/s, p99 {:.2} ms, {} errors; server cpu {} cores, store commits {}/s; generator cpu {} cores; the disk: {} fdatasyncs/s{}",
                sat.wire,
                sat.syncs_per_sec,
                ms(sat.p99),
                sat.errors,
                sat.server.cpu_cores.map_or_else(|| "n/a".into(), |c| format!("{c:.2}")),
                or_na(sat.server.commits_per_sec),
                sat.server.generator_cpu_cores.map_or_else(|| "n/a".into(), |c| format!("{c:.2}")),
                or_na(sat.disk_flushes_per_sec),
                sat.disk_flushes_per_sec.filter(|d| *d > 0.0).map_or_else(String::new, |d| format!(" ({:.1}x)", sat.syncs_per_sec / d))
            )?;
            if let Some(e) = &sat.first_error {
                writeln!(f, "    {e}")?;
            }
        }
        match &self.not_converged {
            None => write!(f, "converged: every node running at its latest revision on an online executor"),
            Some(why) => write!(f, "NOT converged: {why}"),
        }
    }
}

/// Executor `i`'s name.
pub fn executor_name(i: usize) -> String {
    format!("load-{i:05}")
}

/// The stand-in spec of node `j` of executor `i`: the demo chain, as the simulator's.
#[allow(clippy::expect_used, reason = "a fixed, valid spec")]
pub fn node_spec(i: usize, j: usize) -> NodeSpec {
    serde_json::from_value(serde_json::json!({
        "name": format!("{}-n{j:02}", executor_name(i)), "chain": "demo", "network": "local",
        "clients": [{"role": "main", "client": "standin", "version": "1.0.0"}]
    }))
    .expect("stand-in spec")
}

/// Run `f` over `items` with at most `in_flight` at once; the first error ends it.
async fn all_of<T: Send + 'static, F, Fut>(items: Vec<T>, in_flight: usize, f: F) -> Result<(), LoadError>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<(), LoadError>> + Send + 'static,
{
    let mut set = JoinSet::new();
    for item in items {
        if set.len() >= in_flight.max(1) {
            set.join_next().await.transpose().map_err(|e| LoadError::Task(e.to_string()))?.transpose()?;
        }
        set.spawn(f(item));
    }
    while let Some(r) = set.join_next().await {
        r.map_err(|e| LoadError::Task(e.to_string()))??;
    }
    Ok(())
}

pub async fn run(target: &Target, o: Options) -> Result<Outcome, LoadError> {
    let started = Instant::now();
    let disk_flushes_per_sec = if o.saturate.is_some() { disk_flush_rate(Duration::from_secs(2)) } else { None };
    let anon = HttpApi::new(&target.url, None).map_err(call_err("client"))?;
    let token = anon.login(&target.user, &target.password).await.map_err(call_err("sign in"))?.token;
    let admin = anon.with_token(Some(token));
    let caps = novacula_executor::adapter::Adapters::standard().with_demo_chain().capabilities();
    let sync_bytes = serde_json::to_vec(&caps).map_or(0, |b| b.len());

    // Keys, one bound to each executor, then each executor's first sync;
    // from then on it runs (syncs, polls, reports), as a real one does: none
    // goes silent during a long setup and then reconnects with the whole
    // fleet at once, and each deploy below wakes its executor's poll.
    let shared = Arc::new(Shared::default());
    let (admitted, mut admitted_rx) = tokio::sync::mpsc::unbounded_channel::<(Arc<Emulated>, Arc<Vec<u8>>)>();
    let pool = if o.own_connections { None } else { Some(executor::Pool::new(&target.url).map_err(call_err("client"))?) };
    let (a, url) = (admin.clone(), target.url.clone());
    let admission = all_of((0..o.executors).collect(), o.setup_in_flight, move |i| {
        let (admin, url, admitted, caps, pool) = (a.clone(), url.clone(), admitted.clone(), caps.clone(), pool.clone());
        async move {
            let name = executor_name(i);
            let key = admin
                .create_key(&CreateKeyRequest { label: name.clone(), executor: Some(name.clone()), ..Default::default() })
                .await
                .map_err(call_err("create key"))?
                .key;
            let e = Emulated::new(&url, key, name.clone(), i as u64, pool.as_ref()).map_err(call_err("client"))?;
            // The first sync carries the capabilities; the next ones, as an
            // agent's, the digest the control plane answered with.
            let mut req = SyncExecutorRequest {
                name,
                kind: ExecutorKind::Agent,
                version: env!("CARGO_PKG_VERSION").into(),
                channel: Channel::Stable,
                capabilities: Some(caps),
                capabilities_digest: None,
            };
            let first = serde_json::to_vec(&req).map_err(|e| LoadError::Task(e.to_string()))?;
            let held = e.sync(&first).await.map_err(call_err(format!("first sync of {}", e.name)))?;
            (req.capabilities, req.capabilities_digest) = (None, Some(held));
            let req = serde_json::to_vec(&req).map_err(|e| LoadError::Task(e.to_string()))?;
            // Ends only with the run (the receiver lives until the admission is over).
            let _ = admitted.send((Arc::new(e), Arc::new(req)));
            Ok(())
        }
    });
    let mut tasks = JoinSet::new();
    let mut fleet = Vec::with_capacity(o.executors);
    let start_each = async {
        while let Some((e, req)) = admitted_rx.recv().await {
            tasks.spawn(e.clone().run(shared.clone(), req.clone(), o.static_reports));
            fleet.push((e, req));
        }
    };
    let (admitted, ()) = tokio::join!(admission, start_each);
    admitted?;

    let deploying = Instant::now();
    let nodes: Vec<(usize, usize)> = (0..o.executors).flat_map(|i| (0..o.nodes_per_executor).map(move |j| (i, j))).collect();
    let a = admin.clone();
    all_of(nodes, o.setup_in_flight, move |(i, j)| {
        let admin = a.clone();
        async move { admin.deploy(&executor_name(i), node_spec(i, j)).await.map(drop).map_err(call_err(format!("deploy node {j} of {}", executor_name(i)))) }
    })
    .await?;
    let deploys_per_sec = (o.executors * o.nodes_per_executor) as f64 / deploying.elapsed().as_secs_f64().max(1e-9);

    // Steady load: the executors (running since before the deploys), readers and restarts.
    for r in 0..o.readers {
        tasks.spawn(reader(admin.clone(), shared.clone(), o.clone(), r as u64));
    }
    let setup = started.elapsed();
    tokio::time::sleep(o.warmup).await;

    let restarts = tokio::spawn(restarter(admin.clone(), shared.clone(), o.clone()));
    shared.calls.start();
    let sampler = Sampler::start(target);
    let window_start = Instant::now();
    let mut rss_max = None;
    while window_start.elapsed() < o.duration {
        tokio::time::sleep(Duration::from_millis(500).min(o.duration.saturating_sub(window_start.elapsed()))).await;
        rss_max = rss_max.max(target.pid.and_then(stats::process_use).map(|(_, rss)| rss));
    }
    let window = window_start.elapsed();
    shared.calls.stop();
    restarts.abort();
    let mut server = sampler.finish(target, window);
    server.rss_max_bytes = rss_max;

    let calls = shared.calls.summary(window);
    let slow_seconds = shared.calls.slow_seconds();
    let mut saturation = Vec::new();
    if let Some(d) = o.saturate {
        for wire in saturate::WIRES {
            saturation.push(saturate::run(target, &fleet, d, disk_flushes_per_sec, wire).await);
        }
    }
    let not_converged = converged(&admin, o.executors * o.nodes_per_executor, o.converge_within).await;
    tasks.abort_all();
    Ok(Outcome { calls, slow_seconds, options: o, setup, deploys_per_sec, capabilities_bytes: sync_bytes, window, server, not_converged, saturation })
}

/// How many 4 KiB write + `fdatasync` rounds a file in the temporary
/// directory takes per second (the ceiling of durable commits there).
fn disk_flush_rate(duration: Duration) -> Option<f64> {
    use std::io::{Seek, Write};
    let mut f = tempfile::tempfile().ok()?;
    let block = [0u8; 4096];
    let (started, mut n) = (Instant::now(), 0u64);
    while started.elapsed() < duration {
        f.rewind().ok()?;
        f.write_all(&block).ok()?;
        f.sync_data().ok()?;
        n += 1;
    }
    Some(n as f64 / started.elapsed().as_secs_f64())
}

/// Server CPU time and store transactions at the window's start.
struct Sampler {
    cpu: Option<f64>,
    own_cpu: Option<f64>,
    store: Option<(u64, u64)>,
}

impl Sampler {
    fn start(t: &Target) -> Sampler {
        Sampler {
            cpu: t.pid.and_then(stats::process_use).map(|(c, _)| c),
            own_cpu: stats::process_use(std::process::id()).map(|(c, _)| c),
            store: t.store.as_deref().map(store_counts),
        }
    }

    fn finish(self, t: &Target, window: Duration) -> ServerUse {
        let secs = window.as_secs_f64().max(1e-9);
        let cpu_now = t.pid.and_then(stats::process_use).map(|(c, _)| c);
        let per_sec = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
        let store = self.store.zip(t.store.as_deref().map(store_counts));
        ServerUse {
            cpu_cores: self.cpu.zip(cpu_now).map(|(a, b)| (b - a) / secs),
            rss_max_bytes: None,
            commits_per_sec: store.map(|((c0, _), (c1, _))| per_sec(c0, c1)),
            reads_per_sec: store.map(|((_, r0), (_, r1))| per_sec(r0, r1)),
            generator_cpu_cores: self.own_cpu.zip(stats::process_use(std::process::id())).map(|(a, (b, _))| (b - a) / secs),
        }
    }
}

fn store_counts(c: &server::StoreCounts) -> (u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    (c.commits.load(Relaxed), c.reads.load(Relaxed))
}

/// A user paging through the node list and reading single nodes, 10 times a second.
async fn reader(admin: HttpApi, shared: Arc<Shared>, o: Options, seed: u64) {
    let mut rng = jitter::Seq::new(seed ^ 0x5eed);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut after: Option<String> = None;
    let calls = &shared.calls;
    loop {
        tick.tick().await;
        let t = Instant::now();
        match admin.nodes_page(None, after.as_deref(), 100).await {
            Ok(page) => {
                calls.ok(NODES_PAGE, t.elapsed());
                after = if page.len() < 100 { None } else { page.last().map(|n| n.name.clone()) };
            }
            Err(e) => calls.error(NODES_PAGE, e),
        }
        let name = node_spec(rng.below(o.executors), rng.below(o.nodes_per_executor)).name;
        let t = Instant::now();
        match admin.node(&name).await {
            Ok(_) => calls.ok(NODE_READ, t.elapsed()),
            Err(e) => calls.error(NODE_READ, format!("{name}: {e}")),
        }
    }
}

/// Restart random nodes at the rate asked; their executors' polls time the arrival.
async fn restarter(admin: HttpApi, shared: Arc<Shared>, o: Options) {
    if o.restarts_per_sec <= 0.0 || o.executors * o.nodes_per_executor == 0 {
        return;
    }
    let mut rng = jitter::Seq::new(0x7e57);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / o.restarts_per_sec));
    loop {
        tick.tick().await;
        let name = node_spec(rng.below(o.executors), rng.below(o.nodes_per_executor)).name;
        let t = Instant::now();
        match admin.lifecycle(&name, LifecycleAction::Restart).await {
            Ok(view) => {
                shared.calls.ok(RESTART, t.elapsed());
                shared.restarted(name, view.revision);
            }
            Err(e) => shared.calls.error(RESTART, format!("{name}: {e}")),
        }
    }
}

/// Wait until every one of `expected` nodes is running at its latest
/// revision on an online executor; `None` when they all are in time.
async fn converged(admin: &HttpApi, expected: usize, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    loop {
        let why = match admin.nodes(None).await {
            Err(e) => format!("listing nodes: {e}"),
            Ok(nodes) => {
                let behind: Vec<_> = nodes.iter().filter(|n| n.phase != NodePhase::Running || n.drift.revisions_behind != 0 || !n.executor_online).collect();
                match behind.first() {
                    None if nodes.len() == expected => return None,
                    None => format!("{} nodes listed, {expected} deployed", nodes.len()),
                    Some(n) => format!(
                        "{} of {} nodes not running at their revision, e.g. {} ({}, {} behind, executor online: {})",
                        behind.len(),
                        nodes.len(),
                        n.name,
                        n.phase.as_str(),
                        n.drift.revisions_behind,
                        n.executor_online
                    ),
                }
            }
        };
        if Instant::now() >= deadline {
            return Some(why);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
