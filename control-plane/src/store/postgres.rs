//! The PostgreSQL engine: the same tables as redb's, in four SQL tables, for
//! a control plane on a database the team already runs (and, later, several
//! replicas on one database).
//!
//! Semantics match redb's: a write transaction holds one advisory lock for
//! its whole life, so writers are serialized as redb's single writer is
//! (across every process on the database), and a read transaction is one
//! REPEATABLE READ snapshot. Keys compare byte-wise (`COLLATE "C"`), as
//! redb's `&str` keys do.
//!
//! The `postgres` client blocks on a runtime of its own, which must not run
//! on a thread that drives async tasks; so each connection lives on a thread
//! of its own, and a transaction's calls are sent to it and waited for.

use super::pg_target::Target;
use super::{Engine, ReadTxn, Result, StoreError, Table, WriteTxn};
use postgres::Client;
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};

/// The versioned schema, applied in order at open; the version reached is
/// kept in `novacula_schema`. Never edit a step once released: add one, and
/// bump `migrate::CURRENT` with it (the version running replicas check, see
/// [`REQUIRE_SCHEMA`]: an older one then steps aside).
/// Every table is prefixed `novacula_`: a database the team already runs keeps its own names.
const MIGRATIONS: &[&str] = &["CREATE TABLE novacula_records (tbl TEXT NOT NULL, k TEXT COLLATE \"C\" NOT NULL, v BYTEA NOT NULL, PRIMARY KEY (tbl, k));
     CREATE TABLE novacula_exec_nodes (k TEXT COLLATE \"C\" PRIMARY KEY, seq BIGINT NOT NULL);
     CREATE TABLE novacula_events (org TEXT COLLATE \"C\" NOT NULL, seq BIGINT NOT NULL, v BYTEA NOT NULL, PRIMARY KEY (org, seq));
     CREATE TABLE novacula_meta (name TEXT COLLATE \"C\" PRIMARY KEY, value BIGINT NOT NULL);"];

/// The advisory lock every write transaction holds (an arbitrary constant, "nova").
const WRITER_LOCK: i64 = 0x6e6f_7661;
/// A write transaction's start: one round trip that begins it, takes the
/// writer lock and checks the records' schema (see [`REQUIRE_SCHEMA`]).
static BEGIN_WRITE: LazyLock<String> = LazyLock::new(|| format!("BEGIN; SELECT pg_advisory_xact_lock({WRITER_LOCK}); {}", *REQUIRE_SCHEMA));
/// A read's start: one snapshot for the whole transaction, the schema checked.
static BEGIN_READ: LazyLock<String> = LazyLock::new(|| format!("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {}", *REQUIRE_SCHEMA));
/// Fails the transaction (SQLSTATE [`OUTDATED`], the version found as its
/// message) once a newer release has migrated the records: replicas are
/// upgraded one at a time, and one still running this release must neither
/// misread the new shapes nor write old ones among them. Part of the
/// transaction's first round trip: no round trip of its own (about 20 µs of
/// the server's time, measured over 5,000 begins with psql).
static REQUIRE_SCHEMA: LazyLock<String> = LazyLock::new(|| {
    format!(
        "DO $$DECLARE v BIGINT; BEGIN SELECT value INTO v FROM novacula_meta WHERE name = '{}'; \
         IF v > {} THEN RAISE EXCEPTION USING ERRCODE = '{OUTDATED}', MESSAGE = v::text; END IF; END$$",
        super::migrate::SCHEMA_VERSION_KEY,
        super::migrate::CURRENT
    )
});
/// The SQLSTATE of [`REQUIRE_SCHEMA`]'s refusal (a class of its own, "NV").
const OUTDATED: &str = "NV001";
/// The session-level advisory lock of the process that runs time-based work ("nova" + 1).
pub(super) const LEASE_LOCK: i64 = 0x6e6f_7662;
/// The channel change notifications travel on.
const CHANNEL: &str = "novacula_changes";
/// Connections (each a PostgreSQL backend and a thread here) at most; a
/// transaction beyond them waits for one to be free.
const CONNECTIONS_MAX: usize = 16;

/// The driver's error with its causes: its own text is only "db error" or
/// "error connecting to server"; the server's message and the TLS failure are
/// in the chain, and an operator needs them.
fn pg_error(e: postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error().filter(|db| db.code().code() == OUTDATED) {
        let found = db.message().parse().unwrap_or(u64::MAX);
        return StoreError::Outdated { found, known: super::migrate::CURRENT };
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    StoreError::Engine(text.into())
}

fn gone() -> StoreError {
    StoreError::Engine("the database connection's thread ended".into())
}

/// A bound to compare with, as PostgreSQL's BIGINT (a larger one means "all").
fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A value to store, as BIGINT: one beyond it is refused, never changed.
fn stored(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| StoreError::Engine(format!("{n} does not fit PostgreSQL's BIGINT").into()))
}

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// A connection's client and the statements it has prepared: each SQL text
/// is prepared once per connection, so a statement is one round trip, not two.
struct Session {
    client: Client,
    prepared: std::collections::HashMap<&'static str, postgres::Statement>,
}

impl Session {
    fn query(&mut self, sql: &'static str, params: &[&(dyn postgres::types::ToSql + Sync)]) -> Result<Vec<postgres::Row>, postgres::Error> {
        let statement = match self.prepared.get(sql) {
            Some(st) => st.clone(),
            None => {
                let st = self.client.prepare(sql)?;
                self.prepared.insert(sql, st.clone());
                st
            }
        };
        self.client.query(&statement, params)
    }
}

/// A connection to `target` (which gives up on an unreachable server and notices a dead one).
fn connect(target: &Target) -> Result<Client, postgres::Error> {
    let mut client = target.connect()?;
    // Statements are prepared once and reused: keep planning each run with
    // its values, or a generic plan loses the bound a prefix scan derives
    // from its parameter and reads to the table's end.
    // No JIT: a group's one statement is estimated far above `jit_above_cost`
    // (its planner sees arrays of unknown length) though it runs in tens of
    // milliseconds, and compiling it took a second, under the writer lock.
    client.batch_execute("SET plan_cache_mode = force_custom_plan; SET jit = off")?;
    Ok(client)
}

/// `url` as it may be shown: hosts, ports, database and TLS, never the user's password.
pub fn describe(url: &str) -> String {
    Target::describe(url)
}

/// One connection on its own thread.
struct Conn {
    jobs: mpsc::Sender<Job>,
}

impl Conn {
    fn open(target: &Target) -> Result<Conn> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready, connected) = mpsc::sync_channel(1);
        let target = target.clone();
        std::thread::Builder::new()
            .name("postgres".into())
            .spawn(move || match connect(&target) {
                Ok(client) => {
                    let _ = ready.send(Ok(()));
                    let mut session = Session { client, prepared: Default::default() };
                    // Ends when the pool drops the connection (its sender).
                    while let Ok(job) = queue.recv() {
                        job(&mut session);
                    }
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            })
            .map_err(|e| StoreError::Engine(Box::new(e)))?;
        connected.recv().map_err(|_| gone())?.map_err(pg_error)?;
        Ok(Conn { jobs })
    }

    /// Run `f` on the connection's thread and wait for its answer.
    fn call<R: Send + 'static>(&self, f: impl FnOnce(&mut Client) -> Result<R, postgres::Error> + Send + 'static) -> Result<R> {
        self.session(move |s| f(&mut s.client))
    }

    /// The same, with the connection's prepared statements at hand.
    fn session<R: Send + 'static>(&self, f: impl FnOnce(&mut Session) -> Result<R, postgres::Error> + Send + 'static) -> Result<R> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs
            .send(Box::new(move |s| {
                let _ = tx.send(f(s));
            }))
            .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?.map_err(pg_error)
    }

    fn batch(&self, sql: &'static str) -> Result<()> {
        self.call(move |c| c.batch_execute(sql))
    }
}

