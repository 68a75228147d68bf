//! The executor loops: heartbeat (`syncExecutor`, 5 s), PollingClient (long-poll
//! specs, 5 s), Reconciler (desired vs observed through a `Backend`, 5 s) and
//! Reporter (observe and report, 10 s). Nothing here must survive a crash: the
//! desired state comes from the control plane and the observed state from the backend.
//! Agent and operator share these loops; only the backend differs.

use crate::backend::Backend;
use hyper_util::client::legacy::connect::Connect;
use novacula_client::{ClientError, HttpApi};
use novacula_core::error::ErrorCategory;
use novacula_core::logs::{LogBatch, LogLine, LogWatch, BATCH_MAX, REPLAY_MAX};
use novacula_core::sync::LockExt;
use novacula_core::validate::valid_name;
use novacula_core::wire::{SyncExecutorRequest, UpgradeSpec};
use novacula_core::{Channel, DesiredNode, ExecutorKind};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// How long a spec poll waits at the control plane for a change.
pub const POLL_WAIT: Duration = Duration::from_secs(5);

/// Polls answered with changes between two that ask for every node: changes
/// since a cursor cannot tell a database restored from a backup (whose
/// cursors run again over other changes) from the one they came from; the
/// whole set can. About every 5 minutes.
pub const WHOLE_SET_EVERY: u32 = 60;

/// How often every desired node is reconciled (and at once after a change).
pub const RECONCILE_INTERVAL: Duration = Duration::from_secs(5);
/// How often observed state is reported (and at once after a reconcile changed something).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(10);
/// How often a watched log is read for new lines.
pub const LOG_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct Intervals {
    pub sync: Duration,
    pub poll_wait: Duration,
    pub reconcile: Duration,
    pub report: Duration,
}

impl Default for Intervals {
    fn default() -> Self {
        Intervals { sync: novacula_core::heartbeat::SYNC_INTERVAL, poll_wait: POLL_WAIT, reconcile: RECONCILE_INTERVAL, report: REPORT_INTERVAL }
    }
}

#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub kind: ExecutorKind,
    pub version: String,
    pub channel: Channel,
}

pub struct Executor<B, C> {
    pub id: Identity,
    api: HttpApi<C>,
    backend: B,
    intervals: Intervals,
    desired: watch::Sender<Option<Vec<DesiredNode>>>,
    wake_reconcile: Notify,
    wake_report: Notify,
    upgrade: watch::Sender<Option<UpgradeSpec>>,
    /// Successful syncs of this process: the first one confirms a self-upgrade.
    synced: watch::Sender<u64>,
    /// Our capabilities' digest, and the control plane's digest of them as it
    /// answered: while ours are unchanged, a sync sends its digest instead.
    /// Also tells that the control plane answers polls with changes: an older
    /// one answers no digest, and refuses both.
    acked_capabilities: Mutex<Option<(String, String)>>,
    jitter: Jitter,
    metrics: Arc<crate::metrics::ExecutorMetrics>,
    /// Each node as last reported: what its next observation is compared
    /// with for runtime events (kept until a report gets through).
    reported: Mutex<std::collections::HashMap<String, novacula_core::ObservedNodeState>>,
    /// The logs someone watches, as the last sync answer named them.
    log_watches: watch::Sender<Vec<LogWatch>>,
}

/// Exponential backoff with jitter in [cap/2, cap], cap doubling from 0.5 s to a minute.
/// `random` is any 64-bit random value (seeded in simulation, for reproducibility).
pub fn backoff(attempt: u32, random: u64) -> Duration {
    let cap = Duration::from_millis(500u64.saturating_mul(1 << attempt.min(7))).min(Duration::from_secs(60));
    let half = cap.as_millis() as u64 / 2;
    Duration::from_millis(half + random % (half + 1))
}

/// xorshift64*: enough randomness for jitter, and seedable.
#[derive(Debug)]
pub struct Jitter(Mutex<u64>);

