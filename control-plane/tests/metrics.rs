//! `/metrics`: the control plane's requests, commits and events, the
//! fleet by state, and an agent's loops and nodes, in a format `promtool
//! check metrics` accepts and a real Prometheus (Debian's, started here)
//! scrapes.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::*;
use novacula_client::HttpApi;
use novacula_control_plane::{metrics, Config};
use novacula_core::{ObservedNodeState, ObservedNodeStatus, ObservedProcess, Revision};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Serve the metrics of `cp` on a port of their own; their URL.
async fn metrics_url(cp: &Cp) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(metrics::serve(l, cp.state.clone()));
    url
}

async fn scrape(url: &str) -> String {
    let (status, body) = HttpApi::new(url, None).unwrap().raw(novacula_client::Method::GET, "/metrics", None, Duration::from_secs(5)).await.unwrap();
    assert_eq!(status.as_u16(), 200);
    String::from_utf8(body.to_vec()).unwrap()
}

/// The value of the sample whose name and labels start `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// A program of Debian's `prometheus` package, or `None` (said on stderr) where it is missing and not required.
fn tool(name: &str) -> Option<String> {
    let path = format!("/usr/bin/{name}");
    if std::path::Path::new(&path).exists() {
        return Some(path);
    }
    assert!(std::env::var_os("CI").is_none(), "{path} is missing: run .ci/prerequisites");
    eprintln!("skipped: {path} is missing (.ci/prerequisites installs it)");
    None
}

fn running(name: &str) -> ObservedNodeState {
    let processes =
        ["execution", "consensus"].iter().map(|p| ObservedProcess { name: p.to_string(), status: ObservedNodeStatus::Running, sync: None, message: None });
    ObservedNodeState { node: name.into(), revision: Revision(1), processes: processes.collect(), removed: false, disk: None }
}

