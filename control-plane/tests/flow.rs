//! End to end over HTTP: deploy, sync, poll, report, lifecycle, delete, restart of the server.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::*;
use novacula_client::Method;
use novacula_control_plane::clock::ManualClock;
use novacula_control_plane::{Config, Store};
use novacula_core::wire::SpecPollResponse;
use novacula_core::{ExecutorKind, ObservedNodeState, ObservedNodeStatus, ObservedProcess, Revision};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

fn observed(name: &str, rev: u64, status: ObservedNodeStatus) -> ObservedNodeState {
    ObservedNodeState {
        node: name.into(),
        revision: Revision(rev),
        processes: ["execution", "consensus"].iter().map(|p| ObservedProcess { name: p.to_string(), status, sync: None, message: None }).collect(),
        removed: false,
        disk: None,
    }
}

#[tokio::test]
async fn node_lifecycle_end_to_end() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let (exec, _) = cp.executor_client(&alice, Some("edge-1")).await;

    let sync = exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    assert_eq!(sync.compat, novacula_core::CompatStatus::InWindow);
    assert!(sync.upgrade.is_none());

    let created = deploy(&alice, "edge-1", "eth-1").await.unwrap();
    assert_eq!(created["revision"], 1);
    assert_eq!(created["phase"], "provisioning");

    let specs = exec.poll_specs("edge-1", 0, Duration::ZERO).await.unwrap();
    assert_eq!(specs.nodes.len(), 1);
    assert_eq!(specs.nodes[0].spec.name, "eth-1");
    assert_eq!(specs.nodes[0].revision, Revision(1));

    exec.report("edge-1", vec![observed("eth-1", 1, ObservedNodeStatus::Starting)]).await.unwrap();
    assert_eq!(node(&alice, "eth-1").await["phase"], "starting");
    exec.report("edge-1", vec![observed("eth-1", 1, ObservedNodeStatus::Running)]).await.unwrap();
    let n = node(&alice, "eth-1").await;
    assert_eq!(n["phase"], "running");
    assert_eq!(n["drift"]["revisionsBehind"], 0);

    // stop: new revision, revision drift until the executor catches up
    let stopped = lifecycle(&alice, "eth-1", "stop").await.unwrap();
    assert_eq!(stopped["revision"], 2);
    assert_eq!(stopped["phase"], "stopping");
    assert_eq!(stopped["drift"]["revisionsBehind"], 1);
    let specs2 = exec.poll_specs("edge-1", specs.cursor, Duration::ZERO).await.unwrap();
    assert_ne!(specs2.cursor, specs.cursor);
    assert_eq!(specs2.nodes[0].spec.desired_state, novacula_core::DesiredState::Stopped);
    exec.report("edge-1", vec![observed("eth-1", 2, ObservedNodeStatus::Stopped)]).await.unwrap();
    assert_eq!(node(&alice, "eth-1").await["phase"], "stopped");

    // restart of a stopped node is refused; start then restart bumps restartGeneration
    let err = lifecycle(&alice, "eth-1", "restart").await.unwrap_err();
    assert_eq!(err.status(), Some(409));
    lifecycle(&alice, "eth-1", "start").await.unwrap();
    let restarted = lifecycle(&alice, "eth-1", "restart").await.unwrap();
    assert_eq!(restarted["revision"], 4);
    assert_eq!(restarted["spec"]["restartGeneration"], 1);
    // idempotent start writes nothing
    assert_eq!(lifecycle(&alice, "eth-1", "start").await.unwrap()["revision"], 4);

    // a report ahead of desired is rejected
    let r = exec.report("edge-1", vec![observed("eth-1", 9, ObservedNodeStatus::Running)]).await.unwrap();
    assert_eq!(r.accepted, 0);
    assert!(r.rejected[0].contains("ahead"));
    exec.report("edge-1", vec![observed("eth-1", 4, ObservedNodeStatus::Running)]).await.unwrap();
    assert_eq!(node(&alice, "eth-1").await["phase"], "running");

    // delete: deleting until the executor confirms the teardown
    let deleting: Value = alice.call::<(), _>(Method::DELETE, "/api/v1/nodes/eth-1", None).await.unwrap();
    assert_eq!(deleting["phase"], "deleting");
    assert_eq!(deleting["revision"], 5);
    let specs3 = exec.poll_specs("edge-1", 0, Duration::ZERO).await.unwrap();
    assert!(specs3.nodes[0].deleted);
    assert_eq!(lifecycle(&alice, "eth-1", "start").await.unwrap_err().status(), Some(409));
    let mut gone = observed("eth-1", 5, ObservedNodeStatus::Stopped);
    gone.processes.clear();
    gone.removed = true;
    exec.report("edge-1", vec![gone]).await.unwrap();
    let list: Vec<Value> = alice.get("/api/v1/nodes").await.unwrap();
    assert!(list.is_empty(), "{list:?}");
    assert!(exec.poll_specs("edge-1", 0, Duration::ZERO).await.unwrap().nodes.is_empty());

    let kinds = kinds(&events(&alice, 0).await);
    for k in ["executor.connected", "node.created", "node.lifecycle.requested", "node.lifecycle.transition", "node.deleted"] {
        assert!(kinds.iter().any(|x| x == k), "missing {k} in {kinds:?}");
    }
    let requested: Vec<Value> = events(&alice, 0).await.into_iter().filter(|e| e["kind"] == "node.lifecycle.requested").collect();
    assert_eq!(requested.iter().map(|e| e["data"]["action"].as_str().unwrap()).collect::<Vec<_>>(), ["stop", "start", "restart", "delete"]);
    assert!(requested.iter().all(|e| e["actor"] == "user:alice"));
    cp.stop().await;
}

