//! API keys: issued (the secret shown once), stored hashed, expiring,
//! rotated, revoked, deleted.

use super::audit::{self, Who};
use super::credentials::new_api_key;
use super::events::{self, data, NewEvent};
use super::{Result, ServiceError};
use crate::state::AppState;
use crate::store::model::{key_view, ApiKey, ApiKeyView, KeyUsage};
use crate::store::{Write, API_KEYS, KEY_USAGE};
use novacula_core::audit::Action;
use novacula_core::validate::valid_name;
use novacula_core::wire::{CreateKeyRequest, CreatedKey, KEY_LIFETIME_DAYS_DEFAULT, KEY_LIFETIME_DAYS_MAX};
use novacula_core::{events as ev, Timestamp};

/// A fresh key: the full secret (shown once, never stored) and its record.
fn new_key(
    entropy: &dyn novacula_core::entropy::Entropy,
    org: &str,
    label: String,
    executor: Option<String>,
    expires_at: Option<Timestamp>,
    created_by: &str,
    now: Timestamp,
) -> (String, ApiKey) {
    let (id, full, hash) = new_api_key(entropy);
    let record = ApiKey {
        id,
        org_id: org.to_string(),
        label,
        executor,
        secret_hash: hash,
        created_at: now,
        created_by: created_by.to_string(),
        revoked_at: None,
        expires_at,
    };
    (full, record)
}

/// Create and store a key that never expires (the simulator's fleets);
/// returns the full secret (never stored) and the record.
pub fn issue(
    store: &crate::Store,
    entropy: &dyn novacula_core::entropy::Entropy,
    org: &str,
    label: String,
    executor: Option<String>,
    created_by: &str,
    now: Timestamp,
) -> Result<(String, ApiKey), crate::store::StoreError> {
    let (full, record) = new_key(entropy, org, label, executor, None, created_by, now);
    let who = Who::user(created_by, novacula_core::audit::Source::Api);
    store.write(|w| {
        if let Err(e) = insert(w, &record)? {
            return Err(crate::store::StoreError::Engine(e.to_string().into()));
        }
        let audited = audit::record(w, org, now, &who, Action::KeyCreated, &record.id, audit::details([("expires", "never".into())]))?;
        events::record(w, org, now, created_event(&record, ev::API_KEY_CREATED, &who.event_actor(), Some(("audit", audited.to_string()))))
    })?;
    Ok((full, record))
}

/// Store a new key, never over another one: ids are 48 random bits, so a
/// draw meets a taken id about once in 3×10⁸ with a million keys; rare, but
/// it would replace another organization's key.
fn insert(w: &mut Write, record: &ApiKey) -> crate::store::Result<Result<()>> {
    if w.get::<ApiKey>(API_KEYS, &record.id)?.is_some() {
        tracing::warn!(id = %record.id, "a new API key drew a taken id; refused, the caller retries");
        return Ok(Err(ServiceError::Busy("a new key drew an id already in use; try again".into())));
    }
    w.put(API_KEYS, &record.id, record).map(Ok)
}

