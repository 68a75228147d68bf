//! API keys: issued (the secret shown once), stored hashed, revoked.

use super::credentials::new_api_key;
use super::events::{self, data, NewEvent};
use super::{Result, ServiceError};
use crate::state::AppState;
use crate::store::model::{key_view, ApiKey, ApiKeyView, KeyUsage};
use crate::store::{Write, API_KEYS, KEY_USAGE};
use novacula_core::validate::valid_name;
use novacula_core::wire::{CreateKeyRequest, CreatedKey};
use novacula_core::{events as ev, Timestamp};

/// Create and store a key; returns the full secret (never stored) and the record.
pub fn issue(
    store: &crate::Store,
    entropy: &dyn novacula_core::entropy::Entropy,
    org: &str,
    label: String,
    executor: Option<String>,
    created_by: &str,
    now: Timestamp,
) -> Result<(String, ApiKey), crate::store::StoreError> {
    let (id, full, hash) = new_api_key(entropy);
    let record = ApiKey {
        id: id.clone(),
        org_id: org.to_string(),
        label,
        executor,
        secret_hash: hash,
        created_at: now,
        created_by: created_by.to_string(),
        revoked_at: None,
    };
    store.write(|w| {
        w.put(API_KEYS, &id, &record)?;
        events::record(
            w,
            org,
            now,
            NewEvent {
                kind: ev::API_KEY_CREATED,
                node: None,
                executor: record.executor.as_deref(),
                actor: &format!("user:{created_by}"),
                data: data([("keyId", id.clone())]),
            },
        )
    })?;
    Ok((full, record))
}

/// Revoke inside a transaction; `false` if it was already revoked.
pub fn revoke_in(w: &mut Write, key: &mut ApiKey, now: Timestamp, actor: &str) -> crate::store::Result<bool> {
    if key.revoked_at.is_some() {
        return Ok(false);
    }
    key.revoked_at = Some(now);
    w.put(API_KEYS, &key.id.clone(), &*key)?;
    events::record(
        w,
        &key.org_id.clone(),
        now,
        NewEvent { kind: ev::API_KEY_REVOKED, node: None, executor: key.executor.as_deref(), actor, data: data([("keyId", key.id.clone())]) },
    )?;
    Ok(true)
}

/// A new key of `org`, created by `username`.
pub fn create(s: &AppState, org: &str, username: &str, req: CreateKeyRequest) -> Result<CreatedKey> {
    if let Some(e) = req.executor.as_deref().filter(|e| !valid_name(e)) {
        return Err(ServiceError::BadInput(format!("executor name {e:?} must be a lowercase DNS label")));
    }
    if req.label.chars().count() > 200 {
        return Err(ServiceError::BadInput("label must be at most 200 characters".into()));
    }
    let (full, record) = issue(&s.store, s.entropy.as_ref(), org, req.label, req.executor, username, s.now())?;
    Ok(CreatedKey { key: full, record: key_view(&record, None) })
}

/// Every key of `org`, with its last use.
pub fn list(s: &AppState, org: &str) -> Result<Vec<ApiKeyView>> {
    Ok(s.store.read(|r| {
        let all: Vec<(String, ApiKey)> = r.scan(API_KEYS, "")?;
        let keys: Vec<ApiKey> = all.into_iter().map(|(_, k)| k).filter(|k| k.org_id == org).collect();
        let usage: Vec<Option<KeyUsage>> = r.get_many(KEY_USAGE, &keys.iter().map(|k| k.id.clone()).collect::<Vec<_>>())?;
        Ok::<_, crate::store::StoreError>(keys.iter().zip(usage).map(|(k, u)| key_view(k, s.liveness.key_usage(&k.id, u))).collect())
    })?)
}

/// Revoke key `id` of `org` (again: a no-op).
pub fn revoke(s: &AppState, org: &str, id: &str, actor: &str) -> Result<ApiKeyView> {
    let now = s.now();
    s.store.write(|w| {
        let mut key: ApiKey =
            w.get(API_KEYS, id)?.filter(|k: &ApiKey| k.org_id == org).ok_or_else(|| ServiceError::NotFound(format!("API key {id:?} not found")))?;
        revoke_in(w, &mut key, now, actor)?;
        let usage = s.liveness.key_usage(id, w.get(KEY_USAGE, id)?);
        Ok(key_view(&key, usage))
    })
}