impl Jitter {
    pub fn seeded(seed: u64) -> Jitter {
        Jitter(Mutex::new(seed.max(1)))
    }

    pub fn from_os() -> Jitter {
        let mut b = [0u8; 8];
        novacula_core::entropy::Entropy::fill(&novacula_core::entropy::OsEntropy, &mut b);
        Jitter::seeded(u64::from_le_bytes(b))
    }

    pub fn next(&self) -> u64 {
        let mut x = self.0.locked();
        *x ^= *x >> 12;
        *x ^= *x << 25;
        *x ^= *x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The wait before the next attempt of a periodic call: its interval after a
/// success, jittered backoff (never longer than the interval) after a failure.
fn next_wait(failures: &mut u32, result: Result<(), ClientError>, interval: Duration, what: &str, jitter: &Jitter) -> Duration {
    match result {
        Ok(()) => {
            *failures = 0;
            interval
        }
        Err(e) => {
            *failures += 1;
            let wait = backoff(*failures, jitter.next());
            match e.category() {
                // a refusal will not pass by itself: back off past the interval, up to a minute
                ErrorCategory::Refused | ErrorCategory::InvalidSpec => {
                    tracing::error!(error = %e, "{what} refused");
                    wait.max(interval)
                }
                ErrorCategory::Transient => {
                    tracing::warn!(error = %e, "{what} failed");
                    wait.min(interval)
                }
            }
        }
    }
}

impl<B: Backend, C: Connect + Clone + Send + Sync + 'static> Executor<B, C> {
    pub fn new(id: Identity, api: HttpApi<C>, backend: B, intervals: Intervals) -> Arc<Self> {
        Self::with_jitter(id, api, backend, intervals, Jitter::from_os())
    }

    pub fn with_jitter(id: Identity, api: HttpApi<C>, backend: B, intervals: Intervals, jitter: Jitter) -> Arc<Self> {
        Arc::new(Executor {
            id,
            api,
            backend,
            intervals,
            desired: watch::channel(None).0,
            wake_reconcile: Notify::new(),
            wake_report: Notify::new(),
            upgrade: watch::channel(None).0,
            synced: watch::channel(0).0,
            acked_capabilities: Mutex::new(None),
            jitter,
            metrics: Default::default(),
            reported: Mutex::new(Default::default()),
            log_watches: watch::channel(Vec::new()).0,
        })
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// What this executor's loops did and its nodes as last observed (for `/metrics`).
    pub fn metrics(&self) -> Arc<crate::metrics::ExecutorMetrics> {
        self.metrics.clone()
    }

    /// The upgrade the control plane asks for, if any.
    pub fn upgrades(&self) -> watch::Receiver<Option<UpgradeSpec>> {
        self.upgrade.subscribe()
    }

    /// How many syncs of this process have succeeded.
    pub fn syncs(&self) -> watch::Receiver<u64> {
        self.synced.subscribe()
    }

    /// Run all loops until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let tasks = [
            tokio::spawn(self.clone().heartbeat_loop()),
            tokio::spawn(self.clone().poll_loop()),
            tokio::spawn(self.clone().reconcile_loop()),
            tokio::spawn(self.clone().report_loop()),
            tokio::spawn(self.clone().logs_loop()),
        ];
        shutdown.await;
        for t in tasks {
            t.abort();
        }
    }