#[tokio::test]
async fn long_poll_wakes_on_change() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, exec) = cp.alice_and_edge().await;
    deploy(&alice, "edge-1", "a").await.unwrap();
    let first = exec.poll_specs("edge-1", 0, Duration::ZERO).await.unwrap();

    let e2 = exec.clone();
    let cursor = first.cursor;
    let waiter = tokio::spawn(async move { e2.poll_specs("edge-1", cursor, Duration::from_secs(30)).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "poll must wait while nothing changes");
    lifecycle(&alice, "a", "stop").await.unwrap();
    // Well before the 30 s wait: the change woke the poll.
    let got: SpecPollResponse = tokio::time::timeout(Duration::from_secs(10), waiter).await.expect("poll woke").unwrap();
    assert!(got.cursor > cursor);
    assert_eq!(got.nodes[0].revision, Revision(2));
    cp.stop().await;
}

/// A poll asking for changes gets only the nodes changed since its cursor,
/// and the names of those torn down since; a first poll, a cursor this
/// executor cannot have seen, or a poll not asking (an older executor) gets
/// the whole set.
#[tokio::test]
async fn a_poll_answers_with_the_changes_since_its_cursor() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, exec) = cp.alice_and_edge().await;
    for n in ["n0", "n1", "n2"] {
        deploy(&alice, "edge-1", n).await.unwrap();
    }
    let names = |r: &SpecPollResponse| r.nodes.iter().map(|n| n.spec.name.clone()).collect::<Vec<_>>();
    let first = exec.poll_spec_changes("edge-1", 0, Duration::ZERO).await.unwrap();
    assert_eq!((names(&first), first.changes_since), (vec!["n0".to_string(), "n1".into(), "n2".into()], None));

    lifecycle(&alice, "n1", "restart").await.unwrap();
    let second = exec.poll_spec_changes("edge-1", first.cursor, Duration::ZERO).await.unwrap();
    assert_eq!((names(&second), second.changes_since, second.gone.len()), (vec!["n1".to_string()], Some(first.cursor), 0));
    let known = second.clone().apply(Some(&first.nodes), first.cursor).unwrap();
    assert_eq!(known.iter().map(|n| (n.spec.name.as_str(), n.revision.0)).collect::<Vec<_>>(), [("n0", 1), ("n1", 2), ("n2", 1)]);

    // Deleted: a change (the executor tears it down); torn down: gone.
    alice.call::<(), Value>(Method::DELETE, "/api/v1/nodes/n0", None).await.unwrap();
    let third = exec.poll_spec_changes("edge-1", second.cursor, Duration::ZERO).await.unwrap();
    assert_eq!(names(&third), ["n0"]);
    assert!(third.nodes[0].deleted);
    let mut removed = observed("n0", third.nodes[0].revision.0, ObservedNodeStatus::Stopped);
    removed.removed = true;
    exec.report("edge-1", vec![removed]).await.unwrap();
    let fourth = exec.poll_spec_changes("edge-1", third.cursor, Duration::ZERO).await.unwrap();
    assert_eq!((names(&fourth), fourth.gone.clone()), (Vec::<String>::new(), vec!["n0".to_string()]));
    let known = fourth.clone().apply(Some(&third.clone().apply(Some(&known), second.cursor).unwrap()), third.cursor).unwrap();
    assert_eq!(known.iter().map(|n| n.spec.name.as_str()).collect::<Vec<_>>(), ["n1", "n2"]);

    // Nothing changed: an empty answer at the deadline, with the same cursor.
    let idle = exec.poll_spec_changes("edge-1", fourth.cursor, Duration::ZERO).await.unwrap();
    assert_eq!((idle.cursor, idle.nodes.len(), idle.gone.len()), (fourth.cursor, 0, 0));
    // A cursor past the current one (the database restored from before it): the whole set.
    let past = exec.poll_spec_changes("edge-1", fourth.cursor + 1_000, Duration::ZERO).await.unwrap();
    assert_eq!((names(&past), past.changes_since), (vec!["n1".to_string(), "n2".into()], None));
    // An executor that does not ask for changes gets the whole set, as before.
    let old: SpecPollResponse = exec.get(&format!("/api/v1/executor/specs?executor=edge-1&since={}&waitSecs=0", first.cursor)).await.unwrap();
    assert_eq!((names(&old), old.changes_since), (vec!["n1".to_string(), "n2".into()], None));
    cp.stop().await;
}

