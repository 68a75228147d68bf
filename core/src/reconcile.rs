//! Reconcile diff: desired spec vs. what is materialized locally -> ordered actions.
//!
//! The executor keeps no state of its own: everything on the right-hand side is
//! read back from the backend (unit files, running processes, data directory),
//! including the fingerprint and restart generation each running process was
//! started with. That makes the diff restart-safe: a restart whose process came
//! back under the new generation is never repeated, one that did not happen is.

use crate::fingerprint::{fingerprint, Fingerprint};
use crate::spec::{DesiredNode, DesiredState, NodeSpec};
use serde::{Deserialize, Serialize};

/// A process the spec asks for: a client role or a sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitPlan {
    pub unit: String,
    /// `(client, version)` for client processes; sidecars bring their own image.
    pub binary: Option<(String, String)>,
    pub fingerprint: Fingerprint,
}

/// Everything in the spec that shapes one process's config; a change means rewrite + restart.
#[derive(Serialize)]
struct UnitInputs<'a, T: Serialize> {
    name: &'a str,
    chain: &'a str,
    network: &'a str,
    node_type: &'a str,
    storage: &'a [crate::spec::StorageVolume],
    unit: &'a T,
}

/// The processes of a spec, clients first in spec order, then sidecars.
pub fn plan(spec: &NodeSpec) -> Vec<UnitPlan> {
    let base = |u: &dyn erased::Ser| -> Fingerprint { u.fp(spec) };
    let mut out: Vec<UnitPlan> =
        spec.clients.iter().map(|c| UnitPlan { unit: c.role.clone(), binary: Some((c.client.clone(), c.version.clone())), fingerprint: base(c) }).collect();
    out.extend(spec.sidecars.iter().map(|s| UnitPlan { unit: s.name.clone(), binary: None, fingerprint: base(s) }));
    out
}

mod erased {
    use super::*;
    /// Lets `plan` fingerprint clients and sidecars through one code path.
    pub trait Ser {
        fn fp(&self, spec: &NodeSpec) -> Fingerprint;
    }
    impl<T: Serialize> Ser for T {
        fn fp(&self, spec: &NodeSpec) -> Fingerprint {
            fingerprint(&UnitInputs {
                name: &spec.name,
                chain: &spec.chain,
                network: &spec.network,
                node_type: spec.node_type.as_str(),
                storage: &spec.storage,
                unit: self,
            })
        }
    }
}

/// How a running process was started, as read back from the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningProcess {
    pub fingerprint: Fingerprint,
    pub generation: u64,
}

/// One materialized process of a node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LocalProcess {
    pub unit: String,
    /// Installed `(client, version)`, if the backend installs binaries.
    pub installed: Option<(String, String)>,
    /// Fingerprint of the config/unit definition on disk; `None` when no unit exists.
    pub config: Option<Fingerprint>,
    /// `None` when not running.
    pub running: Option<RunningProcess>,
}

/// What exists locally for one node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LocalNode {
    pub processes: Vec<LocalProcess>,
    pub data_present: bool,
}

impl LocalNode {
    pub fn process(&self, unit: &str) -> Option<&LocalProcess> {
        self.processes.iter().find(|p| p.unit == unit)
    }

    fn process_mut(&mut self, unit: &str) -> &mut LocalProcess {
        if let Some(i) = self.processes.iter().position(|p| p.unit == unit) {
            return &mut self.processes[i];
        }
        let i = self.processes.len();
        self.processes.push(LocalProcess { unit: unit.to_string(), ..Default::default() });
        &mut self.processes[i]
    }

    pub fn is_empty(&self) -> bool {
        self.processes.is_empty() && !self.data_present
    }

