//! Alerts (the rules are `novacula_core::alerts`): an organization's settings
//! and its nodes' overrides, incidents opened and resolved in the same
//! transaction that saw their condition change, and each transition queued in
//! the durable outbox once per enabled channel (delivered by `crate::notify`).

use super::audit::{self, details};
use super::events::{self, data, NewEvent};
use super::users::Caller;
use super::{Result, ServiceError};
use crate::state::AppState;
use crate::store::model::{AlertChannel, Delivery, NodeRow, ObservedRow, OutboxEntry};
use crate::store::{
    self, key, seq_key, Write, ALERT_CHANNELS, ALERT_OVERRIDES, ALERT_SETTINGS, DELIVERIES, INCIDENTS, NODES, OBSERVED, OPEN_INCIDENTS, OUTBOX,
};
use novacula_core::alerts::{self as rules, AlertSettings, ChannelKind, Firing, Incident, NodeAlertOverride, Notification, Rule, Step, Subject, SubjectKind};
use novacula_core::audit::Action;
use novacula_core::wire::{ChannelView, CreateChannelRequest, DeliveryView, NodeAlertPolicyView, ReplayQueued, UpdateChannelRequest};
use novacula_core::{events as ev, NodePhase, Timestamp};

const INCIDENT_SEQ: &str = "incident_seq";
const OUTBOX_SEQ: &str = "outbox_seq";
const DELIVERY_SEQ: &str = "delivery_seq";
const CHANNEL_SEQ: &str = "channel_seq";
/// Channels an organization may have.
pub const CHANNELS_MAX: usize = 20;
/// The most incidents or deliveries one page lists.
pub const PAGE_MAX: usize = 500;

fn invalid(e: rules::InvalidSetting) -> ServiceError {
    ServiceError::Invalid { message: e.to_string(), details: vec![e.field.to_string()] }
}

// ---- settings and overrides ----

/// The organization's settings, in a transaction (the defaults until set).
pub fn settings_in(w: &Write, org: &str) -> store::Result<AlertSettings> {
    Ok(w.get(ALERT_SETTINGS, org)?.unwrap_or_default())
}

pub fn settings(s: &AppState, org: &str) -> Result<AlertSettings> {
    Ok(s.store.read(|r| r.get(ALERT_SETTINGS, org))?.unwrap_or_default())
}

/// Replace the organization's settings; incidents follow at once.
pub fn set_settings(s: &AppState, by: &Caller, new: AlertSettings) -> Result<AlertSettings> {
    new.check().map_err(invalid)?;
    let (org, now) = (by.org.clone(), s.now());
    s.store.write(|w| {
        let old = settings_in(w, &org)?;
        w.put(ALERT_SETTINGS, &org, &new)?;
        let d = details([
            ("nodeDown", new.node_down.to_string()),
            ("diskUsage", new.disk_usage.to_string()),
            ("diskUsageThresholdPercent", new.disk_usage_threshold_percent.to_string()),
            ("executorOffline", new.executor_offline.to_string()),
            ("executorOfflineForSecs", new.executor_offline_for_secs.to_string()),
            ("nodeStalled", new.node_stalled.to_string()),
            ("nodeStalledForSecs", new.node_stalled_for_secs.to_string()),
            ("syncDistance", new.sync_distance.to_string()),
            ("syncDistanceThreshold", new.sync_distance_threshold.to_string()),
            ("syncDistanceForSecs", new.sync_distance_for_secs.to_string()),
            ("executorUnsupported", new.executor_unsupported.to_string()),
            ("executorUnsupportedForSecs", new.executor_unsupported_for_secs.to_string()),
        ]);
        audit::record(w, &org, now, &by.who(), Action::AlertSettingsChanged, &org, d)?;
        if old.node_down != new.node_down || old.disk_usage != new.disk_usage || old.disk_usage_threshold_percent != new.disk_usage_threshold_percent {
            let rows: Vec<(String, NodeRow)> = w.scan(NODES, &format!("{org}/"))?;
            for (_, row) in rows {
                reevaluate_node(w, &row, &new, now)?;
            }
        }
        // executor_offline and the rules of `crate::watch` follow on the sweeper's next passes.
        Ok::<_, ServiceError>(())
    })?;
    Ok(new)
}

