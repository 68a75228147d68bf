//! Stored-record migrations, run once inside the open transaction.
//!
//! Records are postcard (positional), so a changed struct cannot read rows
//! written before the change: each schema version keeps the shapes it
//! replaced here, and `run` rewrites old rows into the current ones.

use crate::store::model::{ApiKey, Executor, KeyUsage, UpgradeRow};
use crate::store::{Result, Write, API_KEYS, EXECUTORS, KEY_USAGE, UPGRADES};
use novacula_core::{Channel, ExecutorCapabilities, ExecutorKind, Timestamp};
use serde::{Deserialize, Serialize};

const SCHEMA_VERSION: &str = "schema_version";
/// 1: the first release. 2: key usage in its own table, keys bound to one
/// executor, program allowlists in capabilities, releases pinned by hash.
pub const CURRENT: u64 = 2;

pub fn run(w: &mut Write) -> Result<()> {
    let version = w.counter(SCHEMA_VERSION)?.max(1);
    if version < 2 {
        v1_to_v2(w)?;
    }
    w.set_counter(SCHEMA_VERSION, CURRENT)
}

/// Shapes of schema version 1.
pub mod v1 {
    use super::*;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct ApiKey {
        pub id: String,
        pub org_id: String,
        pub label: String,
        pub executor: Option<String>,
        pub secret_hash: String,
        pub created_at: Timestamp,
        pub created_by: String,
        pub revoked_at: Option<Timestamp>,
        pub last_used_at: Option<Timestamp>,
        pub last_used_by: Option<String>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct UpgradeSpec {
        pub channel: Channel,
        pub version: String,
        pub artifact: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct UpgradeRow {
        pub kind: ExecutorKind,
        pub spec: UpgradeSpec,
        pub set_at: Timestamp,
        pub set_by: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Capabilities {
        pub chains: Vec<novacula_core::executor::ChainSupport>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Executor {
        pub id: String,
        pub org_id: String,
        pub name: String,
        pub kind: ExecutorKind,
        pub version: String,
        pub channel: Channel,
        pub capabilities: Capabilities,
        pub created_at: Timestamp,
        pub updated_at: Timestamp,
        pub deactivated: bool,
        pub api_key_id: String,
    }
}

fn v1_to_v2(w: &mut Write) -> Result<()> {
    let keys: Vec<(String, v1::ApiKey)> = w.scan(API_KEYS, "")?;
    for (id, k) in keys {
        // Version 1 let an unbound key sync as any executor: bind it to the
        // one that used it last, which is the one it was given to.
        let executor = k.executor.or_else(|| k.last_used_by.clone());
        if let (Some(at), Some(by)) = (k.last_used_at, k.last_used_by) {
            w.put(KEY_USAGE, &id, &KeyUsage { at, by })?;
        }
        let key = ApiKey {
            id: k.id,
            org_id: k.org_id,
            label: k.label,
            executor,
            secret_hash: k.secret_hash,
            created_at: k.created_at,
            created_by: k.created_by,
            revoked_at: k.revoked_at,
        };
        w.put(API_KEYS, &id, &key)?;
    }
    let executors: Vec<(String, v1::Executor)> = w.scan(EXECUTORS, "")?;
    for (k, e) in executors {
        let exec = Executor {
            id: e.id,
            org_id: e.org_id,
            name: e.name,
            kind: e.kind,
            version: e.version,
            channel: e.channel,
            // Reported again at the next heartbeat; until then, no sidecar or image is allowed.
            capabilities: ExecutorCapabilities { chains: e.capabilities.chains, programs: Default::default() },
            created_at: e.created_at,
            updated_at: e.updated_at,
            deactivated: e.deactivated,
            api_key_id: e.api_key_id,
        };
        w.put(EXECUTORS, &k, &exec)?;
    }
    let upgrades: Vec<(String, v1::UpgradeRow)> = w.scan(UPGRADES, "")?;
    for (k, u) in upgrades {
        // No hash was recorded: executors refuse the release until it is set again with one.
        let spec = novacula_core::wire::UpgradeSpec { channel: u.spec.channel, version: u.spec.version, artifact: u.spec.artifact, sha256: None };
        w.put(UPGRADES, &k, &UpgradeRow { kind: u.kind, spec, set_at: u.set_at, set_by: u.set_by })?;
    }
    if !w.scan::<ApiKey>(API_KEYS, "")?.is_empty() {
        tracing::info!("migrated the database to schema version 2 (key usage, key binding, program allowlists)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreError};

    #[test]
    fn a_version_1_file_is_migrated_once_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.redb");
        let t = Timestamp(1_700_000_000_000);
        {
            // A file as version 1 wrote it.
            let s = Store::open(&path).unwrap();
            s.write(|w| {
                w.set_counter(SCHEMA_VERSION, 1)?;
                let key = |id: &str, executor: Option<&str>, used_by: Option<&str>| v1::ApiKey {
                    id: id.into(),
                    org_id: "acme".into(),
                    label: "k".into(),
                    executor: executor.map(Into::into),
                    secret_hash: "h".into(),
                    created_at: t,
                    created_by: "alice".into(),
                    revoked_at: None,
                    last_used_at: used_by.map(|_| t),
                    last_used_by: used_by.map(Into::into),
                };
                w.put(API_KEYS, "k1", &key("k1", None, Some("edge-1")))?;
                w.put(API_KEYS, "k2", &key("k2", Some("edge-2"), None))?;
                w.put(API_KEYS, "k3", &key("k3", None, None))?;
                let caps = v1::Capabilities { chains: vec![] };
                let exec = v1::Executor {
                    id: "x".into(),
                    org_id: "acme".into(),
                    name: "edge-1".into(),
                    kind: ExecutorKind::Agent,
                    version: "1.0.0".into(),
                    channel: Channel::Stable,
                    capabilities: caps,
                    created_at: t,
                    updated_at: t,
                    deactivated: false,
                    api_key_id: "k1".into(),
                };
                w.put(EXECUTORS, "acme/edge-1", &exec)?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let (k1, k2, k3, usage, exec, version) = s
            .read(|r| {
                Ok::<_, StoreError>((
                    r.get::<ApiKey>(API_KEYS, "k1")?.unwrap(),
                    r.get::<ApiKey>(API_KEYS, "k2")?.unwrap(),
                    r.get::<ApiKey>(API_KEYS, "k3")?.unwrap(),
                    r.get::<KeyUsage>(KEY_USAGE, "k1")?.unwrap(),
                    r.get::<Executor>(EXECUTORS, "acme/edge-1")?.unwrap(),
                    r.counter(SCHEMA_VERSION)?,
                ))
            })
            .unwrap();
        assert_eq!(k1.executor.as_deref(), Some("edge-1"), "bound to the executor that used it");
        assert_eq!(k2.executor.as_deref(), Some("edge-2"));
        assert_eq!(k3.executor, None, "an unused key binds at its first sync");
        assert_eq!((usage.at, usage.by.as_str()), (t, "edge-1"));
        assert_eq!((exec.name.as_str(), exec.capabilities.programs), ("edge-1", Default::default()));
        assert_eq!(version, CURRENT);
        // Opening again changes nothing (the migration ran once).
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.read(|r| r.get::<ApiKey>(API_KEYS, "k1")).unwrap().unwrap().executor.as_deref(), Some("edge-1"));
    }
}
