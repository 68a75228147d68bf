//! Node logs on their way from an executor to the people watching them, held
//! in memory only (logs are the executors'; nothing here is stored).
//!
//! A viewer opens a watch on one process of a node; the executor running it
//! learns so from its next sync answer ([`Hub::watches_of`]) and pushes a
//! replay of the last lines, then new ones, until the last viewer leaves.
//! Every part is bounded: [`REPLAY_MAX`] lines kept per watched process, a
//! broadcast channel per process whose slow receivers skip lines (they are
//! told how many) instead of holding anyone up.
//!
//! Several control planes on one database: a viewer's replica announces its
//! watches to the others through the database's notifications ([`Relay`]),
//! again every [`ANNOUNCE_EVERY`]; the replica an executor syncs with names
//! them in its answers, and relays the lines pushed for them to the viewer's
//! replica. A watch not announced for [`REMOTE_TTL`] is forgotten (its
//! viewers left, or their replica went away).

use novacula_core::logs::{LogBatch, LogLine, LogWatch, REPLAY_MAX};
use novacula_core::sync::LockExt;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Lines a viewer may fall behind before it skips some.
const CHANNEL: usize = 1024;
/// How often a replica announces the watches its viewers hold.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(10);
/// A watch of another replica's is forgotten when not announced for this long.
pub const REMOTE_TTL: Duration = Duration::from_secs(30);
/// Notifications between replicas start so (spec changes do not).
pub const RELAY_PREFIX: &str = "logs ";
/// PostgreSQL's notification payload holds 8000 bytes: batches are relayed in parts under it.
const RELAY_BYTES: usize = 7000;

/// What one control plane tells the others about log watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum Relay {
    /// Viewers on replica `from` watch this log of `executor`'s.
    Watch { from: u32, org: String, executor: String, watch: LogWatch },
    /// `executor` pushed these lines to replica `from` for a watch held elsewhere.
    Batch { from: u32, org: String, executor: String, batch: LogBatch },
}

/// A watch another replica's viewers hold.
struct Remote {
    org: String,
    executor: String,
    watch: LogWatch,
    announced: Instant,
}

/// What a viewer receives.
#[derive(Debug, Clone)]
pub enum Update {
    Lines(Arc<Vec<LogLine>>),
    /// The executor's replay arrived (lines may follow in `Lines` first).
    Replayed,
    /// The executor cannot read this log.
    Error(String),
}

struct Stream {
    executor: String,
    watch: LogWatch,
    viewers: usize,
    /// The last lines, for viewers who join a running watch.
    recent: VecDeque<LogLine>,
    replayed: bool,
    tx: broadcast::Sender<Update>,
}

/// `(org, node, process)`.
type Key = (String, String, String);

#[derive(Default)]
pub struct Hub {
    streams: Mutex<HashMap<Key, Stream>>,
    /// Other replicas' watches, by watch id.
    remote: Mutex<HashMap<u64, Remote>>,
    next_id: std::sync::atomic::AtomicU64,
    /// This process among the replicas: the high half of its watch ids, and
    /// the sender it skips of what it hears back.
    replica: u32,
}

/// What became of an executor's push.
#[derive(Debug, PartialEq)]
pub enum Pushed {
    /// A viewer here got it (or nobody watches it any more: false).
    Here(bool),
    /// A viewer on another replica watches it: publish these.
    Relay(Vec<String>),
}

/// A viewer's hold on a watch; the watch ends with its last viewer.
pub struct Viewer {
    hub: Arc<Hub>,
    key: Key,
    pub updates: broadcast::Receiver<Update>,
    /// Lines already there when this viewer joined (the newest `tail`).
    pub recent: Vec<LogLine>,
    /// The replay had arrived before this viewer joined.
    pub replayed: bool,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let mut streams = self.hub.streams.locked();
        if let Some(s) = streams.get_mut(&self.key) {
            s.viewers -= 1;
            if s.viewers == 0 {
                streams.remove(&self.key);
            }
        }
    }
}

impl Hub {
    /// A hub whose watch ids no other replica's share (`replica` at random).
    pub fn for_replica(replica: u32) -> Hub {
        Hub { replica, ..Hub::default() }
    }

