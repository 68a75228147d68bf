//! The executor protocol: `syncExecutor` (admission, heartbeat, upgrade
//! offer), the specs an executor should run, and its reports.

use super::audit::{self, Who};
use super::events::{self, data, NewEvent};
use super::nodes::{alert_fires, evaluate, finish_deletion, phase_of};
use super::{Result, ServiceError};
use crate::state::{AppState, NodeChange};
use crate::store::model::{ApiKey, ExecutorRow, KeyUsage, NodeRow, ObservedRow, UpgradeRow};
use crate::store::{key as store_key, Write, API_KEYS, CAPABILITIES, EXECUTORS, KEY_USAGE, NODES, OBSERVED};
use novacula_core::admission::{admit_sync, key_speaks_for, ExistingExecutor, SyncRefusal};
use novacula_core::audit::Action;
use novacula_core::observed::check_reported_revision;
use novacula_core::validate::valid_name;
use novacula_core::wire::{ReportRequest, ReportResponse, SpecPollResponse, SyncCapabilities, SyncExecutorRequest, SyncExecutorResponse};
use novacula_core::{events as ev, is_online, CompatStatus, DesiredNode, ObservedNodeState, Version};
use std::sync::Arc;

fn compat_of(s: &AppState, version: &str) -> CompatStatus {
    novacula_core::compat::compat_of_version(s.config.cp_version.major, version)
}

/// `syncExecutor` with API key `key`: heartbeat and upsert keyed by (organization, name).
pub async fn sync(s: &Arc<AppState>, key: ApiKey, req: SyncExecutorRequest) -> Result<SyncExecutorResponse> {
    if !valid_name(&req.name) {
        return Err(ServiceError::BadInput(format!("executor name {:?} must be a lowercase DNS label", req.name)));
    }
    req.version.parse::<Version>().map_err(|e| ServiceError::BadInput(e.to_string()))?;
    let digest = match req.capabilities().map_err(|e| ServiceError::BadInput(e.to_string()))? {
        SyncCapabilities::Sent(c) => c.digest(),
        SyncCapabilities::Digest(d) => d.to_string(),
    };
    let now = s.now();
    let compat = compat_of(s, &req.version);
    // Most syncs are heartbeats of an executor whose row is held in memory:
    // no read at all. Any doubt reads the store.
    let epoch = s.store.epoch();
    let held = s.known.executor(&s.store, &store_key(&[&key.org_id, &req.name]), now).and_then(|(mut e, upgrade)| {
        s.liveness.overlay(&mut e);
        sync_changes_nothing(s, &key, &e, &req, &digest, now).then_some((e, upgrade))
    });
    let (key, req, digest, unchanged) = match held {
        Some(found) => (key, req, digest, Some(found)),
        None => {
            s.blocking(move |s| {
                let unchanged = heartbeat_only(s, &key, &req, &digest, now, epoch)?;
                Ok::<_, ServiceError>((key, req, digest, unchanged))
            })
            .await?
        }
    };
    let (exec, upgrade) = match unchanged {
        Some(found) => found,
        None => {
            // Committed together with other executors' syncs (one flush for
            // many): a fleet reconnecting at once, after the control plane
            // was down, is not a queue of single commits.
            let (st, key, req) = (s.clone(), key.clone(), req.clone());
            let reads = durable_sync_reads(&key, &req);
            s.write_grouped_then(
                reads,
                move |w| durable_sync(&st, w, &key, &req, &digest, now, compat),
                |s, (exec, _): &(ExecutorRow, Option<UpgradeRow>)| {
                    s.executor_changed(&exec.org_id, &exec.name);
                    None
                },
            )
            .await?
        }
    };
    s.liveness.touch(&key.org_id, &req.name, &key.id, now);
    Ok(SyncExecutorResponse {
        executor_id: exec.id,
        server_version: s.config.cp_version.to_string(),
        compat,
        // Compared as versions: `v1.1.0` and `1.1.0` are the same release.
        upgrade: upgrade.map(|u| u.spec).filter(|u| !novacula_core::version::same_release(&u.version, &exec.version)),
        server_time: now,
        // Its own digest of what it holds: the executor sends this one back,
        // so a control plane that decodes more (or fewer) fields than the
        // executor sent still recognises it.
        capabilities_digest: Some(exec.capabilities_digest),
        log_watches: s.logs.watches_of(&key.org_id, &req.name),
    })
}

