//! The audit log: one entry per mutation, written in the mutation's own
//! transaction (so an action and its entry commit together or not at all),
//! read newest first with filters, and pruned past its retention.
//!
//! Each organization's log is an event log of its own in the store
//! (`audit:<org>`; organization names are DNS labels, so it meets no feed).

use crate::state::AppState;
use crate::store::{self, Write};
use novacula_core::audit::{Action, ActorKind, Source};
use novacula_core::wire::{AuditEntry, AuditPage};
use novacula_core::Timestamp;
use std::collections::BTreeMap;

pub const AUDIT_SEQ: &str = "audit_seq";

use crate::store::audit_log as log_of;

/// Who acts, and through what.
#[derive(Debug, Clone)]
pub struct Who {
    pub kind: ActorKind,
    pub id: String,
    pub name: String,
    pub source: Source,
    /// The platform administrator acting as this user.
    pub impersonator: Option<String>,
}

impl Who {
    pub fn user(username: &str, source: Source) -> Who {
        Who { kind: ActorKind::User, id: username.to_string(), name: username.to_string(), source, impersonator: None }
    }
    /// An executor, through API key `key_id`.
    pub fn key(key_id: &str, executor: &str) -> Who {
        Who { kind: ActorKind::ApiKey, id: key_id.to_string(), name: executor.to_string(), source: Source::Api, impersonator: None }
    }
    pub fn system() -> Who {
        Who { kind: ActorKind::System, id: "system".into(), name: "system".into(), source: Source::System, impersonator: None }
    }
    /// How the events feed names this actor (`user:<name>`, `executor:<name>`, `system`).
    pub fn event_actor(&self) -> String {
        match self.kind {
            ActorKind::User => format!("user:{}", self.name),
            ActorKind::ApiKey => format!("executor:{}", self.name),
            ActorKind::System => "system".into(),
        }
    }
}

/// Append an entry in the caller's transaction; returns its sequence number,
/// which events of the same action carry as `audit`.
pub fn record(w: &mut Write, org: &str, at: Timestamp, who: &Who, action: Action, target: &str, details: BTreeMap<String, String>) -> store::Result<u64> {
    append(w, &log_of(org), org, at, who, action, target, details)
}

/// Append an entry to the platform's log (what platform administrators did);
/// `org` is the organization it concerns, empty for none.
pub fn record_platform(
    w: &mut Write,
    org: &str,
    at: Timestamp,
    who: &Who,
    action: Action,
    target: &str,
    details: BTreeMap<String, String>,
) -> store::Result<u64> {
    append(w, store::PLATFORM_AUDIT_LOG, org, at, who, action, target, details)
}

/// A platform administrator's action in organization `org`: an entry in its
/// log (its owner sees who did it), and one in the platform's that names it
/// as `audit`. Returns the organization's entry.
pub fn record_in_both(
    w: &mut Write,
    org: &str,
    at: Timestamp,
    who: &Who,
    action: Action,
    target: &str,
    details: BTreeMap<String, String>,
) -> store::Result<u64> {
    let seq = record(w, org, at, who, action, target, details.clone())?;
    let mut platform = details;
    platform.insert("audit".into(), seq.to_string());
    record_platform(w, org, at, who, action, target, platform)?;
    Ok(seq)
}

#[allow(clippy::too_many_arguments, reason = "one entry's fields, from its two callers")]
fn append(
    w: &mut Write,
    log: &str,
    org: &str,
    at: Timestamp,
    who: &Who,
    action: Action,
    target: &str,
    details: BTreeMap<String, String>,
) -> store::Result<u64> {
    let seq = w.next(AUDIT_SEQ)?;
    let entry = AuditEntry {
        seq,
        at,
        org_id: org.to_string(),
        actor_kind: who.kind,
        actor_id: who.id.clone(),
        actor_name: who.name.clone(),
        action,
        target_kind: action.target_kind().to_string(),
        target_id: target.to_string(),
        source: who.source,
        details,
        impersonator: who.impersonator.clone(),
    };
    w.append_event(log, seq, &entry)?;
    tracing::info!(log, seq, action = action.as_str(), actor = %who.event_actor(), impersonator = who.impersonator, target, "audit");
    Ok(seq)
}

