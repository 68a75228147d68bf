//! Event kinds of the append-only feed.

pub const NODE_CREATED: &str = "node.created";
pub const NODE_UPDATED: &str = "node.updated";
pub const NODE_LIFECYCLE_REQUESTED: &str = "node.lifecycle.requested";
pub const NODE_LIFECYCLE_TRANSITION: &str = "node.lifecycle.transition";
pub const NODE_DELETED: &str = "node.deleted";
pub const NODE_DOWN: &str = "alert.node_down";
pub const NODE_RECOVERED: &str = "alert.node_down.resolved";
/// An executor's first sync.
pub const EXECUTOR_CONNECTED: &str = "executor.connected";
/// An executor syncs again after it went silent.
pub const EXECUTOR_RECONNECTED: &str = "executor.reconnected";
/// An executor stopped syncing: one event for it, whatever its node count.
pub const EXECUTOR_DISCONNECTED: &str = "executor.disconnected";
/// What `executor.disconnected` was called in feeds written before 1.0 (still described).
pub const EXECUTOR_OFFLINE: &str = "executor.offline";
pub const EXECUTOR_DEACTIVATED: &str = "executor.deactivated";
pub const EXECUTOR_REACTIVATED: &str = "executor.reactivated";
pub const EXECUTOR_UPGRADE_SET: &str = "executor.upgrade.set";
/// Something an executor saw happen to a node's process (`data`: process, level, message).
pub const RUNTIME_EVENT: &str = "runtime.event";
/// An executor with no nodes left was deleted; its name is free.
pub const EXECUTOR_DELETED: &str = "executor.deleted";
/// An alert rule's condition started to hold: an incident opened (`data`: rule, incident, subjectKind, subject, message).
pub const ALERT_OPENED: &str = "notification.alert.opened";
/// The condition stopped: the incident resolved by itself.
pub const ALERT_RESOLVED: &str = "notification.alert.resolved";
pub const API_KEY_CREATED: &str = "apikey.created";
pub const API_KEY_REVOKED: &str = "apikey.revoked";
/// A key replaced by a new one (`keyId`: the new, `replaces`: the old, revoked).
pub const API_KEY_ROTATED: &str = "apikey.rotated";
/// A revoked key's record removed.
pub const API_KEY_DELETED: &str = "apikey.deleted";
/// A fresh key was bound to the executor of its first sync.
pub const API_KEY_BOUND: &str = "apikey.bound";

/// How much an event matters to whoever watches the feed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Info,
    Warn,
    Error,
}

