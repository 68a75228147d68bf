//! The organization a request works in: its settings (name, logo), and its
//! owner's deactivation and reactivation.

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

/// Rename the organization, or change its slug (its id stays; a request may
/// name it by either in `X-Novacula-Org`).
#[utoipa::path(put, path = "/api/v1/org", tag = "users", security(("session" = [])), request_body = OrgSettingsRequest, responses((status = 200, body = OrgView), (status = 409, description = "the slug names another organization", body = novacula_core::wire::ApiError)))]
pub async fn update(State(s): State<Arc<AppState>>, user: UserCtx, ApiJson(req): ApiJson<OrgSettingsRequest>) -> ApiResult<OrgView> {
    let by = user.caller.clone();
    Ok(ApiJson(s.blocking(move |s| orgs::update_settings(s, &by, &req.name, req.slug.as_deref())).await?))
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

/// The organization's logo, as uploaded (PNG or JPEG).
#[utoipa::path(get, path = "/api/v1/org/logo", tag = "users", security(("session" = [])), responses((status = 200, description = "the logo", content(("image/png"), ("image/jpeg"))), (status = 404, description = "the organization has no logo", body = novacula_core::wire::ApiError)))]
pub async fn logo(State(s): State<Arc<AppState>>, user: UserCtx) -> Result<axum::response::Response, super::error::ApiError> {
    use axum::http::header;
    use axum::response::IntoResponse;
    let org = user.org().to_string();
    let logo = s.blocking(move |s| orgs::logo(s, &org)).await?;
    // Served as the image it was checked to be, never sniffed as anything else.
    let headers = [
        (header::CONTENT_TYPE, logo.kind.content_type()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
        // One URL for every organization (the header picks it): always revalidated.
        (header::CACHE_CONTROL, "private, no-cache"),
        (header::VARY, "Authorization, X-Novacula-Org"),
    ];
    Ok((headers, logo.bytes).into_response())
}

/// Set the logo: the body is the image itself, a PNG or a JPEG of at most
/// 256 KiB (SVG is refused: it can carry script). 422 when the bytes are
/// not such an image or not what the Content-Type says.
#[utoipa::path(put, path = "/api/v1/org/logo", tag = "users", security(("session" = [])), request_body(description = "the image", content(("image/png"), ("image/jpeg"))), responses((status = 200, body = OrgView), (status = 422, description = "not a PNG or JPEG image, or not the declared one", body = novacula_core::wire::ApiError)))]
pub async fn set_logo(State(s): State<Arc<AppState>>, user: UserCtx, headers: axum::http::HeaderMap, body: axum::body::Bytes) -> ApiResult<OrgView> {
    let declared = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let by = user.caller.clone();
    Ok(ApiJson(s.blocking(move |s| orgs::set_logo(s, &by, declared.as_deref(), body.to_vec())).await?))
}

#[utoipa::path(delete, path = "/api/v1/org/logo", tag = "users", security(("session" = [])), responses((status = 200, body = OrgView)))]
pub async fn remove_logo(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<OrgView> {
    let by = user.caller.clone();
    Ok(ApiJson(s.blocking(move |s| orgs::remove_logo(s, &by)).await?))
}
