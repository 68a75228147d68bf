//! Alerts: the rules, an organization's settings and a node's overrides of
//! them, incidents, and the notifications sent for them.
//!
//! A rule's condition is a pure function of what the control plane knows (a
//! node's phase and last report, an executor's last heartbeat); the control
//! plane opens one incident per rule and subject when the condition starts to
//! hold and resolves it when it stops. Each opening and resolution is one
//! [`Notification`] per channel, rendered here for the channel's kind and
//! signed with the channel's secret; the control plane only carries bytes.

use crate::observed::DiskUsage;
use crate::phase::NodePhase;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The rules Novacula evaluates.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A node the user wants running is not (stopped, in error, unreachable).
    NodeDown,
    /// The filesystem under a node's data is fuller than the threshold.
    DiskUsage,
    /// An executor has not synced for the heartbeat timeout plus the rule's "for".
    ExecutorOffline,
    /// A running node's head has not advanced for the rule's "for".
    NodeStalled,
    /// A running node is more blocks (or slots) behind than the threshold, for the rule's "for".
    SyncDistance,
    /// An executor's version is out of the control plane's compatibility window, for the rule's "for".
    ExecutorUnsupported,
}

impl Rule {
    pub const ALL: [Rule; 6] = [Rule::NodeDown, Rule::DiskUsage, Rule::ExecutorOffline, Rule::NodeStalled, Rule::SyncDistance, Rule::ExecutorUnsupported];

    /// The word the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::NodeDown => "node_down",
            Rule::DiskUsage => "disk_usage",
            Rule::ExecutorOffline => "executor_offline",
            Rule::NodeStalled => "node_stalled",
            Rule::SyncDistance => "sync_distance",
            Rule::ExecutorUnsupported => "executor_unsupported",
        }
    }
}

/// What an incident is about.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Node,
    Executor,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Node => "node",
            SubjectKind::Executor => "executor",
        }
    }
}

/// The subject of an incident: its kind, a key stable for its life (a node's
/// or an executor's name within the organization) and the name people read.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    pub kind: SubjectKind,
    pub key: String,
    pub name: String,
}

impl Subject {
    pub fn node(name: &str) -> Subject {
        Subject { kind: SubjectKind::Node, key: name.to_string(), name: name.to_string() }
    }

    pub fn executor(name: &str) -> Subject {
        Subject { kind: SubjectKind::Executor, key: name.to_string(), name: name.to_string() }
    }
}

/// The default disk-usage threshold, in percent.
pub const DISK_USAGE_DEFAULT: u8 = 85;
/// The longest "for" a rule may wait before it opens an incident.
pub const FOR_MAX: Duration = Duration::from_secs(24 * 3600);

/// An organization's alert settings: each rule on or off, and its
/// parameters (a field left out of a request takes its default).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AlertSettings {
    pub node_down: bool,
    pub disk_usage: bool,
    /// 1..=100: the rule fires when the disk is at least this full.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub disk_usage_threshold_percent: u8,
    pub executor_offline: bool,
    /// How long past the heartbeat timeout an executor must stay silent (0 ..= 86400).
    #[cfg_attr(feature = "openapi", schema(maximum = 86400))]
    pub executor_offline_for_secs: u64,
    pub node_stalled: bool,
    /// How long a running node's head may stand still (60 ..= 86400, default 600).
    #[cfg_attr(feature = "openapi", schema(minimum = 60, maximum = 86400))]
    pub node_stalled_for_secs: u64,
    pub sync_distance: bool,
    /// Blocks (or slots) behind that count as too far (1 ..= 1,000,000,000, default 100).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000_000))]
    pub sync_distance_threshold: u64,
    /// How long it must stay that far behind (0 ..= 86400, default 600).
    #[cfg_attr(feature = "openapi", schema(maximum = 86400))]
    pub sync_distance_for_secs: u64,
    pub executor_unsupported: bool,
    /// How long an executor may run out of the compatibility window (0 ..= 86400).
    #[cfg_attr(feature = "openapi", schema(maximum = 86400))]
    pub executor_unsupported_for_secs: u64,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            node_down: true,
            disk_usage: true,
            disk_usage_threshold_percent: DISK_USAGE_DEFAULT,
            executor_offline: true,
            executor_offline_for_secs: 0,
            node_stalled: true,
            node_stalled_for_secs: 600,
            sync_distance: true,
            sync_distance_threshold: 100,
            sync_distance_for_secs: 600,
            executor_unsupported: true,
            executor_unsupported_for_secs: 0,
        }
    }
}

