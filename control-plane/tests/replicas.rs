//! Two control planes on one PostgreSQL database, as two replicas behind a
//! load balancer: a spec written through one wakes the long-poll an executor
//! holds on the other, and time-based work runs on one of them at a time,
//! moving to the other when its holder goes.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::*;
use novacula_client::HttpApi;
use novacula_control_plane::clock::ManualClock;
use novacula_control_plane::store::pg_server;
use novacula_control_plane::{Config, Store};
use novacula_core::ExecutorKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Two control planes on one fresh database with orgs `acme` and `globex`.
async fn two_replicas() -> Option<(Cp, Cp)> {
    two_replicas_with(Config::default()).await
}

async fn two_replicas_with(config: Config) -> Option<(Cp, Cp)> {
    let url = pg_server::database_for_test()?;
    let clock = Arc::new(ManualClock::new(T0));
    let first = Store::open_postgres(&url).unwrap();
    seed(&first);
    let a = Cp::start(first, clock.clone(), config.clone()).await;
    let b = Cp::start(Store::open_postgres(&url).unwrap(), clock, config).await;
    Some((a, b))
}

/// The lease holder's sweeper keeps executors in an index of deadlines and
/// reads one only when it is due or changed: an executor that first syncs,
/// and later comes back, through the other replica is still seen, told
/// through the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_sees_executors_that_sync_through_the_other_replica() {
    let Some((a, b)) = two_replicas_with(Config { sweep_interval: Duration::from_millis(100), ..Config::default() }).await else { return };
    let alice = a.login("alice").await;
    let (_, created) = a.executor_client(&alice, Some("edge-1")).await;
    // Let the holder's first pass (which reads every executor) go by.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let other = if a.state.store.hold_lease().unwrap() { &b } else { &a };
    let exec = HttpApi::new(&other.url, Some(created["key"].as_str().unwrap().to_string())).unwrap();
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let open = async || alice.get::<Vec<serde_json::Value>>("/api/v1/incidents?status=open").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await; // the holder hears of edge-1
    a.advance(Duration::from_secs(31));
    let deadline = Instant::now() + Duration::from_secs(20);
    while open().await.is_empty() {
        assert!(Instant::now() < deadline, "edge-1, silent past the timeout, was never found offline");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open().await[0]["subject"]["name"], "edge-1");
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    while !open().await.is_empty() {
        assert!(Instant::now() < deadline, "edge-1 came back through the other replica; its incident stayed open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_write_through_one_replica_wakes_a_poll_held_by_the_other_and_the_lease_moves() {
    let Some((a, b)) = two_replicas().await else { return };

    // Alice works through A; the executor talks to B.
    let alice = a.login("alice").await;
    let (exec_on_a, created) = a.executor_client(&alice, Some("edge-1")).await;
    drop(exec_on_a);
    let exec = HttpApi::new(&b.url, Some(created["key"].as_str().unwrap().to_string())).unwrap();
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    // B reads the executor's cursor once; the poll from it then waits on B
    // without reading (crate::polls) until the database tells of A's write.
    let cursor = exec.poll_spec_changes("edge-1", 0, Duration::ZERO).await.unwrap().cursor;
    let poll = tokio::spawn(async move {
        let started = Instant::now();
        let specs = exec.poll_spec_changes("edge-1", cursor, Duration::from_secs(20)).await.unwrap();
        (specs, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    alice.deploy("edge-1", spec("eth-1")).await.unwrap();
    let (specs, waited) = poll.await.unwrap();
    assert_eq!(specs.nodes.iter().map(|n| n.spec.name.as_str()).collect::<Vec<_>>(), ["eth-1"]);
    assert!(waited < Duration::from_secs(10), "woken through the database, not by the wait's end: {waited:?}");

    // One of them holds the lease for time-based work, never both.
    let held = |cp: &Cp| cp.state.store.hold_lease().unwrap();
    let (on_a, on_b) = (held(&a), held(&b));
    assert!(on_a ^ on_b, "exactly one replica sweeps: a={on_a} b={on_b}");
    let (holder, other) = if on_a { (a, b) } else { (b, a) };
    // The holder goes (its connections close): the other one takes the lease over.
    drop(holder.stop().await);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !held(&other) {
        assert!(Instant::now() < deadline, "the lease did not move to the remaining replica");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A replica keeps the keys and executors its heartbeats read in memory:
/// a key revoked through the other replica is refused there as soon as the
/// database tells it, not when what it keeps expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_through_one_replica_is_refused_by_the_other() {
    let Some((a, b)) = two_replicas().await else { return };
    let alice = a.login("alice").await;
    let (_, created) = a.executor_client(&alice, Some("edge-1")).await;
    let exec = HttpApi::new(&b.url, Some(created["key"].as_str().unwrap().to_string())).unwrap();
    for _ in 0..3 {
        exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    }
    let id = created["id"].as_str().unwrap();
    let _: serde_json::Value = alice.call::<(), _>(novacula_client::Method::POST, &format!("/api/v1/keys/{id}/revoke"), None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.is_ok() {
        assert!(Instant::now() < deadline, "the other replica still takes the revoked key");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
}

/// An executor given both replicas' URLs moves to the other when the one it
/// talks to cannot be reached.
#[tokio::test]
async fn an_executor_fails_over_to_the_other_replica() {
    let Some((a, b)) = two_replicas().await else { return };
    let alice = b.login("alice").await;
    let (_, created) = b.executor_client(&alice, Some("edge-1")).await;
    let exec = HttpApi::new(&format!("{},{}", a.url, b.url), Some(created["key"].as_str().unwrap().to_string())).unwrap();
    assert_eq!(exec.base(), a.url);
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    drop(a.stop().await);
    // The request that finds A gone fails (the executor's loop retries it); the next goes to B.
    assert!(exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.is_err());
    assert_eq!(exec.base(), b.url);
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let view: serde_json::Value = alice.get("/api/v1/executors/edge-1").await.unwrap();
    assert_eq!(view["online"], true);
}

/// A node's log watched through one replica while its executor talks to the
/// other: the watch reaches the executor's replica through the database, and
/// the lines the executor pushes there reach the viewer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_watched_on_one_replica_is_fed_by_an_executor_on_the_other() {
    use novacula_core::logs::{LogBatch, LogLine};
    let Some((a, b)) = two_replicas().await else { return };
    let alice = a.login("alice").await;
    let (_, created) = a.executor_client(&alice, Some("edge-1")).await;
    let exec = HttpApi::new(&b.url, Some(created["key"].as_str().unwrap().to_string())).unwrap();
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    alice.deploy("edge-1", spec("eth-1")).await.unwrap();

    // Alice reads the log through A: the stream ends once the executor's replay is in.
    let viewer = alice.clone();
    let read = tokio::spawn(async move {
        viewer.raw(novacula_client::Method::GET, "/api/v1/nodes/eth-1/logs?process=execution&tail=10", None, Duration::from_secs(30)).await.unwrap()
    });
    // The executor syncs with B, and learns of the watch held on A.
    let deadline = Instant::now() + Duration::from_secs(10);
    let watch = loop {
        let answer = exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
        if let Some(w) = answer.log_watches.into_iter().next() {
            break w;
        }
        assert!(Instant::now() < deadline, "B never named the watch held on A");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((watch.node.as_str(), watch.process.as_str()), ("eth-1", "execution"));
    let lines = ["geth started", "imported new chain segment"].map(|t| LogLine::new(novacula_core::Timestamp(1), t)).to_vec();
    let pushed = exec
        .push_logs("edge-1", &LogBatch { watch: watch.id, node: "eth-1".into(), process: "execution".into(), replay: true, error: None, lines })
        .await
        .unwrap();
    assert!(pushed.watched, "B relays it: someone watches");
    let (status, body) = read.await.unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(status.is_success(), "{status} {body}");
    assert!(body.contains("geth started") && body.contains("imported new chain segment") && body.contains("event: replayed"), "{body}");
}

/// A rolling upgrade: once a newer release has migrated the database, the
/// replica still running this one stops touching it: its health check and
/// every call, heartbeats included, answer 503 saying why (load balancers
/// and executors go to the upgraded replica).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_older_than_its_database_steps_aside() {
    use novacula_control_plane::store::migrate;
    let Some(url) = pg_server::database_for_test() else { return };
    let clock = Arc::new(ManualClock::new(T0));
    let store = Store::open_postgres(&url).unwrap();
    seed(&store);
    // The upgraded replica holds the lease: the old one's sweeps read nothing.
    let _upgraded = pg_server::hold_lease(&url).unwrap();
    let old = Cp::start(store, clock, Config { sweep_interval: Duration::from_millis(100), ..Config::default() }).await;
    let alice = old.login("alice").await;
    let (_, created) = old.executor_client(&alice, Some("edge-1")).await;
    let exec = HttpApi::new(&old.url, Some(created["key"].as_str().unwrap().to_string())).unwrap();
    for _ in 0..3 {
        exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    }
    let anonymous = HttpApi::new(&old.url, None).unwrap();
    let health = || anonymous.raw(novacula_client::Method::GET, "/healthz", None, Duration::from_secs(10));
    assert_eq!(health().await.unwrap().0, 200);
    // The newer release's migration, from another process, once the
    // heartbeats above are written (nothing left for a sweep to write).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let newer = migrate::CURRENT + 1;
    Store::open_postgres(&url).unwrap().write(|w| w.set_counter(migrate::SCHEMA_VERSION_KEY, newer)).unwrap();
    // Learnt at a sweep's start, with no request coming.
    let deadline = Instant::now() + Duration::from_secs(10);
    while old.state.store.outdated().is_none() {
        assert!(Instant::now() < deadline, "the replica did not notice its database was migrated");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = health().await.unwrap();
    assert_eq!(status, 503);
    let said = String::from_utf8_lossy(&body);
    assert!(said.contains(&format!("schema version {newer}")) && said.contains("newer release"), "{said}");
    let e = alice.get::<serde_json::Value>("/api/v1/nodes").await.unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
    // A heartbeat, though answered from memory, is refused too: kept here
    // and never written, it would be lost.
    let e = exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
}

/// An executor given several URLs leaves one that answers 503 (a replica
/// stepping aside, as above) for the next.
#[tokio::test]
async fn an_executor_leaves_a_replica_that_answers_503() {
    let Some(url) = pg_server::database_for_test() else { return };
    let store = Store::open_postgres(&url).unwrap();
    seed(&store);
    let a = Cp::start(store, Arc::new(ManualClock::new(T0)), Config::default()).await;
    let alice = a.login("alice").await;
    let (_, created) = a.executor_client(&alice, Some("edge-1")).await;
    // A replica stepping aside: every request answered 503.
    let aside = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let aside_url = format!("http://{}", aside.local_addr().unwrap());
    let refuse = axum::Router::new().fallback(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, r#"{"error":"stepping aside"}"#) });
    tokio::spawn(async move { axum::serve(aside, refuse).await });
    let exec = HttpApi::new(&format!("{aside_url},{}", a.url), Some(created["key"].as_str().unwrap().to_string())).unwrap();
    let e = exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
    assert_eq!(exec.base(), a.url);
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
}

/// A replica stepping aside gives up the lease it held: the upgraded
/// replicas' sweeps, alerts and retention do not wait for it to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_stepping_aside_gives_up_the_lease() {
    use novacula_control_plane::store::migrate;
    let Some(url) = pg_server::database_for_test() else { return };
    let store = Store::open_postgres(&url).unwrap();
    seed(&store);
    let old = Cp::start(store, Arc::new(ManualClock::new(T0)), Config { sweep_interval: Duration::from_millis(100), ..Config::default() }).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while pg_server::lease_holder(&url).unwrap().is_none() {
        assert!(Instant::now() < deadline, "the only replica never took the lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Store::open_postgres(&url).unwrap().write(|w| w.set_counter(migrate::SCHEMA_VERSION_KEY, migrate::CURRENT + 1)).unwrap();
    while pg_server::lease_holder(&url).unwrap().is_some() {
        assert!(Instant::now() < deadline, "the replica stepping aside kept the lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(old.state.store.outdated().is_some());
}
