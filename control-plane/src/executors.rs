//! The user's view of executors, deactivation, and upgrade specs per channel.

use crate::auth::UserCtx;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::events::{self, data, NewEvent};
use crate::keys::revoke_in;
use crate::nodes::{executor_online, finish_deletion};
use crate::state::AppState;
use crate::store::model::{ApiKey, Executor, KeyUsage, NodeRow, UpgradeRow};
use crate::store::{key, API_KEYS, EXECUTORS, KEY_USAGE, NODES, UPGRADES};
use axum::extract::State;
use novacula_core::authz::Permission;
use novacula_core::events as ev;
use novacula_core::wire::{ExecutorView, SetUpgradeRequest};
use std::sync::Arc;

fn view(s: &AppState, e: Executor, node_count: usize, key: Option<KeyUsage>) -> ExecutorView {
    ExecutorView {
        online: executor_online(Some(&e), s.now(), s.config.heartbeat_timeout),
        compat: novacula_core::compat::compat_of_version(s.config.cp_version.major, &e.version),
        node_count,
        key_last_used_at: key.map(|k| k.at),
        id: e.id,
        org_id: e.org_id,
        name: e.name,
        kind: e.kind,
        version: e.version,
        channel: e.channel,
        capabilities: e.capabilities,
        created_at: e.created_at,
        updated_at: e.updated_at,
        deactivated: e.deactivated,
        api_key_id: e.api_key_id,
    }
}

fn load(s: &AppState, org: &str, prefix: &str) -> Result<Vec<ExecutorView>, ApiError> {
    let rows = s.store.read(|r| {
        let execs: Vec<(String, Executor)> = r.scan(EXECUTORS, prefix)?;
        execs
            .into_iter()
            .filter(|(_, e)| e.org_id == org)
            .map(|(_, e)| {
                let n = r.executor_nodes(org, &e.name)?.len();
                let k: Option<KeyUsage> = r.get(KEY_USAGE, &e.api_key_id)?;
                Ok((e, n, k))
            })
            .collect::<crate::store::Result<Vec<_>>>()
    })?;
    Ok(rows.into_iter().map(|(e, n, k)| view(s, e, n, k)).collect())
}

#[utoipa::path(get, path = "/api/v1/executors", tag = "executors", security(("session" = [])), responses((status = 200, body = Vec<ExecutorView>), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 403, description = "role or key may not do this", body = novacula_core::wire::ApiError)))]
pub async fn list(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<Vec<ExecutorView>> {
    user.require(Permission::Read)?;
    Ok(ApiJson(load(&s, user.org(), &format!("{}/", user.org()))?))
}

#[utoipa::path(get, path = "/api/v1/executors/{name}", tag = "executors", security(("session" = [])), params(("name" = String, Path, description = "executor name")), responses((status = 200, body = ExecutorView), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 403, description = "role or key may not do this", body = novacula_core::wire::ApiError), (status = 404, description = "not found", body = novacula_core::wire::ApiError)))]
pub async fn get(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(name): ApiPath<String>) -> ApiResult<ExecutorView> {
    user.require(Permission::Read)?;
    load(&s, user.org(), &key(&[user.org(), &name]))?
        .into_iter()
        .find(|v| v.name == name)
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found(format!("executor {name:?} not found")))
}

/// Deactivate: the executor's syncs are refused and its own keys revoked (no
/// other executor's); deletions it can no longer confirm are ended.
#[utoipa::path(post, path = "/api/v1/executors/{name}/deactivate", tag = "executors", security(("session" = [])), params(("name" = String, Path, description = "executor name")), responses((status = 200, body = ExecutorView), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 403, description = "role or key may not do this", body = novacula_core::wire::ApiError), (status = 404, description = "not found", body = novacula_core::wire::ApiError)))]
pub async fn deactivate(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(name): ApiPath<String>) -> ApiResult<ExecutorView> {
    set_active(&s, &user, &name, false)?;
    get(State(s), user, ApiPath(name)).await
}