/// A setting out of range, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidSetting {
    pub field: &'static str,
    pub message: String,
}

/// The largest sync-distance threshold (a billion blocks: no chain is that far).
pub const SYNC_DISTANCE_MAX: u64 = 1_000_000_000;

fn distance_ok(v: u64) -> Result<(), InvalidSetting> {
    if (1..=SYNC_DISTANCE_MAX).contains(&v) {
        Ok(())
    } else {
        Err(InvalidSetting { field: "syncDistanceThreshold", message: format!("must be 1..{SYNC_DISTANCE_MAX}, not {v}") })
    }
}

fn threshold_ok(field: &'static str, v: u8) -> Result<(), InvalidSetting> {
    if (1..=100).contains(&v) {
        Ok(())
    } else {
        Err(InvalidSetting { field, message: format!("must be 1..100 percent, not {v}") })
    }
}

impl AlertSettings {
    pub fn check(&self) -> Result<(), InvalidSetting> {
        threshold_ok("diskUsageThresholdPercent", self.disk_usage_threshold_percent)?;
        for (field, secs) in [
            ("executorOfflineForSecs", self.executor_offline_for_secs),
            ("nodeStalledForSecs", self.node_stalled_for_secs),
            ("syncDistanceForSecs", self.sync_distance_for_secs),
            ("executorUnsupportedForSecs", self.executor_unsupported_for_secs),
        ] {
            if secs > FOR_MAX.as_secs() {
                return Err(InvalidSetting { field, message: format!("must be at most {} s", FOR_MAX.as_secs()) });
            }
        }
        if self.node_stalled_for_secs < 60 {
            return Err(InvalidSetting { field: "nodeStalledForSecs", message: "must be at least 60 s (heads move every few seconds at best)".into() });
        }
        distance_ok(self.sync_distance_threshold)
    }
}

/// A node's own values for the node rules; `None` inherits the organization's.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeAlertOverride {
    #[serde(default)]
    pub node_down: Option<bool>,
    #[serde(default)]
    pub disk_usage: Option<bool>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub disk_usage_threshold_percent: Option<u8>,
    #[serde(default)]
    pub node_stalled: Option<bool>,
    #[serde(default)]
    pub sync_distance: Option<bool>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000_000))]
    pub sync_distance_threshold: Option<u64>,
}

impl NodeAlertOverride {
    pub fn check(&self) -> Result<(), InvalidSetting> {
        self.sync_distance_threshold.map_or(Ok(()), distance_ok)?;
        self.disk_usage_threshold_percent.map_or(Ok(()), |v| threshold_ok("diskUsageThresholdPercent", v))
    }

    /// Inherits everything: nothing worth storing.
    pub fn is_empty(&self) -> bool {
        *self == NodeAlertOverride::default()
    }
}

/// The node rules as they apply to one node.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePolicy {
    pub node_down: bool,
    pub disk_usage: bool,
    pub disk_usage_threshold_percent: u8,
    pub node_stalled: bool,
    pub sync_distance: bool,
    pub sync_distance_threshold: u64,
}

/// The organization's settings under the node's overrides.
pub fn effective(org: &AlertSettings, node: Option<&NodeAlertOverride>) -> NodePolicy {
    let o = node.copied().unwrap_or_default();
    NodePolicy {
        node_down: o.node_down.unwrap_or(org.node_down),
        disk_usage: o.disk_usage.unwrap_or(org.disk_usage),
        disk_usage_threshold_percent: o.disk_usage_threshold_percent.unwrap_or(org.disk_usage_threshold_percent),
        node_stalled: o.node_stalled.unwrap_or(org.node_stalled),
        sync_distance: o.sync_distance.unwrap_or(org.sync_distance),
        sync_distance_threshold: o.sync_distance_threshold.unwrap_or(org.sync_distance_threshold),
    }
}

/// How full the filesystem under a node's data is, in whole percent (rounded
/// down); `None` when the executor could not tell its size.
pub fn disk_used_percent(d: &DiskUsage) -> Option<u8> {
    if d.total_bytes == 0 {
        return None;
    }
    let used = d.total_bytes.saturating_sub(d.free_bytes.min(d.total_bytes));
    Some((u128::from(used) * 100 / u128::from(d.total_bytes)) as u8)
}