/// An idle fleet's polls read nothing: once a poll has read its executor's
/// cursor, polls with that cursor wait without a store read, and a change
/// still reaches them (the cursor held moves with the wakeup).
#[tokio::test]
async fn a_poll_with_a_cursor_already_read_waits_without_reading_the_store() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, exec) = cp.alice_and_edge().await;
    deploy(&alice, "edge-1", "n0").await.unwrap();
    let first = exec.poll_spec_changes("edge-1", 0, Duration::ZERO).await.unwrap();
    let reads = cp.state.store.reads();
    for _ in 0..20 {
        let idle = exec.poll_spec_changes("edge-1", first.cursor, Duration::ZERO).await.unwrap();
        assert!(idle.changes_nothing(first.cursor), "{idle:?}");
    }
    // Each would read once without the cursor held (a background pass may read meanwhile).
    assert!(cp.state.store.reads() - reads < 5, "{} reads for 20 idle polls", cp.state.store.reads() - reads);

    let e2 = exec.clone();
    let waiter = tokio::spawn(async move { e2.poll_spec_changes("edge-1", first.cursor, Duration::from_secs(30)).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "nothing changed: the poll waits");
    lifecycle(&alice, "n0", "restart").await.unwrap();
    let woken = tokio::time::timeout(Duration::from_secs(10), waiter).await.expect("poll woke").unwrap();
    assert_eq!((woken.changes_since, woken.nodes.len()), (Some(first.cursor), 1), "{woken:?}");
    // The next poll from the new cursor holds it again; from the old one it gets the change.
    let again = exec.poll_spec_changes("edge-1", first.cursor, Duration::ZERO).await.unwrap();
    assert_eq!((again.cursor, again.nodes.len()), (woken.cursor, 1));
    let idle = exec.poll_spec_changes("edge-1", woken.cursor, Duration::ZERO).await.unwrap();
    assert!(idle.changes_nothing(woken.cursor), "{idle:?}");
    cp.stop().await;
}

/// A report whose state differs from the one this control plane last wrote
/// certainly changes something: it is written without first reading whether
/// it does, and what it says is what the node shows.
#[tokio::test]
async fn a_report_that_certainly_changes_something_is_written_unread() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, exec) = cp.alice_and_edge().await;
    deploy(&alice, "edge-1", "n0").await.unwrap();
    let said = |i: usize| {
        let mut o = obs("n0", 1, ObservedNodeStatus::Running);
        o.processes[0].message = Some(format!("report {i}"));
        o
    };
    exec.report("edge-1", vec![said(0)]).await.unwrap();
    let reads = cp.state.store.reads();
    for i in 1..=20 {
        let resp = exec.report("edge-1", vec![said(i)]).await.unwrap();
        assert_eq!((resp.accepted, resp.rejected.len()), (1, 0));
    }
    assert!(cp.state.store.reads() - reads < 5, "{} reads for 20 changed reports", cp.state.store.reads() - reads);
    let shown = node(&alice, "n0").await;
    assert_eq!(shown["observed"]["processes"][0]["message"], "report 20", "{shown}");
    cp.stop().await;
}

/// What is held of an executor in memory goes stale when its own row is
/// written, not when another one's is: a fleet's first syncs (and returns)
/// leave the others' heartbeats unread.
#[tokio::test]
async fn another_executors_first_sync_leaves_a_heartbeat_unread() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, edge1) = cp.alice_and_edge().await;
    let heartbeat = sync_req("edge-1", ExecutorKind::Agent, "1.0.0");
    edge1.sync_executor(&heartbeat).await.unwrap();
    let mut reads = 0;
    for i in 0..10 {
        let (other, _) = cp.executor_client(&alice, None).await;
        other.sync_executor(&sync_req(&format!("edge-new-{i}"), ExecutorKind::Agent, "1.0.0")).await.unwrap();
        let before = cp.state.store.reads();
        edge1.sync_executor(&heartbeat).await.unwrap();
        reads += cp.state.store.reads() - before;
    }
    // Each would read its key and executor again if every first sync made all stale.
    assert!(reads < 5, "{reads} reads for 10 heartbeats");
    cp.stop().await;
}

