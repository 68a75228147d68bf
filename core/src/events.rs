//! Event kinds of the append-only feed.

pub const NODE_CREATED: &str = "node.created";
pub const NODE_UPDATED: &str = "node.updated";
pub const NODE_LIFECYCLE_REQUESTED: &str = "node.lifecycle.requested";
pub const NODE_LIFECYCLE_TRANSITION: &str = "node.lifecycle.transition";
pub const NODE_DELETED: &str = "node.deleted";
pub const NODE_DOWN: &str = "alert.node_down";
pub const NODE_RECOVERED: &str = "alert.node_down.resolved";
pub const EXECUTOR_CONNECTED: &str = "executor.connected";
/// An executor stopped syncing: one event for it, whatever its node count.
pub const EXECUTOR_OFFLINE: &str = "executor.offline";
pub const EXECUTOR_DEACTIVATED: &str = "executor.deactivated";
pub const EXECUTOR_REACTIVATED: &str = "executor.reactivated";
pub const EXECUTOR_UPGRADE_SET: &str = "executor.upgrade.set";
pub const API_KEY_CREATED: &str = "apikey.created";
pub const API_KEY_REVOKED: &str = "apikey.revoked";
/// A key replaced by a new one (`keyId`: the new, `replaces`: the old, revoked).
pub const API_KEY_ROTATED: &str = "apikey.rotated";
/// A revoked key's record removed.
pub const API_KEY_DELETED: &str = "apikey.deleted";
/// A fresh key was bound to the executor of its first sync.
pub const API_KEY_BOUND: &str = "apikey.bound";
