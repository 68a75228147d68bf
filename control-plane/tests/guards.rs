//! Isolation, roles, keys, compatibility window, liveness, alerts and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::*;
use novacula_client::{HttpApi, Method};
use novacula_control_plane::Config;
use novacula_core::{ExecutorKind, ObservedNodeStatus, Revision, Version};
use serde_json::{json, Value};
use std::time::Duration;

async fn raw(api: &HttpApi, method: Method, path: &str, body: &[u8]) -> (u16, Value) {
    let (status, bytes) = api.raw(method, path, Some(body.to_vec()), Duration::from_secs(10)).await.unwrap();
    (status.as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn organizations_are_isolated() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let bob = cp.login("bob").await;
    let (acme_exec, _) = cp.executor_client(&alice, None).await;
    let (globex_exec, _) = cp.executor_client(&bob, None).await;
    acme_exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    deploy(&alice, "edge-1", "secret-node").await.unwrap();

    // bob sees nothing of acme and cannot touch it
    assert!(bob.get::<Vec<Value>>("/api/v1/nodes").await.unwrap().is_empty());
    assert!(bob.get::<Vec<Value>>("/api/v1/executors").await.unwrap().is_empty());
    assert_eq!(bob.get::<Value>("/api/v1/nodes/secret-node").await.unwrap_err().status(), Some(404));
    assert_eq!(lifecycle(&bob, "secret-node", "stop").await.unwrap_err().status(), Some(404));
    assert_eq!(deploy(&bob, "edge-1", "x").await.unwrap_err().status(), Some(404));
    assert!(events(&bob, 0).await.iter().all(|e| e["node"] != "secret-node"));
    assert!(bob.get::<Vec<Value>>("/api/v1/keys").await.unwrap().len() == 1);

    // globex's executor with the same name is a different executor and sees no acme spec
    globex_exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    assert!(globex_exec.poll_specs("edge-1", 0, Duration::ZERO).await.unwrap().nodes.is_empty());
    let r = globex_exec.report("edge-1", vec![obs("secret-node", 1, ObservedNodeStatus::Error)]).await.unwrap();
    assert_eq!(r.accepted, 0);
    assert_eq!(node(&alice, "secret-node").await["phase"], "provisioning");
    cp.stop().await;
}

#[tokio::test]
async fn roles_limit_what_users_may_do() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    for (user, role) in [("mia", "member"), ("otto", "operator"), ("ada", "admin")] {
        let _: Value = alice.call(Method::POST, "/api/v1/users", Some(&json!({"username": user, "password": PASSWORD, "role": role}))).await.unwrap();
    }
    let (exec, _) = cp.executor_client(&alice, None).await;
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let mia = cp.login("mia").await;
    let otto = cp.login("otto").await;
    let ada = cp.login("ada").await;

    // members read; operators also start, stop and restart; admins deploy
    assert_eq!(deploy(&mia, "edge-1", "n").await.unwrap_err().status(), Some(403));
    let refused = deploy(&otto, "edge-1", "n").await.unwrap_err();
    assert_eq!(refused.status(), Some(403));
    assert!(refused.to_string().contains("operator may not do this (needs manageNodes)"), "{refused}");
    deploy(&ada, "edge-1", "n").await.unwrap();
    assert_eq!(lifecycle(&mia, "n", "stop").await.unwrap_err().status(), Some(403));
    lifecycle(&otto, "n", "stop").await.unwrap();
    let edit = json!({"spec": spec("n")});
    assert_eq!(otto.call::<_, Value>(Method::PUT, "/api/v1/nodes/n/spec", Some(&edit)).await.unwrap_err().status(), Some(403));
    assert_eq!(otto.call::<_, Value>(Method::DELETE, "/api/v1/nodes/n", None::<&()>).await.unwrap_err().status(), Some(403));
    assert!(mia.get::<Vec<Value>>("/api/v1/nodes").await.unwrap().len() == 1);
    let key = json!({"label": "x"});
    assert_eq!(otto.call::<_, Value>(Method::POST, "/api/v1/keys", Some(&key)).await.unwrap_err().status(), Some(403));
    ada.call::<_, Value>(Method::POST, "/api/v1/keys", Some(&key)).await.unwrap();
    // an organization has one owner: nobody creates another
    let owner = json!({"username": "eve", "password": PASSWORD, "role": "owner"});
    assert_eq!(ada.call::<_, Value>(Method::POST, "/api/v1/users", Some(&owner)).await.unwrap_err().status(), Some(403));
    let e = alice.call::<_, Value>(Method::POST, "/api/v1/users", Some(&owner)).await.unwrap_err();
    assert!(e.status() == Some(403) && e.to_string().contains("ownership moves by transfer"), "{e}");
    let dup =
        alice.call::<_, Value>(Method::POST, "/api/v1/users", Some(&json!({"username": "ada", "password": PASSWORD, "role": "member"}))).await.unwrap_err();
    assert_eq!(dup.status(), Some(409));
    let viewer = json!({"username": "old", "password": PASSWORD, "role": "viewer"});
    let e = alice.call::<_, Value>(Method::POST, "/api/v1/users", Some(&viewer)).await.unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    // what the console greys out comes from the same table
    let me: Value = otto.get("/api/v1/me").await.unwrap();
    assert_eq!(me["permissions"], json!(["read", "operateNodes"]));
    cp.stop().await;
}

