//! Records as stored in redb (postcard-encoded; see `store`).
//!
//! Postcard is positional: stored types must serialize every field, so secrets
//! are kept out of API responses by the `*View` types, never by serde skips.

use novacula_core::authz::Role;
use novacula_core::lifecycle::NodeRecord;
pub use novacula_core::wire::{ApiKeyView, EventView, Executor, UpgradeRow, UserView};
use novacula_core::{Channel, ExecutorCapabilities, ExecutorKind, ObservedNodeState, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    pub id: String,
    pub created_at: Timestamp,
    /// The name people read (the id is the slug).
    pub name: String,
    /// Its owner deactivated it: data kept, members' requests and executors refused.
    pub deactivated: bool,
    /// A platform administrator deactivated it, to the same effect: only one
    /// of them lifts it (the owner's switch above is separate).
    pub platform_hold: bool,
    /// When its logo (`ORG_LOGOS`) was last set; `None`: it has none.
    pub logo_updated_at: Option<Timestamp>,
    /// The name in URLs and `X-Novacula-Org` beside the id (`SLUGS`); the
    /// id at creation, changed by its owners and admins.
    pub slug: String,
}

impl Org {
    /// Whether it answers nobody (its owner's switch or the platform's hold).
    pub fn is_off(&self) -> bool {
        self.deactivated || self.platform_hold
    }

    pub fn new(id: &str, now: Timestamp) -> Org {
        Org { id: id.to_string(), created_at: now, name: id.to_string(), deactivated: false, platform_hold: false, logo_updated_at: None, slug: id.to_string() }
    }
}

/// An organization's logo (`ORG_LOGOS`, keyed by organization): a PNG or
/// JPEG checked by core's `logo` rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Logo {
    pub kind: novacula_core::logo::ImageKind,
    pub bytes: Vec<u8>,
}

impl Org {
    pub fn view(&self) -> novacula_core::wire::OrgView {
        novacula_core::wire::OrgView {
            id: self.id.clone(),
            slug: self.slug.clone(),
            name: self.name.clone(),
            created_at: self.created_at,
            deactivated: self.is_off(),
            platform_hold: self.platform_hold,
            logo_updated_at: self.logo_updated_at,
        }
    }
}

/// An account: who signs in. What it may do is per organization (`Member`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub password_hash: String,
    pub created_at: Timestamp,
    /// Cannot sign in; every session stopped working.
    pub disabled: bool,
    /// Sessions of another epoch no longer work: a password change or reset
    /// moves it on.
    pub session_epoch: u64,
}

/// A user's place in an organization (`MEMBERS`, `org/username`; mirrored by
/// `USER_ORGS`, `username/org`, to find a user's organizations).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    pub role: Role,
    pub added_at: Timestamp,
    pub added_by: String,
}

/// An invitation to join `org_id` as `role` (`INVITATIONS`, keyed by id).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invitation {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub role: Role,
    /// SHA-256 of the token's secret part.
    pub secret_hash: String,
    pub invited_by: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub accepted_by: Option<String>,
    pub cancelled: bool,
}

impl Invitation {
    pub fn state(&self, now: Timestamp) -> novacula_core::wire::InvitationState {
        use novacula_core::wire::InvitationState::*;
        match () {
            _ if self.accepted_by.is_some() => Accepted,
            _ if self.cancelled => Cancelled,
            _ if now >= self.expires_at => Expired,
            _ => Pending,
        }
    }

    pub fn view(&self, now: Timestamp) -> novacula_core::wire::InvitationView {
        novacula_core::wire::InvitationView {
            id: self.id.clone(),
            org_id: self.org_id.clone(),
            email: self.email.clone(),
            role: self.role,
            invited_by: self.invited_by.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            state: self.state(now),
            accepted_by: self.accepted_by.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub username: String,
    /// The organization requests work in unless they name another.
    pub org_id: String,
    /// The user's `session_epoch` when it was opened.
    pub epoch: u64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// A platform administrator opened it to act as this user (support).
    pub impersonator: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    pub org_id: String,
    pub label: String,
    /// When set, the key may only sync as this executor.
    pub executor: Option<String>,
    pub secret_hash: String,
    pub created_at: Timestamp,
    pub created_by: String,
    pub revoked_at: Option<Timestamp>,
    /// It stops working then; `None`: never.
    pub expires_at: Option<Timestamp>,
}

impl ApiKey {
    /// What core's admission rules need to know of this key, as of `now`.
    pub fn state(&self, now: Timestamp) -> novacula_core::admission::KeyState<'_> {
        novacula_core::admission::KeyState::at(self.revoked_at, self.expires_at, self.executor.as_deref(), now)
    }
}

/// When and by whom a key was last used: its own row, so a heartbeat never
/// rewrites the key itself (and can never undo a revocation).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyUsage {
    pub at: Timestamp,
    pub by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRow {
    pub org_id: String,
    pub executor: String,
    pub record: NodeRecord,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Global change sequence of the last write; the long-poll cursor.
    pub seq: u64,
    /// The executor confirmed the teardown of a deleted node.
    pub removed: bool,
    /// Whether the `node_down` alert is currently firing.
    pub alert_firing: bool,
    /// Last derived phase recorded by a transition event.
    pub last_phase: Option<novacula_core::NodePhase>,
}

/// An executor as stored: what its last sync said, but its capabilities,
/// which are kept apart (`CAPABILITIES`, same key): they are most of an
/// executor's bytes, and most reads (liveness, version, the sweeper, node
/// views, heartbeats) need none of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub kind: ExecutorKind,
    pub version: String,
    pub channel: Channel,
    pub created_at: Timestamp,
    /// Last heartbeat written (newer ones are held in memory, see `liveness`).
    pub updated_at: Timestamp,
    pub deactivated: bool,
    pub api_key_id: String,
    /// [`ExecutorCapabilities::digest`] of the stored capabilities: a heartbeat
    /// compares it instead of reading them.
    pub capabilities_digest: String,
}

