//! The executor loops: heartbeat (`syncExecutor`, 5 s), PollingClient (long-poll
//! specs, 5 s), Reconciler (core `diff` applied through a driver, 5 s) and
//! Reporter (probe and report, 10 s). Nothing here must survive a crash: the
//! desired state comes from the control plane and the observed state from the driver.

use crate::adapter::Adapters;
use crate::client::{ClientError, HttpApi};
use crate::driver::ProcessDriver;
use crate::probe::probe;
use hyper_util::client::legacy::connect::Connect;
use novacula_core::reconcile::{diff, plan, Action};
use novacula_core::validate::valid_name;
use novacula_core::wire::{SyncExecutorRequest, UpgradeSpec};
use novacula_core::{Channel, DesiredNode, DesiredState, ExecutorKind, ObservedNodeState, ObservedNodeStatus, ObservedProcess, Revision};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

#[derive(Debug, Clone)]
pub struct Intervals {
    pub sync: Duration,
    pub poll_wait: Duration,
    pub reconcile: Duration,
    pub report: Duration,
}

impl Default for Intervals {
    fn default() -> Self {
        Intervals {
            sync: Duration::from_secs(5),
            poll_wait: Duration::from_secs(5),
            reconcile: Duration::from_secs(5),
            report: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub kind: ExecutorKind,
    pub version: String,
    pub channel: Channel,
}

pub struct Executor<D, C> {
    pub id: Identity,
    api: HttpApi<C>,
    driver: D,
    adapters: Adapters,
    intervals: Intervals,
    desired: watch::Sender<Option<Vec<DesiredNode>>>,
    wake_reconcile: Notify,
    wake_report: Notify,
    /// Last revision known fully materialized per node (re-learnt after a restart).
    materialized: Mutex<HashMap<String, Revision>>,
    /// Last apply error per node, reported as the process message.
    errors: Mutex<HashMap<String, String>>,
    upgrade: watch::Sender<Option<UpgradeSpec>>,
    jitter: Jitter,
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
        let _ = getrandom::fill(&mut b);
        Jitter::seeded(u64::from_le_bytes(b))
    }

    pub fn next(&self) -> u64 {
        let mut x = self.0.lock().expect("lock");
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
            tracing::warn!(error = %e, "{what} failed");
            backoff(*failures, jitter.next()).min(interval)
        }
    }
}