struct Pool {
    target: Target,
    state: Mutex<PoolState>,
    freed: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Conn>,
    open: usize,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self) -> Result<Conn> {
        let mut state = self.lock();
        loop {
            if let Some(c) = state.idle.pop() {
                return Ok(c);
            }
            if state.open < CONNECTIONS_MAX {
                state.open += 1;
                drop(state);
                return Conn::open(&self.target).inspect_err(|_| self.discard());
            }
            state = self.freed.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn put(&self, c: Conn) {
        self.lock().idle.push(c);
        self.freed.notify_one();
    }

    /// A connection closed (failed, or in an unknown state): room for another.
    fn discard(&self) {
        let mut state = self.lock();
        state.open = state.open.saturating_sub(1);
        drop(state);
        self.freed.notify_one();
    }
}

pub struct PgEngine {
    pool: Arc<Pool>,
    /// The connection that holds the lease, once taken: the lock lives as long as it does.
    lease: Mutex<Option<Conn>>,
    /// Tells the listening thread to stop when the engine goes.
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for PgEngine {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl PgEngine {
    /// Connect to `url` (`postgres://user:password@host:port/database`) and
    /// bring the schema up to date.
    pub fn open(url: &str) -> Result<PgEngine> {
        let pool = Arc::new(Pool { target: Target::parse(url)?, state: Mutex::new(PoolState::default()), freed: Condvar::new() });
        let conn = pool.get()?;
        let migrated = conn.call(|c| {
            let mut t = c.transaction()?;
            // One migrator at a time, whichever replica starts first.
            t.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITER_LOCK])?;
            t.batch_execute("CREATE TABLE IF NOT EXISTS novacula_schema (version INT NOT NULL)")?;
            let version: i32 = t.query_opt("SELECT version FROM novacula_schema", &[])?.map_or(0, |r| r.get(0));
            if usize::try_from(version).unwrap_or(usize::MAX) > MIGRATIONS.len() {
                let why = format!(
                    "the database's tables are at layout {version}, newer than this control plane knows ({}): a newer release migrated it; run that release here too",
                    MIGRATIONS.len()
                );
                return Ok(Err(StoreError::Engine(why.into())));
            }
            for (i, step) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
                t.batch_execute(step)?;
                let reached = i32::try_from(i + 1).unwrap_or(i32::MAX);
                t.execute("DELETE FROM novacula_schema", &[])?;
                t.execute("INSERT INTO novacula_schema (version) VALUES ($1)", &[&reached])?;
            }
            t.commit().map(Ok)
        });
        pool.put(conn);
        migrated??;
        Ok(PgEngine { pool, lease: Mutex::new(None), stop: Default::default() })
    }
}

