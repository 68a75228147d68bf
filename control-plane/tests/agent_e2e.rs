//! The real agent loops against a real control plane on loopback, with the local process driver.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;
mod live;

use common::lifecycle;
use live::{control_plane, key_for, phase_is, start_agent, wait_for_node as wait_for};
use novacula_agent::driver::{LocalDriver, ProcessDriver};
use novacula_client::Method;
use novacula_executor::adapter::StandIn;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn agent_converges_through_lifecycle_and_after_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let (url, user) = control_plane().await;
    let key = key_for(&user, "local").await;
    let data = dir.path().join("agent");
    let probe = LocalDriver::new(&data).unwrap();

    let agent = start_agent(&url, &key, &data, "local");
    tokio::time::sleep(Duration::from_millis(500)).await; // first sync registers the executor
    let _: Value = user.call(Method::POST, "/api/v1/nodes", Some(&json!({"executor": "local", "spec": StandIn::spec("demo-node")}))).await.unwrap();
    wait_for(&user, "demo-node", phase_is("running")).await;
    assert_eq!(probe.process_count("demo-node"), 1);
    assert!(data.join("nodes/demo-node/config/standin.conf").exists());

    // stop and start
    lifecycle(&user, "demo-node", "stop").await.unwrap();
    wait_for(&user, "demo-node", phase_is("stopped")).await;
    assert_eq!(probe.process_count("demo-node"), 0);
    lifecycle(&user, "demo-node", "start").await.unwrap();
    wait_for(&user, "demo-node", phase_is("running")).await;

    // restart: the process comes back under generation 1
    lifecycle(&user, "demo-node", "restart").await.unwrap();
    wait_for(&user, "demo-node", phase_is("running")).await;
    let local = probe.observe("demo-node").await.unwrap();
    assert_eq!(local.processes[0].running.unwrap().generation, 1);
    assert_eq!(probe.process_count("demo-node"), 1);

    // kill the agent right after a restart request, at whatever point it reached
    lifecycle(&user, "demo-node", "restart").await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    agent.kill().await;
    let agent = start_agent(&url, &key, &data, "local");
    let n = wait_for(&user, "demo-node", phase_is("running")).await;
    assert_eq!(n["revision"], 5);
    let local = probe.observe("demo-node").await.unwrap();
    assert_eq!(local.processes[0].running.unwrap().generation, 2, "restart applied once, after the crash if needed");
    assert_eq!(probe.process_count("demo-node"), 1, "no duplicate process after the crash");

    // a crash with nothing to do changes nothing
    agent.kill().await;
    let agent = start_agent(&url, &key, &data, "local");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(probe.observe("demo-node").await.unwrap().processes[0].running.unwrap().generation, 2);
    assert_eq!(probe.process_count("demo-node"), 1);

    // delete: units, processes and the data directory go away
    let _: Value = user.call::<(), _>(Method::DELETE, "/api/v1/nodes/demo-node", None).await.unwrap();
    let mut gone = None;
    for _ in 0..300 {
        match user.get::<Value>("/api/v1/nodes/demo-node").await {
            Err(e) => {
                gone = Some(e);
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let gone = gone.expect("node never finished deleting");
    assert_eq!(gone.status(), Some(404));
    assert!(gone.to_string().contains("was deleted"), "{gone}");
    assert_eq!(probe.process_count("demo-node"), 0);
    assert!(!data.join("nodes/demo-node").exists());
    let kinds: Vec<String> = common::events(&user, 0).await.iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect();
    assert!(kinds.contains(&"node.deleted".to_string()), "{kinds:?}");
    agent.kill().await;
}

#[tokio::test]
async fn missing_client_binary_is_reported_as_error() {
    let dir = tempfile::tempdir().unwrap();
    let (url, user) = control_plane().await;
    let key = key_for(&user, "local").await;
    let agent = start_agent(&url, &key, &dir.path().join("agent"), "local");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // geth is not installed under data_dir/bin: the node must show error, not hang in provisioning
    let _: Value = user.call(Method::POST, "/api/v1/nodes", Some(&json!({"executor": "local", "spec": common::spec("eth")}))).await.unwrap();
    let n = wait_for(&user, "eth", |n| n["phase"] == "error").await;
    assert_eq!(n["nodeDown"], true);
    let msg = n["observed"]["processes"][0]["message"].as_str().unwrap_or_default().to_string();
    assert!(msg.contains("place an executable"), "{n}");
    agent.kill().await;
}
