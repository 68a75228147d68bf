//! Executors as their users manage them: views, deactivation, and the
//! upgrade spec per channel and kind.

use super::audit::{self, Who};
use super::events::{self, data, NewEvent};
use super::keys::revoke_in;
use super::nodes::{finish_deletion, NOT_CONFIRMED_DEACTIVATED};
use super::{Result, ServiceError};
use crate::state::AppState;
use crate::store::model::{ApiKey, Executor, ExecutorRow, KeyUsage, NodeRow, UpgradeRow};
use crate::store::{key, API_KEYS, CAPABILITIES, EXECUTORS, KEY_USAGE, NODES, UPGRADES};
use novacula_core::audit::Action;
use novacula_core::events as ev;
use novacula_core::wire::{ExecutorView, SetUpgradeRequest};
use novacula_core::{Channel, ExecutorCapabilities, ExecutorKind};

fn view(s: &AppState, e: Executor, node_count: usize, key: Option<KeyUsage>) -> ExecutorView {
    ExecutorView {
        online: !e.deactivated && novacula_core::is_online(s.now(), e.updated_at, s.config.heartbeat_timeout),
        compat: novacula_core::compat::compat_of_version(s.config.cp_version.major, &e.version),
        node_count,
        key_last_used_at: key.map(|k| k.at),
        executor: e,
    }
}

/// Most executors in one page of a listing.
pub const EXECUTOR_PAGE_MAX: usize = 1000;