#[tokio::test]
async fn api_keys_expire_rotate_in_one_step_and_are_deleted_once_revoked() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let day = Duration::from_secs(24 * 3600);
    let create = |body: Value| {
        let alice = alice.clone();
        async move { alice.call::<_, Value>(Method::POST, "/api/v1/keys", Some(&body)).await }
    };
    // a year by default; a lifetime, or none, when asked; nonsense refused
    let default = create(json!({"label": "d"})).await.unwrap();
    assert_eq!(default["expiresAt"].as_u64(), Some(T0.plus(day * 365).0));
    assert_eq!(create(json!({"neverExpires": true})).await.unwrap()["expiresAt"], Value::Null);
    for bad in [json!({"expiresInDays": 0}), json!({"expiresInDays": 3651})] {
        assert_eq!(create(bad.clone()).await.unwrap_err().status(), Some(400), "{bad}");
    }
    assert_eq!(create(json!({"expiresInDays": 5, "neverExpires": true})).await.unwrap_err().status(), Some(422));
    let short = create(json!({"label": "edge", "executor": "edge-1", "expiresInDays": 2})).await.unwrap();
    let exec = HttpApi::new(&cp.url, Some(short["key"].as_str().unwrap().into())).unwrap();
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();

    // rotation: one call; the old key is refused at once, the new one speaks for the same executor
    cp.advance(day);
    let id = short["id"].as_str().unwrap();
    let rotated: Value = alice.call::<(), _>(Method::POST, &format!("/api/v1/keys/{id}/rotate"), None).await.unwrap();
    let record = &rotated;
    assert_eq!(record["executor"], "edge-1", "the binding is kept");
    assert_eq!(record["label"], format!("edge (rotated {})", T0.plus(day).utc_date()));
    assert_eq!(record["expiresAt"].as_u64(), Some(T0.plus(day * 3).0), "the same two-day lifetime, from now");
    assert_eq!(exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap_err().status(), Some(401));
    let fresh = HttpApi::new(&cp.url, Some(rotated["key"].as_str().unwrap().into())).unwrap();
    fresh.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let keys: Vec<Value> = alice.get("/api/v1/keys").await.unwrap();
    let of = |id: &str| keys.iter().find(|k| k["id"] == id).unwrap().clone();
    assert!(of(id)["revokedAt"].is_u64());
    assert_eq!(of(record["id"].as_str().unwrap())["lastUsedBy"], "edge-1", "last use moved to the new key within a heartbeat");
    let kinds = kinds(&events(&alice, 0).await);
    assert!(kinds.contains(&"apikey.rotated".to_string()) && kinds.contains(&"apikey.revoked".to_string()), "{kinds:?}");
    let again = alice.call::<(), Value>(Method::POST, &format!("/api/v1/keys/{id}/rotate"), None).await.unwrap_err();
    assert_eq!(again.status(), Some(409), "a revoked key is not rotated: {again}");

    // expiry: past it the key is refused and shown expired
    cp.advance(day * 3);
    let e = fresh.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap_err();
    assert!(e.status() == Some(401) && e.to_string().contains("expired"), "{e}");
    let keys: Vec<Value> = alice.get("/api/v1/keys").await.unwrap();
    assert_eq!(keys.iter().find(|k| k["id"] == record["id"]).unwrap()["expired"], true);
    assert_eq!(keys.iter().find(|k| k["id"] == default["id"]).unwrap()["expired"], false);

    // delete: revoke first, delete second
    let new_id = record["id"].as_str().unwrap();
    let active = alice.call_empty::<()>(Method::DELETE, &format!("/api/v1/keys/{new_id}"), None).await.unwrap_err();
    assert!(active.status() == Some(409) && active.to_string().contains("revoke it first"), "{active}");
    alice.call_empty::<()>(Method::DELETE, &format!("/api/v1/keys/{id}"), None).await.unwrap();
    let keys: Vec<Value> = alice.get("/api/v1/keys").await.unwrap();
    assert!(keys.iter().all(|k| k["id"] != id));
    assert_eq!(alice.call_empty::<()>(Method::DELETE, &format!("/api/v1/keys/{id}"), None).await.unwrap_err().status(), Some(404));
    // globex cannot touch acme's keys
    let bob = cp.login("bob").await;
    assert_eq!(bob.call::<(), Value>(Method::POST, &format!("/api/v1/keys/{new_id}/rotate"), None).await.unwrap_err().status(), Some(404));
    cp.stop().await;
}

