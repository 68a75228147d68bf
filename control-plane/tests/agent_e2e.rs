//! The real agent loops against a real control plane on loopback, with the local process driver.

mod common;

use common::{lifecycle, node, PASSWORD};
use novacula_agent::adapter::Adapters;
use novacula_agent::backend::Processes;
use novacula_agent::client::{HttpApi, Method};
use novacula_agent::driver::{LocalDriver, ProcessDriver};
use novacula_agent::executor::{Executor, Identity, Intervals};
use novacula_control_plane::clock::SystemClock;
use novacula_control_plane::demo::demo_spec;
use novacula_control_plane::{orgs, AppState, Config, Store};
use novacula_core::{Channel, ExecutorKind};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn fast() -> Intervals {
    Intervals {
        sync: Duration::from_millis(200),
        poll_wait: Duration::from_secs(1),
        reconcile: Duration::from_millis(200),
        report: Duration::from_millis(200),
    }
}

fn start_agent(url: &str, key: &str, data: &Path) -> Running {
    let id = Identity { name: "local".into(), kind: ExecutorKind::Agent, version: "1.0.0".into(), channel: Channel::Stable };
    let exec = Executor::new(id, HttpApi::new(url, Some(key.into())).unwrap(), Processes::new(LocalDriver::new(data).unwrap(), Adapters::standard()), fast());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(exec.run(async {
        let _ = rx.await;
    }));
    Running { stop: tx, task }
}

impl Running {
    async fn kill(self) {
        self.stop.send(()).ok();
        self.task.await.unwrap();
    }
}

/// A control plane on loopback with the real clock: `(url, alice's session, API key for "local")`.
async fn control_plane() -> (String, HttpApi, String) {
    let store = Store::in_memory().unwrap();
    orgs::create_org_with_owner(&store, novacula_control_plane::clock::Clock::now(&SystemClock), "acme", "alice", PASSWORD).unwrap();
    let state = AppState::new(store, SystemClock, Config::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(novacula_control_plane::serve(listener, state, std::future::pending()));
    let anon = HttpApi::new(&url, None).unwrap();
    let login: Value = anon.call(Method::POST, "/api/v1/login", Some(&json!({"username": "alice", "password": PASSWORD}))).await.unwrap();
    let user = anon.clone().with_token(login["token"].as_str().map(String::from));
    let created: Value = user.call(Method::POST, "/api/v1/keys", Some(&json!({"executor": "local"}))).await.unwrap();
    (url, user, created["key"].as_str().unwrap().to_string())
}

async fn wait_for(user: &HttpApi, name: &str, what: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let n = node(user, name).await;
        if what(&n) {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("node {name} never reached the expected state: {}", node(user, name).await);
}

fn phase_is(p: &'static str) -> impl Fn(&Value) -> bool {
    move |n| n["phase"] == p && n["drift"]["revisionsBehind"] == 0
}

#[tokio::test]
async fn agent_converges_through_lifecycle_and_after_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let (url, user, key) = control_plane().await;
    let data = dir.path().join("agent");
    let probe = LocalDriver::new(&data).unwrap();

    let agent = start_agent(&url, &key, &data);
    tokio::time::sleep(Duration::from_millis(500)).await; // first sync registers the executor
    let _: Value = user.call(Method::POST, "/api/v1/nodes", Some(&json!({"executor": "local", "spec": demo_spec()}))).await.unwrap();
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
    let agent = start_agent(&url, &key, &data);
    let n = wait_for(&user, "demo-node", phase_is("running")).await;
    assert_eq!(n["revision"], 5);
    let local = probe.observe("demo-node").await.unwrap();
    assert_eq!(local.processes[0].running.unwrap().generation, 2, "restart applied once, after the crash if needed");
    assert_eq!(probe.process_count("demo-node"), 1, "no duplicate process after the crash");

    // a crash with nothing to do changes nothing
    agent.kill().await;
    let agent = start_agent(&url, &key, &data);
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
    let (url, user, key) = control_plane().await;
    let agent = start_agent(&url, &key, &dir.path().join("agent"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    // geth is not installed under data_dir/bin: the node must show error, not hang in provisioning
    let _: Value = user.call(Method::POST, "/api/v1/nodes", Some(&json!({"executor": "local", "spec": common::spec("eth")}))).await.unwrap();
    let n = wait_for(&user, "eth", |n| n["phase"] == "error").await;
    assert_eq!(n["nodeDown"], true);
    let msg = n["observed"]["processes"][0]["message"].as_str().unwrap_or_default().to_string();
    assert!(msg.contains("place an executable"), "{n}");
    agent.kill().await;
}
