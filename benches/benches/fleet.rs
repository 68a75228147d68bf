//! Simulated fleet convergence: how much simulated time (and wall time) a fleet
//! of fake executors takes from empty to every node running, and then to
//! carry out a wave of lifecycle actions. The last line is the size the
//! control plane must hold: 10,000 executors x 10 nodes (goal: under a minute
//! of wall time in a release build).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use novacula_core::lifecycle::LifecycleAction;
use novacula_core::NodePhase;
use novacula_sim::fleet::{admin, all_converged, deploy_all, post_all, settled, until_listed, Call, Fleet};
use std::time::{Duration, Instant};

// A large fleet is allocation-bound (requests, JSON, redb pages).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // `cargo bench -- --quick` stops at 1,000 executors: the 10,000 fleet takes minutes.
    let quick = std::env::args().any(|a| a == "--quick");
    // (executors, nodes each, executors per simulated machine)
    for (executors, per, per_host) in [(10usize, 10usize, 1usize), (100, 10, 1), (1000, 10, 100), (10_000, 10, 500)] {
        if quick && executors > 1000 {
            println!("fleet {executors} executors x {per} nodes: left out with --quick");
            continue;
        }
        let wall = Instant::now();
        let mut fleet = Fleet::new(executors, per, 1);
        fleet.executors_per_host = per_host;
        fleet.tick = Duration::from_millis(100);
        let mut sim = fleet.build();
        let took = std::sync::Arc::new(std::sync::Mutex::new(None));
        let t = took.clone();
        sim.client("admin", async move {
            let admin = admin().await;
            let listed = Some(executors);
            let t0 = turmoil::elapsed();
            deploy_all(&admin, executors, per).await;
            until_listed(&admin, listed, "running", |ns| ns.len() == executors * per && all_converged(ns, NodePhase::Running)).await;
            let converged = turmoil::elapsed() - t0;
            let wave = (0..executors)
                .flat_map(|i| (0..per).step_by(2).map(move |j| Call::Lifecycle { node: Fleet::node_name(i, j), action: LifecycleAction::Restart }));
            post_all(&admin, wave.collect()).await;
            until_listed(&admin, listed, "wave", |ns| ns.iter().all(settled)).await;
            *t.lock().unwrap() = Some((converged, turmoil::elapsed() - t0));
            Ok(())
        });
        sim.run().expect("simulation");
        let (converged, done) = took.lock().unwrap().expect("converged");
        println!(
            "fleet {executors} executors x {per} nodes: running after {converged:?} simulated, wave of restarts done after {done:?}; {:?} wall",
            wall.elapsed()
        );
    }
}