fn live_node(w: &Write, org: &str, node: &str) -> Result<NodeRow> {
    w.get::<NodeRow>(NODES, &key(&[org, node]))?.filter(|r| !r.removed).ok_or_else(|| ServiceError::NotFound(format!("no node {node:?}")))
}

fn policy_view(settings: &AlertSettings, node: &str, o: Option<NodeAlertOverride>) -> NodeAlertPolicyView {
    let overrides = o.unwrap_or_default();
    NodeAlertPolicyView { node: node.to_string(), overrides, effective: rules::effective(settings, Some(&overrides)) }
}

pub fn node_policy(s: &AppState, org: &str, node: &str) -> Result<NodeAlertPolicyView> {
    s.store.read(|r| {
        r.get::<NodeRow>(NODES, &key(&[org, node]))?.filter(|r| !r.removed).ok_or_else(|| ServiceError::NotFound(format!("no node {node:?}")))?;
        let settings: AlertSettings = r.get(ALERT_SETTINGS, org)?.unwrap_or_default();
        Ok(policy_view(&settings, node, r.get(ALERT_OVERRIDES, &key(&[org, node]))?))
    })
}

/// Every live node's policy, by name.
pub fn node_policies(s: &AppState, org: &str) -> Result<Vec<NodeAlertPolicyView>> {
    s.store.read(|r| {
        let settings: AlertSettings = r.get(ALERT_SETTINGS, org)?.unwrap_or_default();
        let prefix = format!("{org}/");
        let overrides: std::collections::BTreeMap<String, NodeAlertOverride> = r.scan(ALERT_OVERRIDES, &prefix)?.into_iter().collect();
        let rows: Vec<(String, NodeRow)> = r.scan(NODES, &prefix)?;
        Ok(rows.into_iter().filter(|(_, row)| !row.removed).map(|(k, row)| policy_view(&settings, &row.record.spec.name, overrides.get(&k).copied())).collect())
    })
}

/// Set a node's overrides (all unset: it inherits again); its incidents follow at once.
pub fn set_node_policy(s: &AppState, by: &Caller, node: &str, o: NodeAlertOverride) -> Result<NodeAlertPolicyView> {
    o.check().map_err(invalid)?;
    let (org, now) = (by.org.clone(), s.now());
    s.store.write(|w| {
        let row = live_node(w, &org, node)?;
        let k = key(&[&org, node]);
        if o.is_empty() {
            w.remove(ALERT_OVERRIDES, &k)?;
        } else {
            w.put(ALERT_OVERRIDES, &k, &o)?;
        }
        let show = |v: Option<String>| v.unwrap_or_else(|| "inherit".into());
        let d = details([
            ("nodeDown", show(o.node_down.map(|b| b.to_string()))),
            ("diskUsage", show(o.disk_usage.map(|b| b.to_string()))),
            ("diskUsageThresholdPercent", show(o.disk_usage_threshold_percent.map(|v| v.to_string()))),
            ("nodeStalled", show(o.node_stalled.map(|b| b.to_string()))),
            ("syncDistance", show(o.sync_distance.map(|b| b.to_string()))),
            ("syncDistanceThreshold", show(o.sync_distance_threshold.map(|v| v.to_string()))),
        ]);
        audit::record(w, &org, now, &by.who(), Action::NodeAlertPolicySet, node, d)?;
        let settings = settings_in(w, &org)?;
        reevaluate_node(w, &row, &settings, now)?;
        Ok(policy_view(&settings, node, Some(o)))
    })
}

// ---- incidents ----

/// Where `rule`'s open incident for `subject` is kept (`OPEN_INCIDENTS`).
pub(crate) fn open_key(org: &str, rule: Rule, subject: &Subject) -> String {
    key(&[org, rule.as_str(), subject.kind.as_str(), &subject.key])
}

/// Open or resolve `rule`'s incident for `subject` as `firing` says;
/// returns the incident when it changed.
pub fn apply(w: &mut Write, org: &str, rule: Rule, subject: &Subject, firing: Firing, now: Timestamp) -> store::Result<Option<Incident>> {
    let open: Option<String> = w.get(OPEN_INCIDENTS, &open_key(org, rule, subject))?;
    apply_open(w, org, rule, subject, firing, open, now)
}

