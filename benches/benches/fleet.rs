//! Simulated fleet convergence: how much simulated time (and wall time) a fleet
//! of fake executors takes from empty to every node running.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use novacula_sim::fleet::{admin, all_converged, deploy_all, until, Fleet};

fn main() {
    for (executors, per) in [(10usize, 10usize), (100, 10)] {
        let wall = std::time::Instant::now();
        let mut fleet = Fleet::new(executors, per, 1);
        let mut sim = fleet.build();
        let took = std::sync::Arc::new(std::sync::Mutex::new(None));
        let t = took.clone();
        sim.client("admin", async move {
            let admin = admin().await;
            let t0 = turmoil::elapsed();
            deploy_all(&admin, executors, per).await;
            until(&admin, "running", |ns| ns.len() == executors * per && all_converged(ns, novacula_core::NodePhase::Running)).await;
            *t.lock().unwrap() = Some(turmoil::elapsed() - t0);
            Ok(())
        });
        sim.run().expect("simulation");
        println!("fleet {executors} executors x {per} nodes: converged in {:?} simulated, {:?} wall", took.lock().unwrap().expect("converged"), wall.elapsed());
    }
}
