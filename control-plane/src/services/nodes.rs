//! Nodes: deploy, commands (edit, upgrade, lifecycle, delete), reads, and
//! the health evaluation shared with executor reports and the sweeper.

use super::audit::{self, Who};
use super::events::{self, data, NewEvent};
use super::{Result, ServiceError};
use crate::state::{AppState, NodeChange};
use crate::store::model::{Executor, ExecutorRow, NodeRow, ObservedRow};
use crate::store::{self, key, Read, Write, CAPABILITIES, EXECUTORS, NODES, OBSERVED};
use novacula_core::audit::Action;
use novacula_core::lifecycle::{self, apply_command, LifecycleError, NodeCommand};
use novacula_core::phase::node_down;
use novacula_core::validate::{validate_spec, ValidationError};
use novacula_core::wire::{Alert, DeployRequest, NodeView};
use novacula_core::{derived_node_phase, detect_drift, events as ev, is_online};
use novacula_core::{NodePhase, NodeSpec, ObservedNodeState, PhaseInput, Timestamp};
use std::collections::HashMap;
use std::time::Duration;

/// Counter of node writes; each node remembers the value of its last write.
pub const NODE_SEQ: &str = "node_seq";

pub fn executor_online(exec: Option<&ExecutorRow>, now: Timestamp, timeout: Duration) -> bool {
    exec.is_some_and(|e| !e.deactivated && is_online(now, e.updated_at, timeout))
}

/// Phase of a node given what is known now.
pub fn phase_of(row: &NodeRow, obs: Option<&ObservedNodeState>, online: bool) -> NodePhase {
    derived_node_phase(&PhaseInput {
        desired_state: row.record.spec.desired_state,
        desired_revision: row.record.revision,
        observed: obs,
        deleting: row.record.deleted && !row.removed,
        executor_online: online,
    })
}

pub fn view(row: NodeRow, obs: Option<ObservedRow>, exec: Option<&ExecutorRow>, now: Timestamp, timeout: Duration) -> NodeView {
    let online = executor_online(exec, now, timeout);
    let phase = phase_of(&row, obs.as_ref().map(|o| &o.state), online);
    let drift = detect_drift(row.record.revision, obs.as_ref().map(|o| o.state.revision), now, exec.filter(|e| !e.deactivated).map(|e| e.updated_at), timeout);
    NodeView {
        name: row.record.spec.name.clone(),
        executor: row.executor,
        revision: row.record.revision,
        phase,
        drift,
        node_down: row.alert_firing,
        executor_online: online,
        deleted: row.record.deleted,
        removed: row.removed,
        observed: obs.as_ref().map(|o| o.state.clone()),
        observed_at: obs.map(|o| o.reported_at),
        created_at: row.created_at,
        updated_at: row.updated_at,
        spec: row.record.spec,
    }
}

fn load_view(r: &Read, s: &AppState, org: &str, row: NodeRow, now: Timestamp) -> store::Result<NodeView> {
    let mut exec: Option<ExecutorRow> = r.get(EXECUTORS, &key(&[org, &row.executor]))?;
    if let Some(e) = exec.as_mut() {
        s.liveness.overlay(e);
    }
    let node_key = key(&[org, &row.record.spec.name]);
    let mut obs: Option<ObservedRow> = r.get(OBSERVED, &node_key)?;
    if let Some(o) = obs.as_mut() {
        s.liveness.overlay_report(&node_key, o);
    }
    Ok(view(row, obs, exec.as_ref(), now, s.config.heartbeat_timeout))
}

/// The views of `rows`, reading their executors and reports in one call each
/// (a page is 1,000 nodes: one round trip, not 2,000, on PostgreSQL).
fn load_views(r: &Read, s: &AppState, org: &str, rows: Vec<NodeRow>, now: Timestamp) -> store::Result<Vec<NodeView>> {
    let mut exec_keys: Vec<String> = rows.iter().map(|row| key(&[org, &row.executor])).collect();
    exec_keys.sort();
    exec_keys.dedup();
    let mut execs: HashMap<String, ExecutorRow> = HashMap::with_capacity(exec_keys.len());
    for (k, e) in exec_keys.iter().zip(r.get_many::<ExecutorRow>(EXECUTORS, &exec_keys)?) {
        if let Some(mut e) = e {
            s.liveness.overlay(&mut e);
            execs.insert(k.clone(), e);
        }
    }
    let node_keys: Vec<String> = rows.iter().map(|row| key(&[org, &row.record.spec.name])).collect();
    let observed: Vec<Option<ObservedRow>> = r.get_many(OBSERVED, &node_keys)?;
    Ok(rows
        .into_iter()
        .zip(node_keys.iter().zip(observed))
        .map(|(row, (node_key, mut obs))| {
            if let Some(o) = obs.as_mut() {
                s.liveness.overlay_report(node_key, o);
            }
            let exec = execs.get(&key(&[org, &row.executor]));
            view(row, obs, exec, now, s.config.heartbeat_timeout)
        })
        .collect())
}

