//! Typed access to the redb file. Every mutation runs inside one write
//! transaction (`Store::write`) that commits only when the closure succeeds;
//! redb commits durably, so an acknowledged write survives a crash.

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

type Table = TableDefinition<'static, &'static str, &'static [u8]>;

pub const ORGS: Table = TableDefinition::new("orgs");
/// Keyed by username (globally unique).
pub const USERS: Table = TableDefinition::new("users");
/// Keyed by the SHA-256 of the session token.
pub const SESSIONS: Table = TableDefinition::new("sessions");
/// Keyed by key id (the public half of an API key).
pub const API_KEYS: Table = TableDefinition::new("api_keys");
/// Keyed by key id: last use of the key (see `model::KeyUsage`).
pub const KEY_USAGE: Table = TableDefinition::new("key_usage");
/// `org/executor`.
pub const EXECUTORS: Table = TableDefinition::new("executors");
/// `org/node`.
pub const NODES: Table = TableDefinition::new("nodes");
/// `org/node`: the executor's latest `ObservedNodeState`.
pub const OBSERVED: Table = TableDefinition::new("observed");
/// `org/channel/kind`.
pub const UPGRADES: Table = TableDefinition::new("upgrades");
/// Index `org/executor/node` -> change seq of the node, for spec polling.
pub const EXEC_NODES: TableDefinition<'static, &'static str, u64> = TableDefinition::new("exec_nodes");
/// `(org, seq)` -> event, append-only.
pub const EVENTS: TableDefinition<'static, (&'static str, u64), &'static [u8]> = TableDefinition::new("events");
/// Named counters.
pub const META: TableDefinition<'static, &'static str, u64> = TableDefinition::new("meta");

/// Leading byte of every stored value, so the format can evolve.
const FORMAT: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    #[error("corrupt record in {table}: {reason}")]
    Decode { table: String, reason: String },
}

macro_rules! from_redb {
    ($($t:ty),+) => { $(impl From<$t> for StoreError { fn from(e: $t) -> Self { StoreError::Db(e.into()) } })+ };
}
from_redb!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError, redb::DatabaseError);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub fn key(parts: &[&str]) -> String {
    parts.join("/")
}

#[allow(clippy::expect_used, reason = "stored records are plain data; encoding into a Vec cannot fail")]
fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![FORMAT];
    // Plain data into a Vec cannot fail.
    out.extend(postcard::to_allocvec(v).expect("postcard encode"));
    out
}

fn decode<T: DeserializeOwned>(table: &str, bytes: &[u8]) -> Result<T> {
    let err = |reason: String| StoreError::Decode { table: table.to_string(), reason };
    match bytes.split_first() {
        Some((&FORMAT, rest)) => postcard::from_bytes(rest).map_err(|e| err(e.to_string())),
        Some((v, _)) => Err(err(format!("unknown format version {v}"))),
        None => Err(err("empty value".into())),
    }
}

fn get_in<T: DeserializeOwned>(t: &impl ReadableTable<&'static str, &'static [u8]>, name: &str, k: &str) -> Result<Option<T>> {
    match t.get(k)? {
        Some(v) => decode(name, v.value()).map(Some),
        None => Ok(None),
    }
}

/// Every `(key, value)` whose key starts with `prefix`, in key order.
fn scan_in<T: DeserializeOwned>(t: &impl ReadableTable<&'static str, &'static [u8]>, name: &str, prefix: &str) -> Result<Vec<(String, T)>> {
    let mut out = Vec::new();
    for entry in t.range(prefix..)? {
        let (k, v) = entry?;
        let k = k.value();
        if !k.starts_with(prefix) {
            break;
        }
        out.push((k.to_string(), decode(name, v.value())?));
    }
    Ok(out)
}

fn index_scan(t: &impl ReadableTable<&'static str, u64>, prefix: &str) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for entry in t.range(prefix..)? {
        let (k, v) = entry?;
        if !k.value().starts_with(prefix) {
            break;
        }
        out.push((k.value()[prefix.len()..].to_string(), v.value()));
    }
    Ok(out)
}

