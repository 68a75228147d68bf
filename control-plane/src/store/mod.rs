//! Typed, transactional access to the control plane's records. Every
//! mutation runs inside one write transaction (`Store::write`) that commits
//! only when the closure succeeds; the engine commits durably, so an
//! acknowledged write survives a crash.
//!
//! Records are ordered key-value tables ([`Table`]) of postcard values, plus
//! three fixed structures: the executor-to-node index, the per-organization
//! event log and named counters. An [`Engine`] provides them: redb (the
//! embedded default) in [`redb`], PostgreSQL in [`postgres`]; nothing outside
//! this folder names either.

use novacula_core::sync::LockExt;

mod group;
pub mod migrate;
pub mod model;
pub mod pg_server;
mod pg_target;
mod postgres;
mod redb;
mod stale;

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// A table of `key -> record`, keys ordered as strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Table(&'static str);

impl Table {
    pub fn name(self) -> &'static str {
        self.0
    }
}

pub const ORGS: Table = Table("orgs");
/// Keyed by username (globally unique).
pub const USERS: Table = Table("users");
/// `org/username`: a user's role in an organization (`model::Member`).
pub const MEMBERS: Table = Table("members");
/// `username/org` -> org: the organizations of a user (mirrors `MEMBERS`).
pub const USER_ORGS: Table = Table("user_orgs");
/// Keyed by invitation id (the public part of its token).
pub const INVITATIONS: Table = Table("invitations");
/// Keyed by the SHA-256 of the session token.
pub const SESSIONS: Table = Table("sessions");
/// Keyed by key id (the public half of an API key).
pub const API_KEYS: Table = Table("api_keys");
/// Keyed by key id: last use of the key (see `model::KeyUsage`).
pub const KEY_USAGE: Table = Table("key_usage");
/// `org/executor`.
pub const EXECUTORS: Table = Table("executors");
/// `org/executor`: what an executor's last sync said it can run (see `model::ExecutorRow`).
pub const CAPABILITIES: Table = Table("capabilities");
/// `org/node`.
pub const NODES: Table = Table("nodes");
/// `org/node`: the executor's latest `ObservedNodeState`.
pub const OBSERVED: Table = Table("observed");
/// `org/channel/kind`.
pub const UPGRADES: Table = Table("upgrades");
/// `channel/kind`: the platform's releases, offered where an organization set none.
pub const RELEASES: Table = Table("releases");
/// Keyed by organization: its logo (see `model::Logo`).
pub const ORG_LOGOS: Table = Table("org_logos");
/// Keyed by slug: the organization's id (a `String`).
pub const SLUGS: Table = Table("org_slugs");
/// Keyed by organization: its `alerts::AlertSettings` (none stored: the defaults).
pub const ALERT_SETTINGS: Table = Table("alert_settings");
/// `org/node`: a node's `alerts::NodeAlertOverride` (none stored: it inherits).
pub const ALERT_OVERRIDES: Table = Table("alert_overrides");
/// `org/<id>`: every incident (`alerts::Incident`), ids in opening order.
pub const INCIDENTS: Table = Table("incidents");
/// `org/rule/subject-kind/subject-key` -> the id of the incident open for it.
pub const OPEN_INCIDENTS: Table = Table("open_incidents");
/// `org/<id>`: where notifications go (`model::AlertChannel`).
pub const ALERT_CHANNELS: Table = Table("alert_channels");
/// `org/node/<time>`: a node's sync history (`NodeSample`), one point a minute for a day.
pub const NODE_HISTORY: Table = Table("node_history");
/// `<seq>`: notifications not yet delivered (`model::OutboxEntry`), oldest first.
pub const OUTBOX: Table = Table("notification_outbox");
/// `org/<seq>`: every delivery attempt (`model::Delivery`).
pub const DELIVERIES: Table = Table("notification_deliveries");

/// The event log holding `org`'s audit entries (organization names are DNS
/// labels, so it meets no organization's feed).
pub fn audit_log(org: &str) -> String {
    format!("audit:{org}")
}

/// The event log of platform administrators' actions.
pub const PLATFORM_AUDIT_LOG: &str = "audit@platform";

/// Every record table, created when a store is opened.
pub const TABLES: [Table; 24] = [
    ORGS,
    USERS,
    MEMBERS,
    USER_ORGS,
    INVITATIONS,
    SESSIONS,
    API_KEYS,
    KEY_USAGE,
    EXECUTORS,
    CAPABILITIES,
    NODES,
    OBSERVED,
    UPGRADES,
    RELEASES,
    ORG_LOGOS,
    SLUGS,
    ALERT_SETTINGS,
    ALERT_OVERRIDES,
    INCIDENTS,
    OPEN_INCIDENTS,
    ALERT_CHANNELS,
    OUTBOX,
    DELIVERIES,
    NODE_HISTORY,
];

/// A sequence number as a key part that sorts as it counts.
pub fn seq_key(seq: u64) -> String {
    format!("{seq:016}")
}

/// Leading byte of every stored value, so the format can evolve.
const FORMAT: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine failed (I/O, a full disk, a damaged file).
    #[error("database: {0}")]
    Engine(Box<dyn std::error::Error + Send + Sync>),
    #[error("corrupt record in {table}: {reason}")]
    Decode { table: String, reason: String },
    /// The database was migrated by a newer release (another replica, or a
    /// rollback of this one): this release would misread its records and
    /// write them in shapes the newer one cannot read.
    #[error(
        "the database is at schema version {found}, newer than this control plane knows ({known}): a newer release migrated it; run that release here too"
    )]
    Outdated { found: u64, known: u64 },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub fn key(parts: &[&str]) -> String {
    parts.join("/")
}

#[allow(clippy::expect_used, reason = "stored records are plain data; encoding into a Vec cannot fail")]
fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![FORMAT];
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

