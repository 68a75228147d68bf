//! `GET /api/v1/events`: the feed, a page at a time.

use super::auth::UserCtx;
use super::error::{ApiJson, ApiQuery, ApiResult};
use crate::services::events::{self, Direction};
use crate::state::AppState;
use axum::extract::State;
use novacula_core::wire::EventsPage;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventsQuery {
    /// Return events with a sequence number greater than this.
    #[serde(default, deserialize_with = "crate::api::error::query_int")]
    after: u64,
    /// Page size (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    /// `asc` (default: oldest first, page on with `after`) or `desc` (newest first, page on with `before`).
    #[serde(default)]
    #[param(inline)]
    order: Order,
    /// With `order=desc`: return events with a sequence number smaller than this (default: the newest).
    #[serde(default, deserialize_with = "crate::api::error::query_int_opt")]
    before: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

#[utoipa::path(get, path = "/api/v1/events", tag = "events", security(("session" = [])), params(EventsQuery), responses((status = 200, body = EventsPage)))]
pub async fn list(State(s): State<Arc<AppState>>, user: UserCtx, ApiQuery(q): ApiQuery<EventsQuery>) -> ApiResult<EventsPage> {
    let limit = q.limit.unwrap_or(100);
    let from = match q.order {
        Order::Asc => Direction::After(q.after),
        Order::Desc => Direction::Before(q.before.unwrap_or(u64::MAX)),
    };
    let org = user.org().to_string();
    Ok(ApiJson(s.blocking(move |s| events::page(s, &org, from, limit, q.node.as_deref(), q.kind.as_deref())).await?))
}
