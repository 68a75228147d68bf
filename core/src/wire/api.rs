//! The user API's requests, responses and views (`/api/v1/...`): what the
//! control plane serves and the typed client, the CLI, the console's tests and
//! the simulator read. Stored rows stay in the control plane; these are their
//! shapes on the wire.

use super::UpgradeSpec;
use crate::authz::{Permission, Role};
use crate::compat::CompatStatus;
use crate::executor::{Channel, ExecutorCapabilities, ExecutorKind};
use crate::lifecycle::LifecycleAction;
use crate::{Drift, NodePhase, NodeSpec, ObservedNodeState, Revision, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = super::text::name))]
    pub username: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub password: String,
    /// The organization the session works in by default (a request may name
    /// another of the user's in the `X-Novacula-Org` header); the first of
    /// the user's organizations by name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = super::text::optional_name))]
    pub organization: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    pub token: String,
    pub expires_at: Timestamp,
    pub user: UserView,
}

/// A user as a member of one organization (no password hash).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub username: String,
    pub org_id: String,
    pub role: Role,
    pub created_at: Timestamp,
    /// A disabled user cannot sign in, and their sessions stopped working.
    pub disabled: bool,
    /// Whether the caller may change this member's role, remove them or
    /// manage their account (core's `authz::member_change`).
    pub manageable: bool,
}

/// One of the signed-in user's organizations.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrgMembershipView {
    pub org_id: String,
    pub role: Role,
}

/// `POST /invitations`: whom to invite, as what.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitationRequest {
    #[cfg_attr(feature = "openapi", schema(max_length = 254, pattern = "^[^@\\s\\u0000-\\u001f\\u007f-\\u009f]+@[^@\\s\\u0000-\\u001f\\u007f-\\u009f]+$"))]
    pub email: String,
    pub role: Role,
}

/// Where an invitation stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvitationState {
    Pending,
    Accepted,
    Expired,
    Cancelled,
}

/// An invitation as owners and admins see it (never its token).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationView {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub state: InvitationState,
    /// Who accepted it.
    pub accepted_by: Option<String>,
}

/// A new (or resent) invitation: its token and link, shown this once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedInvitation {
    /// The single-use token; whoever holds it may join. Shown only here.
    pub token: String,
    /// The console's page for it: the control plane's address, then this.
    pub path: String,
    /// Whether it was mailed (SMTP configured and the server took it).
    pub emailed: bool,
    /// Why it was not mailed, when SMTP is configured.
    pub email_error: Option<String>,
    #[serde(flatten)]
    pub invitation: InvitationView,
}

/// `POST /invitations/preview`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitationToken {
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub token: String,
}

/// What an invitation offers, for whoever holds its token.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationPreview {
    pub org_id: String,
    pub role: Role,
    pub email: String,
    pub invited_by: String,
    pub expires_at: Timestamp,
}

/// `POST /invitations/accept`: with a session, its user joins; without one,
/// `username` and `password` create the account.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = super::text::optional_name))]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub password: Option<String>,
}

/// An organization's settings.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgView {
    /// Its id: every record of it is keyed by it; fixed.
    pub id: String,
    /// Its slug: another name for it in `X-Novacula-Org` and sign-in (the
    /// id until changed; owners and admins change it).
    pub slug: String,
    /// The name people read.
    pub name: String,
    pub created_at: Timestamp,
    /// Deactivated (by its owner, or held by the platform): data kept,
    /// sign-ins and executors refused.
    pub deactivated: bool,
    /// The platform's administrators deactivated it: only they lift it.
    pub platform_hold: bool,
    /// When its logo (`GET /org/logo`) was last set; `null`: it has none.
    pub logo_updated_at: Option<Timestamp>,
}

/// `PUT /org`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSettingsRequest {
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 100,
            pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub name: String,
    /// A new slug (a DNS label no other organization uses as its id or slug).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = super::text::optional_name))]
    pub slug: Option<String>,
}

/// `POST /signup` (when the server allows it): an account and its own organization.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = super::text::name))]
    pub username: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub password: String,
    /// The personal organization's id (default: the username).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = super::text::optional_name))]
    pub organization: Option<String>,
}

/// `GET /signup`: whether this server takes sign-ups.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignupInfo {
    pub enabled: bool,
}

/// `PUT /users/{username}`: a member's new role.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRoleRequest {
    pub role: Role,
}

/// `PUT /me/password`: the current password proves it is you.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub current_password: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub new_password: String,
}

/// `PUT /users/{username}/password`: an owner or admin sets a member's password.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetPasswordRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub new_password: String,
}

/// `POST /ownership`: the member who becomes owner (the owner becomes admin).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferOwnershipRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = super::text::name))]
    pub username: String,
}