#[tokio::test]
async fn api_keys_shown_once_revocable_rotatable_and_tracked() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let (old, created) = cp.executor_client(&alice, Some("edge-1")).await;
    let secret = created["key"].as_str().unwrap();
    let listed: Vec<Value> = alice.get("/api/v1/keys").await.unwrap();
    let text = serde_json::to_string(&listed).unwrap();
    assert!(!text.contains(secret.rsplit('_').next().unwrap()), "secret must never be listed");
    assert!(!text.contains("secretHash"));
    assert_eq!(listed[0]["lastUsedAt"], Value::Null);

    old.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let listed: Vec<Value> = alice.get("/api/v1/keys").await.unwrap();
    assert_eq!(listed[0]["lastUsedAt"].as_u64(), Some(T0.0));
    assert_eq!(listed[0]["lastUsedBy"], "edge-1");
    let ex: Value = alice.get("/api/v1/executors/edge-1").await.unwrap();
    assert_eq!(ex["keyLastUsedAt"].as_u64(), Some(T0.0));

    // a key bound to edge-1 cannot speak for another executor
    let err = old.sync_executor(&sync_req("edge-2", ExecutorKind::Agent, "1.0.0")).await.unwrap_err();
    assert_eq!(err.status(), Some(403));

    // rotation: both keys valid, then the old one revoked
    let (new, created2) = cp.executor_client(&alice, Some("edge-1")).await;
    cp.advance(Duration::from_secs(5));
    new.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    old.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let old_id = created["id"].as_str().unwrap();
    alice.call::<(), Value>(Method::POST, &format!("/api/v1/keys/{old_id}/revoke"), None).await.unwrap();
    assert_eq!(old.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap_err().status(), Some(401));
    new.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();

    // wrong and malformed keys
    let bogus = HttpApi::new(&cp.url, Some(format!("nvk_{}_{}", created2["id"].as_str().unwrap(), "00".repeat(32)))).unwrap();
    assert_eq!(bogus.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap_err().status(), Some(401));
    let junk = HttpApi::new(&cp.url, Some("hello".into())).unwrap();
    assert_eq!(junk.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap_err().status(), Some(401));
    assert_eq!(cp.anon().get::<Value>("/api/v1/nodes").await.unwrap_err().status(), Some(401));
    // an executor key is not a user session
    assert_eq!(new.get::<Value>("/api/v1/nodes").await.unwrap_err().status(), Some(403));

    // deactivation refuses the executor and disables its keys
    let d: Value = alice.call::<(), _>(Method::POST, "/api/v1/executors/edge-1/deactivate", None).await.unwrap();
    assert_eq!(d["deactivated"], true);
    assert_eq!(new.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap_err().status(), Some(401));
    let keys: Vec<Value> = alice.get("/api/v1/keys").await.unwrap();
    assert!(keys.iter().all(|k| !k["revokedAt"].is_null()), "{keys:?}");
    let (org_key, _) = cp.executor_client(&alice, None).await;
    assert_eq!(org_key.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap_err().status(), Some(403));
    cp.stop().await;
}

#[tokio::test]
async fn kind_is_immutable_after_first_sync() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, exec) = cp.alice_and_edge().await;
    let err = exec.sync_executor(&sync_req("edge-1", ExecutorKind::Operator, "1.0.0")).await.unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert!(err.to_string().contains("kind cannot change"), "{err}");
    let connected = events(&alice, 0).await.into_iter().filter(|e| e["kind"] == "executor.connected").count();
    assert_eq!(connected, 1);
    cp.stop().await;
}

