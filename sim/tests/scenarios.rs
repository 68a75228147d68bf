//! Fleet scenarios under turmoil. Each takes a seed (`NOVACULA_SIM_SEED` overrides
//! it) and prints it on failure, so a failing run can be replayed exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use novacula_core::lifecycle::LifecycleAction;
use novacula_core::wire::NodeView;
use novacula_core::{DesiredState, NodePhase};
use novacula_sim::fleet::{admin, all_converged, deploy_all, nodes, post_all, settled, until, until_listed, Call, Fleet};
use std::time::Duration;

// A large fleet is allocation-bound (requests, JSON, redb pages).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn seed(default: u64) -> u64 {
    std::env::var("NOVACULA_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Run a scenario, naming the seed if it fails.
fn run(name: &str, seed: u64, f: impl FnOnce(u64)) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(seed)));
    if let Err(e) = r {
        eprintln!("scenario {name} failed with seed {seed}; replay with NOVACULA_SIM_SEED={seed}");
        std::panic::resume_unwind(e);
    }
}

fn converge_then_wave(mut fleet: Fleet) {
    let (executors, per) = (fleet.executors, fleet.nodes_per_executor);
    // half the fleet is operator-like: the same loops and rules, another kind
    for k in fleet.kinds.iter_mut().skip(1).step_by(2) {
        *k = novacula_core::ExecutorKind::Operator;
    }
    let mut sim = fleet.build();
    sim.client("admin", async move {
        let admin = admin().await;
        let (t, wall) = (turmoil::elapsed(), std::time::Instant::now());
        deploy_all(&admin, executors, per).await;
        eprintln!("{} nodes deployed in {:?} simulated ({:?} wall)", executors * per, turmoil::elapsed() - t, wall.elapsed());
        let t0 = turmoil::elapsed();
        let wall = std::time::Instant::now();
        let listed = Some(executors);
        let ns = until_listed(&admin, listed, "all running", |ns| ns.len() == executors * per && all_converged(ns, NodePhase::Running)).await;
        eprintln!("{} nodes running after {:?} simulated ({:?} wall)", ns.len(), turmoil::elapsed() - t0, wall.elapsed());

        // a wave: restart every other node, stop every fourth
        let mut wave = Vec::new();
        for i in 0..executors {
            for j in 0..per {
                let action = if j % 4 == 3 {
                    LifecycleAction::Stop
                } else if j % 2 == 0 {
                    LifecycleAction::Restart
                } else {
                    continue;
                };
                wave.push(Call::Lifecycle { node: Fleet::node_name(i, j), action });
            }
        }
        let (t1, wall) = (turmoil::elapsed(), std::time::Instant::now());
        post_all(&admin, wave).await;
        eprintln!("wave sent in {:?} simulated ({:?} wall)", turmoil::elapsed() - t1, wall.elapsed());
        let (t2, wall) = (turmoil::elapsed(), std::time::Instant::now());
        let ns = until_listed(&admin, listed, "wave converged", |ns| ns.iter().all(settled)).await;
        eprintln!("wave converged in {:?} simulated ({:?} wall)", turmoil::elapsed() - t2, wall.elapsed());
        assert!(ns.iter().filter(|n| n.spec.restart_generation == 1).count() >= executors);
        assert!(ns.iter().filter(|n| n.spec.desired_state == DesiredState::Stopped).all(|n| n.phase == NodePhase::Stopped));
        eprintln!("simulated time at the end of the scenario: {:?}", turmoil::elapsed());
        Ok(())
    });
    sim.run().expect("simulation");
    // each restart bump was launched exactly once, and nothing runs twice
    for d in &fleet.drivers {
        for ((node, unit, generation), n) in d.launches() {
            if generation > 0 {
                assert_eq!(n, 1, "{node}/{unit} launched {n} times into generation {generation}");
            }
        }
        let expected_running = (0..per).filter(|j| j % 4 != 3).count();
        assert_eq!(d.running_processes(), expected_running);
    }
}

#[test]
fn fleet_converges_then_wave_of_lifecycle_actions() {
    run("fleet_converges_then_wave_of_lifecycle_actions", seed(7), |s| {
        let mut fleet = Fleet::new(100, 10, s);
        fleet.executors_per_host = 10;
        converge_then_wave(fleet);
    });
}

