//! Node logs on their way from an executor to the people watching them, held
//! in memory only (logs are the executors'; nothing here is stored).
//!
//! A viewer opens a watch on one process of a node; the executor running it
//! learns so from its next sync answer ([`Hub::watches_of`]) and pushes a
//! replay of the last lines, then new ones, until the last viewer leaves.
//! Every part is bounded: [`REPLAY_MAX`] lines kept per watched process, a
//! broadcast channel per process whose slow receivers skip lines (they are
//! told how many) instead of holding anyone up.

use novacula_core::logs::{LogBatch, LogLine, LogWatch, REPLAY_MAX};
use novacula_core::sync::LockExt;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Lines a viewer may fall behind before it skips some.
const CHANNEL: usize = 1024;

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
    next_id: std::sync::atomic::AtomicU64,
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
    /// Watch `process` of `node` (run by `executor`), with the last `tail` lines first.
    pub fn watch(self: &Arc<Self>, org: &str, executor: &str, node: &str, process: &str, tail: u32) -> Viewer {
        let key = (org.to_string(), node.to_string(), process.to_string());
        let mut streams = self.streams.locked();
        let s = streams.entry(key.clone()).or_insert_with(|| {
            let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
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

    /// The watches an executor's sync answer names.
    pub fn watches_of(&self, org: &str, executor: &str) -> Vec<LogWatch> {
        self.streams.locked().iter().filter(|((o, _, _), s)| o == org && s.executor == executor).map(|(_, s)| s.watch.clone()).collect()
    }

    /// An executor's push; false when nobody watches it (any more).
    pub fn push(&self, org: &str, executor: &str, batch: LogBatch) -> bool {
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
        assert!(!hub.push("acme", "other", batch(w[0].id, true, &["x"])), "only the executor that runs it");
        assert!(!hub.push("acme", "edge", batch(w[0].id + 1, true, &["x"])), "only for the watch it was asked");
        assert!(hub.push("acme", "edge", batch(w[0].id, true, &["one", "two", "three"])));
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
        assert!(!hub.push("acme", "edge", batch(w[0].id, false, &["late"])));
    }

    #[test]
    fn memory_is_bounded_and_a_slow_viewer_skips_lines() {
        let hub = Arc::new(Hub::default());
        let mut slow = hub.watch("acme", "edge", "n", "execution", REPLAY_MAX);
        let id = hub.watches_of("acme", "edge")[0].id;
        for i in 0..(CHANNEL + 10) {
            assert!(hub.push("acme", "edge", batch(id, false, &[&format!("line {i}"), "again"])));
        }
        let late = hub.watch("acme", "edge", "n", "execution", 5000);
        assert_eq!(late.recent.len(), REPLAY_MAX as usize);
        assert_eq!(late.recent.last().unwrap().text, "again");
        assert!(matches!(slow.updates.try_recv(), Err(broadcast::error::TryRecvError::Lagged(10))));
    }
}