    /// Watch `process` of `node` (run by `executor`), with the last `tail` lines first.
    pub fn watch(self: &Arc<Self>, org: &str, executor: &str, node: &str, process: &str, tail: u32) -> Viewer {
        let key = (org.to_string(), node.to_string(), process.to_string());
        let mut streams = self.streams.locked();
        let s = streams.entry(key.clone()).or_insert_with(|| {
            let id = (u64::from(self.replica) << 32) | ((self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1) & 0xffff_ffff);
            Stream {
                executor: executor.to_string(),
                watch: LogWatch { id, node: node.to_string(), process: process.to_string(), tail },
                viewers: 0,
                recent: VecDeque::new(),
                replayed: false,
                tx: broadcast::channel(CHANNEL).0,
            }
        });
        s.viewers += 1;
        // A viewer asking for more than the running watch replayed gets what there is.
        let skip = s.recent.len().saturating_sub(tail as usize);
        let recent = s.recent.iter().skip(skip).cloned().collect();
        Viewer { hub: self.clone(), key, updates: s.tx.subscribe(), recent, replayed: s.replayed }
    }

    /// The watches an executor's sync answer names: this replica's viewers',
    /// then other replicas' still announced.
    pub fn watches_of(&self, org: &str, executor: &str) -> Vec<LogWatch> {
        let mut watches: Vec<LogWatch> =
            self.streams.locked().iter().filter(|((o, _, _), s)| o == org && s.executor == executor).map(|(_, s)| s.watch.clone()).collect();
        let mut remote = self.remote.locked();
        remote.retain(|_, r| r.announced.elapsed() < REMOTE_TTL);
        watches.extend(remote.values().filter(|r| r.org == org && r.executor == executor).map(|r| r.watch.clone()));
        watches
    }

    /// What this replica tells the others: every watch its viewers hold.
    pub fn announcements(&self) -> Vec<String> {
        self.streams.locked().iter().filter_map(|(key, s)| self.announcement(key, s)).collect()
    }

    /// The watch `viewer` holds, for the other replicas as soon as it opens.
    pub fn announce(&self, viewer: &Viewer) -> Vec<String> {
        self.streams.locked().get(&viewer.key).and_then(|s| self.announcement(&viewer.key, s)).into_iter().collect()
    }

    fn announcement(&self, (org, _, _): &Key, s: &Stream) -> Option<String> {
        let relay = Relay::Watch { from: self.replica, org: org.clone(), executor: s.executor.clone(), watch: s.watch.clone() };
        serde_json::to_string(&relay).ok().map(|j| format!("{RELAY_PREFIX}{j}"))
    }

    /// A message another replica published (its prefix taken off).
    pub fn relayed(&self, message: &str) {
        match serde_json::from_str::<Relay>(message) {
            Ok(Relay::Watch { from, .. } | Relay::Batch { from, .. }) if from == self.replica => {} // our own, heard back
            Ok(Relay::Watch { org, executor, watch, .. }) => {
                self.remote.locked().insert(watch.id, Remote { org, executor, watch, announced: Instant::now() });
            }
            Ok(Relay::Batch { org, executor, batch, .. }) => {
                // For a viewer here; none any more is fine (the executor learns at its next push).
                let _ = self.deliver(&org, &executor, batch);
            }
            Err(e) => tracing::warn!(error = %e, "a log relay message from another control plane could not be read"),
        }
    }

    /// An executor's push: to a viewer here, or relayed to another replica's.
    pub fn push(&self, org: &str, executor: &str, batch: LogBatch) -> Pushed {
        let key = (org.to_string(), batch.node.clone(), batch.process.clone());
        if self.streams.locked().get(&key).is_some_and(|s| s.executor == executor && s.watch.id == batch.watch) {
            return Pushed::Here(self.deliver(org, executor, batch));
        }
        let known = self.remote.locked().get(&batch.watch).is_some_and(|r| r.org == org && r.executor == executor && r.announced.elapsed() < REMOTE_TTL);
        if !known {
            return Pushed::Here(false);
        }
        Pushed::Relay(self.relay_parts(org, executor, batch))
    }