/// The signed-in user and what the role lets them do (the console greys out the rest).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeView {
    #[serde(flatten)]
    pub user: UserView,
    /// The role's permissions, from the one permission table.
    pub permissions: Vec<Permission>,
    /// The roles this user may give others.
    pub grantable_roles: Vec<Role>,
    /// A platform administrator (all organizations, releases, impersonation).
    pub platform_admin: bool,
    /// This session is a platform administrator acting as this user.
    pub impersonated_by: Option<String>,
}

/// An organization as the platform's administrators see it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformOrgView {
    #[serde(flatten)]
    pub org: OrgView,
    pub members: u64,
    pub owner: Option<String>,
}

/// Act as a user, for support.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImpersonateRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = super::text::name))]
    pub username: String,
    /// One of the user's organizations; without it, their first.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = super::text::optional_name))]
    pub org: Option<String>,
    /// Why (kept in the audit log).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 200, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"))]
    pub reason: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = super::text::name))]
    pub username: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub password: String,
    pub role: Role,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKeyRequest {
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub label: String,
    /// Bind the key to one executor name (otherwise it binds at its first sync).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = super::text::key_executor))]
    pub executor: Option<String>,
    /// Days until the key stops working (default 365); see `neverExpires`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3650))]
    pub expires_in_days: Option<u32>,
    /// A key that never expires (`expiresInDays` must then be absent).
    #[serde(default)]
    pub never_expires: bool,
}

/// Keys live a year unless asked otherwise.
pub const KEY_LIFETIME_DAYS_DEFAULT: u32 = 365;
/// The longest lifetime a key may be given in days (ten years).
pub const KEY_LIFETIME_DAYS_MAX: u32 = 3650;

/// An API key as the API shows it (no secret, no hash).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    pub id: String,
    pub label: String,
    pub executor: Option<String>,
    pub created_at: Timestamp,
    pub created_by: String,
    pub revoked_at: Option<Timestamp>,
    /// When it stops working; `null`: never.
    pub expires_at: Option<Timestamp>,
    /// Past `expiresAt` now: refused.
    pub expired: bool,
    pub last_used_at: Option<Timestamp>,
    pub last_used_by: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    /// The full key. It is shown only in this response.
    pub key: String,
    #[serde(flatten)]
    pub record: ApiKeyView,
}

/// An event as the feed shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub seq: u64,
    pub at: Timestamp,
    pub kind: String,
    pub node: Option<String>,
    pub executor: Option<String>,
    pub actor: String,
    pub data: BTreeMap<String, String>,
    /// How much it matters (`info`, `warn`, `error`; `events::describe`).
    #[serde(default)]
    pub level: crate::events::Level,
    /// What happened, in a sentence.
    #[serde(default)]
    pub message: String,
}

/// A node as the API shows it: its spec, and what is derived from what the
/// executor reported (phase, drift, the `node_down` alert).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub name: String,
    pub executor: String,
    pub revision: Revision,
    pub spec: NodeSpec,
    pub phase: NodePhase,
    pub drift: Drift,
    /// The `node_down` alert is firing.
    pub node_down: bool,
    pub executor_online: bool,
    pub deleted: bool,
    pub removed: bool,
    pub observed: Option<ObservedNodeState>,
    pub observed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeployRequest {
    pub executor: String,
    pub spec: NodeSpec,
}

/// The spec a [`crate::draft::Draft`] makes on an executor, nothing written:
/// what the console's deploy wizard reviews, then deploys as it is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DraftView {
    pub spec: NodeSpec,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EditRequest {
    pub spec: NodeSpec,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = super::text::name))]
    pub role: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = super::text::version))]
    pub version: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LifecycleRequest {
    pub action: LifecycleAction,
}

/// The control plane's answer to an executor's report.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportResponse {
    pub accepted: usize,
    /// One message per rejected node state.
    pub rejected: Vec<String>,
}

/// A page of the events feed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsPage {
    pub events: Vec<EventView>,
    /// The cursor of the next page in the same order: pass as `after` (asc) or `before` (desc).
    pub next: u64,
}

/// One entry of the audit log: who did what to which thing, through what.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub seq: u64,
    pub at: Timestamp,
    /// The organization it happened in.
    pub org_id: String,
    pub actor_kind: crate::audit::ActorKind,
    /// A username, an API key id, or `system`.
    pub actor_id: String,
    /// A username, the executor a key speaks for, or `system`.
    pub actor_name: String,
    pub action: crate::audit::Action,
    pub target_kind: String,
    pub target_id: String,
    pub source: crate::audit::Source,
    /// What changed (fields, from/to roles, counts); never a secret.
    pub details: BTreeMap<String, String>,
    /// The platform administrator who acted as the actor (impersonation for
    /// support): both identities are kept.
    pub impersonator: Option<String>,
}

