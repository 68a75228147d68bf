//! The platform's administrators: every organization, deactivation of any,
//! executor releases, impersonation for support, and their own audit log.

use super::audit::AuditQuery;
use super::auth::PlatformCtx;
use super::error::{ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::services::{audit, orgs, platform};
use crate::state::AppState;
use crate::store::model::UpgradeRow;
use axum::extract::State;
use novacula_core::wire::{AuditPage, ImpersonateRequest, LoginResponse, OrgView, PlatformOrgView, SetUpgradeRequest};
use std::sync::Arc;

/// Every organization on this control plane.
#[utoipa::path(get, path = "/api/v1/platform/orgs", tag = "platform", security(("session" = [])), responses((status = 200, body = Vec<PlatformOrgView>)))]
pub async fn orgs(State(s): State<Arc<AppState>>, _admin: PlatformCtx) -> ApiResult<Vec<PlatformOrgView>> {
    Ok(ApiJson(s.blocking(platform::orgs).await?))
}

/// Deactivate any organization; only a platform administrator can reactivate it.
#[utoipa::path(post, path = "/api/v1/platform/orgs/{id}/deactivate", tag = "platform", security(("session" = [])), params(("id" = String, Path, description = "organization")), responses((status = 200, body = OrgView), (status = 404, description = "no such organization", body = novacula_core::wire::ApiError)))]
pub async fn deactivate(State(s): State<Arc<AppState>>, admin: PlatformCtx, ApiPath(id): ApiPath<String>) -> ApiResult<OrgView> {
    let who = admin.who();
    Ok(ApiJson(s.blocking(move |s| orgs::platform_set_active(s, &id, &who, false)).await?))
}

#[utoipa::path(post, path = "/api/v1/platform/orgs/{id}/reactivate", tag = "platform", security(("session" = [])), params(("id" = String, Path, description = "organization")), responses((status = 200, body = OrgView), (status = 404, description = "no such organization", body = novacula_core::wire::ApiError)))]
pub async fn reactivate(State(s): State<Arc<AppState>>, admin: PlatformCtx, ApiPath(id): ApiPath<String>) -> ApiResult<OrgView> {
    let who = admin.who();
    Ok(ApiJson(s.blocking(move |s| orgs::platform_set_active(s, &id, &who, true)).await?))
}

/// The platform's releases: offered to executors of a channel and kind in
/// every organization that set no upgrade of its own.
#[utoipa::path(get, path = "/api/v1/platform/releases", tag = "platform", security(("session" = [])), responses((status = 200, body = Vec<UpgradeRow>)))]
pub async fn releases(State(s): State<Arc<AppState>>, _admin: PlatformCtx) -> ApiResult<Vec<UpgradeRow>> {
    Ok(ApiJson(s.blocking(platform::releases).await?))
}

#[utoipa::path(put, path = "/api/v1/platform/releases", tag = "platform", security(("session" = [])), request_body = SetUpgradeRequest, responses((status = 200, body = UpgradeRow)))]
pub async fn publish(State(s): State<Arc<AppState>>, admin: PlatformCtx, ApiJson(req): ApiJson<SetUpgradeRequest>) -> ApiResult<UpgradeRow> {
    let who = admin.who();
    Ok(ApiJson(s.blocking(move |s| platform::publish_release(s, &who, req)).await?))
}

/// A session acting as a user, for support (one hour; sign out to end it).
/// Everything done in it is audited with both identities.
#[utoipa::path(post, path = "/api/v1/platform/impersonate", tag = "platform", security(("session" = [])), request_body = ImpersonateRequest, responses((status = 200, body = LoginResponse), (status = 404, description = "no such user, or not in that organization", body = novacula_core::wire::ApiError), (status = 409, description = "the user is yourself, disabled or in no organization", body = novacula_core::wire::ApiError)))]
pub async fn impersonate(State(s): State<Arc<AppState>>, admin: PlatformCtx, ApiJson(req): ApiJson<ImpersonateRequest>) -> ApiResult<LoginResponse> {
    Ok(ApiJson(s.blocking(move |s| platform::impersonate(s, &admin.user, admin.source, &req)).await?))
}

/// What the platform's administrators did, newest first.
#[utoipa::path(get, path = "/api/v1/platform/audit", tag = "platform", security(("session" = [])), params(AuditQuery), responses((status = 200, body = AuditPage)))]
pub async fn audit(State(s): State<Arc<AppState>>, _admin: PlatformCtx, ApiQuery(q): ApiQuery<AuditQuery>) -> ApiResult<AuditPage> {
    let (before, limit, filter) = q.parse()?;
    Ok(ApiJson(s.blocking(move |s| audit::platform_page(s, before, limit, &filter)).await?))
}
