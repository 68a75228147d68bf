//! The append-only events feed: recording inside a caller's transaction,
//! reading pages, and pruning past the retention.

use crate::state::AppState;
use crate::store::model::{Event, EventView};
use crate::store::{self, Write};
use novacula_core::wire::EventsPage;
use novacula_core::Timestamp;
use std::collections::BTreeMap;

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
    crate::metrics::EVENTS_WRITTEN.inc();
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
    // What people did is logged; what a fleet reports (transitions, connections:
    // thousands a minute at scale) stays in the events feed, and in the log at debug.
    if e.actor == "system" || e.actor.starts_with("executor:") {
        tracing::debug!(org, seq, kind = e.kind, node = e.node, executor = e.executor, actor = e.actor, "event");
    } else {
        tracing::info!(org, seq, kind = e.kind, node = e.node, executor = e.executor, actor = e.actor, "event");
    }
    Ok(event)
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

/// Events removed per write transaction, so pruning never holds the writer
/// long (reports' group commits wait for it; see `liveness::FLUSH_BATCH`).
const PRUNE_BATCH: usize = 250;

/// Drop events past the retention of every organization as of `now`; returns how many.
pub fn prune(s: &AppState, now: Timestamp) -> store::Result<u64> {
    let started = std::time::Instant::now();
    let retention = s.config.event_retention;
    let orgs: Vec<(String, crate::store::model::Org)> = s.store.read(|r| r.scan(store::ORGS, ""))?;
    let mut removed = 0;
    for (org, _) in orgs {
        let before = removed;
        // Counted once, on a read transaction: counting is a scan of the org's
        // events, and doing it in every batch's write held the writer (and every
        // report's commit) for seconds at 100,000 events. Events appended while
        // this runs are left to the next pass.
        let mut over = s.store.read(|r| r.event_count(&org))?.saturating_sub(retention.max_count);
        loop {
            let n = s.store.write(|w| {
                let oldest: Vec<(u64, Event)> = w.oldest_events(&org, PRUNE_BATCH)?;
                let mut n = 0;
                for (seq, e) in &oldest {
                    let too_many = n < over;
                    if !too_many && now.since(e.at) < retention.max_age {
                        break; // oldest first: the rest are younger and within the count
                    }
                    w.remove_event(&org, *seq)?;
                    n += 1;
                }
                Ok::<_, store::StoreError>(n)
            })?;
            removed += n;
            over = over.saturating_sub(n);
            if n < PRUNE_BATCH as u64 {
                break;
            }
        }
        if removed > before {
            let details = crate::services::audit::details([("removed", (removed - before).to_string())]);
            let system = crate::services::audit::Who::system();
            s.store.write(|w| crate::services::audit::record(w, &org, now, &system, novacula_core::audit::Action::EventsPruned, &org, details))?;
        }
    }
    let took_ms = started.elapsed().as_millis() as u64;
    if removed > 0 {
        tracing::info!(removed, took_ms, "events past their retention removed");
    } else {
        tracing::debug!(took_ms, "no event past its retention");
    }
    Ok(removed)
}

/// Which way a page of the feed runs.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    /// Oldest first, events with `seq > after`.
    After(u64),
    /// Newest first, events with `seq < before`.
    Before(u64),
}

/// A page of `org`'s feed. Filters apply within the scanned window, so a page
/// may be short, but `next` always advances.
pub fn page(s: &AppState, org: &str, from: Direction, limit: usize, node: Option<&str>, kind: Option<&str>) -> super::Result<EventsPage> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(super::ServiceError::BadInput(format!("limit must be between 1 and {MAX_PAGE}")));
    }
    let (scanned, next): (Vec<Event>, u64) = match from {
        Direction::After(after) => {
            let page: Vec<Event> = s.store.read(|r| r.events(org, after, limit))?;
            let next = page.last().map_or(after, |e| e.seq);
            (page, next)
        }
        Direction::Before(before) => {
            let page: Vec<Event> = s.store.read(|r| r.events_before(org, before, limit))?;
            let next = page.last().map_or(before, |e| e.seq);
            (page, next)
        }
    };
    let events = scanned
        .into_iter()
        .filter(|e| node.is_none_or(|n| e.node.as_deref() == Some(n)))
        .filter(|e| kind.is_none_or(|k| e.kind == k))
        .map(EventView::from)
        .collect();
    Ok(EventsPage { events, next })
}