/// A rule's condition as it holds now: the message of the incident it opens.
pub type Firing = Option<String>;

/// `node_down` for a node in `phase`, wanted running or not (`down` from [`crate::phase::node_down`]).
pub fn node_down(policy: &NodePolicy, down: bool, phase: NodePhase) -> Firing {
    (policy.node_down && down).then(|| format!("node is {} while it should be running", phase.as_str()))
}

/// `disk_usage` for a node's last reported disk.
pub fn disk_usage(policy: &NodePolicy, disk: Option<&DiskUsage>) -> Firing {
    let used = disk.and_then(disk_used_percent)?;
    (policy.disk_usage && used >= policy.disk_usage_threshold_percent)
        .then(|| format!("disk {used}% full (threshold {}%)", policy.disk_usage_threshold_percent))
}

/// `executor_offline` for an executor silent for `silent` (deactivated executors never fire).
pub fn executor_offline(settings: &AlertSettings, silent: Duration, heartbeat_timeout: Duration, deactivated: bool) -> Firing {
    let limit = heartbeat_timeout + Duration::from_secs(settings.executor_offline_for_secs);
    (settings.executor_offline && !deactivated && silent >= limit).then(|| format!("executor silent for {} s", silent.as_secs()))
}

/// When `executor_offline` fires for an executor last heard at `last_seen`
/// if it stays silent (`None`: the rule is off); [`executor_offline`] fires from then on.
pub fn executor_offline_at(settings: &AlertSettings, last_seen: Timestamp, heartbeat_timeout: Duration) -> Option<Timestamp> {
    settings.executor_offline.then(|| last_seen.plus(heartbeat_timeout + Duration::from_secs(settings.executor_offline_for_secs)))
}

/// How long a condition has held: `since` is when it started to (kept by
/// the caller between evaluations); `None` when it does not hold now.
pub fn held(since: Option<Timestamp>, holds: bool, now: Timestamp) -> Option<Timestamp> {
    holds.then(|| since.unwrap_or(now))
}

/// `node_stalled`: a node that runs has shown the same head since `head_since`.
pub fn node_stalled(policy: &NodePolicy, settings: &AlertSettings, head: Option<u64>, head_since: Timestamp, now: Timestamp) -> Firing {
    let head = head?;
    let still = now.since(head_since);
    (policy.node_stalled && still >= Duration::from_secs(settings.node_stalled_for_secs)).then(|| format!("head stuck at {head} for {} s", still.as_secs()))
}

/// `sync_distance`: further behind than the threshold since `behind_since` (from [`held`]).
pub fn sync_distance(policy: &NodePolicy, settings: &AlertSettings, distance: u64, behind_since: Option<Timestamp>, now: Timestamp) -> Firing {
    let since = behind_since?;
    let held_for = now.since(since);
    (policy.sync_distance && distance > policy.sync_distance_threshold && held_for >= Duration::from_secs(settings.sync_distance_for_secs))
        .then(|| format!("{distance} behind (threshold {}) for {} s", policy.sync_distance_threshold, held_for.as_secs()))
}

/// `executor_unsupported`: out of the compatibility window since `since` (from [`held`]).
pub fn executor_unsupported(settings: &AlertSettings, version: &str, since: Option<Timestamp>, now: Timestamp) -> Firing {
    let since = since?;
    (settings.executor_unsupported && now.since(since) >= Duration::from_secs(settings.executor_unsupported_for_secs))
        .then(|| format!("version {version} is out of the compatibility window; node queries are refused until it is upgraded"))
}

/// What to do with a rule's incident for one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Open(String),
    Resolve,
    /// The condition and the incident agree.
    Keep,
}

/// One incident per rule and subject: open while the condition holds, resolved once it stops.
pub fn step(open: bool, firing: Firing) -> Step {
    match (open, firing) {
        (false, Some(message)) => Step::Open(message),
        (true, None) => Step::Resolve,
        _ => Step::Keep,
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Open,
    Resolved,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Resolved => "resolved",
        }
    }
}

/// An incident as the API shows it and as it is stored.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    pub id: String,
    pub rule: Rule,
    pub subject: Subject,
    pub message: String,
    pub opened_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
}

impl Incident {
    pub fn status(&self) -> IncidentStatus {
        if self.resolved_at.is_some() {
            IncidentStatus::Resolved
        } else {
            IncidentStatus::Open
        }
    }
}

