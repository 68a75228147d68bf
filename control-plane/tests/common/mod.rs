//! A control plane on loopback with a hand-driven clock.
#![allow(dead_code)]

use novacula_client::Method;
use novacula_client::{ClientError, HttpApi};
use novacula_control_plane::clock::ManualClock;
use novacula_control_plane::services::orgs;
use novacula_control_plane::{AppState, Config, Store};
use novacula_core::entropy::OsEntropy;
use novacula_core::executor::{ChainSupport, ClientSupport};
use novacula_core::spec::NodeType;
use novacula_core::wire::SyncExecutorRequest;
use novacula_core::{Channel, ExecutorCapabilities, ExecutorKind, NodeSpec, Timestamp};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub const PASSWORD: &str = "correct-horse-battery";
pub const T0: Timestamp = Timestamp(1_750_000_000_000);

pub struct Cp {
    pub url: String,
    pub state: Arc<AppState>,
    pub clock: Arc<ManualClock>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Cp {
    pub async fn start(store: Store, clock: Arc<ManualClock>, config: Config) -> Cp {
        let state = AppState::new(store, clock.clone(), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let task = tokio::spawn(async move {
            novacula_control_plane::serve(listener, st, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Cp { url, state, clock, shutdown: Some(tx), task: Some(task) }
    }

    /// A test store (redb in memory, or PostgreSQL: see [`rerun_on_postgres`])
    /// with org `acme` (owner `alice`) and org `globex` (owner `bob`).
    pub async fn with_orgs(config: Config) -> Cp {
        let store = Store::for_tests();
        seed(&store);
        Cp::start(store, Arc::new(ManualClock::new(T0)), config).await
    }

    pub async fn stop(mut self) -> Arc<AppState> {
        self.shutdown.take().unwrap().send(()).ok();
        self.task.take().unwrap().await.unwrap();
        self.state.clone()
    }

    pub fn anon(&self) -> HttpApi {
        HttpApi::new(&self.url, None).unwrap()
    }

    /// A session of `user` signed in with `password`.
    pub async fn login_with(&self, user: &str, password: &str) -> HttpApi {
        let resp: Value = self.anon().call(Method::POST, "/api/v1/login", Some(&json!({"username": user, "password": password}))).await.unwrap();
        HttpApi::new(&self.url, Some(resp["token"].as_str().unwrap().to_string())).unwrap()
    }

    pub async fn login(&self, user: &str) -> HttpApi {
        let resp: Value = self.anon().call(Method::POST, "/api/v1/login", Some(&json!({"username": user, "password": PASSWORD}))).await.unwrap();
        HttpApi::new(&self.url, Some(resp["token"].as_str().unwrap().to_string())).unwrap()
    }

    /// Create an API key (as `admin`) and return a client authenticated with it.
    pub async fn executor_client(&self, admin: &HttpApi, executor: Option<&str>) -> (HttpApi, Value) {
        let created: Value = admin.call(Method::POST, "/api/v1/keys", Some(&json!({"label": "test", "executor": executor}))).await.unwrap();
        let key = created["key"].as_str().unwrap().to_string();
        (HttpApi::new(&self.url, Some(key)).unwrap(), created)
    }

    /// Alice's session and an org-wide executor client already synced as `edge-1` (agent, 1.0.0).
    pub async fn alice_and_edge(&self) -> (HttpApi, HttpApi) {
        let alice = self.login("alice").await;
        let (exec, _) = self.executor_client(&alice, None).await;
        exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
        (alice, exec)
    }

    /// The owner's session and one of a new user of each other role.
    pub async fn sessions_of_every_role(&self, owner: &HttpApi) -> Vec<(novacula_core::authz::Role, HttpApi)> {
        use novacula_core::authz::Role;
        let mut sessions = vec![(Role::Owner, owner.clone())];
        for role in [Role::Admin, Role::Operator, Role::Member] {
            let name = format!("{}-user", role.as_str());
            let _: Value = owner.call(Method::POST, "/api/v1/users", Some(&json!({"username": name, "password": PASSWORD, "role": role}))).await.unwrap();
            sessions.push((role, self.login(&name).await));
        }
        sessions
    }

    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }
}

pub fn seed(store: &Store) {
    orgs::create_org_with_owner(store, &OsEntropy, T0, "acme", "alice", PASSWORD).unwrap();
    orgs::create_org_with_owner(store, &OsEntropy, T0, "globex", "bob", PASSWORD).unwrap();
}

pub fn caps() -> ExecutorCapabilities {
    ExecutorCapabilities {
        chains: vec![ChainSupport {
            chain: "ethereum".into(),
            networks: vec!["sepolia".into(), "mainnet".into()],
            node_types: vec![NodeType::Full],
            clients: vec![
                ClientSupport { role: "execution".into(), client: "geth".into(), versions: vec![], ..Default::default() },
                ClientSupport { role: "consensus".into(), client: "lighthouse".into(), versions: vec![], ..Default::default() },
            ],
            network_defaults: vec![],
        }],
        programs: novacula_core::ProgramAllowlist { sidecar_programs: vec!["metrics-exporter".into()], image_prefixes: vec![] },
        ..Default::default()
    }
}

pub fn sync_req(name: &str, kind: ExecutorKind, version: &str) -> SyncExecutorRequest {
    SyncExecutorRequest { name: name.into(), kind, version: version.into(), channel: Channel::Stable, capabilities: Some(caps()), capabilities_digest: None }
}

/// The shared Ethereum fixture without volumes.
pub fn spec(name: &str) -> NodeSpec {
    NodeSpec { storage: vec![], ..novacula_core::fixtures::eth_spec(name) }
}

pub async fn deploy(user: &HttpApi, executor: &str, name: &str) -> Result<Value, ClientError> {
    user.call(Method::POST, "/api/v1/nodes", Some(&json!({"executor": executor, "spec": spec(name)}))).await
}

pub async fn node(user: &HttpApi, name: &str) -> Value {
    user.get(&format!("/api/v1/nodes/{name}")).await.unwrap()
}

pub async fn lifecycle(user: &HttpApi, name: &str, action: &str) -> Result<Value, ClientError> {
    user.call(Method::POST, &format!("/api/v1/nodes/{name}/lifecycle"), Some(&json!({"action": action}))).await
}

pub async fn events(user: &HttpApi, after: u64) -> Vec<Value> {
    let page: Value = user.get(&format!("/api/v1/events?after={after}&limit=1000")).await.unwrap();
    page["events"].as_array().unwrap().clone()
}

pub fn kinds(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect()
}

/// An observed state whose one process (`execution`) has `status`.
pub fn obs(name: &str, rev: u64, status: novacula_core::ObservedNodeStatus) -> novacula_core::ObservedNodeState {
    novacula_core::ObservedNodeState {
        node: name.into(),
        revision: novacula_core::Revision(rev),
        processes: vec![novacula_core::ObservedProcess { name: "execution".into(), status, sync: None, message: None }],
        removed: false,
        disk: None,
    }
}

/// The test binary's whole suite again, on PostgreSQL: this same binary, run
/// with `NOVACULA_TEST_STORE=postgres` (so `Cp::with_orgs` opens a fresh
/// PostgreSQL database per test), skipping `this_test`. One suite, either engine.
pub fn rerun_on_postgres(this_test: &str) {
    if std::env::var_os("NOVACULA_TEST_STORE").is_some() {
        return;
    }
    if let Err(e) = novacula_control_plane::store::pg_server::available() {
        assert!(!novacula_control_plane::store::pg_server::required(), "{e}");
        eprintln!("skipped: {e}");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--skip", this_test, "--test-threads", "2"])
        .env("NOVACULA_TEST_STORE", "postgres")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let passed = text.split("test result: ok. ").nth(1).and_then(|r| r.split(' ').next()?.parse::<u32>().ok()).unwrap_or(0);
    assert!(out.status.success() && passed > 0, "the suite on PostgreSQL:\n{text}");
}