impl Engine for PgEngine {
    fn begin_read(&self) -> Result<Box<dyn ReadTxn>> {
        Ok(Box::new(Txn::begin(&self.pool, BEGIN_READ.as_str())?))
    }

    fn begin_write(&self) -> Result<Box<dyn WriteTxn>> {
        // READ COMMITTED: each statement sees every commit before it, and none
        // can come while this transaction holds the writer lock.
        Ok(Box::new(Txn::begin(&self.pool, BEGIN_WRITE.as_str())?))
    }

    fn publish(&self, message: &str) -> Result<()> {
        let conn = self.pool.get()?;
        let message = message.to_string();
        let sent = conn.call(move |c| c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &message]).map(|_| ()));
        match sent {
            Ok(()) => self.pool.put(conn),
            Err(_) => self.pool.discard(),
        }
        sent
    }

    fn subscribe(&self, deliver: Box<dyn Fn(&str) + Send>) -> Result<()> {
        let (target, stop) = (self.pool.target.clone(), self.stop.clone());
        std::thread::Builder::new()
            .name("postgres-listen".into())
            .spawn(move || {
                use std::sync::atomic::Ordering;
                // Reconnects after a failure (then says LISTENING); a missed wakeup costs a
                // poller at most its long-poll wait and crate::polls::HOLD.
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut client) = connect(&target) else {
                        std::thread::sleep(std::time::Duration::from_secs(1));
                        continue;
                    };
                    if client.batch_execute(&format!("LISTEN {CHANNEL}")).is_err() {
                        continue;
                    }
                    // What was published while nobody listened is lost.
                    deliver(super::LISTENING);
                    while !stop.load(Ordering::Relaxed) && !client.is_closed() {
                        let mut batch = client.notifications();
                        let mut iter = batch.timeout_iter(std::time::Duration::from_secs(1));
                        loop {
                            match postgres::fallible_iterator::FallibleIterator::next(&mut iter) {
                                Ok(Some(n)) => deliver(n.payload()),
                                Ok(None) => break,
                                Err(_) => break,
                            }
                        }
                    }
                }
            })
            .map_err(|e| StoreError::Engine(Box::new(e)))?;
        Ok(())
    }

    fn hold_lease(&self) -> Result<bool> {
        let mut lease = self.lease.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(conn) = lease.as_ref() {
            // Held while the session lives; a dead one has lost it.
            if conn.call(|c| c.batch_execute("SELECT 1")).is_ok() {
                return Ok(true);
            }
            *lease = None;
        }
        let conn = Conn::open(&self.pool.target)?;
        let taken = conn.call(|c| c.query_one("SELECT pg_try_advisory_lock($1)", &[&LEASE_LOCK]).map(|r| r.get::<_, bool>(0)))?;
        if taken {
            *lease = Some(conn);
        }
        Ok(taken)
    }

    fn release_lease(&self) {
        // The session's end releases its advisory lock.
        self.lease.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }
}

/// A transaction on one connection; rolled back unless committed.
struct Txn {
    conn: Option<Conn>,
    pool: Arc<Pool>,
    /// A statement failed: PostgreSQL has aborted the transaction, and a
    /// COMMIT would quietly roll it back, so commit refuses instead.
    failed: std::cell::Cell<bool>,
    /// Writes not sent yet (see [`Pending`]).
    pending: std::cell::RefCell<Pending>,
    /// Records as this transaction has read or sent them (`None`: absent):
    /// a key read again costs no round trip. Sound because the transaction
    /// is the only writer while it writes (see [`WRITER_LOCK`]) and its own
    /// changes are held in `pending` first, then recorded here when sent.
    seen: std::cell::RefCell<Records>,
    /// Statements sent, by kind (for the log of a write that held the writer long).
    sent: std::cell::RefCell<HashMap<String, u32>>,
}