#[tokio::test]
async fn a_change_wakes_only_the_executor_that_runs_the_node() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, edge1) = cp.alice_and_edge().await;
    let (edge2, _) = cp.executor_client(&alice, None).await;
    edge2.sync_executor(&sync_req("edge-2", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    deploy(&alice, "edge-1", "a").await.unwrap();
    deploy(&alice, "edge-2", "b").await.unwrap();
    let (c1, c2) = (edge1.poll_specs("edge-1", 0, Duration::ZERO).await.unwrap().cursor, edge2.poll_specs("edge-2", 0, Duration::ZERO).await.unwrap().cursor);
    let (e1, e2) = (edge1.clone(), edge2.clone());
    let w1 = tokio::spawn(async move { e1.poll_specs("edge-1", c1, Duration::from_secs(30)).await.unwrap() });
    let w2 = tokio::spawn(async move { e2.poll_specs("edge-2", c2, Duration::from_secs(2)).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(200)).await;
    lifecycle(&alice, "a", "stop").await.unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(10), w1).await.expect("edge-1's poll woke").unwrap();
    assert!(woke.cursor > c1);
    // edge-2's poll ran to its own deadline: nothing of its nodes changed
    let slept = w2.await.unwrap();
    assert_eq!(slept.cursor, c2);
    cp.stop().await;
}

#[tokio::test]
async fn nodes_list_in_pages_by_name() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, _exec) = cp.alice_and_edge().await;
    let (edge2, _) = cp.executor_client(&alice, None).await;
    edge2.sync_executor(&sync_req("edge-2", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    for i in [3, 0, 4, 1, 2] {
        deploy(&alice, if i % 2 == 0 { "edge-1" } else { "edge-2" }, &format!("n{i}")).await.unwrap();
    }
    let names = |page: Vec<novacula_core::wire::NodeView>| page.into_iter().map(|n| n.name).collect::<Vec<_>>();
    assert_eq!(names(alice.nodes_page(None, None, 2).await.unwrap()), ["n0", "n1"]);
    assert_eq!(names(alice.nodes_page(None, Some("n1"), 2).await.unwrap()), ["n2", "n3"]);
    assert_eq!(names(alice.nodes_page(None, Some("n3"), 2).await.unwrap()), ["n4"]);
    // a filter skips rows, and the page still fills from the ones after them
    assert_eq!(names(alice.nodes_page(Some("edge-1"), None, 2).await.unwrap()), ["n0", "n2"]);
    assert_eq!(names(alice.nodes_page(Some("edge-1"), Some("n2"), 2).await.unwrap()), ["n4"]);
    assert!(alice.nodes_page(Some("edge-9"), None, 2).await.unwrap().is_empty());
    assert_eq!(names(alice.nodes(Some("edge-2")).await.unwrap()), ["n1", "n3"]);
    assert_eq!(alice.nodes(None).await.unwrap().len(), 5);
    for bad in [0, 1001] {
        assert_eq!(alice.nodes_page(None, None, bad).await.unwrap_err().status(), Some(400), "limit {bad}");
    }

    // By chain and by phase (derived now), alone or with the executor's.
    let by = |executor: Option<&str>, chain: Option<&str>, phase: Option<&str>| novacula_client::NodeQuery {
        executor: executor.map(str::to_string),
        chain: chain.map(str::to_string),
        phase: phase.map(str::to_string),
    };
    assert_eq!(alice.nodes_matching(&by(None, Some("ethereum"), None)).await.unwrap().len(), 5);
    assert!(alice.nodes_matching(&by(None, Some("bitcoin"), None)).await.unwrap().is_empty());
    let rev = node(&alice, "n2").await["revision"].as_u64().unwrap();
    _exec.report("edge-1", vec![observed("n2", rev, ObservedNodeStatus::Running)]).await.unwrap();
    assert_eq!(names(alice.nodes_matching(&by(None, None, Some("running"))).await.unwrap()), ["n2"]);
    assert_eq!(names(alice.nodes_matching(&by(Some("edge-1"), Some("ethereum"), Some("running"))).await.unwrap()), ["n2"]);
    assert!(alice.nodes_matching(&by(Some("edge-2"), None, Some("running"))).await.unwrap().is_empty());
    let other = node(&alice, "n0").await["phase"].as_str().unwrap().to_string();
    assert_ne!(other, "running");
    // a page of matches fills from past the rows that do not match
    assert_eq!(names(alice.nodes_page_matching(&by(None, None, Some(&other)), None, 2).await.unwrap()), ["n0", "n1"]);
    assert_eq!(names(alice.nodes_page_matching(&by(None, None, Some(&other)), Some("n1"), 2).await.unwrap()), ["n3", "n4"]);
    let err = alice.nodes_matching(&by(None, None, Some("sleeping"))).await.unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(err.to_string().contains("phase"), "{err}");
    cp.stop().await;
}

#[tokio::test]
async fn restart_on_same_redb_file_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cp.redb");
    let store = Store::open(&path).unwrap();
    seed(&store);
    let clock = Arc::new(ManualClock::new(T0));
    let cp = Cp::start(store, clock.clone(), Config::default()).await;
    let alice = cp.login("alice").await;
    let (exec, key) = cp.executor_client(&alice, Some("edge-1")).await;
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    deploy(&alice, "edge-1", "n1").await.unwrap();
    lifecycle(&alice, "n1", "restart").await.unwrap();
    exec.report("edge-1", vec![observed("n1", 2, ObservedNodeStatus::Running)]).await.unwrap();
    let before_events = events(&alice, 0).await;
    let before_node = node(&alice, "n1").await;
    let cursor = exec.poll_specs("edge-1", 0, Duration::ZERO).await.unwrap().cursor;
    let state = cp.stop().await;
    drop(state); // closes the database file

    let cp = Cp::start(Store::open(&path).unwrap(), clock, Config::default()).await;
    // the session token, the API key, the node, its observed state and every event survive
    let same_session = novacula_client::HttpApi::new(&cp.url, alice.token().map(String::from)).unwrap();
    assert_eq!(node(&same_session, "n1").await, before_node);
    let after_events = events(&cp.login("alice").await, 0).await;
    assert_eq!(after_events, before_events);
    let exec2 = novacula_client::HttpApi::new(&cp.url, Some(key["key"].as_str().unwrap().into())).unwrap();
    let again = exec2.poll_specs("edge-1", 0, Duration::ZERO).await.unwrap();
    assert_eq!(again.cursor, cursor);
    assert_eq!(again.nodes[0].revision, Revision(2));
    // new writes continue the sequences instead of reusing them
    let alice = cp.login("alice").await;
    assert_eq!(lifecycle(&alice, "n1", "stop").await.unwrap()["revision"], 3);
    let last = events(&alice, 0).await;
    assert!(last.last().unwrap()["seq"].as_u64().unwrap() > before_events.last().unwrap()["seq"].as_u64().unwrap());
    cp.stop().await;
}