/// The tables whose rows say what an executor's call means (its API key,
/// its executor, the upgrade offered, its organization): a commit that
/// writes one moves [`Store::epoch`], and what `crate::known` holds of
/// the rows it wrote (see [`stale`]) goes stale, here and, told through the
/// database, in the other processes.
const MEANING: [Table; 5] = [API_KEYS, EXECUTORS, UPGRADES, RELEASES, ORGS];
/// Delivered by an engine when it (re)starts listening: anything may have
/// been published meanwhile.
pub const LISTENING: &str = "listening";

/// A storage engine: serializable transactions over the tables above, and
/// what several control-plane processes on one database need to share.
pub trait Engine: Send + Sync + 'static {
    fn begin_read(&self) -> Result<Box<dyn ReadTxn>>;
    fn begin_write(&self) -> Result<Box<dyn WriteTxn>>;

    /// Tell the other processes on the database (a committed change they
    /// should wake for). Nobody else shares an embedded file: nothing to do.
    fn publish(&self, _message: &str) -> Result<()> {
        Ok(())
    }

    /// Deliver what other processes (and this one) publish to `deliver`, from
    /// a thread of the engine's, until the engine is dropped.
    fn subscribe(&self, _deliver: Box<dyn Fn(&str) + Send>) -> Result<()> {
        Ok(())
    }

    /// Whether this process holds the lease for time-based work (health
    /// sweeps, retention): one process at a time, and another one takes it
    /// over when the holder dies. Alone on a file, always.
    fn hold_lease(&self) -> Result<bool> {
        Ok(true)
    }

    /// Give the lease up, if held, for another process to take.
    fn release_lease(&self) {}
}