/// Whether a sync with `key_row` changes nothing the store keeps of `e`
/// (its row, "last seen" overlaid): the key is live and bound to it, it was
/// online, and it reports what it reported before. Then only "last seen"
/// moves, in memory (see [`crate::liveness`]).
fn sync_changes_nothing(s: &AppState, key_row: &ApiKey, e: &ExecutorRow, req: &SyncExecutorRequest, digest: &str, now: novacula_core::Timestamp) -> bool {
    key_row.state(now).usable().is_ok()
        && key_row.executor.as_deref() == Some(req.name.as_str())
        && !e.deactivated
        && e.api_key_id == key_row.id
        && e.kind == req.kind
        && e.version == req.version
        && e.channel == req.channel
        && e.capabilities_digest == digest
        && is_online(now, e.updated_at, s.config.heartbeat_timeout)
}

/// The executor and its upgrade offer, read from the store, when this sync
/// [changes nothing](sync_changes_nothing); what was read is kept in memory
/// under `epoch` (taken before the read) for the next ones.
fn heartbeat_only(
    s: &AppState,
    key: &ApiKey,
    req: &SyncExecutorRequest,
    digest: &str,
    now: novacula_core::Timestamp,
    epoch: u64,
) -> Result<Option<(ExecutorRow, Option<UpgradeRow>)>> {
    let ek = store_key(&[&key.org_id, &req.name]);
    Ok(s.store.read(|r| {
        let k: Option<ApiKey> = r.get(API_KEYS, &key.id)?;
        let e: Option<ExecutorRow> = r.get(EXECUTORS, &ek)?;
        let (Some(key_row), Some(mut e)) = (k, e) else { return Ok(None) };
        // In the same read: the upgrade offer goes with every answer (the
        // organization's own, else the platform's release).
        let upgrade = r.upgrade_offer(&key.org_id, e.channel, e.kind)?;
        s.known.keep_key(key_row.clone(), epoch, now);
        s.known.keep_executor(ek.clone(), e.clone(), upgrade.clone(), epoch, now);
        s.liveness.overlay(&mut e);
        Ok::<_, crate::store::StoreError>(sync_changes_nothing(s, &key_row, &e, req, digest, now).then_some((e, upgrade)))
    })?)
}

/// The records [`durable_sync`] reads, to be fetched with its group's.
fn durable_sync_reads(key: &ApiKey, req: &SyncExecutorRequest) -> Vec<(crate::store::Table, String)> {
    use crate::store::{ORGS, RELEASES, UPGRADES};
    let org = &key.org_id;
    vec![
        (API_KEYS, key.id.clone()),
        (ORGS, org.clone()),
        (EXECUTORS, store_key(&[org, &req.name])),
        (UPGRADES, store_key(&[org, req.channel.as_str(), req.kind.as_str()])),
        (RELEASES, store_key(&[req.channel.as_str(), req.kind.as_str()])),
    ]
}

