//! The executor-facing API: `syncExecutor`, spec long-poll, observed-state report.

use crate::auth::ExecutorKey;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::events::{self, data, NewEvent};
use crate::nodes::{evaluate, phase_of};
use crate::state::AppState;
use crate::store::model::{ApiKey, Executor, KeyUsage, NodeRow, ObservedRow, UpgradeRow};
use crate::store::{key, API_KEYS, EXECUTORS, KEY_USAGE, NODES, OBSERVED, UPGRADES};
use axum::extract::State;
use novacula_core::admission::{admit_sync, key_speaks_for, ExistingExecutor, KeyState, SyncRefusal};
use novacula_core::observed::check_reported_revision;
use novacula_core::validate::valid_name;
use novacula_core::wire::ReportResponse;
use novacula_core::wire::{ReportRequest, SpecPollResponse, SyncExecutorRequest, SyncExecutorResponse};
use novacula_core::{events as ev, is_online, CompatStatus, DesiredNode, Version};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

fn compat_of(s: &AppState, version: &str) -> CompatStatus {
    novacula_core::compat::compat_of_version(s.config.cp_version.major, version)
}

/// `syncExecutor`: heartbeat and upsert keyed by (organization, name).
#[utoipa::path(post, path = "/api/v1/executor/sync", tag = "executor protocol", security(("apiKey" = [])), request_body = SyncExecutorRequest, responses((status = 200, body = SyncExecutorResponse), (status = 400, description = "invalid input", body = novacula_core::wire::ApiError), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 403, description = "role or key may not do this", body = novacula_core::wire::ApiError), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn sync(State(s): State<Arc<AppState>>, auth: ExecutorKey, ApiJson(req): ApiJson<SyncExecutorRequest>) -> ApiResult<SyncExecutorResponse> {
    if !valid_name(&req.name) {
        return Err(ApiError::bad_request(format!("executor name {:?} must be a lowercase DNS label", req.name)));
    }
    req.version.parse::<Version>().map_err(|e| ApiError::bad_request(e.to_string()))?;
    let org = auth.key.org_id.clone();
    let now = s.now();
    let timeout = s.config.heartbeat_timeout;
    let compat = compat_of(&s, &req.version);
    let exec = s.store.write(|w| {
        let k = key(&[&org, &req.name]);
        // The key as it is now, not as the extractor read it before this
        // transaction: a revocation that committed in between wins.
        let mut key_row: ApiKey = w.get(API_KEYS, &auth.key.id)?.ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
        let existing: Option<Executor> = w.get(EXECUTORS, &k)?;
        let actor = format!("executor:{}", req.name);
        let admission = admit_sync(
            KeyState { revoked: key_row.revoked_at.is_some(), bound_to: key_row.executor.as_deref() },
            existing.as_ref().map(|e| ExistingExecutor { kind: e.kind, deactivated: e.deactivated }),
            &req.name,
            req.kind,
        )
        .map_err(|e| match e {
            SyncRefusal::KeyRevoked => ApiError::unauthorized(e.to_string()),
            SyncRefusal::KindChanged { .. } => ApiError::conflict(e.to_string()),
            SyncRefusal::KeyBoundElsewhere { .. } | SyncRefusal::Deactivated { .. } => ApiError::forbidden(e.to_string()),
        })?;
        if admission.bind_key {
            key_row.executor = Some(req.name.clone());
            w.put(API_KEYS, &key_row.id.clone(), &key_row)?;
            events::record(
                w,
                &org,
                now,
                NewEvent { kind: ev::API_KEY_BOUND, node: None, executor: Some(&req.name), actor: &actor, data: data([("keyId", key_row.id.clone())]) },
            )?;
        }
        let reconnect = existing.as_ref().is_none_or(|e| !is_online(now, e.updated_at, timeout));
        let exec = Executor {
            id: existing.as_ref().map_or_else(|| s.random_hex(8), |e| e.id.clone()),
            org_id: org.clone(),
            name: req.name.clone(),
            kind: req.kind,
            version: req.version.clone(),
            channel: req.channel,
            capabilities: req.capabilities.clone(),
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
            deactivated: false,
            api_key_id: auth.key.id.clone(),
        };
        w.put(EXECUTORS, &k, &exec)?;
        w.put(KEY_USAGE, &key_row.id, &KeyUsage { at: now, by: req.name.clone() })?;
        if reconnect {
            events::record(
                w,
                &org,
                now,
                NewEvent {
                    kind: ev::EXECUTOR_CONNECTED,
                    node: None,
                    executor: Some(&req.name),
                    actor: &actor,
                    data: data([
                        ("kind", req.kind.to_string()),
                        ("version", req.version.clone()),
                        ("compat", compat.as_str().to_string()),
                        ("first", admission.first_sync.to_string()),
                    ]),
                },
            )?;
        }
        Ok::<_, ApiError>(exec)
    })?;
    let upgrade = s
        .store
        .read(|r| r.get::<UpgradeRow>(UPGRADES, &key(&[&org, exec.channel.as_str(), exec.kind.as_str()])))?
        .map(|u| u.spec)
        // Compared as versions: `v1.1.0` and `1.1.0` are the same release.
        .filter(|u| !novacula_core::version::same_release(&u.version, &exec.version));
    Ok(ApiJson(SyncExecutorResponse { executor_id: exec.id, server_version: s.config.cp_version.to_string(), compat, upgrade, server_time: now }))
}