    pub async fn sync_once(&self) -> Result<(), ClientError> {
        let capabilities = self.backend.capabilities();
        let ours = capabilities.digest();
        let theirs = self.acked_capabilities.locked().as_ref().filter(|(o, _)| *o == ours).map(|(_, t)| t.clone());
        let req = SyncExecutorRequest {
            name: self.id.name.clone(),
            kind: self.id.kind,
            version: self.id.version.clone(),
            channel: self.id.channel,
            capabilities: theirs.is_none().then_some(capabilities),
            capabilities_digest: theirs.clone(),
        };
        let resp = self.api.sync_executor(&req).await;
        self.metrics.synced(&resp);
        // Sent in full again after a failure, or when the control plane holds
        // other ones than those it was told of (a restore) or takes no digest.
        let held = resp.as_ref().ok().and_then(|r| r.capabilities_digest.clone());
        *self.acked_capabilities.locked() = match (theirs, held) {
            (None, Some(held)) => Some((ours, held)),
            (Some(sent), Some(held)) if sent == held => Some((ours, held)),
            _ => None,
        };
        let resp = resp?;
        self.synced.send_modify(|n| *n += 1);
        if resp.compat != novacula_core::CompatStatus::InWindow {
            tracing::warn!(compat = resp.compat.as_str(), server = %resp.server_version, "executor version outside the compatibility window; upgrade it");
        }
        self.upgrade.send_if_modified(|cur| {
            let changed = *cur != resp.upgrade;
            *cur = resp.upgrade.clone();
            changed
        });
        self.log_watches.send_if_modified(|cur| {
            let changed = *cur != resp.log_watches;
            *cur = resp.log_watches.clone();
            changed
        });
        Ok(())
    }