#[tokio::test]
async fn events_paginate_in_order() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, _exec) = cp.alice_and_edge().await;
    for i in 0..5 {
        deploy(&alice, "edge-1", &format!("n{i}")).await.unwrap();
    }
    let all = events(&alice, 0).await;
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page: Value = alice.get(&format!("/api/v1/events?after={after}&limit=2")).await.unwrap();
        let evs = page["events"].as_array().unwrap();
        if evs.is_empty() {
            break;
        }
        assert!(evs.len() <= 2);
        seen.extend(evs.iter().cloned());
        after = page["next"].as_u64().unwrap();
    }
    assert_eq!(seen, all);
    let seqs: Vec<u64> = seen.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    let only: Value = alice.get("/api/v1/events?node=n3").await.unwrap();
    assert!(only["events"].as_array().unwrap().iter().all(|e| e["node"] == "n3"));
    assert_eq!(alice.get::<Value>("/api/v1/events?limit=0").await.unwrap_err().status(), Some(400));
    cp.stop().await;
}

/// Every test of this file again, on PostgreSQL instead of redb.
#[test]
fn this_suite_passes_on_postgres() {
    rerun_on_postgres("this_suite_passes_on_postgres");
}

/// A heartbeat that changes nothing but "last seen" writes nothing: the
/// executor shows online and last seen from memory, and the store gets the
/// newest value in the next batch. A sync that changes meaning (a new
/// version) is written before it is answered.
#[tokio::test]
async fn a_heartbeat_that_changes_nothing_is_written_in_the_next_batch() {
    use novacula_control_plane::store::model::ExecutorRow;
    use novacula_control_plane::store::{StoreError, EXECUTORS};
    // No sweep (which would write the batch) while the test looks.
    let cp = Cp::with_orgs(Config { sweep_interval: Duration::from_secs(24 * 3600), ..Config::default() }).await;
    let alice = cp.login("alice").await;
    let (exec, _) = cp.executor_client(&alice, Some("edge-1")).await;
    let stored = || cp.state.store.read(|r| Ok::<_, StoreError>(r.get::<ExecutorRow>(EXECUTORS, "acme/edge-1")?.unwrap().updated_at)).unwrap();
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let first = stored();
    cp.clock.advance(Duration::from_secs(5));
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    assert_eq!(stored(), first, "the store is not written for a heartbeat");
    let view: Value = alice.get("/api/v1/executors/edge-1").await.unwrap();
    let later = first.plus(Duration::from_secs(5));
    assert_eq!((view["online"].as_bool(), view["updatedAt"].as_u64(), view["keyLastUsedAt"].as_u64()), (Some(true), Some(later.0), Some(later.0)), "{view}");
    assert_eq!(cp.state.liveness.flush(&cp.state.store).unwrap(), 2, "the executor's row and its key's last use");
    assert_eq!(stored(), later);
    assert_eq!(cp.state.liveness.flush(&cp.state.store).unwrap(), 0, "nothing new: nothing written");

    cp.clock.advance(Duration::from_secs(5));
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.1")).await.unwrap();
    assert_eq!(stored(), later.plus(Duration::from_secs(5)), "a new version is written at once");
    // Past the timeout with no heartbeat, the next one is a reconnection: written, with its event.
    cp.clock.advance(Duration::from_secs(60));
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.1")).await.unwrap();
    assert_eq!(stored(), later.plus(Duration::from_secs(65)));
}

