//! Who is calling: a user's session token or an executor's API key, as axum
//! extractors that answer 401 before a handler runs.

use super::error::ApiError;
use crate::services::credentials::{ct_eq, sha256_hex, HashPoolBusy, API_KEY_PREFIX};
use crate::services::users::{self, Caller};
use crate::state::AppState;
use crate::store::model::{ApiKey, Session, User};
use crate::store::API_KEYS;
use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use novacula_core::audit::Source;
use novacula_core::authz::{self, Access, Role};
use novacula_core::validate::valid_name;
use std::sync::Arc;

impl From<HashPoolBusy> for ApiError {
    fn from(_: HashPoolBusy) -> Self {
        ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "too many sign-ins in progress; retry in a second")
    }
}

/// The request's bearer token.
pub fn bearer(parts: &Parts) -> Result<&str, ApiError> {
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

/// The header that names the organization a request works in (one of the
/// user's); without it, the session's.
pub const ORG_HEADER: &str = "x-novacula-org";

/// The header with which the console (`console`) and the CLI (`cli`) say
/// who sends a request, for the audit log's `source`.
pub const CLIENT_HEADER: &str = "x-novacula-client";

/// Through what a request came.
pub fn source(parts: &Parts) -> Source {
    Source::of_client(parts.headers.get(CLIENT_HEADER).and_then(|v| v.to_str().ok()))
}

/// A logged-in user (session token), working in one of their organizations,
/// whose role there holds the permission the route needs ([`authz::ROUTES`]):
/// handlers taking one need no other check.
pub struct UserCtx {
    pub caller: Caller,
}

impl UserCtx {
    pub fn org(&self) -> &str {
        &self.caller.org
    }
    pub fn username(&self) -> &str {
        &self.caller.user.username
    }
    pub fn role(&self) -> Role {
        self.caller.role
    }
    pub fn actor(&self) -> String {
        self.caller.actor()
    }
}

/// What the matched route needs, from the one table in core. A route
/// missing from the table is refused to everyone.
fn needed(parts: &Parts) -> Result<Access, ApiError> {
    let path = matched(parts);
    authz::route_needs(method(parts), path).ok_or_else(|| {
        tracing::error!(method = %parts.method, path, "route missing from the permission table; refused");
        ApiError::forbidden("this route is not in the permission table")
    })
}

/// The request's method as the table names it: HEAD is a GET without its body.
fn method(parts: &Parts) -> &str {
    if parts.method == axum::http::Method::HEAD {
        "GET"
    } else {
        parts.method.as_str()
    }
}

/// The route's path as the router matched it.
fn matched(parts: &Parts) -> &str {
    parts.extensions.get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or_default()
}

/// A handler whose extractor does not match its route's entry in the table
/// is refused (the table, not the handler, decides).
fn wrong_extractor(parts: &Parts) -> ApiError {
    tracing::error!(method = %parts.method, path = ?parts.extensions.get::<MatchedPath>().map(MatchedPath::as_str), "handler and permission table disagree; refused");
    ApiError::forbidden("this route's handler and the permission table disagree")
}

/// The session token's hash, refusing API keys.
fn session_token(parts: &Parts) -> Result<String, ApiError> {
    let token = bearer(parts)?;
    if is_api_key(token) {
        return Err(ApiError::forbidden("API keys authenticate executors; log in as a user for this endpoint"));
    }
    Ok(sha256_hex(token))
}

impl FromRequestParts<Arc<AppState>> for UserCtx {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let Access::Org(needs) = needed(parts)? else { return Err(wrong_extractor(parts)) };
        let caller = session_caller(parts, state).await?;
        allow(&caller, method(parts), matched(parts), needs)?;
        Ok(UserCtx { caller })
    }
}

/// The caller of a request's session token, in the organization its
/// [`ORG_HEADER`] names (else the session's); not yet checked against a route.
pub async fn session_caller(parts: &Parts, state: &Arc<AppState>) -> Result<Caller, ApiError> {
    let session = session_token(parts)?;
    let org = match parts.headers.get(ORG_HEADER) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|o| valid_name(o))
                .map(str::to_string)
                .ok_or_else(|| ApiError::bad_request(format!("header {ORG_HEADER} must name an organization (lowercase letters, digits and '-')")))?,
        ),
    };
    let now = state.now();
    let from = source(parts);
    let caller = state.blocking(move |state| users::caller(state, &session, org.as_deref(), now, from)).await?;
    caller.ok_or_else(|| ApiError::unauthorized("invalid or expired session token"))
}

fn impersonating(admin: &str) -> ApiError {
    ApiError::forbidden(format!("{admin} is impersonating this user: accounts, passwords, keys, invitations and ownership are left to the user"))
}