impl ExecutorRow {
    pub fn of(e: &Executor) -> ExecutorRow {
        ExecutorRow {
            id: e.id.clone(),
            org_id: e.org_id.clone(),
            name: e.name.clone(),
            kind: e.kind,
            version: e.version.clone(),
            channel: e.channel,
            created_at: e.created_at,
            updated_at: e.updated_at,
            deactivated: e.deactivated,
            api_key_id: e.api_key_id.clone(),
            capabilities_digest: e.capabilities.digest(),
        }
    }

    pub fn with_capabilities(self, capabilities: ExecutorCapabilities) -> Executor {
        Executor {
            id: self.id,
            org_id: self.org_id,
            name: self.name,
            kind: self.kind,
            version: self.version,
            channel: self.channel,
            capabilities,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deactivated: self.deactivated,
            api_key_id: self.api_key_id,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObservedRow {
    pub state: ObservedNodeState,
    pub reported_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub seq: u64,
    pub org_id: String,
    pub at: Timestamp,
    pub kind: String,
    pub node: Option<String>,
    pub executor: Option<String>,
    /// `user:<name>`, `executor:<name>` or `system`.
    pub actor: String,
    pub data: BTreeMap<String, String>,
}

/// How the API shows a user as a member of `org`; `manageable`: whether the
/// one who reads it may change them.
pub fn user_view(u: &User, org: &str, m: &Member, manageable: bool) -> UserView {
    UserView { username: u.username.clone(), org_id: org.to_string(), role: m.role, created_at: u.created_at, disabled: u.disabled, manageable }
}

/// How the API shows a stored key and its last use, as of `now`.
pub fn key_view(k: &ApiKey, usage: Option<KeyUsage>, now: Timestamp) -> ApiKeyView {
    ApiKeyView {
        id: k.id.clone(),
        label: k.label.clone(),
        executor: k.executor.clone(),
        created_at: k.created_at,
        created_by: k.created_by.clone(),
        revoked_at: k.revoked_at,
        expires_at: k.expires_at,
        expired: k.state(now).expired,
        last_used_at: usage.as_ref().map(|u| u.at),
        last_used_by: usage.map(|u| u.by),
    }
}

impl From<Event> for EventView {
    fn from(e: Event) -> Self {
        let (level, message) = novacula_core::events::describe(&e.kind, e.node.as_deref(), e.executor.as_deref(), &e.data);
        EventView { seq: e.seq, at: e.at, kind: e.kind, node: e.node, executor: e.executor, actor: e.actor, data: e.data, level, message }
    }
}

/// Where an organization's notifications go (`ALERT_CHANNELS`). The secret
/// (HMAC key, or PagerDuty's routing key) is never in a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertChannel {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub kind: novacula_core::alerts::ChannelKind,
    pub url: String,
    pub enabled: bool,
    pub secret: Option<String>,
    pub created_at: Timestamp,
    pub created_by: String,
}

impl AlertChannel {
    pub fn view(&self) -> novacula_core::wire::ChannelView {
        novacula_core::wire::ChannelView {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind,
            url: self.url.clone(),
            enabled: self.enabled,
            has_secret: self.secret.is_some(),
            created_at: self.created_at,
            created_by: self.created_by.clone(),
        }
    }
}

/// A notification waiting for its channel (`OUTBOX`): kept until delivered
/// or given up, so a restart loses none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub seq: u64,
    pub org_id: String,
    pub channel_id: String,
    pub notification: novacula_core::alerts::Notification,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_at: Timestamp,
    /// The delivery this one replays, by hand.
    pub replay_of: Option<String>,
}

/// One delivery attempt (`DELIVERIES`), with what it carried, for replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub org_id: String,
    pub channel_id: String,
    pub channel_name: String,
    pub notification: novacula_core::alerts::Notification,
    pub attempt: u32,
    pub at: Timestamp,
    pub latency_ms: u64,
    pub response_code: Option<u16>,
    pub error: Option<String>,
    pub delivered: bool,
    /// A failure after which no retry follows.
    pub final_failure: bool,
    pub replay_of: Option<String>,
}

impl Delivery {
    pub fn view(&self) -> novacula_core::wire::DeliveryView {
        novacula_core::wire::DeliveryView {
            id: self.id.clone(),
            channel_id: self.channel_id.clone(),
            channel_name: self.channel_name.clone(),
            incident_id: self.notification.incident_id.clone(),
            rule: self.notification.rule.clone(),
            status: self.notification.status.clone(),
            idempotency_key: self.notification.idempotency_key.clone(),
            attempt: self.attempt,
            at: self.at,
            latency_ms: self.latency_ms,
            response_code: self.response_code,
            error: self.error.clone(),
            delivered: self.delivered,
            final_failure: self.final_failure,
            replay_of: self.replay_of.clone(),
        }
    }
}
