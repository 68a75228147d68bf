//! API keys for executors: created by owners/admins, shown once, stored
//! hashed, expiring (a year by default), rotated in one step, revoked, deleted.

use super::auth::UserCtx;
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::services::keys;
use crate::state::AppState;
use crate::store::model::ApiKeyView;
use axum::extract::State;
use axum::http::StatusCode;
use novacula_core::wire::{CreateKeyRequest, CreatedKey};
use std::sync::Arc;

#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", security(("session" = [])), request_body = CreateKeyRequest, responses((status = 201, description = "the key, shown this once", body = CreatedKey), (status = 422, description = "both expiresInDays and neverExpires", body = novacula_core::wire::ApiError)))]
pub async fn create(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiJson(req): ApiJson<CreateKeyRequest>,
) -> Result<(StatusCode, ApiJson<CreatedKey>), ApiError> {
    Ok((StatusCode::CREATED, ApiJson(keys::create(&s, user.org(), &user.caller.who(), req)?)))
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", security(("session" = [])), responses((status = 200, body = Vec<ApiKeyView>)))]
pub async fn list(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<Vec<ApiKeyView>> {
    Ok(ApiJson(keys::list(&s, user.org())?))
}

/// Revoke a key at once: its executor's next call is refused.
#[utoipa::path(post, path = "/api/v1/keys/{id}/revoke", tag = "keys", security(("session" = [])), params(("id" = String, Path, description = "key id")), responses((status = 200, body = ApiKeyView), (status = 404, description = "not found", body = novacula_core::wire::ApiError)))]
pub async fn revoke(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(id): ApiPath<String>) -> ApiResult<ApiKeyView> {
    Ok(ApiJson(keys::revoke(&s, user.org(), &id, &user.caller.who())?))
}

/// Replace a key: a new one (shown this once) for the same executor, with the
/// same lifetime, and the old one revoked, atomically.
#[utoipa::path(post, path = "/api/v1/keys/{id}/rotate", tag = "keys", security(("session" = [])), params(("id" = String, Path, description = "key id")), responses((status = 201, description = "the new key, shown this once", body = CreatedKey), (status = 404, description = "not found", body = novacula_core::wire::ApiError), (status = 409, description = "the key is revoked", body = novacula_core::wire::ApiError)))]
pub async fn rotate(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(id): ApiPath<String>) -> Result<(StatusCode, ApiJson<CreatedKey>), ApiError> {
    Ok((StatusCode::CREATED, ApiJson(keys::rotate(&s, user.org(), &id, &user.caller.who())?)))
}

/// Delete a revoked key's record (revoke first).
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys", security(("session" = [])), params(("id" = String, Path, description = "key id")), responses((status = 204, description = "deleted"), (status = 404, description = "not found", body = novacula_core::wire::ApiError), (status = 409, description = "the key is still active", body = novacula_core::wire::ApiError)))]
pub async fn delete(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    keys::delete(&s, user.org(), &id, &user.caller.who())?;
    Ok(StatusCode::NO_CONTENT)
}
