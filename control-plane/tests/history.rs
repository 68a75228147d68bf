//! A node's sync history: a point a minute from its reports, a day kept,
//! gone with the node.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::{deploy, obs, Cp};
use novacula_client::Method;
use novacula_control_plane::store::NODE_HISTORY;
use novacula_control_plane::Config;
use novacula_core::observed::NodeSample;
use novacula_core::{ObservedNodeState, ObservedNodeStatus, SyncMetrics};
use serde_json::Value;
use std::time::Duration;

fn at_head(rev: u64, head: u64, peers: u32) -> ObservedNodeState {
    let mut o = obs("geth-1", rev, ObservedNodeStatus::Syncing);
    o.processes[0].sync = Some(SyncMetrics::new(head, 1000, peers));
    o
}

#[tokio::test]
async fn a_point_a_minute_for_a_day_and_none_left_with_the_node() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, edge) = cp.alice_and_edge().await;
    let rev = deploy(&alice, "edge-1", "geth-1").await.unwrap()["revision"].as_u64().unwrap();
    let history = async || -> Vec<Value> { alice.get("/api/v1/nodes/geth-1/history").await.unwrap() };
    assert!(history().await.is_empty());

    edge.report("edge-1", vec![at_head(rev, 100, 3)]).await.unwrap();
    edge.report("edge-1", vec![at_head(rev, 110, 4)]).await.unwrap();
    let points = history().await;
    assert_eq!(points.len(), 1, "one point a minute: {points:?}");
    assert_eq!((points[0]["head"].as_u64(), points[0]["peers"].as_u64(), points[0]["syncDistance"].as_u64()), (Some(100), Some(3), Some(900)));
    cp.advance(Duration::from_secs(61));
    edge.report("edge-1", vec![at_head(rev, 200, 5)]).await.unwrap();
    let heads: Vec<u64> = history().await.iter().map(|p| p["head"].as_u64().unwrap()).collect();
    assert_eq!(heads, [100, 200], "oldest first");
    let last_hour: Vec<Value> = alice.get("/api/v1/nodes/geth-1/history?hours=1").await.unwrap();
    assert_eq!(last_hour.len(), 2);
    let e = alice.get::<Vec<Value>>("/api/v1/nodes/geth-1/history?hours=25").await.unwrap_err();
    assert_eq!(e.status(), Some(422), "{e}");
    assert_eq!(alice.get::<Vec<Value>>("/api/v1/nodes/nope/history").await.unwrap_err().status(), Some(404));

    // a day later, the old points age out as new ones come
    cp.advance(Duration::from_secs(25 * 3600));
    edge.sync_executor(&common::sync_req("edge-1", novacula_core::ExecutorKind::Agent, "1.0.0")).await.unwrap();
    edge.report("edge-1", vec![at_head(rev, 900, 9)]).await.unwrap();
    let heads: Vec<u64> = history().await.iter().map(|p| p["head"].as_u64().unwrap()).collect();
    assert_eq!(heads, [900]);
    let stored = cp.state.store.read(|r| r.scan::<NodeSample>(NODE_HISTORY, "")).unwrap();
    assert_eq!(stored.len(), 1, "the old points are removed, not only hidden");

    // deleted and torn down: its history goes with it
    let deleted: Value = alice.call(Method::DELETE, "/api/v1/nodes/geth-1", None::<&()>).await.unwrap();
    let gone = ObservedNodeState { removed: true, ..obs("geth-1", deleted["revision"].as_u64().unwrap(), ObservedNodeStatus::Stopped) };
    edge.report("edge-1", vec![gone]).await.unwrap();
    assert!(cp.state.store.read(|r| r.scan::<NodeSample>(NODE_HISTORY, "")).unwrap().is_empty());
}

#[test]
fn this_suite_passes_on_postgres() {
    common::rerun_on_postgres("this_suite_passes_on_postgres");
}
