//! Whether a `syncExecutor` call may go through: one rule for the key, the
//! executor row it upserts, and the binding between the two.
//!
//! An API key belongs to one executor: bound when it is created for a name,
//! or at its first sync. A bound key never speaks for another executor; a
//! fresh key may reconnect an existing executor (the documented way to
//! replace a lost or rotated key).

use crate::executor::ExecutorKind;
use crate::Timestamp;

/// The API key as stored, re-read inside the sync's write transaction (so a
/// revocation that committed first always wins).
#[derive(Debug, Clone, Copy)]
pub struct KeyState<'a> {
    pub revoked: bool,
    /// Past its `expires_at`.
    pub expired: bool,
    pub bound_to: Option<&'a str>,
}

impl<'a> KeyState<'a> {
    /// A key revoked at `revoked_at` (if ever) and valid until `expires_at`
    /// (if it expires), as of `now`.
    pub fn at(revoked_at: Option<Timestamp>, expires_at: Option<Timestamp>, bound_to: Option<&'a str>, now: Timestamp) -> Self {
        KeyState { revoked: revoked_at.is_some(), expired: expires_at.is_some_and(|t| now >= t), bound_to }
    }

    /// Whether the key authenticates at all (bound anywhere or not).
    pub fn usable(self) -> Result<(), KeyRefusal> {
        match () {
            _ if self.revoked => Err(KeyRefusal::Revoked),
            _ if self.expired => Err(KeyRefusal::Expired),
            _ => Ok(()),
        }
    }
}

/// The executor row the sync would update, if it exists.
#[derive(Debug, Clone, Copy)]
pub struct ExistingExecutor {
    pub kind: ExecutorKind,
    pub deactivated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The key is fresh: bind it to this executor now.
    pub bind_key: bool,
    /// No row existed: this is the executor's first sync.
    pub first_sync: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncRefusal {
    #[error("API key has been revoked")]
    KeyRevoked,
    #[error("API key has expired; rotate it (POST /api/v1/keys/{{id}}/rotate) and give the executor the new one")]
    KeyExpired,
    #[error("this API key belongs to executor {bound:?}, not {name:?}")]
    KeyBoundElsewhere { bound: String, name: String },
    #[error("executor {name:?} has been deactivated; an owner or admin can reactivate it")]
    Deactivated { name: String },
    #[error("executor {name:?} is registered as kind {registered}; kind cannot change (got {got})")]
    KindChanged { name: String, registered: ExecutorKind, got: ExecutorKind },
}

pub fn admit_sync(key: KeyState<'_>, existing: Option<ExistingExecutor>, name: &str, kind: ExecutorKind) -> Result<Admission, SyncRefusal> {
    if key.revoked {
        return Err(SyncRefusal::KeyRevoked);
    }
    if key.expired {
        return Err(SyncRefusal::KeyExpired);
    }
    if let Some(bound) = key.bound_to.filter(|b| *b != name) {
        return Err(SyncRefusal::KeyBoundElsewhere { bound: bound.to_string(), name: name.to_string() });
    }
    if let Some(e) = existing {
        if e.deactivated {
            return Err(SyncRefusal::Deactivated { name: name.to_string() });
        }
        if e.kind != kind {
            return Err(SyncRefusal::KindChanged { name: name.to_string(), registered: e.kind, got: kind });
        }
    }
    Ok(Admission { bind_key: key.bound_to.is_none(), first_sync: existing.is_none() })
}

/// Why a key may not speak for an executor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    #[error("API key has been revoked")]
    Revoked,
    #[error("API key has expired")]
    Expired,
    #[error("this API key belongs to executor {bound:?}, not {name:?}")]
    BoundElsewhere { bound: String, name: String },
    #[error("this API key has not synced as an executor yet; call syncExecutor as {name:?} first")]
    Unbound { name: String },
}