/// Whether `node_down` should be firing for this node in this phase (never for a deleted node).
pub fn alert_fires(row: &NodeRow, phase: NodePhase) -> bool {
    !row.record.deleted && node_down(row.record.spec.desired_state, phase)
}

/// Record a phase transition and fire/resolve `node_down` if the phase changed
/// what they say. Returns whether `row` changed (the caller persists it).
pub fn evaluate(w: &mut Write, row: &mut NodeRow, phase: NodePhase, now: Timestamp, actor: &str) -> store::Result<bool> {
    if row.removed {
        return Ok(false);
    }
    let name = row.record.spec.name.clone();
    let mut changed = false;
    if row.last_phase != Some(phase) {
        let from = row.last_phase.map_or("none", NodePhase::as_str).to_string();
        events::record(
            w,
            &row.org_id.clone(),
            now,
            NewEvent {
                kind: ev::NODE_LIFECYCLE_TRANSITION,
                node: Some(&name),
                executor: Some(&row.executor.clone()),
                actor,
                data: data([("from", from), ("to", phase.as_str().to_string())]),
            },
        )?;
        row.last_phase = Some(phase);
        changed = true;
    }
    let down = alert_fires(row, phase);
    if down != row.alert_firing {
        events::record(
            w,
            &row.org_id.clone(),
            now,
            NewEvent {
                kind: if down { ev::NODE_DOWN } else { ev::NODE_RECOVERED },
                node: Some(&name),
                executor: Some(&row.executor.clone()),
                actor: "system",
                data: data([("phase", phase.as_str().to_string())]),
            },
        )?;
        row.alert_firing = down;
        super::alerts::node_down_changed(w, row, phase, now)?;
        changed = true;
    }
    Ok(changed)
}

/// Persist a node write: bump the change sequence, store, index for its executor.
pub fn save_write(w: &mut Write, row: &mut NodeRow, now: Timestamp) -> store::Result<u64> {
    let seq = w.next(NODE_SEQ)?;
    row.seq = seq;
    row.updated_at = now;
    w.put(NODES, &key(&[&row.org_id, &row.record.spec.name]), &*row)?;
    w.index_node(&row.org_id, &row.executor, &row.record.spec.name, seq)?;
    Ok(seq)
}

/// How a deletion ends when its executor is deactivated (it will never confirm).
pub const NOT_CONFIRMED_DEACTIVATED: &str = "not confirmed: the executor is deactivated";

/// A deleted node is gone: its tombstone is final, `node.deleted` is written.
/// `how` says who ended it (the executor's confirmed teardown, or that no
/// executor will ever confirm it). Returns the change sequence.
pub fn finish_deletion(w: &mut Write, row: &mut NodeRow, now: Timestamp, actor: &str, how: &str) -> store::Result<u64> {
    let (org, name) = (row.org_id.clone(), row.record.spec.name.clone());
    row.removed = true;
    row.alert_firing = false;
    w.remove(OBSERVED, &key(&[&org, &name]))?;
    super::alerts::subject_gone(w, &org, &novacula_core::alerts::Subject::node(&name), now)?;
    super::history::remove(w, &org, &name)?;
    events::record(
        w,
        &org,
        now,
        NewEvent {
            kind: ev::NODE_DELETED,
            node: Some(&name),
            executor: Some(&row.executor.clone()),
            actor,
            data: data([("revision", row.record.revision.to_string()), ("teardown", how.to_string())]),
        },
    )?;
    save_write(w, row, now)
}

/// The specs of the executor's other live nodes (deleted ones still hold
/// their ports until the executor has torn them down).
fn neighbours(w: &Write, org: &str, executor: &str, name: &str) -> Result<Vec<NodeSpec>> {
    let keys: Vec<String> = w.executor_nodes(org, executor)?.into_iter().filter(|(node, _)| node != name).map(|(node, _)| key(&[org, &node])).collect();
    let rows: Vec<Option<NodeRow>> = w.get_many(NODES, &keys)?;
    Ok(rows.into_iter().flatten().filter(|r| !r.removed && r.executor == executor).map(|r| r.record.spec).collect())
}