fn load(s: &AppState, org: &str, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<ExecutorView>> {
    let rows = s.store.read(|r| {
        let after = after.map(|a| key(&[org, a]));
        let execs: Vec<(String, ExecutorRow)> = r.scan_page(EXECUTORS, prefix, after.as_deref(), limit)?;
        let (keys, rows): (Vec<String>, Vec<ExecutorRow>) = execs.into_iter().filter(|(_, e)| e.org_id == org).unzip();
        let capabilities: Vec<Option<ExecutorCapabilities>> = r.get_many(CAPABILITIES, &keys)?;
        let usage: Vec<Option<KeyUsage>> = r.get_many(KEY_USAGE, &rows.iter().map(|e| e.api_key_id.clone()).collect::<Vec<_>>())?;
        rows.into_iter()
            .zip(capabilities.into_iter().zip(usage))
            .map(|(row, (capabilities, usage))| {
                let mut e = row.with_capabilities(capabilities.unwrap_or_default());
                s.liveness.overlay(&mut e);
                let n = r.executor_nodes(org, &e.name)?.len();
                let k = s.liveness.key_usage(&e.api_key_id, usage);
                Ok((e, n, k))
            })
            .collect::<crate::store::Result<Vec<_>>>()
    })?;
    Ok(rows.into_iter().map(|(e, n, k)| view(s, e, n, k)).collect())
}

/// Up to `limit` executors of `org` by name, after the name `after`: a page
/// shorter than `limit` is the last one.
pub fn list(s: &AppState, org: &str, after: Option<&str>, limit: usize) -> Result<Vec<ExecutorView>> {
    if limit == 0 || limit > EXECUTOR_PAGE_MAX {
        return Err(ServiceError::BadInput(format!("limit must be between 1 and {EXECUTOR_PAGE_MAX}")));
    }
    load(s, org, &format!("{org}/"), after, limit)
}

/// Executor `name` of `org`.
pub fn get(s: &AppState, org: &str, name: &str) -> Result<ExecutorView> {
    load(s, org, &key(&[org, name]), None, EXECUTOR_PAGE_MAX)?
        .into_iter()
        .find(|v| v.executor.name == name)
        .ok_or_else(|| ServiceError::NotFound(format!("executor {name:?} not found")))
}

/// Deactivate (`active == false`) or reactivate executor `name` of `org`.
/// Deactivating refuses its syncs, revokes its own keys (no other
/// executor's) and ends the deletions it can no longer confirm.
pub fn set_active(s: &AppState, org: &str, who: &Who, name: &str, active: bool) -> Result<()> {
    let actor = &who.event_actor();
    let org = org.to_string();
    let now = s.now();
    let seq = s.store.write(|w| {
        let k = key(&[&org, name]);
        let mut e: ExecutorRow = w.get(EXECUTORS, &k)?.ok_or_else(|| ServiceError::NotFound(format!("executor {name:?} not found")))?;
        if e.deactivated != active {
            return Ok(None); // already so
        }
        e.deactivated = !active;
        w.put(EXECUTORS, &k, &e)?;
        let (kind, action) =
            if active { (ev::EXECUTOR_REACTIVATED, Action::ExecutorReactivated) } else { (ev::EXECUTOR_DEACTIVATED, Action::ExecutorDeactivated) };
        let audited = audit::record(w, &org, now, who, action, name, Default::default())?;
        events::record(w, &org, now, NewEvent { kind, node: None, executor: Some(name), actor, data: data([("audit", audited.to_string())]) })?;
        if active {
            return Ok(None);
        }
        let keys: Vec<(String, ApiKey)> = w.scan(API_KEYS, "")?;
        for (_, mut kr) in keys {
            if kr.org_id == org && kr.executor.as_deref() == Some(name) {
                revoke_in(w, &mut kr, now, who)?;
            }
        }
        let mut seq = None;
        for (node, _) in w.executor_nodes(&org, name)? {
            let Some(mut row) = w.get::<NodeRow>(NODES, &key(&[&org, &node]))? else { continue };
            if row.record.deleted && !row.removed && row.executor == name {
                seq = Some(finish_deletion(w, &mut row, now, actor, NOT_CONFIRMED_DEACTIVATED)?);
            }
        }
        Ok::<_, ServiceError>(seq)
    })?;
    s.executor_changed(&org, name);
    if let Some(seq) = seq {
        s.notify_change(&org, name, seq);
    }
    Ok(())
}

/// Delete executor `name` of `org` (core's `admission::deletable`): its
/// row and capabilities go, its keys are revoked, its name is free.
pub fn delete(s: &AppState, org: &str, who: &Who, name: &str) -> Result<()> {
    let now = s.now();
    s.store.write(|w| {
        let k = key(&[org, name]);
        let mut e: ExecutorRow = w.get(EXECUTORS, &k)?.ok_or_else(|| ServiceError::NotFound(format!("executor {name:?} not found")))?;
        s.liveness.overlay(&mut e);
        let online = novacula_core::is_online(now, e.updated_at, s.config.heartbeat_timeout);
        let keys: Vec<String> = w.executor_nodes(org, name)?.into_iter().map(|(node, _)| key(&[org, &node])).collect();
        let rows: Vec<Option<NodeRow>> = w.get_many(NODES, &keys)?;
        let live = rows.into_iter().flatten().filter(|r| !r.removed && r.executor == name).count();
        novacula_core::admission::deletable(live, online, e.deactivated).map_err(|r| ServiceError::Conflict(r.to_string()))?;
        w.remove(EXECUTORS, &k)?;
        w.remove(CAPABILITIES, &k)?;
        super::alerts::subject_gone(w, org, &novacula_core::alerts::Subject::executor(name), now)?;
        let api_keys: Vec<(String, ApiKey)> = w.scan(API_KEYS, "")?;
        for (_, mut kr) in api_keys {
            if kr.org_id == org && kr.executor.as_deref() == Some(name) {
                revoke_in(w, &mut kr, now, who)?;
            }
        }
        let details = audit::details([("kind", e.kind.to_string()), ("version", e.version.clone())]);
        let audited = audit::record(w, org, now, who, Action::ExecutorDeleted, name, details)?;
        let actor = who.event_actor();
        let data = data([("kind", e.kind.to_string()), ("audit", audited.to_string())]);
        events::record(w, org, now, NewEvent { kind: ev::EXECUTOR_DELETED, node: None, executor: Some(name), actor: &actor, data })?;
        Ok::<_, ServiceError>(())
    })?;
    s.executor_changed(org, name);
    tracing::info!(org, executor = name, by = %who.name, "executor deleted");
    Ok(())
}

/// Where the upgrade for executors of `kind` on `channel` in `org` is kept
/// (read back by `upgrade_offer` of the store).
fn upgrade_key(org: &str, channel: Channel, kind: ExecutorKind) -> String {
    key(&[org, channel.as_str(), kind.as_str()])
}

/// Record the release executors of a channel and kind should run.
pub fn set_upgrade(s: &AppState, org: &str, who: &Who, req: SetUpgradeRequest) -> Result<UpgradeRow> {
    let now = s.now();
    let row = upgrade_row(req, who, now)?;
    let kind = row.kind;
    let actor = who.event_actor();
    s.store.write(|w| {
        w.put(UPGRADES, &upgrade_key(org, row.spec.channel, kind), &row)?;
        let target = format!("{}/{}", row.spec.channel, kind);
        let details = audit::details([("channel", row.spec.channel.to_string()), ("kind", kind.to_string()), ("version", row.spec.version.clone())]);
        let audited = audit::record(w, org, now, who, Action::UpgradeSet, &target, details)?;
        events::record(
            w,
            org,
            now,
            NewEvent {
                kind: ev::EXECUTOR_UPGRADE_SET,
                node: None,
                executor: None,
                actor: &actor,
                data: data([
                    ("channel", row.spec.channel.to_string()),
                    ("kind", kind.to_string()),
                    ("version", row.spec.version.clone()),
                    ("audit", audited.to_string()),
                ]),
            },
        )
    })?;
    Ok(row)
}

/// The row of an upgrade spec `who` sets, checked.
pub fn upgrade_row(req: SetUpgradeRequest, who: &Who, now: novacula_core::Timestamp) -> Result<UpgradeRow> {
    let (kind, spec) = req.into_spec();
    // The same rules as the document's patterns, in one place (core).
    spec.check(kind).map_err(|e| ServiceError::BadInput(e.to_string()))?;
    Ok(UpgradeRow { kind, spec, set_at: now, set_by: who.name.clone() })
}

/// The upgrade specs of `org`.
pub fn list_upgrades(s: &AppState, org: &str) -> Result<Vec<UpgradeRow>> {
    let rows: Vec<(String, UpgradeRow)> = s.store.read(|r| r.scan(UPGRADES, &format!("{org}/")))?;
    Ok(rows.into_iter().map(|(_, r)| r).collect())
}
