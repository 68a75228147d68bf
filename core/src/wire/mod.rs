//! Every message of the HTTP API: the executor protocol here, the user API in [`api`] (re-exported).

mod api;
#[cfg(feature = "openapi")]
pub mod text;
pub use api::*;

use crate::compat::CompatStatus;
use crate::executor::{Channel, ExecutorCapabilities, ExecutorKind};
use crate::observed::ObservedNodeState;
use crate::spec::DesiredNode;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Header carrying the API key of an executor or a user.
pub const AUTH_HEADER: &str = "authorization";

/// `POST /api/v1/executors/sync`: heartbeat + self-description, every 5 s.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncExecutorRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = text::name))]
    pub name: String,
    pub kind: ExecutorKind,
    /// The executor binary's own version (semver).
    #[cfg_attr(feature = "openapi", schema(schema_with = text::version))]
    pub version: String,
    #[serde(default)]
    pub channel: Channel,
    /// What this executor can run. Sent on its first sync and whenever they
    /// change; otherwise only the digest the control plane answered with is
    /// (8 KiB less per heartbeat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<ExecutorCapabilities>,
    /// The `capabilitiesDigest` a control plane answered the executor's last
    /// full sync with; required when `capabilities` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities_digest: Option<String>,
}

/// What a sync says of the executor's capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncCapabilities<'a> {
    Sent(&'a ExecutorCapabilities),
    /// Only their digest: the control plane must hold capabilities with it.
    Digest(&'a str),
}

/// A sync with neither capabilities nor a well-formed digest of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sync carries capabilities, or capabilitiesDigest (64 hex digits) of capabilities sent before")]
pub struct MissingCapabilities;

impl SyncExecutorRequest {
    /// The capabilities when sent (their digest is then ignored), else the digest.
    pub fn capabilities(&self) -> Result<SyncCapabilities<'_>, MissingCapabilities> {
        match (&self.capabilities, &self.capabilities_digest) {
            (Some(c), _) => Ok(SyncCapabilities::Sent(c)),
            (None, Some(d)) if is_sha256_hex(d) => Ok(SyncCapabilities::Digest(d)),
            _ => Err(MissingCapabilities),
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncExecutorResponse {
    pub executor_id: String,
    pub server_version: String,
    pub compat: CompatStatus,
    /// Set when the channel has a release other than the executor's version.
    pub upgrade: Option<UpgradeSpec>,
    pub server_time: Timestamp,
    /// [`ExecutorCapabilities::digest`] of the capabilities this control
    /// plane holds for the executor, as it computed it: what a later sync
    /// sends instead of them. Absent from control planes that take no digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities_digest: Option<String>,
    /// Processes whose logs someone watches: push their lines (`POST /executor/logs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_watches: Vec<crate::logs::LogWatch>,
}

/// A release the executor should move to.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeSpec {
    pub channel: Channel,
    pub version: String,
    /// Agent: the new binary, a file in the host's own release directory
    /// (`release_dir` in agent.toml). Operator: an image pinned by digest
    /// (`repository@sha256:...`) of the operator's own repository.
    pub artifact: String,
    /// Agent: hex SHA-256 of the binary; the agent installs nothing else.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// Why an upgrade spec cannot be offered to an executor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeSpecError {
    #[error(transparent)]
    Version(#[from] crate::version::VersionError),
    #[error("artifact must name the release's file (agent) or image (operator), without spaces")]
    Artifact,
    #[error("sha256 (64 hex digits) of the agent binary is required: agents install nothing else")]
    Sha256Required,
    #[error("an operator image must be pinned by digest: <repository>@sha256:<64 hex digits>")]
    ImageNotPinned,
}

impl UpgradeSpec {
    /// What a release must pin for an executor of `kind` to accept it.
    pub fn check(&self, kind: crate::ExecutorKind) -> Result<(), UpgradeSpecError> {
        self.version.parse::<crate::Version>()?;
        if self.artifact.is_empty() || self.artifact.chars().any(|c| c.is_whitespace() || crate::validate::is_forbidden_control(c)) {
            return Err(UpgradeSpecError::Artifact);
        }
        match kind {
            crate::ExecutorKind::Agent => match &self.sha256 {
                Some(h) if is_sha256_hex(h) => Ok(()),
                _ => Err(UpgradeSpecError::Sha256Required),
            },
            crate::ExecutorKind::Operator => match self.artifact.rsplit_once("@sha256:") {
                Some((repo, digest)) if !repo.is_empty() && !repo.contains('@') && is_sha256_hex(digest) => Ok(()),
                _ => Err(UpgradeSpecError::ImageNotPinned),
            },
        }
    }
}

/// The regular expressions the API document states, kept beside the rules they describe.
pub mod patterns {
    /// A DNS label: what `validate::valid_name` accepts.
    pub const NAME: &str = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";
    /// What `Version` parses.
    pub const VERSION: &str = "^v?(0|[1-9][0-9]{0,18})\\.(0|[1-9][0-9]{0,18})\\.(0|[1-9][0-9]{0,18})(-(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(\\.(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?(\\+[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?$";
    pub const SHA256: &str = "^[0-9a-fA-F]{64}$";
    /// A release file name or image reference: no spaces or control characters.
    pub const ARTIFACT: &str = "^[^\\s\\x00-\\x1f\\x7f]+$";
    /// An image pinned by digest.
    pub const IMAGE_DIGEST: &str = "^[^\\s\\x00-\\x1f\\x7f@]+@sha256:[0-9a-fA-F]{64}$";
}

pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `GET /api/v1/executors/specs?since=<cursor>&waitSecs=<n>`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecPollResponse {
    /// Pass back as `since` to wait for the next change.
    pub cursor: u64,
    /// Every node assigned to the executor, deleted ones included until torn
    /// down; or, when `changesSince` is set, only those that changed since it.
    pub nodes: Vec<DesiredNode>,
    /// Set when the answer holds only the changes since this cursor (the
    /// poll's `since`, asked with `changes=true`); absent for the whole set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes_since: Option<u64>,
    /// With `changesSince`: nodes torn down since, no longer the executor's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gone: Vec<String>,
}

impl SpecPollResponse {
    /// The answer to a poll for the changes since `cursor` when it is still
    /// the executor's cursor: none (at 0, no node ever: the whole set, empty).
    pub fn unchanged(cursor: u64) -> SpecPollResponse {
        SpecPollResponse { cursor, nodes: Vec::new(), changes_since: (cursor > 0).then_some(cursor), gone: Vec::new() }
    }

    /// Changes since `cursor` that name no node: the set known as of `cursor`
    /// stands (the common answer, a long-poll that timed out).
    pub fn changes_nothing(&self, cursor: u64) -> bool {
        self.changes_since == Some(cursor) && self.nodes.is_empty() && self.gone.is_empty()
    }

    /// The executor's nodes after this answer, given those it had as of
    /// `cursor` (`None`: none known yet), by name. Changes apply only to the
    /// set they were computed from: `None` for changes to another one (poll
    /// the whole set again; never take them as the whole set, which would
    /// drop the nodes they do not name).
    pub fn apply(self, known: Option<&[DesiredNode]>, cursor: u64) -> Option<Vec<DesiredNode>> {
        let mut nodes: std::collections::BTreeMap<String, DesiredNode> = match self.changes_since {
            None => std::collections::BTreeMap::new(),
            Some(since) if since == cursor => known?.iter().map(|n| (n.spec.name.clone(), n.clone())).collect(),
            Some(_) => return None,
        };
        for name in &self.gone {
            nodes.remove(name);
        }
        for n in self.nodes {
            nodes.insert(n.spec.name.clone(), n);
        }
        Some(nodes.into_values().collect())
    }
}

/// `POST /api/v1/executors/report`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportRequest {
    pub nodes: Vec<ObservedNodeState>,
    /// What happened to the nodes' processes since the last report (at most
    /// [`crate::observed::RUNTIME_EVENTS_MAX`]); sent only when there are some.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<crate::observed::RuntimeEvent>,
}

/// Body of every 4xx/5xx answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    #[serde(default)]
    pub details: Vec<String>,
    /// A spec refused: each problem with its code and the field it is about
    /// (the same problems as `details`, for programs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// One problem of a refused spec.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `chain_not_supported_by_executor`, `version_below_network_minimum`,
    /// `override_not_allowed`... (`ValidationError::code`).
    pub code: String,
    /// The spec field it is about (`clients[0].configOverrides`, `chain`).
    pub field: String,
    pub message: String,
}

impl From<&crate::validate::ValidationError> for Problem {
    fn from(e: &crate::validate::ValidationError) -> Problem {
        Problem { code: e.code().into(), field: e.field().into(), message: e.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_must_pin_their_bytes() {
        let spec = |artifact: &str, sha256: Option<&str>| UpgradeSpec {
            channel: Channel::Stable,
            version: "1.1.0".into(),
            artifact: artifact.into(),
            sha256: sha256.map(Into::into),
        };
        let h = "a".repeat(64);
        assert!(spec("novacula-agent-1.1.0", Some(&h)).check(crate::ExecutorKind::Agent).is_ok());
        assert_eq!(spec("novacula-agent-1.1.0", None).check(crate::ExecutorKind::Agent), Err(UpgradeSpecError::Sha256Required));
        assert_eq!(spec("novacula-agent-1.1.0", Some("abc")).check(crate::ExecutorKind::Agent), Err(UpgradeSpecError::Sha256Required));
        assert!(spec(&format!("ghcr.io/novacula/novacula-operator@sha256:{h}"), None).check(crate::ExecutorKind::Operator).is_ok());
        assert_eq!(spec("ghcr.io/novacula/novacula-operator:1.1.0", None).check(crate::ExecutorKind::Operator), Err(UpgradeSpecError::ImageNotPinned));
        assert_eq!(spec("a b", None).check(crate::ExecutorKind::Operator), Err(UpgradeSpecError::Artifact));
        let mut bad = spec("x", Some(&h));
        bad.version = "latest".into();
        assert!(matches!(bad.check(crate::ExecutorKind::Agent), Err(UpgradeSpecError::Version(_))));
    }

    #[test]
    fn sync_request_json_shape() {
        let req: SyncExecutorRequest = serde_json::from_str(r#"{"name":"edge-1","kind":"agent","version":"1.2.3","capabilities":{"chains":[]}}"#).unwrap();
        assert_eq!(req.channel, Channel::Stable);
        assert!(serde_json::from_str::<SyncExecutorRequest>(r#"{"name":"e","kind":"robot","version":"1.2.3","capabilities":{"chains":[]}}"#).is_err());
    }

    #[test]
    fn a_poll_answer_of_changes_applies_to_the_set_it_was_computed_from() {
        let node = |name: &str, rev: u64| DesiredNode { revision: crate::Revision(rev), spec: crate::fixtures::eth_spec(name), deleted: false };
        let names = |v: &[DesiredNode]| v.iter().map(|n| (n.spec.name.clone(), n.revision.0)).collect::<Vec<_>>();
        let known = vec![node("a", 1), node("b", 1), node("c", 1)];
        let changes =
            |since, nodes, gone: &[&str]| SpecPollResponse { cursor: 9, nodes, changes_since: since, gone: gone.iter().map(ToString::to_string).collect() };
        let after = changes(Some(5), vec![node("b", 2), node("d", 1)], &["c"]).apply(Some(&known), 5).unwrap();
        assert_eq!(names(&after), [("a".into(), 1), ("b".into(), 2), ("d".into(), 1)]);
        // computed from another cursor, or with nothing known: not applicable
        assert_eq!(changes(Some(4), vec![node("b", 2)], &[]).apply(Some(&known), 5), None);
        assert_eq!(changes(Some(5), vec![node("b", 2)], &[]).apply(None, 5), None);
        // a timed-out long-poll changes nothing; a whole set that is empty does
        assert!(changes(Some(5), vec![], &[]).changes_nothing(5));
        assert!(!changes(Some(4), vec![], &[]).changes_nothing(5));
        assert!(!changes(Some(5), vec![], &["a"]).changes_nothing(5));
        assert!(!changes(None, vec![], &[]).changes_nothing(5));
        // a whole set replaces what was known
        assert_eq!(names(&changes(None, vec![node("z", 3)], &[]).apply(Some(&known), 5).unwrap()), [("z".into(), 3)]);
        // the whole set keeps its old shape on the wire
        let json = serde_json::to_string(&changes(None, vec![], &[])).unwrap();
        assert_eq!(json, r#"{"cursor":9,"nodes":[]}"#);
    }

    #[test]
    fn a_sync_carries_capabilities_or_their_digest() {
        let caps = ExecutorCapabilities::default();
        let d = caps.digest();
        assert_eq!(d.len(), 64);
        let with = |c: Option<ExecutorCapabilities>, digest: Option<&str>| SyncExecutorRequest {
            name: "e".into(),
            kind: ExecutorKind::Agent,
            version: "1.0.0".into(),
            channel: Channel::Stable,
            capabilities: c,
            capabilities_digest: digest.map(str::to_string),
        };
        assert_eq!(with(Some(caps.clone()), Some("junk")).capabilities(), Ok(SyncCapabilities::Sent(&caps)));
        assert_eq!(with(None, Some(&d)).capabilities(), Ok(SyncCapabilities::Digest(&d)));
        assert_eq!(with(None, Some("abc")).capabilities(), Err(MissingCapabilities));
        assert_eq!(with(None, None).capabilities(), Err(MissingCapabilities));
        // a digest-only sync is small on the wire, and the digest follows the content
        let json = serde_json::to_string(&with(None, Some(&d))).unwrap();
        assert!(!json.contains("\"capabilities\""), "{json}");
        let mut other = caps.clone();
        other.storage_classes = Some(vec!["fast".into()]);
        assert_ne!(other.digest(), d);
    }
}
