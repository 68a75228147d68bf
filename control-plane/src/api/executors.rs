//! The user's view of executors, deactivation, and upgrade specs per channel.

use super::auth::UserCtx;
use super::error::{ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::services::executors;
use crate::state::AppState;
use crate::store::model::UpgradeRow;
use axum::extract::State;
use novacula_core::wire::{ExecutorView, SetUpgradeRequest};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    /// Return executors whose name sorts after this one (the last name of the previous page).
    #[serde(default)]
    pub after: Option<String>,
    /// Page size (default and most: 1000); a shorter page is the last.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/executors", tag = "executors", security(("session" = [])), params(ListQuery), responses((status = 200, description = "a page of executors by name", body = Vec<ExecutorView>)))]
pub async fn list(State(s): State<Arc<AppState>>, user: UserCtx, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Vec<ExecutorView>> {
    let org = user.org().to_string();
    Ok(ApiJson(s.blocking(move |s| executors::list(s, &org, q.after.as_deref(), q.limit.unwrap_or(executors::EXECUTOR_PAGE_MAX))).await?))
}

#[utoipa::path(get, path = "/api/v1/executors/{name}", tag = "executors", security(("session" = [])), params(("name" = String, Path, description = "executor name")), responses((status = 200, body = ExecutorView), (status = 404, description = "not found", body = novacula_core::wire::ApiError)))]
pub async fn get(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(name): ApiPath<String>) -> ApiResult<ExecutorView> {
    let org = user.org().to_string();
    Ok(ApiJson(s.blocking(move |s| executors::get(s, &org, &name)).await?))
}

/// Delete an executor that has no nodes left and is not syncing (offline,
/// or deactivated): its keys are revoked and its name is free again.
#[utoipa::path(delete, path = "/api/v1/executors/{name}", tag = "executors", security(("session" = [])), params(("name" = String, Path, description = "executor name")), responses((status = 204, description = "deleted"), (status = 404, description = "not found", body = novacula_core::wire::ApiError), (status = 409, description = "it still has nodes, or is online", body = novacula_core::wire::ApiError)))]
pub async fn delete(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(name): ApiPath<String>) -> Result<axum::http::StatusCode, super::error::ApiError> {
    let (org, who) = (user.org().to_string(), user.caller.who());
    s.blocking(move |s| executors::delete(s, &org, &who, &name)).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The spec a deploy wizard's choices make on this executor, from its
/// capabilities and the network's defaults; nothing is written. A 422 names
/// every problem with its field.
#[utoipa::path(post, path = "/api/v1/executors/{name}/draft", tag = "executors", security(("session" = [])), params(("name" = String, Path, description = "executor name")), request_body = novacula_core::draft::Draft, responses((status = 200, body = novacula_core::wire::DraftView), (status = 422, description = "the executor cannot run these choices (problems name each field)", body = novacula_core::wire::ApiError), (status = 404, description = "not found", body = novacula_core::wire::ApiError)))]
pub async fn draft(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiPath(name): ApiPath<String>,
    ApiJson(d): ApiJson<novacula_core::draft::Draft>,
) -> ApiResult<novacula_core::wire::DraftView> {
    let org = user.org().to_string();
    Ok(ApiJson(s.blocking(move |s| crate::services::nodes::draft(s, &org, &name, &d)).await?))
}

/// Deactivate: the executor's syncs are refused and its own keys revoked (no
/// other executor's); deletions it can no longer confirm are ended.
#[utoipa::path(post, path = "/api/v1/executors/{name}/deactivate", tag = "executors", security(("session" = [])), params(("name" = String, Path, description = "executor name")), responses((status = 200, body = ExecutorView), (status = 404, description = "not found", body = novacula_core::wire::ApiError)))]
pub async fn deactivate(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(name): ApiPath<String>) -> ApiResult<ExecutorView> {
    let (org, who) = (user.org().to_string(), user.caller.who());
    let view = s.blocking(move |s| {
        executors::set_active(s, &org, &who, &name, false)?;
        executors::get(s, &org, &name)
    });
    Ok(ApiJson(view.await?))
}

/// Undo a deactivation. Its keys stay revoked: reconnect it with a fresh key.
#[utoipa::path(post, path = "/api/v1/executors/{name}/reactivate", tag = "executors", security(("session" = [])), params(("name" = String, Path, description = "executor name")), responses((status = 200, body = ExecutorView), (status = 404, description = "not found", body = novacula_core::wire::ApiError)))]
pub async fn reactivate(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(name): ApiPath<String>) -> ApiResult<ExecutorView> {
    let (org, who) = (user.org().to_string(), user.caller.who());
    let view = s.blocking(move |s| {
        executors::set_active(s, &org, &who, &name, true)?;
        executors::get(s, &org, &name)
    });
    Ok(ApiJson(view.await?))
}

/// Record the release executors of a channel and kind should run.
#[utoipa::path(put, path = "/api/v1/upgrades", tag = "executors", security(("session" = [])), request_body = SetUpgradeRequest, responses((status = 200, body = UpgradeRow)))]
pub async fn set_upgrade(State(s): State<Arc<AppState>>, user: UserCtx, ApiJson(req): ApiJson<SetUpgradeRequest>) -> ApiResult<UpgradeRow> {
    Ok(ApiJson(executors::set_upgrade(&s, user.org(), &user.caller.who(), req)?))
}

#[utoipa::path(get, path = "/api/v1/upgrades", tag = "executors", security(("session" = [])), responses((status = 200, body = Vec<UpgradeRow>)))]
pub async fn list_upgrades(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<Vec<UpgradeRow>> {
    Ok(ApiJson(executors::list_upgrades(&s, user.org())?))
}