/// [`apply`] given the id of `rule`'s open incident for `subject` as read in
/// this transaction (many read in one call: one round trip, not one each).
pub fn apply_open(
    w: &mut Write,
    org: &str,
    rule: Rule,
    subject: &Subject,
    firing: Firing,
    open: Option<String>,
    now: Timestamp,
) -> store::Result<Option<Incident>> {
    let k = open_key(org, rule, subject);
    let incident = match (rules::step(open.is_some(), firing), open) {
        (Step::Keep, _) => return Ok(None),
        (Step::Open(message), _) => {
            let id = seq_key(w.next(INCIDENT_SEQ)?);
            w.put(OPEN_INCIDENTS, &k, &id)?;
            Incident { id, rule, subject: subject.clone(), message, opened_at: now, resolved_at: None }
        }
        (Step::Resolve, Some(id)) => {
            w.remove(OPEN_INCIDENTS, &k)?;
            let Some(mut incident) = w.get::<Incident>(INCIDENTS, &key(&[org, &id]))? else { return Ok(None) };
            incident.resolved_at = Some(now);
            incident
        }
        (Step::Resolve, None) => return Ok(None),
    };
    w.put(INCIDENTS, &key(&[org, &incident.id]), &incident)?;
    let (kind, node, executor) = match subject.kind {
        SubjectKind::Node => (if incident.resolved_at.is_some() { ev::ALERT_RESOLVED } else { ev::ALERT_OPENED }, Some(subject.name.as_str()), None),
        SubjectKind::Executor => (if incident.resolved_at.is_some() { ev::ALERT_RESOLVED } else { ev::ALERT_OPENED }, None, Some(subject.name.as_str())),
    };
    let d = data([
        ("rule", rule.as_str().to_string()),
        ("incident", incident.id.clone()),
        ("subjectKind", subject.kind.as_str().to_string()),
        ("subject", subject.name.clone()),
        ("message", incident.message.clone()),
    ]);
    events::record(w, org, now, NewEvent { kind, node, executor, actor: "system", data: d })?;
    let n = Notification::of(org, &incident);
    let channels: Vec<(String, AlertChannel)> = w.scan(ALERT_CHANNELS, &format!("{org}/"))?;
    for (_, ch) in channels.into_iter().filter(|(_, ch)| ch.enabled) {
        enqueue(w, org, &ch.id, n.clone(), now, None)?;
    }
    Ok(Some(incident))
}

/// Put a notification in the outbox for one channel; returns its place.
fn enqueue(w: &mut Write, org: &str, channel_id: &str, notification: Notification, now: Timestamp, replay_of: Option<String>) -> store::Result<u64> {
    let seq = w.next(OUTBOX_SEQ)?;
    let entry = OutboxEntry { seq, org_id: org.to_string(), channel_id: channel_id.to_string(), notification, attempts: 0, next_at: now, replay_of };
    w.put(OUTBOX, &seq_key(seq), &entry)?;
    Ok(seq)
}

/// `node_down` of a node whose down state (`row.alert_firing`) was just set.
pub fn node_down_changed(w: &mut Write, row: &NodeRow, phase: NodePhase, now: Timestamp) -> store::Result<()> {
    let settings = settings_in(w, &row.org_id)?;
    let o: Option<NodeAlertOverride> = w.get(ALERT_OVERRIDES, &key(&[&row.org_id, &row.record.spec.name]))?;
    let policy = rules::effective(&settings, o.as_ref());
    apply(w, &row.org_id, Rule::NodeDown, &Subject::node(&row.record.spec.name), rules::node_down(&policy, row.alert_firing, phase), now)?;
    Ok(())
}

/// What a report's node rules read of `nodes` of `org` (settings,
/// overrides, open `disk_usage` incidents), for a write to fetch ahead (see [`crate::store::Write::prefetch`]).
pub fn node_reads<'a>(org: &str, nodes: impl IntoIterator<Item = &'a str>) -> Vec<(crate::store::Table, String)> {
    let mut reads = vec![(ALERT_SETTINGS, org.to_string())];
    for node in nodes {
        let subject = Subject::node(node);
        reads.push((ALERT_OVERRIDES, key(&[org, node])));
        // `node_down`'s only when a phase changes (seldom): read then.
        reads.push((OPEN_INCIDENTS, open_key(org, Rule::DiskUsage, &subject)));
    }
    reads
}