#[test]
fn partition_takes_executors_offline_and_heal_recovers() {
    run("partition_takes_executors_offline_and_heal_recovers", seed(11), |seed| {
        let mut fleet = Fleet::new(4, 2, seed);
        let mut sim = fleet.build();
        sim.client("admin", async move {
            let admin = admin().await;
            deploy_all(&admin, 4, 2).await;
            until(&admin, "all running", |ns| ns.len() == 8 && all_converged(ns, NodePhase::Running)).await;
            turmoil::partition("cp", "exec-0");
            turmoil::partition("cp", "exec-1");
            let cut = |n: &NodeView| n.executor == "exec-0" || n.executor == "exec-1";
            // not before 30 s of silence...
            tokio::time::sleep(Duration::from_secs(20)).await;
            assert!(nodes(&admin).await.iter().all(|n| n.executor_online));
            // ...but after it: offline, liveness drift, node_down; the others are untouched
            let ns = until(&admin, "partitioned nodes down", |ns| ns.iter().filter(|n| cut(n)).all(|n| n.node_down)).await;
            for n in &ns {
                if cut(n) {
                    assert_eq!((n.executor_online, n.drift.liveness, n.phase), (false, true, NodePhase::Error));
                } else {
                    assert_eq!((n.phase, n.node_down), (NodePhase::Running, false), "{n:?}");
                }
            }
            let alerts = admin.alerts().await?;
            assert_eq!(alerts.len(), 4);
            turmoil::repair("cp", "exec-0");
            turmoil::repair("cp", "exec-1");
            until(&admin, "healed", |ns| all_converged(ns, NodePhase::Running) && ns.iter().all(|n| !n.node_down)).await;
            Ok(())
        });
        sim.run().expect("simulation");
        for d in &fleet.drivers {
            assert_eq!(d.running_processes(), 2, "no duplicate or lost process after the partition");
        }
    });
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// The large run, about 20 s in a debug build; `-- --nocapture` prints simulated and
/// wall time. `NOVACULA_SIM_EXECUTORS`, `NOVACULA_SIM_NODES` and
/// `NOVACULA_SIM_PER_HOST` change the fleet (default 1,000 executors x 2 nodes,
/// 20 executors per simulated machine). The 10,000 x 10 figure is in `benches/benches/fleet.rs`.
#[test]
fn large_fleet_of_1000_executors() {
    let (executors, per) = (env_or("NOVACULA_SIM_EXECUTORS", 1000), env_or("NOVACULA_SIM_NODES", 2));
    let wall = std::time::Instant::now();
    run("large_fleet_of_1000_executors", seed(17), |s| {
        let mut fleet = Fleet::new(executors, per, s);
        // Executors share simulated machines, 100 ms steps: turmoil's per-step cost grows with its hosts.
        fleet.executors_per_host = env_or("NOVACULA_SIM_PER_HOST", 20);
        fleet.tick = Duration::from_millis(100);
        converge_then_wave(fleet);
    });
    eprintln!("{executors} executors x {per} nodes: wall time {:?}", wall.elapsed());
}

#[test]
fn process_faults_raise_node_down_and_recover() {
    run("process_faults_raise_node_down_and_recover", seed(19), |seed| {
        let mut fleet = Fleet::new(2, 1, seed);
        let drivers = fleet.drivers.clone();
        drivers[0].slow_starts(Duration::from_secs(3));
        let mut sim = fleet.build();
        let d0 = drivers[0].clone();
        sim.client("admin", async move {
            let admin = admin().await;
            deploy_all(&admin, 2, 1).await;
            until(&admin, "running despite slow starts", |ns| ns.len() == 2 && all_converged(ns, NodePhase::Running)).await;
            // the process exits: the executor starts it again
            d0.kill("n-0-0", "main");
            let key = ("n-0-0".to_string(), "main".to_string(), 0);
            while d0.launches().get(&key) != Some(&2) {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            until(&admin, "restarted after exit", |ns| all_converged(ns, NodePhase::Running)).await;
            // its health check fails: error, node_down, message from the driver
            d0.set_unhealthy("n-0-0", "main", Some("rpc not answering"));
            let ns = until(&admin, "node down", |ns| ns.iter().any(|n| n.name == "n-0-0" && n.node_down)).await;
            let n = ns.iter().find(|n| n.name == "n-0-0").unwrap();
            assert_eq!(n.phase, NodePhase::Error);
            let message = n.observed.as_ref().and_then(|o| o.processes[0].message.as_deref()).unwrap_or_default();
            assert!(message.contains("rpc not answering"), "{n:?}");
            assert!(ns.iter().any(|n| n.name == "n-1-0" && n.phase == NodePhase::Running), "other executors unaffected");
            d0.set_unhealthy("n-0-0", "main", None);
            until(&admin, "recovered", |ns| all_converged(ns, NodePhase::Running) && ns.iter().all(|n| !n.node_down)).await;
            // The executor told the feed what happened to the process, as it happened.
            let mut said = Vec::new();
            for _ in 0..30 {
                let page = admin.events(0, 1000, Some("n-0-0"), Some("runtime.event")).await.expect("events");
                said = page.events.iter().map(|e| (e.level, e.message.clone())).collect::<Vec<_>>();
                if said.iter().any(|(_, m)| m.contains("recovered")) {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            use novacula_core::events::Level;
            assert!(
                said.iter().any(|(l, m)| *l == Level::Error && m.starts_with("node n-0-0: process main failed: ") && m.ends_with("rpc not answering")),
                "{said:?}"
            );
            assert!(said.iter().any(|(l, m)| *l == Level::Info && m.starts_with("node n-0-0: process main recovered")), "{said:?}");
            Ok(())
        });
        sim.run().expect("simulation");
        assert_eq!(drivers[0].launches()[&("n-0-0".to_string(), "main".to_string(), 0)], 3, "started, restarted after exit, restarted after health recovered");
    });
}
