//! Fake executors: the agent's real loops and core's reconcile diff, over an
//! in-memory process table (`FakeDriver`) whose behaviour is core's reference
//! model (`LocalNode::apply`), with faults that tests can inject.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test harness: failing loudly is its job")]

use novacula_agent::driver::UnitDef;
use novacula_agent::driver::{DriverError, ProcessDriver, Result};
use novacula_core::fingerprint::Fingerprint;
use novacula_core::reconcile::{Action, LocalNode};
use novacula_executor::adapter::NodePaths;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Faults to inject into a fake host.
#[derive(Debug, Default)]
pub struct Faults {
    /// Fail the next `n` starts/restarts of any unit.
    pub failing_starts: u32,
    /// Fail the next `n` client installs (a download that breaks off, a full disk).
    pub failing_installs: u32,
    /// Each start/restart takes this long (simulated).
    pub start_delay: std::time::Duration,
    /// Units whose health check fails: `(node, unit)` -> reason.
    pub unhealthy: HashMap<(String, String), String>,
}

#[derive(Debug, Default)]
struct Table {
    nodes: BTreeMap<String, LocalNode>,
    faults: Faults,
    /// (node, unit, generation) -> how many times a process was (re)started into it.
    launches: HashMap<(String, String, u64), u32>,
    /// (node, unit, generation) -> how many restarts moved a running process
    /// into that generation from an older one: a restart request is carried
    /// out once, never twice (restarts for a new configuration keep the
    /// generation and are not counted).
    restarts: HashMap<(String, String, u64), u32>,
}

/// An in-memory host. Clones share the table, so it survives an executor "crash".
#[derive(Debug, Clone, Default)]
pub struct FakeDriver(Arc<Mutex<Table>>);

impl FakeDriver {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Table) -> R) -> R {
        f(&mut self.0.lock().expect("fake table lock"))
    }

    fn apply(&self, node: &str, a: &Action) {
        self.with(|t| t.nodes.entry(node.to_string()).or_default().apply(a));
    }

    /// A process dies on its own (crash, OOM).
    pub fn kill(&self, node: &str, unit: &str) {
        self.apply(node, &Action::Stop { unit: unit.to_string() });
    }

    pub fn fail_next_starts(&self, n: u32) {
        self.with(|t| t.faults.failing_starts = n);
    }

    pub fn fail_next_installs(&self, n: u32) {
        self.with(|t| t.faults.failing_installs = n);
    }

    pub fn slow_starts(&self, delay: std::time::Duration) {
        self.with(|t| t.faults.start_delay = delay);
    }

    /// Make a unit's health check fail (its process dies and reports why) or pass again.
    pub fn set_unhealthy(&self, node: &str, unit: &str, reason: Option<&str>) {
        let key = (node.to_string(), unit.to_string());
        self.with(|t| match reason {
            Some(r) => {
                t.faults.unhealthy.insert(key, r.to_string());
            }
            None => {
                t.faults.unhealthy.remove(&key);
            }
        });
        if reason.is_some() {
            self.kill(node, unit);
        }
    }

    pub fn node(&self, node: &str) -> LocalNode {
        self.with(|t| t.nodes.get(node).cloned().unwrap_or_default())
    }

    pub fn running_processes(&self) -> usize {
        self.with(|t| t.nodes.values().flat_map(|n| &n.processes).filter(|p| p.running.is_some()).count())
    }

    /// Most launches into one (node, unit, generation); more than one for a
    /// pure restart bump would mean a doubled lifecycle action.
    pub fn launches(&self) -> HashMap<(String, String, u64), u32> {
        self.with(|t| t.launches.clone())
    }

    /// Restarts into each (node, unit, generation); more than one is a doubled restart.
    pub fn restarts(&self) -> HashMap<(String, String, u64), u32> {
        self.with(|t| t.restarts.clone())
    }

    async fn launch(&self, node: &str, a: Action, unit: &str, generation: u64) -> Result<()> {
        let delay = self.with(|t| t.faults.start_delay);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.with(|t| {
            if let Some(why) = t.faults.unhealthy.get(&(node.to_string(), unit.to_string())) {
                return Err(DriverError::Other(format!("health check of {node}/{unit} failed: {why}")));
            }
            if t.faults.failing_starts > 0 {
                t.faults.failing_starts -= 1;
                return Err(DriverError::Other(format!("injected start failure of {node}/{unit}")));
            }
            *t.launches.entry((node.to_string(), unit.to_string(), generation)).or_default() += 1;
            let running = t.nodes.get(node).and_then(|n| n.process(unit)).and_then(|p| p.running.as_ref()).map(|r| (r.generation, r.fingerprint));
            // a restart into a newer generation, or one that changes nothing at all (a doubled restart)
            let counted =
                |&(g, f): &(u64, Fingerprint)| g < generation || matches!(a, Action::Restart { fingerprint, .. } if g == generation && f == fingerprint);
            if matches!(a, Action::Restart { .. }) && running.is_some_and(|r| counted(&r)) {
                *t.restarts.entry((node.to_string(), unit.to_string(), generation)).or_default() += 1;
            }
            t.nodes.entry(node.to_string()).or_default().apply(&a);
            Ok(())
        })
    }
}

