//! Alerts end to end over HTTP: settings and per-node overrides open and
//! resolve incidents (`disk_usage`, `node_down`, `executor_offline`), each
//! transition goes through the durable outbox to local receivers that fail
//! their first attempts, signed, with an idempotency key; deliveries are
//! recorded, retried with backoff, replayed by hand, and survive a restart
//! of the control plane.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{deploy, obs, sync_req, Cp, T0};
use novacula_client::{HttpApi, Method};
use novacula_control_plane::clock::ManualClock;
use novacula_control_plane::{Config, Store};
use novacula_core::{DiskUsage, ExecutorKind, ObservedNodeState, ObservedNodeStatus};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a receiver got: headers and the parsed body, per request.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, Value, String)>>>,
    /// Requests answered 503 before the receiver starts accepting.
    fail_first: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start(fail_first: usize) -> (Receiver, String) {
        let r = Receiver { fail_first: Arc::new(Mutex::new(fail_first)), ..Receiver::default() };
        let app = axum::Router::new().fallback(axum::routing::post(record)).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, url)
    }

    fn accepted(&self) -> Vec<(HeaderMap, Value, String)> {
        self.got.lock().unwrap().clone()
    }
}

async fn record(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let mut fail = r.fail_first.lock().unwrap();
    if *fail > 0 {
        *fail -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    r.got.lock().unwrap().push((headers, serde_json::from_str(&body).unwrap(), body));
    StatusCode::OK
}

fn config() -> Config {
    Config { sweep_interval: Duration::from_millis(100), ..Config::default() }
}

async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 10 s");
}

fn with_disk(name: &str, rev: u64, percent_full: u64) -> ObservedNodeState {
    ObservedNodeState {
        disk: Some(DiskUsage { used_bytes: 10, free_bytes: 1000 - percent_full * 10, total_bytes: 1000 }),
        ..obs(name, rev, ObservedNodeStatus::Running)
    }
}

async fn incidents(user: &HttpApi, status: &str) -> Vec<Value> {
    user.get::<Vec<Value>>(&format!("/api/v1/incidents?status={status}")).await.unwrap()
}

async fn deliveries(user: &HttpApi) -> Vec<Value> {
    user.get::<Vec<Value>>("/api/v1/alerts/deliveries").await.unwrap()
}

