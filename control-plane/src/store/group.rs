//! Group commit: writes of many callers in one transaction, so one flush
//! (redb's fsync, PostgreSQL's WAL flush) serves them all. A thread of the
//! store's takes whatever callers have queued, applies each in turn and
//! commits once; every caller waits for that commit before its answer, so
//! nothing is acknowledged that a crash could lose.
//!
//! A caller whose write fails must fail alone: the shared transaction is then
//! dropped and each caller of the group is run again in a transaction of its
//! own. Writes must therefore be repeatable (read what they change inside
//! the transaction, consume nothing).

use super::{Store, StoreError, Table, Write};
use std::sync::mpsc;

/// The most writes one transaction takes (bounds the time a group holds the writer).
const GROUP_MAX: usize = 256;

/// One caller's write, with its answer.
trait Member: Send {
    /// Records the write will read (fetched ahead with the group's others).
    fn reads(&self) -> &[(Table, String)];
    /// Apply the write to `w`; false if it failed (its error kept for `reply`).
    fn apply(&mut self, w: &mut Write) -> bool;
    /// Answer the caller: its result if the transaction committed, its own
    /// error if it failed, else the transaction's.
    fn reply(self: Box<Self>, failed: Option<StoreError>);
}

struct Typed<R, E, F> {
    reads: Vec<(Table, String)>,
    write: F,
    out: Option<Result<R, E>>,
    answer: tokio::sync::oneshot::Sender<Result<R, E>>,
}

impl<R: Send, E: From<StoreError> + Send, F: FnMut(&mut Write) -> Result<R, E> + Send> Member for Typed<R, E, F> {
    fn reads(&self) -> &[(Table, String)] {
        &self.reads
    }

