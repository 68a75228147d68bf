//! The attacks of the security issue, each a test named after it, against a
//! real control plane on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::*;
use novacula_client::Method;
use novacula_control_plane::api::auth::ExecutorKey;
use novacula_control_plane::api::error::ApiJson;
use novacula_control_plane::store::model::ApiKey;
use novacula_control_plane::store::API_KEYS;
use novacula_control_plane::Config;
use novacula_core::wire::SyncExecutorRequest;
use novacula_core::{ExecutorKind, ObservedNodeStatus};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;

async fn deploy_spec(user: &novacula_client::HttpApi, spec: Value) -> Result<Value, novacula_client::ClientError> {
    user.call(Method::POST, "/api/v1/nodes", Some(&json!({"executor": "edge-1", "spec": spec}))).await
}

fn details(e: &novacula_client::ClientError) -> Vec<String> {
    match e {
        novacula_client::ClientError::Status { details, .. } => details.clone(),
        other => panic!("not a status error: {other}"),
    }
}

#[tokio::test]
async fn sidecar_running_a_shell_as_root_is_refused_at_deploy() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, _exec) = cp.alice_and_edge().await;
    let mut s = serde_json::to_value(spec("pwn")).unwrap();
    s["sidecars"] = json!([{"name": "x", "image": "/bin/sh", "command": ["-c", "id > /tmp/pwned"]}]);
    let err = deploy_spec(&alice, s.clone()).await.unwrap_err();
    assert_eq!(err.status(), Some(422));
    let d = details(&err);
    assert!(d.iter().any(|d| d.contains("sidecars[0].image") && d.contains("/bin/sh")), "{d:?}");
    // the executor's own allowlist is what may run
    s["sidecars"] = json!([{"name": "x", "image": "metrics-exporter", "command": ["--port=9090"]}]);
    deploy_spec(&alice, s).await.unwrap();
    cp.stop().await;
}

#[tokio::test]
async fn control_characters_in_a_spec_are_refused_naming_the_field() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, _exec) = cp.alice_and_edge().await;
    for (value, code) in [("1\r\nExecStartPre=/bin/sh", "000D"), ("a\u{0}b", "0000"), ("x\u{7f}", "007F")] {
        let mut s = serde_json::to_value(spec("ctl")).unwrap();
        s["clients"][0]["configOverrides"] = json!({"cache": value});
        let err = deploy_spec(&alice, s).await.unwrap_err();
        assert_eq!(err.status(), Some(422), "{value:?}");
        let d = details(&err);
        assert!(d.iter().any(|d| d.contains("clients[0].configOverrides[\"cache\"]") && d.contains(code)), "{d:?}");
    }
    cp.stop().await;
}

#[tokio::test]
async fn oversized_spec_is_refused() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, _exec) = cp.alice_and_edge().await;
    let mut s = serde_json::to_value(spec("big")).unwrap();
    let many: serde_json::Map<String, Value> = (0..1000).map(|i| (format!("k{i}"), json!("v"))).collect();
    s["clients"][0]["configOverrides"] = Value::Object(many);
    let err = deploy_spec(&alice, s).await.unwrap_err();
    assert_eq!(err.status(), Some(422));
    assert!(details(&err).iter().any(|d| d.contains("configOverrides: at most 64")), "{:?}", details(&err));
    cp.stop().await;
}

#[tokio::test]
async fn revoked_key_stays_revoked_after_inflight_sync() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let (exec, created) = cp.executor_client(&alice, Some("edge-1")).await;
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();

    // The interleaving, forced: a sync authenticated the key (its read
    // transaction), then the revocation commits, then the sync writes.
    let authenticated: ApiKey = cp.state.store.read(|r| r.get(API_KEYS, &id)).unwrap().unwrap();
    let _: Value = alice.call::<(), _>(Method::POST, &format!("/api/v1/keys/{id}/revoke"), None).await.unwrap();
    let req: SyncExecutorRequest = sync_req("edge-1", ExecutorKind::Agent, "1.0.0");
    let answer = novacula_control_plane::api::protocol::sync(axum::extract::State(cp.state.clone()), ExecutorKey { key: authenticated }, ApiJson(req)).await;
    let err = answer.err().expect("the in-flight sync must fail");
    assert_eq!(err.status.as_u16(), 401, "{}", err.message);

    let key: ApiKey = cp.state.store.read(|r| r.get(API_KEYS, &id)).unwrap().unwrap();
    assert!(key.revoked_at.is_some(), "the sync wrote the key back unrevoked");
    assert_eq!(exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap_err().status(), Some(401));
    cp.stop().await;
}