/// Whether `caller` may do what route `method` `path` does, which `needs`
/// a permission: the organization's state, then the role.
pub fn allow(caller: &Caller, method: &str, path: &str, needs: authz::Permission) -> Result<(), ApiError> {
    if let Some(admin) = caller.impersonator.as_deref().filter(|_| !authz::impersonation_allows(method, path)) {
        return Err(impersonating(admin));
    }
    if caller.org_deactivated && !authz::open_when_deactivated(method, path) {
        return Err(ApiError::forbidden(format!("organization {:?} is deactivated; its owner can reactivate it", caller.org)));
    }
    if !caller.role.can(needs) {
        return Err(ApiError::forbidden(format!("role {} may not do this (needs {})", caller.role.as_str(), needs.as_str())));
    }
    Ok(())
}

/// The account and session of the request's session token (401 without
/// a valid one), and the token's hash.
async fn signed_in(parts: &Parts, state: &Arc<AppState>) -> Result<(User, Session, String), ApiError> {
    let key = session_token(parts)?;
    let now = state.now();
    let k = key.clone();
    let found = state.blocking(move |state| users::account(state, &k, now)).await?;
    let (user, session) = found.ok_or_else(|| ApiError::unauthorized("invalid or expired session token"))?;
    Ok((user, session, key))
}

/// A signed-in user's own account, for routes that need no organization
/// ([`Access::Account`]): sign out, password, their organizations.
pub struct AccountCtx {
    pub user: User,
    pub session: Session,
    /// SHA-256 of the session token.
    pub session_key: String,
    pub source: Source,
}

impl FromRequestParts<Arc<AppState>> for AccountCtx {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        if needed(parts)? != Access::Account {
            return Err(wrong_extractor(parts));
        }
        let (user, session, session_key) = signed_in(parts, state).await?;
        if let Some(admin) = session.impersonator.as_deref().filter(|_| !authz::impersonation_allows(method(parts), matched(parts))) {
            return Err(impersonating(admin));
        }
        Ok(AccountCtx { user, session, session_key, source: source(parts) })
    }
}

/// A platform administrator in their own session (not one impersonating a
/// user): the routes of [`Access::Platform`].
pub struct PlatformCtx {
    pub user: User,
    pub source: Source,
}

impl PlatformCtx {
    pub fn who(&self) -> crate::services::audit::Who {
        crate::services::audit::Who::user(&self.user.username, self.source)
    }
}

impl FromRequestParts<Arc<AppState>> for PlatformCtx {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        if needed(parts)? != Access::Platform {
            return Err(wrong_extractor(parts));
        }
        let (user, session, _) = signed_in(parts, state).await?;
        if session.impersonator.is_some() || !crate::services::platform::is_admin(state, &user.username) {
            return Err(ApiError::forbidden("only a platform administrator may do this (needs platform administrator, in their own session)"));
        }
        Ok(PlatformCtx { user, source: source(parts) })
    }
}

/// The user of the session a public route was called with, if any (an
/// invitation is accepted by whoever is signed in, or by a new account).
pub async fn optional_user(parts: &Parts, state: &Arc<AppState>) -> Result<Option<User>, ApiError> {
    if parts.headers.get(axum::http::header::AUTHORIZATION).is_none() {
        return Ok(None);
    }
    let (user, session, _) = signed_in(parts, state).await?;
    // An invitation accepted in an impersonation would join the user for good.
    if let Some(admin) = &session.impersonator {
        return Err(impersonating(admin));
    }
    Ok(Some(user))
}

/// An executor authenticated by an active API key.
pub struct ExecutorKey {
    pub key: ApiKey,
}

impl FromRequestParts<Arc<AppState>> for ExecutorKey {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        Ok(ExecutorKey { key: api_key(bearer(parts)?, state).await? })
    }
}

/// Whether a bearer token is an API key (else a session token).
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(API_KEY_PREFIX)
}

/// The active API key `token` is, of an active organization.
pub async fn api_key(token: &str, state: &Arc<AppState>) -> Result<ApiKey, ApiError> {
    let invalid = || ApiError::unauthorized("invalid API key");
    let rest = token.strip_prefix(API_KEY_PREFIX).and_then(|r| r.strip_prefix('_')).ok_or_else(invalid)?;
    let (id, secret) = rest.split_once('_').ok_or_else(invalid)?;
    let (now, epoch) = (state.now(), state.store.epoch());
    let key = match state.known.key(&state.store, id, now) {
        Some(key) => key,
        None => {
            let id = id.to_string();
            let key = state.blocking(move |state| state.store.read(|r| r.get::<ApiKey>(API_KEYS, &id))).await?.ok_or_else(invalid)?;
            state.known.keep_key(key.clone(), epoch, now);
            key
        }
    };
    if !ct_eq(&key.secret_hash, &sha256_hex(secret)) {
        return Err(invalid());
    }
    key.state(now).usable().map_err(|e| ApiError::unauthorized(e.to_string()))?;
    let deactivated = match state.org_deactivated_cached(&key.org_id) {
        Some(off) => off,
        None => {
            let org = key.org_id.clone();
            state.blocking(move |state| state.org_deactivated(&org)).await?
        }
    };
    if deactivated {
        return Err(ApiError::forbidden(format!("organization {:?} is deactivated", key.org_id)));
    }
    Ok(key)
}
