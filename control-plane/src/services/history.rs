//! A node's sync history for its page's chart: a point a minute
//! ([`HISTORY_EVERY`]) from the reports that change something, kept a day
//! ([`HISTORY_WINDOW`]): at most 1,440 small records per node, older ones
//! removed as new ones come, all of them with the node.

use super::Result;
use crate::state::AppState;
use crate::store::{self, key, seq_key, Write, NODE_HISTORY};
use novacula_core::observed::{NodeSample, HISTORY_EVERY, HISTORY_WINDOW};
use novacula_core::sync::LockExt;
use novacula_core::{ObservedNodeState, Timestamp};

/// The points of `reported` that are due (a minute since the node's last
/// one, as this control plane remembers), marked taken.
pub fn due(s: &AppState, org: &str, reported: &[ObservedNodeState], now: Timestamp) -> Vec<(String, NodeSample)> {
    let mut last = s.sampled.locked();
    reported
        .iter()
        .filter_map(|o| {
            let sample = NodeSample::of(o, now)?;
            let k = key(&[org, &o.node]);
            if last.get(&k).is_some_and(|t| now.since(*t) < HISTORY_EVERY) {
                return None;
            }
            last.insert(k, now);
            Some((o.node.clone(), sample))
        })
        .collect()
}

/// Write points, and remove each node's points older than the window.
pub fn record(w: &mut Write, org: &str, samples: &[(String, NodeSample)], now: Timestamp) -> store::Result<()> {
    let oldest = Timestamp(now.0.saturating_sub(HISTORY_WINDOW.as_millis() as u64));
    for (node, sample) in samples {
        let prefix = format!("{}/", key(&[org, node]));
        // Points past the window, if any, in a range: no read, and on
        // PostgreSQL no round trip of its own.
        w.remove_range(NODE_HISTORY, &prefix, &format!("{prefix}{}", seq_key(oldest.0)))?;
        w.put(NODE_HISTORY, &format!("{prefix}{}", seq_key(sample.at.0)), sample)?;
    }
    Ok(())
}

/// Every point of a node (gone with it).
pub fn remove(w: &mut Write, org: &str, node: &str) -> store::Result<()> {
    // Every key under `org/node/`: up to `org/node0` ('0' follows '/').
    let node = key(&[org, node]);
    w.remove_range(NODE_HISTORY, &format!("{node}/"), &format!("{node}0"))
}

/// A node's points of the last `hours`, oldest first.
pub fn of(s: &AppState, org: &str, node: &str, hours: u64) -> Result<Vec<NodeSample>> {
    let since = Timestamp(s.now().0.saturating_sub(hours * 3_600_000));
    let prefix = format!("{}/", key(&[org, node]));
    let all: Vec<(String, NodeSample)> =
        s.store.read(|r| r.scan_page(NODE_HISTORY, &prefix, Some(&format!("{prefix}{}", seq_key(since.0.saturating_sub(1)))), 2000))?;
    Ok(all.into_iter().map(|(_, p)| p).filter(|p| p.at >= since).collect())
}