#[tokio::test]
async fn bound_key_cannot_speak_for_another_executor() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    // bound at its first sync
    let (fresh, _) = cp.executor_client(&alice, None).await;
    fresh.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let keys: Vec<Value> = alice.get("/api/v1/keys").await.unwrap();
    assert_eq!(keys[0]["executor"], "edge-1", "bound to the executor of its first sync");
    assert_eq!(fresh.sync_executor(&sync_req("edge-2", ExecutorKind::Agent, "1.0.0")).await.unwrap_err().status(), Some(403));
    // the other executor exists (its own key), but this key cannot poll or report for it
    let (other, _) = cp.executor_client(&alice, Some("edge-2")).await;
    other.sync_executor(&sync_req("edge-2", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    deploy(&alice, "edge-2", "n2").await.unwrap();
    assert_eq!(fresh.poll_specs("edge-2", 0, Duration::ZERO).await.unwrap_err().status(), Some(403));
    assert_eq!(fresh.report("edge-2", vec![obs("n2", 1, ObservedNodeStatus::Running)]).await.unwrap_err().status(), Some(403));
    // a fresh key may reconnect an existing executor (key replacement)
    let (replacement, _) = cp.executor_client(&alice, None).await;
    replacement.sync_executor(&sync_req("edge-2", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    assert_eq!(replacement.poll_specs("edge-2", 0, Duration::ZERO).await.unwrap().nodes.len(), 1);
    cp.stop().await;
}

#[tokio::test]
async fn deactivating_an_executor_revokes_its_key_only_and_can_be_undone() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let (a, _) = cp.executor_client(&alice, None).await;
    let (b, _) = cp.executor_client(&alice, None).await;
    a.sync_executor(&sync_req("edge-a", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    b.sync_executor(&sync_req("edge-b", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let _: Value = alice.call::<(), _>(Method::POST, "/api/v1/executors/edge-a/deactivate", None).await.unwrap();
    assert_eq!(a.sync_executor(&sync_req("edge-a", ExecutorKind::Agent, "1.0.0")).await.unwrap_err().status(), Some(401));
    b.sync_executor(&sync_req("edge-b", ExecutorKind::Agent, "1.0.0")).await.expect("the other executor's key still works");
    let keys: Vec<Value> = alice.get("/api/v1/keys").await.unwrap();
    let revoked: Vec<&str> = keys.iter().filter(|k| !k["revokedAt"].is_null()).map(|k| k["executor"].as_str().unwrap()).collect();
    assert_eq!(revoked, ["edge-a"]);

    // a fresh key cannot bring it back while deactivated...
    let (fresh, _) = cp.executor_client(&alice, None).await;
    assert_eq!(fresh.sync_executor(&sync_req("edge-a", ExecutorKind::Agent, "1.0.0")).await.unwrap_err().status(), Some(403));
    // ...until an admin reactivates it
    let view: Value = alice.call::<(), _>(Method::POST, "/api/v1/executors/edge-a/reactivate", None).await.unwrap();
    assert_eq!(view["deactivated"], false);
    fresh.sync_executor(&sync_req("edge-a", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let feed = kinds(&events(&alice, 0).await);
    assert!(feed.contains(&"executor.reactivated".to_string()), "{feed:?}");
    cp.stop().await;
}

#[tokio::test]
async fn deleting_a_node_of_a_deactivated_executor_does_not_block_forever() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, _exec) = cp.alice_and_edge().await;
    deploy(&alice, "edge-1", "stuck").await.unwrap();
    deploy(&alice, "edge-1", "pending").await.unwrap();
    let _: Value = alice.call::<(), _>(Method::DELETE, "/api/v1/nodes/pending", None).await.unwrap();
    let _: Value = alice.call::<(), _>(Method::POST, "/api/v1/executors/edge-1/deactivate", None).await.unwrap();
    // a deletion requested before the deactivation is ended by it
    assert_eq!(alice.get::<Value>("/api/v1/nodes/pending").await.unwrap_err().status(), Some(404));
    // and one requested after it ends at once
    let _: Value = alice.call::<(), _>(Method::DELETE, "/api/v1/nodes/stuck", None).await.unwrap();
    assert_eq!(alice.get::<Value>("/api/v1/nodes/stuck").await.unwrap_err().status(), Some(404));
    let deleted = events(&alice, 0).await.into_iter().filter(|e| e["kind"] == "node.deleted").count();
    assert_eq!(deleted, 2);
    // the names are free again
    let (other, _) = cp.executor_client(&alice, None).await;
    other.sync_executor(&sync_req("edge-2", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    deploy(&alice, "edge-2", "stuck").await.unwrap();
    cp.stop().await;
}

#[tokio::test]
async fn report_listing_a_node_twice_is_refused() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, exec) = cp.alice_and_edge().await;
    deploy(&alice, "edge-1", "n").await.unwrap();
    let err = exec.report("edge-1", vec![obs("n", 1, ObservedNodeStatus::Running), obs("n", 1, ObservedNodeStatus::Error)]).await.unwrap_err();
    assert_eq!(err.status(), Some(422));
    assert!(err.to_string().contains("more than once"), "{err}");
    cp.stop().await;
}

#[tokio::test]
async fn unvalidated_usernames_are_refused_before_any_hashing() {
    let cp = Cp::with_orgs(Config::default()).await;
    let long = "a".repeat(5000);
    for name in ["Alice", "a b", "../x", long.as_str(), ""] {
        let err = cp.anon().call::<_, Value>(Method::POST, "/api/v1/login", Some(&json!({"username": name, "password": "x"}))).await.unwrap_err();
        assert_eq!(err.status(), Some(400), "{name:?}");
    }
    assert_eq!(cp.state.user_throttle.lock().unwrap().tracked(), 0, "nothing stored for a name that cannot exist");
    cp.stop().await;
}

#[tokio::test]
async fn password_spray_from_one_address_is_throttled() {
    let cp = Cp::with_orgs(Config::default()).await;
    let limit = novacula_core::throttle::ADDRESS_LIMIT.failures_max;
    for i in 0..limit {
        let err = cp
            .anon()
            .call::<_, Value>(Method::POST, "/api/v1/login", Some(&json!({"username": format!("guess-{i}"), "password": "wrong-password"})))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(401));
    }
    // every name is new, but the address is not
    let err = cp.anon().call::<_, Value>(Method::POST, "/api/v1/login", Some(&json!({"username": "alice", "password": PASSWORD}))).await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert!(err.to_string().contains("from this address"), "{err}");
    cp.stop().await;
}

#[tokio::test]
async fn slow_request_headers_are_cut_off() {
    let mut config = Config::default();
    config.http.header_read_timeout = Duration::from_millis(500);
    let cp = Cp::with_orgs(config).await;
    let addr = cp.url.trim_start_matches("http://").to_string();
    let slow = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap(); // and never the blank line
        let started = std::time::Instant::now();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        started.elapsed()
    });
    let waited = slow.await.unwrap();
    assert!(waited < Duration::from_secs(5), "a slowloris client held its connection for {waited:?}");
    cp.stop().await;
}

#[tokio::test]
async fn a_slow_request_body_is_cut_off_with_a_client_error() {
    let mut config = Config::default();
    config.http.body_read_timeout = Duration::from_millis(500);
    let cp = Cp::with_orgs(config).await;
    let addr = cp.url.trim_start_matches("http://").to_string();
    let slow = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // Half the body it announces, and never the rest.
        s.write_all(b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 40\r\n\r\n{\"username\":").unwrap();
        let started = std::time::Instant::now();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        (started.elapsed(), String::from_utf8_lossy(&buf).to_string())
    });
    let (waited, answer) = slow.await.unwrap();
    assert!(waited < Duration::from_secs(5), "a slow body held its connection for {waited:?}");
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(answer.contains("did not arrive within"), "{answer}");
    cp.stop().await;
}

#[tokio::test]
async fn a_connection_that_does_not_tell_its_protocol_is_cut_off() {
    let mut config = Config::default();
    config.http.header_read_timeout = Duration::from_millis(500);
    let cp = Cp::with_orgs(config).await;
    // Nothing at all, or the start of HTTP/2's preface: the protocol is never
    // told, so neither HTTP/1's header timeout nor HTTP/2's pings would start.
    for first in [&b""[..], b"PRI"] {
        let addr = cp.url.trim_start_matches("http://").to_string();
        let silent = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(first).unwrap();
            let started = std::time::Instant::now();
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            started.elapsed()
        });
        let waited = silent.await.unwrap();
        assert!(waited < Duration::from_secs(5), "a client that sent {first:?} held its connection for {waited:?}");
    }
    cp.stop().await;
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    use http_body_util::Empty;
    let mut config = Config::default();
    config.http.header_read_timeout = Duration::from_millis(500);
    let cp = Cp::with_orgs(config).await;
    let addr = cp.url.trim_start_matches("http://").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    let conn = tokio::spawn(conn);
    let req = hyper::Request::builder().uri(format!("http://{addr}/healthz")).body(Empty::<bytes::Bytes>::new()).unwrap();
    assert_eq!(send.send_request(req).await.unwrap().status(), 200);
    // The client would keep it (it answers pings); the server closes it.
    let ended = tokio::time::timeout(Duration::from_secs(5), conn).await;
    assert!(ended.is_ok(), "an HTTP/2 connection idle past the header timeout was kept");
    cp.stop().await;
}

