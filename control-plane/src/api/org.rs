//! The organization a request works in: its settings, and its owner's
//! deactivation and reactivation.

use super::auth::UserCtx;
use super::error::{ApiJson, ApiResult};
use crate::services::orgs;
use crate::state::AppState;
use axum::extract::State;
use novacula_core::wire::{OrgSettingsRequest, OrgView};
use std::sync::Arc;

#[utoipa::path(get, path = "/api/v1/org", tag = "users", security(("session" = [])), responses((status = 200, body = OrgView)))]
pub async fn get(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<OrgView> {
    let org = user.org().to_string();
    Ok(ApiJson(s.blocking(move |s| orgs::get(s, &org)).await?))
}

/// Rename the organization (its id, the slug in URLs and headers, stays).
#[utoipa::path(put, path = "/api/v1/org", tag = "users", security(("session" = [])), request_body = OrgSettingsRequest, responses((status = 200, body = OrgView)))]
pub async fn update(State(s): State<Arc<AppState>>, user: UserCtx, ApiJson(req): ApiJson<OrgSettingsRequest>) -> ApiResult<OrgView> {
    let by = user.caller.clone();
    Ok(ApiJson(s.blocking(move |s| orgs::rename(s, &by, &req.name)).await?))
}

/// The owner deactivates the organization: its data is kept; its members'
/// requests (but the owner's way back) and its executors' syncs are refused,
/// so they show offline within 30 s.
#[utoipa::path(post, path = "/api/v1/org/deactivate", tag = "users", security(("session" = [])), responses((status = 200, body = OrgView)))]
pub async fn deactivate(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<OrgView> {
    let owner = user.caller.clone();
    Ok(ApiJson(s.blocking(move |s| orgs::set_active(s, &owner, false)).await?))
}

#[utoipa::path(post, path = "/api/v1/org/reactivate", tag = "users", security(("session" = [])), responses((status = 200, body = OrgView)))]
pub async fn reactivate(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<OrgView> {
    let owner = user.caller.clone();
    Ok(ApiJson(s.blocking(move |s| orgs::set_active(s, &owner, true)).await?))
}