/// The executor behind a key for node queries: it must have synced, be active and in support.
fn node_caller(s: &AppState, auth: &ExecutorKey, name: &str) -> Result<Executor, ApiError> {
    key_speaks_for(KeyState { revoked: auth.key.revoked_at.is_some(), bound_to: auth.key.executor.as_deref() }, name)
        .map_err(|e| ApiError::forbidden(e.to_string()))?;
    let exec: Executor = s
        .store
        .read(|r| r.get(EXECUTORS, &key(&[&auth.key.org_id, name])))?
        .ok_or_else(|| ApiError::not_found(format!("executor {name:?} is unknown; call syncExecutor first")))?;
    if exec.deactivated {
        return Err(ApiError::forbidden(format!("executor {name:?} has been deactivated")));
    }
    if !compat_of(s, &exec.version).serves_nodes() {
        return Err(ApiError::conflict(format!(
            "executor version {} is out of support for control plane {}; upgrade the executor",
            exec.version, s.config.cp_version
        )));
    }
    Ok(exec)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpecQuery {
    pub executor: String,
    #[serde(default, deserialize_with = "crate::error::query_int")]
    pub since: u64,
    /// Seconds to wait for a change; 0 answers at once.
    #[serde(default, deserialize_with = "crate::error::query_int")]
    pub wait_secs: u64,
}

fn current_specs(s: &AppState, org: &str, executor: &str) -> Result<SpecPollResponse, ApiError> {
    Ok(s.store.read(|r| {
        let index = r.executor_nodes(org, executor)?;
        let cursor = index.iter().map(|(_, seq)| *seq).max().unwrap_or(0);
        let mut nodes = Vec::new();
        for (name, _) in index {
            if let Some(row) = r.get::<NodeRow>(NODES, &key(&[org, &name]))? {
                if !row.removed && row.executor == executor {
                    nodes.push(DesiredNode { revision: row.record.revision, spec: row.record.spec, deleted: row.record.deleted });
                }
            }
        }
        Ok::<_, crate::store::StoreError>(SpecPollResponse { cursor, nodes })
    })?)
}

/// Long-poll: answers as soon as the executor's cursor differs from `since`, or at the deadline.
#[utoipa::path(get, path = "/api/v1/executor/specs", tag = "executor protocol", security(("apiKey" = [])), params(SpecQuery), responses((status = 200, description = "the executor's nodes, when they change or after waitSecs", body = SpecPollResponse), (status = 400, description = "invalid input", body = novacula_core::wire::ApiError), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 403, description = "role or key may not do this", body = novacula_core::wire::ApiError), (status = 404, description = "not found", body = novacula_core::wire::ApiError), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn specs(State(s): State<Arc<AppState>>, auth: ExecutorKey, ApiQuery(q): ApiQuery<SpecQuery>) -> ApiResult<SpecPollResponse> {
    let exec = node_caller(&s, &auth, &q.executor)?;
    let wait = Duration::from_secs(q.wait_secs).min(s.config.max_poll_wait);
    let deadline = tokio::time::Instant::now() + wait;
    let mut changes = s.subscribe();
    loop {
        changes.borrow_and_update();
        let resp = current_specs(&s, &exec.org_id, &exec.name)?;
        if resp.cursor != q.since || tokio::time::Instant::now() >= deadline {
            return Ok(ApiJson(resp));
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
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
#[utoipa::path(post, path = "/api/v1/executor/report", tag = "executor protocol", security(("apiKey" = [])), params(ReportQuery), request_body = ReportRequest, responses((status = 200, body = ReportResponse), (status = 400, description = "invalid input", body = novacula_core::wire::ApiError), (status = 422, description = "a node is listed twice", body = novacula_core::wire::ApiError), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 403, description = "role or key may not do this", body = novacula_core::wire::ApiError), (status = 404, description = "not found", body = novacula_core::wire::ApiError), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn report(
    State(s): State<Arc<AppState>>,
    auth: ExecutorKey,
    ApiQuery(q): ApiQuery<ReportQuery>,
    ApiJson(req): ApiJson<ReportRequest>,
) -> ApiResult<ReportResponse> {
    let exec = node_caller(&s, &auth, &q.executor)?;
    // One state per node: a second one would be applied over the first in the same commit.
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = req.nodes.iter().find(|o| !seen.insert(o.node.as_str())) {
        return Err(ApiError::unprocessable(format!("report lists node {:?} more than once", dup.node)));
    }
    let org = exec.org_id.clone();
    let now = s.now();
    let actor = format!("executor:{}", exec.name);
    let (resp, seq) = s.store.write(|w| {
        let mut resp = ReportResponse { accepted: 0, rejected: Vec::new() };
        let mut last_seq = None;
        for obs in req.nodes {
            let k = key(&[&org, &obs.node]);
            let Some(mut row) = w.get::<NodeRow>(NODES, &k)?.filter(|r: &NodeRow| r.executor == exec.name) else {
                resp.rejected.push(format!("{}: no such node on this executor", obs.node));
                continue;
            };
            if let Err(e) = check_reported_revision(row.record.revision, obs.revision) {
                resp.rejected.push(format!("{}: {e}", obs.node));
                continue;
            }
            if row.removed {
                resp.accepted += 1;
                continue;
            }
            let mut changed = false;
            if obs.removed && row.record.deleted && obs.revision == row.record.revision {
                last_seq = Some(crate::nodes::finish_deletion(w, &mut row, now, &actor, "confirmed by the executor")?);
            } else {
                let phase = phase_of(&row, Some(&obs), true);
                changed |= evaluate(w, &mut row, phase, now, &actor)?;
                w.put(OBSERVED, &k, &ObservedRow { state: obs, reported_at: now })?;
            }
            if changed {
                w.put(NODES, &k, &row)?;
            }
            resp.accepted += 1;
        }
        Ok::<_, ApiError>((resp, last_seq))
    })?;
    if let Some(seq) = seq {
        s.notify_change(seq);
    }
    Ok(ApiJson(resp))
}
