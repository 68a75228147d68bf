//! Nodes: the user API (deploy, edit, upgrade, lifecycle, delete, read).

use super::auth::UserCtx;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::services::nodes;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use novacula_core::lifecycle::NodeCommand;
use novacula_core::wire::{Alert, DeployRequest, EditRequest, LifecycleRequest, NodeView, UpgradeRequest};
use serde::Deserialize;
use std::sync::Arc;

#[utoipa::path(post, path = "/api/v1/nodes", tag = "nodes", security(("session" = [])), request_body = DeployRequest, responses((status = 201, body = NodeView), (status = 422, description = "well-formed, but not valid for the target executor or this node (details name each problem)", body = novacula_core::wire::ApiError), (status = 404, description = "not found", body = novacula_core::wire::ApiError), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn deploy(State(s): State<Arc<AppState>>, user: UserCtx, ApiJson(req): ApiJson<DeployRequest>) -> Result<(StatusCode, ApiJson<NodeView>), ApiError> {
    let (org, who) = (user.org().to_string(), user.caller.who());
    Ok((StatusCode::CREATED, ApiJson(nodes::deploy(&s, &org, &who, req).await?)))
}

/// A node command; `UserCtx` has checked the route's permission.
async fn command(s: &Arc<AppState>, user: &UserCtx, name: String, cmd: NodeCommand) -> ApiResult<NodeView> {
    let (org, who) = (user.org().to_string(), user.caller.who());
    Ok(ApiJson(s.blocking(move |s| nodes::command(s, &org, &who, &name, cmd)).await?))
}

#[utoipa::path(put, path = "/api/v1/nodes/{name}/spec", tag = "nodes", security(("session" = [])), params(("name" = String, Path, description = "node name")), request_body = EditRequest, responses((status = 200, body = NodeView), (status = 422, description = "well-formed, but not valid for the target executor or this node (details name each problem)", body = novacula_core::wire::ApiError), (status = 404, description = "not found", body = novacula_core::wire::ApiError), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn edit(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(name): ApiPath<String>, ApiJson(req): ApiJson<EditRequest>) -> ApiResult<NodeView> {
    command(&s, &user, name, NodeCommand::Edit(req.spec)).await
}

#[utoipa::path(post, path = "/api/v1/nodes/{name}/upgrade", tag = "nodes", security(("session" = [])), params(("name" = String, Path, description = "node name")), request_body = UpgradeRequest, responses((status = 200, body = NodeView), (status = 422, description = "well-formed, but not valid for the target executor or this node (details name each problem)", body = novacula_core::wire::ApiError), (status = 404, description = "not found", body = novacula_core::wire::ApiError), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn upgrade(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<UpgradeRequest>,
) -> ApiResult<NodeView> {
    command(&s, &user, name, NodeCommand::UpgradeClient { role: req.role, version: req.version }).await
}

/// `requestNodeLifecycleAction`.
#[utoipa::path(post, path = "/api/v1/nodes/{name}/lifecycle", tag = "nodes", security(("session" = [])), params(("name" = String, Path, description = "node name")), request_body = LifecycleRequest, responses((status = 200, body = NodeView), (status = 404, description = "not found", body = novacula_core::wire::ApiError), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn lifecycle_action(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<LifecycleRequest>,
) -> ApiResult<NodeView> {
    command(&s, &user, name, NodeCommand::Lifecycle(req.action)).await
}

/// `deleteNode`: irreversible.
#[utoipa::path(delete, path = "/api/v1/nodes/{name}", tag = "nodes", security(("session" = [])), params(("name" = String, Path, description = "node name")), responses((status = 200, description = "deletion requested (irreversible)", body = NodeView), (status = 404, description = "not found", body = novacula_core::wire::ApiError), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn delete(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(name): ApiPath<String>) -> ApiResult<NodeView> {
    command(&s, &user, name, NodeCommand::Delete).await
}

#[utoipa::path(get, path = "/api/v1/nodes/{name}", tag = "nodes", security(("session" = [])), params(("name" = String, Path, description = "node name")), responses((status = 200, body = NodeView), (status = 404, description = "not found", body = novacula_core::wire::ApiError)))]
pub async fn get(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(name): ApiPath<String>) -> ApiResult<NodeView> {
    let org = user.org().to_string();
    Ok(ApiJson(s.blocking(move |s| nodes::get(s, &org, &name)).await?))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    /// Only this executor's nodes.
    #[serde(default)]
    pub executor: Option<String>,
    /// Only this chain's nodes (`ethereum`, ...).
    #[serde(default)]
    pub chain: Option<String>,
    /// Only the nodes in this phase now (`running`, `error`, ...).
    #[serde(default)]
    #[param(value_type = Option<novacula_core::NodePhase>)]
    pub phase: Option<novacula_core::NodePhase>,
    /// Include nodes whose deletion has completed.
    #[serde(default)]
    pub include_removed: bool,
    /// Return nodes whose name sorts after this one (the last name of the previous page).
    #[serde(default)]
    pub after: Option<String>,
    /// Page size (default and most: 1000); a shorter page is the last.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/nodes", tag = "nodes", security(("session" = [])), params(ListQuery), responses((status = 200, description = "a page of nodes by name", body = Vec<NodeView>)))]
pub async fn list(State(s): State<Arc<AppState>>, user: UserCtx, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Vec<NodeView>> {
    let filter = nodes::NodeFilter { executor: q.executor, chain: q.chain, phase: q.phase, include_removed: q.include_removed };
    let org = user.org().to_string();
    Ok(ApiJson(s.blocking(move |s| nodes::list(s, &org, &filter, q.after.as_deref(), q.limit.unwrap_or(nodes::NODE_PAGE_MAX))).await?))
}

/// Firing alerts of the built-in `node_down` rule.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "nodes", security(("session" = [])), responses((status = 200, description = "firing node_down alerts", body = Vec<Alert>)))]
pub async fn alerts(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<Vec<Alert>> {
    let org = user.org().to_string();
    Ok(ApiJson(s.blocking(move |s| nodes::alerts(s, &org)).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HistoryQuery {
    /// The last this many hours (1 to 24, default 24).
    #[serde(default, deserialize_with = "crate::api::error::query_int_opt")]
    #[param(minimum = 1, maximum = 24)]
    hours: Option<u64>,
}

/// The node's sync history: a point a minute (head, peers, sync distance, disk used), oldest first, kept a day.
#[utoipa::path(get, path = "/api/v1/nodes/{name}/history", tag = "nodes", security(("session" = [])), params(("name" = String, Path, description = "node name"), HistoryQuery), responses((status = 200, body = Vec<novacula_core::observed::NodeSample>), (status = 404, description = "not found", body = novacula_core::wire::ApiError), (status = 422, description = "hours out of range", body = novacula_core::wire::ApiError)))]
pub async fn history(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Vec<novacula_core::observed::NodeSample>> {
    let hours = q.hours.unwrap_or(24);
    if !(1..=24).contains(&hours) {
        return Err(ApiError::unprocessable("hours: 1 to 24"));
    }
    let org = user.org().to_string();
    Ok(ApiJson(
        s.blocking(move |s| {
            nodes::get(s, &org, &name)?;
            crate::services::history::of(s, &org, &name, hours)
        })
        .await?,
    ))
}
