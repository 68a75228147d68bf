//! Spec long-poll wakeups: one channel per executor (`org/executor`),
//! carrying its latest node change sequence, so a node write wakes only the
//! executor that runs the node, never the whole fleet's pollers.
//!
//! A channel also holds the executor's cursor once a poller on it has read
//! it from the store: from then on every change reaches the channel as a
//! wakeup (from this process, or from another control plane through the
//! database), so a poll that already has that cursor has nothing to read and
//! just waits. An unchanged fleet's polls then cost memory, not store reads.
//! What is held lasts [`HOLD`] at most, and is dropped when wakeups may have
//! been lost (the database listener started again).

use novacula_core::sync::LockExt;
use novacula_core::Timestamp;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// How long a cursor read is trusted: a wakeup lost (a notification that
/// could not be sent, a replica that died between its commit and telling)
/// costs a poller at most this much beyond its wait. An idle executor's
/// polls read the store once per `HOLD`, not once per poll.
pub const HOLD: Duration = Duration::from_secs(15);

#[derive(Default)]
pub struct Polls {
    channels: Mutex<HashMap<String, Channel>>,
    next_id: AtomicU64,
    /// Moves when wakeups may have been lost: reads begun before do not hold.
    forgotten: AtomicU64,
}

struct Channel {
    tx: watch::Sender<u64>,
    /// Tells this channel from one made after it under the same key.
    id: u64,
    /// When a poller on this channel last read the store's cursor: since
    /// then the channel's value is the cursor (wakeups keep it so).
    read_at: Option<Timestamp>,
}

/// A poller's subscription to its executor's channel.
pub struct Poll {
    pub changes: watch::Receiver<u64>,
    key: String,
    id: u64,
}

impl Polls {
    /// Subscribe to `org/executor`'s wakeups. Subscribe before reading the
    /// store, so a write that commits in between is not missed.
    pub fn subscribe(&self, org: &str, executor: &str) -> Poll {
        let key = crate::store::key(&[org, executor]);
        let mut channels = self.channels.locked();
        let ch =
            channels.entry(key.clone()).or_insert_with(|| Channel { tx: watch::channel(0).0, id: self.next_id.fetch_add(1, Ordering::Relaxed), read_at: None });
        Poll { changes: ch.tx.subscribe(), key, id: ch.id }
    }

    /// The executor's cursor, if a poller on `poll`'s channel read it less
    /// than [`HOLD`] ago (and every change since has been a wakeup).
    pub fn held_cursor(&self, poll: &Poll, now: Timestamp) -> Option<u64> {
        let channels = self.channels.locked();
        let ch = channels.get(&poll.key).filter(|ch| ch.id == poll.id)?;
        let fresh = ch.read_at.is_some_and(|at| now.since(at) < HOLD);
        fresh.then(|| *ch.tx.borrow())
    }

    /// Taken before a store read, for [`Self::read`].
    pub fn generation(&self) -> u64 {
        self.forgotten.load(Ordering::SeqCst)
    }

    /// A poller on `poll`'s channel read `cursor` from the store (after
    /// subscribing), in a read begun at `generation`.
    pub fn read(&self, poll: &Poll, cursor: u64, generation: u64, now: Timestamp) {
        let mut channels = self.channels.locked();
        if let Some(ch) = channels.get_mut(&poll.key).filter(|ch| ch.id == poll.id) {
            // The later of the read and the wakeups. A read ahead of a wakeup
            // still on its way wakes the other pollers now: that wakeup, when
            // it comes, moves nothing and wakes nobody.
            ch.tx.send_if_modified(|v| {
                let ahead = cursor > *v;
                *v = (*v).max(cursor);
                ahead
            });
            // Lock held: forget_cursors, if it moved the generation, waits or is seen.
            if self.forgotten.load(Ordering::SeqCst) == generation {
                ch.read_at = Some(now);
            }
        }
    }

    /// Executor `key` (`org/executor`) has a committed change numbered `seq`.
    pub fn wake(&self, key: &str, seq: u64) {
        let mut channels = self.channels.locked();
        let Some(ch) = channels.get(key) else { return };
        if ch.tx.receiver_count() == 0 {
            // Nobody polls: the next poller makes a channel and reads the store first.
            channels.remove(key);
            return;
        }
        ch.tx.send_if_modified(|cur| {
            let changed = seq > *cur;
            *cur = (*cur).max(seq);
            changed
        });
    }

    /// Wakeups may have been lost: every poller reads the store again.
    pub fn forget_cursors(&self) {
        let mut channels = self.channels.locked();
        self.forgotten.fetch_add(1, Ordering::SeqCst);
        for ch in channels.values_mut() {
            ch.read_at = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_cursor_is_held_once_read_follows_wakeups_and_goes_when_they_may_be_lost() {
        let polls = Polls::default();
        let t = Timestamp(1_000_000);
        let poll = polls.subscribe("o", "e");
        assert_eq!(polls.held_cursor(&poll, t), None, "nothing read yet");
        let g = polls.generation();
        let other = polls.subscribe("o", "e");
        polls.read(&poll, 7, g, t);
        assert_eq!(polls.held_cursor(&poll, t), Some(7));
        assert!(other.changes.has_changed().unwrap(), "a read ahead of the wakeups wakes the other pollers");
        let mut poll = poll;
        poll.changes.borrow_and_update();

        polls.wake("o/e", 9);
        assert!(poll.changes.has_changed().unwrap());
        assert_eq!(polls.held_cursor(&poll, t), Some(9), "a change moves what is held");
        polls.read(&poll, 8, g, t);
        assert_eq!(polls.held_cursor(&poll, t), Some(9), "a read older than a wakeup does not take it back");
        assert_eq!(polls.held_cursor(&poll, t.plus(HOLD)), None, "too old");

        polls.forget_cursors();
        assert_eq!(polls.held_cursor(&poll, t), None, "wakeups may have been lost");
        polls.read(&poll, 9, g, t);
        assert_eq!(polls.held_cursor(&poll, t), None, "a read begun before that does not hold");
        polls.read(&poll, 9, polls.generation(), t);
        assert_eq!(polls.held_cursor(&poll, t), Some(9));
    }

    #[test]
    fn a_change_while_nobody_polls_drops_the_channel_and_what_it_held() {
        let polls = Polls::default();
        let t = Timestamp(1_000_000);
        let poll = polls.subscribe("o", "e");
        polls.read(&poll, 7, polls.generation(), t);
        drop(poll);
        let again = polls.subscribe("o", "e");
        assert_eq!(polls.held_cursor(&again, t), Some(7), "no change between two polls: still held");
        drop(again);
        polls.wake("o/e", 8);
        let after = polls.subscribe("o", "e");
        assert_eq!(polls.held_cursor(&after, t.plus(Duration::from_millis(1))), None, "a change nobody saw: read the store");
    }
}