/// A sync that changes what the store keeps: admission, the upsert, key
/// binding and `executor.connected`, committed before the answer. A sync
/// with only a digest keeps the capabilities stored (the answer asks for
/// them when the digest is not theirs); it cannot admit a new executor.
/// Answers the row written and the upgrade offer, read in the same transaction.
fn durable_sync(
    s: &AppState,
    w: &mut Write,
    key: &ApiKey,
    req: &SyncExecutorRequest,
    digest: &str,
    now: novacula_core::Timestamp,
    compat: CompatStatus,
) -> Result<(ExecutorRow, Option<UpgradeRow>)> {
    let org = key.org_id.clone();
    let timeout = s.config.heartbeat_timeout;
    let caps = req.capabilities().map_err(|e| ServiceError::BadInput(e.to_string()))?;
    let k = store_key(&[&org, &req.name]);
    // The key as it is now, not as the extractor read it before this
    // transaction: a revocation that committed in between wins.
    let mut key_row: ApiKey = w.get(API_KEYS, &key.id)?.ok_or_else(|| ServiceError::Unauthenticated("invalid API key".into()))?;
    // Authoritative here (the extractor's view may be seconds old).
    if w.org_deactivated(&org)? {
        return Err(ServiceError::Forbidden(format!("organization {org:?} is deactivated")));
    }
    let mut existing: Option<ExecutorRow> = w.get(EXECUTORS, &k)?;
    if let Some(e) = existing.as_mut() {
        s.liveness.overlay(e);
    }
    let actor = format!("executor:{}", req.name);
    let admission =
        admit_sync(key_row.state(now), existing.as_ref().map(|e| ExistingExecutor { kind: e.kind, deactivated: e.deactivated }), &req.name, req.kind).map_err(
            |e| match e {
                SyncRefusal::KeyRevoked | SyncRefusal::KeyExpired => ServiceError::Unauthenticated(e.to_string()),
                SyncRefusal::KindChanged { .. } => ServiceError::Conflict(e.to_string()),
                SyncRefusal::KeyBoundElsewhere { .. } | SyncRefusal::Deactivated { .. } => ServiceError::Forbidden(e.to_string()),
            },
        )?;
    let who = Who::key(&key_row.id, &req.name);
    if admission.bind_key {
        key_row.executor = Some(req.name.clone());
        w.put(API_KEYS, &key_row.id.clone(), &key_row)?;
        let audited = audit::record(w, &org, now, &who, Action::KeyBound, &key_row.id, audit::details([("executor", req.name.clone())]))?;
        let data = data([("keyId", key_row.id.clone()), ("audit", audited.to_string())]);
        events::record(w, &org, now, NewEvent { kind: ev::API_KEY_BOUND, node: None, executor: Some(&req.name), actor: &actor, data })?;
    }
    if admission.first_sync {
        let details = audit::details([("kind", req.kind.to_string()), ("version", req.version.clone())]);
        audit::record(w, &org, now, &who, Action::ExecutorRegistered, &req.name, details)?;
    }
    let reconnect = existing.as_ref().is_none_or(|e| !is_online(now, e.updated_at, timeout));
    // A digest keeps the capabilities stored; it cannot admit an executor.
    // Sent ones are written only when they differ from the stored ones.
    let held = existing.as_ref().map(|e| e.capabilities_digest.as_str());
    let (stored_digest, new_caps) = match (caps, held) {
        (SyncCapabilities::Digest(_), None) => {
            return Err(ServiceError::Conflict(format!(
                "executor {:?} is not known here: its first sync must carry its capabilities, not their digest",
                req.name
            )))
        }
        (SyncCapabilities::Digest(_), Some(held)) => (held.to_string(), None),
        (SyncCapabilities::Sent(c), held) => (digest.to_string(), (held != Some(digest)).then_some(c)),
    };
    let row = ExecutorRow {
        id: existing.as_ref().map_or_else(|| s.random_hex(8), |e| e.id.clone()),
        org_id: org.clone(),
        name: req.name.clone(),
        kind: req.kind,
        version: req.version.clone(),
        channel: req.channel,
        created_at: existing.as_ref().map_or(now, |e| e.created_at),
        updated_at: now,
        deactivated: false,
        api_key_id: key.id.clone(),
        capabilities_digest: stored_digest,
    };
    if let Some(c) = new_caps {
        w.put(CAPABILITIES, &k, c)?;
    }
    w.put(EXECUTORS, &k, &row)?;
    w.put(KEY_USAGE, &key_row.id, &KeyUsage { at: now, by: req.name.clone() })?;
    if reconnect {
        events::record(
            w,
            &org,
            now,
            NewEvent {
                kind: if admission.first_sync { ev::EXECUTOR_CONNECTED } else { ev::EXECUTOR_RECONNECTED },
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
    // In the same transaction: the upgrade offer goes with every answer.
    let upgrade = w.upgrade_offer(&org, row.channel, row.kind)?;
    Ok((row, upgrade))
}

/// The executor behind a key for node queries: it must have synced, be active and in support.
pub fn node_caller(s: &AppState, key: &ApiKey, name: &str) -> Result<ExecutorRow> {
    key_speaks_for(key.state(s.now()), name).map_err(|e| ServiceError::Forbidden(e.to_string()))?;
    if let Some(held) = node_caller_held(s, key, name) {
        return Ok(held);
    }
    let (k, now, epoch) = (store_key(&[&key.org_id, name]), s.now(), s.store.epoch());
    let read = s.store.read(|r| {
        let Some(e) = r.get::<ExecutorRow>(EXECUTORS, &k)? else { return Ok(None) };
        let upgrade = r.upgrade_offer(&key.org_id, e.channel, e.kind)?;
        Ok::<_, crate::store::StoreError>(Some((e, upgrade)))
    })?;
    let (exec, upgrade) = read.ok_or_else(|| ServiceError::NotFound(format!("executor {name:?} is unknown; call syncExecutor first")))?;
    s.known.keep_executor(k, exec.clone(), upgrade, epoch, now);
    check_node_caller(s, key, name, exec)
}

/// [`node_caller`] for a handler: from memory when it can, else read off the async workers.
pub async fn node_caller_now(s: &std::sync::Arc<AppState>, key: ApiKey, name: String) -> Result<ExecutorRow> {
    match node_caller_held(s, &key, &name) {
        Some(held) => Ok(held),
        None => s.blocking(move |s| node_caller(s, &key, &name)).await,
    }
}

/// [`node_caller`] from what is held in memory, with no read (`None`: not
/// held, or refused: only a yes is taken from memory, a no is read again).
fn node_caller_held(s: &AppState, key: &ApiKey, name: &str) -> Option<ExecutorRow> {
    let (exec, _) = s.known.executor(&s.store, &store_key(&[&key.org_id, name]), s.now())?;
    check_node_caller(s, key, name, exec).ok()
}

fn check_node_caller(s: &AppState, key: &ApiKey, name: &str, exec: ExecutorRow) -> Result<ExecutorRow> {
    key_speaks_for(key.state(s.now()), name).map_err(|e| ServiceError::Forbidden(e.to_string()))?;
    if exec.deactivated {
        return Err(ServiceError::Forbidden(format!("executor {name:?} has been deactivated")));
    }
    if !compat_of(s, &exec.version).serves_nodes() {
        return Err(ServiceError::Conflict(format!(
            "executor version {} is out of support for control plane {}; upgrade the executor",
            exec.version, s.config.cp_version
        )));
    }
    Ok(exec)
}

/// What executor `executor` of `org` should run now, with the change cursor:
/// every node, or with `changes_from` only those changed since that cursor
/// (when it is one this executor has seen: not 0, not past the current one).
pub fn current_specs(s: &AppState, org: &str, executor: &str, changes_from: Option<u64>) -> Result<SpecPollResponse> {
    Ok(s.store.read(|r| {
        let index = r.executor_nodes(org, executor)?;
        let cursor = index.iter().map(|(_, seq)| *seq).max().unwrap_or(0);
        let since = changes_from.filter(|&c| c > 0 && c <= cursor);
        let (mut nodes, mut gone) = (Vec::new(), Vec::new());
        let names: Vec<String> = index.into_iter().filter(|(_, seq)| since.is_none_or(|c| *seq > c)).map(|(name, _)| name).collect();
        let keys: Vec<String> = names.iter().map(|name| store_key(&[org, name])).collect();
        for (name, row) in names.into_iter().zip(r.get_many::<NodeRow>(NODES, &keys)?) {
            match row.filter(|row| row.executor == executor) {
                Some(row) if !row.removed => nodes.push(DesiredNode { revision: row.record.revision, spec: row.record.spec, deleted: row.record.deleted }),
                _ if since.is_some() => gone.push(name),
                _ => {}
            }
        }
        Ok::<_, crate::store::StoreError>(SpecPollResponse { cursor, nodes, changes_since: since, gone })
    })?)
}

/// Store each `ObservedNodeState` of executor `executor` (speaking with
/// `key`); record transitions, alerts and completed deletions.
pub async fn report(s: &std::sync::Arc<AppState>, key: ApiKey, executor: String, req: ReportRequest) -> Result<ReportResponse> {
    // One state per node: a second one would be applied over the first in the same commit.
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = req.nodes.iter().find(|o| !seen.insert(o.node.as_str())) {
        return Err(ServiceError::Invalid { message: format!("report lists node {:?} more than once", dup.node), details: vec![] });
    }
    if req.events.len() > novacula_core::observed::RUNTIME_EVENTS_MAX {
        return Err(ServiceError::BadInput(format!("a report carries at most {} runtime events", novacula_core::observed::RUNTIME_EVENTS_MAX)));
    }
    let now = s.now();
    // A report that changes nothing the store keeps writes nothing: its time
    // is held in memory. One that certainly changes something (a head moved
    // since the state this process wrote) goes to its write unread.
    // Each node's key and state's fingerprint, made once for the memory's look and its update.
    let prints: Vec<(String, u64)> = req.nodes.iter().map(|obs| (store_key(&[&key.org_id, &obs.node]), crate::known::fingerprint(obs))).collect();
    let (exec, req) = if s.known.report_changes(&prints) {
        (node_caller_now(s, key, executor).await?, req)
    } else {
        let (exec, req, nothing) = s
            .blocking(move |s| {
                let exec = node_caller(s, &key, &executor)?;
                let nothing = changes_nothing(s, &exec.org_id, &exec, &req)?;
                Ok::<_, ServiceError>((exec, req, nothing))
            })
            .await?;
        if let Some(stored) = nothing.filter(|_| req.events.is_empty()) {
            for (obs, stored) in req.nodes.iter().zip(stored) {
                s.liveness.reported(&exec.org_id, &obs.node, now, stored);
            }
            s.known.keep_reports(&prints, now);
            return Ok(ReportResponse { accepted: req.nodes.len(), rejected: Vec::new() });
        }
        (exec, req)
    };
    let org = exec.org_id.clone();
    let actor = format!("executor:{}", exec.name);
    let samples = super::history::due(s, &org, &req.nodes, now);
    let (org_id, executor) = (org.clone(), exec.name.clone());
    let keys: Vec<String> = prints.iter().map(|(k, _)| k.clone()).collect();
    let mut reads: Vec<(crate::store::Table, String)> = keys.iter().map(|k| (NODES, k.clone())).collect();
    reads.extend(crate::services::alerts::node_reads(&org, req.nodes.iter().map(|obs| obs.node.as_str())));
    // Committed together with other executors' reports (one flush for many);
    // answered after that commit, awaited without holding a thread.
    let told = (org.clone(), exec.name.clone());
    let (resp, written, _) = s
        .write_grouped_then(
            reads,
            move |w| {
                let mut resp = ReportResponse { accepted: 0, rejected: Vec::new() };
                let mut last_seq = None;
                let rows: Vec<Option<NodeRow>> = w.get_many(NODES, &keys)?;
                // Written together at the end (one statement each on PostgreSQL).
                let (mut observed, mut changed_rows, mut disks, mut written) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for (i, ((obs, k), row)) in req.nodes.iter().zip(&keys).zip(rows).enumerate() {
                    let Some(mut row) = row.filter(|r: &NodeRow| r.executor == executor) else {
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
                        last_seq = Some(finish_deletion(w, &mut row, now, &actor, "confirmed by the executor")?);
                    } else {
                        let phase = phase_of(&row, Some(obs), true);
                        changed |= evaluate(w, &mut row, phase, now, &actor)?;
                        observed.push((k.clone(), ObservedRow { state: obs.clone(), reported_at: now }));
                        disks.push((row.clone(), obs));
                        written.push(i);
                    }
                    if changed {
                        changed_rows.push((k.clone(), row));
                    }
                    resp.accepted += 1;
                }
                w.put_many(OBSERVED, &observed)?;
                w.put_many(NODES, &changed_rows)?;
                let disks: Vec<(&NodeRow, &ObservedNodeState)> = disks.iter().map(|(row, obs)| (row, *obs)).collect();
                crate::services::alerts::disk_reported(w, &org_id, &disks, now)?;
                // Only nodes of this executor (the others were rejected above).
                let ours: Vec<(String, novacula_core::observed::NodeSample)> =
                    samples.iter().filter(|(n, _)| disks.iter().any(|(row, _)| row.record.spec.name == *n)).cloned().collect();
                super::history::record(w, &org_id, &ours, now)?;
                record_runtime_events(w, &org_id, &executor, &actor, now, &req.events, &mut resp)?;
                Ok::<_, ServiceError>((resp, written, last_seq))
            },
            move |_, (_, _, seq): &(ReportResponse, Vec<usize>, Option<u64>)| seq.map(|seq| NodeChange { org: told.0, executor: told.1, seq }),
        )
        .await?;
    s.known.keep_reports(written.iter().map(|&i| &prints[i]), now);
    Ok(resp)
}

/// A report's runtime events, as `runtime.event` in the feed: each about a
/// node of this executor (others are rejected), its message cut to size.
fn record_runtime_events(
    w: &mut Write,
    org: &str,
    executor: &str,
    actor: &str,
    now: novacula_core::Timestamp,
    runtime: &[novacula_core::observed::RuntimeEvent],
    resp: &mut ReportResponse,
) -> crate::store::Result<()> {
    use novacula_core::observed::RUNTIME_MESSAGE_MAX;
    for e in runtime {
        let ours = valid_name(&e.node) && w.get::<NodeRow>(NODES, &store_key(&[org, &e.node]))?.is_some_and(|r| r.executor == executor);
        if !ours {
            resp.rejected.push(format!("{}: runtime event for no such node on this executor", e.node));
            continue;
        }
        let message: String = e.message.chars().filter(|c| !c.is_control()).take(RUNTIME_MESSAGE_MAX).collect();
        let process: String = e.process.chars().filter(|c| !c.is_control()).take(63).collect();
        let data = data([("process", process), ("level", e.level.as_str().to_string()), ("message", message)]);
        events::record(w, org, now, NewEvent { kind: ev::RUNTIME_EVENT, node: Some(&e.node), executor: Some(executor), actor, data })?;
    }
    Ok(())
}

/// When every state of the report is the one stored, for a live node of
/// this executor, with no phase transition or alert to record (what the
/// sweeper checks too) and no deletion to confirm: the time of each stored
/// report, in the report's order.
fn changes_nothing(s: &AppState, org: &str, exec: &ExecutorRow, req: &ReportRequest) -> Result<Option<Vec<novacula_core::Timestamp>>> {
    Ok(s.store.read(|r| {
        let keys: Vec<String> = req.nodes.iter().map(|obs| store_key(&[org, &obs.node])).collect();
        let rows: Vec<Option<NodeRow>> = r.get_many(NODES, &keys)?;
        let stored: Vec<Option<ObservedRow>> = r.get_many(OBSERVED, &keys)?;
        let mut stored_at = Vec::with_capacity(req.nodes.len());
        for ((obs, row), stored) in req.nodes.iter().zip(rows).zip(stored) {
            let Some(row) = row.filter(|row| row.executor == exec.name && !row.removed) else { return Ok(None) };
            if obs.removed || check_reported_revision(row.record.revision, obs.revision).is_err() {
                return Ok(None);
            }
            let Some(stored) = stored.filter(|stored| stored.state == *obs) else { return Ok(None) };
            let phase = phase_of(&row, Some(obs), true);
            if row.last_phase != Some(phase) || row.alert_firing != alert_fires(&row, phase) {
                return Ok(None);
            }
            stored_at.push(stored.reported_at);
        }
        Ok::<_, crate::store::StoreError>(Some(stored_at))
    })?)
}