#[tokio::test]
async fn the_fleet_and_the_control_planes_work_in_lint_clean_metrics() {
    let cp = Cp::with_orgs(Config::default()).await;
    let url = metrics_url(&cp).await;
    let (alice, exec) = cp.alice_and_edge().await;
    deploy(&alice, "edge-1", "n1").await.unwrap();
    deploy(&alice, "edge-1", "n2").await.unwrap();
    exec.report("edge-1", vec![running("n1")]).await.unwrap();

    let text = scrape(&url).await;
    assert_eq!(sample(&text, r#"novacula_executors{kind="agent",state="online",compat="in-window"}"#), Some(1.0), "{text}");
    assert_eq!(sample(&text, r#"novacula_nodes{chain="ethereum",phase="running"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"novacula_nodes{chain="ethereum",phase="provisioning"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"novacula_nodes_drifting{kind="revision"}"#), Some(1.0), "n2 was never materialized");
    assert_eq!(sample(&text, r#"novacula_nodes_drifting{kind="liveness"}"#), Some(0.0));
    assert_eq!(sample(&text, "novacula_organizations "), Some(2.0));
    assert!(sample(&text, r#"novacula_http_requests_total{route="/api/v1/executor/sync",method="POST",status="2xx"}"#).unwrap() >= 1.0);
    assert!(sample(&text, r#"novacula_http_requests_total{route="/api/v1/nodes",method="POST",status="2xx"}"#).unwrap() >= 2.0);
    assert!(sample(&text, "novacula_store_commit_duration_seconds_count").unwrap() >= 3.0);
    assert!(sample(&text, "novacula_events_written_total").unwrap() >= 2.0);
    // A route's label is the route, never the name in the path: values stay bounded.
    let _ = alice.get::<Value>("/api/v1/nodes/n1").await.unwrap();
    let _ = alice.get::<Value>("/api/v1/nodes/no-such-node").await.unwrap_err();
    let text = scrape(&url).await;
    assert!(sample(&text, r#"novacula_http_requests_total{route="/api/v1/nodes/{name}",method="GET",status="4xx"}"#).is_some(), "{text}");
    assert!(!text.contains("no-such-node"));

    // The executor goes quiet: offline, and its nodes drift on liveness.
    cp.advance(Duration::from_secs(31));
    let text = scrape(&url).await;
    assert_eq!(sample(&text, r#"novacula_executors{kind="agent",state="offline",compat="in-window"}"#), Some(1.0));
    assert!(!text.contains(r#"state="online""#), "a state nobody is in is not reported");
    assert_eq!(sample(&text, r#"novacula_nodes_drifting{kind="liveness"}"#), Some(2.0));

    // promtool's lint, as Prometheus's own tool reads the format.
    if let Some(promtool) = tool("promtool") {
        use std::io::Write;
        let mut child = Command::new(promtool).args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "promtool check metrics:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    cp.stop().await;
}

/// A real agent (local process driver, the stand-in `demo` chain) named
/// `name`, with its metrics served on a port of their own; their URL.
async fn agent_with_metrics(cp: &Cp, owner: &HttpApi, data: &std::path::Path, name: &str) -> String {
    use novacula_agent::backend::Processes;
    use novacula_agent::driver::LocalDriver;
    use novacula_executor::adapter::Adapters;
    use novacula_executor::loops::{Executor, Identity, Intervals};
    let created: Value = owner.call(novacula_client::Method::POST, "/api/v1/keys", Some(&serde_json::json!({"executor": name}))).await.unwrap();
    let api = HttpApi::new(&cp.url, Some(created["key"].as_str().unwrap().to_string())).unwrap();
    let id = Identity { name: name.into(), kind: novacula_core::ExecutorKind::Agent, version: "1.0.0".into(), channel: novacula_core::Channel::Stable };
    let fast = Intervals {
        sync: Duration::from_millis(200),
        poll_wait: Duration::from_secs(1),
        reconcile: Duration::from_millis(200),
        report: Duration::from_millis(200),
    };
    let exec = Executor::new(id, api, Processes::new(LocalDriver::new(data).unwrap(), Adapters::standard().with_demo_chain()), fast);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(novacula_executor::metrics::serve(l, exec.metrics()));
    tokio::spawn(exec.run(std::future::pending()));
    url
}

#[tokio::test]
async fn an_agent_serves_its_loops_and_its_nodes() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let dir = tempfile::tempdir().unwrap();
    let url = agent_with_metrics(&cp, &alice, dir.path(), "edge-m").await;
    let spec = serde_json::json!({"name": "m1", "chain": "demo", "network": "local", "clients": [{"role": "main", "client": "standin", "version": "1.0.0"}]});
    for _ in 0..50 {
        if alice.call::<_, Value>(novacula_client::Method::POST, "/api/v1/nodes", Some(&serde_json::json!({"executor": "edge-m", "spec": spec}))).await.is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // until the agent has synced
    }
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(&url).await;
        // The node is up as soon as observed; its report is counted once answered.
        if sample(&text, r#"novacula_node_up{node="m1",process="main"}"#) == Some(1.0)
            && sample(&text, r#"novacula_executor_reports_total{result="ok"}"#).is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sample(&text, r#"novacula_node_up{node="m1",process="main"}"#), Some(1.0), "{text}");
    assert!(sample(&text, r#"novacula_executor_syncs_total{result="ok"}"#).unwrap() >= 1.0);
    assert!(sample(&text, r#"novacula_executor_reports_total{result="ok"}"#).unwrap() >= 1.0);
    assert!(sample(&text, "novacula_executor_driver_changes_total").unwrap() >= 1.0, "starting m1 was a change");
    assert!(sample(&text, "novacula_executor_reconcile_duration_seconds_count").unwrap() >= 1.0);
    assert_eq!(sample(&text, "novacula_executor_spec_refusals_total"), Some(0.0));
    if let Some(promtool) = tool("promtool") {
        use std::io::Write;
        let mut child = Command::new(promtool).args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "promtool check metrics:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    // Only /metrics is served there.
    let (status, _) = HttpApi::new(&url, None).unwrap().raw(novacula_client::Method::GET, "/", None, Duration::from_secs(5)).await.unwrap();
    assert_eq!(status.as_u16(), 404);
    cp.stop().await;
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_control_plane_and_an_agent() {
    let Some(prometheus) = tool("prometheus") else { return };
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let data = tempfile::tempdir().unwrap();
    let (cp_url, agent_url) = (metrics_url(&cp).await, agent_with_metrics(&cp, &alice, data.path(), "edge-p").await);
    let targets = [cp_url.clone(), agent_url.clone()];
    let targets: Vec<String> = targets.iter().map(|u| format!("'{}'", u.trim_start_matches("http://"))).collect();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: novacula\n    static_configs:\n      - targets: [{}]\n", targets.join(", ")),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let api = HttpApi::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
    let query = async |q: &str| -> Option<f64> {
        let v: Value = api.get(&format!("/api/v1/query?query={q}")).await.ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    // Both targets up, a series of each.
    let want = (Some(2.0), Some(2.0), Some(1.0));
    let mut seen = (None, None, None);
    for _ in 0..150 {
        seen = (query("sum(up)").await, query("novacula_organizations").await, query("sum(novacula_executor_syncs_total)%3E0").await.map(|_| 1.0));
        if seen == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let said = |child: std::process::Child| {
        let mut child = child;
        child.kill().unwrap();
        String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).to_string()
    };
    if seen != want {
        panic!("sum(up), novacula_organizations, agent syncs: {seen:?}; prometheus said:\n{}", said(child));
    }

    // Every query of the Grafana dashboards is valid PromQL over series that exist.
    let spec = serde_json::json!({"name": "p1", "chain": "demo", "network": "local", "clients": [{"role": "main", "client": "standin", "version": "1.0.0"}]});
    let _: Value = alice.call(novacula_client::Method::POST, "/api/v1/nodes", Some(&serde_json::json!({"executor": "edge-p", "spec": spec}))).await.unwrap();
    let exprs = dashboard_queries();
    assert!(exprs.len() >= 15, "{exprs:?}");
    // A series is scraped, or declared with no sample yet (the stand-in
    // chain has no head or peers to report).
    let declared: String = [scrape(&cp_url).await, scrape(&agent_url).await].concat();
    let mut missing: Vec<String> = Vec::new();
    for _ in 0..100 {
        let names: Value = api.get("/api/v1/label/__name__/values").await.unwrap();
        let names: Vec<&str> = names["data"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        missing = exprs.iter().flat_map(|e| series_names(e)).filter(|n| !names.contains(&n.as_str()) && !declared.contains(&format!("# TYPE {n} "))).collect();
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(missing.is_empty(), "dashboard series never scraped: {missing:?}");
    for e in &exprs {
        let v: Value = api.get(&format!("/api/v1/query?query={}", urlencode(&e.replace("$node", "p1")))).await.unwrap_or_else(|err| panic!("{e}: {err}"));
        assert_eq!(v["status"], "success", "{e}: {v}");
    }
    said(child);
    cp.stop().await;
}

/// Every `expr` of the dashboards in `charts/dashboards`.
fn dashboard_queries() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/dashboards");
    let mut exprs = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let d: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for p in d["panels"].as_array().unwrap() {
                for t in p["targets"].as_array().unwrap() {
                    exprs.push(t["expr"].as_str().unwrap().to_string());
                }
            }
        }
    }
    exprs
}

/// The `novacula_*` series a query reads.
fn series_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("novacula_") {
        let name: String = rest[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        rest = &rest[i + name.len()..];
        out.push(name);
    }
    out
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