    /// `batch` as relay messages each under [`RELAY_BYTES`]: the lines split
    /// between parts, a line too long for one part cut short; the replay mark
    /// on the last part.
    fn relay_parts(&self, org: &str, executor: &str, batch: LogBatch) -> Vec<String> {
        let message = |b: LogBatch| {
            let relay = Relay::Batch { from: self.replica, org: org.to_string(), executor: executor.to_string(), batch: b };
            serde_json::to_string(&relay).map(|j| format!("{RELAY_PREFIX}{j}")).unwrap_or_default()
        };
        let empty = LogBatch { lines: vec![], replay: false, ..batch.clone() };
        let overhead = message(empty.clone()).len();
        let mut parts = vec![];
        let mut part = empty.clone();
        let mut size = overhead;
        for mut line in batch.lines {
            let cost = serde_json::to_string(&line).map_or(0, |l| l.len()) + 1;
            if overhead + cost > RELAY_BYTES {
                let keep = line.text.char_indices().map(|(i, _)| i).take_while(|i| *i < RELAY_BYTES / 4).last().unwrap_or(0);
                line.text.truncate(keep);
            }
            let cost = serde_json::to_string(&line).map_or(0, |l| l.len()) + 1;
            if size + cost > RELAY_BYTES && !part.lines.is_empty() {
                parts.push(std::mem::replace(&mut part, empty.clone()));
                size = overhead;
            }
            size += cost;
            part.lines.push(line);
        }
        part.replay = batch.replay;
        parts.push(part);
        parts.into_iter().map(message).collect()
    }

