//! Shared server state.

use crate::clock::Clock;
use crate::store::Store;
use novacula_core::{Timestamp, Version};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Config {
    /// The control plane's own version; its major sets the compatibility window.
    pub cp_version: Version,
    pub heartbeat_timeout: Duration,
    /// Upper bound on a spec long-poll.
    pub max_poll_wait: Duration,
    /// How often liveness and alerts are re-evaluated for executors that went quiet.
    pub sweep_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cp_version: env!("CARGO_PKG_VERSION").parse().expect("crate version is semver"),
            heartbeat_timeout: novacula_core::HEARTBEAT_TIMEOUT,
            max_poll_wait: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(5),
        }
    }
}

pub struct AppState {
    pub store: Store,
    pub clock: Box<dyn Clock>,
    pub config: Config,
    /// Latest node change sequence; spec long-polls wait on it.
    changes: watch::Sender<u64>,
    /// Failed sign-ins per username (in memory: a restart forgives).
    pub login_throttle: std::sync::Mutex<novacula_core::throttle::LoginThrottle>,
}

impl AppState {
    pub fn new(store: Store, clock: impl Clock, config: Config) -> Arc<AppState> {
        let seq = store.read(|r| r.counter(crate::nodes::NODE_SEQ)).unwrap_or(0);
        Arc::new(AppState { store, clock: Box::new(clock), config, changes: watch::channel(seq).0, login_throttle: Default::default() })
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Call after a committed write that changed any node.
    pub fn notify_change(&self, seq: u64) {
        self.changes.send_if_modified(|cur| {
            let changed = seq > *cur;
            *cur = (*cur).max(seq);
            changed
        });
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}
