//! Shared server state.

use crate::clock::Clock;
use crate::store::Store;
use novacula_core::entropy::{Entropy, OsEntropy};
use novacula_core::sync::LockExt;
use novacula_core::throttle::{self, LoginThrottle};
use novacula_core::{Timestamp, Version};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// The control plane's own version; its major sets the compatibility window.
    pub cp_version: Version,
    pub heartbeat_timeout: Duration,
    /// Upper bound on a spec long-poll.
    pub max_poll_wait: Duration,
    /// How often liveness and alerts are re-evaluated for executors that went quiet.
    pub sweep_interval: Duration,
    /// Connection limit and read timeouts of the HTTP server.
    pub http: crate::server::HttpLimits,
    /// Failed sign-ins allowed per client address.
    pub login_address_limit: throttle::Limit,
    /// How long and how many events each organization keeps.
    pub event_retention: crate::services::events::Retention,
    /// Mail out (invitations), when set.
    pub mail: Option<crate::mail::MailConfig>,
    /// Anyone may create an account with an organization of their own (`serve --allow-signup`).
    pub allow_signup: bool,
    /// How long each organization's audit log keeps its entries.
    pub audit_retention: Duration,
    /// The platform's administrators (`serve --platform-admin`): they see
    /// every organization, deactivate one, publish releases, impersonate.
    pub platform_admins: std::collections::BTreeSet<String>,
    /// `POST /graphql` answers introspection queries (`serve --graphql-introspection`).
    pub graphql_introspection: bool,
    /// How often events, audit entries and sessions past their retention are removed.
    pub prune_interval: Duration,
    /// Store work runs on threads of its own (the blocking pool, the group
    /// commit), so a commit waiting for the disk never holds an async worker.
    /// The simulator turns it off: all on its one thread, deterministic.
    pub store_threads: bool,
    /// Store work running at once on those threads. Reads are CPU work and
    /// PostgreSQL has 16 connections: more threads would only contend (and
    /// each new thread's allocator heap starts cold); the rest wait their turn
    /// without holding a thread.
    pub store_threads_max: usize,
}

impl Default for Config {
    #[allow(clippy::expect_used, reason = "the crate version is semver, checked by cargo")]
    fn default() -> Self {
        Config {
            cp_version: env!("CARGO_PKG_VERSION").parse().expect("crate version is semver"),
            heartbeat_timeout: novacula_core::HEARTBEAT_TIMEOUT,
            max_poll_wait: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(5),
            http: Default::default(),
            login_address_limit: throttle::ADDRESS_LIMIT,
            event_retention: Default::default(),
            audit_retention: Duration::from_secs(365 * 24 * 3600),
            mail: None,
            allow_signup: false,
            platform_admins: Default::default(),
            graphql_introspection: false,
            prune_interval: Duration::from_secs(60),
            store_threads: true,
            store_threads_max: 16,
        }
    }
}

pub struct AppState {
    pub store: Store,
    pub clock: Box<dyn Clock>,
    /// Where every secret and id comes from (the OS; a seed in the simulator).
    pub entropy: Box<dyn Entropy>,
    pub config: Config,
    /// Spec long-poll wakeups, and the cursors they keep (see [`crate::polls`]).
    pub polls: crate::polls::Polls,
    /// Turns on the store threads (see `Config::store_threads_max`).
    store_slots: tokio::sync::Semaphore,
    /// Executors whose nodes were written (here or, told through the
    /// database, elsewhere) since the sweeper last looked.
    touched: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Executors whose row changed meaning here (came back, deactivated, ...),
    /// for the other control planes' sweepers: told in batches.
    to_announce: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Failed sign-ins per username and per client address (in memory: a restart forgives).
    pub user_throttle: std::sync::Mutex<LoginThrottle>,
    pub address_throttle: std::sync::Mutex<LoginThrottle>,
    /// Password hashing, off the async workers.
    pub hash_pool: crate::services::credentials::HashPool,
    /// Executors' and keys' "last seen", written to the store in batches.
    pub liveness: crate::liveness::Liveness,
    /// API keys and executors as last read, while nothing changed them.
    pub known: crate::known::Known,
    /// Node logs on their way to viewers (in memory only).
    pub logs: Arc<crate::logs::Hub>,
    /// `org/node` -> when its history last took a point (see `services::history`).
    pub sampled: std::sync::Mutex<std::collections::HashMap<String, novacula_core::Timestamp>>,
    /// Mail out, when configured.
    pub mailer: Option<crate::mail::Mailer>,
    /// Requests counted and timed for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// Whether each organization is deactivated, as read at most
    /// [`ORG_STATUS_TTL`] ago: executors' calls check it without a read each.
    org_status: std::sync::Mutex<HashMap<String, (bool, Timestamp)>>,
}

/// A notification naming executors (`org/name`, space-separated) whose rows changed meaning.
const EXECUTORS_PREFIX: &str = "executors ";
/// The most a notification carries (PostgreSQL's limit is 8000 bytes).
const NOTIFY_PAYLOAD: usize = 7000;

