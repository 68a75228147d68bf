//! `novacula demo`: the control plane and a local agent in one process.

use crate::Failure;
use novacula_agent::backend::Processes;
use novacula_agent::driver::LocalDriver;
use novacula_client::HttpApi;
use novacula_control_plane::clock::{Clock, SystemClock};
use novacula_control_plane::services::orgs;
use novacula_control_plane::store::model::{ApiKey, Executor};
use novacula_control_plane::store::{key, API_KEYS, EXECUTORS};
use novacula_control_plane::{AppState, Config, Store};
use novacula_core::wire::CreateKeyRequest;
use novacula_core::{Channel, ExecutorKind, NodeSpec};
use novacula_executor::adapter::{Adapters, StandIn};
use novacula_executor::loops::{Executor as Agent, Identity, Intervals};
use std::net::SocketAddr;
use std::path::PathBuf;

pub const ORG: &str = "default";
pub const OWNER: &str = "admin";
pub const PASSWORD: &str = "novacula-demo";
pub const EXECUTOR: &str = "local";
pub const NODE: &str = "demo-node";

pub fn demo_spec() -> NodeSpec {
    StandIn::spec(NODE)
}

pub async fn run(dir: PathBuf, listen: SocketAddr) -> Result<(), Failure> {
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let store = Store::open(&dir.join("novacula.redb")).map_err(|e| e.to_string())?;
    let state = AppState::new(store, SystemClock, Config::default());
    if !orgs::org_exists(&state.store, ORG)? {
        orgs::create_org_with_owner(&state.store, state.entropy.as_ref(), SystemClock.now(), ORG, OWNER, PASSWORD)?;
    }
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    tokio::spawn(novacula_control_plane::serve(listener, state.clone(), std::future::pending()));

    let user = login(&url).await?;
    let key = demo_key(&dir, &state, &user).await?;
    let driver = LocalDriver::new(dir.join("agent")).map_err(|e| e.to_string())?;
    let id = Identity { name: EXECUTOR.into(), kind: ExecutorKind::Agent, version: env!("CARGO_PKG_VERSION").into(), channel: Channel::Stable };
    let agent = Agent::new(
        id,
        HttpApi::new(&url, Some(key)).map_err(|e| e.to_string())?,
        Processes::new(driver, Adapters::standard().with_demo_chain()),
        Intervals::default(),
    );
    agent.sync_once().await.map_err(|e| e.to_string())?;
    let exists = state
        .store
        .read(|r| r.get::<novacula_control_plane::store::model::NodeRow>(novacula_control_plane::store::NODES, &key_of(NODE)))
        .map_err(|e| e.to_string())?;
    if exists.is_none_or(|n| n.removed) {
        user.deploy(EXECUTOR, demo_spec()).await?;
    }
    let token = user.token().unwrap_or_default().to_string();
    eprintln!(
        "\nNovacula demo is up at {url} (org {ORG:?}, user {OWNER:?}, password {PASSWORD:?}).\n\
         Web console:      open {url}/ and sign in\n\
         CLI:              novacula login --server {url} -u {OWNER}   (then: novacula nodes list, novacula nodes stop {NODE})\n\
         Watch the node:   curl -s -H 'Authorization: Bearer {token}' {url}/api/v1/nodes/{NODE}\n\
         Stop it:          curl -s -X POST -H 'Authorization: Bearer {token}' -H 'content-type: application/json' -d '{{\"action\":\"stop\"}}' {url}/api/v1/nodes/{NODE}/lifecycle\n\
         Events:           curl -s -H 'Authorization: Bearer {token}' {url}/api/v1/events\n\
         Ctrl-C stops the demo; node processes keep running like systemd units until the node is deleted.\n"
    );
    tokio::spawn(watch_phase(user));
    agent
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}

fn key_of(node: &str) -> String {
    key(&[ORG, node])
}

async fn login(url: &str) -> Result<HttpApi, Failure> {
    let anon = HttpApi::new(url, None).map_err(|e| e.to_string())?;
    let resp = anon.login(OWNER, PASSWORD).await.map_err(|e| format!("demo login failed (was {ORG:?} created with another password?): {e}"))?;
    Ok(anon.with_token(Some(resp.token)))
}

/// Reuse the demo key across runs; it is stored beside the database.
async fn demo_key(dir: &std::path::Path, state: &AppState, user: &HttpApi) -> Result<String, Failure> {
    let file = dir.join("agent.key");
    if let Ok(k) = std::fs::read_to_string(&file) {
        let id = k.trim().split('_').nth(1).unwrap_or_default().to_string();
        let usable = state
            .store
            .read(|r| {
                let valid = r.get::<ApiKey>(API_KEYS, &id)?.is_some_and(|k| k.revoked_at.is_none());
                let active = r.get::<Executor>(EXECUTORS, &key(&[ORG, EXECUTOR]))?.is_none_or(|e| !e.deactivated);
                Ok::<_, novacula_control_plane::store::StoreError>(valid && active)
            })
            .map_err(|e| e.to_string())?;
        if usable {
            return Ok(k.trim().to_string());
        }
    }
    let k = user.create_key(&CreateKeyRequest { label: "demo agent".into(), executor: Some(EXECUTOR.into()), ..Default::default() }).await?.key;
    // A credential: private from its creation, complete or absent.
    novacula_agent::files::write_atomic(&file, k.as_bytes(), 0o600, None).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(k)
}

/// Print the node's phase whenever it changes.
async fn watch_phase(user: HttpApi) {
    let mut last = String::new();
    loop {
        let now = match user.node(NODE).await {
            Ok(n) => Some(format!("{} (revision {})", n.phase.as_str(), n.revision)),
            Err(e) if e.status() == Some(404) => Some("deleted".to_string()),
            Err(_) => None,
        };
        if let Some(phase) = now {
            if phase != last {
                eprintln!("node {NODE}: {phase}");
                last = phase;
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
