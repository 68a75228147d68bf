//! The executor-facing API: `syncExecutor`, spec long-poll, observed-state report.

use super::auth::ExecutorKey;
use super::error::{ApiJson, ApiQuery, ApiResult};
use crate::services::protocol;
use crate::state::AppState;
use axum::extract::State;
use novacula_core::wire::{ReportRequest, ReportResponse, SpecPollResponse, SyncExecutorRequest, SyncExecutorResponse};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// `syncExecutor`: heartbeat and upsert keyed by (organization, name).
#[utoipa::path(post, path = "/api/v1/executor/sync", tag = "executor protocol", security(("apiKey" = [])), request_body = SyncExecutorRequest, responses((status = 200, body = SyncExecutorResponse), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn sync(State(s): State<Arc<AppState>>, auth: ExecutorKey, ApiJson(req): ApiJson<SyncExecutorRequest>) -> ApiResult<SyncExecutorResponse> {
    let key = auth.key;
    Ok(ApiJson(protocol::sync(&s, key, req).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpecQuery {
    pub executor: String,
    #[serde(default, deserialize_with = "crate::api::error::query_int")]
    pub since: u64,
    /// Seconds to wait for a change; 0 answers at once.
    #[serde(default, deserialize_with = "crate::api::error::query_int")]
    pub wait_secs: u64,
    /// Answer with the nodes changed since `since` (and `gone`), not the
    /// whole set, when `since` is a cursor this executor has seen.
    #[serde(default)]
    pub changes: bool,
}

/// Long-poll: answers as soon as the executor's cursor differs from `since`, or at the deadline.
#[utoipa::path(get, path = "/api/v1/executor/specs", tag = "executor protocol", security(("apiKey" = [])), params(SpecQuery), responses((status = 200, description = "the executor's nodes, when they change or after waitSecs", body = SpecPollResponse), (status = 404, description = "not found", body = novacula_core::wire::ApiError), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn specs(State(s): State<Arc<AppState>>, auth: ExecutorKey, ApiQuery(q): ApiQuery<SpecQuery>) -> ApiResult<SpecPollResponse> {
    let exec = protocol::node_caller_now(&s, auth.key, q.executor).await?;
    let wait = Duration::from_secs(q.wait_secs).min(s.config.max_poll_wait);
    let deadline = tokio::time::Instant::now() + wait;
    let mut poll = s.polls.subscribe(&exec.org_id, &exec.name);
    loop {
        poll.changes.borrow_and_update();
        let resp = match s.polls.held_cursor(&poll, s.now()) {
            // Nothing changed since a read here: no store read (see crate::polls).
            Some(held) if q.changes && held == q.since => SpecPollResponse::unchanged(held),
            _ => {
                let (org, name, generation) = (exec.org_id.clone(), exec.name.clone(), s.polls.generation());
                let from = q.changes.then_some(q.since);
                let resp = s.blocking(move |s| protocol::current_specs(s, &org, &name, from)).await?;
                s.polls.read(&poll, resp.cursor, generation, s.now());
                resp
            }
        };
        if resp.cursor != q.since || tokio::time::Instant::now() >= deadline {
            return Ok(ApiJson(resp));
        }
        match tokio::time::timeout_at(deadline, poll.changes.changed()).await {
            Ok(Ok(())) => continue,
            _ => return Ok(ApiJson(resp)),
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportQuery {
    pub executor: String,
}

/// Store each `ObservedNodeState`; record transitions, alerts and completed deletions.
#[utoipa::path(post, path = "/api/v1/executor/report", tag = "executor protocol", security(("apiKey" = [])), params(ReportQuery), request_body = ReportRequest, responses((status = 200, body = ReportResponse), (status = 422, description = "a node is listed twice", body = novacula_core::wire::ApiError), (status = 404, description = "not found", body = novacula_core::wire::ApiError), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn report(
    State(s): State<Arc<AppState>>,
    auth: ExecutorKey,
    ApiQuery(q): ApiQuery<ReportQuery>,
    ApiJson(req): ApiJson<ReportRequest>,
) -> ApiResult<ReportResponse> {
    Ok(ApiJson(protocol::report(&s, auth.key, q.executor, req).await?))
}