/// What a transaction reads, as raw bytes (encoding is this module's).
pub trait ReadTxn {
    fn get(&self, t: Table, k: &str) -> Result<Option<Vec<u8>>>;
    /// [`Self::get`] of each of `keys`, in their order: one round trip to a
    /// database server for the lot.
    fn get_many(&self, t: Table, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(t, k)).collect()
    }
    /// Read `wanted` ahead, at once, for the transaction's later `get`s
    /// (an engine whose reads are local has nothing to gain: a no-op).
    fn prefetch(&self, _wanted: &[(Table, String)]) -> Result<()> {
        Ok(())
    }
    /// Every `(key, value)` whose key starts with `prefix`, in key order.
    fn scan(&self, t: Table, prefix: &str) -> Result<Vec<(String, Vec<u8>)>>;
    /// Up to `limit` of the entries under `prefix` whose key sorts after `after`
    /// (a whole key), in key order.
    fn scan_page(&self, t: Table, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<(String, Vec<u8>)>>;
    /// `(rest of key, value)` of the index entries under `prefix`.
    fn index_scan(&self, prefix: &str) -> Result<Vec<(String, u64)>>;
    fn counter(&self, name: &str) -> Result<u64>;
    /// Up to `limit` events of `org` with `seq > after`, oldest first.
    fn events_after(&self, org: &str, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>>;
    /// Up to `limit` events of `org` with `seq < before`, newest first.
    fn events_before(&self, org: &str, before: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>>;
    fn event_count(&self, org: &str) -> Result<u64>;
}

/// What a write transaction changes; nothing is visible before `commit`.
pub trait WriteTxn: ReadTxn {
    fn put(&mut self, t: Table, k: &str, v: &[u8]) -> Result<()>;
    /// [`Self::put`] of each entry (distinct keys): one round trip to a
    /// database server for the lot.
    fn put_many(&mut self, t: Table, entries: &[(String, Vec<u8>)]) -> Result<()> {
        entries.iter().try_for_each(|(k, v)| self.put(t, k, v))
    }
    fn remove(&mut self, t: Table, k: &str) -> Result<()>;
    /// Remove every key `k` with `from <= k < to`.
    fn remove_range(&mut self, t: Table, from: &str, to: &str) -> Result<()>;
    fn index_put(&mut self, k: &str, seq: u64) -> Result<()>;
    fn set_counter(&mut self, name: &str, value: u64) -> Result<()>;
    fn append_event(&mut self, org: &str, seq: u64, v: &[u8]) -> Result<()>;
    fn remove_event(&mut self, org: &str, seq: u64) -> Result<()>;
    /// Statements sent to a database server so far, by kind, most first
    /// (none for an embedded engine): logged with a write that held the writer long.
    fn statements(&self) -> Vec<(String, u32)> {
        Vec::new()
    }
    fn commit(self: Box<Self>) -> Result<()>;
}

/// The control plane's records, on some engine.
pub struct Store {
    engine: std::sync::Arc<dyn Engine>,
    /// Write transactions committed by this process (for load measurements).
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
    reads: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The group-commit thread, started by the first grouped write.
    groups: std::sync::OnceLock<group::Groups>,
    /// Moves whenever a commit here or elsewhere may have changed a table
    /// of [`MEANING`] (see [`Store::epoch`]).
    stale: std::sync::Arc<std::sync::Mutex<stale::Stale>>,
    /// The schema version a newer release migrated the database to, once a
    /// transaction was refused for it (0: none seen); see [`Store::outdated`].
    outdated: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// A write transaction holding the writer this long is logged (with its caller).
const SLOW_WRITE: std::time::Duration = std::time::Duration::from_millis(500);

impl Store {
    /// Open (or create) the redb file at `path`, migrated to the current schema.
    pub fn open(path: &Path) -> Result<Store> {
        Self::init(Box::new(redb::RedbEngine::open(path)?))
    }

    /// A throwaway database in memory (tests and simulation).
    pub fn in_memory() -> Result<Store> {
        Self::init(Box::new(redb::RedbEngine::in_memory()?))
    }

    /// Connect to PostgreSQL at `url` (`postgres://user:password@host/database`),
    /// its schema created or brought up to date, then migrated to the current records.
    pub fn open_postgres(url: &str) -> Result<Store> {
        Self::init(Box::new(postgres::PgEngine::open(url)?))
    }

    /// A PostgreSQL URL as it may be shown or logged: no password.
    pub fn describe_postgres(url: &str) -> String {
        postgres::describe(url)
    }

    /// A store for the tests: redb in memory, or a fresh PostgreSQL database
    /// when `NOVACULA_TEST_STORE=postgres` (the same suite on either engine).
    #[allow(clippy::expect_used, reason = "a test without its store cannot run")]
    pub fn for_tests() -> Store {
        match std::env::var("NOVACULA_TEST_STORE").as_deref() {
            Ok("postgres") => {
                let url = pg_server::fresh_database().expect("a PostgreSQL test database");
                Store::open_postgres(&url).expect("PostgreSQL store")
            }
            _ => Store::in_memory().expect("in-memory store"),
        }
    }

    fn init(engine: Box<dyn Engine>) -> Result<Store> {
        let store = Store {
            engine: engine.into(),
            commits: Default::default(),
            reads: Default::default(),
            groups: Default::default(),
            stale: Default::default(),
            outdated: Default::default(),
        };
        store.write(migrate::run)?;
        Ok(store)
    }

    /// Once a transaction was refused because a newer release migrated the
    /// database (another replica, during a rolling upgrade): that refusal.
    /// Nothing here may then answer from memory either (a heartbeat kept
    /// only in memory would be lost), so the server refuses every request.
    pub fn outdated(&self) -> Option<StoreError> {
        match self.outdated.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            found => Some(StoreError::Outdated { found, known: migrate::CURRENT }),
        }
    }

    /// `begun`, noting a refusal for [`Store::outdated`].
    fn noted<T>(&self, begun: Result<T>) -> Result<T> {
        if let Err(e @ StoreError::Outdated { found, .. }) = &begun {
            if self.outdated.swap(*found, std::sync::atomic::Ordering::Relaxed) == 0 {
                tracing::error!(error = %e, "stepping aside: every request is answered 503, the lease is given up");
            }
        }
        begun
    }

    /// See [`Engine::publish`].
    pub fn publish(&self, message: &str) -> Result<()> {
        self.engine.publish(message)
    }

    /// See [`Engine::subscribe`]; the store keeps its own messages.
    pub fn subscribe(&self, deliver: Box<dyn Fn(&str) + Send>) -> Result<()> {
        let stale = self.stale.clone();
        self.engine.subscribe(Box::new(move |message| match stale::Moved::parse(message) {
            Some(moved) => stale.locked().moved(moved),
            None => {
                if message == LISTENING {
                    // Anything may have been published meanwhile.
                    stale.locked().moved(stale::Moved::All);
                }
                deliver(message);
            }
        }))
    }

    /// A number that moves after every commit that wrote a table of
    /// [`MEANING`]: here before the commit's caller goes on, in other
    /// processes on the database when they are told (or start listening
    /// again). What was read under one epoch may be kept while [`Self::fresh`]
    /// says so. Read it before such a read, never after.
    pub fn epoch(&self) -> u64 {
        self.stale.locked().epoch()
    }

    /// Whether `t`'s row `k`, read under `epoch`, is still good: no commit
    /// since wrote it, nor anything wider (see [`stale`]).
    pub fn fresh(&self, t: Table, k: &str, epoch: u64) -> bool {
        self.stale.locked().fresh(t, k, epoch)
    }

    /// See [`Engine::hold_lease`]. A store that a newer release migrated
    /// gives the lease up (see [`Store::outdated`]): the upgraded replicas'
    /// time-based work must not wait for this process to end.
    pub fn hold_lease(&self) -> Result<bool> {
        if self.outdated().is_some() {
            self.engine.release_lease();
            return Ok(false);
        }
        self.engine.hold_lease()
    }

    pub fn read<R, E: From<StoreError>>(&self, f: impl FnOnce(&Read) -> Result<R, E>) -> Result<R, E> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f(&Read { txn: self.noted(self.engine.begin_read())? })
    }

    /// Runs `f` in one write transaction; commits iff it returns `Ok`.
    #[track_caller]
    pub fn write<R, E: From<StoreError>>(&self, f: impl FnOnce(&mut Write) -> Result<R, E>) -> Result<R, E> {
        let caller = std::panic::Location::caller();
        let mut w = Write { txn: self.noted(self.engine.begin_write())?, meaning: Default::default(), counters: Default::default() };
        let held = std::time::Instant::now();
        let out = f(&mut w)?;
        let start = std::time::Instant::now();
        let meaning = std::mem::take(&mut w.meaning);
        let statements = w.txn.statements();
        if let Err(e) = w.txn.commit() {
            // The commit may have taken effect even so (a connection lost
            // after COMMIT was sent): what is kept in memory is dropped.
            self.moved(meaning);
            return Err(e.into());
        }
        crate::metrics::STORE_COMMIT_SECONDS.observe(start.elapsed().as_secs_f64());
        // Every other writer waits meanwhile: say where, so it can be found.
        if held.elapsed() >= SLOW_WRITE {
            // And what it sent a database server before its commit, by kind.
            let statements: Vec<String> = statements.iter().map(|(what, n)| format!("{n} x {what}")).collect();
            tracing::warn!(
                at = %caller,
                held_ms = held.elapsed().as_millis() as u64,
                commit_ms = start.elapsed().as_millis() as u64,
                statements = %statements.join("; "),
                "a write transaction held the store's writer long"
            );
        }
        self.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.moved(meaning);
        Ok(out)
    }

    /// Move the epoch after a commit that wrote a table of [`MEANING`], here and on the other replicas.
    fn moved(&self, moved: stale::Moved) {
        let Some(message) = moved.message() else { return };
        self.stale.locked().moved(moved);
        if let Err(e) = self.engine.publish(&message) {
            tracing::warn!(error = %e, "could not tell other control planes that keys or executors changed; they see it within what they keep");
        }
    }

    /// Runs `f` in a write transaction it may share with other callers'
    /// (one commit for all, see [`group`]); answers once that commits. `f`
    /// may run more than once, each time in a fresh transaction. `reads`:
    /// records `f` will read, fetched with the group's others at once (on
    /// PostgreSQL one round trip for the group, not several per caller).
    pub async fn write_grouped<R, E, F>(&self, reads: Vec<(Table, String)>, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut Write) -> Result<R, E> + Send + 'static,
    {
        if self.groups.get().is_none() {
            // The thread's handle shares the engine, without groups of its own.
            let handle = Store {
                engine: self.engine.clone(),
                commits: self.commits.clone(),
                reads: self.reads.clone(),
                groups: Default::default(),
                stale: self.stale.clone(),
                outdated: self.outdated.clone(),
            };
            let groups = group::Groups::start(handle).map_err(|e| StoreError::Engine(Box::new(e)))?;
            // Another caller may have started one first: this one then just ends.
            let _ = self.groups.set(groups);
        }
        match self.groups.get() {
            Some(g) => g.write(reads, f).await,
            None => Err(StoreError::Engine("no group-commit thread".into()).into()),
        }
    }

    /// Write transactions this process has committed.
    pub fn commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Read transactions this process has begun.
    pub fn reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The typed reads every transaction offers.
macro_rules! typed_reads {
    () => {
        pub fn get<T: DeserializeOwned>(&self, t: Table, k: &str) -> Result<Option<T>> {
            self.txn.get(t, k)?.map(|v| decode(t.name(), &v)).transpose()
        }

        /// [`Self::get`] of each of `keys`, in their order, in one call to the engine.
        pub fn get_many<T: DeserializeOwned>(&self, t: Table, keys: &[String]) -> Result<Vec<Option<T>>> {
            self.txn.get_many(t, keys)?.into_iter().map(|v| v.map(|v| decode(t.name(), &v)).transpose()).collect()
        }

        /// Every `(key, record)` whose key starts with `prefix`, in key order.
        pub fn scan<T: DeserializeOwned>(&self, t: Table, prefix: &str) -> Result<Vec<(String, T)>> {
            self.txn.scan(t, prefix)?.into_iter().map(|(k, v)| Ok((k, decode(t.name(), &v)?))).collect()
        }

        /// A page of [`Self::scan`]: up to `limit` records after the key `after`.
        pub fn scan_page<T: DeserializeOwned>(&self, t: Table, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<(String, T)>> {
            self.txn.scan_page(t, prefix, after, limit)?.into_iter().map(|(k, v)| Ok((k, decode(t.name(), &v)?))).collect()
        }

        /// Executor `org/name` with its capabilities (most reads need only
        /// its [`model::ExecutorRow`]).
        pub fn executor(&self, k: &str) -> Result<Option<model::Executor>> {
            let Some(row) = self.get::<model::ExecutorRow>(EXECUTORS, k)? else { return Ok(None) };
            let capabilities = self.get(CAPABILITIES, k)?.unwrap_or_default();
            Ok(Some(row.with_capabilities(capabilities)))
        }

        /// `username`'s role in `org`.
        pub fn member(&self, org: &str, username: &str) -> Result<Option<model::Member>> {
            self.get(MEMBERS, &key(&[org, username]))
        }

        /// The release executors of `kind` on `channel` in `org` are offered:
        /// the organization's own, else the platform's.
        pub fn upgrade_offer(&self, org: &str, channel: novacula_core::Channel, kind: novacula_core::ExecutorKind) -> Result<Option<model::UpgradeRow>> {
            match self.get(UPGRADES, &key(&[org, channel.as_str(), kind.as_str()]))? {
                Some(own) => Ok(Some(own)),
                None => self.get(RELEASES, &key(&[channel.as_str(), kind.as_str()])),
            }
        }

        /// The id of the organization named `name`: by its slug, else `name` itself (an id).
        pub fn org_id_of(&self, name: &str) -> Result<String> {
            Ok(self.get::<String>(SLUGS, name)?.unwrap_or_else(|| name.to_string()))
        }

        /// Whether `org` is deactivated; a missing organization counts as deactivated.
        pub fn org_deactivated(&self, org: &str) -> Result<bool> {
            Ok(self.get::<model::Org>(ORGS, org)?.is_none_or(|o| o.is_off()))
        }

        /// The organizations `username` belongs to, by name.
        pub fn orgs_of(&self, username: &str) -> Result<Vec<String>> {
            Ok(self.scan::<String>(USER_ORGS, &format!("{username}/"))?.into_iter().map(|(_, org)| org).collect())
        }

        /// `(node, seq)` for every node indexed under `org/executor/`.
        pub fn executor_nodes(&self, org: &str, executor: &str) -> Result<Vec<(String, u64)>> {
            self.txn.index_scan(&format!("{org}/{executor}/"))
        }

        pub fn events<T: DeserializeOwned>(&self, org: &str, after: u64, limit: usize) -> Result<Vec<T>> {
            self.txn.events_after(org, after, limit)?.iter().map(|(_, v)| decode("events", v)).collect()
        }

        /// Up to `limit` events older than `before` (a sequence number), newest first.
        pub fn events_before<T: DeserializeOwned>(&self, org: &str, before: u64, limit: usize) -> Result<Vec<T>> {
            self.txn.events_before(org, before, limit)?.iter().map(|(_, v)| decode("events", v)).collect()
        }

        pub fn counter(&self, name: &str) -> Result<u64> {
            self.txn.counter(name)
        }

        /// How many events `org` keeps (a scan: for retention, not for requests).
        pub fn event_count(&self, org: &str) -> Result<u64> {
            self.txn.event_count(org)
        }
    };
}

pub struct Read {
    txn: Box<dyn ReadTxn>,
}

impl Read {
    typed_reads!();
}

pub struct Write {
    txn: Box<dyn WriteTxn>,
    /// What it wrote of [`MEANING`].
    meaning: stale::Moved,
    /// Counters as this transaction set them.
    counters: std::collections::HashMap<String, u64>,
}

impl Write {
    typed_reads!();

    /// `t`'s row `k` is written (`None`: a range of rows).
    fn writes(&mut self, t: Table, k: Option<&str>) {
        self.meaning.wrote(t, k);
    }

    pub fn put<T: Serialize>(&mut self, t: Table, k: &str, v: &T) -> Result<()> {
        self.writes(t, Some(k));
        self.txn.put(t, k, &encode(v))
    }

    /// [`Self::put`] of each entry, in one call to the engine; of entries
    /// with the same key, the last one is kept.
    pub fn put_many<T: Serialize>(&mut self, t: Table, entries: &[(String, T)]) -> Result<()> {
        for (k, _) in entries {
            self.writes(t, Some(k));
        }
        self.put_many_inner(t, entries)
    }

    /// [`Self::put_many`] of rows that differ from the stored ones only in
    /// their times ("last seen", "last reported"): they mean what they meant,
    /// and [`Store::epoch`] does not move.
    pub fn put_times<T: Serialize>(&mut self, t: Table, entries: &[(String, T)]) -> Result<()> {
        self.put_many_inner(t, entries)
    }

    fn put_many_inner<T: Serialize>(&mut self, t: Table, entries: &[(String, T)]) -> Result<()> {
        let mut last = std::collections::HashMap::with_capacity(entries.len());
        for (i, (k, _)) in entries.iter().enumerate() {
            last.insert(k.as_str(), i);
        }
        let encoded: Vec<(String, Vec<u8>)> =
            entries.iter().enumerate().filter(|(i, (k, _))| last.get(k.as_str()) == Some(i)).map(|(_, (k, v))| (k.clone(), encode(v))).collect();
        if encoded.is_empty() {
            return Ok(());
        }
        self.txn.put_many(t, &encoded)
    }

    /// See [`ReadTxn::prefetch`].
    pub fn prefetch(&self, wanted: &[(Table, String)]) -> Result<()> {
        self.txn.prefetch(wanted)
    }

    pub fn remove(&mut self, t: Table, k: &str) -> Result<()> {
        self.writes(t, Some(k));
        self.txn.remove(t, k)
    }

    /// Remove every key `k` with `from <= k < to`, without reading them (on
    /// PostgreSQL it goes with the transaction's other changes, no round trip).
    pub fn remove_range(&mut self, t: Table, from: &str, to: &str) -> Result<()> {
        self.writes(t, None);
        self.txn.remove_range(t, from, to)
    }

    /// Make `username` a member of `org` (or change their membership).
    pub fn put_member(&mut self, org: &str, username: &str, m: &model::Member) -> Result<()> {
        self.put(MEMBERS, &key(&[org, username]), m)?;
        self.put(USER_ORGS, &key(&[username, org]), &org.to_string())
    }

    pub fn remove_member(&mut self, org: &str, username: &str) -> Result<()> {
        self.remove(MEMBERS, &key(&[org, username]))?;
        self.remove(USER_ORGS, &key(&[username, org]))
    }

    pub fn index_node(&mut self, org: &str, executor: &str, node: &str, seq: u64) -> Result<()> {
        self.txn.index_put(&key(&[org, executor, node]), seq)
    }

    pub fn set_counter(&mut self, name: &str, value: u64) -> Result<()> {
        self.txn.set_counter(name, value)?;
        self.counters.insert(name.to_string(), value);
        Ok(())
    }

    /// Increments and returns the named counter. A write transaction is its
    /// counters' only writer (the writer lock): after the first read, the
    /// next values are counted here (no round trip per event on PostgreSQL).
    pub fn next(&mut self, name: &str) -> Result<u64> {
        let n = match self.counters.get(name) {
            Some(&n) => n,
            None => self.txn.counter(name)?,
        } + 1;
        self.set_counter(name, n)?;
        Ok(n)
    }

    pub fn append_event<T: Serialize>(&mut self, org: &str, seq: u64, event: &T) -> Result<()> {
        self.txn.append_event(org, seq, &encode(event))
    }

    /// The oldest `limit` events of `org`, oldest first, with their sequence numbers.
    pub fn oldest_events<T: DeserializeOwned>(&self, org: &str, limit: usize) -> Result<Vec<(u64, T)>> {
        self.events_after(org, 0, limit)
    }

    /// Up to `limit` events of `org` after `after`, oldest first, with their sequence numbers.
    pub fn events_after<T: DeserializeOwned>(&self, org: &str, after: u64, limit: usize) -> Result<Vec<(u64, T)>> {
        self.txn.events_after(org, after, limit)?.into_iter().map(|(seq, v)| Ok((seq, decode("events", &v)?))).collect()
    }

    pub fn remove_event(&mut self, org: &str, seq: u64) -> Result<()> {
        self.txn.remove_event(org, seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens the same database again, each call.
    type Opener = Box<dyn Fn() -> Store>;

    /// Every engine: redb, and PostgreSQL when it is installed (always in CI).
    fn engines() -> Vec<(&'static str, Opener)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.redb");
        let mut out: Vec<(&'static str, Opener)> = vec![(
            "redb",
            Box::new(move || {
                let _keep = &dir;
                Store::open(&path).unwrap()
            }),
        )];
        if let Some(url) = pg_server::database_for_test() {
            out.push(("postgres", Box::new(move || Store::open_postgres(&url).unwrap())));
        }
        out
    }

    #[test]
    fn write_commits_only_on_ok_and_survives_reopen() {
        for (engine, open) in engines() {
            {
                let s = open();
                s.write(|w| w.put(ORGS, "a", &"kept".to_string())).unwrap();
                let r: Result<()> = s.write(|w| {
                    w.put(ORGS, "b", &"dropped".to_string())?;
                    Err(StoreError::Decode { table: "x".into(), reason: "abort".into() })
                });
                assert!(r.is_err());
            }
            let s = open();
            assert_eq!(s.read(|r| r.get::<String>(ORGS, "a")).unwrap().as_deref(), Some("kept"), "{engine}");
            assert_eq!(s.read(|r| r.get::<String>(ORGS, "b")).unwrap(), None, "{engine}");
            assert_eq!(s.read(|r| r.counter(migrate::SCHEMA_VERSION_KEY)).unwrap(), migrate::CURRENT, "{engine}: migrated once");
        }
    }

    /// A database a newer release has migrated is refused: at open, and on
    /// PostgreSQL (where replicas of both releases share it during a rolling
    /// upgrade) by every transaction of a store already open, reads too.
    #[test]
    fn a_database_migrated_by_a_newer_release_is_refused() {
        let newer = migrate::CURRENT + 1;
        let outdated = |r: Result<()>| matches!(r, Err(StoreError::Outdated { found, known }) if found == newer && known == migrate::CURRENT);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.redb");
        Store::open(&path).unwrap().write(|w| w.set_counter(migrate::SCHEMA_VERSION_KEY, newer)).unwrap();
        assert!(outdated(Store::open(&path).map(drop)), "redb");
        let Some(url) = pg_server::database_for_test() else { return };
        let running = Store::open_postgres(&url).unwrap();
        running.write(|w| w.put(ORGS, "a", &"before".to_string())).unwrap();
        Store::open_postgres(&url).unwrap().write(|w| w.set_counter(migrate::SCHEMA_VERSION_KEY, newer)).unwrap();
        assert!(outdated(running.write(|w| w.put(ORGS, "a", &"after".to_string()))));
        assert!(outdated(running.read(|r| r.get::<String>(ORGS, "a")).map(drop)));
        assert!(outdated(Store::open_postgres(&url).map(drop)), "postgres");
        let mut db = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        let kept: Vec<u8> = db.query_one("SELECT v FROM novacula_records WHERE tbl = $1 AND k = 'a'", &[&ORGS.name()]).unwrap().get(0);
        assert_eq!(decode::<String>("orgs", &kept).unwrap(), "before", "the refused write changed nothing");
    }

    /// Counters counted in memory within a transaction go on from what is
    /// stored, follow `set_counter`, and are kept only if it commits.
    #[test]
    fn counters_count_on_from_the_store_and_only_what_commits() {
        for (engine, open) in engines() {
            let s = open();
            s.write(|w| w.set_counter("c", 5)).unwrap();
            let got = s.write(|w| Ok::<_, StoreError>([w.next("c")?, w.next("c")?, w.next("other")?])).unwrap();
            assert_eq!(got, [6, 7, 1], "{engine}");
            let _failed: Result<()> = s.write(|w| {
                assert_eq!(w.next("c")?, 8, "{engine}");
                Err(StoreError::Decode { table: "x".into(), reason: "abort".into() })
            });
            let got = s
                .write(|w| {
                    Ok::<_, StoreError>([w.next("c")?, {
                        w.set_counter("c", 20)?;
                        w.next("c")?
                    }])
                })
                .unwrap();
            assert_eq!(got, [8, 21], "{engine}: the aborted 8 was not kept; set_counter is followed");
            assert_eq!(s.read(|r| r.counter("c")).unwrap(), 21, "{engine}");
        }
    }

    /// The epoch moves with a commit that changes what keys, executors,
    /// upgrades or organizations mean, not with one that only moves times or
    /// writes other tables, nor with one that fails; on PostgreSQL another
    /// process on the database is told.
    #[test]
    fn the_epoch_moves_with_commits_that_change_meaning() {
        for (engine, open) in engines() {
            let s = open();
            let other = (engine == "postgres").then(&open);
            if let Some(o) = &other {
                o.subscribe(Box::new(|_| {})).unwrap();
                // Listening: the epoch moved once (what was published before is unknown).
                while o.epoch() == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
            let e0 = s.epoch();
            s.write(|w| w.put_times(EXECUTORS, &[("acme/edge-1".to_string(), 1u8)])).unwrap();
            s.write(|w| w.put(NODES, "acme/n", &1u8)).unwrap();
            assert_eq!(s.epoch(), e0, "{engine}: times and other tables");
            let _failed: Result<()> = s.write(|w| {
                w.put(API_KEYS, "k", &1u8)?;
                Err(StoreError::Decode { table: "x".into(), reason: "abort".into() })
            });
            assert_eq!(s.epoch(), e0, "{engine}: nothing committed");
            let seen_elsewhere = other.as_ref().map(Store::epoch);
            s.write(|w| w.put(API_KEYS, "k", &1u8)).unwrap();
            assert!(s.epoch() > e0, "{engine}: a key written");
            let e1 = s.epoch();
            s.write(|w| w.remove(EXECUTORS, "acme/edge-1")).unwrap();
            assert!(s.epoch() > e1, "{engine}: an executor removed");
            if let (Some(o), Some(before)) = (&other, seen_elsewhere) {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while o.epoch() == before {
                    assert!(std::time::Instant::now() < deadline, "the other process was not told");
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
    }

    /// What a transaction sent the server, by kind, for the slow-write log:
    /// a key read twice is one statement, a key it wrote none.
    #[test]
    fn a_transaction_tells_what_it_sent_the_server() {
        for (engine, open) in engines() {
            let s = open();
            s.write(|w| {
                w.put(NODES, "o/a", &1u8)?;
                let _: Option<u8> = w.get(NODES, "o/a")?;
                let _: Option<u8> = w.get(NODES, "o/b")?;
                let _: Option<u8> = w.get(NODES, "o/b")?;
                let _: Vec<(String, u8)> = w.scan(NODES, "o/")?;
                // The node index scanned over held entries: nothing sent first.
                w.put(NODES, "o/c", &1u8)?;
                w.index_node("o", "e", "c", 1)?;
                assert_eq!(w.executor_nodes("o", "e")?, [("c".to_string(), 1)]);
                let sent = w.txn.statements();
                let count = |what: &str| sent.iter().find(|(w, _)| w == what).map_or(0, |(_, n)| *n);
                if engine == "postgres" {
                    assert_eq!((count("(a key of nodes)"), count("(a scan of nodes)"), count("apply")), (1, 1, 1), "{sent:?}");
                    assert_eq!(count("SELECT k, seq FROM novacula_exec_nodes"), 1, "{sent:?}");
                } else {
                    assert!(sent.is_empty(), "{engine}: nothing sent anywhere");
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        }
    }

    #[test]
    fn scan_is_prefix_bounded_and_events_paginate_per_org() {
        for (engine, open) in engines() {
            let s = open();
            s.write(|w| {
                for k in ["o1/a", "o1/b", "o10/c", "o2/d", "o1%/x", "o1_/y"] {
                    w.put(NODES, k, &k.to_string())?;
                }
                for i in 1..=5 {
                    w.append_event("o1", i, &i)?;
                    w.append_event("o2", 100 + i, &(100 + i))?;
                }
                w.index_node("o1", "e1", "n1", 7)?;
                w.index_node("o1", "e10", "n2", 8)?;
                w.set_counter("c", 41)?;
                w.next("c")?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
            let keys = |prefix: &str| -> Vec<String> { s.read(|r| r.scan::<String>(NODES, prefix)).unwrap().into_iter().map(|(k, _)| k).collect() };
            assert_eq!(keys("o1/"), ["o1/a", "o1/b"], "{engine}");
            assert_eq!(keys("o1%"), ["o1%/x"], "{engine}: no pattern characters in a prefix");
            assert_eq!(keys(""), ["o1%/x", "o1/a", "o1/b", "o10/c", "o1_/y", "o2/d"], "{engine}: keys in byte order");
            let page: Vec<String> = s.read(|r| r.scan_page::<String>(NODES, "o1/", Some("o1/a"), 5)).unwrap().into_iter().map(|(k, _)| k).collect();
            assert_eq!(page, ["o1/b"], "{engine}");
            let first: Vec<String> = s.read(|r| r.scan_page::<String>(NODES, "o1", None, 2)).unwrap().into_iter().map(|(k, _)| k).collect();
            assert_eq!(first, ["o1%/x", "o1/a"], "{engine}");
            let before: Vec<String> = s.read(|r| r.scan_page::<String>(NODES, "o1/", Some("a"), 5)).unwrap().into_iter().map(|(k, _)| k).collect();
            assert_eq!(before, ["o1/a", "o1/b"], "{engine}: a cursor before the prefix starts at the prefix");
            assert_eq!(s.read(|r| r.events::<u64>("o1", 2, 2)).unwrap(), [3, 4], "{engine}");
            assert_eq!(s.read(|r| r.events::<u64>("o1", 5, 10)).unwrap(), Vec::<u64>::new(), "{engine}");
            assert_eq!(s.read(|r| r.events_before::<u64>("o2", 104, 2)).unwrap(), [103, 102], "{engine}");
            assert_eq!(s.write(|w| w.event_count("o2")).unwrap(), 5, "{engine}");
            assert_eq!(s.read(|r| r.executor_nodes("o1", "e1")).unwrap(), [("n1".to_string(), 7)], "{engine}");
            // A transaction's own index entries, over the stored ones, in order; not another executor's.
            let own = s
                .write(|w| {
                    w.index_node("o1", "e1", "n0", 11)?;
                    w.index_node("o1", "e1", "n1", 12)?;
                    w.index_node("o1", "e10", "n9", 13)?;
                    w.executor_nodes("o1", "e1")
                })
                .unwrap();
            assert_eq!(own, [("n0".to_string(), 11), ("n1".to_string(), 12)], "{engine}");
            assert_eq!(s.read(|r| r.executor_nodes("o1", "e1")).unwrap(), own, "{engine}: committed");
            assert_eq!(s.read(|r| r.counter("c")).unwrap(), 42, "{engine}");
            s.write(|w| {
                w.remove(NODES, "o1/a")?;
                w.remove_event("o1", 1)
            })
            .unwrap();
            assert_eq!(keys("o1/"), ["o1/b"], "{engine}");
            assert_eq!(s.read(|r| r.events::<u64>("o1", 0, 1)).unwrap(), [2], "{engine}");
        }
    }

    /// A batch reads and writes what one call per key would, on every engine.
    #[test]
    fn many_at_once_is_one_at_a_time() {
        for (engine, open) in engines() {
            let s = open();
            s.write(|w| {
                w.put(NODES, "o/a", &1u32)?;
                // Of two entries for one key, the last is kept; "o/c" is new.
                w.put_many(NODES, &[("o/b".to_string(), 2u32), ("o/c".to_string(), 3), ("o/b".to_string(), 4)])?;
                w.put_many::<u32>(NODES, &[])?;
                // A write transaction reads its own batch.
                assert_eq!(w.get_many::<u32>(NODES, &["o/c".to_string()])?, [Some(3)], "{engine}");
                Ok::<_, StoreError>(())
            })
            .unwrap();
            let keys: Vec<String> = ["o/b", "o/x", "o/a", "o/b", "p/a"].map(String::from).to_vec();
            let got = s.read(|r| r.get_many::<u32>(NODES, &keys)).unwrap();
            assert_eq!(got, [Some(4), None, Some(1), Some(4), None], "{engine}: in the keys' order, absent as None, a key twice twice");
            let one_by_one: Vec<Option<u32>> = keys.iter().map(|k| s.read(|r| r.get::<u32>(NODES, k)).unwrap()).collect();
            assert_eq!(got, one_by_one, "{engine}");
            assert_eq!(s.read(|r| r.get_many::<u32>(NODES, &[])).unwrap(), Vec::<Option<u32>>::new(), "{engine}");
            s.write(|w| w.txn.put_many(ORGS, &[("x".to_string(), vec![9u8, 1])])).unwrap();
            assert!(
                matches!(s.read(|r| r.get_many::<String>(ORGS, &["x".to_string()])), Err(StoreError::Decode { .. })),
                "{engine}: a corrupt value is an error"
            );
        }
    }

    /// A range removal takes what is stored and what the transaction wrote
    /// before it, spares what it writes after, and is seen by the
    /// transaction's own reads before it commits.
    #[test]
    fn a_range_removal_takes_the_keys_before_it_not_those_written_after() {
        for (engine, open) in engines() {
            let s = open();
            let all = ["n/1", "n/2", "n/3", "n/4", "n/5", "o/1"].map(String::from).to_vec();
            s.write(|w| w.put_many(NODE_HISTORY, &all.iter().map(|k| (k.clone(), 1u32)).collect::<Vec<_>>())).unwrap();
            s.write(|w| {
                w.put(NODE_HISTORY, "n/2", &2u32)?; // undone by the removal
                w.remove_range(NODE_HISTORY, "n/2", "n/5")?;
                assert_eq!(w.get::<u32>(NODE_HISTORY, "n/3")?, None, "{engine}: its own removal, before commit");
                assert_eq!(w.get_many::<u32>(NODE_HISTORY, &all)?, [Some(1), None, None, None, Some(1), Some(1)], "{engine}");
                w.put(NODE_HISTORY, "n/3", &3u32)?; // written after: kept
                Ok::<_, StoreError>(())
            })
            .unwrap();
            let got = s.read(|r| r.get_many::<u32>(NODE_HISTORY, &all)).unwrap();
            assert_eq!(got, [Some(1), None, Some(3), None, Some(1), Some(1)], "{engine}: [n/2, n/5) removed, n/3 written after it kept");
            // A removal then a read that sends what is held (a scan) sees the same.
            s.write(|w| {
                w.remove_range(NODE_HISTORY, "n/", "n/4")?;
                w.put(NODE_HISTORY, "n/0", &0u32)?;
                let left: Vec<(String, u32)> = w.scan(NODE_HISTORY, "n/")?;
                assert_eq!(left, [("n/0".to_string(), 0), ("n/5".to_string(), 1)], "{engine}");
                Ok::<_, StoreError>(())
            })
            .unwrap();
            // Nothing in the range: nothing happens.
            s.write(|w| w.remove_range(NODE_HISTORY, "x/", "x/9")).unwrap();
            assert_eq!(s.read(|r| r.scan::<u32>(NODE_HISTORY, "")).unwrap().len(), 3, "{engine}");
        }
    }

    /// Reads ahead and reads again answer what a fresh read would: before
    /// and after the transaction's own changes, sent or held.
    #[test]
    fn what_a_transaction_read_ahead_or_before_follows_its_own_changes() {
        for (engine, open) in engines() {
            let s = open();
            s.write(|w| w.put_many(NODES, &[("o/a".to_string(), 1u32), ("o/b".to_string(), 2)])).unwrap();
            s.write(|w| {
                // A key no engine can hold (PostgreSQL's text takes no NUL) is absent, not an error.
                let wanted: Vec<(Table, String)> = ["o/a", "o/b", "o/c", "o/a", "o/\0"].iter().map(|k| (NODES, k.to_string())).collect();
                w.prefetch(&wanted)?;
                assert_eq!(w.get_many::<u32>(NODES, &["o/a".into(), "o/b".into(), "o/c".into()])?, [Some(1), Some(2), None], "{engine}");
                assert_eq!(w.get::<u32>(NODES, "o/\0")?, None, "{engine}");
                w.put(NODES, "o/a", &10u32)?;
                w.put(NODES, "o/c", &30u32)?;
                w.remove(NODES, "o/b")?;
                assert_eq!(w.get_many::<u32>(NODES, &["o/a".into(), "o/b".into(), "o/c".into()])?, [Some(10), None, Some(30)], "{engine}: held");
                let _: Vec<(String, u32)> = w.scan(NODES, "x/")?; // sends what is held
                assert_eq!(w.get_many::<u32>(NODES, &["o/a".into(), "o/b".into(), "o/c".into()])?, [Some(10), None, Some(30)], "{engine}: sent");
                w.remove_range(NODES, "o/", "o/b")?;
                w.prefetch(&[(NODES, "o/a".to_string())])?;
                assert_eq!(w.get::<u32>(NODES, "o/a")?, None, "{engine}: removed in a range after it was read");
                Ok::<_, StoreError>(())
            })
            .unwrap();
            let got = s.read(|r| r.get_many::<u32>(NODES, &["o/a".into(), "o/b".into(), "o/c".into()])).unwrap();
            assert_eq!(got, [None, None, Some(30)], "{engine}");
        }
    }

    /// Writers one at a time, as redb's single writer: two threads adding to
    /// one counter in read-modify-write transactions lose no increment.
    #[test]
    fn concurrent_writers_are_serialized() {
        for (engine, open) in engines() {
            let s = std::sync::Arc::new(open());
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let s = s.clone();
                    std::thread::spawn(move || {
                        for _ in 0..25 {
                            s.write(|w| w.next("hits").map(|_| ())).unwrap();
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(s.read(|r| r.counter("hits")).unwrap(), 100, "{engine}");
        }
    }

    #[test]
    fn database_file_is_private_from_creation() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.redb");
        drop(Store::open(&path).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    /// PostgreSQL aborts a transaction at its first failed statement: the
    /// transaction then commits nothing and says so, even if the caller went on.
    #[test]
    fn a_failed_statement_fails_the_whole_transaction() {
        for (engine, open) in engines().into_iter().filter(|(e, _)| *e == "postgres") {
            let s = open();
            let r = s.write(|w| {
                let _ignored = w.put(ORGS, "nul\0key", &"refused by PostgreSQL".to_string());
                w.put(ORGS, "after", &"not kept".to_string())
            });
            assert!(r.is_err(), "{engine}");
            assert_eq!(s.read(|r| r.get::<String>(ORGS, "after")).unwrap(), None, "{engine}");
            s.write(|w| w.put(ORGS, "next", &"fine".to_string())).unwrap();
        }
    }

    #[test]
    fn corrupt_value_is_an_error_not_a_panic() {
        for (engine, open) in engines() {
            let s = open();
            s.write(|w| w.txn.put(ORGS, "x", &[9u8, 1, 2])).unwrap();
            assert!(matches!(s.read(|r| r.get::<String>(ORGS, "x")), Err(StoreError::Decode { .. })), "{engine}");
        }
    }
}