/// What a receiver checks: the signature over the raw body with the time it names.
fn hmac_ok(secret: &str, headers: &HeaderMap, raw: &str) -> bool {
    let sig = headers["x-novacula-signature"].to_str().unwrap();
    let t: u64 = sig.strip_prefix("t=").and_then(|r| r.split(',').next()).unwrap().parse().unwrap();
    sig == novacula_core::alerts::signature(secret.as_bytes(), t, raw.as_bytes()) && sig != novacula_core::alerts::signature(b"other", t, raw.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_usage_incidents_reach_a_flaky_webhook_signed_once_per_transition() {
    let cp = Cp::with_orgs(config()).await;
    let (alice, edge) = cp.alice_and_edge().await;
    let rev = deploy(&alice, "edge-1", "geth-1").await.unwrap()["revision"].as_u64().unwrap();
    let (hook, hook_url) = Receiver::start(2).await;
    let (slack, slack_url) = Receiver::start(0).await;

    // channels: secrets are write-only, bad input named
    let created: Value = alice
        .call(
            Method::POST,
            "/api/v1/alerts/channels",
            Some(&json!({"name": "ops hook", "kind": "webhook", "url": format!("{hook_url}/hook"), "secret": "s3cret"})),
        )
        .await
        .unwrap();
    assert_eq!((created["hasSecret"].as_bool(), created.get("secret")), (Some(true), None));
    let _: Value = alice.call(Method::POST, "/api/v1/alerts/channels", Some(&json!({"name": "slack", "kind": "slack", "url": slack_url}))).await.unwrap();
    let listed = alice.raw(Method::GET, "/api/v1/alerts/channels", None, Duration::from_secs(5)).await.unwrap();
    assert!(!String::from_utf8_lossy(&listed.1).contains("s3cret"), "a secret is never read back");
    for (bad, field) in [
        (json!({"name": "x", "kind": "webhook", "url": "ftp://example.com/x"}), "url"),
        (json!({"name": "x", "kind": "webhook", "url": "http://user:pw@example.com/x"}), "url"),
        (json!({"name": "x", "kind": "pagerduty", "url": "https://events.pagerduty.com/v2/enqueue"}), "secret"),
        (json!({"name": "", "kind": "slack", "url": "https://hooks.slack.com/services/x"}), "name"),
    ] {
        let e = alice.call::<_, Value>(Method::POST, "/api/v1/alerts/channels", Some(&bad)).await.unwrap_err();
        assert_eq!(e.status(), Some(422), "{bad}: {e}");
        assert!(e.to_string().contains(field), "{bad}: {e}");
    }
    let e =
        alice.call::<_, Value>(Method::POST, "/api/v1/alerts/channels", Some(&json!({"name": "slack", "kind": "slack", "url": slack_url}))).await.unwrap_err();
    assert_eq!(e.status(), Some(409), "names are unique: {e}");

    // 90 % full over the default 85 %: one incident, one event
    edge.report("edge-1", vec![with_disk("geth-1", rev, 90)]).await.unwrap();
    let open = incidents(&alice, "open").await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!((open[0]["rule"].as_str(), open[0]["subject"]["name"].as_str()), (Some("disk_usage"), Some("geth-1")));
    assert_eq!(open[0]["message"], "disk 90% full (threshold 85%)");
    let first_id = open[0]["id"].as_str().unwrap().to_string();
    edge.report("edge-1", vec![with_disk("geth-1", rev, 91)]).await.unwrap();
    assert_eq!(incidents(&alice, "all").await.len(), 1, "still the same incident while it holds");

    // Slack gets it at once; the webhook fails twice and gets it on the third attempt, after the backoff
    let s = until("slack receives the opening", async || slack.accepted().first().cloned()).await;
    assert_eq!(s.1["text"], "[FIRING] disk_usage node geth-1: disk 90% full (threshold 85%)");
    until("two failed attempts", async || (deliveries(&alice).await.iter().filter(|d| d["responseCode"] == 503).count() == 1).then_some(())).await;
    cp.advance(Duration::from_secs(5));
    until("the second attempt fails", async || (deliveries(&alice).await.iter().filter(|d| d["responseCode"] == 503).count() == 2).then_some(())).await;
    assert!(hook.accepted().is_empty());
    cp.advance(Duration::from_secs(10));
    let (headers, body, raw) = until("the third attempt is delivered", async || hook.accepted().first().cloned()).await;
    assert_eq!((body["rule"].as_str(), body["status"].as_str(), body["incidentId"].as_str()), (Some("disk_usage"), Some("open"), Some(first_id.as_str())));
    assert_eq!((body["subject"]["kind"].as_str(), body["organization"].as_str()), (Some("node"), Some("acme")));
    assert_eq!(headers["idempotency-key"].to_str().unwrap(), body["idempotencyKey"].as_str().unwrap());
    assert!(hmac_ok("s3cret", &headers, &raw), "signed with the channel's secret");
    assert!(slack.accepted()[0].0.get("x-novacula-signature").is_none(), "no secret, no signature");
    let attempts: Vec<(u64, bool)> = deliveries(&alice)
        .await
        .iter()
        .filter(|d| d["channelName"] == "ops hook")
        .map(|d| (d["attempt"].as_u64().unwrap(), d["delivered"].as_bool().unwrap()))
        .collect();
    assert_eq!(attempts, [(3, true), (2, false), (1, false)], "every attempt recorded, newest first");
    let metrics = novacula_control_plane::metrics::render(&cp.state).await.unwrap();
    for series in ["novacula_incidents_open{rule=\"disk_usage\"} 1", "novacula_incidents_open{rule=\"node_down\"} 0", "novacula_notifications_queued 0"] {
        assert!(metrics.lines().any(|l| l == series), "{series} in\n{metrics}");
    }
    let count = |labels: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(&format!("novacula_notifications_total{{{labels}}} "))).unwrap_or("x 0");
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(count("kind=\"webhook\",result=\"failed\"") >= 2.0 && count("kind=\"slack\",result=\"delivered\"") >= 1.0, "{metrics}");

    // a stricter organization setting resolves it; the receivers hear so once
    let e = alice
        .call::<_, Value>(
            Method::PUT,
            "/api/v1/alerts/settings",
            Some(&json!({"nodeDown": true, "diskUsage": true, "diskUsageThresholdPercent": 0, "executorOffline": true, "executorOfflineForSecs": 0})),
        )
        .await
        .unwrap_err();
    assert!(e.status() == Some(422) && e.to_string().contains("diskUsageThresholdPercent"), "{e}");
    let _: Value = alice
        .call(
            Method::PUT,
            "/api/v1/alerts/settings",
            Some(&json!({"nodeDown": true, "diskUsage": true, "diskUsageThresholdPercent": 95, "executorOffline": true, "executorOfflineForSecs": 0})),
        )
        .await
        .unwrap();
    assert!(incidents(&alice, "open").await.is_empty());
    let resolved = until("the resolution is delivered", async || hook.accepted().get(1).cloned()).await;
    assert_eq!((resolved.1["status"].as_str(), resolved.1["incidentId"].as_str()), (Some("resolved"), Some(first_id.as_str())));
    assert!(resolved.1["resolvedAt"].as_str().unwrap().ends_with('Z'));

    // a node's own threshold overrides the organization's; unset fields inherit
    let e = alice.call::<_, Value>(Method::PUT, "/api/v1/nodes/geth-1/alert-policy", Some(&json!({"diskUsageThresholdPercent": 101}))).await.unwrap_err();
    assert_eq!(e.status(), Some(422), "{e}");
    let e = alice.call::<_, Value>(Method::PUT, "/api/v1/nodes/nope/alert-policy", Some(&json!({}))).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
    let p: Value = alice.call(Method::PUT, "/api/v1/nodes/geth-1/alert-policy", Some(&json!({"diskUsageThresholdPercent": 80}))).await.unwrap();
    assert_eq!(
        (p["effective"]["nodeDown"].as_bool(), p["effective"]["diskUsage"].as_bool(), p["effective"]["diskUsageThresholdPercent"].as_u64()),
        (Some(true), Some(true), Some(80))
    );
    assert_eq!(p["override"]["nodeDown"], Value::Null);
    let policies: Vec<Value> = alice.get("/api/v1/alerts/policies").await.unwrap();
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0]["effective"]["diskUsageThresholdPercent"], 80);
    let reopened = incidents(&alice, "open").await;
    assert_eq!(reopened.len(), 1);
    assert_ne!(reopened[0]["id"].as_str().unwrap(), first_id, "a new incident, not the old one reopened");

    // node_down beside it, and the feed says what happened
    edge.report("edge-1", vec![ObservedNodeState { disk: with_disk("geth-1", rev, 91).disk, ..obs("geth-1", rev, ObservedNodeStatus::Error) }]).await.unwrap();
    let rules: Vec<String> = incidents(&alice, "open").await.iter().map(|i| i["rule"].as_str().unwrap().to_string()).collect();
    assert_eq!(rules, ["node_down", "disk_usage"]);
    let feed = common::events(&alice, 0).await;
    let opened: Vec<&Value> = feed.iter().filter(|e| e["kind"] == "notification.alert.opened").collect();
    assert_eq!(opened.len(), 3, "two disk_usage openings and one node_down");
    assert!(feed.iter().any(|e| e["kind"] == "notification.alert.resolved" && e["level"] == "info"));
    assert!(opened.iter().any(|e| e["level"] == "error" && e["message"].as_str().unwrap().contains("node_down node geth-1")));

    // Test button, and a replay of a delivery under the same idempotency key
    let id = created["id"].as_str().unwrap();
    let t: Value = alice.call(Method::POST, &format!("/api/v1/alerts/channels/{id}/test"), None::<&()>).await.unwrap();
    assert_eq!((t["delivered"].as_bool(), t["responseCode"].as_u64(), t["status"].as_str()), (Some(true), Some(200), Some("test")));
    let before = hook.accepted().len();
    let first_delivered =
        deliveries(&alice).await.into_iter().find(|d| d["delivered"] == true && d["incidentId"] == first_id.as_str() && d["status"] == "open").unwrap();
    let q: Value =
        alice.call(Method::POST, &format!("/api/v1/alerts/deliveries/{}/replay", first_delivered["id"].as_str().unwrap()), None::<&()>).await.unwrap();
    assert!(q["queued"].as_u64().is_some());
    let replayed = until("the replay arrives", async || {
        let got = hook.accepted();
        got.iter().skip(before).find(|(_, b, _)| b["incidentId"] == first_id.as_str() && b["status"] == "open").cloned()
    })
    .await;
    assert_eq!(replayed.1["idempotencyKey"], first_delivered["idempotencyKey"], "the same transition, the same key");
    let d = until("the replay is recorded", async || deliveries(&alice).await.into_iter().find(|d| d["replayOf"] == first_delivered["id"])).await;
    assert_eq!(d["delivered"], true);

    // a member reads incidents but not channels (a Slack URL is a credential)
    let _: Value = alice.call(Method::POST, "/api/v1/users", Some(&json!({"username": "mo", "password": common::PASSWORD, "role": "member"}))).await.unwrap();
    let mo = cp.login("mo").await;
    assert_eq!(incidents(&mo, "open").await.len(), 2);
    assert_eq!(mo.get::<Vec<Value>>("/api/v1/alerts/channels").await.unwrap_err().status(), Some(403));

    // deleting the node resolves its incidents
    let deleted: Value = alice.call(Method::DELETE, "/api/v1/nodes/geth-1", None::<&()>).await.unwrap();
    let last = deleted["revision"].as_u64().unwrap();
    let gone = edge.report("edge-1", vec![ObservedNodeState { removed: true, ..obs("geth-1", last, ObservedNodeStatus::Stopped) }]).await.unwrap();
    assert_eq!(gone.accepted, 1, "{gone:?}");
    assert!(incidents(&alice, "open").await.is_empty(), "a removed node has no open incident");
    assert!(alice.get::<Vec<Value>>("/api/v1/alerts/policies").await.unwrap().is_empty(), "nor a policy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_offline_waits_for_its_for_and_resolves_on_the_next_sync() {
    let cp = Cp::with_orgs(config()).await;
    let (alice, edge) = cp.alice_and_edge().await;
    let _: Value = alice
        .call(
            Method::PUT,
            "/api/v1/alerts/settings",
            Some(&json!({"nodeDown": true, "diskUsage": true, "diskUsageThresholdPercent": 85, "executorOffline": true, "executorOfflineForSecs": 60})),
        )
        .await
        .unwrap();
    cp.advance(Duration::from_secs(45));
    tokio::time::sleep(Duration::from_millis(500)).await; // several sweeps
    assert!(incidents(&alice, "open").await.is_empty(), "offline, but not for 60 s past the timeout yet");
    cp.advance(Duration::from_secs(60));
    let open = until("executor_offline opens", async || incidents(&alice, "open").await.into_iter().next()).await;
    assert_eq!(
        (open["rule"].as_str(), open["subject"]["kind"].as_str(), open["subject"]["name"].as_str()),
        (Some("executor_offline"), Some("executor"), Some("edge-1"))
    );
    edge.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    until("a sync resolves it", async || incidents(&alice, "open").await.is_empty().then_some(())).await;
    let all = incidents(&alice, "all").await;
    assert_eq!(all.len(), 1);
    assert!(all[0]["resolvedAt"].as_u64().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_survives_a_restart_and_delivers_each_transition_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.redb");
    let store = Store::open(&db).unwrap();
    common::seed(&store);
    let clock = Arc::new(ManualClock::new(T0));
    let cp = Cp::start(store, clock.clone(), config()).await;
    let (alice, edge) = cp.alice_and_edge().await;
    let rev = deploy(&alice, "edge-1", "geth-1").await.unwrap()["revision"].as_u64().unwrap();
    // a receiver that is not there yet: its port is taken, then freed
    let parked = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = parked.local_addr().unwrap().port();
    drop(parked);
    let _: Value = alice
        .call(Method::POST, "/api/v1/alerts/channels", Some(&json!({"name": "late", "kind": "webhook", "url": format!("http://127.0.0.1:{port}/")})))
        .await
        .unwrap();
    edge.report("edge-1", vec![with_disk("geth-1", rev, 99)]).await.unwrap();
    until("a failed attempt is recorded", async || deliveries(&alice).await.into_iter().find(|d| d["delivered"] == false && d["error"].as_str().is_some()))
        .await;
    let state = cp.stop().await;
    drop(state);

    // the receiver comes up on that port; a new control plane on the same file delivers what was left
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().fallback(axum::routing::post(move |body: String| async move {
        g.lock().unwrap().push(serde_json::from_str::<Value>(&body).unwrap());
        StatusCode::OK
    }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let cp = Cp::start(Store::open(&db).unwrap(), clock, config()).await;
    let alice = cp.login("alice").await;
    cp.advance(Duration::from_secs(5));
    until("delivered after the restart", async || (got.lock().unwrap().len() == 1).then_some(())).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // two more passes: nothing is sent again
    let received = got.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!((received[0]["rule"].as_str(), received[0]["status"].as_str()), (Some("disk_usage"), Some("open")));
    let d = deliveries(&alice).await;
    assert_eq!(d.iter().map(|d| d["delivered"].as_bool().unwrap()).collect::<Vec<_>>(), [true, false], "{d:?}");
}

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// Debian's Alertmanager on loopback, routing every alert to `hook` at once
/// (resolutions too), with its data in `dir`; killed on drop.
struct Alertmanager {
    child: std::process::Child,
    url: String,
}

impl Alertmanager {
    async fn start(dir: &std::path::Path, hook: &str) -> Alertmanager {
        assert!(std::path::Path::new(ALERTMANAGER).exists(), "{ALERTMANAGER} is missing: run .ci/prerequisites (Debian's prometheus-alertmanager)");
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: hook\n  group_by: ['alertname', 'node']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
                 receivers:\n  - name: hook\n    webhook_configs:\n      - url: '{hook}/am'\n        send_resolved: true\n"
            ),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("alertmanager.log")).unwrap())
            .spawn()
            .unwrap();
        let am = Alertmanager { child, url: format!("http://127.0.0.1:{port}") };
        let api = HttpApi::new(&am.url, None).unwrap();
        until("Alertmanager answers", async || api.get::<Value>("/api/v2/status").await.ok()).await;
        am
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_receives_routes_and_resolves_novacula_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let (routed, routed_url) = Receiver::start(0).await;
    let am = Alertmanager::start(dir.path(), &routed_url).await;
    // Alertmanager's clock is the real one: so is this control plane's.
    let real_now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let store = Store::for_tests();
    common::seed(&store);
    let cp = Cp::start(store, Arc::new(ManualClock::new(novacula_core::Timestamp(real_now))), config()).await;
    let (alice, edge) = cp.alice_and_edge().await;
    let rev = deploy(&alice, "edge-1", "geth-1").await.unwrap()["revision"].as_u64().unwrap();
    let _: Value = alice
        .call(
            Method::POST,
            "/api/v1/alerts/channels",
            Some(&json!({"name": "alertmanager", "kind": "alertmanager", "url": format!("{}/api/v2/alerts", am.url)})),
        )
        .await
        .unwrap();

    edge.report("edge-1", vec![with_disk("geth-1", rev, 97)]).await.unwrap();
    let am_api = HttpApi::new(&am.url, None).unwrap();
    let alert = until("Alertmanager holds the alert", async || {
        let alerts: Vec<Value> = am_api.get("/api/v2/alerts").await.ok()?;
        alerts.into_iter().find(|a| a["labels"]["alertname"] == "novacula_disk_usage")
    })
    .await;
    assert_eq!(
        (alert["labels"]["node"].as_str(), alert["labels"]["organization"].as_str(), alert["labels"]["severity"].as_str()),
        (Some("geth-1"), Some("acme"), Some("warning"))
    );
    assert_eq!(alert["status"]["state"], "active");
    assert!(alert["annotations"]["summary"].as_str().unwrap().contains("disk 97% full"));
    let (_, firing, _) =
        until("Alertmanager routes it to its receiver", async || routed.accepted().into_iter().find(|(_, b, _)| b["status"] == "firing")).await;
    assert_eq!(firing["alerts"][0]["labels"]["alertname"], "novacula_disk_usage");
    let delivered = deliveries(&alice).await;
    assert_eq!((delivered[0]["delivered"].as_bool(), delivered[0]["responseCode"].as_u64()), (Some(true), Some(200)), "{delivered:?}");

    // the disk frees up: the incident resolves, and Alertmanager resolves the alert
    cp.advance(Duration::from_secs(1));
    edge.report("edge-1", vec![with_disk("geth-1", rev, 40)]).await.unwrap();
    let (_, resolved, _) =
        until("Alertmanager routes the resolution", async || routed.accepted().into_iter().find(|(_, b, _)| b["status"] == "resolved")).await;
    assert_eq!(resolved["alerts"][0]["labels"]["node"], "geth-1");
    let still: Vec<Value> = am_api.get("/api/v2/alerts?active=true&silenced=false&inhibited=false&unprocessed=false").await.unwrap();
    assert!(still.iter().all(|a| a["labels"]["alertname"] != "novacula_disk_usage"), "{still:?}");
}

fn syncing(name: &str, rev: u64, head: u64, highest: u64) -> ObservedNodeState {
    let mut o = obs(name, rev, ObservedNodeStatus::Syncing);
    o.processes[0].sync = Some(novacula_core::SyncMetrics::new(head, highest, 5));
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_heads_long_sync_distances_and_unsupported_executors_open_after_their_for() {
    let cp = Cp::with_orgs(config()).await;
    let (alice, edge) = cp.alice_and_edge().await;
    let rev = deploy(&alice, "edge-1", "geth-1").await.unwrap()["revision"].as_u64().unwrap();
    let e = alice.call::<_, Value>(Method::PUT, "/api/v1/alerts/settings", Some(&json!({"nodeStalledForSecs": 30}))).await.unwrap_err();
    assert!(e.status() == Some(422) && e.to_string().contains("nodeStalledForSecs"), "{e}");
    let _: Value = alice
        .call(Method::PUT, "/api/v1/alerts/settings", Some(&json!({"nodeStalledForSecs": 120, "syncDistanceThreshold": 50, "syncDistanceForSecs": 60})))
        .await
        .unwrap();
    let open_rules = async || -> Vec<String> { incidents(&alice, "open").await.iter().map(|i| i["rule"].as_str().unwrap().to_string()).collect() };

    // 400 behind and not moving; the executor keeps syncing (not offline)
    let step = async |secs: u64| {
        cp.advance(Duration::from_secs(secs));
        edge.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await; // a few sweeps
    };
    // The clock moves 31 s at a time until `rule` opens; the seconds it took.
    // The rules are judged every 30 s of the clock on a sweep, and a loaded
    // machine may sweep late: each step waits for a sweep, however long.
    let step_until_open = async |rule: &str, limit: u64| -> u64 {
        let mut stepped = 0;
        if open_rules().await.iter().any(|r| r == rule) {
            return stepped;
        }
        loop {
            step(31).await;
            stepped += 31;
            for _ in 0..40 {
                if open_rules().await.iter().any(|r| r == rule) {
                    return stepped;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(stepped < limit, "{rule} did not open within {limit} s of the clock");
        }
    };
    edge.report("edge-1", vec![syncing("geth-1", rev, 100, 500)]).await.unwrap();
    step(0).await;
    let distance_after = step_until_open("sync_distance", 200).await;
    assert!(distance_after >= 60, "sync_distance holds its 60 s: opened after {distance_after} s");
    if distance_after < 120 {
        assert_eq!(open_rules().await, ["sync_distance"], "at {distance_after} s the head may stand still 120 s");
    }
    let stalled_after = distance_after + step_until_open("node_stalled", 300).await;
    assert!(stalled_after >= 120, "node_stalled holds its 120 s: opened after {stalled_after} s");
    assert_eq!(open_rules().await, ["node_stalled", "sync_distance"]);
    let stalled = incidents(&alice, "open").await.into_iter().find(|i| i["rule"] == "node_stalled").unwrap();
    assert!(stalled["message"].as_str().unwrap().starts_with("head stuck at 100 for "), "{stalled}");

    // the head moves and catches up: both resolve
    edge.report("edge-1", vec![syncing("geth-1", rev, 499, 500)]).await.unwrap();
    step(31).await;
    until("both resolve", async || open_rules().await.is_empty().then_some(())).await;

    // a stopped node is not judged by its head
    let _: Value = alice.call(Method::PUT, "/api/v1/nodes/geth-1/alert-policy", Some(&json!({"syncDistance": false}))).await.unwrap();
    let policies: Vec<Value> = alice.get("/api/v1/alerts/policies").await.unwrap();
    assert_eq!((policies[0]["effective"]["syncDistance"].as_bool(), policies[0]["effective"]["nodeStalled"].as_bool()), (Some(false), Some(true)));

    // an executor out of the compatibility window
    let (old, _) = cp.executor_client(&alice, Some("relic")).await;
    old.sync_executor(&sync_req("relic", ExecutorKind::Agent, "3.0.0")).await.unwrap();
    step(31).await;
    let open = until("executor_unsupported opens", async || incidents(&alice, "open").await.into_iter().find(|i| i["rule"] == "executor_unsupported")).await;
    assert_eq!((open["subject"]["kind"].as_str(), open["subject"]["name"].as_str()), (Some("executor"), Some("relic")));
    assert!(open["message"].as_str().unwrap().contains("3.0.0"));
}
