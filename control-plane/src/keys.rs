//! API keys for executors: created by owners/admins, shown once, stored hashed, revocable.
//! Rotation: create a second key for the executor, switch it over, revoke the first.

use crate::auth::{new_api_key, UserCtx};
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::events::{self, data, NewEvent};
use crate::state::AppState;
use crate::store::model::{key_view, ApiKey, ApiKeyView, KeyUsage};
use crate::store::{Write, API_KEYS, KEY_USAGE};
use axum::extract::State;
use axum::http::StatusCode;
use novacula_core::authz::Permission;
use novacula_core::validate::valid_name;
use novacula_core::wire::{CreateKeyRequest, CreatedKey};
use novacula_core::{events as ev, Timestamp};
use std::sync::Arc;

#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", security(("session" = [])), request_body = CreateKeyRequest, responses((status = 201, description = "the key, shown this once", body = CreatedKey), (status = 400, description = "invalid input", body = novacula_core::wire::ApiError), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 403, description = "role or key may not do this", body = novacula_core::wire::ApiError)))]
pub async fn create(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiJson(req): ApiJson<CreateKeyRequest>,
) -> Result<(StatusCode, ApiJson<CreatedKey>), ApiError> {
    user.require(Permission::ManageExecutors)?;
    if let Some(e) = req.executor.as_deref().filter(|e| !valid_name(e)) {
        return Err(ApiError::bad_request(format!("executor name {e:?} must be a lowercase DNS label")));
    }
    if req.label.chars().count() > 200 {
        return Err(ApiError::bad_request("label must be at most 200 characters"));
    }
    let (full, record) = issue(&s.store, s.entropy.as_ref(), user.org(), req.label, req.executor, &user.user.username, s.now())?;
    Ok((StatusCode::CREATED, ApiJson(CreatedKey { key: full, record: key_view(&record, None) })))
}

/// Create and store a key; returns the full secret (never stored) and the record.
pub fn issue(
    store: &crate::Store,
    entropy: &dyn novacula_core::entropy::Entropy,
    org: &str,
    label: String,
    executor: Option<String>,
    created_by: &str,
    now: Timestamp,
) -> Result<(String, ApiKey), crate::store::StoreError> {
    let (id, full, hash) = new_api_key(entropy);
    let record = ApiKey {
        id: id.clone(),
        org_id: org.to_string(),
        label,
        executor,
        secret_hash: hash,
        created_at: now,
        created_by: created_by.to_string(),
        revoked_at: None,
    };
    store.write(|w| {
        w.put(API_KEYS, &id, &record)?;
        events::record(
            w,
            org,
            now,
            NewEvent {
                kind: ev::API_KEY_CREATED,
                node: None,
                executor: record.executor.as_deref(),
                actor: &format!("user:{created_by}"),
                data: data([("keyId", id.clone())]),
            },
        )
    })?;
    Ok((full, record))
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", security(("session" = [])), responses((status = 200, body = Vec<ApiKeyView>), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 403, description = "role or key may not do this", body = novacula_core::wire::ApiError)))]
pub async fn list(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<Vec<ApiKeyView>> {
    user.require(Permission::Read)?;
    let views = s.store.read(|r| {
        let all: Vec<(String, ApiKey)> = r.scan(API_KEYS, "")?;
        all.into_iter()
            .map(|(_, k)| k)
            .filter(|k| k.org_id == user.user.org_id)
            .map(|k| Ok(key_view(&k, r.get::<KeyUsage>(KEY_USAGE, &k.id)?)))
            .collect::<crate::store::Result<Vec<_>>>()
    })?;
    Ok(ApiJson(views))
}

/// Revoke inside a transaction; `false` if it was already revoked.
pub fn revoke_in(w: &mut Write, key: &mut ApiKey, now: Timestamp, actor: &str) -> crate::store::Result<bool> {
    if key.revoked_at.is_some() {
        return Ok(false);
    }
    key.revoked_at = Some(now);
    w.put(API_KEYS, &key.id.clone(), &*key)?;
    events::record(
        w,
        &key.org_id.clone(),
        now,
        NewEvent { kind: ev::API_KEY_REVOKED, node: None, executor: key.executor.as_deref(), actor, data: data([("keyId", key.id.clone())]) },
    )?;
    Ok(true)
}

#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys", security(("session" = [])), params(("id" = String, Path, description = "key id")), responses((status = 200, body = ApiKeyView), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 403, description = "role or key may not do this", body = novacula_core::wire::ApiError), (status = 404, description = "not found", body = novacula_core::wire::ApiError)))]
pub async fn revoke(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(id): ApiPath<String>) -> ApiResult<ApiKeyView> {
    user.require(Permission::ManageExecutors)?;
    let now = s.now();
    let key = s.store.write(|w| {
        let mut key: ApiKey =
            w.get(API_KEYS, &id)?.filter(|k: &ApiKey| k.org_id == user.user.org_id).ok_or_else(|| ApiError::not_found(format!("API key {id:?} not found")))?;
        revoke_in(w, &mut key, now, &user.actor())?;
        let usage: Option<KeyUsage> = w.get(KEY_USAGE, &id)?;
        Ok::<_, ApiError>(key_view(&key, usage))
    })?;
    Ok(ApiJson(key))
}
