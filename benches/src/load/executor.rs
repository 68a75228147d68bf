//! One emulated executor: the real protocol over its own connections, as an
//! agent sends it (a sync every 5 s, a 5 s spec long-poll, a report every
//! 10 s of what the last poll asked for), with no processes behind it.

use super::stats::{Calls, POLL, PROPAGATION, REPORT, SYNC};
use novacula_client::HttpApi;
use novacula_core::observed::{DiskUsage, ObservedNodeState, ObservedNodeStatus, ObservedProcess, SyncMetrics};
use novacula_core::spec::{DesiredNode, DesiredState};
use novacula_core::wire::SyncExecutorRequest;
use novacula_core::Revision;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connections shared by executors' syncs and reports, as through a load balancer.
#[derive(Clone)]
pub struct Pool {
    api: HttpApi,
    gate: Arc<tokio::sync::Semaphore>,
}

impl Pool {
    pub fn new(url: &str) -> Result<Pool, novacula_client::ClientError> {
        Ok(Pool { api: HttpApi::new(url, None)?, gate: Arc::new(tokio::sync::Semaphore::new(POOL_CONNECTIONS)) })
    }
}

/// What every emulated executor shares with the generator.
#[derive(Default)]
pub struct Shared {
    pub calls: Calls,
    pub propagation: Mutex<Propagation>,
}

/// Restarts on their way from the user's answer to the executor's poll.
#[derive(Default)]
pub struct Propagation {
    /// Restarts answered and not polled yet, by node: the revision and when.
    pending: HashMap<String, (Revision, Instant)>,
    /// The newest revision each node's executor polled (a poll may see a
    /// change before the user's answer arrives).
    seen: HashMap<String, Revision>,
}

impl Shared {
    /// The user's restart of `node` was answered with `revision`.
    pub fn restarted(&self, node: String, revision: Revision) {
        let mut p = locked(&self.propagation);
        if p.seen.get(&node).is_some_and(|seen| *seen >= revision) {
            self.calls.ok(PROPAGATION, Duration::ZERO);
        } else {
            p.pending.insert(node, (revision, Instant::now()));
        }
    }

    /// An executor's poll named `node` at `revision`.
    fn polled(&self, p: &mut Propagation, node: &str, revision: Revision) {
        if let Some((wanted, at)) = p.pending.get(node) {
            if revision >= *wanted {
                self.calls.ok(PROPAGATION, at.elapsed());
                p.pending.remove(node);
            }
        }
        p.seen.insert(node.to_string(), revision);
    }
}

/// Connections a shared pool opens at most, as a load balancer's upstream
/// pool: calls beyond wait their turn (and the wait counts in their time).
pub const POOL_CONNECTIONS: usize = 1_024;