fn events_in<T: DeserializeOwned>(t: &impl ReadableTable<(&'static str, u64), &'static [u8]>, org: &str, after: u64, limit: usize) -> Result<Vec<T>> {
    let mut out = Vec::new();
    if after == u64::MAX {
        return Ok(out);
    }
    for entry in t.range((org, after + 1)..=(org, u64::MAX))?.take(limit) {
        out.push(decode("events", entry?.1.value())?);
    }
    Ok(out)
}

/// Events with `seq < before`, newest first.
fn events_desc_in<T: DeserializeOwned>(t: &impl ReadableTable<(&'static str, u64), &'static [u8]>, org: &str, before: u64, limit: usize) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for entry in t.range((org, 0)..(org, before))?.rev().take(limit) {
        out.push(decode("events", entry?.1.value())?);
    }
    Ok(out)
}

pub struct Store {
    db: Database,
}

impl Store {
    /// Open (or create) the database file and make sure every table exists.
    pub fn open(path: &Path) -> Result<Store> {
        let io = |e: std::io::Error| StoreError::Db(redb::StorageError::Io(e).into());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // It holds password and key hashes: created 0600, never readable by others even for a moment.
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path).map_err(io)?;
        Self::init(Database::create(path)?)
    }

    /// A throwaway database in memory (tests and simulation).
    pub fn in_memory() -> Result<Store> {
        Self::init(Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?)
    }

    fn init(db: Database) -> Result<Store> {
        let store = Store { db };
        store.write(|w| {
            for t in [ORGS, USERS, SESSIONS, API_KEYS, KEY_USAGE, EXECUTORS, NODES, OBSERVED, UPGRADES] {
                w.txn.open_table(t)?;
            }
            w.txn.open_table(EXEC_NODES)?;
            w.txn.open_table(EVENTS)?;
            w.txn.open_table(META)?;
            crate::migrate::run(w)
        })?;
        Ok(store)
    }

    pub fn read<R, E: From<StoreError>>(&self, f: impl FnOnce(&Read) -> Result<R, E>) -> Result<R, E> {
        let txn = self.db.begin_read().map_err(StoreError::from)?;
        f(&Read { txn })
    }

    /// Runs `f` in one write transaction; commits iff it returns `Ok`.
    pub fn write<R, E: From<StoreError>>(&self, f: impl FnOnce(&mut Write) -> Result<R, E>) -> Result<R, E> {
        let txn = self.db.begin_write().map_err(StoreError::from)?;
        let mut w = Write { txn };
        let out = f(&mut w)?;
        w.txn.commit().map_err(StoreError::from)?;
        Ok(out)
    }
}

pub struct Read {
    txn: ReadTransaction,
}

impl Read {
    pub fn get<T: DeserializeOwned>(&self, t: Table, k: &str) -> Result<Option<T>> {
        get_in(&self.txn.open_table(t)?, t.name(), k)
    }

    pub fn scan<T: DeserializeOwned>(&self, t: Table, prefix: &str) -> Result<Vec<(String, T)>> {
        scan_in(&self.txn.open_table(t)?, t.name(), prefix)
    }

    /// `(node, seq)` for every node indexed under `org/executor/`.
    pub fn executor_nodes(&self, org: &str, executor: &str) -> Result<Vec<(String, u64)>> {
        index_scan(&self.txn.open_table(EXEC_NODES)?, &format!("{org}/{executor}/"))
    }

    pub fn events<T: DeserializeOwned>(&self, org: &str, after: u64, limit: usize) -> Result<Vec<T>> {
        events_in(&self.txn.open_table(EVENTS)?, org, after, limit)
    }

    /// Up to `limit` events older than `before` (a sequence number), newest first.
    pub fn events_before<T: DeserializeOwned>(&self, org: &str, before: u64, limit: usize) -> Result<Vec<T>> {
        events_desc_in(&self.txn.open_table(EVENTS)?, org, before, limit)
    }

    pub fn counter(&self, name: &str) -> Result<u64> {
        Ok(self.txn.open_table(META)?.get(name)?.map(|v| v.value()).unwrap_or(0))
    }
}

pub struct Write {
    txn: WriteTransaction,
}

impl Write {
    pub fn get<T: DeserializeOwned>(&self, t: Table, k: &str) -> Result<Option<T>> {
        get_in(&self.txn.open_table(t)?, t.name(), k)
    }

    pub fn scan<T: DeserializeOwned>(&self, t: Table, prefix: &str) -> Result<Vec<(String, T)>> {
        scan_in(&self.txn.open_table(t)?, t.name(), prefix)
    }

    pub fn put<T: Serialize>(&mut self, t: Table, k: &str, v: &T) -> Result<()> {
        self.txn.open_table(t)?.insert(k, encode(v).as_slice())?;
        Ok(())
    }