/// `disk_usage` of the nodes of one report (rows with what they reported), reading settings once.
pub fn disk_reported(w: &mut Write, org: &str, reported: &[(&NodeRow, &novacula_core::ObservedNodeState)], now: Timestamp) -> store::Result<()> {
    if reported.is_empty() {
        return Ok(());
    }
    let settings = settings_in(w, org)?;
    let keys: Vec<String> = reported.iter().map(|(row, _)| key(&[org, &row.record.spec.name])).collect();
    let overrides: Vec<Option<NodeAlertOverride>> = w.get_many(ALERT_OVERRIDES, &keys)?;
    let subjects: Vec<Subject> = reported.iter().map(|(row, _)| Subject::node(&row.record.spec.name)).collect();
    let open_keys: Vec<String> = subjects.iter().map(|subject| open_key(org, Rule::DiskUsage, subject)).collect();
    let open: Vec<Option<String>> = w.get_many(OPEN_INCIDENTS, &open_keys)?;
    for ((((_, obs), o), subject), open) in reported.iter().zip(overrides).zip(&subjects).zip(open) {
        let policy = rules::effective(&settings, o.as_ref());
        apply_open(w, org, Rule::DiskUsage, subject, rules::disk_usage(&policy, obs.disk.as_ref()), open, now)?;
    }
    Ok(())
}

/// Both node rules of `row` again, after its policy changed.
fn reevaluate_node(w: &mut Write, row: &NodeRow, settings: &AlertSettings, now: Timestamp) -> store::Result<()> {
    if row.removed {
        return Ok(());
    }
    let k = key(&[&row.org_id, &row.record.spec.name]);
    let o: Option<NodeAlertOverride> = w.get(ALERT_OVERRIDES, &k)?;
    let policy = rules::effective(settings, o.as_ref());
    let subject = Subject::node(&row.record.spec.name);
    let phase = row.last_phase.unwrap_or(NodePhase::Provisioning);
    apply(w, &row.org_id, Rule::NodeDown, &subject, rules::node_down(&policy, row.alert_firing, phase), now)?;
    let obs: Option<ObservedRow> = w.get(OBSERVED, &k)?;
    apply(w, &row.org_id, Rule::DiskUsage, &subject, rules::disk_usage(&policy, obs.as_ref().and_then(|o| o.state.disk.as_ref())), now)?;
    Ok(())
}

/// A node or executor is gone: its incidents resolve, its overrides go.
pub fn subject_gone(w: &mut Write, org: &str, subject: &Subject, now: Timestamp) -> store::Result<()> {
    for rule in Rule::ALL {
        apply(w, org, rule, subject, None, now)?;
    }
    if subject.kind == SubjectKind::Node {
        w.remove(ALERT_OVERRIDES, &key(&[org, &subject.key]))?;
    }
    Ok(())
}

/// Incidents, newest first: the open ones, or all (`open_only: false`).
pub fn incidents(s: &AppState, org: &str, open_only: bool, limit: usize) -> Result<Vec<Incident>> {
    let limit = limit.clamp(1, PAGE_MAX);
    s.store.read(|r| {
        let prefix = format!("{org}/");
        if open_only {
            let ids: Vec<String> = r.scan::<String>(OPEN_INCIDENTS, &prefix)?.into_iter().map(|(_, id)| key(&[org, &id])).collect();
            let mut open: Vec<Incident> = r.get_many(INCIDENTS, &ids)?.into_iter().flatten().collect();
            open.sort_by(|a, b| b.id.cmp(&a.id));
            open.truncate(limit);
            return Ok(open);
        }
        let mut all: Vec<Incident> = r.scan(INCIDENTS, &prefix)?.into_iter().map(|(_, i)| i).collect();
        all.reverse();
        all.truncate(limit);
        Ok(all)
    })
}

// ---- channels ----

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ServiceError::Invalid { message: "name: 1 to 100 characters, no control characters".into(), details: vec!["name".into()] });
    }
    Ok(())
}