/// After its first sync an executor sends the digest the control plane
/// answered it with, not its capabilities: a matching digest is a heartbeat;
/// another one is answered with the digest held (the executor then sends them
/// again) and changes nothing stored; an executor the control plane does not
/// know must send them; a sync with neither is refused.
#[tokio::test]
async fn a_sync_with_the_digest_of_known_capabilities_is_a_heartbeat() {
    use novacula_control_plane::store::model::ExecutorRow;
    use novacula_control_plane::store::EXECUTORS;
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let (exec, _) = cp.executor_client(&alice, None).await;
    let digest_only = |name: &str, version: &str, digest: &str| {
        let mut r = sync_req(name, ExecutorKind::Agent, version);
        r.capabilities = None;
        r.capabilities_digest = Some(digest.into());
        r
    };
    let stored = || cp.state.store.read(|r| r.get::<ExecutorRow>(EXECUTORS, "acme/edge-1")).unwrap();
    let digest = caps().digest();

    let err = exec.sync_executor(&digest_only("edge-1", "1.0.0", &digest)).await.unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    assert!(stored().is_none(), "nothing admitted without capabilities");

    let first = exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    assert_eq!(first.capabilities_digest.as_deref(), Some(digest.as_str()));
    assert_eq!(stored().unwrap().capabilities_digest, digest);

    cp.clock.advance(Duration::from_secs(5));
    let beat = exec.sync_executor(&digest_only("edge-1", "1.0.0", &digest)).await.unwrap();
    assert_eq!(beat.capabilities_digest.as_deref(), Some(digest.as_str()));
    let view: Value = alice.get("/api/v1/executors/edge-1").await.unwrap();
    assert_eq!(view["online"], true, "{view}");
    assert_eq!(view["capabilities"]["chains"][0]["chain"], "ethereum", "the capabilities sent first are kept: {view}");

    // A digest of other capabilities (say, the control plane's data was
    // restored from before a change): heard, and asked for them.
    let other = "0".repeat(64);
    let asked = exec.sync_executor(&digest_only("edge-1", "1.0.1", &other)).await.unwrap();
    assert_eq!(asked.capabilities_digest.as_deref(), Some(digest.as_str()), "not the one sent: send them");
    let row = stored().unwrap();
    assert_eq!((row.capabilities_digest.as_str(), row.version.as_str()), (digest.as_str(), "1.0.1"), "the version is taken, the capabilities kept");

    let mut neither = sync_req("edge-1", ExecutorKind::Agent, "1.0.1");
    neither.capabilities = None;
    for bad in [None, Some("abc".to_string())] {
        neither.capabilities_digest = bad;
        let err = exec.sync_executor(&neither).await.unwrap_err();
        assert_eq!(err.status(), Some(400), "{err}");
        assert!(err.to_string().contains("capabilitiesDigest"), "{err}");
    }
    cp.stop().await;
}

/// The executor's side: its first sync carries the capabilities, the next
/// ones their digest; asked for them again, it sends them once more.
#[tokio::test]
async fn an_executor_sends_its_capabilities_until_they_are_acknowledged() {
    use novacula_agent::backend::Processes;
    use novacula_agent::driver::LocalDriver;
    use novacula_control_plane::store::model::ExecutorRow;
    use novacula_control_plane::store::{StoreError, EXECUTORS};
    use novacula_executor::adapter::Adapters;
    use novacula_executor::loops::{Executor, Identity, Intervals};
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let (api, _) = cp.executor_client(&alice, Some("edge-1")).await;
    let data = tempfile::tempdir().unwrap();
    let adapters = Adapters::standard();
    let digest = adapters.capabilities().digest();
    let backend = Processes::new(LocalDriver::new(data.path()).unwrap(), adapters);
    let id = Identity { name: "edge-1".into(), kind: ExecutorKind::Agent, version: "1.0.0".into(), channel: novacula_core::Channel::Stable };
    let exec = Executor::new(id, api, backend, Intervals::default());
    let stored = || cp.state.store.read(|r| Ok::<_, StoreError>(r.get::<ExecutorRow>(EXECUTORS, "acme/edge-1")?.unwrap())).unwrap();

    exec.sync_once().await.unwrap();
    assert_eq!(stored().capabilities_digest, digest, "the first sync carried them");
    // The control plane loses them (a restore from before the executor's first sync, say).
    let mut row = stored();
    row.capabilities_digest = "0".repeat(64);
    cp.state.store.write(|w| w.put(EXECUTORS, "acme/edge-1", &row)).unwrap();
    exec.sync_once().await.unwrap();
    assert_eq!(stored().capabilities_digest, "0".repeat(64), "this sync carried only the digest, and was asked for more");
    exec.sync_once().await.unwrap();
    assert_eq!(stored().capabilities_digest, digest, "sent in full after being asked");
    cp.stop().await;
}