/// Fit a spec onto its executor beside the other nodes there: defaults of
/// its network for what it leaves unset, ports allocated (kept from
/// `previous` on an edit), and no object or port shared with another node.
fn place(w: &Write, org: &str, exec: &Executor, spec: &mut NodeSpec, previous: Option<&NodeSpec>) -> Result<()> {
    let Some(chain) = exec.capabilities.chain(&spec.chain) else { return Ok(()) };
    novacula_core::draft::fill_defaults(spec, chain);
    if let Some(previous) = previous {
        novacula_core::ports::carry_over(spec, previous, Some(chain));
    }
    let others = neighbours(w, org, &exec.name, &spec.name)?;
    novacula_core::ports::assign(spec, chain, &novacula_core::ports::holders(&others, Some(chain))).map_err(|e| match e {
        e if e.is_invalid_spec() => ServiceError::Invalid { message: "spec is not valid for the target executor".into(), details: vec![e.to_string()] },
        e => ServiceError::Conflict(e.to_string()),
    })?;
    // Two nodes of one executor must not derive the same object (a Kubernetes claim name, say).
    match novacula_core::naming::shared_object_name(spec, &others) {
        Some((object, other)) => Err(ServiceError::Conflict(format!(
            "the {object} of this node would be the same object as one of node {other:?} on executor {:?}; rename the node (or the storage volume)",
            exec.name
        ))),
        None => Ok(()),
    }
}

fn validation_error(errs: Vec<ValidationError>) -> ServiceError {
    ServiceError::InvalidSpec(errs)
}

fn lifecycle_error(e: LifecycleError) -> ServiceError {
    match e {
        LifecycleError::Deleted | LifecycleError::RestartWhileStopped => ServiceError::Conflict(e.to_string()),
        // Well-formed, but not applicable to this node.
        LifecycleError::Rename { .. } | LifecycleError::UnknownRole(_) => ServiceError::Invalid { message: e.to_string(), details: vec![] },
        LifecycleError::BadVersion(_) => ServiceError::BadInput(e.to_string()),
    }
}

/// Apply a command to a node of `org`: revision bump, event, change notification.
pub fn command(s: &AppState, org: &str, who: &Who, name: &str, cmd: NodeCommand) -> Result<NodeView> {
    let actor = &who.event_actor();
    let org = org.to_string();
    let now = s.now();
    let k = key(&[&org, name]);
    let (row, seq) = s.store.write(|w| {
        let mut row: NodeRow = w.get(NODES, &k)?.filter(|r: &NodeRow| !r.removed).ok_or_else(|| ServiceError::NotFound(format!("node {name:?} not found")))?;
        let Some(next) = apply_command(&row.record, &cmd).map_err(lifecycle_error)? else {
            return Ok::<_, ServiceError>((row, None));
        };
        let (kind, detail) = cmd.event();
        let mut next = next;
        if cmd.changes_spec() {
            let exec: Executor = w
                .executor(&key(&[&org, &row.executor]))?
                .ok_or_else(|| ServiceError::Conflict(format!("executor {:?} of this node no longer exists", row.executor)))?;
            validate_spec(&next.spec, &exec.capabilities, Some(&row.record.spec)).map_err(validation_error)?;
            place(w, &org, &exec, &mut next.spec, Some(&row.record.spec))?;
        }
        row.record = next;
        let mut seq = save_write(w, &mut row, now)?;
        let mut detail: std::collections::BTreeMap<String, String> = detail.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        detail.insert("revision".into(), row.record.revision.to_string());
        let action = match cmd {
            NodeCommand::Edit(_) => Action::NodeEdited,
            NodeCommand::UpgradeClient { .. } => Action::NodeClientUpgraded,
            NodeCommand::Lifecycle(_) => Action::NodeLifecycle,
            NodeCommand::Delete => Action::NodeDeleted,
        };
        let audited = audit::record(w, &org, now, who, action, name, detail.clone())?;
        detail.insert("audit".into(), audited.to_string());
        events::record(w, &org, now, NewEvent { kind, node: Some(name), executor: Some(&row.executor.clone()), actor, data: detail })?;
        if matches!(cmd, NodeCommand::Delete) {
            // A deactivated (or vanished) executor will never confirm the teardown:
            // end the tombstone now so it does not block the name forever.
            let exec: Option<ExecutorRow> = w.get(EXECUTORS, &key(&[&org, &row.executor]))?;
            if exec.is_none_or(|e| e.deactivated) {
                seq = finish_deletion(w, &mut row, now, actor, NOT_CONFIRMED_DEACTIVATED)?;
            }
        }
        Ok((row, Some(seq)))
    })?;
    if let Some(seq) = seq {
        s.notify_change(&org, &row.executor, seq);
    }
    Ok(s.store.read(|r| load_view(r, s, &org, row, now))?)
}

