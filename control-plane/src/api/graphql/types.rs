//! What GraphQL answers: the REST views, field for field (camelCase), with
//! enums as the same strings and nested documents (a node's spec and
//! observed state, capabilities, event data) as JSON.

use async_graphql::{Json, SimpleObject};
use novacula_core::wire::{ApiKeyView, EventView, ExecutorView, MeView, NodeView, ReportResponse, SyncExecutorResponse, UserView};
use novacula_core::Timestamp;
use serde::Serialize;

fn ms(t: Timestamp) -> u64 {
    t.as_millis()
}

/// A JSON document of a serializable value.
fn doc<T: Serialize>(v: &T) -> Json<serde_json::Value> {
    Json(serde_json::to_value(v).unwrap_or_default())
}

#[derive(SimpleObject)]
pub struct Node {
    pub name: String,
    pub executor: String,
    pub revision: u64,
    /// The derived phase (provisioning, configuring, starting, running, syncing, stopping, stopped, error, deleting).
    pub phase: String,
    pub desired_state: String,
    pub restart_generation: u64,
    /// Revisions the executor has not applied yet.
    pub revisions_behind: u64,
    pub node_down: bool,
    pub executor_online: bool,
    pub deleted: bool,
    pub removed: bool,
    /// The spec (`NodeSpec`), as the REST API writes it.
    pub spec: Json<serde_json::Value>,
    /// The executor's last `ObservedNodeState`, if any.
    pub observed: Option<Json<serde_json::Value>>,
    pub observed_at: Option<u64>,
    pub created_at: u64,
    pub updated_at: u64,
}

impl From<NodeView> for Node {
    fn from(n: NodeView) -> Node {
        Node {
            revision: n.revision.0,
            phase: n.phase.as_str().into(),
            desired_state: n.spec.desired_state.as_str().into(),
            restart_generation: n.spec.restart_generation,
            revisions_behind: n.drift.revisions_behind,
            node_down: n.node_down,
            executor_online: n.executor_online,
            deleted: n.deleted,
            removed: n.removed,
            spec: doc(&n.spec),
            observed: n.observed.as_ref().map(doc),
            observed_at: n.observed_at.map(ms),
            created_at: ms(n.created_at),
            updated_at: ms(n.updated_at),
            name: n.name,
            executor: n.executor,
        }
    }
}

#[derive(SimpleObject)]
pub struct Executor {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub version: String,
    pub channel: String,
    pub online: bool,
    /// in-window, deprecated or out-of-support.
    pub compat: String,
    pub deactivated: bool,
    pub node_count: u64,
    /// Its last `syncExecutor`.
    pub updated_at: u64,
    pub created_at: u64,
    pub key_last_used_at: Option<u64>,
    pub capabilities: Json<serde_json::Value>,
}

impl From<ExecutorView> for Executor {
    fn from(v: ExecutorView) -> Executor {
        let e = v.executor;
        Executor {
            kind: e.kind.as_str().into(),
            channel: e.channel.as_str().into(),
            compat: v.compat.as_str().into(),
            online: v.online,
            deactivated: e.deactivated,
            node_count: v.node_count as u64,
            updated_at: ms(e.updated_at),
            created_at: ms(e.created_at),
            key_last_used_at: v.key_last_used_at.map(ms),
            capabilities: doc(&e.capabilities),
            id: e.id,
            name: e.name,
            version: e.version,
        }
    }
}

#[derive(SimpleObject)]
pub struct Event {
    pub seq: u64,
    pub at: u64,
    pub kind: String,
    pub node: Option<String>,
    pub executor: Option<String>,
    pub actor: String,
    pub data: Json<serde_json::Value>,
    /// info, warn or error.
    pub level: String,
    /// What happened, in a sentence.
    pub message: String,
}

impl From<EventView> for Event {
    fn from(e: EventView) -> Event {
        Event {
            seq: e.seq,
            at: ms(e.at),
            data: doc(&e.data),
            level: e.level.as_str().into(),
            message: e.message,
            kind: e.kind,
            node: e.node,
            executor: e.executor,
            actor: e.actor,
        }
    }
}

/// A page of the events feed, oldest first.
#[derive(SimpleObject)]
pub struct EventsPage {
    pub events: Vec<Event>,
    /// Pass as `after` for the next page.
    pub next: u64,
}

#[derive(SimpleObject)]
pub struct ApiKey {
    pub id: String,
    pub label: String,
    pub executor: Option<String>,
    pub created_at: u64,
    pub created_by: String,
    pub revoked_at: Option<u64>,
    pub expires_at: Option<u64>,
    pub expired: bool,
    pub last_used_at: Option<u64>,
    pub last_used_by: Option<String>,
}

impl From<ApiKeyView> for ApiKey {
    fn from(k: ApiKeyView) -> ApiKey {
        ApiKey {
            created_at: ms(k.created_at),
            revoked_at: k.revoked_at.map(ms),
            expires_at: k.expires_at.map(ms),
            last_used_at: k.last_used_at.map(ms),
            expired: k.expired,
            id: k.id,
            label: k.label,
            executor: k.executor,
            created_by: k.created_by,
            last_used_by: k.last_used_by,
        }
    }
}

#[derive(SimpleObject)]
pub struct Member {
    pub username: String,
    pub org_id: String,
    pub role: String,
    pub created_at: u64,
    pub disabled: bool,
    /// Whether the caller may change this member.
    pub manageable: bool,
}

impl From<UserView> for Member {
    fn from(u: UserView) -> Member {
        Member {
            role: u.role.as_str().into(),
            created_at: ms(u.created_at),
            disabled: u.disabled,
            manageable: u.manageable,
            username: u.username,
            org_id: u.org_id,
        }
    }
}

#[derive(SimpleObject)]
pub struct Me {
    pub username: String,
    pub org_id: String,
    pub role: String,
    pub permissions: Vec<String>,
    pub grantable_roles: Vec<String>,
    pub platform_admin: bool,
    pub impersonated_by: Option<String>,
}

impl From<MeView> for Me {
    fn from(m: MeView) -> Me {
        Me {
            role: m.user.role.as_str().into(),
            permissions: m.permissions.iter().map(|p| p.as_str().into()).collect(),
            grantable_roles: m.grantable_roles.iter().map(|r| r.as_str().into()).collect(),
            platform_admin: m.platform_admin,
            impersonated_by: m.impersonated_by,
            username: m.user.username,
            org_id: m.user.org_id,
        }
    }
}

#[derive(SimpleObject)]
pub struct SyncExecutorPayload {
    pub executor_id: String,
    pub server_version: String,
    pub compat: String,
    /// The release this executor should move to, if any (`UpgradeSpec`).
    pub upgrade: Option<Json<serde_json::Value>>,
    pub server_time: u64,
    pub capabilities_digest: Option<String>,
}

impl From<SyncExecutorResponse> for SyncExecutorPayload {
    fn from(r: SyncExecutorResponse) -> Self {
        SyncExecutorPayload {
            compat: r.compat.as_str().into(),
            upgrade: r.upgrade.as_ref().map(doc),
            server_time: ms(r.server_time),
            executor_id: r.executor_id,
            server_version: r.server_version,
            capabilities_digest: r.capabilities_digest,
        }
    }
}

#[derive(SimpleObject)]
pub struct ReportPayload {
    pub accepted: u64,
    /// One message per rejected node state.
    pub rejected: Vec<String>,
}

impl From<ReportResponse> for ReportPayload {
    fn from(r: ReportResponse) -> Self {
        ReportPayload { accepted: r.accepted as u64, rejected: r.rejected }
    }
}