/// A report of the state already stored (no transition, no alert) writes
/// nothing: the node shows it was observed just now, from memory, and the
/// store gets the time in a batch once it lags a minute. A report that
/// changes the state is written at once.
#[tokio::test]
async fn a_report_that_changes_nothing_is_written_in_the_next_batch() {
    use novacula_control_plane::store::model::ObservedRow;
    use novacula_control_plane::store::{StoreError, OBSERVED};
    let cp = Cp::with_orgs(Config { sweep_interval: Duration::from_secs(24 * 3600), ..Config::default() }).await;
    let alice = cp.login("alice").await;
    let (exec, _) = cp.executor_client(&alice, Some("edge-1")).await;
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    deploy(&alice, "edge-1", "eth-1").await.unwrap();
    let stored = || cp.state.store.read(|r| Ok::<_, StoreError>(r.get::<ObservedRow>(OBSERVED, "acme/eth-1")?.unwrap())).unwrap();
    exec.report("edge-1", vec![observed("eth-1", 1, ObservedNodeStatus::Running)]).await.unwrap();
    let first = stored().reported_at;
    cp.clock.advance(Duration::from_secs(10));
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let r = exec.report("edge-1", vec![observed("eth-1", 1, ObservedNodeStatus::Running)]).await.unwrap();
    assert_eq!(r.accepted, 1);
    assert_eq!(stored().reported_at, first, "not written");
    let later = first.plus(Duration::from_secs(10));
    let n = node(&alice, "eth-1").await;
    assert_eq!((n["phase"].as_str(), n["observedAt"].as_u64()), (Some("running"), Some(later.0)), "{n}");
    cp.state.liveness.flush(&cp.state.store).unwrap();
    assert_eq!(stored().reported_at, first, "shown, never acted on: written once it lags a minute");
    cp.clock.advance(Duration::from_secs(50));
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    exec.report("edge-1", vec![observed("eth-1", 1, ObservedNodeStatus::Running)]).await.unwrap();
    let later = later.plus(Duration::from_secs(50));
    cp.state.liveness.flush(&cp.state.store).unwrap();
    assert_eq!(stored().reported_at, later, "a minute behind: written");

    cp.clock.advance(Duration::from_secs(10));
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    exec.report("edge-1", vec![observed("eth-1", 1, ObservedNodeStatus::Error)]).await.unwrap();
    let now = stored();
    assert_eq!(
        (now.reported_at, now.state.processes[0].status),
        (later.plus(Duration::from_secs(10)), ObservedNodeStatus::Error),
        "a change is written at once"
    );
    assert_eq!(node(&alice, "eth-1").await["phase"], "error");
}

#[tokio::test]
async fn executors_list_in_pages_by_name() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    for name in ["edge-c", "edge-a", "edge-b"] {
        let (exec, _) = cp.executor_client(&alice, Some(name)).await;
        exec.sync_executor(&sync_req(name, ExecutorKind::Agent, "1.0.0")).await.unwrap();
    }
    let names = |v: Value| -> Vec<String> { v.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect() };
    assert_eq!(names(alice.get("/api/v1/executors?limit=2").await.unwrap()), ["edge-a", "edge-b"]);
    assert_eq!(names(alice.get("/api/v1/executors?after=edge-b&limit=2").await.unwrap()), ["edge-c"], "a short page is the last");
    assert_eq!(names(alice.get("/api/v1/executors").await.unwrap()).len(), 3);
    let err = alice.get::<Value>("/api/v1/executors?limit=0").await.unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
}

#[tokio::test]
async fn the_client_reads_every_page_of_executors() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let count = novacula_client::EXECUTOR_PAGE + 1;
    for i in 0..count {
        let name = format!("edge-{i:04}");
        let (exec, _) = cp.executor_client(&alice, Some(&name)).await;
        exec.sync_executor(&sync_req(&name, ExecutorKind::Agent, "1.0.0")).await.unwrap();
    }
    let all = alice.executors().await.unwrap();
    assert_eq!(all.len(), count, "more executors than one page holds");
    let mut names: Vec<_> = all.iter().map(|e| e.executor.name.clone()).collect();
    names.dedup();
    assert_eq!(names.len(), count, "no executor twice");
}