#[tokio::test]
async fn compat_window_deprecated_and_out_of_support() {
    let config = Config { cp_version: Version::new(3, 0, 0), ..Config::default() };
    let cp = Cp::with_orgs(config).await;
    let alice = cp.login("alice").await;
    // one key per executor: a key binds to the executor of its first sync
    let (exec, _) = cp.executor_client(&alice, None).await;
    let (exec_dep, _) = cp.executor_client(&alice, None).await;
    let (exec_old, _) = cp.executor_client(&alice, None).await;

    let cur = exec.sync_executor(&sync_req("cur", ExecutorKind::Agent, "3.1.0")).await.unwrap();
    assert_eq!(cur.compat, novacula_core::CompatStatus::InWindow);
    let dep = exec_dep.sync_executor(&sync_req("dep", ExecutorKind::Agent, "2.9.0")).await.unwrap();
    assert_eq!(dep.compat, novacula_core::CompatStatus::Deprecated);
    deploy(&alice, "dep", "on-dep").await.unwrap();
    assert_eq!(exec_dep.poll_specs("dep", 0, Duration::ZERO).await.unwrap().nodes.len(), 1);

    // out of support: heartbeats and upgrade specs keep flowing, node queries are 409
    let _: Value = alice
        .call(
            Method::PUT,
            "/api/v1/upgrades",
            Some(&json!({"channel": "stable", "kind": "agent", "version": "3.1.0", "artifact": "agent-3.1.0", "sha256": "ab".repeat(32)})),
        )
        .await
        .unwrap();
    let old = exec_old.sync_executor(&sync_req("old", ExecutorKind::Agent, "1.4.0")).await.unwrap();
    assert_eq!(old.compat, novacula_core::CompatStatus::OutOfSupport);
    assert_eq!(old.upgrade.as_ref().unwrap().version, "3.1.0");
    let e = exec_old.poll_specs("old", 0, Duration::ZERO).await.unwrap_err();
    assert_eq!(e.status(), Some(409));
    assert!(e.to_string().contains("out of support"));
    assert_eq!(exec_old.report("old", vec![]).await.unwrap_err().status(), Some(409));
    assert_eq!(deploy(&alice, "old", "n").await.unwrap_err().status(), Some(409));
    let listed: Vec<Value> = alice.get("/api/v1/executors").await.unwrap();
    let compat: Vec<(String, String)> = listed.iter().map(|e| (e["name"].as_str().unwrap().into(), e["compat"].as_str().unwrap().into())).collect();
    assert!(compat.contains(&("old".into(), "out-of-support".into())));
    assert!(compat.contains(&("dep".into(), "deprecated".into())));
    // the executor already on the channel's version gets no upgrade
    assert!(exec.sync_executor(&sync_req("cur", ExecutorKind::Agent, "3.1.0")).await.unwrap().upgrade.is_none());
    cp.stop().await;
}

#[tokio::test]
async fn liveness_drift_and_node_down_alert() {
    let cp = Cp::with_orgs(sweeps_by_hand()).await;
    let (alice, exec) = cp.alice_and_edge().await;
    deploy(&alice, "edge-1", "n").await.unwrap();
    exec.report("edge-1", vec![obs("n", 1, ObservedNodeStatus::Running)]).await.unwrap();
    assert!(alice.get::<Vec<Value>>("/api/v1/alerts").await.unwrap().is_empty());

    // the process dies: node_down fires, then resolves
    exec.report("edge-1", vec![obs("n", 1, ObservedNodeStatus::Error)]).await.unwrap();
    let alerts: Vec<Value> = alice.get("/api/v1/alerts").await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["rule"], "node_down");
    exec.report("edge-1", vec![obs("n", 1, ObservedNodeStatus::Running)]).await.unwrap();
    assert!(alice.get::<Vec<Value>>("/api/v1/alerts").await.unwrap().is_empty());

    // 29.999 s of silence: still online; exactly 30 s: offline, liveness drift, alert.
    // The sweeper's first pass looks at every node, later ones only where an
    // executor's online state flipped or its nodes were written.
    let mut sweeper = novacula_control_plane::sweeper::Sweeper::default();
    cp.advance(Duration::from_millis(29_999));
    sweeper.pass(&cp.state).unwrap();
    assert_eq!(node(&alice, "n").await["executorOnline"], true);
    cp.advance(Duration::from_millis(1));
    assert_eq!(sweeper.pass(&cp.state).unwrap(), 1, "the silent executor's node changes");
    assert_eq!(sweeper.pass(&cp.state).unwrap(), 0, "and only once");
    let offline: Vec<Value> = events(&alice, 0).await.into_iter().filter(|e| e["kind"] == "executor.disconnected").collect();
    assert_eq!(offline.len(), 1, "one summary per silent executor: {offline:?}");
    assert_eq!((offline[0]["executor"].as_str(), offline[0]["data"]["nodes"].as_str()), (Some("edge-1"), Some("1")));
    let n = node(&alice, "n").await;
    assert_eq!(n["executorOnline"], false);
    assert_eq!(n["drift"]["liveness"], true);
    assert_eq!(n["phase"], "error");
    assert_eq!(n["nodeDown"], true);
    let ex: Value = alice.get("/api/v1/executors/edge-1").await.unwrap();
    assert_eq!(ex["online"], false);

    // it comes back: connected again, alert resolved on the next report
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    exec.report("edge-1", vec![obs("n", 1, ObservedNodeStatus::Running)]).await.unwrap();
    let n = node(&alice, "n").await;
    assert_eq!((n["phase"].as_str(), n["nodeDown"].as_bool()), (Some("running"), Some(false)));
    let ks = kinds(&events(&alice, 0).await);
    assert_eq!(ks.iter().filter(|k| *k == "executor.connected").count(), 1, "the first sync");
    assert_eq!(ks.iter().filter(|k| *k == "executor.reconnected").count(), 1, "back after silence");
    assert_eq!(ks.iter().filter(|k| *k == "alert.node_down").count(), 2);
    assert_eq!(ks.iter().filter(|k| *k == "alert.node_down.resolved").count(), 2);
    cp.stop().await;
}