/// Undo a deactivation. Its keys stay revoked: reconnect it with a fresh key.
#[utoipa::path(post, path = "/api/v1/executors/{name}/reactivate", tag = "executors", security(("session" = [])), params(("name" = String, Path, description = "executor name")), responses((status = 200, body = ExecutorView), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 403, description = "role or key may not do this", body = novacula_core::wire::ApiError), (status = 404, description = "not found", body = novacula_core::wire::ApiError)))]
pub async fn reactivate(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(name): ApiPath<String>) -> ApiResult<ExecutorView> {
    set_active(&s, &user, &name, true)?;
    get(State(s), user, ApiPath(name)).await
}

fn set_active(s: &AppState, user: &UserCtx, name: &str, active: bool) -> Result<(), ApiError> {
    user.require(Permission::ManageExecutors)?;
    let org = user.org().to_string();
    let now = s.now();
    let actor = user.actor();
    let seq = s.store.write(|w| {
        let k = key(&[&org, name]);
        let mut e: Executor = w.get(EXECUTORS, &k)?.ok_or_else(|| ApiError::not_found(format!("executor {name:?} not found")))?;
        if e.deactivated != active {
            return Ok(None); // already so
        }
        e.deactivated = !active;
        w.put(EXECUTORS, &k, &e)?;
        let kind = if active { ev::EXECUTOR_REACTIVATED } else { ev::EXECUTOR_DEACTIVATED };
        events::record(w, &org, now, NewEvent { kind, node: None, executor: Some(name), actor: &actor, data: data([]) })?;
        if active {
            return Ok(None);
        }
        let keys: Vec<(String, ApiKey)> = w.scan(API_KEYS, "")?;
        for (_, mut kr) in keys {
            if kr.org_id == org && kr.executor.as_deref() == Some(name) {
                revoke_in(w, &mut kr, now, &actor)?;
            }
        }
        let mut seq = None;
        for (node, _) in w.executor_nodes(&org, name)? {
            let Some(mut row) = w.get::<NodeRow>(NODES, &key(&[&org, &node]))? else { continue };
            if row.record.deleted && !row.removed && row.executor == name {
                seq = Some(finish_deletion(w, &mut row, now, &actor, crate::nodes::NOT_CONFIRMED_DEACTIVATED)?);
            }
        }
        Ok::<_, ApiError>(seq)
    })?;
    if let Some(seq) = seq {
        s.notify_change(seq);
    }
    Ok(())
}

/// Record the release executors of a channel and kind should run.
#[utoipa::path(put, path = "/api/v1/upgrades", tag = "executors", security(("session" = [])), request_body = SetUpgradeRequest, responses((status = 200, body = UpgradeRow), (status = 400, description = "invalid input", body = novacula_core::wire::ApiError), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 403, description = "role or key may not do this", body = novacula_core::wire::ApiError)))]
pub async fn set_upgrade(State(s): State<Arc<AppState>>, user: UserCtx, ApiJson(req): ApiJson<SetUpgradeRequest>) -> ApiResult<UpgradeRow> {
    user.require(Permission::ManageExecutors)?;
    let (kind, spec) = req.into_spec();
    // The same rules as the document's patterns, in one place (core).
    spec.check(kind).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let now = s.now();
    let row = UpgradeRow { kind, spec, set_at: now, set_by: user.user.username.clone() };
    s.store.write(|w| {
        w.put(UPGRADES, &key(&[user.org(), row.spec.channel.as_str(), kind.as_str()]), &row)?;
        events::record(
            w,
            user.org(),
            now,
            NewEvent {
                kind: ev::EXECUTOR_UPGRADE_SET,
                node: None,
                executor: None,
                actor: &user.actor(),
                data: data([("channel", row.spec.channel.to_string()), ("kind", kind.to_string()), ("version", row.spec.version.clone())]),
            },
        )
    })?;
    Ok(ApiJson(row))
}

#[utoipa::path(get, path = "/api/v1/upgrades", tag = "executors", security(("session" = [])), responses((status = 200, body = Vec<UpgradeRow>), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 403, description = "role or key may not do this", body = novacula_core::wire::ApiError)))]
pub async fn list_upgrades(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<Vec<UpgradeRow>> {
    user.require(Permission::Read)?;
    let rows: Vec<(String, UpgradeRow)> = s.store.read(|r| r.scan(UPGRADES, &format!("{}/", user.org())))?;
    Ok(ApiJson(rows.into_iter().map(|(_, r)| r).collect()))
}
