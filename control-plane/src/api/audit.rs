//! The audit log: `GET /api/v1/audit` (owners and admins) and
//! `GET /api/v1/me/activity` (anyone, their own entries), newest first.

use super::auth::UserCtx;
use super::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::services::audit::{self, Filter};
use crate::state::AppState;
use axum::extract::State;
use novacula_core::audit::Action;
use novacula_core::wire::AuditPage;
use serde::Deserialize;
use std::sync::Arc;

/// The largest page.
const MAX_PAGE: usize = 500;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries older than this sequence number (default: from the newest); the previous page's `next`.
    #[serde(default, deserialize_with = "crate::api::error::query_int")]
    pub before: u64,
    /// Page size (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// Only entries by this actor: a username or an API key id.
    #[serde(default)]
    actor: Option<String>,
    /// Only this action, e.g. `user.role.changed`, `apikey.rotated`, `node.lifecycle`.
    #[serde(default)]
    #[param(value_type = Option<Action>)]
    action: Option<String>,
    /// Only entries about this target (a username, key id, executor or node name).
    #[serde(default)]
    target: Option<String>,
}

impl AuditQuery {
    /// The page size and filter asked for.
    pub fn parse(self) -> Result<(u64, usize, Filter), ApiError> {
        let limit = limit(self.limit, 100)?;
        let action = self.action.as_deref().map(str::parse::<Action>).transpose().map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok((self.before, limit, Filter { actor: self.actor, action, target: self.target }))
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivityQuery {
    /// Entries older than this sequence number (default: from the newest).
    #[serde(default, deserialize_with = "crate::api::error::query_int")]
    before: u64,
    /// Page size (default 20).
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

pub(crate) fn limit(given: Option<usize>, default: usize) -> Result<usize, ApiError> {
    let limit = given.unwrap_or(default);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!("limit must be between 1 and {MAX_PAGE}")));
    }
    Ok(limit)
}

/// The organization's audit log. A filter reads at most 5,000 entries per
/// call: a page may be short while `next` is not 0; ask again from `next`.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("session" = [])), params(AuditQuery), responses((status = 200, body = AuditPage)))]
pub async fn list(State(s): State<Arc<AppState>>, user: UserCtx, ApiQuery(q): ApiQuery<AuditQuery>) -> ApiResult<AuditPage> {
    let (before, limit, filter) = q.parse()?;
    let org = user.org().to_string();
    Ok(ApiJson(s.blocking(move |s| audit::page(s, &org, before, limit, &filter)).await?))
}

/// Your own recent activity in this organization.
#[utoipa::path(get, path = "/api/v1/me/activity", tag = "audit", security(("session" = [])), params(ActivityQuery), responses((status = 200, body = AuditPage)))]
pub async fn mine(State(s): State<Arc<AppState>>, user: UserCtx, ApiQuery(q): ApiQuery<ActivityQuery>) -> ApiResult<AuditPage> {
    let limit = limit(q.limit, 20)?;
    let filter = Filter { actor: Some(user.username().to_string()), ..Default::default() };
    let org = user.org().to_string();
    Ok(ApiJson(s.blocking(move |s| audit::page(s, &org, q.before, limit, &filter)).await?))
}