/// What a channel receives when an incident opens or resolves (or a test).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// The same for every attempt and replay of one transition: a receiver
    /// that keeps the keys it has seen handles each transition once.
    pub idempotency_key: String,
    pub incident_id: String,
    pub organization: String,
    /// The rule's name (`test` for a channel's Test button).
    pub rule: String,
    /// `open`, `resolved` (or `test`).
    pub status: String,
    pub subject: Subject,
    pub message: String,
    /// RFC 3339, UTC.
    pub opened_at: String,
    pub resolved_at: Option<String>,
}

impl Notification {
    /// The notification of `incident`'s latest transition.
    pub fn of(org: &str, incident: &Incident) -> Notification {
        let status = incident.status().as_str();
        Notification {
            idempotency_key: format!("{org}:{}:{status}", incident.id),
            incident_id: incident.id.clone(),
            organization: org.to_string(),
            rule: incident.rule.as_str().to_string(),
            status: status.to_string(),
            subject: incident.subject.clone(),
            message: incident.message.clone(),
            opened_at: incident.opened_at.rfc3339(),
            resolved_at: incident.resolved_at.map(Timestamp::rfc3339),
        }
    }

    /// What a channel's Test button sends.
    pub fn test(org: &str, id: &str, now: Timestamp) -> Notification {
        Notification {
            idempotency_key: format!("{org}:test:{id}"),
            incident_id: format!("test-{id}"),
            organization: org.to_string(),
            rule: "test".into(),
            status: "test".into(),
            subject: Subject { kind: SubjectKind::Node, key: "test".into(), name: "test".into() },
            message: "a test notification from Novacula".into(),
            opened_at: now.rfc3339(),
            resolved_at: None,
        }
    }

    fn headline(&self) -> String {
        let state = match self.status.as_str() {
            "open" => "FIRING",
            "resolved" => "RESOLVED",
            _ => "TEST",
        };
        format!("[{state}] {} {} {}: {}", self.rule, self.subject.kind.as_str(), self.subject.name, self.message)
    }
}

/// Where notifications go, and in which format.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// The [`Notification`] itself, as JSON.
    Webhook,
    /// A Slack incoming webhook (`{"text": ...}`).
    Slack,
    /// PagerDuty Events API v2 (`/v2/enqueue`); the channel's secret is the routing key.
    Pagerduty,
    /// Prometheus Alertmanager's `POST /api/v2/alerts`.
    Alertmanager,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Pagerduty => "pagerduty",
            ChannelKind::Alertmanager => "alertmanager",
        }
    }
}

/// Slack's incoming-webhook message.
#[derive(Debug, Clone, Serialize)]
pub struct SlackMessage {
    pub text: String,
}

/// PagerDuty Events API v2.
#[derive(Debug, Clone, Serialize)]
pub struct PagerDutyEvent {
    pub routing_key: String,
    pub event_action: &'static str,
    pub dedup_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<PagerDutyPayload>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PagerDutyPayload {
    pub summary: String,
    pub source: String,
    pub severity: &'static str,
    pub timestamp: String,
    pub custom_details: Notification,
}

/// One alert of Alertmanager's API v2; an `endsAt` in the past resolves it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerAlert {
    pub labels: std::collections::BTreeMap<String, String>,
    pub annotations: std::collections::BTreeMap<String, String>,
    pub starts_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
}

/// A notification in a channel's format, ready to be encoded as JSON.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Body {
    Webhook(Notification),
    Slack(SlackMessage),
    Pagerduty(PagerDutyEvent),
    Alertmanager(Vec<AlertmanagerAlert>),
}

/// Warnings need a look; the rest mean a node or executor does not do its job.
fn severity(rule: &str) -> &'static str {
    match rule {
        "disk_usage" | "sync_distance" | "executor_unsupported" => "warning",
        _ => "critical",
    }
}