/// A page of the audit log, newest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for older entries; 0 when the log is exhausted.
    pub next: u64,
}

/// A firing alert.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub rule: String,
    pub node: String,
    pub executor: String,
    pub phase: NodePhase,
}

/// An executor as the control plane records it from its syncs (the stored
/// row, and the first part of its view).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Executor {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub kind: ExecutorKind,
    pub version: String,
    pub channel: Channel,
    pub capabilities: ExecutorCapabilities,
    pub created_at: Timestamp,
    /// Last successful `syncExecutor`.
    pub updated_at: Timestamp,
    pub deactivated: bool,
    /// The key used by the last sync.
    pub api_key_id: String,
}

/// An executor as the API shows it: what its last sync said, and what the
/// control plane derives (online, compatibility window).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorView {
    #[serde(flatten)]
    pub executor: Executor,
    pub online: bool,
    pub compat: CompatStatus,
    pub node_count: usize,
    pub key_last_used_at: Option<Timestamp>,
}

/// The release executors of one kind on one channel should run.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeRow {
    pub kind: ExecutorKind,
    pub spec: UpgradeSpec,
    pub set_at: Timestamp,
    pub set_by: String,
}

/// A release for the executors of one kind on one channel. Each kind pins
/// its bytes its own way, so the document states what each must carry.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SetUpgradeRequest {
    /// A file in the agents' own `release_dir`, and its SHA-256.
    Agent {
        channel: Channel,
        #[cfg_attr(feature = "openapi", schema(schema_with = super::text::version))]
        version: String,
        #[cfg_attr(feature = "openapi", schema(schema_with = super::text::artifact))]
        artifact: String,
        #[cfg_attr(feature = "openapi", schema(schema_with = super::text::sha256))]
        sha256: String,
    },
    /// An image of the operator's own repository, pinned by digest.
    Operator {
        channel: Channel,
        #[cfg_attr(feature = "openapi", schema(schema_with = super::text::version))]
        version: String,
        #[cfg_attr(feature = "openapi", schema(schema_with = super::text::image_digest))]
        artifact: String,
    },
}

impl SetUpgradeRequest {
    /// The kind it is for, and the upgrade spec executors of that kind are offered.
    pub fn into_spec(self) -> (ExecutorKind, UpgradeSpec) {
        match self {
            SetUpgradeRequest::Agent { channel, version, artifact, sha256 } => {
                (ExecutorKind::Agent, UpgradeSpec { channel, version, artifact, sha256: Some(sha256.to_ascii_lowercase()) })
            }
            SetUpgradeRequest::Operator { channel, version, artifact } => (ExecutorKind::Operator, UpgradeSpec { channel, version, artifact, sha256: None }),
        }
    }
}

/// A notification channel as the API shows it (its secret never: only whether it has one).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelView {
    pub id: String,
    pub name: String,
    pub kind: crate::alerts::ChannelKind,
    pub url: String,
    pub enabled: bool,
    /// Whether notifications are signed (webhook, Slack, Alertmanager) or carry a routing key (PagerDuty).
    pub has_secret: bool,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// A new channel. `secret` is write-only: the HMAC-SHA256 key of the
/// signature header, or PagerDuty's routing key (required there).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateChannelRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: String,
    pub kind: crate::alerts::ChannelKind,
    /// `http://` or `https://`; for Alertmanager its `/api/v2/alerts`.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 2000))]
    pub url: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 500))]
    pub secret: Option<String>,
}

fn yes() -> bool {
    true
}

/// A change to a channel: what is given changes (`secret: ""` removes it).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateChannelRequest {
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 2000))]
    pub url: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub secret: Option<String>,
}

/// One delivery attempt of a notification to a channel.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: String,
    pub channel_id: String,
    pub channel_name: String,
    pub incident_id: String,
    pub rule: String,
    /// The transition delivered: `open`, `resolved` or `test`.
    pub status: String,
    pub idempotency_key: String,
    /// 1 for the first attempt of this notification.
    pub attempt: u32,
    pub at: Timestamp,
    pub latency_ms: u64,
    pub response_code: Option<u16>,
    pub error: Option<String>,
    pub delivered: bool,
    /// Failed, and no retry follows (attempts used up, channel gone or disabled).
    pub final_failure: bool,
    pub replay_of: Option<String>,
}

/// A node's alert policy: its overrides and what applies.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAlertPolicyView {
    pub node: String,
    #[serde(rename = "override")]
    pub overrides: crate::alerts::NodeAlertOverride,
    pub effective: crate::alerts::NodePolicy,
}

/// A delivery queued again by hand.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayQueued {
    /// Its place in the outbox; its attempts appear under deliveries.
    pub queued: u64,
}
