//! The append-only events feed.

use crate::auth::UserCtx;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::state::AppState;
use crate::store::model::{Event, EventView};
use crate::store::{self, Write};
use axum::extract::State;
use novacula_core::authz::Permission;
pub use novacula_core::wire::EventsPage;
use novacula_core::Timestamp;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const EVENT_SEQ: &str = "event_seq";

/// What happened, before it gets its sequence number.
pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub node: Option<&'a str>,
    pub executor: Option<&'a str>,
    pub actor: &'a str,
    pub data: BTreeMap<String, String>,
}

pub fn data<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Append an event inside the caller's transaction.
pub fn record(w: &mut Write, org: &str, at: Timestamp, e: NewEvent<'_>) -> store::Result<Event> {
    let seq = w.next(EVENT_SEQ)?;
    let event = Event {
        seq,
        org_id: org.to_string(),
        at,
        kind: e.kind.to_string(),
        node: e.node.map(str::to_string),
        executor: e.executor.map(str::to_string),
        actor: e.actor.to_string(),
        data: e.data,
    };
    w.append_event(org, seq, &event)?;
    tracing::info!(org, seq, kind = e.kind, node = e.node, executor = e.executor, actor = e.actor, "event");
    Ok(event)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventsQuery {
    /// Return events with a sequence number greater than this.
    #[serde(default, deserialize_with = "crate::error::query_int")]
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
    #[serde(default, deserialize_with = "crate::error::query_int_opt")]
    before: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

pub const MAX_PAGE: usize = 1000;

/// How long and how many events an organization keeps (the Novacula docs' defaults: 90 days, 100,000).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_age: std::time::Duration,
    pub max_count: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { max_age: std::time::Duration::from_secs(90 * 24 * 3600), max_count: 100_000 }
    }
}

/// Events removed per write transaction, so pruning never holds the writer long.
const PRUNE_BATCH: usize = 5_000;

/// Drop events past the retention of every organization as of `now`; returns how many.
pub fn prune(s: &AppState, now: Timestamp) -> store::Result<u64> {
    let retention = s.config.event_retention;
    let orgs: Vec<(String, crate::store::model::Org)> = s.store.read(|r| r.scan(store::ORGS, ""))?;
    let mut removed = 0;
    for (org, _) in orgs {
        loop {
            let n = s.store.write(|w| {
                let over = w.event_count(&org)?.saturating_sub(retention.max_count);
                let oldest: Vec<(u64, Event)> = w.oldest_events(&org, PRUNE_BATCH)?;
                let mut n = 0;
                for (i, (seq, e)) in oldest.iter().enumerate() {
                    let too_many = (i as u64) < over;
                    if !too_many && now.since(e.at) < retention.max_age {
                        break; // oldest first: the rest are younger and within the count
                    }
                    w.remove_event(&org, *seq)?;
                    n += 1;
                }
                Ok::<_, store::StoreError>(n)
            })?;
            removed += n;
            if n < PRUNE_BATCH as u64 {
                break;
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "events past their retention removed");
    }
    Ok(removed)
}

#[utoipa::path(get, path = "/api/v1/events", tag = "events", security(("session" = [])), params(EventsQuery), responses((status = 200, body = EventsPage), (status = 400, description = "invalid input", body = novacula_core::wire::ApiError), (status = 401, description = "not authenticated", body = novacula_core::wire::ApiError), (status = 403, description = "role or key may not do this", body = novacula_core::wire::ApiError)))]
pub async fn list(State(s): State<Arc<AppState>>, user: UserCtx, ApiQuery(q): ApiQuery<EventsQuery>) -> ApiResult<EventsPage> {
    user.require(Permission::Read)?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!("limit must be between 1 and {MAX_PAGE}")));
    }
    // Filters apply within a scanned window, so a page may be short but `next` always advances.
    let (scanned, next): (Vec<Event>, u64) = match q.order {
        Order::Asc => {
            let page: Vec<Event> = s.store.read(|r| r.events(user.org(), q.after, limit))?;
            let next = page.last().map_or(q.after, |e| e.seq);
            (page, next)
        }
        Order::Desc => {
            let before = q.before.unwrap_or(u64::MAX);
            let page: Vec<Event> = s.store.read(|r| r.events_before(user.org(), before, limit))?;
            let next = page.last().map_or(before, |e| e.seq);
            (page, next)
        }
    };
    let events = scanned
        .into_iter()
        .filter(|e| q.node.as_ref().is_none_or(|n| e.node.as_ref() == Some(n)))
        .filter(|e| q.kind.as_ref().is_none_or(|k| &e.kind == k))
        .map(EventView::from)
        .collect();
    Ok(ApiJson(EventsPage { events, next }))
}