    /// Push the lines of each watched log: the last ones of a new watch
    /// first, then what was written since, every [`LOG_INTERVAL`], until the
    /// sync answer stops naming it. Reads are bounded by the backend; pushes
    /// by [`BATCH_MAX`].
    async fn logs_loop(self: Arc<Self>) {
        // watch id -> where its log was read up to (`None`: it could not be read)
        let mut cursors: std::collections::HashMap<u64, Option<String>> = Default::default();
        let mut watches_rx = self.log_watches.subscribe();
        loop {
            let watches = watches_rx.borrow_and_update().clone();
            cursors.retain(|id, _| watches.iter().any(|w| w.id == *id));
            for w in &watches {
                let first = !cursors.contains_key(&w.id);
                let after = match cursors.get(&w.id) {
                    Some(None) => continue, // told the viewer why already
                    Some(Some(c)) => Some(c.clone()),
                    None => None,
                };
                let read = self.backend.logs(&w.node, &w.process, after.as_deref(), w.tail.min(REPLAY_MAX)).await;
                let (lines, error) = match read {
                    Ok((lines, cursor)) => {
                        cursors.insert(w.id, Some(cursor));
                        (lines, None)
                    }
                    Err(e) => {
                        tracing::warn!(node = %w.node, process = %w.process, error = %e, "cannot read the log someone watches");
                        cursors.insert(w.id, None);
                        (Vec::new(), Some(e.to_string()))
                    }
                };
                if lines.is_empty() && error.is_none() && !first {
                    continue;
                }
                let chunks: Vec<Vec<LogLine>> = if lines.is_empty() { vec![Vec::new()] } else { lines.chunks(BATCH_MAX).map(<[LogLine]>::to_vec).collect() };
                let last = chunks.len() - 1;
                for (i, chunk) in chunks.into_iter().enumerate() {
                    let batch = LogBatch {
                        watch: w.id,
                        node: w.node.clone(),
                        process: w.process.clone(),
                        replay: first && i == last,
                        error: error.clone(),
                        lines: chunk,
                    };
                    match self.api.push_logs(&self.id.name, &batch).await {
                        Ok(r) if !r.watched => break, // the viewer left; the next sync answer drops it
                        Ok(_) => {}
                        Err(e) => {
                            tracing::debug!(error = %e, "pushing log lines failed; they are read again next time");
                            match &after {
                                Some(c) => cursors.insert(w.id, Some(c.clone())),
                                None => cursors.remove(&w.id),
                            };
                            break;
                        }
                    }
                }
            }
            if watches.is_empty() {
                if watches_rx.changed().await.is_err() {
                    return;
                }
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(LOG_INTERVAL) => {}
                    _ = watches_rx.changed() => {}
                }
            }
        }
    }

    async fn heartbeat_loop(self: Arc<Self>) {
        let mut failures = 0;
        loop {
            let wait = next_wait(&mut failures, self.sync_once().await, self.intervals.sync, "syncExecutor", &self.jitter);
            tokio::time::sleep(wait).await;
        }
    }

    async fn poll_loop(self: Arc<Self>) {
        let mut cursor = 0;
        let mut failures = 0;
        let mut since_whole = 0;
        loop {
            // Changes since the cursor, when the control plane answers them;
            // now and then the whole set (see `WHOLE_SET_EVERY`).
            let changes = self.acked_capabilities.locked().is_some() && cursor > 0 && since_whole < WHOLE_SET_EVERY && self.desired.borrow().is_some();
            let (name, wait) = (&self.id.name, self.intervals.poll_wait);
            let answer = if changes { self.api.poll_spec_changes(name, cursor, wait).await } else { self.api.poll_specs(name, cursor, wait).await };
            match answer {
                Ok(resp) => {
                    failures = 0;
                    if resp.nodes.iter().any(|n| !valid_name(&n.spec.name)) {
                        tracing::error!("control plane sent a node with an invalid name; ignoring this response");
                        tokio::time::sleep(backoff(1, self.jitter.next())).await;
                        continue;
                    }
                    since_whole = if resp.changes_since.is_none() { 0 } else { since_whole + 1 };
                    if resp.changes_nothing(cursor) {
                        cursor = resp.cursor; // a long-poll that timed out: nothing to merge
                        continue;
                    }
                    let (next_cursor, changed) = (resp.cursor, resp.nodes.len() + resp.gone.len());
                    let known = self.desired.borrow().clone();
                    match resp.apply(known.as_deref(), cursor) {
                        Some(nodes) => {
                            cursor = next_cursor;
                            if known.as_deref() != Some(nodes.as_slice()) {
                                tracing::debug!(cursor, changed, nodes = nodes.len(), "specs updated");
                                self.desired.send_replace(Some(nodes));
                                self.wake_reconcile.notify_one();
                            }
                        }
                        None => {
                            tracing::warn!(cursor, "the control plane's changes do not follow this executor's cursor; asking for every node");
                            cursor = 0;
                        }
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "spec poll failed");
                    tokio::time::sleep(backoff(failures, self.jitter.next())).await;
                }
            }
        }
    }

    async fn reconcile_loop(self: Arc<Self>) {
        loop {
            self.reconcile_once().await;
            let _ = tokio::time::timeout(self.intervals.reconcile, self.wake_reconcile.notified()).await;
        }
    }

    async fn report_loop(self: Arc<Self>) {
        let mut failures = 0;
        loop {
            let wait = next_wait(&mut failures, self.report_once().await, self.intervals.report, "report", &self.jitter);
            let _ = tokio::time::timeout(wait, self.wake_report.notified()).await;
        }
    }

    /// Why this executor refuses to run a spec, if it does: the control plane
    /// checked it against our capabilities, but the host trusts only itself.
    /// A deleted node is always torn down (teardown runs nothing of the spec's).
    fn refusal(&self, d: &DesiredNode) -> Option<String> {
        if d.deleted {
            return None;
        }
        // Checked as a written spec (its own previous): whether each volume is
        // used is the control plane's rule when a spec is written, not a trust rule.
        let errs = novacula_core::validate::validate_spec(&d.spec, &self.backend.capabilities(), Some(&d.spec)).err()?;
        let reasons: Vec<String> = errs.iter().map(ToString::to_string).collect();
        Some(format!("refused by this executor: {}", reasons.join("; ")))
    }

    /// One pass over every desired node; returns how many changes were applied.
    pub async fn reconcile_once(&self) -> usize {
        let Some(nodes) = self.desired.borrow().clone() else { return 0 };
        let start = std::time::Instant::now();
        let (mut applied, mut refused) = (0, 0);
        for d in &nodes {
            if let Some(why) = self.refusal(d) {
                tracing::error!(node = %d.spec.name, revision = %d.revision, reason = %why, "spec not applied");
                refused += 1;
                continue;
            }
            applied += self.backend.reconcile(d).await;
        }
        self.metrics.reconciled(start.elapsed().as_secs_f64(), applied, refused);
        if applied > 0 {
            self.wake_report.notify_one();
        }
        applied
    }

    /// Observe every desired node through the backend, and report.
    pub async fn report_once(&self) -> Result<(), ClientError> {
        let Some(nodes) = self.desired.borrow().clone() else { return Ok(()) };
        let mut states = Vec::new();
        let mut events = Vec::new();
        for d in &nodes {
            match self.backend.observe(d).await {
                Ok(mut s) => {
                    if let Some(why) = self.refusal(d) {
                        for p in &mut s.processes {
                            p.status = novacula_core::ObservedNodeStatus::Error;
                            p.message = Some(why.clone());
                        }
                    }
                    if let Some(before) = self.reported.locked().get(&s.node) {
                        let should_run = !d.deleted && d.spec.desired_state == novacula_core::spec::DesiredState::Running;
                        events.extend(novacula_core::observed::runtime_events(before, &s, should_run));
                    }
                    states.push(s);
                }
                Err(e) => {
                    self.metrics.observe_failed();
                    tracing::warn!(node = %d.spec.name, error = %e, category = ?e.category(), "cannot observe node");
                }
            }
        }
        self.metrics.observed(&states);
        if !states.is_empty() {
            // The newest events if there are too many (the states tell the rest).
            let excess = events.len().saturating_sub(novacula_core::observed::RUNTIME_EVENTS_MAX);
            events.drain(..excess);
            for e in &events {
                tracing::info!(node = %e.node, process = %e.process, level = ?e.level, "{}", e.message);
            }
            let sent = self.api.report_with_events(&self.id.name, states.clone(), events).await;
            self.metrics.reported(&sent);
            sent?;
            // Compared with from now on (after a failed report, the events come again).
            *self.reported.locked() = states.into_iter().map(|s| (s.node.clone(), s)).collect();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_back_off_past_the_interval_and_hiccups_within_it() {
        let jitter = Jitter::seeded(1);
        let interval = Duration::from_secs(5);
        let refused = ClientError::Status { status: 401, error: "API key has been revoked".into(), details: vec![] };
        let (mut a, mut b) = (0, 0);
        let mut slow = Duration::ZERO;
        let mut fast = Duration::ZERO;
        for _ in 0..8 {
            slow = next_wait(&mut a, Err(refused.clone()), interval, "sync", &jitter);
            fast = next_wait(&mut b, Err(ClientError::Transport("connection refused".into())), interval, "sync", &jitter);
        }
        assert!(slow >= Duration::from_secs(30) && slow <= Duration::from_secs(60), "{slow:?}");
        assert!(fast <= interval, "{fast:?}");
        assert_eq!(next_wait(&mut a, Ok(()), interval, "sync", &jitter), interval);
        assert_eq!(a, 0, "a success resets the count");
        assert_eq!(ClientError::Status { status: 503, error: String::new(), details: vec![] }.category(), ErrorCategory::Transient);
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        assert_eq!(backoff(1, 0), Duration::from_millis(500));
        assert_eq!(backoff(1, 500), Duration::from_millis(1000));
        assert!(backoff(3, u64::MAX) <= Duration::from_secs(4));
        assert!(backoff(30, 7) <= Duration::from_secs(60) && backoff(30, 7) >= Duration::from_secs(30));
    }

    #[test]
    fn seeded_jitter_is_reproducible() {
        let (a, b) = (Jitter::seeded(42), Jitter::seeded(42));
        let xs: Vec<u64> = (0..5).map(|_| a.next()).collect();
        assert_eq!(xs, (0..5).map(|_| b.next()).collect::<Vec<_>>());
        assert_ne!(xs[0], xs[1]);
    }
}
