//! The redb engine: one file, serializable transactions, durable commits.

use super::{Engine, ReadTxn, Result, StoreError, Table, WriteTxn, TABLES};
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use std::path::Path;

type Records = TableDefinition<'static, &'static str, &'static [u8]>;
/// Index `org/executor/node` -> change seq of the node, for spec polling.
const EXEC_NODES: TableDefinition<'static, &'static str, u64> = TableDefinition::new("exec_nodes");
/// `(org, seq)` -> event, append-only.
const EVENTS: TableDefinition<'static, (&'static str, u64), &'static [u8]> = TableDefinition::new("events");
/// Named counters.
const META: TableDefinition<'static, &'static str, u64> = TableDefinition::new("meta");

fn records(t: Table) -> Records {
    TableDefinition::new(t.name())
}

fn engine_error(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Engine(Box::new(e.into()))
}

macro_rules! from_redb {
    ($($t:ty),+) => { $(impl From<$t> for StoreError { fn from(e: $t) -> Self { engine_error(e) } })+ };
}
from_redb!(redb::Error, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError, redb::DatabaseError);

pub struct RedbEngine {
    db: Database,
}

impl RedbEngine {
    /// Open (or create) the file and make sure every table exists.
    pub fn open(path: &Path) -> Result<RedbEngine> {
        let io = |e: std::io::Error| engine_error(redb::StorageError::Io(e));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // It holds password and key hashes: created 0600, never readable by others even for a moment.
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path).map_err(io)?;
        Self::init(Database::create(path)?)
    }

    pub fn in_memory() -> Result<RedbEngine> {
        Self::init(Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?)
    }

    fn init(db: Database) -> Result<RedbEngine> {
        let txn = db.begin_write()?;
        for t in TABLES {
            txn.open_table(records(t))?;
        }
        txn.open_table(EXEC_NODES)?;
        txn.open_table(EVENTS)?;
        txn.open_table(META)?;
        txn.commit()?;
        Ok(RedbEngine { db })
    }
}

impl Engine for RedbEngine {
    fn begin_read(&self) -> Result<Box<dyn ReadTxn>> {
        Ok(Box::new(Reader(self.db.begin_read()?)))
    }

    fn begin_write(&self) -> Result<Box<dyn WriteTxn>> {
        Ok(Box::new(Writer(self.db.begin_write()?)))
    }
}

struct Reader(ReadTransaction);
struct Writer(WriteTransaction);

fn get_in(t: &impl ReadableTable<&'static str, &'static [u8]>, k: &str) -> Result<Option<Vec<u8>>> {
    Ok(t.get(k)?.map(|v| v.value().to_vec()))
}

fn scan_in(t: &impl ReadableTable<&'static str, &'static [u8]>, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for entry in t.range(prefix..)? {
        let (k, v) = entry?;
        if !k.value().starts_with(prefix) {
            break;
        }
        out.push((k.value().to_string(), v.value().to_vec()));
    }
    Ok(out)
}

fn scan_page_in(t: &impl ReadableTable<&'static str, &'static [u8]>, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
    use std::ops::Bound;
    // A cursor before the prefix starts the page at the prefix.
    let start = after.filter(|a| *a >= prefix).map_or(Bound::Included(prefix), Bound::Excluded);
    let mut out = Vec::new();
    for entry in t.range::<&str>((start, Bound::Unbounded))?.take(limit) {
        let (k, v) = entry?;
        if !k.value().starts_with(prefix) {
            break;
        }
        out.push((k.value().to_string(), v.value().to_vec()));
    }
    Ok(out)
}

fn index_scan_in(t: &impl ReadableTable<&'static str, u64>, prefix: &str) -> Result<Vec<(String, u64)>> {
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

fn events_after_in(t: &impl ReadableTable<(&'static str, u64), &'static [u8]>, org: &str, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
    let mut out = Vec::new();
    if after == u64::MAX {
        return Ok(out);
    }
    for entry in t.range((org, after + 1)..=(org, u64::MAX))?.take(limit) {
        let (k, v) = entry?;
        out.push((k.value().1, v.value().to_vec()));
    }
    Ok(out)
}

fn events_before_in(t: &impl ReadableTable<(&'static str, u64), &'static [u8]>, org: &str, before: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
    let mut out = Vec::new();
    for entry in t.range((org, 0)..(org, before))?.rev().take(limit) {
        let (k, v) = entry?;
        out.push((k.value().1, v.value().to_vec()));
    }
    Ok(out)
}

fn event_count_in(t: &impl ReadableTable<(&'static str, u64), &'static [u8]>, org: &str) -> Result<u64> {
    Ok(t.range((org, 0)..=(org, u64::MAX))?.count() as u64)
}

/// The reads, the same for both kinds of transaction (redb's read and write
/// transactions open tables through different types).
macro_rules! reads {
    () => {
        fn get(&self, t: Table, k: &str) -> Result<Option<Vec<u8>>> {
            get_in(&self.0.open_table(records(t))?, k)
        }
        fn scan(&self, t: Table, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
            scan_in(&self.0.open_table(records(t))?, prefix)
        }
        fn scan_page(&self, t: Table, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
            scan_page_in(&self.0.open_table(records(t))?, prefix, after, limit)
        }
        fn index_scan(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
            index_scan_in(&self.0.open_table(EXEC_NODES)?, prefix)
        }
        fn counter(&self, name: &str) -> Result<u64> {
            Ok(self.0.open_table(META)?.get(name)?.map(|v| v.value()).unwrap_or(0))
        }
        fn events_after(&self, org: &str, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
            events_after_in(&self.0.open_table(EVENTS)?, org, after, limit)
        }
        fn events_before(&self, org: &str, before: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
            events_before_in(&self.0.open_table(EVENTS)?, org, before, limit)
        }
        fn event_count(&self, org: &str) -> Result<u64> {
            event_count_in(&self.0.open_table(EVENTS)?, org)
        }
    };
}

impl ReadTxn for Reader {
    reads!();
}

impl ReadTxn for Writer {
    reads!();
}

impl WriteTxn for Writer {
    fn put(&mut self, t: Table, k: &str, v: &[u8]) -> Result<()> {
        self.0.open_table(records(t))?.insert(k, v)?;
        Ok(())
    }
    fn remove(&mut self, t: Table, k: &str) -> Result<()> {
        self.0.open_table(records(t))?.remove(k)?;
        Ok(())
    }
    fn remove_range(&mut self, t: Table, from: &str, to: &str) -> Result<()> {
        let mut table = self.0.open_table(records(t))?;
        let keys = table.range::<&str>(from..to)?.map(|e| e.map(|(k, _)| k.value().to_string())).collect::<std::result::Result<Vec<_>, _>>()?;
        for k in keys {
            table.remove(k.as_str())?;
        }
        Ok(())
    }
    fn index_put(&mut self, k: &str, seq: u64) -> Result<()> {
        self.0.open_table(EXEC_NODES)?.insert(k, seq)?;
        Ok(())
    }
    fn set_counter(&mut self, name: &str, value: u64) -> Result<()> {
        self.0.open_table(META)?.insert(name, value)?;
        Ok(())
    }
    fn append_event(&mut self, org: &str, seq: u64, v: &[u8]) -> Result<()> {
        self.0.open_table(EVENTS)?.insert((org, seq), v)?;
        Ok(())
    }
    fn remove_event(&mut self, org: &str, seq: u64) -> Result<()> {
        self.0.open_table(EVENTS)?.remove((org, seq))?;
        Ok(())
    }
    fn commit(self: Box<Self>) -> Result<()> {
        self.0.commit()?;
        Ok(())
    }
}
