//! Who is calling: a user's session token or an executor's API key, as axum
//! extractors that answer 401 before a handler runs.

use super::error::ApiError;
use crate::services::credentials::{ct_eq, sha256_hex, HashPoolBusy, API_KEY_PREFIX};
use crate::state::AppState;
use crate::store::model::{ApiKey, Session, User};
use crate::store::{API_KEYS, SESSIONS, USERS};
use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use novacula_core::authz::{self, Permission};
use std::sync::Arc;

impl From<HashPoolBusy> for ApiError {
    fn from(_: HashPoolBusy) -> Self {
        ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "too many sign-ins in progress; retry in a second")
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let h = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization header (expected 'Bearer <token>')"))?;
    h.to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("malformed Authorization header (expected 'Bearer <token>')"))
}

/// A logged-in user (session token) whose role holds the permission the
/// route needs ([`authz::ROUTES`]): handlers taking one need no other check.
pub struct UserCtx {
    pub user: User,
}

impl UserCtx {
    pub fn org(&self) -> &str {
        &self.user.org_id
    }
    pub fn actor(&self) -> String {
        format!("user:{}", self.user.username)
    }
}

/// The permission the matched route needs, from the one table in core. A
/// route missing from the table is refused to everyone.
fn needed(parts: &Parts) -> Result<Permission, ApiError> {
    let path = parts.extensions.get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or_default();
    authz::route_needs(parts.method.as_str(), path).ok_or_else(|| {
        tracing::error!(method = %parts.method, path, "route missing from the permission table; refused");
        ApiError::forbidden("this route is not in the permission table")
    })
}

impl FromRequestParts<Arc<AppState>> for UserCtx {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let needs = needed(parts)?;
        let token = bearer(parts)?;
        if token.starts_with(API_KEY_PREFIX) {
            return Err(ApiError::forbidden("API keys authenticate executors; log in as a user for this endpoint"));
        }
        let now = state.now();
        let session = sha256_hex(token);
        let user = state
            .blocking(move |state| {
                state.store.read(|r| {
                    let Some(s) = r.get::<Session>(SESSIONS, &session)? else { return Ok(None) };
                    if s.expires_at <= now {
                        return Ok(None);
                    }
                    r.get::<User>(USERS, &s.username)
                })
            })
            .await?;
        let user = user.ok_or_else(|| ApiError::unauthorized("invalid or expired session token"))?;
        if !user.role.can(needs) {
            return Err(ApiError::forbidden(format!("role {} may not do this (needs {})", user.role.as_str(), needs.as_str())));
        }
        Ok(UserCtx { user })
    }
}

/// An executor authenticated by an active API key.
pub struct ExecutorKey {
    pub key: ApiKey,
}

impl FromRequestParts<Arc<AppState>> for ExecutorKey {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let invalid = || ApiError::unauthorized("invalid API key");
        let rest = token.strip_prefix(API_KEY_PREFIX).and_then(|r| r.strip_prefix('_')).ok_or_else(invalid)?;
        let (id, secret) = rest.split_once('_').ok_or_else(invalid)?;
        let id = id.to_string();
        let key = state.blocking(move |state| state.store.read(|r| r.get::<ApiKey>(API_KEYS, &id))).await?.ok_or_else(invalid)?;
        if !ct_eq(&key.secret_hash, &sha256_hex(secret)) {
            return Err(invalid());
        }
        if key.revoked_at.is_some() {
            return Err(ApiError::unauthorized("API key has been revoked"));
        }
        Ok(ExecutorKey { key })
    }
}