/// The server's own sweeper does not pass within a test (its first pass
/// comes an interval after start): the test's passes are the only ones.
fn sweeps_by_hand() -> Config {
    Config { sweep_interval: Duration::from_secs(24 * 3600), ..Config::default() }
}

/// A user's command moves a node's phase without any report: the sweeper's
/// next pass records it, though it looks only at executors whose nodes were written.
#[tokio::test]
async fn the_sweeper_records_a_commands_transition_without_looking_at_every_node() {
    let cp = Cp::with_orgs(sweeps_by_hand()).await;
    let (alice, exec) = cp.alice_and_edge().await;
    deploy(&alice, "edge-1", "n").await.unwrap();
    deploy(&alice, "edge-1", "other").await.unwrap();
    exec.report("edge-1", vec![obs("n", 1, ObservedNodeStatus::Running), obs("other", 1, ObservedNodeStatus::Running)]).await.unwrap();
    let mut sweeper = novacula_control_plane::sweeper::Sweeper::default();
    sweeper.pass(&cp.state).unwrap();
    assert_eq!(sweeper.pass(&cp.state).unwrap(), 0, "nothing changed since");
    lifecycle(&alice, "n", "stop").await.unwrap();
    assert_eq!(sweeper.pass(&cp.state).unwrap(), 1, "the stopped node's phase moved; the other one's did not");
    let moved: Vec<Value> = events(&alice, 0).await.into_iter().filter(|e| e["kind"] == "node.lifecycle.transition" && e["node"] == "n").collect();
    assert_eq!(moved.last().unwrap()["data"]["to"], "stopping", "{moved:?}");
    assert_eq!(node(&alice, "n").await["phase"], "stopping");
    cp.stop().await;
}