/// A new node of `org` on `req.executor`, checked against what the executor
/// can run. Deploys sent at once (a pipeline creating a fleet) share a
/// commit, as reports do: on PostgreSQL one transaction for many, and the
/// records each reads fetched together.
pub async fn deploy(s: &std::sync::Arc<AppState>, org: &str, who: &Who, req: DeployRequest) -> Result<NodeView> {
    let (org, who, now, cp_major) = (org.to_string(), who.clone(), s.now(), s.config.cp_version.major);
    let mut spec = req.spec;
    spec.restart_generation = 0;
    let executor = req.executor;
    let at = key(&[&org, &executor]);
    let reads = vec![(EXECUTORS, at.clone()), (CAPABILITIES, at), (NODES, key(&[&org, &spec.name]))];
    let (o, by) = (org.clone(), who);
    let told = o.clone();
    let (row, _) = s
        .write_grouped_then(
            reads,
            move |w| deploy_write(w, &o, &by, &executor, &spec, now, cp_major),
            move |_, (row, seq): &(NodeRow, u64)| Some(NodeChange { org: told, executor: row.executor.clone(), seq: *seq }),
        )
        .await?;
    s.blocking(move |s| Ok(s.store.read(|r| load_view(r, s, &org, row, now))?)).await
}

/// [`deploy`]'s transaction: the node row written, and its change sequence.
fn deploy_write(w: &mut Write, org: &str, who: &Who, executor: &str, spec: &NodeSpec, now: Timestamp, cp_major: u64) -> Result<(NodeRow, u64)> {
    let actor = &who.event_actor();
    let exec: Executor = w
        .executor(&key(&[org, executor]))?
        .ok_or_else(|| ServiceError::NotFound(format!("executor {executor:?} not found; it appears after its first sync")))?;
    if exec.deactivated {
        return Err(ServiceError::Conflict(format!("executor {:?} is deactivated", exec.name)));
    }
    if !novacula_core::compat::compat_of_version(cp_major, &exec.version).serves_nodes() {
        return Err(ServiceError::Conflict(format!("executor {:?} runs {} which is out of support; upgrade it before deploying", exec.name, exec.version)));
    }
    validate_spec(spec, &exec.capabilities, None).map_err(validation_error)?;
    novacula_core::validate::new_node_name(&spec.name).map_err(|e| validation_error(vec![e]))?;
    let mut spec = spec.clone();
    place(w, org, &exec, &mut spec, None)?;
    let k = key(&[org, &spec.name]);
    let mut record = lifecycle::create(spec.clone());
    if let Some(old) = w.get::<NodeRow>(NODES, &k)? {
        if !old.removed {
            return Err(ServiceError::Conflict(format!("node {:?} already exists", spec.name)));
        }
        // Reusing a removed node's name: keep revisions monotonic for any executor that saw it.
        record.revision = old.record.revision.next();
    }
    let mut row = NodeRow {
        org_id: org.to_string(),
        executor: exec.name.clone(),
        record,
        created_at: now,
        updated_at: now,
        seq: 0,
        removed: false,
        alert_firing: false,
        last_phase: None,
    };
    let seq = save_write(w, &mut row, now)?;
    w.remove(OBSERVED, &k)?;
    let audit_details = audit::details([("executor", exec.name.clone()), ("chain", spec.chain.clone()), ("network", spec.network.clone())]);
    let audited = audit::record(w, org, now, who, Action::NodeDeployed, &spec.name, audit_details)?;
    events::record(
        w,
        org,
        now,
        NewEvent {
            kind: ev::NODE_CREATED,
            node: Some(&spec.name),
            executor: Some(&exec.name),
            actor,
            data: data([("revision", row.record.revision.to_string()), ("audit", audited.to_string())]),
        },
    )?;
    Ok((row, seq))
}

/// The spec `d` makes on executor `executor` (nothing written), or every
/// reason it cannot run there: the same rules as a deploy's.
pub fn draft(s: &AppState, org: &str, executor: &str, d: &novacula_core::draft::Draft) -> Result<novacula_core::wire::DraftView> {
    let exec: Executor =
        s.store.read(|r| r.executor(&key(&[org, executor])))?.ok_or_else(|| ServiceError::NotFound(format!("executor {executor:?} not found")))?;
    let spec = novacula_core::draft::build(d, &exec.capabilities).map_err(validation_error)?;
    novacula_core::validate::new_node_name(&spec.name).map_err(|e| validation_error(vec![e]))?;
    Ok(novacula_core::wire::DraftView { spec })
}