    pub fn remove(&mut self, t: Table, k: &str) -> Result<()> {
        self.txn.open_table(t)?.remove(k)?;
        Ok(())
    }

    pub fn executor_nodes(&self, org: &str, executor: &str) -> Result<Vec<(String, u64)>> {
        index_scan(&self.txn.open_table(EXEC_NODES)?, &format!("{org}/{executor}/"))
    }

    pub fn index_node(&mut self, org: &str, executor: &str, node: &str, seq: u64) -> Result<()> {
        self.txn.open_table(EXEC_NODES)?.insert(key(&[org, executor, node]).as_str(), seq)?;
        Ok(())
    }

    pub fn counter(&self, name: &str) -> Result<u64> {
        Ok(self.txn.open_table(META)?.get(name)?.map(|v| v.value()).unwrap_or(0))
    }

    pub fn set_counter(&mut self, name: &str, value: u64) -> Result<()> {
        self.txn.open_table(META)?.insert(name, value)?;
        Ok(())
    }

    /// Increments and returns the named counter.
    pub fn next(&mut self, name: &str) -> Result<u64> {
        let mut t = self.txn.open_table(META)?;
        let n = t.get(name)?.map(|v| v.value()).unwrap_or(0) + 1;
        t.insert(name, n)?;
        Ok(n)
    }

    pub fn append_event<T: Serialize>(&mut self, org: &str, seq: u64, event: &T) -> Result<()> {
        self.txn.open_table(EVENTS)?.insert((org, seq), encode(event).as_slice())?;
        Ok(())
    }

    /// The oldest `limit` events of `org`, oldest first, with their sequence numbers.
    pub fn oldest_events<T: DeserializeOwned>(&self, org: &str, limit: usize) -> Result<Vec<(u64, T)>> {
        let t = self.txn.open_table(EVENTS)?;
        let mut out = Vec::new();
        for entry in t.range((org, 0)..=(org, u64::MAX))?.take(limit) {
            let (k, v) = entry?;
            out.push((k.value().1, decode("events", v.value())?));
        }
        Ok(out)
    }

    pub fn event_count(&self, org: &str) -> Result<u64> {
        Ok(self.txn.open_table(EVENTS)?.range((org, 0)..=(org, u64::MAX))?.count() as u64)
    }

    pub fn remove_event(&mut self, org: &str, seq: u64) -> Result<()> {
        self.txn.open_table(EVENTS)?.remove((org, seq))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_commits_only_on_ok_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.redb");
        {
            let s = Store::open(&path).unwrap();
            s.write(|w| w.put(ORGS, "a", &"kept".to_string())).unwrap();
            let r: Result<()> = s.write(|w| {
                w.put(ORGS, "b", &"dropped".to_string())?;
                Err(StoreError::Decode { table: "x".into(), reason: "abort".into() })
            });
            assert!(r.is_err());
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.read(|r| r.get::<String>(ORGS, "a")).unwrap().as_deref(), Some("kept"));
        assert_eq!(s.read(|r| r.get::<String>(ORGS, "b")).unwrap(), None);
    }

    #[test]
    fn scan_is_prefix_bounded_and_events_paginate_per_org() {
        let s = Store::in_memory().unwrap();
        s.write(|w| {
            for k in ["o1/a", "o1/b", "o10/c", "o2/d"] {
                w.put(NODES, k, &k.to_string())?;
            }
            for i in 1..=5 {
                w.append_event("o1", i, &i)?;
                w.append_event("o2", 100 + i, &(100 + i))?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
        let keys: Vec<String> = s.read(|r| r.scan::<String>(NODES, "o1/")).unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["o1/a", "o1/b"]);
        assert_eq!(s.read(|r| r.events::<u64>("o1", 2, 2)).unwrap(), [3, 4]);
        assert_eq!(s.read(|r| r.events::<u64>("o1", 5, 10)).unwrap(), Vec::<u64>::new());
    }

    #[test]
    fn database_file_is_private_from_creation() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.redb");
        drop(Store::open(&path).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn corrupt_value_is_an_error_not_a_panic() {
        let s = Store::in_memory().unwrap();
        s.write(|w| {
            w.txn.open_table(ORGS)?.insert("x", [9u8, 1, 2].as_slice())?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
        assert!(matches!(s.read(|r| r.get::<String>(ORGS, "x")), Err(StoreError::Decode { .. })));
    }
}