fn created_event<'a>(record: &'a ApiKey, kind: &'static str, actor: &'a str, extra: Option<(&'static str, String)>) -> NewEvent<'a> {
    let mut d = data([("keyId", record.id.clone())]);
    if let Some((k, v)) = extra {
        d.insert(k.to_string(), v);
    }
    NewEvent { kind, node: None, executor: record.executor.as_deref(), actor, data: d }
}

/// Revoke inside a transaction; `false` if it was already revoked.
pub fn revoke_in(w: &mut Write, key: &mut ApiKey, now: Timestamp, who: &Who) -> crate::store::Result<bool> {
    if key.revoked_at.is_some() {
        return Ok(false);
    }
    key.revoked_at = Some(now);
    w.put(API_KEYS, &key.id.clone(), &*key)?;
    let org = key.org_id.clone();
    let audited = audit::record(w, &org, now, who, Action::KeyRevoked, &key.id, audit::details([("executor", key.executor.clone().unwrap_or_default())]))?;
    let actor = who.event_actor();
    events::record(
        w,
        &org,
        now,
        NewEvent {
            kind: ev::API_KEY_REVOKED,
            node: None,
            executor: key.executor.as_deref(),
            actor: &actor,
            data: data([("keyId", key.id.clone()), ("audit", audited.to_string())]),
        },
    )?;
    Ok(true)
}

/// When a key asked for by `req` at `now` stops working.
fn expiry(req: &CreateKeyRequest, now: Timestamp) -> Result<Option<Timestamp>> {
    match (req.never_expires, req.expires_in_days) {
        // Well-formed (the document cannot say "not both"), but not valid: 422.
        (true, Some(_)) => Err(ServiceError::Invalid { message: "give either expiresInDays or neverExpires, not both".into(), details: vec![] }),
        (true, None) => Ok(None),
        (false, Some(d)) if d == 0 || d > KEY_LIFETIME_DAYS_MAX => {
            Err(ServiceError::BadInput(format!("expiresInDays must be from 1 to {KEY_LIFETIME_DAYS_MAX}")))
        }
        (false, days) => Ok(Some(now.plus(DAY * days.unwrap_or(KEY_LIFETIME_DAYS_DEFAULT)))),
    }
}

const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A new key of `org`, created by `username`.
pub fn create(s: &AppState, org: &str, who: &Who, req: CreateKeyRequest) -> Result<CreatedKey> {
    if let Some(e) = req.executor.as_deref().filter(|e| !valid_name(e)) {
        return Err(ServiceError::BadInput(format!("executor name {e:?} must be a lowercase DNS label")));
    }
    if req.label.chars().count() > 200 {
        return Err(ServiceError::BadInput("label must be at most 200 characters".into()));
    }
    let now = s.now();
    let expires_at = expiry(&req, now)?;
    let (full, record) = new_key(s.entropy.as_ref(), org, req.label, req.executor, expires_at, &who.name, now);
    let actor = who.event_actor();
    s.store.write(|w| {
        insert(w, &record)??;
        let details =
            audit::details([("executor", record.executor.clone().unwrap_or_default()), ("expires", expires_at.map_or("never".into(), Timestamp::utc_date))]);
        let audited = audit::record(w, org, now, who, Action::KeyCreated, &record.id, details)?;
        Ok::<_, ServiceError>(events::record(w, org, now, created_event(&record, ev::API_KEY_CREATED, &actor, Some(("audit", audited.to_string()))))?)
    })?;
    Ok(CreatedKey { key: full, record: key_view(&record, None, now) })
}

/// Key `id` of `org`, or 404.
fn key_of(w: &Write, org: &str, id: &str) -> Result<ApiKey> {
    w.get(API_KEYS, id)?.filter(|k: &ApiKey| k.org_id == org).ok_or_else(|| ServiceError::NotFound(format!("API key {id:?} not found")))
}

/// Every key of `org`, with its last use.
pub fn list(s: &AppState, org: &str) -> Result<Vec<ApiKeyView>> {
    let now = s.now();
    Ok(s.store.read(|r| {
        let all: Vec<(String, ApiKey)> = r.scan(API_KEYS, "")?;
        let keys: Vec<ApiKey> = all.into_iter().map(|(_, k)| k).filter(|k| k.org_id == org).collect();
        let usage: Vec<Option<KeyUsage>> = r.get_many(KEY_USAGE, &keys.iter().map(|k| k.id.clone()).collect::<Vec<_>>())?;
        Ok::<_, crate::store::StoreError>(keys.iter().zip(usage).map(|(k, u)| key_view(k, s.liveness.key_usage(&k.id, u), now)).collect())
    })?)
}

/// Revoke key `id` of `org` (again: a no-op).
pub fn revoke(s: &AppState, org: &str, id: &str, who: &Who) -> Result<ApiKeyView> {
    let now = s.now();
    s.store.write(|w| {
        let mut key = key_of(w, org, id)?;
        revoke_in(w, &mut key, now, who)?;
        let usage = s.liveness.key_usage(id, w.get(KEY_USAGE, id)?);
        Ok(key_view(&key, usage, now))
    })
}

/// Replace key `id` at once: a new key with the same executor and lifetime
/// (its label gets today's date) and the old one revoked, in one transaction.
pub fn rotate(s: &AppState, org: &str, id: &str, who: &Who) -> Result<CreatedKey> {
    let now = s.now();
    let actor = who.event_actor();
    s.store.write(|w| {
        let mut old = key_of(w, org, id)?;
        if old.revoked_at.is_some() {
            return Err(ServiceError::Conflict(format!("API key {id:?} is revoked; create a new key instead")));
        }
        let lifetime = old.expires_at.map(|t| t.since(old.created_at));
        let base = old.label.split(" (rotated ").next().unwrap_or_default();
        let label: String = format!("{base} (rotated {})", now.utc_date()).chars().take(200).collect();
        let expires_at = lifetime.map(|l| now.plus(l));
        let (full, new) = new_key(s.entropy.as_ref(), org, label, old.executor.clone(), expires_at, &who.name, now);
        insert(w, &new)??;
        let audited = audit::record(w, org, now, who, Action::KeyRotated, &new.id, audit::details([("replaces", old.id.clone())]))?;
        let mut event = created_event(&new, ev::API_KEY_ROTATED, &actor, Some(("replaces", old.id.clone())));
        event.data.insert("audit".into(), audited.to_string());
        events::record(w, org, now, event)?;
        revoke_in(w, &mut old, now, who)?;
        Ok(CreatedKey { key: full, record: key_view(&new, None, now) })
    })
}

/// Remove the record of a revoked key (revoke first, delete second).
pub fn delete(s: &AppState, org: &str, id: &str, who: &Who) -> Result<()> {
    let now = s.now();
    s.store.write(|w| {
        let key = key_of(w, org, id)?;
        if key.revoked_at.is_none() {
            return Err(ServiceError::Conflict(format!("API key {id:?} is active; revoke it first (POST /api/v1/keys/{id}/revoke)")));
        }
        w.remove(API_KEYS, id)?;
        w.remove(KEY_USAGE, id)?;
        let audited = audit::record(w, org, now, who, Action::KeyDeleted, id, Default::default())?;
        events::record(w, org, now, created_event(&key, ev::API_KEY_DELETED, &who.event_actor(), Some(("audit", audited.to_string()))))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::{Config, Store};

    #[test]
    fn a_new_key_never_replaces_one_that_drew_the_same_id() {
        let store = Store::for_tests();
        crate::services::orgs::create_org_with_owner(&store, &novacula_core::entropy::Seeded::new(1), Timestamp(1), "acme", "alice", "password-1").unwrap();
        // A generator that always draws the same: the second key's id is the first's.
        struct Same;
        impl novacula_core::entropy::Entropy for Same {
            fn fill(&self, buf: &mut [u8]) {
                buf.fill(7);
            }
        }
        let a = AppState::with_entropy(store, ManualClock::new(Timestamp(1)), Same, Config::default());
        let store = &a.store;
        let who = Who::user("alice", novacula_core::audit::Source::Api);
        let first = create(&a, "acme", &who, CreateKeyRequest::default()).unwrap();
        assert!(matches!(create(&a, "acme", &who, CreateKeyRequest::default()), Err(ServiceError::Busy(_))));
        assert!(matches!(rotate(&a, "acme", &first.record.id, &who), Err(ServiceError::Busy(_))), "nor a rotation");
        let kept: ApiKey = store.read(|r| r.get(API_KEYS, &first.record.id)).unwrap().unwrap();
        let secret = first.key.rsplit('_').next().unwrap();
        assert_eq!(kept.secret_hash, crate::services::credentials::sha256_hex(secret), "the first key still works");
        assert_eq!(kept.revoked_at, None, "the failed rotation revoked nothing");
        assert_eq!(list(&a, "acme").unwrap().len(), 1);
    }
}
