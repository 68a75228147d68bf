//! Simulated fleet convergence: how much simulated time (and wall time) a fleet
//! of fake executors takes from empty to every node running.

use novacula_sim::fleet::{admin, all_converged, standin, until, Fleet};

fn main() {
    for (executors, per) in [(10usize, 10usize), (100, 10)] {
        let wall = std::time::Instant::now();
        let mut fleet = Fleet::new(executors, per, 1);
        let mut sim = fleet.build();
        let took = std::sync::Arc::new(std::sync::Mutex::new(None));
        let t = took.clone();
        sim.client("admin", async move {
            let admin = admin().await;
            while admin.get::<Vec<serde_json::Value>>("/api/v1/executors").await?.len() < executors {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            let t0 = turmoil::elapsed();
            for i in 0..executors {
                for j in 0..per {
                    let body = serde_json::json!({"executor": Fleet::executor_name(i), "spec": standin(&Fleet::node_name(i, j))});
                    let _: serde_json::Value = admin.call(novacula_sim::Method::POST, "/api/v1/nodes", Some(&body)).await?;
                }
            }
            until(&admin, "running", |ns| ns.len() == executors * per && all_converged(ns, "running")).await;
            *t.lock().unwrap() = Some(turmoil::elapsed() - t0);
            Ok(())
        });
        sim.run().expect("simulation");
        println!(
            "fleet {executors} executors x {per} nodes: converged in {:?} simulated, {:?} wall",
            took.lock().unwrap().expect("converged"),
            wall.elapsed()
        );
    }
}