/// Whether a key may poll specs or report as `name`: only once bound to it.
pub fn key_speaks_for(key: KeyState<'_>, name: &str) -> Result<(), KeyRefusal> {
    key.usable()?;
    match key.bound_to {
        Some(b) if b == name => Ok(()),
        Some(b) => Err(KeyRefusal::BoundElsewhere { bound: b.to_string(), name: name.to_string() }),
        None => Err(KeyRefusal::Unbound { name: name.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExecutorKind::*;

    const FRESH: KeyState<'static> = KeyState { revoked: false, expired: false, bound_to: None };

    #[test]
    fn a_fresh_key_binds_at_first_sync_and_may_reconnect_an_existing_executor() {
        assert_eq!(admit_sync(FRESH, None, "e1", Agent), Ok(Admission { bind_key: true, first_sync: true }));
        let existing = ExistingExecutor { kind: Agent, deactivated: false };
        assert_eq!(admit_sync(FRESH, Some(existing), "e1", Agent), Ok(Admission { bind_key: true, first_sync: false }));
    }

    #[test]
    fn a_bound_key_never_speaks_for_another_executor() {
        let bound = KeyState { revoked: false, expired: false, bound_to: Some("e1") };
        assert_eq!(admit_sync(bound, None, "e1", Agent), Ok(Admission { bind_key: false, first_sync: true }));
        assert!(matches!(admit_sync(bound, None, "e2", Agent), Err(SyncRefusal::KeyBoundElsewhere { .. })));
        assert!(key_speaks_for(bound, "e1").is_ok());
        assert!(key_speaks_for(bound, "e2").is_err());
        assert!(key_speaks_for(FRESH, "e1").unwrap_err().to_string().contains("syncExecutor"));
    }

    #[test]
    fn revoked_deactivated_and_kind_changes_are_refused() {
        let revoked = KeyState { revoked: true, expired: false, bound_to: Some("e1") };
        assert_eq!(admit_sync(revoked, None, "e1", Agent), Err(SyncRefusal::KeyRevoked));
        assert!(key_speaks_for(revoked, "e1").is_err());
        let off = ExistingExecutor { kind: Agent, deactivated: true };
        assert!(matches!(admit_sync(FRESH, Some(off), "e1", Agent), Err(SyncRefusal::Deactivated { .. })));
        let op = ExistingExecutor { kind: Operator, deactivated: false };
        assert!(matches!(admit_sync(FRESH, Some(op), "e1", Agent), Err(SyncRefusal::KindChanged { .. })));
    }

    #[test]
    fn a_key_expires_at_its_instant() {
        let (t, e) = (Timestamp(1_000), Some(Timestamp(2_000)));
        assert!(!KeyState::at(None, e, Some("e1"), t).expired);
        assert!(KeyState::at(None, e, Some("e1"), Timestamp(2_000)).expired);
        assert!(!KeyState::at(None, None, Some("e1"), Timestamp(u64::MAX)).expired, "a key without expiry never expires");
        let old = KeyState::at(None, e, Some("e1"), Timestamp(3_000));
        assert_eq!(admit_sync(old, None, "e1", Agent), Err(SyncRefusal::KeyExpired));
        assert_eq!(key_speaks_for(old, "e1"), Err(KeyRefusal::Expired));
        assert_eq!(KeyState::at(Some(t), e, None, t).usable(), Err(KeyRefusal::Revoked), "revoked says so first");
    }
}

/// Why an executor cannot be deleted now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteRefusal {
    #[error("the executor still has {0} node(s) (deleted ones count until torn down): delete them first")]
    HasNodes(usize),
    #[error("the executor is online: stop it, or deactivate it (which revokes its keys), first")]
    Online,
}

/// An executor may be deleted, freeing its name, once it has no node left
/// (not even one being torn down) and is not syncing: deactivated or offline.
/// Its keys are revoked with it, so it cannot come back by itself.
pub fn deletable(live_nodes: usize, online: bool, deactivated: bool) -> Result<(), DeleteRefusal> {
    if live_nodes > 0 {
        return Err(DeleteRefusal::HasNodes(live_nodes));
    }
    if online && !deactivated {
        return Err(DeleteRefusal::Online);
    }
    Ok(())
}

#[cfg(test)]
mod deletion_tests {
    use super::*;

    #[test]
    fn only_an_idle_executor_with_no_nodes_is_deleted() {
        assert_eq!(deletable(1, false, true), Err(DeleteRefusal::HasNodes(1)));
        assert_eq!(deletable(0, true, false), Err(DeleteRefusal::Online));
        assert_eq!(deletable(0, true, true), Ok(()), "deactivated: its syncs are refused anyway");
        assert_eq!(deletable(0, false, false), Ok(()));
    }
}
