//! A control plane on loopback with the real clock, and real agents (local
//! process driver, fast intervals) for end-to-end tests.
#![allow(dead_code)]

use novacula_agent::backend::Processes;
use novacula_agent::driver::LocalDriver;
use novacula_client::{HttpApi, Method};
use novacula_control_plane::clock::SystemClock;
use novacula_control_plane::services::orgs;
use novacula_control_plane::{AppState, Config, Store};
use novacula_core::entropy::OsEntropy;
use novacula_core::{Channel, ExecutorKind};
use novacula_executor::adapter::Adapters;
use novacula_executor::loops::{Executor, Identity, Intervals};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

pub const OWNER: &str = "alice";
pub const PASSWORD: &str = "correct-horse-battery";

pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn kill(self) {
        self.stop.send(()).ok();
        self.task.await.unwrap();
    }
}

pub fn fast() -> Intervals {
    Intervals { sync: Duration::from_millis(200), poll_wait: Duration::from_secs(1), reconcile: Duration::from_millis(200), report: Duration::from_millis(200) }
}

/// A real agent named `name` with the local process driver on `data`.
pub fn start_agent(url: &str, key: &str, data: &Path, name: &str) -> Running {
    start_agent_with(HttpApi::new(url, Some(key.into())).unwrap(), data, name)
}

/// The same, talking to the control plane through `api`.
pub fn start_agent_with(api: HttpApi, data: &Path, name: &str) -> Running {
    run_agent(api, data, name, fast())
}

/// A real agent with its own loop intervals.
pub fn start_agent_with_intervals(url: &str, key: &str, data: &Path, name: &str, intervals: Intervals) -> Running {
    run_agent(HttpApi::new(url, Some(key.into())).unwrap(), data, name, intervals)
}

fn run_agent(api: HttpApi, data: &Path, name: &str, intervals: Intervals) -> Running {
    let id = Identity { name: name.into(), kind: ExecutorKind::Agent, version: "1.0.0".into(), channel: Channel::Stable };
    let backend = Processes::new(LocalDriver::new(data).unwrap(), Adapters::standard().with_demo_chain());
    let exec = Executor::new(id, api, backend, intervals);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(exec.run(async {
        let _ = rx.await;
    }));
    Running { stop: tx, task }
}

/// A control plane with org `acme` (owner `alice`); returns its URL and alice's session.
pub async fn control_plane() -> (String, HttpApi) {
    control_plane_seeded(|_| {}).await
}

/// [`control_plane`], with more records written by `seed` before it serves.
pub async fn control_plane_seeded(seed: impl FnOnce(&Store)) -> (String, HttpApi) {
    control_plane_with(Config::default(), seed).await
}

/// [`control_plane_seeded`] with `config`.
pub async fn control_plane_with(config: Config, seed: impl FnOnce(&Store)) -> (String, HttpApi) {
    let store = Store::in_memory().unwrap();
    orgs::create_org_with_owner(&store, &OsEntropy, novacula_control_plane::clock::Clock::now(&SystemClock), "acme", OWNER, PASSWORD).unwrap();
    seed(&store);
    let state = AppState::new(store, SystemClock, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(novacula_control_plane::serve(listener, state, std::future::pending()));
    let user = login(&url, OWNER).await;
    (url, user)
}

pub async fn login(url: &str, user: &str) -> HttpApi {
    let anon = HttpApi::new(url, None).unwrap();
    let login: Value = anon.call(Method::POST, "/api/v1/login", Some(&json!({"username": user, "password": PASSWORD}))).await.unwrap();
    anon.with_token(login["token"].as_str().map(String::from))
}

/// An API key bound to executor `name`.
pub async fn key_for(user: &HttpApi, name: &str) -> String {
    let created: Value = user.call(Method::POST, "/api/v1/keys", Some(&json!({"executor": name}))).await.unwrap();
    created["key"].as_str().unwrap().to_string()
}

/// Create a user of `role` in alice's org, with the shared password.
/// A first sync of agent `name` (1.0.0, no capabilities).
pub fn sync_request(name: &str) -> novacula_core::wire::SyncExecutorRequest {
    novacula_core::wire::SyncExecutorRequest {
        name: name.into(),
        kind: ExecutorKind::Agent,
        version: "1.0.0".into(),
        channel: Channel::Stable,
        capabilities: Some(Default::default()),
        capabilities_digest: None,
    }
}

pub async fn add_user(owner: &HttpApi, name: &str, role: &str) {
    let _: Value = owner.call(Method::POST, "/api/v1/users", Some(&json!({"username": name, "password": PASSWORD, "role": role}))).await.unwrap();
}

/// Poll `GET /nodes/{name}` every 100 ms until `what` holds (30 s at most).
pub async fn wait_for_node(user: &HttpApi, name: &str, what: impl Fn(&Value) -> bool) -> Value {
    let get = || async { user.get::<Value>(&format!("/api/v1/nodes/{name}")).await.unwrap() };
    for _ in 0..300 {
        let n = get().await;
        if what(&n) {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("node {name} never reached the expected state: {}", get().await);
}

/// A real agent `executor` (local driver, in `data`) running the stand-in node `node`, up and running.
pub async fn agent_with_demo_node(url: &str, owner: &HttpApi, data: &Path, executor: &str, node: &str) -> Running {
    let key = key_for(owner, executor).await;
    let agent = start_agent(url, &key, data, executor);
    for _ in 0..100 {
        if owner.get::<Value>(&format!("/api/v1/executors/{executor}")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spec = json!({"name": node, "chain": "demo", "network": "local", "clients": [{"role": "main", "client": "standin", "version": "1.0.0"}]});
    let _: Value = owner.call(Method::POST, "/api/v1/nodes", Some(&json!({"executor": executor, "spec": spec}))).await.unwrap();
    wait_for_node(owner, node, phase_is("running")).await;
    agent
}

pub fn phase_is(p: &'static str) -> impl Fn(&Value) -> bool {
    move |n| n["phase"] == p && n["drift"]["revisionsBehind"] == 0
}
