//! Executor self-upgrade in the fleet: a release that fails its health check
//! once installed is rolled back and the nodes keep running; a good one lands.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use novacula_core::wire::{ExecutorView, SetUpgradeRequest};
use novacula_core::{Channel, NodePhase};
use novacula_sim::fleet::{admin, all_converged, deploy_all, until, Fleet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

fn script(path: &Path, body: &str) -> String {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    novacula_agent::files::sha256_file(path).unwrap()
}

fn versions(ex: &[ExecutorView]) -> Vec<String> {
    ex.iter().map(|e| e.executor.version.clone()).collect()
}

#[test]
fn failed_self_upgrade_rolls_back_and_nodes_keep_running() {
    let seed = std::env::var("NOVACULA_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(13);
    let dir = tempfile::tempdir().unwrap();
    let bins = dir.path().join("bin");
    std::fs::create_dir_all(&bins).unwrap();
    for i in 0..2 {
        script(&bins.join(Fleet::executor_name(i)), "echo novacula-agent 1.0.0");
    }
    // The hosts' own release directory: the only place an upgrade may come from.
    let releases = dir.path().join("releases");
    std::fs::create_dir_all(&releases).unwrap();
    // Passes the pre-swap check, fails once installed as the agent.
    let broken_hash = script(&releases.join("agent-1.1.0"), "case \"$0\" in */exec-*) exit 1;; esac\necho novacula-agent 1.1.0");
    let good_hash = script(&releases.join("agent-1.2.0"), "echo novacula-agent 1.2.0");

    let mut fleet = Fleet::new(2, 2, seed);
    fleet.bin_dir = Some(bins.clone());
    fleet.release_dir = Some(releases.clone());
    let mut sim = fleet.build();
    sim.client("admin", async move {
        let admin = admin().await;
        deploy_all(&admin, 2, 2).await;
        until(&admin, "running", |ns| ns.len() == 4 && all_converged(ns, NodePhase::Running)).await;

        let set = |version: &str, artifact: &str, sha256: &str| SetUpgradeRequest::Agent {
            channel: Channel::Stable,
            version: version.into(),
            artifact: artifact.into(),
            sha256: sha256.into(),
        };
        admin.set_upgrade(&set("1.1.0", "agent-1.1.0", &broken_hash)).await?;
        tokio::time::sleep(Duration::from_secs(30)).await;
        let ex = admin.executors().await?;
        assert_eq!(versions(&ex), ["1.0.0", "1.0.0"], "rolled back");
        until(&admin, "still running", |ns| all_converged(ns, NodePhase::Running)).await;

        admin.set_upgrade(&set("1.2.0", "agent-1.2.0", &good_hash)).await?;
        loop {
            let ex = admin.executors().await?;
            if versions(&ex) == ["1.2.0", "1.2.0"] {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        until(&admin, "running after upgrade", |ns| all_converged(ns, NodePhase::Running)).await;
        Ok(())
    });
    if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.run().expect("simulation"))) {
        eprintln!("failed with seed {seed}; replay with NOVACULA_SIM_SEED={seed}");
        std::panic::resume_unwind(e);
    }
    for d in &fleet.drivers {
        assert_eq!(d.running_processes(), 2);
        assert!(d.launches().values().all(|n| *n == 1), "upgrading the executor restarted no node: {:?}", d.launches());
    }
    for i in 0..2 {
        let out = std::process::Command::new(bins.join(Fleet::executor_name(i))).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "novacula-agent 1.2.0");
        // Confirmed by its heartbeats: nothing is left for the rollback unit to put back.
        assert!(!bins.join(format!("{}.prev", Fleet::executor_name(i))).exists(), "a confirmed upgrade leaves no old binary");
    }
}