/// Node `name` of `org`, as the API shows it.
pub fn get(s: &AppState, org: &str, name: &str) -> Result<NodeView> {
    let now = s.now();
    s.store.read(|r| {
        let row: NodeRow = r.get(NODES, &key(&[org, name]))?.ok_or_else(|| ServiceError::NotFound(format!("node {name:?} not found")))?;
        if row.removed {
            return Err(ServiceError::NotFound(format!("node {name:?} was deleted")));
        }
        Ok(load_view(r, s, org, row, now)?)
    })
}

/// Which nodes a listing wants.
#[derive(Debug, Clone, Default)]
pub struct NodeFilter {
    /// Only this executor's.
    pub executor: Option<String>,
    /// Only this chain's.
    pub chain: Option<String>,
    /// Only the nodes in this phase now.
    pub phase: Option<NodePhase>,
    /// With the nodes whose deletion has completed.
    pub include_removed: bool,
}

impl NodeFilter {
    /// What the stored row decides (cheap: before a view is built).
    fn admits_row(&self, row: &NodeRow) -> bool {
        (self.include_removed || !row.removed) && self.chain.as_ref().is_none_or(|c| &row.record.spec.chain == c)
    }

    /// What only the view tells: the phase, derived now.
    fn admits_view(&self, v: &NodeView) -> bool {
        self.phase.is_none_or(|p| v.phase == p)
    }
}

/// Most nodes in one page of a listing (a fleet holds 100,000; one answer must not).
pub const NODE_PAGE_MAX: usize = 1000;

/// Up to `limit` nodes of `org` matching `filter`, by name, after the name
/// `after`: a page shorter than `limit` is the last one.
pub fn list(s: &AppState, org: &str, filter: &NodeFilter, after: Option<&str>, limit: usize) -> Result<Vec<NodeView>> {
    if limit == 0 || limit > NODE_PAGE_MAX {
        return Err(ServiceError::BadInput(format!("limit must be between 1 and {NODE_PAGE_MAX}")));
    }
    let now = s.now();
    Ok(s.store.read(|r| {
        let mut out = Vec::new();
        // The page fills with matches; a filter that skips rows reads on.
        let take = |r: &store::Read, rows: Vec<NodeRow>, out: &mut Vec<NodeView>| -> store::Result<()> {
            let rows = rows.into_iter().filter(|row| filter.admits_row(row)).collect();
            let views = load_views(r, s, org, rows, now)?;
            let room = limit - out.len();
            out.extend(views.into_iter().filter(|v| filter.admits_view(v)).take(room));
            Ok(())
        };
        if let Some(executor) = &filter.executor {
            // One executor's nodes come from its index, not a scan of the organization.
            let names: Vec<String> =
                r.executor_nodes(org, executor)?.into_iter().map(|(name, _)| name).filter(|name| after.is_none_or(|a| name.as_str() > a)).collect();
            for chunk in names.chunks(limit) {
                let keys: Vec<String> = chunk.iter().map(|name| key(&[org, name])).collect();
                let rows = r.get_many::<NodeRow>(NODES, &keys)?.into_iter().flatten().filter(|row| &row.executor == executor).collect();
                take(r, rows, &mut out)?;
                if out.len() == limit {
                    break;
                }
            }
            return Ok::<_, store::StoreError>(out);
        }
        let prefix = format!("{org}/");
        let mut cursor = after.map(|a| key(&[org, a]));
        loop {
            let rows: Vec<(String, NodeRow)> = r.scan_page(NODES, &prefix, cursor.as_deref(), limit)?;
            let end = rows.len() < limit;
            cursor = rows.last().map(|(k, _)| k.clone());
            take(r, rows.into_iter().map(|(_, row)| row).collect(), &mut out)?;
            if end || out.len() == limit {
                return Ok(out);
            }
        }
    })?)
}

/// Firing alerts of the built-in `node_down` rule.
pub fn alerts(s: &AppState, org: &str) -> Result<Vec<Alert>> {
    let now = s.now();
    Ok(s.store.read(|r| {
        let rows: Vec<(String, NodeRow)> = r.scan(NODES, &format!("{org}/"))?;
        // Only the firing ones are worth a view (a fleet has 100,000 nodes).
        let firing = rows.into_iter().map(|(_, row)| row).filter(|row| row.alert_firing && !row.removed).collect();
        let views = load_views(r, s, org, firing, now)?;
        Ok::<_, store::StoreError>(views.into_iter().map(|v| Alert { rule: "node_down".into(), node: v.name, executor: v.executor, phase: v.phase }).collect())
    })?)
}
