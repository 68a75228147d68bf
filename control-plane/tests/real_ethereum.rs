//! Real Ethereum clients under the real agent and control plane: a `devnet`
//! node of EthereumJS (execution) and Lodestar (consensus), installed by
//! `.ci/prerequisites` from the npm registry (see shared/realclients).
//! One test runs the scenarios in sequence: deploy, running with the head
//! advancing, stop, start from disk, restart, the execution client killed
//! behind the agent's back, delete.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;
mod live;
mod realclients;

use live::{control_plane, key_for, start_agent_with_intervals};
use novacula_agent::driver::{LocalDriver, ProcessDriver};
use novacula_client::HttpApi;
use novacula_core::wire::NodeView;
use novacula_core::{ObservedNodeStatus, SyncMetrics};
use novacula_executor::loops::Intervals;
use realclients::{devnet_spec, el_block, gone, install, installed, pids_with, until, Reaper};
use std::time::Duration;

const NODE: &str = "devnet-1";

fn metrics(n: &NodeView, process: &str) -> Option<SyncMetrics> {
    n.observed.as_ref()?.processes.iter().find(|p| p.name == process)?.sync
}

fn status(n: &NodeView, process: &str) -> Option<ObservedNodeStatus> {
    Some(n.observed.as_ref()?.processes.iter().find(|p| p.name == process)?.status)
}

/// The node runs, the revision is applied, and both heads have moved past `el`/`cl`.
async fn advancing(user: &HttpApi, what: &str, el: u64, cl: u64) -> NodeView {
    until(user, NODE, 120, what, |n| {
        n.phase.as_str() == "running"
            && n.drift.revisions_behind == 0
            && metrics(n, "execution").is_some_and(|m| m.current_block > el)
            && metrics(n, "consensus").is_some_and(|m| m.current_block > cl)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ethereumjs_and_lodestar_devnet_through_the_real_control_plane_and_agent() {
    if !installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("agent");
    let _reaper = Reaper(data.display().to_string());
    install(&data);
    let (url, user) = control_plane().await;
    let key = key_for(&user, "edge").await;
    // Reports often, reconciles slowly: a process killed behind the agent's
    // back shows in a report before the agent starts it again.
    let intervals = Intervals {
        sync: Duration::from_millis(500),
        poll_wait: Duration::from_secs(1),
        reconcile: Duration::from_secs(4),
        report: Duration::from_millis(500),
    };
    let agent = start_agent_with_intervals(&url, &key, &data, "edge", intervals);
    let local = LocalDriver::new(&data).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Deploy: the control plane allocates the ports; both layers produce blocks.
    let deployed = user.deploy("edge", devnet_spec(NODE)).await.unwrap();
    let rpc = deployed.spec.clients[0].ports["http"];
    let n = advancing(&user, "deployed devnet producing blocks", 1, 1).await;
    let first = metrics(&n, "execution").unwrap().current_block;
    let n = advancing(&user, "the head advancing", first, 0).await;
    let el_m = metrics(&n, "execution").unwrap();
    assert_eq!((el_m.sync_distance, el_m.progress_percent, el_m.peers), (0, 100.0, 0), "a synced chain of its own");
    let disk = n.observed.as_ref().unwrap().disk.expect("disk usage is reported");
    assert!(disk.used_bytes > 0 && disk.total_bytes >= disk.free_bytes, "{disk:?}");
    let node_dir = data.join("nodes").join(NODE);
    assert!(node_dir.join("config/genesis.json").exists() && node_dir.join("config/jwt.hex").exists());

    // Stop: processes gone, data kept.
    let before_stop = el_block(rpc).await.unwrap();
    user.lifecycle(NODE, novacula_core::lifecycle::LifecycleAction::Stop).await.unwrap();
    until(&user, NODE, 60, "stopped", |n| n.phase.as_str() == "stopped" && n.drift.revisions_behind == 0).await;
    assert_eq!(local.process_count(NODE), 0);
    assert!(node_dir.join("data/execution").read_dir().unwrap().next().is_some(), "the chain stays on disk");

    // Start: the execution client serves its chain from disk, and the chain goes on.
    user.lifecycle(NODE, novacula_core::lifecycle::LifecycleAction::Start).await.unwrap();
    let mut from_disk = None;
    for _ in 0..240 {
        if let Some(b) = el_block(rpc).await {
            from_disk = Some(b);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let from_disk = from_disk.expect("the execution client answers after start");
    assert!(from_disk >= before_stop, "started from disk at block {from_disk}, it had {before_stop}");
    let n = advancing(&user, "started again", 0, 1).await;
    let slot = metrics(&n, "consensus").unwrap().current_block;
    advancing(&user, "the chain going on after start", 0, slot).await;

    // Restart: exactly one new generation of each process.
    user.lifecycle(NODE, novacula_core::lifecycle::LifecycleAction::Restart).await.unwrap();
    advancing(&user, "restarted", 0, 1).await;
    let observed = local.observe(NODE).await.unwrap();
    for p in &observed.processes {
        assert_eq!(p.running.map(|r| r.generation), Some(1), "{}: one restart, one generation", p.unit);
    }

    // The execution client dies behind the agent's back: the node leaves
    // running, the consensus client says why, and the agent brings it back.
    let el_dir = node_dir.join("data/execution").display().to_string();
    let victims = pids_with(&el_dir);
    assert!(!victims.is_empty(), "the execution client runs");
    for pid in victims {
        rustix::process::kill_process(rustix::process::Pid::from_raw(pid).unwrap(), rustix::process::Signal::KILL).ok();
    }
    let down = until(&user, NODE, 30, "the node leaving running", |n| n.phase.as_str() != "running").await;
    let cl_p = down.observed.as_ref().unwrap().processes.iter().find(|p| p.name == "consensus").unwrap().clone();
    // Error while the execution client is down; starting once the agent has started it again.
    assert!(matches!(cl_p.status, ObservedNodeStatus::Error | ObservedNodeStatus::Starting), "{down:?}");
    assert!(cl_p.message.as_deref().unwrap_or_default().contains("execution client"), "{cl_p:?}");
    assert_ne!(status(&down, "execution"), Some(ObservedNodeStatus::Running));
    advancing(&user, "recovered after the crash", 0, 1).await;

    // Delete: processes and data gone.
    user.delete_node(NODE).await.unwrap();
    assert!(gone(&user, NODE).await, "the deletion completes");
    assert_eq!(local.process_count(NODE), 0);
    assert!(!node_dir.exists(), "the node's data is removed");
    agent.kill().await;
}