impl Level {
    /// The word the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// An event's level and a sentence a person reads, derived from what it
/// stores (its kind, node, executor and data), so every event has them,
/// those written before too.
pub fn describe(kind: &str, node: Option<&str>, executor: Option<&str>, data: &std::collections::BTreeMap<String, String>) -> (Level, String) {
    let d = |k: &str| data.get(k).map(String::as_str).unwrap_or("?");
    let node = node.unwrap_or("?");
    let exec = executor.unwrap_or("?");
    match kind {
        NODE_CREATED => (Level::Info, format!("node {node} deployed on {exec} (revision {})", d("revision"))),
        NODE_UPDATED if d("change") == "upgrade" => (Level::Info, format!("node {node}: {} client upgrade to {} requested", d("role"), d("version"))),
        NODE_UPDATED => (Level::Info, format!("node {node}: spec changed")),
        NODE_LIFECYCLE_REQUESTED => (Level::Info, format!("node {node}: {} requested", d("action"))),
        NODE_LIFECYCLE_TRANSITION => {
            let level = match d("to") {
                "error" => Level::Error,
                "stopped" if d("from") != "stopping" => Level::Warn,
                _ => Level::Info,
            };
            (level, format!("node {node}: {} -> {}", d("from"), d("to")))
        }
        NODE_DELETED => (Level::Info, format!("node {node} deleted ({})", d("teardown"))),
        NODE_DOWN => (Level::Error, format!("node {node} is down ({})", d("phase"))),
        NODE_RECOVERED => (Level::Info, format!("node {node} recovered ({})", d("phase"))),
        EXECUTOR_CONNECTED if d("first") == "true" => {
            (Level::Info, format!("executor {exec} connected for the first time ({} {}, {})", d("kind"), d("version"), d("compat")))
        }
        EXECUTOR_CONNECTED | EXECUTOR_RECONNECTED => {
            let level = if d("compat") == "in-window" { Level::Info } else { Level::Warn };
            let verb = if kind == EXECUTOR_RECONNECTED { "reconnected" } else { "connected" };
            (level, format!("executor {exec} {verb} ({} {}, {})", d("kind"), d("version"), d("compat")))
        }
        EXECUTOR_DISCONNECTED | EXECUTOR_OFFLINE => {
            (Level::Warn, format!("executor {exec} went offline ({} nodes unreachable, silent {} s)", d("nodes"), d("silentSecs")))
        }
        EXECUTOR_DEACTIVATED => (Level::Warn, format!("executor {exec} deactivated")),
        EXECUTOR_REACTIVATED => (Level::Info, format!("executor {exec} reactivated")),
        EXECUTOR_DELETED => (Level::Info, format!("executor {exec} deleted; its name is free")),
        EXECUTOR_UPGRADE_SET => (Level::Info, format!("{} executors on {} to run {}", d("kind"), d("channel"), d("version"))),
        ALERT_OPENED => {
            let level = if d("rule") == "disk_usage" { Level::Warn } else { Level::Error };
            (level, format!("{} {} {}: {} (incident {})", d("rule"), d("subjectKind"), d("subject"), d("message"), d("incident")))
        }
        ALERT_RESOLVED => (Level::Info, format!("{} {} {} resolved (incident {})", d("rule"), d("subjectKind"), d("subject"), d("incident"))),
        API_KEY_CREATED => (Level::Info, format!("API key {} created", d("keyId"))),
        API_KEY_REVOKED => (Level::Warn, format!("API key {} revoked", d("keyId"))),
        API_KEY_ROTATED => (Level::Info, format!("API key {} replaces {}", d("keyId"), d("replaces"))),
        API_KEY_DELETED => (Level::Info, format!("API key {} deleted", d("keyId"))),
        API_KEY_BOUND => (Level::Info, format!("API key {} bound to executor {exec}", d("keyId"))),
        RUNTIME_EVENT => {
            let level = match d("level") {
                "error" => Level::Error,
                "warn" => Level::Warn,
                _ => Level::Info,
            };
            (level, format!("node {node}: {}", d("message")))
        }
        other => (Level::Info, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_reads_as_a_sentence_with_a_level() {
        let data = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let down = describe(NODE_DOWN, Some("eth-1"), Some("edge"), &data(&[("phase", "error")]));
        assert_eq!(down, (Level::Error, "node eth-1 is down (error)".to_string()));
        let t = describe(NODE_LIFECYCLE_TRANSITION, Some("eth-1"), None, &data(&[("from", "running"), ("to", "stopped")]));
        assert_eq!(t.0, Level::Warn, "stopped without being asked");
        let asked = describe(NODE_LIFECYCLE_TRANSITION, Some("eth-1"), None, &data(&[("from", "stopping"), ("to", "stopped")]));
        assert_eq!(asked, (Level::Info, "node eth-1: stopping -> stopped".to_string()));
        let off = describe(EXECUTOR_OFFLINE, None, Some("edge"), &data(&[("nodes", "3"), ("silentSecs", "31")]));
        assert_eq!(off, (Level::Warn, "executor edge went offline (3 nodes unreachable, silent 31 s)".to_string()));
        assert_eq!(describe("something.new", None, None, &data(&[])), (Level::Info, "something.new".to_string()));
    }
}