    fn apply(&mut self, w: &mut Write) -> bool {
        let out = (self.write)(w);
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn reply(self: Box<Self>, failed: Option<StoreError>) {
        let Typed { out, answer, .. } = *self;
        let out = match (out, failed) {
            (Some(Err(e)), _) => Err(e),
            (_, Some(e)) => Err(e.into()),
            (Some(Ok(v)), None) => Ok(v),
            (None, None) => Err(StoreError::Engine("a grouped write was committed without being applied".into()).into()),
        };
        // The caller waits for this; if it is gone, nobody needs the answer.
        let _ = answer.send(out);
    }
}

/// The queue into the store's group-commit thread.
pub(super) struct Groups {
    queue: Option<mpsc::Sender<Box<dyn Member>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Groups {
    /// The thread ends when its queue closes; wait for it, so the engine it
    /// shares is closed when the store is (a file can be opened again).
    fn drop(&mut self) {
        self.queue.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Why a group's transaction was abandoned.
enum Abandoned {
    /// A member's write failed (its error is its own to answer).
    Member,
    /// Beginning or committing the transaction failed.
    Store(StoreError),
}

impl From<StoreError> for Abandoned {
    fn from(e: StoreError) -> Self {
        Abandoned::Store(e)
    }
}

impl Abandoned {
    /// What a member hears: the store's error, or (when a member failed, and
    /// this one has no error of its own) that it was not committed.
    fn answer(self) -> StoreError {
        match self {
            Abandoned::Store(e) => e,
            Abandoned::Member => StoreError::Engine("the write was not committed".into()),
        }
    }
}

impl Groups {
    /// Start the thread that commits groups on `store` (a handle without groups of its own).
    pub(super) fn start(store: Store) -> std::io::Result<Groups> {
        let (queue, rx) = mpsc::channel::<Box<dyn Member>>();
        let thread = std::thread::Builder::new().name("group-commit".into()).spawn(move || commit_groups(&store, &rx))?;
        Ok(Groups { queue: Some(queue), thread: Some(thread) })
    }

    /// Queue `write`; the answer comes once its group has committed (the
    /// caller awaits it without holding a thread).
    pub(super) fn write<R, E, F>(&self, reads: Vec<(Table, String)>, write: F) -> impl std::future::Future<Output = Result<R, E>> + use<R, E, F>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut Write) -> Result<R, E> + Send + 'static,
    {
        let (answer, rx) = tokio::sync::oneshot::channel();
        let gone = || StoreError::Engine("the group-commit thread has stopped".into());
        let queued = match self.queue.as_ref() {
            Some(q) => q.send(Box::new(Typed { reads, write, out: None, answer })).map_err(|_| gone()),
            None => Err(gone()),
        };
        async move {
            queued?;
            rx.await.map_err(|_| gone())?
        }
    }
}

/// Until every sender is gone: take what is queued, commit it as one.
fn commit_groups(store: &Store, rx: &mpsc::Receiver<Box<dyn Member>>) {
    let alone = |m: &mut Box<dyn Member>| {
        store.write(|w| {
            w.prefetch(m.reads())?;
            if m.apply(w) {
                Ok(())
            } else {
                Err(Abandoned::Member)
            }
        })
    };
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(m) => group.push(m),
                Err(_) => break,
            }
        }
        let together = store.write(|w| {
            let reads: Vec<(Table, String)> = group.iter().flat_map(|m| m.reads().iter().cloned()).collect();
            w.prefetch(&reads)?;
            if group.iter_mut().all(|m| m.apply(w)) {
                Ok(())
            } else {
                Err(Abandoned::Member)
            }
        });
        match together {
            Ok(()) => group.into_iter().for_each(|m| m.reply(None)),
            Err(why) if group.len() == 1 => {
                if let Some(m) = group.pop() {
                    m.reply(Some(why.answer()));
                }
            }
            Err(_) => {
                // Each alone: only the one that fails fails.
                for mut m in group {
                    let failed = alone(&mut m).err().map(Abandoned::answer);
                    m.reply(failed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Store, StoreError, ORGS};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[derive(Debug, PartialEq)]
    enum Failure {
        Mine,
        Store(String),
    }

    impl From<StoreError> for Failure {
        fn from(e: StoreError) -> Self {
            Failure::Store(e.to_string())
        }
    }

    /// Runs `writes` grouped while another transaction holds the writer, so
    /// they queue up; returns each caller's answer and the commits they took.
    fn queued_behind_a_writer(writes: usize, fail: Option<usize>) -> (Arc<Store>, Vec<Result<usize, Failure>>, u64) {
        let store = Arc::new(Store::in_memory().unwrap());
        block_on(store.write_grouped(Vec::new(), |w| w.put(ORGS, "warm", &0usize))).unwrap();
        let (held_tx, held_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let s = store.clone();
        let holder = std::thread::spawn(move || {
            s.write(|_| {
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok::<_, StoreError>(())
            })
        });
        held_rx.recv().unwrap();
        let before = store.commits();
        let callers: Vec<_> = (0..writes)
            .map(|i| {
                let s = store.clone();
                std::thread::spawn(move || {
                    block_on(s.write_grouped(Vec::new(), move |w| {
                        w.put(ORGS, &format!("k{i:02}"), &i)?;
                        if Some(i) == fail {
                            return Err(Failure::Mine);
                        }
                        Ok(i)
                    }))
                })
            })
            .collect();
        // Let every caller queue behind the held writer.
        std::thread::sleep(Duration::from_millis(300));
        release_tx.send(()).unwrap();
        holder.join().unwrap().unwrap();
        let answers = callers.into_iter().map(|c| c.join().unwrap()).collect();
        let commits = store.commits() - before;
        (store, answers, commits)
    }

    #[test]
    fn queued_writes_share_one_commit() {
        let (store, answers, commits) = queued_behind_a_writer(20, None);
        assert_eq!(answers, (0..20).map(Ok).collect::<Vec<_>>());
        // The holder's, the group already waiting to begin, and one for all the rest.
        assert!(commits <= 3, "20 writes took {commits} commits");
        for i in 0..20 {
            assert_eq!(store.read(|r| r.get::<usize>(ORGS, &format!("k{i:02}"))).unwrap(), Some(i));
        }
    }

    #[test]
    fn a_failing_write_fails_alone() {
        let (store, answers, _) = queued_behind_a_writer(12, Some(5));
        for (i, a) in answers.iter().enumerate() {
            let stored = store.read(|r| r.get::<usize>(ORGS, &format!("k{i:02}"))).unwrap();
            if i == 5 {
                assert_eq!((a, stored), (&Err(Failure::Mine), None), "its own error, nothing of it stored");
            } else {
                assert_eq!((a, stored), (&Ok(i), Some(i)), "the others are committed");
            }
        }
    }
}