#[tokio::test]
async fn an_idle_executor_without_nodes_is_deleted_and_its_name_freed() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let (exec, _) = cp.executor_client(&alice, Some("old-edge")).await;
    exec.sync_executor(&sync_req("old-edge", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    deploy(&alice, "old-edge", "n1").await.unwrap();
    let refused = |e: novacula_client::ClientError| (e.status(), e.to_string());
    let (status, why) = refused(alice.delete_executor("old-edge").await.unwrap_err());
    assert!(status == Some(409) && why.contains("1 node"), "{why}");
    // A deleted node counts until the executor has torn it down.
    let _: Value = alice.call(Method::DELETE, "/api/v1/nodes/n1", None::<&()>).await.unwrap();
    assert_eq!(alice.delete_executor("old-edge").await.unwrap_err().status(), Some(409));
    let gone = ObservedNodeState { removed: true, ..observed("n1", 2, ObservedNodeStatus::Stopped) };
    exec.report("old-edge", vec![gone]).await.unwrap();
    assert_eq!(alice.get::<Value>("/api/v1/nodes/n1").await.unwrap_err().status(), Some(404), "torn down");
    // Still syncing: refused until it goes quiet (or is deactivated).
    let (status, why) = refused(alice.delete_executor("old-edge").await.unwrap_err());
    assert!(status == Some(409) && why.contains("online"), "{why}");
    cp.advance(Duration::from_secs(31));
    alice.delete_executor("old-edge").await.unwrap();
    assert_eq!(alice.executor("old-edge").await.unwrap_err().status(), Some(404));
    assert_eq!(alice.delete_executor("old-edge").await.unwrap_err().status(), Some(404));
    // Its key died with it; the event and the audit entry say so.
    assert_eq!(exec.sync_executor(&sync_req("old-edge", ExecutorKind::Agent, "1.0.0")).await.unwrap_err().status(), Some(401));
    let deleted: Vec<Value> = events(&alice, 0).await.into_iter().filter(|e| e["kind"] == "executor.deleted").collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["message"], "executor old-edge deleted; its name is free");
    let page = alice.audit(0, 100, &novacula_client::AuditFilter { action: Some("executor.deleted".into()), ..Default::default() }).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    // The name is free: a new executor, even of another kind, takes it.
    let (fresh, _) = cp.executor_client(&alice, Some("old-edge")).await;
    fresh.sync_executor(&sync_req("old-edge", ExecutorKind::Operator, "1.0.0")).await.unwrap();
    assert_eq!(alice.executor("old-edge").await.unwrap().executor.kind, ExecutorKind::Operator);
    cp.stop().await;
}

#[tokio::test]
async fn runtime_events_reach_the_feed_for_the_executors_own_nodes() {
    use novacula_core::events::Level;
    use novacula_core::observed::RuntimeEvent;
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, exec) = cp.alice_and_edge().await;
    deploy(&alice, "edge-1", "n1").await.unwrap();
    let event = |node: &str, message: &str| RuntimeEvent { node: node.into(), process: "execution".into(), level: Level::Error, message: message.into() };
    let resp = exec
        .report_with_events(
            "edge-1",
            vec![observed("n1", 1, ObservedNodeStatus::Error)],
            vec![event("n1", "process execution failed: exit 1\u{7}"), event("not-ours", "x")],
        )
        .await
        .unwrap();
    assert_eq!(resp.rejected, vec!["not-ours: runtime event for no such node on this executor".to_string()]);
    let page = alice.events(0, 100, Some("n1"), Some("runtime.event")).await.unwrap();
    assert_eq!(page.events.len(), 1);
    let e = &page.events[0];
    assert_eq!(
        (e.level, e.message.as_str(), e.actor.as_str()),
        (Level::Error, "node n1: process execution failed: exit 1", "executor:edge-1"),
        "control characters dropped"
    );
    // The same state again with an event is not skipped as "nothing changed".
    exec.report_with_events("edge-1", vec![observed("n1", 1, ObservedNodeStatus::Error)], vec![event("n1", "again")]).await.unwrap();
    assert_eq!(alice.events(0, 100, Some("n1"), Some("runtime.event")).await.unwrap().events.len(), 2);
    let many: Vec<RuntimeEvent> = (0..101).map(|i| event("n1", &format!("e{i}"))).collect();
    assert_eq!(exec.report_with_events("edge-1", vec![], many).await.unwrap_err().status(), Some(400));
    cp.stop().await;
}

/// A deploy whose caller goes away while its write commits (its client hung
/// up) still wakes the executor's long-poll: the change is committed and told.
#[tokio::test]
async fn a_deploy_whose_caller_is_gone_still_wakes_the_poll() {
    use novacula_control_plane::services::{audit::Who, nodes};
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, _edge) = cp.alice_and_edge().await;
    let mut poll = cp.state.polls.subscribe("acme", "edge-1");
    let before = *poll.changes.borrow_and_update();
    let who = Who::user("alice", novacula_core::audit::Source::Api);
    let req = novacula_core::wire::DeployRequest { executor: "edge-1".into(), spec: spec("gone-1") };
    // Polled once (its write queued for the group commit), then dropped.
    let once = tokio::time::timeout(Duration::ZERO, nodes::deploy(&cp.state, "acme", &who, req)).await;
    assert!(once.is_err(), "the deploy answered before its commit");
    tokio::time::timeout(Duration::from_secs(10), poll.changes.changed()).await.expect("the poll was not woken").unwrap();
    assert!(*poll.changes.borrow() > before);
    assert_eq!(node(&alice, "gone-1").await["spec"]["name"], "gone-1");
}