    /// Lines for a watch whose viewers are here; false when nobody watches it (any more).
    fn deliver(&self, org: &str, executor: &str, batch: LogBatch) -> bool {
        let key = (org.to_string(), batch.node.clone(), batch.process.clone());
        let mut streams = self.streams.locked();
        let Some(s) = streams.get_mut(&key).filter(|s| s.executor == executor && s.watch.id == batch.watch) else { return false };
        if let Some(e) = batch.error {
            let _ = s.tx.send(Update::Error(e));
            return true;
        }
        for line in &batch.lines {
            if s.recent.len() == REPLAY_MAX as usize {
                s.recent.pop_front();
            }
            s.recent.push_back(line.clone());
        }
        if !batch.lines.is_empty() {
            // No receiver is fine: the lines wait in `recent`.
            let _ = s.tx.send(Update::Lines(Arc::new(batch.lines)));
        }
        if batch.replay && !s.replayed {
            s.replayed = true;
            let _ = s.tx.send(Update::Replayed);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use novacula_core::Timestamp;

    /// A push a viewer here got.
    fn here(p: Pushed) -> bool {
        p == Pushed::Here(true)
    }

    fn batch(watch: u64, replay: bool, texts: &[&str]) -> LogBatch {
        let lines = texts.iter().map(|t| LogLine::new(Timestamp(1), t)).collect();
        LogBatch { watch, node: "n".into(), process: "execution".into(), replay, error: None, lines }
    }

    #[test]
    fn a_watch_lives_while_someone_views_it_and_keeps_the_last_lines() {
        let hub = Arc::new(Hub::default());
        assert!(hub.watches_of("acme", "edge").is_empty());
        let mut a = hub.watch("acme", "edge", "n", "execution", 2);
        let w = hub.watches_of("acme", "edge");
        assert_eq!((w.len(), w[0].tail, w[0].process.as_str()), (1, 2, "execution"));
        assert!(hub.watches_of("acme", "other").is_empty() && hub.watches_of("globex", "edge").is_empty());
        assert!(!here(hub.push("acme", "other", batch(w[0].id, true, &["x"]))), "only the executor that runs it");
        assert!(!here(hub.push("acme", "edge", batch(w[0].id + 1, true, &["x"]))), "only for the watch it was asked");
        assert!(here(hub.push("acme", "edge", batch(w[0].id, true, &["one", "two", "three"]))));
        assert!(matches!(a.updates.try_recv(), Ok(Update::Lines(l)) if l.len() == 3));
        assert!(matches!(a.updates.try_recv(), Ok(Update::Replayed)));
        let b = hub.watch("acme", "edge", "n", "execution", 2);
        assert_eq!(b.recent.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["two", "three"], "a second viewer gets the last lines at once");
        assert!(b.replayed);
        assert_eq!(hub.watches_of("acme", "edge").len(), 1, "one watch for both");
        drop(a);
        assert_eq!(hub.watches_of("acme", "edge").len(), 1);
        drop(b);
        assert!(hub.watches_of("acme", "edge").is_empty(), "the last viewer ends it");
        assert!(!here(hub.push("acme", "edge", batch(w[0].id, false, &["late"]))));
    }

    #[test]
    fn a_watch_held_on_one_replica_is_served_by_the_replica_its_executor_syncs_with() {
        let (a, b) = (Arc::new(Hub::for_replica(1)), Arc::new(Hub::for_replica(2)));
        let mut viewer = a.watch("acme", "edge", "n", "execution", 10);
        let announced = a.announcements();
        assert_eq!(announced, a.announce(&viewer), "the watch a viewer opens is announced at once, as at every announcement");
        assert_eq!(announced.len(), 1);
        let to_b = |m: &str| b.relayed(m.strip_prefix(RELAY_PREFIX).unwrap());
        a.relayed(announced[0].strip_prefix(RELAY_PREFIX).unwrap());
        assert_eq!(a.watches_of("acme", "edge").len(), 1, "its own announcement heard back is not a second watch");
        to_b(&announced[0]);
        let w = b.watches_of("acme", "edge");
        assert_eq!(w.len(), 1, "the executor syncing with B learns of A's watch");
        assert!(b.watches_of("acme", "other").is_empty());
        assert_eq!(b.push("acme", "other", batch(w[0].id, true, &["x"])), Pushed::Here(false), "only the executor that runs it");
        // a replay with a line too long for one notification, and many lines: parts under PostgreSQL's limit
        let mut long = batch(w[0].id, true, &["first"]);
        long.lines.push(LogLine { text: "x".repeat(9000), ..LogLine::new(Timestamp(1), "x") });
        long.lines.extend((0..300).map(|i| LogLine::new(Timestamp(2), &format!("line {i} {}", "y".repeat(40)))));
        let Pushed::Relay(parts) = b.push("acme", "edge", long) else { panic!("relayed to A") };
        assert!(parts.len() > 1 && parts.iter().all(|p| p.len() < 8000), "{:?}", parts.iter().map(String::len).collect::<Vec<_>>());
        for p in &parts {
            a.relayed(p.strip_prefix(RELAY_PREFIX).unwrap());
            b.relayed(p.strip_prefix(RELAY_PREFIX).unwrap()); // B hears its own and skips it
        }
        let mut got = vec![];
        let mut replayed = false;
        while let Ok(u) = viewer.updates.try_recv() {
            match u {
                Update::Lines(l) => got.extend(l.iter().map(|l| l.text.clone())),
                Update::Replayed => replayed = true,
                Update::Error(e) => panic!("{e}"),
            }
        }
        assert_eq!(got.len(), 302, "every line arrives, once");
        assert_eq!(got[0], "first");
        assert!(got[1].len() < 7000 && got[1].starts_with("xxx"), "a line too long for a notification is cut short: {}", got[1].len());
        assert!(replayed, "the replay mark arrives with the last part");
        drop(viewer);
        assert!(a.announcements().is_empty(), "a watch without viewers is no longer announced");
    }

    #[test]
    fn memory_is_bounded_and_a_slow_viewer_skips_lines() {
        let hub = Arc::new(Hub::default());
        let mut slow = hub.watch("acme", "edge", "n", "execution", REPLAY_MAX);
        let id = hub.watches_of("acme", "edge")[0].id;
        for i in 0..(CHANNEL + 10) {
            assert!(here(hub.push("acme", "edge", batch(id, false, &[&format!("line {i}"), "again"]))));
        }
        let late = hub.watch("acme", "edge", "n", "execution", 5000);
        assert_eq!(late.recent.len(), REPLAY_MAX as usize);
        assert_eq!(late.recent.last().unwrap().text, "again");
        assert!(matches!(slow.updates.try_recv(), Err(broadcast::error::TryRecvError::Lagged(10))));
    }
}
