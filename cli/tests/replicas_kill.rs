//! Two `novacula serve` processes on one PostgreSQL database, and the one
//! that holds the lease killed with SIGKILL while users write through it:
//! every write it acknowledged is there, the other replica takes over the
//! time-based work, and each `node_down` alert is recorded exactly once (the
//! ones the dead replica fired are not fired again; the later ones are not lost).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use novacula_client::{HttpApi, Method};
use novacula_control_plane::store::pg_server;
use novacula_core::wire::{CreateKeyRequest, SyncExecutorRequest};
use novacula_core::{Channel, ExecutorKind, NodeSpec, ObservedNodeState, ObservedNodeStatus, ObservedProcess, Revision};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const PASSWORD: &str = "replica-test-password";

/// A replica whose database sessions are named `name` (to tell who holds the lease).
async fn replica(database: &str, name: &str) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let database = format!("{database}{}application_name={name}", if database.contains('?') { '&' } else { '?' });
    let child = Command::new(env!("CARGO_BIN_EXE_novacula"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database", &database])
        .env("NOVACULA_BOOTSTRAP_PASSWORD", PASSWORD)
        .env_remove("NOVACULA_DB")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let api = HttpApi::new(&url, None).unwrap();
    for _ in 0..100 {
        if api.raw(Method::GET, "/healthz", None, Duration::from_secs(2)).await.is_ok() {
            return (child, url);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("a replica did not come up");
}

fn spec(name: &str, desired: &str) -> NodeSpec {
    serde_json::from_value(json!({
        "name": name, "chain": "demo", "network": "local", "desiredState": desired,
        "clients": [{"role": "main", "client": "standin", "version": "1.0.0"}]
    }))
    .unwrap()
}

fn running(node: &str, revision: Revision) -> ObservedNodeState {
    ObservedNodeState {
        node: node.into(),
        revision,
        processes: vec![ObservedProcess { name: "main".into(), status: ObservedNodeStatus::Running, sync: None, message: None }],
        removed: false,
        disk: None,
    }
}

/// Every `alert.node_down` event, as node -> how many times it fired.
async fn alerts_fired(user: &HttpApi) -> BTreeMap<String, usize> {
    let mut fired = BTreeMap::new();
    let mut after = 0;
    loop {
        let page: Value = user.get(&format!("/api/v1/events?after={after}&limit=1000")).await.unwrap();
        let events = page["events"].as_array().unwrap();
        for e in events {
            after = after.max(e["seq"].as_u64().unwrap());
            if e["kind"] == novacula_core::events::NODE_DOWN {
                *fired.entry(e["node"].as_str().unwrap().to_string()).or_default() += 1;
            }
        }
        if events.len() < 1000 {
            return fired;
        }
    }
}

/// Wait (at most 20 s) until replica `name` holds the lease.
async fn until_lease_held_by(database: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let holder = pg_server::lease_holder(database).unwrap();
        if holder.as_deref() == Some(name) {
            return;
        }
        assert!(Instant::now() < deadline, "the lease is held by {holder:?}, not {name}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Wait (at most 60 s) until every node of `nodes` has fired.
async fn until_fired(user: &HttpApi, nodes: &BTreeSet<String>) -> BTreeMap<String, usize> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let fired = alerts_fired(user).await;
        if nodes.iter().all(|n| fired.contains_key(n)) {
            return fired;
        }
        assert!(Instant::now() < deadline, "node_down never fired for some of {nodes:?}: {fired:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn killing_the_replica_that_holds_the_lease_loses_no_write_and_no_alert() {
    let Some(database) = pg_server::database_for_test() else { return };
    // A starts alone and takes the lease at its first sweep; B cannot take it while A lives.
    let (mut a_proc, a_url) = replica(&database, "replica-a").await;
    until_lease_held_by(&database, "replica-a").await;
    let (_b_proc, b_url) = replica(&database, "replica-b").await;
    let login: Value =
        HttpApi::new(&a_url, None).unwrap().call(Method::POST, "/api/v1/login", Some(&json!({"username": "admin", "password": PASSWORD}))).await.unwrap();
    let token = login["token"].as_str().map(String::from);
    let (a, b) = (HttpApi::new(&a_url, token.clone()).unwrap(), HttpApi::new(&b_url, token).unwrap());
    b.get::<Value>("/api/v1/me").await.expect("a session opened on A works on B");

    // Five executors, two nodes each, all running. e0-e2 talk to A, e3-e4 to B.
    let caps = novacula_executor::adapter::Adapters::standard().with_demo_chain().capabilities();
    let mut execs = Vec::new();
    for i in 0..5 {
        let name = format!("e{i}");
        let key = a.create_key(&CreateKeyRequest { label: name.clone(), executor: Some(name.clone()), ..Default::default() }).await.unwrap().key;
        let api = HttpApi::new(if i < 3 { &a_url } else { &b_url }, Some(key)).unwrap();
        let sync = SyncExecutorRequest {
            name: name.clone(),
            kind: ExecutorKind::Agent,
            version: env!("CARGO_PKG_VERSION").into(),
            channel: Channel::Stable,
            capabilities: Some(caps.clone()),
            capabilities_digest: None,
        };
        api.sync_executor(&sync).await.unwrap();
        let mut reports = Vec::new();
        for j in 0..2 {
            let view = a.deploy(&name, spec(&format!("{name}-n{j}"), "running")).await.unwrap();
            reports.push(running(&view.name, view.revision));
        }
        api.report(&name, reports).await.unwrap();
        execs.push((api, sync));
    }
    let nodes_of = |group: std::ops::Range<usize>| -> BTreeSet<String> { group.flat_map(|i| (0..2).map(move |j| format!("e{i}-n{j}"))).collect() };

    // e0-e2 fall silent now; e3-e4 keep syncing for 12 s more, so their
    // silence reaches the 30 s timeout after A is gone.
    let late: Vec<_> = execs.drain(3..).collect();
    tokio::spawn(async move {
        let until = Instant::now() + Duration::from_secs(12);
        while Instant::now() < until {
            for (api, sync) in &late {
                let _ = api.sync_executor(sync).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });

    // Users keep writing through A: stopped nodes (no alert is theirs), each kept once acknowledged.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (a, acked) = (a.clone(), acked.clone());
        tokio::spawn(async move {
            for n in 0.. {
                let name = format!("w-{n:05}");
                match a.deploy("e3", spec(&name, "stopped")).await {
                    Ok(_) => acked.lock().unwrap().push(name),
                    Err(e) if e.status().is_none() => return n, // A is gone (that write may or may not have landed)
                    Err(e) => panic!("{name}: {e}"),
                }
            }
            unreachable!()
        })
    };

    // A sweeps e0-e2 offline (30 s of silence) and fires their alerts; then it is killed mid-write.
    let early = until_fired(&b, &nodes_of(0..3)).await;
    assert!(early.values().all(|&n| n == 1), "{early:?}");
    assert_eq!(pg_server::lease_holder(&database).unwrap().as_deref(), Some("replica-a"), "A swept them");
    a_proc.start_kill().unwrap();
    a_proc.wait().await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), writer).await.expect("the writer noticed A was gone").unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty(), "writes went through A before it died");

    // Every write A acknowledged is on the database, as B serves it.
    let present: BTreeSet<String> = b.nodes(Some("e3")).await.unwrap().into_iter().map(|n| n.name).collect();
    let lost: Vec<&String> = acked.iter().filter(|n| !present.contains(*n)).collect();
    assert!(lost.is_empty(), "acknowledged by A, missing after its death: {lost:?}");

    // B takes the lease A's death released, and notices e3-e4's silence.
    until_lease_held_by(&database, "replica-b").await;
    let all = until_fired(&b, &nodes_of(0..5)).await;
    assert_eq!(all.keys().cloned().collect::<BTreeSet<_>>(), nodes_of(0..5), "alerts only for the nodes that should run: {all:?}");
    assert!(all.values().all(|&n| n == 1), "each alert recorded exactly once: {all:?}");
    let firing: Value = b.get("/api/v1/alerts").await.unwrap();
    assert_eq!(firing.as_array().unwrap().len(), 10, "{firing}");
}