/// `(table, key)` -> value, or `None`: absent. Ordered, so a range removal
/// takes the keys in its range, not a pass over all (a group of reports
/// removes a range per history point: over thousands of held records each,
/// that pass had been most of the writer's time).
type Records = BTreeMap<(&'static str, String), Option<Vec<u8>>>;

/// Remove `t`'s keys `from <= k < to` from `records`.
fn remove_range_in(records: &mut Records, t: &'static str, from: &str, to: &str) {
    if from >= to {
        return;
    }
    let inside: Vec<(&'static str, String)> = records.range((t, from.to_string())..(t, to.to_string())).map(|(k, _)| k.clone()).collect();
    for k in inside {
        records.remove(&k);
    }
}

/// Ranges of keys removed, per table: `from` -> `to` (`from <= k < to`),
/// merged as they come so they never overlap, and a key is looked up in the
/// one range that can hold it.
#[derive(Default)]
struct Cuts(HashMap<&'static str, BTreeMap<String, String>>);

impl Cuts {
    fn add(&mut self, t: &'static str, from: &str, to: &str) {
        if from >= to {
            return;
        }
        let ranges = self.0.entry(t).or_default();
        let (mut from, mut to) = (from.to_string(), to.to_string());
        // One that starts before and reaches `from`: the merged range starts there.
        if let Some((f, end)) = ranges.range(..=from.clone()).next_back() {
            if *end >= from {
                (from, to) = (f.clone(), to.max(end.clone()));
            }
        }
        // Those that start inside the merged range go into it.
        let inside: Vec<String> = ranges.range(from.clone()..=to.clone()).map(|(f, _)| f.clone()).collect();
        for f in inside {
            if let Some(end) = ranges.remove(&f) {
                to = to.max(end);
            }
        }
        ranges.insert(from, to);
    }

    fn covers(&self, t: &'static str, k: &str) -> bool {
        self.0.get(t).and_then(|ranges| ranges.range(..=k.to_string()).next_back()).is_some_and(|(_, to)| k < to.as_str())
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A write transaction's changes held here until a read could see them or it
/// commits, then sent as one statement: a report of ten nodes or a batch of
/// 200 heartbeats is one round trip to the server, not one per record (the
/// server's round trips, under the writer lock, were what limited a fleet).
/// Of several changes to one key, the last is kept.
#[derive(Default)]
struct Pending {
    /// `(table, key)` -> new value, or `None`: removed.
    records: Records,
    /// Node index entries: only ever added, so a scan is the server's entries with these over them.
    index: BTreeMap<String, i64>,
    counters: HashMap<String, i64>,
    /// `(org, seq)` -> event, or `None`: removed.
    events: HashMap<(String, i64), Option<Vec<u8>>>,
    /// Keys removed by range, but those in `records` (written after the removal).
    cuts: Cuts,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.records.is_empty() && self.index.is_empty() && self.counters.is_empty() && self.events.is_empty() && self.cuts.is_empty()
    }

    /// What the held changes say of a key: `Some(value)` (`Some(None)`:
    /// removed), or `None`: ask the server.
    fn held(&self, t: &'static str, k: &str) -> Option<Option<Vec<u8>>> {
        if let Some(v) = self.records.get(&(t, k.to_string())) {
            return Some(v.clone());
        }
        self.cuts.covers(t, k).then_some(None)
    }
}

/// Every kind of change in one statement. No key is named twice within
/// `put`, `del` or `ev` (changes are kept per key); a row that both `del`
/// and `cut` remove is removed once (a statement skips a row it already
/// deleted), and `cut` spares what `put` writes.
/// `del` and `cut` find each key or range in the index (`OFFSET 0` keeps the
/// planner from joining them to the whole table, as it may for many keys or
/// any range: 5 s for 100 ranges of 700,000 records instead of 2 ms).
const APPLY: &str = "WITH \
    put AS (INSERT INTO novacula_records (tbl, k, v) SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) \
            ON CONFLICT (tbl, k) DO UPDATE SET v = EXCLUDED.v), \
    del AS (DELETE FROM novacula_records r WHERE r.ctid = ANY(ARRAY( \
            SELECT x.ctid FROM unnest($4::text[], $5::text[]) AS d(tbl, k) \
            CROSS JOIN LATERAL (SELECT ctid FROM novacula_records WHERE tbl = d.tbl AND k = d.k OFFSET 0) AS x))), \
    ix AS (INSERT INTO novacula_exec_nodes (k, seq) SELECT * FROM unnest($6::text[], $7::bigint[]) \
           ON CONFLICT (k) DO UPDATE SET seq = EXCLUDED.seq), \
    ctr AS (INSERT INTO novacula_meta (name, value) SELECT * FROM unnest($8::text[], $9::bigint[]) \
            ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value), \
    ev AS (INSERT INTO novacula_events (org, seq, v) SELECT * FROM unnest($10::text[], $11::bigint[], $12::bytea[]) \
           ON CONFLICT (org, seq) DO UPDATE SET v = EXCLUDED.v), \
    evdel AS (DELETE FROM novacula_events e USING unnest($13::text[], $14::bigint[]) AS d(org, seq) WHERE e.org = d.org AND e.seq = d.seq), \
    cut AS (DELETE FROM novacula_records r WHERE r.ctid = ANY(ARRAY( \
            SELECT x.ctid FROM unnest($15::text[], $16::text[], $17::text[]) AS c(tbl, lo, hi) \
            CROSS JOIN LATERAL (SELECT ctid, tbl, k FROM novacula_records WHERE tbl = c.tbl AND k >= c.lo AND k < c.hi OFFSET 0) AS x \
            WHERE NOT EXISTS (SELECT 1 FROM unnest($1::text[], $2::text[]) AS p(tbl, k) WHERE p.tbl = x.tbl AND p.k = x.k)))) \
    SELECT 1";

impl Txn {
    /// What this transaction knows of a key without asking the server:
    /// its own held change, else what it read or sent (see [`Txn::seen`]).
    fn known(&self, t: &'static str, k: &str) -> Option<Option<Vec<u8>>> {
        if k.contains('\0') {
            // PostgreSQL's text holds no NUL: no such key is stored (and
            // asking would fail the statement, and with it the transaction).
            return Some(None);
        }
        self.pending.borrow().held(t, k).or_else(|| self.seen.borrow().get(&(t, k.to_string())).cloned())
    }

    /// Begin with `begin` on a pooled connection; a pooled connection that
    /// died while idle (a server restart) is replaced once.
    fn begin(pool: &Arc<Pool>, begin: &'static str) -> Result<Txn> {
        let mut retried = false;
        loop {
            let txn = Txn {
                conn: Some(pool.get()?),
                pool: pool.clone(),
                failed: Default::default(),
                pending: Default::default(),
                seen: Default::default(),
                sent: Default::default(),
            };
            match txn.conn()?.batch(begin) {
                Ok(()) => return Ok(txn),
                Err(e @ StoreError::Outdated { .. }) => return Err(e),
                Err(e) if retried => return Err(e),
                Err(_) => {
                    retried = true;
                    drop(txn); // its ROLLBACK fails too: the connection is discarded
                }
            }
        }
    }

    fn count(&self, what: &str) {
        *self.sent.borrow_mut().entry(what.to_string()).or_default() += 1;
    }

    fn conn(&self) -> Result<&Conn> {
        self.conn.as_ref().ok_or_else(gone)
    }

    fn rows(&self, sql: &'static str, args: Vec<Box<dyn postgres::types::ToSql + Send + Sync>>) -> Result<Vec<postgres::Row>> {
        self.count(if sql == APPLY { "apply" } else { sql.split(" WHERE").next().unwrap_or(sql) });
        let out = self.conn()?.session(move |s| {
            let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = args.iter().map(|a| a.as_ref() as &(dyn postgres::types::ToSql + Sync)).collect();
            s.query(sql, &refs)
        });
        if out.is_err() {
            self.failed.set(true);
        }
        out
    }

    fn exec(&self, sql: &'static str, args: Vec<Box<dyn postgres::types::ToSql + Send + Sync>>) -> Result<()> {
        self.rows(sql, args).map(|_| ())
    }

    /// Send the changes held (before a read that must see them, and at commit).
    fn send_pending(&self) -> Result<()> {
        if self.pending.borrow().is_empty() {
            return Ok(());
        }
        let p = self.pending.take();
        {
            // What is sent is what this transaction reads from now on (if
            // it is sent: see below).
            let mut seen = self.seen.borrow_mut();
            for ((t, k), v) in &p.records {
                seen.insert((t, k.clone()), v.clone());
            }
        }
        let (mut put, mut del) = ((Vec::new(), Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
        for ((t, k), v) in p.records {
            match v {
                Some(v) => {
                    put.0.push(t.to_string());
                    put.1.push(k);
                    put.2.push(v);
                }
                None => {
                    del.0.push(t.to_string());
                    del.1.push(k);
                }
            }
        }
        // A key written after its range was removed stays (the statement's
        // `cut` spares what `put` writes).
        let mut cut = (Vec::new(), Vec::new(), Vec::new());
        for (t, ranges) in p.cuts.0 {
            for (from, to) in ranges {
                cut.0.push(t.to_string());
                cut.1.push(from);
                cut.2.push(to);
            }
        }
        let (ix_k, ix_seq): (Vec<String>, Vec<i64>) = p.index.into_iter().unzip();
        let (ctr_name, ctr_value): (Vec<String>, Vec<i64>) = p.counters.into_iter().unzip();
        let (mut ev, mut evdel) = ((Vec::new(), Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
        for ((org, seq), v) in p.events {
            match v {
                Some(v) => {
                    ev.0.push(org);
                    ev.1.push(seq);
                    ev.2.push(v);
                }
                None => {
                    evdel.0.push(org);
                    evdel.1.push(seq);
                }
            }
        }
        let sent = self.exec(
            APPLY,
            vec![
                Box::new(put.0),
                Box::new(put.1),
                Box::new(put.2),
                Box::new(del.0),
                Box::new(del.1),
                Box::new(ix_k),
                Box::new(ix_seq),
                Box::new(ctr_name),
                Box::new(ctr_value),
                Box::new(ev.0),
                Box::new(ev.1),
                Box::new(ev.2),
                Box::new(evdel.0),
                Box::new(evdel.1),
                Box::new(cut.0),
                Box::new(cut.1),
                Box::new(cut.2),
            ],
        );
        if sent.is_err() {
            // Not written after all: the server answers for every key again
            // (it refuses: the transaction has failed).
            self.seen.borrow_mut().clear();
        }
        sent
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Not committed: undo on the connection's thread, without waiting
            // for it (a read's end costs its caller no round trip), and reuse
            // the connection only if that worked.
            let (pool, jobs) = (self.pool.clone(), conn.jobs.clone());
            let sent = jobs.send(Box::new(move |s: &mut Session| {
                if s.client.batch_execute("ROLLBACK").is_ok() {
                    pool.put(conn);
                } else {
                    pool.discard();
                }
            }));
            if sent.is_err() {
                self.pool.discard();
            }
        }
    }
}

fn kv(rows: Vec<postgres::Row>) -> Vec<(String, Vec<u8>)> {
    rows.into_iter().map(|r| (r.get(0), r.get(1))).collect()
}

fn seq_v(rows: Vec<postgres::Row>) -> Vec<(u64, Vec<u8>)> {
    rows.into_iter().map(|r| (u64::try_from(r.get::<_, i64>(0)).unwrap_or(0), r.get(1))).collect()
}

impl ReadTxn for Txn {
    fn get(&self, t: Table, k: &str) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.known(t.name(), k) {
            return Ok(v);
        }
        self.count(&format!("(a key of {})", t.name()));
        let rows = self.rows("SELECT v FROM novacula_records WHERE tbl = $1 AND k = $2", vec![Box::new(t.name()), Box::new(k.to_string())])?;
        let v: Option<Vec<u8>> = rows.into_iter().next().map(|r| r.get(0));
        self.seen.borrow_mut().insert((t.name(), k.to_string()), v.clone());
        Ok(v)
    }

    fn get_many(&self, t: Table, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Held changes and what was read answer for their keys; the server for the rest.
        let held: HashMap<&str, Option<Vec<u8>>> = keys.iter().filter_map(|k| self.known(t.name(), k).map(|v| (k.as_str(), v))).collect();
        let ask: Vec<String> = keys.iter().filter(|k| !held.contains_key(k.as_str())).cloned().collect();
        let found: HashMap<String, Vec<u8>> = if ask.is_empty() {
            HashMap::new()
        } else {
            let sql = "SELECT k, v FROM novacula_records WHERE tbl = $1 AND k = ANY($2)";
            self.count(&format!("(keys of {})", t.name()));
            let found: HashMap<String, Vec<u8>> = kv(self.rows(sql, vec![Box::new(t.name()), Box::new(ask.clone())])?).into_iter().collect();
            let mut seen = self.seen.borrow_mut();
            for k in ask {
                let v = found.get(&k).cloned();
                seen.insert((t.name(), k), v);
            }
            found
        };
        Ok(keys.iter().map(|k| held.get(k.as_str()).cloned().unwrap_or_else(|| found.get(k).cloned())).collect())
    }

    fn prefetch(&self, wanted: &[(Table, String)]) -> Result<()> {
        let mut ask: (Vec<&'static str>, Vec<String>) = (Vec::new(), Vec::new());
        let mut asked = std::collections::HashSet::new();
        for (t, k) in wanted {
            if self.known(t.name(), k).is_none() && asked.insert((t.name(), k.as_str())) {
                ask.0.push(t.name());
                ask.1.push(k.clone());
            }
        }
        if ask.0.is_empty() {
            return Ok(());
        }
        // Each key looked up in the index (see [`APPLY`]): thousands of keys
        // could otherwise be joined to a scan of the whole table.
        let sql = "SELECT x.tbl, x.k, x.v FROM unnest($1::text[], $2::text[]) AS w(tbl, k) \
                   CROSS JOIN LATERAL (SELECT tbl, k, v FROM novacula_records WHERE tbl = w.tbl AND k = w.k OFFSET 0) AS x";
        let rows = self.rows(sql, vec![Box::new(ask.0.iter().map(ToString::to_string).collect::<Vec<String>>()), Box::new(ask.1.clone())])?;
        let mut found: HashMap<(String, String), Vec<u8>> = rows.into_iter().map(|r| ((r.get(0), r.get(1)), r.get(2))).collect();
        let mut seen = self.seen.borrow_mut();
        for (t, k) in ask.0.into_iter().zip(ask.1) {
            let v = found.remove(&(t.to_string(), k.clone()));
            seen.insert((t, k), v);
        }
        Ok(())
    }

    fn scan(&self, t: Table, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.send_pending()?;
        self.count(&format!("(a scan of {})", t.name()));
        let sql = "SELECT k, v FROM novacula_records WHERE tbl = $1 AND k >= $2 AND starts_with(k, $2) ORDER BY k";
        Ok(kv(self.rows(sql, vec![Box::new(t.name()), Box::new(prefix.to_string())])?))
    }

    fn scan_page(&self, t: Table, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
        self.send_pending()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match after.filter(|a| *a >= prefix) {
            Some(after) => {
                let sql = "SELECT k, v FROM novacula_records WHERE tbl = $1 AND k > $3 AND starts_with(k, $2) ORDER BY k LIMIT $4";
                Ok(kv(self.rows(sql, vec![Box::new(t.name()), Box::new(prefix.to_string()), Box::new(after.to_string()), Box::new(limit)])?))
            }
            // A cursor before the prefix starts the page at the prefix.
            None => {
                let sql = "SELECT k, v FROM novacula_records WHERE tbl = $1 AND k >= $2 AND starts_with(k, $2) ORDER BY k LIMIT $3";
                Ok(kv(self.rows(sql, vec![Box::new(t.name()), Box::new(prefix.to_string()), Box::new(limit)])?))
            }
        }
    }

    fn index_scan(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        // The held entries over the server's, without sending the held
        // changes first (a group of deploys scanned its executor's nodes,
        // each scan sending the group's held reports).
        let sql = "SELECT k, seq FROM novacula_exec_nodes WHERE k >= $1 AND starts_with(k, $1) ORDER BY k";
        let rows = self.rows(sql, vec![Box::new(prefix.to_string())])?;
        let mut scan: BTreeMap<String, u64> =
            rows.into_iter().map(|r| (r.get::<_, String>(0)[prefix.len()..].to_string(), u64::try_from(r.get::<_, i64>(1)).unwrap_or(0))).collect();
        let pending = self.pending.borrow();
        for (k, seq) in pending.index.range(prefix.to_string()..).take_while(|(k, _)| k.starts_with(prefix)) {
            scan.insert(k[prefix.len()..].to_string(), u64::try_from(*seq).unwrap_or(0));
        }
        Ok(scan.into_iter().collect())
    }

    fn counter(&self, name: &str) -> Result<u64> {
        if let Some(v) = self.pending.borrow().counters.get(name) {
            return Ok(u64::try_from(*v).unwrap_or(0));
        }
        let rows = self.rows("SELECT value FROM novacula_meta WHERE name = $1", vec![Box::new(name.to_string())])?;
        Ok(rows.into_iter().next().map_or(0, |r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
    }

    fn events_after(&self, org: &str, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        self.send_pending()?;
        let sql = "SELECT seq, v FROM novacula_events WHERE org = $1 AND seq > $2 ORDER BY seq LIMIT $3";
        Ok(seq_v(self.rows(sql, vec![Box::new(org.to_string()), Box::new(big(after)), Box::new(i64::try_from(limit).unwrap_or(i64::MAX))])?))
    }

    fn events_before(&self, org: &str, before: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        self.send_pending()?;
        let sql = "SELECT seq, v FROM novacula_events WHERE org = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3";
        Ok(seq_v(self.rows(sql, vec![Box::new(org.to_string()), Box::new(big(before)), Box::new(i64::try_from(limit).unwrap_or(i64::MAX))])?))
    }

    fn event_count(&self, org: &str) -> Result<u64> {
        self.send_pending()?;
        let rows = self.rows("SELECT count(*) FROM novacula_events WHERE org = $1", vec![Box::new(org.to_string())])?;
        Ok(rows.into_iter().next().map_or(0, |r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
    }
}

impl WriteTxn for Txn {
    fn put(&mut self, t: Table, k: &str, v: &[u8]) -> Result<()> {
        self.pending.get_mut().records.insert((t.name(), k.to_string()), Some(v.to_vec()));
        Ok(())
    }

    fn remove(&mut self, t: Table, k: &str) -> Result<()> {
        self.pending.get_mut().records.insert((t.name(), k.to_string()), None);
        Ok(())
    }

    fn remove_range(&mut self, t: Table, from: &str, to: &str) -> Result<()> {
        let p = self.pending.get_mut();
        // Held changes in the range are undone by it (a key written later is kept).
        remove_range_in(&mut p.records, t.name(), from, to);
        p.cuts.add(t.name(), from, to);
        remove_range_in(self.seen.get_mut(), t.name(), from, to);
        Ok(())
    }

    fn index_put(&mut self, k: &str, seq: u64) -> Result<()> {
        self.pending.get_mut().index.insert(k.to_string(), stored(seq)?);
        Ok(())
    }

    fn set_counter(&mut self, name: &str, value: u64) -> Result<()> {
        self.pending.get_mut().counters.insert(name.to_string(), stored(value)?);
        Ok(())
    }

    fn append_event(&mut self, org: &str, seq: u64, v: &[u8]) -> Result<()> {
        self.pending.get_mut().events.insert((org.to_string(), stored(seq)?), Some(v.to_vec()));
        Ok(())
    }

    fn remove_event(&mut self, org: &str, seq: u64) -> Result<()> {
        // Beyond BIGINT there is nothing stored to remove.
        if let Ok(seq) = i64::try_from(seq) {
            self.pending.get_mut().events.insert((org.to_string(), seq), None);
        }
        Ok(())
    }

    fn statements(&self) -> Vec<(String, u32)> {
        let mut sent: Vec<(String, u32)> = self.sent.borrow().iter().map(|(k, n)| (k.clone(), *n)).collect();
        sent.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        sent
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        // On failure, dropped: rolled back.
        self.send_pending()?;
        if self.failed.get() {
            // Dropped: rolled back.
            return Err(StoreError::Engine("a statement of this transaction failed; it was rolled back".into()));
        }
        let conn = self.conn.take().ok_or_else(gone)?;
        match conn.batch("COMMIT") {
            Ok(()) => {
                self.pool.put(conn);
                Ok(())
            }
            Err(e) => {
                self.pool.discard();
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// Merged ranges cover exactly the keys the ranges added cover, and the
    /// ordered records lose exactly the keys in a removed range.
    #[test]
    fn ranges_removed_cover_what_was_removed_and_nothing_else() {
        let keys: Vec<String> = ["", "a", "a/", "a/1", "a/2", "a0", "b", "b/1", "ba", "c"].iter().map(ToString::to_string).collect();
        let mut seed = 7u64;
        let mut pick = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            &keys[(seed >> 33) as usize % keys.len()]
        };
        for _ in 0..200 {
            let (mut cuts, mut added) = (super::Cuts::default(), Vec::new());
            let mut records: super::Records = keys.iter().map(|k| (("t", k.clone()), None)).collect();
            for _ in 0..4 {
                let (from, to) = (pick().clone(), pick().clone());
                cuts.add("t", &from, &to);
                super::remove_range_in(&mut records, "t", &from, &to);
                added.push((from, to));
            }
            for k in &keys {
                let naive = added.iter().any(|(from, to)| from <= k && k < to);
                assert_eq!(cuts.covers("t", k), naive, "{k:?} in {added:?}");
                assert!(!cuts.covers("u", k), "another table");
                assert_eq!(records.contains_key(&("t", k.clone())), !naive, "{k:?} in {added:?}");
            }
            let merged = &cuts.0.get("t").cloned().unwrap_or_default();
            assert!(merged.iter().zip(merged.iter().skip(1)).all(|((_, to), (from, _))| to < from), "ranges overlap or touch: {merged:?}");
        }
    }

    /// The store's sessions plan each statement without JIT (a group's write
    /// was compiled for a second per commit; see [`super::connect`]).
    #[test]
    fn a_session_runs_without_jit() {
        let Some(url) = super::super::pg_server::database_for_test() else { return };
        let mut client = super::connect(&super::Target::parse(&url).unwrap()).unwrap();
        let jit: String = client.query_one("SHOW jit", &[]).unwrap().get(0);
        assert_eq!(jit, "off");
    }

    #[test]
    fn a_write_transaction_takes_the_writer_lock() {
        assert!(super::BEGIN_WRITE.contains(&format!("pg_advisory_xact_lock({});", super::WRITER_LOCK)));
    }
}
