//! Whether a `syncExecutor` call may go through: one rule for the key, the
//! executor row it upserts, and the binding between the two.
//!
//! An API key belongs to one executor: bound when it is created for a name,
//! or at its first sync. A bound key never speaks for another executor; a
//! fresh key may reconnect an existing executor (the documented way to
//! replace a lost or rotated key).

use crate::executor::ExecutorKind;

/// The API key as stored, re-read inside the sync's write transaction (so a
/// revocation that committed first always wins).
#[derive(Debug, Clone, Copy)]
pub struct KeyState<'a> {
    pub revoked: bool,
    pub bound_to: Option<&'a str>,
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
    #[error("this API key belongs to executor {bound:?}, not {name:?}")]
    BoundElsewhere { bound: String, name: String },
    #[error("this API key has not synced as an executor yet; call syncExecutor as {name:?} first")]
    Unbound { name: String },
}

/// Whether a key may poll specs or report as `name`: only once bound to it.
pub fn key_speaks_for(key: KeyState<'_>, name: &str) -> Result<(), KeyRefusal> {
    match key.bound_to {
        _ if key.revoked => Err(KeyRefusal::Revoked),
        Some(b) if b == name => Ok(()),
        Some(b) => Err(KeyRefusal::BoundElsewhere { bound: b.to_string(), name: name.to_string() }),
        None => Err(KeyRefusal::Unbound { name: name.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExecutorKind::*;

    const FRESH: KeyState<'static> = KeyState { revoked: false, bound_to: None };

    #[test]
    fn a_fresh_key_binds_at_first_sync_and_may_reconnect_an_existing_executor() {
        assert_eq!(admit_sync(FRESH, None, "e1", Agent), Ok(Admission { bind_key: true, first_sync: true }));
        let existing = ExistingExecutor { kind: Agent, deactivated: false };
        assert_eq!(admit_sync(FRESH, Some(existing), "e1", Agent), Ok(Admission { bind_key: true, first_sync: false }));
    }

    #[test]
    fn a_bound_key_never_speaks_for_another_executor() {
        let bound = KeyState { revoked: false, bound_to: Some("e1") };
        assert_eq!(admit_sync(bound, None, "e1", Agent), Ok(Admission { bind_key: false, first_sync: true }));
        assert!(matches!(admit_sync(bound, None, "e2", Agent), Err(SyncRefusal::KeyBoundElsewhere { .. })));
        assert!(key_speaks_for(bound, "e1").is_ok());
        assert!(key_speaks_for(bound, "e2").is_err());
        assert!(key_speaks_for(FRESH, "e1").unwrap_err().to_string().contains("syncExecutor"));
    }

    #[test]
    fn revoked_deactivated_and_kind_changes_are_refused() {
        let revoked = KeyState { revoked: true, bound_to: Some("e1") };
        assert_eq!(admit_sync(revoked, None, "e1", Agent), Err(SyncRefusal::KeyRevoked));
        assert!(key_speaks_for(revoked, "e1").is_err());
        let off = ExistingExecutor { kind: Agent, deactivated: true };
        assert!(matches!(admit_sync(FRESH, Some(off), "e1", Agent), Err(SyncRefusal::Deactivated { .. })));
        let op = ExistingExecutor { kind: Operator, deactivated: false };
        assert!(matches!(admit_sync(FRESH, Some(op), "e1", Agent), Err(SyncRefusal::KindChanged { .. })));
    }
}