#[tokio::test]
async fn an_http2_connection_with_a_request_in_flight_is_not_idle() {
    use http_body_util::{BodyExt, Empty};
    let mut config = Config::default();
    config.http.header_read_timeout = Duration::from_millis(500);
    let cp = Cp::with_orgs(config).await;
    let alice = cp.login("alice").await;
    let (exec, created) = cp.executor_client(&alice, None).await;
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let addr = cp.url.trim_start_matches("http://").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (send, conn) = hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let get = |path: String| {
        hyper::Request::builder()
            .uri(format!("http://{addr}{path}"))
            .header("authorization", format!("Bearer {key}"))
            .body(Empty::<bytes::Bytes>::new())
            .unwrap()
    };
    let first = send.clone().send_request(get("/api/v1/executor/specs?executor=edge-1".into())).await.unwrap();
    let first: Value = serde_json::from_slice(&first.into_body().collect().await.unwrap().to_bytes()).unwrap();
    // A long-poll that waits 3 s, four times the idle limit, on the connection...
    let cursor = first["cursor"].as_u64().unwrap();
    let poll = tokio::spawn(send.clone().send_request(get(format!("/api/v1/executor/specs?executor=edge-1&since={cursor}&waitSecs=3"))));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    // ...keeps it open for more: it was not asked to close meanwhile.
    let health = send.clone().send_request(get("/healthz".into())).await;
    assert_eq!(health.expect("a request beside a long-poll in flight").status(), 200);
    assert_eq!(poll.await.unwrap().unwrap().status(), 200);
    cp.stop().await;
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served_on_the_same_port() {
    use http_body_util::{BodyExt, Empty};
    let cp = Cp::with_orgs(Config::default()).await;
    let addr = cp.url.trim_start_matches("http://").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let call =
        |method: Method, path: &str| hyper::Request::builder().method(method).uri(format!("http://{addr}{path}")).body(Empty::<bytes::Bytes>::new()).unwrap();
    // Several requests in flight on the one connection.
    let (health, sync) = tokio::join!(send.clone().send_request(call(Method::GET, "/healthz")), send.send_request(call(Method::POST, "/api/v1/executor/sync")));
    let health = health.unwrap();
    assert_eq!(health.version(), hyper::Version::HTTP_2);
    assert_eq!(health.status(), 200);
    assert_eq!(health.into_body().collect().await.unwrap().to_bytes(), "ok");
    // The API's rules hold as on HTTP/1.1: no key, no sync.
    let sync = sync.unwrap();
    assert_eq!(sync.status(), 401);
    let body: Value = serde_json::from_slice(&sync.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    cp.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_one() {
    let mut config = Config::default();
    config.http.connections_max = 2;
    let cp = Cp::with_orgs(config).await;
    let addr = cp.url.trim_start_matches("http://").to_string();
    let idle: Vec<std::net::TcpStream> = (0..2).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = tokio::spawn({
        let anon = cp.anon();
        async move { anon.raw(Method::GET, "/healthz", None, Duration::from_secs(10)).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "a third connection was served past the limit of two");
    drop(idle);
    let (status, _) = third.await.unwrap().unwrap();
    assert_eq!(status.as_u16(), 200, "served once a connection closed");
    cp.stop().await;
}

#[tokio::test]
async fn events_past_their_retention_are_removed() {
    let config = Config {
        event_retention: novacula_control_plane::services::events::Retention { max_age: Duration::from_secs(90 * 24 * 3600), max_count: 8 },
        sweep_interval: Duration::from_secs(24 * 3600), // only the events this test writes
        ..Config::default()
    };
    let cp = Cp::with_orgs(config).await;
    let (alice, _exec) = cp.alice_and_edge().await;
    deploy(&alice, "edge-1", "old").await.unwrap();
    let before = events(&alice, 0).await.len();
    assert!((3..=8).contains(&before), "{before}");
    cp.advance(Duration::from_secs(91 * 24 * 3600));
    let alice = cp.login("alice").await; // the old session expired meanwhile
    for i in 0..10 {
        deploy(&alice, "edge-1", &format!("new-{i}")).await.unwrap();
    }
    let removed = novacula_control_plane::services::events::prune(&cp.state, cp.state.now()).unwrap();
    let left = events(&alice, 0).await;
    assert_eq!(left.len(), 8, "the count limit keeps the newest");
    assert_eq!(removed as usize, before + 10 - 8);
    assert!(left.iter().all(|e| e["node"] != "old"), "events older than the retention are gone");
    assert_eq!(left.last().unwrap()["node"], "new-9");
    // the other organization is untouched by acme's volume
    assert_eq!(novacula_control_plane::services::events::prune(&cp.state, cp.state.now()).unwrap(), 0);
    cp.stop().await;
}

#[tokio::test]
async fn events_read_newest_first_with_a_cursor() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, _exec) = cp.alice_and_edge().await;
    for i in 0..5 {
        deploy(&alice, "edge-1", &format!("n{i}")).await.unwrap();
    }
    let all = events(&alice, 0).await;
    let first: Value = alice.get("/api/v1/events?order=desc&limit=3").await.unwrap();
    let seqs = |page: &Value| page["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect::<Vec<_>>();
    let newest: Vec<u64> = all.iter().rev().take(3).map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs(&first), newest);
    let second: Value = alice.get(&format!("/api/v1/events?order=desc&limit=3&before={}", first["next"])).await.unwrap();
    let older: Vec<u64> = all.iter().rev().skip(3).take(3).map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs(&second), older);
    cp.stop().await;
}

#[tokio::test]
async fn nodes_of_one_executor_cannot_share_a_volume_claim() {
    // node `a` with volume `data-b` and node `b-a` with volume `data` would both
    // get the claim `data-b-a-0` on Kubernetes.
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, _exec) = cp.alice_and_edge().await;
    let with_volume = |node: &str, volume: &str| {
        let mut s = serde_json::to_value(spec(node)).unwrap();
        s["storage"] = json!([{"name": volume, "sizeGib": 10, "mountPath": "/data"}]);
        s
    };
    deploy_spec(&alice, with_volume("a", "data-b")).await.unwrap();
    let err = deploy_spec(&alice, with_volume("b-a", "data")).await.unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert!(err.to_string().contains("data-b-a-0"), "{err}");
    // an edit that would collide is refused the same way
    deploy_spec(&alice, with_volume("b-a", "other")).await.unwrap();
    let edit = alice.call::<_, Value>(Method::PUT, "/api/v1/nodes/b-a/spec", Some(&json!({"spec": with_volume("b-a", "data")}))).await.unwrap_err();
    assert_eq!(edit.status(), Some(409));
    cp.stop().await;
}

#[tokio::test]
async fn an_endless_answer_is_cut_off_by_the_client() {
    // Whatever answers in the control plane's place cannot make a client buffer without bound.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n").await;
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..(novacula_client::ANSWER_BYTES_MAX >> 20) + 2 {
            if s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.is_err()
                || s.write_all(&chunk).await.is_err()
                || s.write_all(b"\r\n").await.is_err()
            {
                return; // the client hung up: good
            }
        }
    });
    let client = novacula_client::HttpApi::new(&url, None).unwrap();
    let err = client.raw(Method::GET, "/api/v1/executors", None, Duration::from_secs(30)).await.unwrap_err();
    assert!(err.to_string().contains("at most"), "{err}");
}

/// Every test of this file again, on PostgreSQL instead of redb.
#[test]
fn this_suite_passes_on_postgres() {
    rerun_on_postgres("this_suite_passes_on_postgres");
}