    /// The effect a successful action has on local state. Backends must behave
    /// like this; fakes and property tests use it as the reference model.
    pub fn apply(&mut self, action: &Action) {
        match action {
            Action::InstallBinary { unit, client, version } => {
                self.process_mut(unit).installed = Some((client.clone(), version.clone()));
            }
            Action::WriteConfig { unit, fingerprint } => {
                self.data_present = true;
                self.process_mut(unit).config = Some(*fingerprint);
            }
            Action::Start { unit, fingerprint, generation } | Action::Restart { unit, fingerprint, generation } => {
                self.process_mut(unit).running = Some(RunningProcess { fingerprint: *fingerprint, generation: *generation });
            }
            Action::Stop { unit } => {
                if let Some(p) = self.processes.iter_mut().find(|p| &p.unit == unit) {
                    p.running = None;
                }
            }
            Action::RemoveUnit { unit } => self.processes.retain(|p| &p.unit != unit),
            Action::RemoveData => self.data_present = false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    InstallBinary {
        unit: String,
        client: String,
        version: String,
    },
    /// Render config and the unit definition (creates the unit if absent).
    WriteConfig {
        unit: String,
        fingerprint: Fingerprint,
    },
    Start {
        unit: String,
        fingerprint: Fingerprint,
        generation: u64,
    },
    Restart {
        unit: String,
        fingerprint: Fingerprint,
        generation: u64,
    },
    Stop {
        unit: String,
    },
    /// Tear the unit definition down.
    RemoveUnit {
        unit: String,
    },
    /// Remove the node's data directory (the operator keeps PVCs).
    RemoveData,
}

impl Action {
    pub fn unit(&self) -> Option<&str> {
        match self {
            Action::InstallBinary { unit, .. }
            | Action::WriteConfig { unit, .. }
            | Action::Start { unit, .. }
            | Action::Restart { unit, .. }
            | Action::Stop { unit }
            | Action::RemoveUnit { unit } => Some(unit),
            Action::RemoveData => None,
        }
    }
}

/// Ordered actions that take `local` to `desired`. `None` or a deleted node means tear down.
///
/// Order: stop and remove processes the spec no longer has, then per process
/// install -> write config -> start/restart/stop. Pure and total: any input yields
/// a list, and applying the list with [`LocalNode::apply`] yields an empty diff.
pub fn diff(desired: Option<&DesiredNode>, local: &LocalNode) -> Vec<Action> {
    let mut actions = Vec::new();
    let spec = match desired {
        Some(d) if !d.deleted => &d.spec,
        _ => {
            teardown(local.processes.iter(), &mut actions);
            if local.data_present {
                actions.push(Action::RemoveData);
            }
            return actions;
        }
    };
    let plans = plan(spec);
    teardown(local.processes.iter().filter(|p| !plans.iter().any(|u| u.unit == p.unit)), &mut actions);

    for u in &plans {
        let current = local.process(&u.unit);
        if let Some((client, version)) = &u.binary {
            if current.and_then(|p| p.installed.as_ref()) != Some(&(client.clone(), version.clone())) {
                actions.push(Action::InstallBinary { unit: u.unit.clone(), client: client.clone(), version: version.clone() });
            }
        }
        if current.and_then(|p| p.config) != Some(u.fingerprint) {
            actions.push(Action::WriteConfig { unit: u.unit.clone(), fingerprint: u.fingerprint });
        }
        let running = current.and_then(|p| p.running);
        match (spec.desired_state, running) {
            (DesiredState::Running, None) => {
                actions.push(Action::Start { unit: u.unit.clone(), fingerprint: u.fingerprint, generation: spec.restart_generation });
            }
            (DesiredState::Running, Some(r)) if r.fingerprint != u.fingerprint || r.generation != spec.restart_generation => {
                actions.push(Action::Restart { unit: u.unit.clone(), fingerprint: u.fingerprint, generation: spec.restart_generation });
            }
            // A restart bump that arrives with (or while) stopped is consumed by the next start.
            (DesiredState::Stopped, Some(_)) => actions.push(Action::Stop { unit: u.unit.clone() }),
            _ => {}
        }
    }
    actions
}

fn teardown<'a>(procs: impl Iterator<Item = &'a LocalProcess> + Clone, actions: &mut Vec<Action>) {
    for p in procs.clone().filter(|p| p.running.is_some()) {
        actions.push(Action::Stop { unit: p.unit.clone() });
    }
    for p in procs {
        actions.push(Action::RemoveUnit { unit: p.unit.clone() });
    }
}

/// Apply `actions` to a copy of `local` through the reference model.
pub fn simulate(local: &LocalNode, actions: &[Action]) -> LocalNode {
    let mut next = local.clone();
    for a in actions {
        next.apply(a);
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::eth_spec;
    use crate::spec::{Revision, Sidecar};

    fn desired(spec: NodeSpec, rev: u64) -> DesiredNode {
        DesiredNode::new(Revision(rev), spec, false)
    }

    fn converged(d: &DesiredNode) -> LocalNode {
        simulate(&LocalNode::default(), &diff(Some(d), &LocalNode::default()))
    }

    fn kinds(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| {
                let name = match a {
                    Action::InstallBinary { .. } => "install",
                    Action::WriteConfig { .. } => "config",
                    Action::Start { .. } => "start",
                    Action::Restart { .. } => "restart",
                    Action::Stop { .. } => "stop",
                    Action::RemoveUnit { .. } => "remove-unit",
                    Action::RemoveData => return "remove-data".to_string(),
                };
                format!("{name}:{}", a.unit().unwrap())
            })
            .collect()
    }

    #[test]
    fn fresh_node_installs_configures_and_starts_in_order() {
        let d = desired(eth_spec("n"), 1);
        let acts = diff(Some(&d), &LocalNode::default());
        assert_eq!(kinds(&acts), ["install:execution", "config:execution", "start:execution", "install:consensus", "config:consensus", "start:consensus"]);
    }

    #[test]
    fn converged_node_needs_nothing() {
        let d = desired(eth_spec("n"), 1);
        assert!(diff(Some(&d), &converged(&d)).is_empty());
    }

    #[test]
    fn stop_stops_each_running_process() {
        let mut d = desired(eth_spec("n"), 1);
        let local = converged(&d);
        d.spec.desired_state = DesiredState::Stopped;
        assert_eq!(kinds(&diff(Some(&d), &local)), ["stop:execution", "stop:consensus"]);
    }

    #[test]
    fn restart_generation_bump_restarts_once() {
        let mut d = desired(eth_spec("n"), 1);
        let local = converged(&d);
        d.spec.restart_generation = 1;
        let acts = diff(Some(&d), &local);
        assert_eq!(kinds(&acts), ["restart:execution", "restart:consensus"]);
        assert!(diff(Some(&d), &simulate(&local, &acts)).is_empty());
    }

    #[test]
    fn restart_bump_with_stop_in_same_revision_only_stops() {
        let mut d = desired(eth_spec("n"), 1);
        let local = converged(&d);
        d.spec.restart_generation = 1;
        d.spec.desired_state = DesiredState::Stopped;
        let acts = diff(Some(&d), &local);
        assert_eq!(kinds(&acts), ["stop:execution", "stop:consensus"]);
        // The later start runs under the new generation: no extra restart afterwards.
        let stopped = simulate(&local, &acts);
        d.spec.desired_state = DesiredState::Running;
        let acts = diff(Some(&d), &stopped);
        assert_eq!(kinds(&acts), ["start:execution", "start:consensus"]);
        assert!(diff(Some(&d), &simulate(&stopped, &acts)).is_empty());
    }

    #[test]
    fn restart_bump_while_stopped_does_nothing() {
        let mut d = desired(eth_spec("n"), 1);
        d.spec.desired_state = DesiredState::Stopped;
        let local = converged(&d);
        assert!(local.processes.iter().all(|p| p.running.is_none()));
        d.spec.restart_generation = 7;
        assert!(diff(Some(&d), &local).is_empty());
    }

    #[test]
    fn config_change_rewrites_and_restarts_only_that_process() {
        let mut d = desired(eth_spec("n"), 1);
        let local = converged(&d);
        d.spec.clients[1].config_overrides.insert("target-peers".into(), "50".into());
        assert_eq!(kinds(&diff(Some(&d), &local)), ["config:consensus", "restart:consensus"]);
    }

    #[test]
    fn version_upgrade_installs_rewrites_restarts() {
        let mut d = desired(eth_spec("n"), 1);
        let local = converged(&d);
        d.spec.clients[0].version = "1.14.12".into();
        assert_eq!(kinds(&diff(Some(&d), &local)), ["install:execution", "config:execution", "restart:execution"]);
    }

    #[test]
    fn config_written_but_not_restarted_is_restarted_after_crash() {
        let mut d = desired(eth_spec("n"), 1);
        let mut local = converged(&d);
        d.spec.clients[0].config_overrides.insert("cache".into(), "4096".into());
        let acts = diff(Some(&d), &local);
        local.apply(&acts[0]); // crash right after writing the config
        assert_eq!(kinds(&diff(Some(&d), &local)), ["restart:execution"]);
    }

    #[test]
    fn delete_running_node_stops_then_removes_everything() {
        let mut d = desired(eth_spec("n"), 1);
        let local = converged(&d);
        d.deleted = true;
        assert_eq!(kinds(&diff(Some(&d), &local)), ["stop:execution", "stop:consensus", "remove-unit:execution", "remove-unit:consensus", "remove-data"]);
        assert_eq!(diff(None, &local), diff(Some(&d), &local));
    }

    #[test]
    fn delete_while_stopped_skips_stop() {
        let mut d = desired(eth_spec("n"), 1);
        d.spec.desired_state = DesiredState::Stopped;
        let local = converged(&d);
        d.deleted = true;
        let acts = diff(Some(&d), &local);
        assert_eq!(kinds(&acts), ["remove-unit:execution", "remove-unit:consensus", "remove-data"]);
        assert!(simulate(&local, &acts).is_empty());
    }

    #[test]
    fn delete_of_nothing_is_empty() {
        let d = DesiredNode { deleted: true, ..desired(eth_spec("n"), 3) };
        assert!(diff(Some(&d), &LocalNode::default()).is_empty());
    }

    #[test]
    fn removed_sidecar_is_torn_down_first() {
        let mut d = desired(eth_spec("n"), 1);
        d.spec.sidecars.push(Sidecar { name: "exporter".into(), image: "exporter:1".into(), command: vec![], env: Default::default(), volumes: vec![] });
        let local = converged(&d);
        assert!(local.process("exporter").is_some());
        d.spec.sidecars.clear();
        assert_eq!(kinds(&diff(Some(&d), &local)), ["stop:exporter", "remove-unit:exporter"]);
    }

    #[test]
    fn crashed_process_is_started_again() {
        let d = desired(eth_spec("n"), 1);
        let mut local = converged(&d);
        local.processes[0].running = None;
        assert_eq!(kinds(&diff(Some(&d), &local)), ["start:execution"]);
    }

    #[test]
    fn plan_fingerprints_are_per_process() {
        let s = eth_spec("n");
        let p = plan(&s);
        assert_eq!(p.len(), 2);
        assert_ne!(p[0].fingerprint, p[1].fingerprint);
        let mut s2 = s.clone();
        s2.desired_state = DesiredState::Stopped;
        s2.restart_generation = 9;
        assert_eq!(plan(&s2), p, "lifecycle fields must not change config fingerprints");
    }
}