pub struct Emulated {
    pub name: String,
    /// Its API key.
    key: String,
    /// Syncs and reports.
    api: HttpApi,
    /// Turns on the shared pool's connections, when pooled.
    gate: Option<Arc<tokio::sync::Semaphore>>,
    /// The long-poll, on a connection of its own while it waits.
    poll: HttpApi,
    /// The nodes the last poll named.
    desired: Mutex<BTreeMap<String, DesiredNode>>,
    /// The emulated chain's head: one block more at each report, so every
    /// report changes what the control plane stores (as a synced node's does).
    head: AtomicU64,
    seed: u64,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Emulated {
    /// An executor with `key`: its syncs and reports go over `shared`'s
    /// connections when given (as through a load balancer that pools them),
    /// otherwise over its own, as an agent's.
    pub fn new(url: &str, key: String, name: String, seed: u64, shared: Option<&Pool>) -> Result<Emulated, novacula_client::ClientError> {
        let (poll, key_kept) = (HttpApi::new(url, Some(key.clone()))?, key.clone());
        let (api, gate) = match shared {
            Some(p) => (p.api.clone().with_token(Some(key)), Some(p.gate.clone())),
            None => (poll.clone(), None),
        };
        Ok(Emulated { name, key: key_kept, api, gate, poll, desired: Mutex::new(BTreeMap::new()), head: AtomicU64::new(1_000), seed })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// A turn on the shared pool (none needed on connections of its own).
    async fn turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        match &self.gate {
            Some(g) => g.acquire().await.ok(),
            None => None,
        }
    }

    /// One `syncExecutor` (`body`: the request as JSON, made once: the
    /// generator's CPU is the server's too); the first one admits the
    /// executor. Returns the control plane's digest of the capabilities it holds.
    pub async fn sync(&self, body: &[u8]) -> Result<String, novacula_client::ClientError> {
        let _turn = self.turn().await;
        let (status, answer) = self.api.raw(novacula_client::Method::POST, "/api/v1/executor/sync", Some(body.to_vec()), Duration::from_secs(15)).await?;
        if status.is_success() {
            match serde_json::from_slice::<novacula_core::wire::SyncExecutorResponse>(&answer) {
                Ok(r) => r.capabilities_digest.ok_or_else(|| novacula_client::ClientError::Decode("no capabilitiesDigest in the answer".into())),
                Err(e) => Err(novacula_client::ClientError::Decode(e.to_string())),
            }
        } else {
            Err(novacula_client::ClientError::Status { status: status.as_u16(), error: String::from_utf8_lossy(&answer).into(), details: vec![] })
        }
    }

    /// The three loops of an agent, until the task is aborted.
    pub async fn run(self: Arc<Self>, shared: Arc<Shared>, req: Arc<Vec<u8>>, static_reports: bool) {
        let mut rng = super::jitter::Seq::new(self.seed);
        let (sync_at, report_at) = (rng.below(5_000) as u64, rng.below(10_000) as u64);
        tokio::join!(self.sync_loop(&shared, &req, sync_at), self.poll_loop(&shared), self.report_loop(&shared, report_at, static_reports));
    }

    /// A period of `base` within ±10%, as agents' timers drift apart.
    fn jittered(rng: &mut super::jitter::Seq, base: Duration) -> Duration {
        base.mul_f64(0.9 + rng.unit() * 0.2)
    }

    async fn sync_loop(&self, shared: &Shared, req: &[u8], first_ms: u64) {
        let mut rng = super::jitter::Seq::new(self.seed ^ 1);
        tokio::time::sleep(Duration::from_millis(first_ms)).await;
        let sent: Option<String> = serde_json::from_slice::<SyncExecutorRequest>(req).ok().and_then(|r| r.capabilities_digest);
        loop {
            let t = Instant::now();
            match self.sync(req).await {
                Ok(held) if Some(&held) == sent.as_ref() => shared.calls.ok(SYNC, t.elapsed()),
                // It holds other capabilities than the digest says: an agent
                // would send all 8 KiB of them again; counted as an error.
                Ok(held) => shared.calls.error(SYNC, format!("{}: the control plane holds capabilities {held}, not those sent", self.name)),
                Err(e) => shared.calls.error(SYNC, format!("{}: {e}", self.name)),
            }
            tokio::time::sleep(Self::jittered(&mut rng, novacula_core::heartbeat::SYNC_INTERVAL)).await;
        }
    }

    async fn poll_loop(&self, shared: &Shared) {
        let wait = novacula_executor::loops::POLL_WAIT;
        let mut since = 0;
        loop {
            let t = Instant::now();
            // As an agent: the changes since its cursor, after the first poll.
            let answer =
                if since == 0 { self.poll.poll_specs(&self.name, since, wait).await } else { self.poll.poll_spec_changes(&self.name, since, wait).await };
            match answer {
                Ok(r) => {
                    // A poll that saw no change answers at its deadline: what is
                    // timed is how late (a change answers early, timed below).
                    if r.cursor == since {
                        shared.calls.ok(POLL, t.elapsed().saturating_sub(wait));
                    }
                    let from = std::mem::replace(&mut since, r.cursor);
                    self.learn(shared, r, from);
                }
                Err(e) => {
                    shared.calls.error(POLL, format!("{}: {e}", self.name));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Take the polled nodes (or changes since `from`) as the ones to run;
    /// time restarts that arrived.
    fn learn(&self, shared: &Shared, answer: novacula_core::wire::SpecPollResponse, from: u64) {
        if answer.changes_nothing(from) {
            return; // a long-poll that timed out, as an agent's poll loop skips it
        }
        let mut desired = locked(&self.desired);
        let known: Vec<DesiredNode> = desired.values().cloned().collect();
        // Changes that do not follow the cursor would be a control plane's bug.
        let nodes = answer.apply(Some(&known), from).unwrap_or_default();
        let mut propagation = locked(&shared.propagation);
        for n in &nodes {
            if desired.get(&n.spec.name).is_none_or(|d| d.revision != n.revision) {
                shared.polled(&mut propagation, &n.spec.name, n.revision);
            }
        }
        drop(propagation);
        *desired = nodes.into_iter().map(|n| (n.spec.name.clone(), n)).collect();
    }

    /// What the executor reports: every polled node materialized at its revision.
    pub fn observed(&self, advance: bool) -> Vec<ObservedNodeState> {
        let head = if advance { self.head.fetch_add(1, Ordering::Relaxed) + 1 } else { self.head.load(Ordering::Relaxed) };
        locked(&self.desired)
            .values()
            .map(|d| {
                let running = d.spec.desired_state == DesiredState::Running && !d.deleted;
                ObservedNodeState {
                    node: d.spec.name.clone(),
                    revision: d.revision,
                    processes: vec![ObservedProcess {
                        name: "main".into(),
                        status: if running { ObservedNodeStatus::Running } else { ObservedNodeStatus::Stopped },
                        sync: running.then(|| SyncMetrics::new(head, head, 12)),
                        message: None,
                    }],
                    removed: d.deleted,
                    disk: Some(DiskUsage { used_bytes: 40 << 30, free_bytes: 400 << 30, total_bytes: 500 << 30 }),
                }
            })
            .collect()
    }

    async fn report_loop(&self, shared: &Shared, first_ms: u64, static_reports: bool) {
        let mut rng = super::jitter::Seq::new(self.seed ^ 2);
        tokio::time::sleep(Duration::from_millis(first_ms)).await;
        loop {
            let nodes = self.observed(!static_reports);
            if !nodes.is_empty() {
                let t = Instant::now();
                let turn = self.turn().await;
                let answer = self.api.report(&self.name, nodes).await;
                drop(turn);
                match answer {
                    Ok(r) if r.rejected.is_empty() => shared.calls.ok(REPORT, t.elapsed()),
                    Ok(r) => shared.calls.error(REPORT, format!("{}: rejected {:?}", self.name, r.rejected)),
                    Err(e) => shared.calls.error(REPORT, format!("{}: {e}", self.name)),
                }
            }
            tokio::time::sleep(Self::jittered(&mut rng, novacula_executor::loops::REPORT_INTERVAL)).await;
        }
    }
}
