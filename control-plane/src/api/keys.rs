//! API keys for executors: created by owners/admins, shown once, stored hashed, revocable.
//! Rotation: create a second key for the executor, switch it over, revoke the first.

use super::auth::UserCtx;
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::services::keys;
use crate::state::AppState;
use crate::store::model::ApiKeyView;
use axum::extract::State;
use axum::http::StatusCode;
use novacula_core::wire::{CreateKeyRequest, CreatedKey};
use std::sync::Arc;

#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", security(("session" = [])), request_body = CreateKeyRequest, responses((status = 201, description = "the key, shown this once", body = CreatedKey)))]
pub async fn create(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiJson(req): ApiJson<CreateKeyRequest>,
) -> Result<(StatusCode, ApiJson<CreatedKey>), ApiError> {
    Ok((StatusCode::CREATED, ApiJson(keys::create(&s, user.org(), user.username(), req)?)))
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", security(("session" = [])), responses((status = 200, body = Vec<ApiKeyView>)))]
pub async fn list(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<Vec<ApiKeyView>> {
    Ok(ApiJson(keys::list(&s, user.org())?))
}

#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys", security(("session" = [])), params(("id" = String, Path, description = "key id")), responses((status = 200, body = ApiKeyView), (status = 404, description = "not found", body = novacula_core::wire::ApiError)))]
pub async fn revoke(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(id): ApiPath<String>) -> ApiResult<ApiKeyView> {
    Ok(ApiJson(keys::revoke(&s, user.org(), &id, &user.actor())?))
}