/// An `http(s)://host[:port]/path` URL, without credentials in it.
fn check_url(url: &str) -> Result<()> {
    let bad = |why: &str| ServiceError::Invalid { message: format!("url: {why}"), details: vec!["url".into()] };
    if url.len() > 2000 {
        return Err(bad("at most 2000 characters"));
    }
    let uri: axum::http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(bad("must start with http:// or https://"));
    }
    let authority = uri.authority().ok_or_else(|| bad("names no host"))?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(bad("must name a host, without credentials (use the channel's secret)"));
    }
    Ok(())
}

fn check_secret(kind: ChannelKind, secret: Option<&str>) -> Result<()> {
    if let Some(s) = secret {
        if s.len() > 500 || s.chars().any(char::is_control) {
            return Err(ServiceError::Invalid { message: "secret: at most 500 characters, no control characters".into(), details: vec!["secret".into()] });
        }
    }
    if kind == ChannelKind::Pagerduty && secret.is_none_or(str::is_empty) {
        return Err(ServiceError::Invalid {
            message: "secret: a PagerDuty channel needs its integration's routing key".into(),
            details: vec!["secret".into()],
        });
    }
    Ok(())
}

pub fn channels(s: &AppState, org: &str) -> Result<Vec<ChannelView>> {
    Ok(s.store.read(|r| r.scan::<AlertChannel>(ALERT_CHANNELS, &format!("{org}/")))?.into_iter().map(|(_, c)| c.view()).collect())
}

pub fn create_channel(s: &AppState, by: &Caller, req: CreateChannelRequest) -> Result<ChannelView> {
    check_name(&req.name)?;
    check_url(&req.url)?;
    let secret = req.secret.filter(|s| !s.is_empty());
    check_secret(req.kind, secret.as_deref())?;
    let (org, now) = (by.org.clone(), s.now());
    s.store.write(|w| {
        let existing: Vec<(String, AlertChannel)> = w.scan(ALERT_CHANNELS, &format!("{org}/"))?;
        if existing.len() >= CHANNELS_MAX {
            return Err(ServiceError::Conflict(format!("an organization has at most {CHANNELS_MAX} channels")));
        }
        if existing.iter().any(|(_, c)| c.name == req.name) {
            return Err(ServiceError::Conflict(format!("a channel named {:?} exists", req.name)));
        }
        let id = format!("ch{}", w.next(CHANNEL_SEQ)?);
        let ch = AlertChannel {
            id: id.clone(),
            org_id: org.clone(),
            name: req.name,
            kind: req.kind,
            url: req.url,
            enabled: req.enabled,
            secret,
            created_at: now,
            created_by: by.user.username.clone(),
        };
        w.put(ALERT_CHANNELS, &key(&[&org, &id]), &ch)?;
        let d = details([("name", ch.name.clone()), ("kind", ch.kind.as_str().to_string()), ("url", ch.url.clone())]);
        audit::record(w, &org, now, &by.who(), Action::ChannelCreated, &id, d)?;
        Ok(ch.view())
    })
}

fn channel_in(w: &Write, org: &str, id: &str) -> Result<AlertChannel> {
    w.get(ALERT_CHANNELS, &key(&[org, id]))?.ok_or_else(|| ServiceError::NotFound(format!("no channel {id:?}")))
}

pub fn update_channel(s: &AppState, by: &Caller, id: &str, req: UpdateChannelRequest) -> Result<ChannelView> {
    if let Some(name) = &req.name {
        check_name(name)?;
    }
    if let Some(url) = &req.url {
        check_url(url)?;
    }
    let (org, now) = (by.org.clone(), s.now());
    s.store.write(|w| {
        let mut ch = channel_in(w, &org, id)?;
        let mut changed = Vec::new();
        if let Some(name) = req.name.filter(|n| *n != ch.name) {
            let taken = w.scan::<AlertChannel>(ALERT_CHANNELS, &format!("{org}/"))?.into_iter().any(|(_, c)| c.name == name);
            if taken {
                return Err(ServiceError::Conflict(format!("a channel named {name:?} exists")));
            }
            ch.name = name;
            changed.push(("name", ch.name.clone()));
        }
        if let Some(url) = req.url {
            ch.url = url;
            changed.push(("url", ch.url.clone()));
        }
        if let Some(enabled) = req.enabled {
            ch.enabled = enabled;
            changed.push(("enabled", enabled.to_string()));
        }
        if let Some(secret) = req.secret {
            ch.secret = (!secret.is_empty()).then_some(secret);
            changed.push(("secret", if ch.secret.is_some() { "set" } else { "removed" }.to_string()));
        }
        check_secret(ch.kind, ch.secret.as_deref())?;
        w.put(ALERT_CHANNELS, &key(&[&org, id]), &ch)?;
        audit::record(w, &org, now, &by.who(), Action::ChannelUpdated, id, changed.into_iter().map(|(k, v)| (k.to_string(), v)).collect())?;
        Ok(ch.view())
    })
}