impl<D: ProcessDriver, C: Connect + Clone + Send + Sync + 'static> Executor<D, C> {
    pub fn new(id: Identity, api: HttpApi<C>, driver: D, adapters: Adapters, intervals: Intervals) -> Arc<Self> {
        Self::with_jitter(id, api, driver, adapters, intervals, Jitter::from_os())
    }

    pub fn with_jitter(id: Identity, api: HttpApi<C>, driver: D, adapters: Adapters, intervals: Intervals, jitter: Jitter) -> Arc<Self> {
        Arc::new(Executor {
            id,
            api,
            driver,
            adapters,
            intervals,
            desired: watch::channel(None).0,
            wake_reconcile: Notify::new(),
            wake_report: Notify::new(),
            materialized: Mutex::new(HashMap::new()),
            errors: Mutex::new(HashMap::new()),
            upgrade: watch::channel(None).0,
            jitter,
        })
    }

    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// The upgrade the control plane asks for, if any.
    pub fn upgrades(&self) -> watch::Receiver<Option<UpgradeSpec>> {
        self.upgrade.subscribe()
    }

    /// Run all loops until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let tasks = [
            tokio::spawn(self.clone().heartbeat_loop()),
            tokio::spawn(self.clone().poll_loop()),
            tokio::spawn(self.clone().reconcile_loop()),
            tokio::spawn(self.clone().report_loop()),
        ];
        shutdown.await;
        for t in tasks {
            t.abort();
        }
    }

    pub async fn sync_once(&self) -> Result<(), ClientError> {
        let req = SyncExecutorRequest {
            name: self.id.name.clone(),
            kind: self.id.kind,
            version: self.id.version.clone(),
            channel: self.id.channel,
            capabilities: self.adapters.capabilities(),
        };
        let resp = self.api.sync_executor(&req).await?;
        if resp.compat != novacula_core::CompatStatus::InWindow {
            tracing::warn!(compat = resp.compat.as_str(), server = %resp.server_version, "executor version outside the compatibility window; upgrade it");
        }
        self.upgrade.send_if_modified(|cur| {
            let changed = *cur != resp.upgrade;
            *cur = resp.upgrade.clone();
            changed
        });
        Ok(())
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
        loop {
            match self.api.poll_specs(&self.id.name, cursor, self.intervals.poll_wait).await {
                Ok(resp) => {
                    failures = 0;
                    if resp.nodes.iter().any(|n| !valid_name(&n.spec.name)) {
                        tracing::error!("control plane sent a node with an invalid name; ignoring this response");
                    } else {
                        let changed = resp.cursor != cursor || self.desired.borrow().is_none();
                        cursor = resp.cursor;
                        if changed {
                            tracing::debug!(cursor, nodes = resp.nodes.len(), "specs updated");
                            self.desired.send_replace(Some(resp.nodes));
                            self.wake_reconcile.notify_one();
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

    /// One pass over every desired node; returns how many actions were applied.
    pub async fn reconcile_once(&self) -> usize {
        let Some(nodes) = self.desired.borrow().clone() else { return 0 };
        let mut applied = 0;
        for d in &nodes {
            applied += self.reconcile_node(d).await;
        }
        if applied > 0 {
            self.wake_report.notify_one();
        }
        applied
    }

    async fn reconcile_node(&self, d: &DesiredNode) -> usize {
        let name = &d.spec.name;
        let local = match self.driver.observe(name).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(node = %name, error = %e, "cannot observe node");
                return 0;
            }
        };
        let actions = diff(Some(d), &local);
        let mut applied = 0;
        for a in &actions {
            tracing::info!(node = %name, revision = %d.revision, action = ?a, "apply");
            if let Err(e) = self.apply(d, a).await {
                tracing::warn!(node = %name, action = ?a, error = %e, "action failed; will retry");
                self.errors.lock().expect("lock").insert(name.clone(), e);
                return applied;
            }
            applied += 1;
        }
        self.errors.lock().expect("lock").remove(name);
        self.materialized.lock().expect("lock").insert(name.clone(), d.revision);
        applied
    }

    async fn apply(&self, d: &DesiredNode, a: &Action) -> Result<(), String> {
        let node = d.spec.name.as_str();
        let paths = self.driver.paths(node);
        let r = match a {
            Action::InstallBinary { unit, client, version } => {
                self.driver.install(node, unit, client, version, self.adapters.binary(&d.spec, unit, &paths)).await
            }
            Action::WriteConfig { unit, fingerprint } => {
                let def = self.adapters.render(&d.spec, unit, &paths)?;
                self.driver.write_unit(node, unit, &def, *fingerprint).await
            }
            Action::Start { unit, fingerprint, generation } => self.driver.start(node, unit, *fingerprint, *generation).await,
            Action::Restart { unit, fingerprint, generation } => self.driver.restart(node, unit, *fingerprint, *generation).await,
            Action::Stop { unit } => self.driver.stop(node, unit).await,
            Action::RemoveUnit { unit } => self.driver.remove_unit(node, unit).await,
            Action::RemoveData => self.driver.remove_data(node).await,
        };
        r.map_err(|e| e.to_string())
    }

    /// Observe and probe every desired node, and report.
    pub async fn report_once(&self) -> Result<(), ClientError> {
        let Some(nodes) = self.desired.borrow().clone() else { return Ok(()) };
        let mut states = Vec::new();
        for d in &nodes {
            match self.observe_node(d).await {
                Ok(s) => states.push(s),
                Err(e) => tracing::warn!(node = %d.spec.name, error = %e, "cannot observe node"),
            }
        }
        if !states.is_empty() {
            self.api.report(&self.id.name, states).await?;
        }
        Ok(())
    }

    async fn observe_node(&self, d: &DesiredNode) -> Result<ObservedNodeState, String> {
        let name = &d.spec.name;
        let local = self.driver.observe(name).await.map_err(|e| e.to_string())?;
        let converged = diff(Some(d), &local).is_empty();
        let revision = {
            let mut m = self.materialized.lock().expect("lock");
            if converged {
                m.insert(name.clone(), d.revision);
            }
            m.get(name).copied().unwrap_or_default()
        };
        if d.deleted {
            return Ok(ObservedNodeState { node: name.clone(), revision, processes: vec![], removed: local.is_empty() && converged });
        }
        let error = self.errors.lock().expect("lock").get(name).cloned();
        let paths = self.driver.paths(name);
        let mut processes = Vec::new();
        for u in plan(&d.spec) {
            let running = local.process(&u.unit).and_then(|p| p.running).is_some();
            let (status, sync) = if running {
                match self.adapters.render(&d.spec, &u.unit, &paths) {
                    Ok(def) => probe(&def.probe).await,
                    Err(_) => (ObservedNodeStatus::Error, None),
                }
            } else if error.is_some() && d.spec.desired_state == DesiredState::Running {
                (ObservedNodeStatus::Error, None)
            } else if let Some(why) = self.driver.failed(name, &u.unit).await {
                processes.push(ObservedProcess { name: u.unit, status: ObservedNodeStatus::Error, sync: None, message: Some(why) });
                continue;
            } else {
                (ObservedNodeStatus::Stopped, None)
            };
            processes.push(ObservedProcess { name: u.unit, status, sync, message: error.clone() });
        }
        Ok(ObservedNodeState { node: name.clone(), revision, processes, removed: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