/// `n` for a channel of `kind` (`secret`: PagerDuty's routing key).
pub fn render(kind: ChannelKind, n: &Notification, secret: Option<&str>) -> Body {
    match kind {
        ChannelKind::Webhook => Body::Webhook(n.clone()),
        ChannelKind::Slack => Body::Slack(SlackMessage { text: n.headline() }),
        ChannelKind::Pagerduty => {
            let resolve = n.status == "resolved";
            Body::Pagerduty(PagerDutyEvent {
                routing_key: secret.unwrap_or_default().to_string(),
                event_action: if resolve { "resolve" } else { "trigger" },
                // one PagerDuty alert per incident: its resolve closes its trigger
                dedup_key: format!("{}:{}", n.organization, n.incident_id),
                payload: (!resolve).then(|| PagerDutyPayload {
                    summary: n.headline(),
                    source: format!("novacula/{}/{}", n.organization, n.subject.name),
                    severity: severity(&n.rule),
                    timestamp: n.opened_at.clone(),
                    custom_details: n.clone(),
                }),
            })
        }
        ChannelKind::Alertmanager => {
            let labels = [
                ("alertname", format!("novacula_{}", n.rule)),
                ("organization", n.organization.clone()),
                (n.subject.kind.as_str(), n.subject.name.clone()),
                ("incident", n.incident_id.clone()),
                ("severity", severity(&n.rule).to_string()),
            ];
            let annotations = [("summary", n.headline()), ("description", n.message.clone())];
            Body::Alertmanager(vec![AlertmanagerAlert {
                labels: labels.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                annotations: annotations.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                starts_at: n.opened_at.clone(),
                ends_at: n.resolved_at.clone(),
            }])
        }
    }
}

