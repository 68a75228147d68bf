//! The Bitcoin adapter under the real agent and control plane, with Debian's
//! `litecoind` (a Bitcoin Core fork with the same config file and RPC) as its
//! `bitcoind`: a regtest node deployed, its blocks growing as they are
//! mined, stopped, started from disk, restarted and deleted.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;
mod live;
mod realclients;

use live::{control_plane, key_for, start_agent_with_intervals};
use novacula_agent::driver::{LocalDriver, ProcessDriver};
use novacula_client::HttpApi;
use novacula_core::lifecycle::LifecycleAction;
use novacula_core::wire::NodeView;
use novacula_core::SyncMetrics;
use novacula_executor::loops::Intervals;
use realclients::{btc_rpc, gone, install_litecoind, litecoind_installed, regtest_spec, until, Reaper};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const NODE: &str = "btc-1";

fn metrics(n: &NodeView) -> Option<SyncMetrics> {
    n.observed.as_ref()?.processes.iter().find(|p| p.name == "node")?.sync
}

/// Running at its latest revision with at least `blocks` blocks.
async fn running_with(user: &HttpApi, what: &str, blocks: u64) -> NodeView {
    until(user, NODE, 60, what, |n| n.phase.as_str() == "running" && n.drift.revisions_behind == 0 && metrics(n).is_some_and(|m| m.current_block >= blocks))
        .await
}

/// Mine `n` blocks to an anyone-can-spend script (the node has no wallet).
async fn mine(node_dir: &Path, rpc: u16, n: u64) {
    let hashes = btc_rpc(node_dir, rpc, "generatetodescriptor", json!([n, "raw(51)"])).await.expect("the node mines on regtest");
    assert_eq!(hashes.as_array().map(Vec::len), Some(usize::try_from(n).unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regtest_node_through_the_real_control_plane_and_agent() {
    if !litecoind_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("agent");
    let _reaper = Reaper(data.display().to_string());
    install_litecoind(&data);
    let (url, user) = control_plane().await;
    let key = key_for(&user, "edge").await;
    let intervals = Intervals {
        sync: Duration::from_millis(500),
        poll_wait: Duration::from_secs(1),
        reconcile: Duration::from_secs(1),
        report: Duration::from_millis(500),
    };
    let agent = start_agent_with_intervals(&url, &key, &data, "edge", intervals);
    let local = LocalDriver::new(&data).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A setting that would run a program is not one a spec can set.
    let mut bad = regtest_spec(NODE);
    bad.clients[0].config_overrides.insert("blocknotify".into(), "touch /tmp/pwned".into());
    let err = user.deploy("edge", bad).await.unwrap_err().to_string();
    assert!(err.contains("\"blocknotify\" is not a setting bitcoind lets a spec override"), "{err}");

    // Deploy: the control plane allocates the ports; at genesis the node is in
    // initial block download, then mined blocks make it a synced chain.
    let mut spec = regtest_spec(NODE);
    spec.clients[0].config_overrides.insert("dbcache".into(), "64".into());
    let deployed = user.deploy("edge", spec).await.unwrap();
    let rpc = deployed.spec.clients[0].ports["rpc"];
    let node_dir = data.join("nodes").join(NODE);
    until(&user, NODE, 60, "the node answering its RPC", |n| metrics(n).is_some()).await;
    let conf = std::fs::read_to_string(node_dir.join("config/bitcoin.conf")).unwrap();
    assert!(conf.contains(&format!("[regtest]\nserver=1\nport={}\nrpcport={rpc}\n", deployed.spec.clients[0].ports["p2p"])), "{conf}");
    assert!(conf.contains("dbcache=64"), "{conf}");
    mine(&node_dir, rpc, 3).await;
    let n = running_with(&user, "running after 3 blocks", 3).await;
    let m = metrics(&n).unwrap();
    assert_eq!((m.sync_distance, m.progress_percent, m.peers), (0, 100.0, 0), "a chain of its own, fully verified");
    mine(&node_dir, rpc, 2).await;
    running_with(&user, "the blocks growing", 5).await;
    let credentials = std::fs::read_to_string(node_dir.join("config/rpc.conf")).unwrap();
    assert!(credentials.starts_with("rpcuser=novacula\nrpcpassword=") && credentials.len() > 60, "generated credentials");
    assert!(!serde_json::to_string(&user.node(NODE).await.unwrap()).unwrap().contains(credentials.lines().nth(1).unwrap()), "never in the spec");

    // Stop: the process is gone, the chain stays on disk.
    user.lifecycle(NODE, LifecycleAction::Stop).await.unwrap();
    until(&user, NODE, 60, "stopped", |n| n.phase.as_str() == "stopped" && n.drift.revisions_behind == 0).await;
    assert_eq!(local.process_count(NODE), 0);
    assert!(btc_rpc(&node_dir, rpc, "getblockcount", json!([])).await.is_none(), "nothing answers once stopped");

    // Start: the node serves its chain from disk and goes on.
    user.lifecycle(NODE, LifecycleAction::Start).await.unwrap();
    running_with(&user, "started from disk", 5).await;
    assert_eq!(btc_rpc(&node_dir, rpc, "getblockcount", json!([])).await, Some(json!(5)), "the blocks mined before the stop");
    mine(&node_dir, rpc, 1).await;
    running_with(&user, "the chain going on after start", 6).await;

    // Restart: one new generation; the credentials generated once are kept.
    user.lifecycle(NODE, LifecycleAction::Restart).await.unwrap();
    until(&user, NODE, 60, "restarted", |n| n.drift.revisions_behind == 0).await;
    let mut generation = None;
    for _ in 0..240 {
        generation = local.observe(NODE).await.unwrap().processes.first().and_then(|p| p.running.map(|r| r.generation));
        if generation == Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(generation, Some(1), "one restart, one generation");
    running_with(&user, "running after the restart", 6).await;
    assert_eq!(std::fs::read_to_string(node_dir.join("config/rpc.conf")).unwrap(), credentials);

    // Delete: the process and the data are gone.
    user.delete_node(NODE).await.unwrap();
    assert!(gone(&user, NODE).await, "the deletion completes");
    assert_eq!(local.process_count(NODE), 0);
    assert!(!node_dir.exists(), "the node's data is removed");
    agent.kill().await;
}
