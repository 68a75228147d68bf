//! Random sequences of user commands and executor progress (including crashes
//! part-way through a reconcile), checked against the invariants of the core.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use novacula_core::lifecycle::{apply_command, create, LifecycleAction, LifecycleError, NodeCommand, NodeRecord};
use novacula_core::reconcile::{diff, Action, LocalNode};
use novacula_core::spec::{ClientSpec, NodeType, Resources};
use novacula_core::{
    derived_node_phase, DesiredNode, DesiredState, NodePhase, NodeSpec, ObservedNodeState, ObservedNodeStatus, ObservedProcess, PhaseInput, Revision,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Step {
    Edit(u8),
    Upgrade(u8),
    Start,
    Stop,
    Restart,
    Delete,
    /// The executor applies this many pending actions, then "crashes" (state is
    /// only what is materialized) and the next step resumes from a fresh diff.
    Reconcile(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        any::<u8>().prop_map(Step::Edit),
        (0u8..4).prop_map(Step::Upgrade),
        Just(Step::Start),
        Just(Step::Stop),
        Just(Step::Restart),
        Just(Step::Delete),
        (0usize..8).prop_map(Step::Reconcile),
    ]
}

fn spec() -> NodeSpec {
    let c = |role: &str, client: &str| ClientSpec {
        role: role.into(),
        client: client.into(),
        version: "1.0.0".into(),
        image: None,
        config_overrides: BTreeMap::new(),
        resources: Resources::default(),
        ports: Default::default(),
    };
    NodeSpec {
        name: "n".into(),
        chain: "ethereum".into(),
        network: "sepolia".into(),
        node_type: NodeType::Full,
        clients: vec![c("execution", "geth"), c("consensus", "lighthouse")],
        storage: vec![],
        sidecars: vec![],
        desired_state: DesiredState::Running,
        restart_generation: 0,
        p2p_exposure: Default::default(),
    }
}

fn desired(r: &NodeRecord) -> DesiredNode {
    DesiredNode::new(r.revision, r.spec.clone(), r.deleted)
}

/// What an executor reports: the desired revision once converged, else the last one it had.
fn observed(d: &DesiredNode, local: &LocalNode, last: Revision) -> ObservedNodeState {
    let converged = diff(Some(d), local).is_empty();
    let processes = local
        .processes
        .iter()
        .map(|p| ObservedProcess {
            name: p.unit.clone(),
            status: if p.running.is_some() { ObservedNodeStatus::Running } else { ObservedNodeStatus::Stopped },
            sync: None,
            message: None,
        })
        .collect();
    ObservedNodeState {
        node: d.spec.name.clone(),
        revision: if converged { d.revision } else { last },
        processes,
        removed: d.deleted && local.is_empty(),
        disk: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn spec_transition_invariants(steps in prop::collection::vec(step(), 1..40)) {
        let mut rec = create(spec());
        let mut local = LocalNode::default();
        let mut reported = Revision(0);
        // Last restart per unit: (fingerprint, generation, revision it served).
        let mut last_restart: BTreeMap<String, (u64, u64, Revision)> = BTreeMap::new();

        for s in steps {
            let cmd = match &s {
                Step::Edit(v) => {
                    let mut sp = rec.spec.clone();
                    sp.clients[0].config_overrides.insert("cache".into(), v.to_string());
                    Some(NodeCommand::Edit(sp))
                }
                Step::Upgrade(v) => Some(NodeCommand::UpgradeClient { role: "consensus".into(), version: format!("1.{v}.0") }),
                Step::Start => Some(NodeCommand::Lifecycle(LifecycleAction::Start)),
                Step::Stop => Some(NodeCommand::Lifecycle(LifecycleAction::Stop)),
                Step::Restart => Some(NodeCommand::Lifecycle(LifecycleAction::Restart)),
                Step::Delete => Some(NodeCommand::Delete),
                Step::Reconcile(_) => None,
            };
            if let Some(cmd) = cmd {
                match apply_command(&rec, &cmd) {
                    Ok(Some(next)) => {
                        prop_assert_eq!(next.revision, rec.revision.next(), "every write bumps the revision by one");
                        prop_assert!(next.spec.restart_generation >= rec.spec.restart_generation);
                        rec = next;
                    }
                    Ok(None) => {}
                    Err(LifecycleError::Deleted) => prop_assert!(rec.deleted, "only deleted nodes refuse as deleted"),
                    Err(LifecycleError::RestartWhileStopped) => prop_assert_eq!(rec.spec.desired_state, DesiredState::Stopped),
                    Err(e) => prop_assert!(false, "unexpected error {e}"),
                }
                if rec.deleted {
                    prop_assert_eq!(apply_command(&rec, &NodeCommand::Lifecycle(LifecycleAction::Start)), Err(LifecycleError::Deleted));
                }
            }
            let d = desired(&rec);
            if let Step::Reconcile(k) = s {
                let actions = diff(Some(&d), &local);
                for a in actions.iter().take(k) {
                    if let Action::Restart { unit, fingerprint, generation } = a {
                        let target = (fingerprint.0, *generation, d.revision);
                        // Resuming after a crash must not repeat a restart that already happened.
                        prop_assert_ne!(last_restart.insert(unit.clone(), target), Some(target), "unit {} restarted twice", unit);
                    }
                    local.apply(a);
                }
                // idempotence: applying the full diff leaves nothing to do
                let mut done = local.clone();
                for a in &diff(Some(&d), &local) {
                    done.apply(a);
                }
                prop_assert!(diff(Some(&d), &done).is_empty(), "diff is idempotent");
            }
            let obs = observed(&d, &local, reported);
            prop_assert!(obs.revision <= rec.revision, "observed revision never exceeds desired");
            prop_assert!(obs.revision >= reported, "reported revisions never go back");
            reported = obs.revision;
            let phase = derived_node_phase(&PhaseInput {
                desired_state: rec.spec.desired_state,
                desired_revision: rec.revision,
                observed: Some(&obs),
                deleting: rec.deleted && !obs.removed,
                executor_online: true,
            });
            prop_assert!(NodePhase::ALL.contains(&phase));
            if rec.deleted && !obs.removed {
                prop_assert_eq!(phase, NodePhase::Deleting);
            }
        }
    }

    #[test]
    fn wire_types_round_trip(edit in any::<u16>(), stopped in any::<bool>(), gen in 0u64..1000) {
        let mut s = spec();
        s.clients[1].config_overrides.insert("k".into(), edit.to_string());
        s.restart_generation = gen;
        if stopped { s.desired_state = DesiredState::Stopped; }
        let d = DesiredNode::new(Revision(gen + 1), s, stopped);
        let json = serde_json::to_string(&d).unwrap();
        prop_assert_eq!(serde_json::from_str::<DesiredNode>(&json).unwrap(), d.clone());
        let bytes = postcard::to_allocvec(&d).unwrap();
        prop_assert_eq!(postcard::from_bytes::<DesiredNode>(&bytes).unwrap(), d);
    }
}