/// The header carrying a notification's signature.
pub const SIGNATURE_HEADER: &str = "x-novacula-signature";
/// The header carrying [`Notification::idempotency_key`].
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// How long one delivery attempt may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: a receiver
/// recomputes it over the raw body and refuses old timestamps (replays).
pub fn signature(secret: &[u8], unix_secs: u64, body: &[u8]) -> String {
    use hmac::Mac;
    // HMAC takes a key of any length.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(unix_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={unix_secs},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Attempts a delivery gets before it is given up (recorded as failed).
pub const ATTEMPTS_MAX: u32 = 12;

/// When to try again after `attempts` failed attempts: 5 s doubling up to
/// 15 minutes (about two hours in all); `None` once they are used up.
pub fn retry_after(attempts: u32) -> Option<Duration> {
    if attempts >= ATTEMPTS_MAX {
        return None;
    }
    let secs = 5u64.saturating_mul(1 << attempts.saturating_sub(1).min(20));
    Some(Duration::from_secs(secs.min(900)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_inherit_what_they_leave_unset() {
        let org = AlertSettings { disk_usage_threshold_percent: 90, ..AlertSettings::default() };
        let base = NodePolicy {
            node_down: true,
            disk_usage: true,
            disk_usage_threshold_percent: 90,
            node_stalled: true,
            sync_distance: true,
            sync_distance_threshold: 100,
        };
        assert_eq!(effective(&org, None), base);
        let o = NodeAlertOverride { disk_usage_threshold_percent: Some(70), node_down: Some(false), sync_distance_threshold: Some(5), ..Default::default() };
        assert_eq!(effective(&org, Some(&o)), NodePolicy { node_down: false, disk_usage_threshold_percent: 70, sync_distance_threshold: 5, ..base });
        let off = AlertSettings { disk_usage: false, ..org };
        assert!(!effective(&off, Some(&o)).disk_usage, "unset inherits the organization's off");
        assert!(NodeAlertOverride::default().is_empty() && !o.is_empty());
    }

    #[test]
    fn settings_are_checked_by_field() {
        assert!(AlertSettings::default().check().is_ok());
        for bad in [0, 101] {
            let e = AlertSettings { disk_usage_threshold_percent: bad, ..AlertSettings::default() }.check().unwrap_err();
            assert_eq!(e.field, "diskUsageThresholdPercent");
        }
        assert!(AlertSettings { executor_offline_for_secs: 86_401, ..AlertSettings::default() }.check().is_err());
        assert!(NodeAlertOverride { disk_usage_threshold_percent: Some(0), ..Default::default() }.check().is_err());
        assert!(NodeAlertOverride { disk_usage_threshold_percent: Some(100), ..Default::default() }.check().is_ok());
        assert_eq!(AlertSettings { node_stalled_for_secs: 59, ..AlertSettings::default() }.check().unwrap_err().field, "nodeStalledForSecs");
        assert_eq!(AlertSettings { sync_distance_threshold: 0, ..AlertSettings::default() }.check().unwrap_err().field, "syncDistanceThreshold");
        assert_eq!(AlertSettings { sync_distance_for_secs: 86_401, ..AlertSettings::default() }.check().unwrap_err().field, "syncDistanceForSecs");
        assert!(NodeAlertOverride { sync_distance_threshold: Some(0), ..Default::default() }.check().is_err());
        assert!(NodeAlertOverride { sync_distance_threshold: Some(SYNC_DISTANCE_MAX + 1), ..Default::default() }.check().is_err());
        assert!(AlertSettings { sync_distance_threshold: SYNC_DISTANCE_MAX, ..AlertSettings::default() }.check().is_ok());
    }

    #[test]
    fn stalled_behind_and_unsupported_wait_for_their_for() {
        let s = AlertSettings::default();
        let p = effective(&s, None);
        let t = |secs: u64| Timestamp(1_000_000 + secs * 1000);
        assert_eq!(node_stalled(&p, &s, Some(7), t(0), t(599)), None);
        assert_eq!(node_stalled(&p, &s, Some(7), t(0), t(600)).as_deref(), Some("head stuck at 7 for 600 s"));
        assert_eq!(node_stalled(&p, &s, None, t(0), t(9999)), None, "no head reported, nothing to judge");
        assert_eq!(node_stalled(&NodePolicy { node_stalled: false, ..p }, &s, Some(7), t(0), t(9999)), None);

        assert_eq!(held(None, true, t(5)), Some(t(5)), "starts holding now");
        assert_eq!(held(Some(t(1)), true, t(5)), Some(t(1)), "keeps its start");
        assert_eq!(held(Some(t(1)), false, t(5)), None);
        assert_eq!(sync_distance(&p, &s, 101, Some(t(0)), t(599)), None);
        assert!(sync_distance(&p, &s, 101, Some(t(0)), t(600)).is_some());
        assert_eq!(sync_distance(&p, &s, 100, Some(t(0)), t(9999)), None, "at the threshold is not beyond it");
        assert_eq!(sync_distance(&p, &s, 500, None, t(9999)), None);

        let later = AlertSettings { executor_unsupported_for_secs: 60, ..s };
        assert_eq!(executor_unsupported(&later, "0.9.0", Some(t(0)), t(59)), None);
        assert!(executor_unsupported(&later, "0.9.0", Some(t(0)), t(60)).unwrap().contains("0.9.0"));
        assert_eq!(executor_unsupported(&AlertSettings { executor_unsupported: false, ..s }, "0.9.0", Some(t(0)), t(60)), None);
    }

    #[test]
    fn disk_usage_fires_at_the_threshold_of_the_filesystem() {
        let policy = effective(&AlertSettings::default(), None);
        let disk = |free: u64| DiskUsage { used_bytes: 1, free_bytes: free, total_bytes: 1000 };
        assert_eq!(disk_used_percent(&disk(150)), Some(85));
        assert_eq!(disk_usage(&policy, Some(&disk(150))).as_deref(), Some("disk 85% full (threshold 85%)"));
        assert_eq!(disk_usage(&policy, Some(&disk(151))), None, "84.9 % is under 85 %");
        assert_eq!(disk_usage(&policy, None), None, "no report, no alert");
        assert_eq!(disk_usage(&policy, Some(&DiskUsage::default())), None, "an unknown size never fires");
        assert_eq!(disk_used_percent(&DiskUsage { used_bytes: 0, free_bytes: 5000, total_bytes: 1000 }), Some(0), "free past total is clamped");
        let off = NodePolicy { disk_usage: false, ..policy };
        assert_eq!(disk_usage(&off, Some(&disk(0))), None);
    }

    #[test]
    fn executor_offline_waits_for_its_for() {
        let t = Duration::from_secs(30);
        let s = AlertSettings { executor_offline_for_secs: 60, ..AlertSettings::default() };
        assert_eq!(executor_offline(&s, Duration::from_secs(89), t, false), None);
        assert!(executor_offline(&s, Duration::from_secs(90), t, false).is_some());
        assert_eq!(executor_offline(&s, Duration::from_secs(900), t, true), None, "deactivated executors are silent on purpose");
        assert_eq!(executor_offline(&AlertSettings { executor_offline: false, ..s }, Duration::from_secs(900), t, false), None);
    }

    #[test]
    fn executor_offline_at_is_when_it_starts_to_fire() {
        let t = Duration::from_secs(30);
        let last = Timestamp(1_000_000);
        for s in [AlertSettings::default(), AlertSettings { executor_offline_for_secs: 60, ..AlertSettings::default() }] {
            let at = executor_offline_at(&s, last, t).unwrap();
            assert_eq!(executor_offline(&s, at.since(last) - Duration::from_millis(1), t, false), None, "{s:?}");
            assert!(executor_offline(&s, at.since(last), t, false).is_some(), "{s:?}");
        }
        assert_eq!(executor_offline_at(&AlertSettings { executor_offline: false, ..AlertSettings::default() }, last, t), None);
    }

    #[test]
    fn one_incident_opens_and_resolves() {
        assert_eq!(step(false, Some("x".into())), Step::Open("x".into()));
        assert_eq!(step(true, Some("x".into())), Step::Keep);
        assert_eq!(step(true, None), Step::Resolve);
        assert_eq!(step(false, None), Step::Keep);
    }

    fn incident(resolved: bool) -> Incident {
        Incident {
            id: "0000000000000007".into(),
            rule: Rule::DiskUsage,
            subject: Subject::node("geth-1"),
            message: "disk 91% full (threshold 85%)".into(),
            opened_at: Timestamp(1_796_215_994_581),
            resolved_at: resolved.then_some(Timestamp(1_796_216_000_000)),
        }
    }

    #[test]
    fn each_transition_has_its_own_idempotency_key() {
        let open = Notification::of("acme", &incident(false));
        let resolved = Notification::of("acme", &incident(true));
        assert_eq!(open.idempotency_key, "acme:0000000000000007:open");
        assert_eq!(resolved.idempotency_key, "acme:0000000000000007:resolved");
        assert_eq!((open.opened_at.as_str(), resolved.resolved_at.as_deref()), ("2026-12-02T12:53:14.581Z", Some("2026-12-02T12:53:20.000Z")));
    }

    #[test]
    fn channels_get_their_own_formats() {
        let open = Notification::of("acme", &incident(false));
        let resolved = Notification::of("acme", &incident(true));
        let Body::Slack(s) = render(ChannelKind::Slack, &open, None) else { panic!() };
        assert_eq!(s.text, "[FIRING] disk_usage node geth-1: disk 91% full (threshold 85%)");
        let Body::Pagerduty(p) = render(ChannelKind::Pagerduty, &open, Some("R0UT1NG")) else { panic!() };
        assert_eq!((p.routing_key.as_str(), p.event_action, p.dedup_key.as_str()), ("R0UT1NG", "trigger", "acme:0000000000000007"));
        assert_eq!(p.payload.as_ref().map(|p| p.severity), Some("warning"));
        let Body::Pagerduty(p) = render(ChannelKind::Pagerduty, &resolved, Some("R0UT1NG")) else { panic!() };
        assert_eq!((p.event_action, p.dedup_key.as_str(), p.payload.is_none()), ("resolve", "acme:0000000000000007", true));
        let Body::Alertmanager(a) = render(ChannelKind::Alertmanager, &resolved, None) else { panic!() };
        assert_eq!((a[0].labels["alertname"].as_str(), a[0].labels["node"].as_str()), ("novacula_disk_usage", "geth-1"));
        assert_eq!(a[0].ends_at.as_deref(), Some("2026-12-02T12:53:20.000Z"), "an endsAt resolves it in Alertmanager");
        let Body::Webhook(w) = render(ChannelKind::Webhook, &open, None) else { panic!() };
        assert_eq!(w, open);
    }

    #[test]
    fn signatures_are_hmac_sha256_of_time_and_body() {
        // RFC 4231 test case 2 ("Jefe"), with the message split as "<t>.<body>".
        let sig = signature(b"Jefe", 0, b"what do ya want for nothing?");
        assert!(sig.starts_with("t=0,v1="), "{sig}");
        assert_ne!(signature(b"Jefe", 1, b"x"), signature(b"Jefe", 2, b"x"), "the time is signed");
        assert_ne!(signature(b"a", 1, b"x"), signature(b"b", 1, b"x"));
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            "the crate's HMAC is RFC 4231's"
        );
    }

    #[test]
    fn retries_back_off_and_end() {
        let delays: Vec<u64> = (1..=ATTEMPTS_MAX).map(|a| retry_after(a).map_or(0, |d| d.as_secs())).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 640, 900, 900, 900, 0]);
    }
}