/// What to show of a log.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Entries by this actor id (a username, a key id).
    pub actor: Option<String>,
    pub action: Option<Action>,
    pub target: Option<String>,
}

impl Filter {
    fn keeps(&self, e: &AuditEntry) -> bool {
        self.actor.as_ref().is_none_or(|a| &e.actor_id == a)
            && self.action.is_none_or(|a| e.action == a)
            && self.target.as_ref().is_none_or(|t| &e.target_id == t)
    }
}

/// Entries read per request at most while filtering: a rare filter answers
/// a short page and a cursor rather than reading the whole log.
const SCAN_MAX: usize = 5_000;
const SCAN_BATCH: usize = 500;

/// Up to `limit` entries of `org`'s log older than `before` (0: the newest)
/// that `filter` keeps, newest first.
pub fn page(s: &AppState, org: &str, before: u64, limit: usize, filter: &Filter) -> store::Result<AuditPage> {
    page_of(s, &log_of(org), before, limit, filter)
}

/// As [`page`], of the platform's log.
pub fn platform_page(s: &AppState, before: u64, limit: usize, filter: &Filter) -> store::Result<AuditPage> {
    page_of(s, store::PLATFORM_AUDIT_LOG, before, limit, filter)
}

fn page_of(s: &AppState, log: &str, before: u64, limit: usize, filter: &Filter) -> store::Result<AuditPage> {
    let mut cursor = if before == 0 { u64::MAX } else { before };
    let (mut entries, mut scanned) = (Vec::new(), 0);
    loop {
        let batch: Vec<AuditEntry> = s.store.read(|r| r.events_before(log, cursor, SCAN_BATCH))?;
        let exhausted = batch.len() < SCAN_BATCH;
        for e in batch {
            scanned += 1;
            cursor = e.seq;
            if filter.keeps(&e) {
                entries.push(e);
                if entries.len() == limit {
                    return Ok(AuditPage { entries, next: cursor });
                }
            }
        }
        if exhausted {
            return Ok(AuditPage { entries, next: 0 });
        }
        if scanned >= SCAN_MAX {
            return Ok(AuditPage { entries, next: cursor });
        }
    }
}

/// Entries removed per write transaction (see `events::prune`).
const PRUNE_BATCH: usize = 250;

/// Remove every organization's entries, and the platform's, older than the
/// retention; returns how many.
pub fn prune(s: &AppState, now: Timestamp) -> store::Result<u64> {
    let max_age = s.config.audit_retention;
    let orgs: Vec<(String, crate::store::model::Org)> = s.store.read(|r| r.scan(store::ORGS, ""))?;
    let mut removed = 0;
    // `None`: the platform's log.
    for org in orgs.into_iter().map(|(org, _)| Some(org)).chain([None]) {
        let log = org.as_deref().map_or_else(|| store::PLATFORM_AUDIT_LOG.to_string(), log_of);
        let mut here = 0;
        loop {
            let n = s.store.write(|w| {
                let oldest: Vec<(u64, AuditEntry)> = w.oldest_events(&log, PRUNE_BATCH)?;
                let mut n = 0;
                for (seq, e) in &oldest {
                    if now.since(e.at) < max_age {
                        break;
                    }
                    w.remove_event(&log, *seq)?;
                    n += 1;
                }
                Ok::<_, store::StoreError>(n)
            })?;
            here += n;
            if n < PRUNE_BATCH as u64 {
                break;
            }
        }
        if here > 0 {
            let details = details([("removed", here.to_string()), ("olderThanDays", (max_age.as_secs() / 86_400).to_string())]);
            s.store.write(|w| match &org {
                Some(org) => record(w, org, now, &Who::system(), Action::AuditPruned, org, details),
                None => record_platform(w, "", now, &Who::system(), Action::AuditPruned, "platform", details),
            })?;
        }
        removed += here;
    }
    Ok(removed)
}

/// `details` from pairs: the events feed's `data` builder.
pub use super::events::data as details;