/// Remove a channel; what it had not delivered is dropped by the deliverer.
pub fn delete_channel(s: &AppState, by: &Caller, id: &str) -> Result<()> {
    let (org, now) = (by.org.clone(), s.now());
    s.store.write(|w| {
        let ch = channel_in(w, &org, id)?;
        w.remove(ALERT_CHANNELS, &key(&[&org, id]))?;
        audit::record(w, &org, now, &by.who(), Action::ChannelDeleted, id, details([("name", ch.name)]))?;
        Ok(())
    })
}

/// The channel a Test sends to, with its synthetic notification.
pub fn test_notification(s: &AppState, org: &str, id: &str) -> Result<(AlertChannel, Notification)> {
    let ch: AlertChannel = s.store.read(|r| r.get(ALERT_CHANNELS, &key(&[org, id])))?.ok_or_else(|| ServiceError::NotFound(format!("no channel {id:?}")))?;
    let n = Notification::test(org, &format!("{id}-{}", s.now().0), s.now());
    Ok((ch, n))
}

// ---- deliveries ----

/// Record one attempt (its id is returned); `outbox` is the entry it came
/// from, removed when this attempt ends it, else kept for `retry_at`.
pub fn record_delivery(w: &mut Write, mut d: Delivery, outbox: Option<(&OutboxEntry, Option<Timestamp>)>) -> store::Result<DeliveryView> {
    d.id = seq_key(w.next(DELIVERY_SEQ)?);
    w.put(DELIVERIES, &key(&[&d.org_id, &d.id]), &d)?;
    if let Some((entry, retry_at)) = outbox {
        match retry_at {
            Some(at) if !d.delivered => w.put(OUTBOX, &seq_key(entry.seq), &OutboxEntry { attempts: d.attempt, next_at: at, ..entry.clone() })?,
            _ => w.remove(OUTBOX, &seq_key(entry.seq))?,
        }
    }
    Ok(d.view())
}

/// Deliveries, newest first, before the id `before` (exclusive) when given.
pub fn deliveries(s: &AppState, org: &str, before: Option<&str>, limit: usize) -> Result<Vec<DeliveryView>> {
    let limit = limit.clamp(1, PAGE_MAX);
    let all: Vec<(String, Delivery)> = s.store.read(|r| r.scan(DELIVERIES, &format!("{org}/")))?;
    Ok(all.into_iter().rev().filter(|(_, d)| before.is_none_or(|b| d.id.as_str() < b)).take(limit).map(|(_, d)| d.view()).collect())
}

/// Queue a delivery's notification again for its channel (same idempotency key: the same transition).
pub fn replay(s: &AppState, by: &Caller, id: &str) -> Result<ReplayQueued> {
    let (org, now) = (by.org.clone(), s.now());
    s.store.write(|w| {
        let d: Delivery = w.get(DELIVERIES, &key(&[&org, id]))?.ok_or_else(|| ServiceError::NotFound(format!("no delivery {id:?}")))?;
        let ch = channel_in(w, &org, &d.channel_id).map_err(|_| ServiceError::Conflict(format!("channel {} no longer exists", d.channel_id)))?;
        if !ch.enabled {
            return Err(ServiceError::Conflict(format!("channel {} is disabled", ch.name)));
        }
        let queued = enqueue(w, &org, &ch.id, d.notification.clone(), now, Some(d.id.clone()))?;
        audit::record(w, &org, now, &by.who(), Action::DeliveryReplayed, &ch.id, details([("delivery", d.id), ("incident", d.notification.incident_id)]))?;
        Ok(ReplayQueued { queued })
    })
}