/// The sweeper reads an executor only when its deadline comes (it would go
/// offline, its alert's "for" runs out) or it changed: executors heard from
/// here move their deadlines in memory, and a pass costs what happened.
#[tokio::test]
async fn the_sweeper_reads_only_executors_that_are_due_or_changed() {
    use novacula_control_plane::store::{model::ExecutorRow, EXECUTORS};
    let cp = Cp::with_orgs(sweeps_by_hand()).await;
    let alice = cp.login("alice").await;
    let mut execs = Vec::new();
    for name in ["edge-1", "edge-2", "edge-3"] {
        let (exec, _) = cp.executor_client(&alice, None).await;
        exec.sync_executor(&sync_req(name, ExecutorKind::Agent, "1.0.0")).await.unwrap();
        execs.push(exec);
    }
    let sync = async |i: usize| execs[i].sync_executor(&sync_req(&format!("edge-{}", i + 1), ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let online = async |name: &str| alice.get::<Value>(&format!("/api/v1/executors/{name}")).await.unwrap()["online"].as_bool().unwrap();
    let disconnected = async || -> Vec<String> {
        events(&alice, 0).await.into_iter().filter(|e| e["kind"] == "executor.disconnected").map(|e| e["executor"].as_str().unwrap().to_string()).collect()
    };
    let mut sweeper = novacula_control_plane::sweeper::Sweeper::default();
    sweeper.pass(&cp.state).unwrap();
    assert_eq!(sweeper.looked(), 3, "the first pass reads every executor");

    cp.advance(Duration::from_secs(10));
    sync(0).await;
    sync(1).await;
    sweeper.pass(&cp.state).unwrap();
    assert_eq!(sweeper.looked(), 0, "heard here, known online: nothing to read");

    // edge-3 is silent for 30 s: due, read, offline; the other two are not due.
    cp.advance(Duration::from_secs(20));
    sweeper.pass(&cp.state).unwrap();
    assert_eq!(sweeper.looked(), 1);
    assert_eq!(disconnected().await, ["edge-3"]);
    assert!(!online("edge-3").await);
    let open: Vec<Value> = alice.get("/api/v1/incidents?status=open").await.unwrap();
    assert_eq!(
        open.iter().map(|i| (i["rule"].as_str().unwrap(), i["subject"]["name"].as_str().unwrap())).collect::<Vec<_>>(),
        [("executor_offline", "edge-3")]
    );

    // Another control plane heard edge-1 (its flush wrote a later time): at
    // edge-1's deadline the read finds it, and it stays online.
    let stored = cp.state.store.read(|r| r.scan::<ExecutorRow>(EXECUTORS, "")).unwrap();
    let (k, mut row) = stored.into_iter().find(|(_, e)| e.name == "edge-1").unwrap();
    row.updated_at = row.updated_at.plus(Duration::from_secs(15));
    cp.state.store.write(|w| w.put(EXECUTORS, &k, &row)).unwrap();
    cp.advance(Duration::from_secs(10)); // 30 s after edge-1's and edge-2's heartbeat here
    sweeper.pass(&cp.state).unwrap();
    assert_eq!(sweeper.looked(), 2, "edge-1 and edge-2 are due");
    assert_eq!(disconnected().await, ["edge-3", "edge-2"], "edge-1 was heard elsewhere");
    assert!(online("edge-1").await);

    // edge-3 comes back: its sync is a change, read at the next pass; its incident resolves.
    sync(2).await;
    sweeper.pass(&cp.state).unwrap();
    assert_eq!(sweeper.looked(), 1);
    let open: Vec<Value> = alice.get("/api/v1/incidents?status=open").await.unwrap();
    assert_eq!(open.iter().map(|i| i["subject"]["name"].as_str().unwrap()).collect::<Vec<_>>(), ["edge-2"]);

    // Deactivating an online executor takes it offline at the next pass, not at its deadline.
    let _: Value = alice.call(Method::POST, "/api/v1/executors/edge-3/deactivate", None::<&Value>).await.unwrap();
    sweeper.pass(&cp.state).unwrap();
    assert_eq!(sweeper.looked(), 1);
    assert!(!online("edge-3").await);
    assert_eq!(disconnected().await.len(), 2, "deactivated on purpose: no summary");

    // An executor that first synced through another replica whose
    // notification was lost: not looked at until the full look, which finds
    // it silent and opens its incident.
    let offline_incidents = async || -> Vec<String> {
        let open: Vec<Value> = alice.get("/api/v1/incidents?status=open").await.unwrap();
        open.iter().map(|i| i["subject"]["name"].as_str().unwrap().to_string()).collect()
    };
    let stored = cp.state.store.read(|r| r.scan::<ExecutorRow>(EXECUTORS, "")).unwrap();
    let (k, mut row) = stored.into_iter().find(|(_, e)| e.name == "edge-1").unwrap();
    (row.name, row.updated_at) = ("edge-9".into(), cp.state.now());
    cp.state.store.write(|w| w.put(EXECUTORS, &k.replace("edge-1", "edge-9"), &row)).unwrap();
    cp.advance(Duration::from_secs(40));
    sweeper.pass(&cp.state).unwrap();
    assert!(!offline_incidents().await.contains(&"edge-9".to_string()), "not told: not looked at yet");
    cp.advance(novacula_control_plane::sweeper::FULL_LOOK);
    sweeper.pass(&cp.state).unwrap();
    assert!(sweeper.looked() >= 4, "the full look reads every executor: {}", sweeper.looked());
    assert!(offline_incidents().await.contains(&"edge-9".to_string()));
    cp.stop().await;
}

/// `node_stalled`, `sync_distance` and `executor_unsupported` judge each
/// node and executor at its own deadline: a pass reads what is due (the
/// fleet is spread over 30 s), and a "for" that runs out is judged then,
/// not at the next regular look.
#[tokio::test]
async fn the_watch_judges_what_is_due_and_a_for_when_it_runs_out() {
    const N: usize = 30;
    let cp = Cp::with_orgs(sweeps_by_hand()).await;
    let (alice, exec) = cp.alice_and_edge().await;
    let _: Value = alice.call(Method::PUT, "/api/v1/alerts/settings", Some(&json!({"nodeStalledForSecs": 60}))).await.unwrap();
    let mut reports = Vec::new();
    for i in 0..N {
        let name = format!("n-{i}");
        let rev = deploy(&alice, "edge-1", &name).await.unwrap()["revision"].as_u64().unwrap();
        let mut o = obs(&name, rev, ObservedNodeStatus::Running);
        o.processes[0].sync = Some(novacula_core::SyncMetrics::new(100, 100, 5));
        reports.push(o);
    }
    exec.report("edge-1", reports).await.unwrap();
    let mut sweeper = novacula_control_plane::sweeper::Sweeper::default();
    sweeper.pass(&cp.state).unwrap(); // every node's phase, once
    sweeper.pass(&cp.state).unwrap();
    assert_eq!(sweeper.watch_judged(), N + 1, "the watch's first pass judges every node and executor");
    sweeper.pass(&cp.state).unwrap();
    assert_eq!(sweeper.watch_judged(), 0, "none is due yet");
    let mut judged = 0;
    for _ in 0..2 {
        cp.advance(Duration::from_secs(15));
        exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
        sweeper.pass(&cp.state).unwrap();
        assert!(sweeper.watch_judged() > 0 && sweeper.watch_judged() < N + 1, "spread: {} of {}", sweeper.watch_judged(), N + 1);
        judged += sweeper.watch_judged();
    }
    assert_eq!(judged, N + 1, "each once in 30 s");
    // The heads have stood still since the first judgement, 30 s ago: at 60 s every node stalls, on that pass.
    cp.advance(Duration::from_secs(29));
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    sweeper.pass(&cp.state).unwrap();
    let open = async || alice.get::<Vec<Value>>("/api/v1/incidents?status=open").await.unwrap().len();
    assert_eq!(open().await, 0, "59 s");
    cp.advance(Duration::from_secs(1));
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    sweeper.pass(&cp.state).unwrap();
    assert_eq!(open().await, N, "60 s: every node's node_stalled");
    cp.stop().await;
}

/// A heartbeat reads its key and executor from memory while nothing changed
/// them; revoking the key or deactivating the executor is seen by the very
/// next call.
#[tokio::test]
async fn what_heartbeats_keep_in_memory_is_dropped_when_it_changes() {
    let cp = Cp::with_orgs(sweeps_by_hand()).await;
    let alice = cp.login("alice").await;
    let (exec, created) = cp.executor_client(&alice, Some("edge-1")).await;
    let (exec2, _) = cp.executor_client(&alice, Some("edge-2")).await;
    for _ in 0..3 {
        exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
        exec2.sync_executor(&sync_req("edge-2", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    }
    let id = created["id"].as_str().unwrap();
    let _: Value = alice.call::<(), _>(Method::POST, &format!("/api/v1/keys/{id}/revoke"), None).await.unwrap();
    let e = exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    let _: Value = alice.call::<(), _>(Method::POST, "/api/v1/executors/edge-2/deactivate", None).await.unwrap();
    let e = exec2.sync_executor(&sync_req("edge-2", ExecutorKind::Agent, "1.0.0")).await.unwrap_err();
    assert!(matches!(e.status(), Some(401 | 403)), "{e}");
    let _: Value = alice.call::<(), _>(Method::POST, "/api/v1/executors/edge-2/reactivate", None).await.unwrap();
    cp.stop().await;
}

#[tokio::test]
async fn bad_input_gets_json_4xx() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, exec) = cp.alice_and_edge().await;

    let (s, body) = raw(&alice, Method::POST, "/api/v1/nodes", b"{not json").await;
    assert_eq!(s, 400);
    assert!(body["error"].as_str().unwrap().contains("invalid request body"));
    let mut with_extra = json!({"executor": "edge-1", "spec": spec("n")});
    with_extra["spec"]["surprise"] = json!(true);
    let (s, body) = raw(&alice, Method::POST, "/api/v1/nodes", with_extra.to_string().as_bytes()).await;
    assert_eq!(s, 400);
    assert!(body["error"].as_str().unwrap().contains("surprise"), "{body}");
    let huge = vec![b' '; 2 * 1024 * 1024];
    let (s, _) = raw(&alice, Method::POST, "/api/v1/nodes", &huge).await;
    assert_eq!(s, 413);
    let (s, body) = raw(&alice, Method::GET, "/api/v1/nope", b"").await;
    assert_eq!((s, body["error"].as_str().is_some()), (404, true));
    let (s, _) = raw(&alice, Method::PATCH, "/api/v1/nodes", b"").await;
    assert_eq!(s, 405);
    let (s, _) = raw(&exec, Method::GET, "/api/v1/executor/specs?executor=edge-1&since=abc", b"").await;
    assert_eq!(s, 400);

    // validation against capabilities lists every problem
    let mut bad = spec("Bad_Name");
    bad.clients[0].client = "erigon".into();
    bad.clients[1].version = "latest".into();
    let err = alice.call::<_, Value>(Method::POST, "/api/v1/nodes", Some(&json!({"executor": "edge-1", "spec": bad}))).await.unwrap_err();
    assert_eq!(err.status(), Some(422));
    let novacula_client::ClientError::Status { details, .. } = err else { panic!() };
    assert_eq!(details.len(), 3, "{details:?}");
    assert!(details.iter().any(|d| d.contains("erigon")));

    // executor-side junk
    let mut bad_sync = sync_req("Not Valid", ExecutorKind::Agent, "1.0.0");
    assert_eq!(exec.sync_executor(&bad_sync).await.unwrap_err().status(), Some(400));
    bad_sync.name = "ok".into();
    bad_sync.version = "one".into();
    assert_eq!(exec.sync_executor(&bad_sync).await.unwrap_err().status(), Some(400));
    // a key that never synced speaks for no executor yet
    assert_eq!(exec.poll_specs("never-synced", 0, Duration::ZERO).await.unwrap_err().status(), Some(403));
    let wrong_login = cp.anon().call::<_, Value>(Method::POST, "/api/v1/login", Some(&json!({"username": "alice", "password": "nope"}))).await.unwrap_err();
    assert_eq!(wrong_login.status(), Some(401));

    // duplicate deploy and edits that rename
    deploy(&alice, "edge-1", "n").await.unwrap();
    assert_eq!(deploy(&alice, "edge-1", "n").await.unwrap_err().status(), Some(409));
    // well-formed, but not applicable to this node
    let renamed = alice.call::<_, Value>(Method::PUT, "/api/v1/nodes/n/spec", Some(&json!({"spec": spec("m")}))).await;
    assert_eq!(renamed.unwrap_err().status(), Some(422));
    cp.stop().await;
}

#[tokio::test]
async fn edit_and_client_upgrade_bump_revision_and_validate() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, exec) = cp.alice_and_edge().await;
    deploy(&alice, "edge-1", "n").await.unwrap();
    let mut s = spec("n");
    s.clients[0].config_overrides.insert("cache".into(), "4096".into());
    let edited: Value = alice.call(Method::PUT, "/api/v1/nodes/n/spec", Some(&json!({"spec": s}))).await.unwrap();
    assert_eq!(edited["revision"], 2);
    assert_eq!(edited["spec"]["clients"][0]["configOverrides"]["cache"], "4096");
    let up: Value = alice.call(Method::POST, "/api/v1/nodes/n/upgrade", Some(&json!({"role": "execution", "version": "1.15.0"}))).await.unwrap();
    assert_eq!(up["revision"], 3);
    assert_eq!(up["spec"]["clients"][0]["version"], "1.15.0");
    let bad = alice.call::<_, Value>(Method::POST, "/api/v1/nodes/n/upgrade", Some(&json!({"role": "mev", "version": "1.0.0"}))).await;
    assert_eq!(bad.unwrap_err().status(), Some(422), "no such role on this node");
    let bad = alice.call::<_, Value>(Method::POST, "/api/v1/nodes/n/upgrade", Some(&json!({"role": "execution", "version": "latest"}))).await;
    assert_eq!(bad.unwrap_err().status(), Some(400), "not a version: breaks the documented pattern");
    let specs = exec.poll_specs("edge-1", 0, Duration::ZERO).await.unwrap();
    assert_eq!(specs.nodes[0].revision, Revision(3));
    let updates = events(&alice, 0).await.into_iter().filter(|e| e["kind"] == "node.updated").count();
    assert_eq!(updates, 2);
    cp.stop().await;
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_user_out_for_a_while() {
    let cp = Cp::with_orgs(Config::default()).await;
    let attempt = |user: &'static str, password: &'static str| {
        let anon = cp.anon();
        async move { anon.call::<_, Value>(Method::POST, "/api/v1/login", Some(&json!({"username": user, "password": password}))).await }
    };
    for _ in 0..novacula_core::throttle::USER_LIMIT.failures_max {
        assert_eq!(attempt("alice", "guess").await.unwrap_err().status(), Some(401));
    }
    // now even the right password is refused, with how long to wait
    let locked = attempt("alice", PASSWORD).await.unwrap_err();
    assert_eq!(locked.status(), Some(429));
    assert!(locked.to_string().contains("try again in 900 s"), "{locked}");
    // other users sign in as usual; unknown names are throttled the same way
    attempt("bob", PASSWORD).await.unwrap();
    for _ in 0..novacula_core::throttle::USER_LIMIT.failures_max {
        assert_eq!(attempt("mallory", "x").await.unwrap_err().status(), Some(401));
    }
    assert_eq!(attempt("mallory", "x").await.unwrap_err().status(), Some(429));
    // once the window has passed, alice is back, and her count starts over
    cp.clock.advance(novacula_core::throttle::USER_LIMIT.window);
    attempt("alice", PASSWORD).await.unwrap();
    assert_eq!(attempt("alice", "guess").await.unwrap_err().status(), Some(401));
    attempt("alice", PASSWORD).await.unwrap();
    cp.stop().await;
}

/// Every test of this file again, on PostgreSQL instead of redb.
#[test]
fn this_suite_passes_on_postgres() {
    rerun_on_postgres("this_suite_passes_on_postgres");
}