/// How stale an executor's view of its organization's deactivation may be
/// (its executors go offline within the heartbeat timeout anyway).
pub const ORG_STATUS_TTL: Duration = Duration::from_secs(5);

impl AppState {
    pub fn new(store: Store, clock: impl Clock, config: Config) -> Arc<AppState> {
        AppState::with_entropy(store, clock, OsEntropy, config)
    }

    /// A control plane whose secrets and ids come from `entropy` (seeded in the simulator).
    pub fn with_entropy(store: Store, clock: impl Clock, entropy: impl Entropy, config: Config) -> Arc<AppState> {
        let address_limit = config.login_address_limit;
        let store_slots = tokio::sync::Semaphore::new(config.store_threads_max.max(1));
        // `serve` checks the configuration first; here a bad one only means no mail.
        // This process among replicas on one database (its log watches' ids).
        let mut replica = [0u8; 4];
        entropy.fill(&mut replica);
        let mailer = config.mail.as_ref().and_then(|m| crate::mail::Mailer::new(m).map_err(|e| tracing::error!(error = %e, "no mail will be sent")).ok());
        let state = Arc::new(AppState {
            store,
            clock: Box::new(clock),
            entropy: Box::new(entropy),
            config,
            polls: Default::default(),
            touched: Default::default(),
            to_announce: Default::default(),
            store_slots,
            user_throttle: std::sync::Mutex::new(LoginThrottle::new(throttle::USER_LIMIT)),
            address_throttle: std::sync::Mutex::new(LoginThrottle::new(address_limit)),
            hash_pool: crate::services::credentials::HashPool::for_this_machine(),
            liveness: Default::default(),
            known: Default::default(),
            logs: Arc::new(crate::logs::Hub::for_replica(u32::from_le_bytes(replica))),
            sampled: Default::default(),
            mailer,
            metrics: Default::default(),
            org_status: Default::default(),
        });
        // Changes committed through other control planes on the same database.
        let weak = Arc::downgrade(&state);
        let subscribed = state.store.subscribe(Box::new(move |message| {
            if let Some(s) = weak.upgrade() {
                s.woken(message);
            }
        }));
        if let Err(e) = subscribed {
            tracing::warn!(error = %e, "not listening for other control planes' changes");
        }
        state
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Run `f` (store work: a commit waits for the disk, a PostgreSQL call for
    /// the network) on a blocking thread, so the async workers keep serving.
    pub async fn blocking<R: Send + 'static>(self: &Arc<Self>, f: impl FnOnce(&AppState) -> R + Send + 'static) -> R {
        if !self.config.store_threads {
            return f(self);
        }
        // Never closed, so a turn always comes.
        let _turn = self.store_slots.acquire().await;
        let s = self.clone();
        joined(tokio::task::spawn_blocking(move || f(&s)).await).await
    }

    /// [`Self::write_grouped`], then what must follow its commit: `told`
    /// (memory only: the sweeper's notice) and, for the node change it
    /// returns, waking pollers here and on other replicas (a round trip to
    /// the database: on a blocking thread). All of it runs to the end in a
    /// task of its own: a caller that goes away while its write commits (its
    /// client hung up) leaves no change committed and untold.
    pub async fn write_grouped_then<R, E, F, T>(self: &Arc<Self>, reads: Vec<(crate::store::Table, String)>, f: F, told: T) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<crate::store::StoreError> + Send + 'static,
        F: FnMut(&mut crate::store::Write) -> Result<R, E> + Send + 'static,
        T: FnOnce(&AppState, &R) -> Option<NodeChange> + Send + 'static,
    {
        let s = self.clone();
        let task = tokio::spawn(async move {
            let out = s.write_grouped(reads, f).await?;
            if let Some(c) = told(&s, &out) {
                s.blocking(move |s| s.notify_change(&c.org, &c.executor, c.seq)).await;
            }
            Ok(out)
        });
        joined(task.await).await
    }

    /// A write that may share its transaction and commit with other callers'
    /// (see [`Store::write_grouped`]); alone when store threads are off.
    pub async fn write_grouped<R, E, F>(&self, reads: Vec<(crate::store::Table, String)>, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<crate::store::StoreError> + Send + 'static,
        F: FnMut(&mut crate::store::Write) -> Result<R, E> + Send + 'static,
    {
        if self.config.store_threads {
            self.store.write_grouped(reads, f).await
        } else {
            let mut f = f;
            self.store.write(|w| {
                w.prefetch(&reads)?;
                f(w)
            })
        }
    }

    /// `bytes` random bytes as hex, from this control plane's entropy.
    /// Whether `org` is deactivated (a missing one counts as deactivated),
    /// read from the store at most every [`ORG_STATUS_TTL`].
    pub fn org_deactivated(&self, org: &str) -> Result<bool, crate::store::StoreError> {
        if let Some(off) = self.org_deactivated_cached(org) {
            return Ok(off);
        }
        let now = self.now();
        let off = self.store.read(|r| r.org_deactivated(org))?;
        self.org_status.locked().insert(org.to_string(), (off, now));
        Ok(off)
    }

    /// [`Self::org_deactivated`] when known recently enough, without a read.
    pub fn org_deactivated_cached(&self, org: &str) -> Option<bool> {
        let now = self.now();
        self.org_status.locked().get(org).filter(|(_, at)| now.since(*at) < ORG_STATUS_TTL).map(|(off, _)| *off)
    }

    /// Drop what [`Self::org_deactivated`] remembers of `org` (it just changed here).
    pub fn forget_org_status(&self, org: &str) {
        self.org_status.locked().remove(org);
    }

    pub fn random_hex(&self, bytes: usize) -> String {
        novacula_core::entropy::random_hex(self.entropy.as_ref(), bytes)
    }

    /// Call after a committed write that changed a node of `executor`: wakes
    /// its long-polls here and, through the database, on every other control
    /// plane process.
    pub fn notify_change(&self, org: &str, executor: &str, seq: u64) {
        self.wake(org, executor, seq);
        if let Err(e) = self.store.publish(&format!("{org}/{executor}/{seq}")) {
            tracing::warn!(error = %e, "could not tell other control planes of a change; their pollers see it within their wait and what they hold of cursors");
        }
    }

    /// Call after a committed write that changed what an executor's row
    /// means to the sweeper (its first sync, its return after silence, a new
    /// version, deactivation, deletion): the sweeper holding the lease looks
    /// at it at its next pass, here or (told within a pass) on another replica.
    pub fn executor_changed(&self, org: &str, name: &str) {
        let k = crate::store::key(&[org, name]);
        self.touched.locked().insert(k.clone());
        self.to_announce.locked().insert(k);
    }

    /// Tell the other control planes which executors changed here since the
    /// last call, in as few notifications as fit (blocking).
    pub fn publish_executor_changes(&self) {
        let changed = std::mem::take(&mut *self.to_announce.locked());
        // Executors per notification: as many as fit in one.
        let mut batches: Vec<(usize, Vec<String>)> = Vec::new();
        for k in changed {
            match batches.last_mut() {
                Some((len, ks)) if *len + 1 + k.len() <= NOTIFY_PAYLOAD => {
                    *len += 1 + k.len();
                    ks.push(k);
                }
                _ => batches.push((EXECUTORS_PREFIX.len() + k.len(), vec![k])),
            }
        }
        let failed = batches.iter().position(|(_, ks)| match self.store.publish(&format!("{EXECUTORS_PREFIX}{}", ks.join(" "))) {
            Ok(()) => false,
            Err(e) => {
                tracing::warn!(error = %e, "could not tell other control planes of executors' changes; trying again at the next pass");
                true
            }
        });
        // The unsent are kept for the next call (the lease holder's full look finds them anyway, within FULL_LOOK).
        if let Some(i) = failed {
            self.to_announce.locked().extend(batches.drain(i..).flat_map(|(_, ks)| ks));
        }
    }

    /// Tell the other control planes on this database which logs viewers
    /// here watch (blocking: a database notification each).
    pub fn publish_log_watches(&self) {
        self.publish_all(self.logs.announcements());
    }

    /// Publish relay messages to the other control planes (blocking).
    pub fn publish_all(&self, messages: Vec<String>) {
        for m in messages {
            if let Err(e) = self.store.publish(&m) {
                tracing::warn!(error = %e, "could not relay log watches to other control planes");
                return;
            }
        }
    }

    /// A change another process published (`org/executor/seq`), or a log relay.
    fn woken(&self, message: &str) {
        if message == crate::store::LISTENING {
            // Listening again: what was published meanwhile never came.
            self.polls.forget_cursors();
            return;
        }
        if let Some(relay) = message.strip_prefix(crate::logs::RELAY_PREFIX) {
            self.logs.relayed(relay);
            return;
        }
        if let Some(changed) = message.strip_prefix(EXECUTORS_PREFIX) {
            self.touched.locked().extend(changed.split(' ').filter(|k| !k.is_empty()).map(str::to_string));
            return;
        }
        let mut parts = message.splitn(3, '/');
        if let (Some(org), Some(executor), Some(Ok(seq))) = (parts.next(), parts.next(), parts.next().map(str::parse::<u64>)) {
            self.wake(org, executor, seq);
        }
    }

    /// Executors (`org/name`) whose nodes were written since the sweeper last
    /// looked: their phases may have moved.
    pub fn take_touched(&self) -> std::collections::BTreeSet<String> {
        std::mem::take(&mut *self.touched.locked())
    }

    /// Wake the long-polls of `executor` held by this process.
    fn wake(&self, org: &str, executor: &str, seq: u64) {
        let k = crate::store::key(&[org, executor]);
        self.polls.wake(&k, seq);
        self.touched.locked().insert(k);
    }
}

/// A committed change of a node of `executor` (of `org`), numbered `seq`: see [`AppState::notify_change`].
pub struct NodeChange {
    pub org: String,
    pub executor: String,
    pub seq: u64,
}

/// A task's result: its panic goes on in the caller; a task cancelled (the
/// runtime is shutting down and drops this request) never answers.
async fn joined<T>(r: Result<T, tokio::task::JoinError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => std::future::pending().await,
        },
    }
}