impl ProcessDriver for FakeDriver {
    fn paths(&self, node: &str) -> NodePaths {
        NodePaths::host(PathBuf::from("/fake/nodes").join(node))
    }

    fn bin_dir(&self) -> PathBuf {
        PathBuf::from("/fake/bin")
    }

    async fn observe(&self, node: &str) -> Result<LocalNode> {
        Ok(self.node(node))
    }

    async fn install(&self, node: &str, unit: &str, client: &str, version: &str, _binary: Option<PathBuf>) -> Result<()> {
        let failing = self.with(|t| {
            let fail = t.faults.failing_installs > 0;
            t.faults.failing_installs = t.faults.failing_installs.saturating_sub(1);
            fail
        });
        if failing {
            return Err(DriverError::Other(format!("injected install failure of {client} {version} for {node}/{unit}")));
        }
        self.apply(node, &Action::InstallBinary { unit: unit.into(), client: client.into(), version: version.into() });
        Ok(())
    }

    async fn write_unit(&self, node: &str, unit: &str, _def: &UnitDef, fingerprint: Fingerprint) -> Result<()> {
        self.apply(node, &Action::WriteConfig { unit: unit.into(), fingerprint });
        Ok(())
    }

    async fn start(&self, node: &str, unit: &str, fingerprint: Fingerprint, generation: u64) -> Result<()> {
        self.launch(node, Action::Start { unit: unit.into(), fingerprint, generation }, unit, generation).await
    }

    async fn restart(&self, node: &str, unit: &str, fingerprint: Fingerprint, generation: u64) -> Result<()> {
        self.launch(node, Action::Restart { unit: unit.into(), fingerprint, generation }, unit, generation).await
    }

    async fn stop(&self, node: &str, unit: &str) -> Result<()> {
        self.apply(node, &Action::Stop { unit: unit.into() });
        Ok(())
    }

    async fn remove_unit(&self, node: &str, unit: &str) -> Result<()> {
        self.apply(node, &Action::RemoveUnit { unit: unit.into() });
        Ok(())
    }

    async fn remove_data(&self, node: &str) -> Result<()> {
        self.apply(node, &Action::RemoveData);
        Ok(())
    }

    async fn failed(&self, node: &str, unit: &str) -> Option<String> {
        self.with(|t| t.faults.unhealthy.get(&(node.to_string(), unit.to_string())).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn follows_the_reference_model_and_injects_failures() {
        let d = FakeDriver::new();
        d.write_unit(
            "n",
            "main",
            &UnitDef { command: vec![], env: Default::default(), secret_env: Default::default(), files: vec![], stop_grace_secs: 30 },
            Fingerprint(1),
        )
        .await
        .unwrap();
        d.fail_next_starts(1);
        assert!(d.start("n", "main", Fingerprint(1), 0).await.is_err());
        d.start("n", "main", Fingerprint(1), 0).await.unwrap();
        assert_eq!(d.running_processes(), 1);
        d.kill("n", "main");
        assert_eq!(d.running_processes(), 0);
        assert_eq!(d.launches()[&("n".to_string(), "main".to_string(), 0)], 1);
        d.set_unhealthy("n", "main", Some("rpc down"));
        assert!(d.start("n", "main", Fingerprint(1), 0).await.unwrap_err().to_string().contains("rpc down"));
        assert_eq!(d.failed("n", "main").await.as_deref(), Some("rpc down"));
        d.set_unhealthy("n", "main", None);
        d.slow_starts(std::time::Duration::from_millis(20));
        d.start("n", "main", Fingerprint(1), 0).await.unwrap();
        assert_eq!(d.running_processes(), 1);
        // starts (after a crash) are not restarts
        assert!(d.restarts().is_empty());
        d.restart("n", "main", Fingerprint(1), 1).await.unwrap();
        assert_eq!(d.restarts()[&("n".to_string(), "main".to_string(), 1)], 1);
        // a restart for a new configuration keeps the generation: not a second restart into it
        d.restart("n", "main", Fingerprint(2), 1).await.unwrap();
        assert_eq!(d.restarts()[&("n".to_string(), "main".to_string(), 1)], 1);
        // but a restart that changes nothing is a doubled one
        d.restart("n", "main", Fingerprint(2), 1).await.unwrap();
        assert_eq!(d.restarts()[&("n".to_string(), "main".to_string(), 1)], 2);
        // a stale start back into generation 0, then generation 1's restart again: counted again
        d.start("n", "main", Fingerprint(2), 0).await.unwrap();
        d.restart("n", "main", Fingerprint(2), 1).await.unwrap();
        assert_eq!(d.restarts()[&("n".to_string(), "main".to_string(), 1)], 3);
    }
}
