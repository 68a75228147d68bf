//! Crash, restart and version-skew scenarios. The admin client signals a stage;
//! the driver loop below acts on it (bounce a host, change the CP version).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use novacula_core::lifecycle::LifecycleAction;
use novacula_core::wire::NodeView;
use novacula_core::{CompatStatus, NodePhase, Version};
use novacula_sim::fleet::{admin, all_converged, deploy_all, nodes, settled, until, Fleet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn seed(default: u64) -> u64 {
    std::env::var("NOVACULA_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn run(name: &str, seed: u64, f: impl FnOnce(u64)) {
    if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(seed))) {
        eprintln!("scenario {name} failed with seed {seed}; replay with NOVACULA_SIM_SEED={seed}");
        std::panic::resume_unwind(e);
    }
}

async fn act(admin: &novacula_client::HttpApi<novacula_sim::SimConnector>, node: &str, action: LifecycleAction) -> NodeView {
    admin.lifecycle(node, action).await.expect("lifecycle")
}

/// Step the simulation, calling `on_stage` once for each new stage the client signals.
fn drive(sim: &mut turmoil::Sim<'_>, stage: &AtomicU32, mut on_stage: impl FnMut(&mut turmoil::Sim<'_>, u32)) {
    let mut seen = 0;
    while !sim.step().expect("simulation") {
        let now = stage.load(Ordering::SeqCst);
        while seen < now {
            seen += 1;
            on_stage(sim, seen);
        }
    }
}

#[test]
fn executor_crash_mid_reconcile_converges_without_doubled_restarts() {
    run("executor_crash_mid_reconcile_converges_without_doubled_restarts", seed(3), |seed| {
        let mut fleet = Fleet::new(3, 3, seed);
        let mut sim = fleet.build();
        let stage = Arc::new(AtomicU32::new(0));
        let st = stage.clone();
        sim.client("admin", async move {
            let admin = admin().await;
            deploy_all(&admin, 3, 3).await;
            until(&admin, "running", |ns| ns.len() == 9 && all_converged(ns, NodePhase::Running)).await;
            for n in nodes(&admin).await {
                act(&admin, &n.name, LifecycleAction::Restart).await;
            }
            st.store(1, Ordering::SeqCst); // crash every executor now, wherever it is
            tokio::time::sleep(Duration::from_millis(50)).await;
            let ns = until(&admin, "converged after crash", |ns| all_converged(ns, NodePhase::Running)).await;
            assert!(ns.iter().all(|n| n.spec.restart_generation == 1));
            Ok(())
        });
        drive(&mut sim, &stage, |sim, _| {
            for i in 0..3 {
                sim.bounce(Fleet::executor_name(i));
            }
        });
        for d in &fleet.drivers {
            assert_eq!(d.running_processes(), 3, "no duplicate process");
            for ((node, unit, generation), n) in d.launches() {
                assert_eq!(n, 1, "{node}/{unit} launched {n} times into generation {generation}");
            }
        }
    });
}

#[test]
fn control_plane_crash_on_same_redb_file_loses_no_acknowledged_write() {
    run("control_plane_crash_on_same_redb_file_loses_no_acknowledged_write", seed(5), |seed| {
        let dir = tempfile::tempdir().unwrap();
        let mut fleet = Fleet::new(2, 3, seed);
        fleet.db = Some(dir.path().join("cp.redb"));
        let mut sim = fleet.build();
        let stage = Arc::new(AtomicU32::new(0));
        let st = stage.clone();
        sim.client("admin", async move {
            let admin = admin().await;
            deploy_all(&admin, 2, 3).await;
            // acknowledged writes: revision per node as the API confirmed it
            let mut acked = std::collections::BTreeMap::new();
            for (k, n) in nodes(&admin).await.iter().enumerate() {
                let v = act(&admin, &n.name, if k % 2 == 0 { LifecycleAction::Stop } else { LifecycleAction::Restart }).await;
                acked.insert(n.name.clone(), v.revision);
            }
            st.store(1, Ordering::SeqCst); // crash the control plane right after the acks
            tokio::time::sleep(Duration::from_secs(2)).await;
            // the same session token still works: sessions are stored too
            let ns = loop {
                match admin.nodes(None).await {
                    Ok(ns) => break ns,
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            };
            for n in &ns {
                assert_eq!(Some(n.revision), acked.get(&n.name).copied(), "{n:?}");
            }
            until(&admin, "converged after restart", |ns| ns.iter().all(settled)).await;
            Ok(())
        });
        drive(&mut sim, &stage, |sim, _| sim.bounce(novacula_sim::CP_HOST));
    });
}

#[test]
fn cp_major_bump_deprecates_then_drops_old_executors_while_heartbeats_continue() {
    run("cp_major_bump_deprecates_then_drops_old_executors_while_heartbeats_continue", seed(9), |seed| {
        let dir = tempfile::tempdir().unwrap();
        let mut fleet = Fleet::new(2, 1, seed);
        fleet.db = Some(dir.path().join("cp.redb"));
        let config = fleet.config.clone();
        let versions = fleet.versions.clone();
        let mut sim = fleet.build();
        let stage = Arc::new(AtomicU32::new(0));
        let st = stage.clone();
        let compat = |admin: novacula_client::HttpApi<novacula_sim::SimConnector>, want: CompatStatus| async move {
            loop {
                if let Ok(ex) = admin.executors().await {
                    if ex.iter().all(|e| e.compat == want && e.online) {
                        return admin;
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        sim.client("admin", async move {
            let admin = admin().await;
            deploy_all(&admin, 2, 1).await;
            until(&admin, "running", |ns| ns.len() == 2 && all_converged(ns, NodePhase::Running)).await;
            st.store(1, Ordering::SeqCst); // control plane 2.0.0: executors one major behind
            let admin = compat(admin, CompatStatus::Deprecated).await;
            act(&admin, "n-0-0", LifecycleAction::Stop).await;
            until(&admin, "deprecated executor still served", |ns| ns.iter().any(|n| n.name == "n-0-0" && n.phase == NodePhase::Stopped)).await;
            st.store(2, Ordering::SeqCst); // control plane 3.0.0: two majors behind
            let admin = compat(admin, CompatStatus::OutOfSupport).await;
            act(&admin, "n-0-0", LifecycleAction::Start).await;
            tokio::time::sleep(Duration::from_secs(40)).await;
            let n = admin.node("n-0-0").await?;
            assert_eq!(n.drift.revisions_behind, 1, "out-of-support executor must not get specs: {n:?}");
            assert!(n.executor_online, "heartbeats continue");
            st.store(3, Ordering::SeqCst); // upgrade executor 0 to 3.0.0
            until(&admin, "upgraded executor catches up", |ns| {
                ns.iter().any(|n| n.name == "n-0-0" && n.phase == NodePhase::Running && n.drift.revisions_behind == 0)
            })
            .await;
            Ok(())
        });
        drive(&mut sim, &stage, |sim, s| match s {
            1 | 2 => {
                config.lock().unwrap().cp_version = Version::new(u64::from(s) + 1, 0, 0);
                sim.bounce(novacula_sim::CP_HOST);
            }
            _ => {
                versions.lock().unwrap()[0] = "3.0.0".into();
                sim.bounce(Fleet::executor_name(0));
            }
        });
    });
}
