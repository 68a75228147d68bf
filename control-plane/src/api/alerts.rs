//! Alert settings, nodes' alert policies, incidents, notification channels
//! and their deliveries (the rules: `novacula_core::alerts`).

use super::auth::UserCtx;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::services::alerts;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use novacula_core::alerts::{AlertSettings, Incident, NodeAlertOverride};
use novacula_core::wire::{ChannelView, CreateChannelRequest, DeliveryView, NodeAlertPolicyView, ReplayQueued, UpdateChannelRequest};
use serde::Deserialize;
use std::sync::Arc;

/// A page's size as asked: 1 to [`alerts::PAGE_MAX`], 100 when not asked.
fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=alerts::PAGE_MAX).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::unprocessable(format!("limit: 1 to {}, not {n}", alerts::PAGE_MAX))),
    }
}

#[utoipa::path(get, path = "/api/v1/alerts/settings", tag = "alerts", security(("session" = [])), responses((status = 200, body = AlertSettings)))]
pub async fn settings(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<AlertSettings> {
    let org = user.org().to_string();
    Ok(ApiJson(s.blocking(move |s| alerts::settings(s, &org)).await?))
}

/// Replace the organization's alert settings; open incidents follow at once.
#[utoipa::path(put, path = "/api/v1/alerts/settings", tag = "alerts", security(("session" = [])), request_body = AlertSettings, responses((status = 200, body = AlertSettings), (status = 422, description = "a value out of range", body = novacula_core::wire::ApiError)))]
pub async fn set_settings(State(s): State<Arc<AppState>>, user: UserCtx, ApiJson(req): ApiJson<AlertSettings>) -> ApiResult<AlertSettings> {
    Ok(ApiJson(s.blocking(move |s| alerts::set_settings(s, &user.caller, req)).await?))
}

/// Every node's overrides and the policy that applies to it.
#[utoipa::path(get, path = "/api/v1/alerts/policies", tag = "alerts", security(("session" = [])), responses((status = 200, body = Vec<NodeAlertPolicyView>)))]
pub async fn policies(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<Vec<NodeAlertPolicyView>> {
    let org = user.org().to_string();
    Ok(ApiJson(s.blocking(move |s| alerts::node_policies(s, &org)).await?))
}

#[utoipa::path(get, path = "/api/v1/nodes/{name}/alert-policy", tag = "alerts", security(("session" = [])), params(("name" = String, Path, description = "node name")), responses((status = 200, body = NodeAlertPolicyView), (status = 404, description = "no such node", body = novacula_core::wire::ApiError)))]
pub async fn node_policy(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(name): ApiPath<String>) -> ApiResult<NodeAlertPolicyView> {
    let org = user.org().to_string();
    Ok(ApiJson(s.blocking(move |s| alerts::node_policy(s, &org, &name)).await?))
}

/// Set a node's overrides: each field set replaces the organization's, each left out (or null) inherits it.
#[utoipa::path(put, path = "/api/v1/nodes/{name}/alert-policy", tag = "alerts", security(("session" = [])), params(("name" = String, Path, description = "node name")), request_body = NodeAlertOverride, responses((status = 200, body = NodeAlertPolicyView), (status = 404, description = "no such node", body = novacula_core::wire::ApiError), (status = 422, description = "a value out of range", body = novacula_core::wire::ApiError)))]
pub async fn set_node_policy(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<NodeAlertOverride>,
) -> ApiResult<NodeAlertPolicyView> {
    Ok(ApiJson(s.blocking(move |s| alerts::set_node_policy(s, &user.caller, &name, req)).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IncidentsQuery {
    /// `open` (default) or `all` (open and resolved, newest first).
    #[serde(default)]
    #[param(inline)]
    status: IncidentFilter,
    /// At most this many (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IncidentFilter {
    #[default]
    Open,
    All,
}

/// Incidents, newest first.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "alerts", security(("session" = [])), params(IncidentsQuery), responses((status = 200, body = Vec<Incident>), (status = 422, description = "limit out of range", body = novacula_core::wire::ApiError)))]
pub async fn incidents(State(s): State<Arc<AppState>>, user: UserCtx, ApiQuery(q): ApiQuery<IncidentsQuery>) -> ApiResult<Vec<Incident>> {
    let org = user.org().to_string();
    let open = matches!(q.status, IncidentFilter::Open);
    let limit = page_limit(q.limit)?;
    Ok(ApiJson(s.blocking(move |s| alerts::incidents(s, &org, open, limit)).await?))
}

/// The organization's channels (their secrets never; URLs only to those who manage them).
#[utoipa::path(get, path = "/api/v1/alerts/channels", tag = "alerts", security(("session" = [])), responses((status = 200, body = Vec<ChannelView>)))]
pub async fn channels(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<Vec<ChannelView>> {
    let org = user.org().to_string();
    Ok(ApiJson(s.blocking(move |s| alerts::channels(s, &org)).await?))
}

#[utoipa::path(post, path = "/api/v1/alerts/channels", tag = "alerts", security(("session" = [])), request_body = CreateChannelRequest, responses((status = 201, body = ChannelView), (status = 409, description = "the name is taken, or too many channels", body = novacula_core::wire::ApiError), (status = 422, description = "a bad URL, name or secret", body = novacula_core::wire::ApiError)))]
pub async fn create_channel(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiJson(req): ApiJson<CreateChannelRequest>,
) -> Result<(StatusCode, ApiJson<ChannelView>), ApiError> {
    Ok((StatusCode::CREATED, ApiJson(s.blocking(move |s| alerts::create_channel(s, &user.caller, req)).await?)))
}

/// Change what is given (`secret: ""` removes the secret).
#[utoipa::path(put, path = "/api/v1/alerts/channels/{id}", tag = "alerts", security(("session" = [])), params(("id" = String, Path, description = "channel id")), request_body = UpdateChannelRequest, responses((status = 200, body = ChannelView), (status = 404, description = "no such channel", body = novacula_core::wire::ApiError), (status = 422, description = "a bad URL, name or secret", body = novacula_core::wire::ApiError)))]
pub async fn update_channel(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateChannelRequest>,
) -> ApiResult<ChannelView> {
    Ok(ApiJson(s.blocking(move |s| alerts::update_channel(s, &user.caller, &id, req)).await?))
}

#[utoipa::path(delete, path = "/api/v1/alerts/channels/{id}", tag = "alerts", security(("session" = [])), params(("id" = String, Path, description = "channel id")), responses((status = 204, description = "deleted"), (status = 404, description = "no such channel", body = novacula_core::wire::ApiError)))]
pub async fn delete_channel(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    s.blocking(move |s| alerts::delete_channel(s, &user.caller, &id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a synthetic notification (`rule: test`) now; the attempt is recorded as a delivery.
#[utoipa::path(post, path = "/api/v1/alerts/channels/{id}/test", tag = "alerts", security(("session" = [])), params(("id" = String, Path, description = "channel id")), responses((status = 200, description = "the attempt, delivered or not", body = DeliveryView), (status = 404, description = "no such channel", body = novacula_core::wire::ApiError)))]
pub async fn test_channel(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(id): ApiPath<String>) -> ApiResult<DeliveryView> {
    let org = user.org().to_string();
    let (ch, n) = s.blocking(move |s| alerts::test_notification(s, &org, &id)).await?;
    Ok(ApiJson(crate::notify::test(&s, &crate::notify::client(), ch, n).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// Deliveries older than this id.
    #[serde(default)]
    before: Option<String>,
    /// At most this many (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// Every delivery attempt, newest first.
#[utoipa::path(get, path = "/api/v1/alerts/deliveries", tag = "alerts", security(("session" = [])), params(DeliveriesQuery), responses((status = 200, body = Vec<DeliveryView>), (status = 422, description = "limit out of range", body = novacula_core::wire::ApiError)))]
pub async fn deliveries(State(s): State<Arc<AppState>>, user: UserCtx, ApiQuery(q): ApiQuery<DeliveriesQuery>) -> ApiResult<Vec<DeliveryView>> {
    let org = user.org().to_string();
    let limit = page_limit(q.limit)?;
    Ok(ApiJson(s.blocking(move |s| alerts::deliveries(s, &org, q.before.as_deref(), limit)).await?))
}

/// Queue a delivery's notification again for its channel.
#[utoipa::path(post, path = "/api/v1/alerts/deliveries/{id}/replay", tag = "alerts", security(("session" = [])), params(("id" = String, Path, description = "delivery id")), responses((status = 202, body = ReplayQueued), (status = 404, description = "no such delivery", body = novacula_core::wire::ApiError), (status = 409, description = "its channel is gone or disabled", body = novacula_core::wire::ApiError)))]
pub async fn replay(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(id): ApiPath<String>) -> Result<(StatusCode, ApiJson<ReplayQueued>), ApiError> {
    Ok((StatusCode::ACCEPTED, ApiJson(s.blocking(move |s| alerts::replay(s, &user.caller, &id)).await?)))
}
