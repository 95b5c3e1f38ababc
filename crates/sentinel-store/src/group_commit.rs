//! Group commit: many callers' small writes to one database share one
//! transaction, and so one disk flush. Each caller waits until its item is
//! durable; callers that arrive while a commit is running share the next one.
//!
//! Per key (a log, an organization), items wait in a queue. The first caller to
//! find no commit running starts a committer task; it takes everything queued
//! (up to a batch's size), writes it in one transaction, answers those callers,
//! and repeats until the queue is empty, then ends. A caller that gives up (a
//! timed-out request) abandons nobody: the committer runs on its own.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// What a commit answers each item: its own outcome, or the commit's failure
/// (shared by every item of the batch, hence a message).
type Answer<O> = Result<O, String>;

/// Writes a batch in one transaction: one outcome per item, in order, or the
/// reason nothing was written.
pub(crate) type Commit<I, O> = Arc<
    dyn Fn(Vec<I>) -> Pin<Box<dyn Future<Output = Result<Vec<O>, String>> + Send>> + Send + Sync,
>;

struct Queue<I, O> {
    pending: Vec<(I, oneshot::Sender<Answer<O>>)>,
    committing: bool,
}

impl<I, O> Default for Queue<I, O> {
    fn default() -> Self {
        Queue {
            pending: Vec::new(),
            committing: false,
        }
    }
}

type Queues<K, I, O> = Arc<Mutex<HashMap<K, Queue<I, O>>>>;

/// The queues of every key written through it.
pub(crate) struct GroupCommit<K, I, O> {
    queues: Queues<K, I, O>,
    max_batch: usize,
}

impl<K, I, O> std::fmt::Debug for GroupCommit<K, I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("max_batch", &self.max_batch)
            .finish_non_exhaustive()
    }
}

impl<K, I, O> GroupCommit<K, I, O>
where
    K: Hash + Eq + Clone + Send + 'static,
    I: Send + 'static,
    O: Send + 'static,
{
    /// Commits take at most `max_batch` items; the rest wait for the next.
    pub(crate) fn new(max_batch: usize) -> Self {
        GroupCommit {
            queues: Arc::default(),
            max_batch: max_batch.max(1),
        }
    }

    /// Forgets a key whose database is gone.
    pub(crate) fn forget(&self, key: &K) {
        lock(&self.queues).remove(key);
    }

    /// Queues `item` under `key` and returns its outcome once its batch is
    /// committed. `commit` writes a batch of `key`'s items; it is used if
    /// this call starts the committer.
    pub(crate) async fn submit(&self, key: K, item: I, commit: Commit<I, O>) -> Answer<O> {
        let (done, committed) = oneshot::channel();
        let start = {
            let mut queues = lock(&self.queues);
            let queue = queues.entry(key.clone()).or_default();
            queue.pending.push((item, done));
            !std::mem::replace(&mut queue.committing, true)
        };
        if start {
            tokio::spawn(commit_until_empty(
                self.queues.clone(),
                key,
                self.max_batch,
                commit,
            ));
        }
        committed
            .await
            .unwrap_or_else(|_| Err("the commit was abandoned".into()))
    }
}

/// The committer of one key: commits what is queued, batch after batch, and
/// ends (removing the idle queue) when nothing is left.
async fn commit_until_empty<K: Hash + Eq, I, O>(
    queues: Queues<K, I, O>,
    key: K,
    max_batch: usize,
    commit: Commit<I, O>,
) {
    loop {
        let batch = {
            let mut queues = lock(&queues);
            let Some(queue) = queues.get_mut(&key) else {
                return;
            };
            if queue.pending.is_empty() {
                queues.remove(&key);
                return;
            }
            let take = queue.pending.len().min(max_batch);
            queue.pending.drain(..take).collect::<Vec<_>>()
        };
        let (items, waiters): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let expected = items.len();
        match commit(items).await {
            Ok(outcomes) if outcomes.len() == expected => {
                for (waiter, outcome) in waiters.into_iter().zip(outcomes) {
                    let _ = waiter.send(Ok(outcome));
                }
            }
            Ok(_) => {
                for waiter in waiters {
                    let _ = waiter.send(Err("a commit answered the wrong number of items".into()));
                }
            }
            Err(message) => {
                for waiter in waiters {
                    let _ = waiter.send(Err(message.clone()));
                }
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_arriving_during_a_commit_share_the_next_one() {
        let commits = Arc::new(AtomicUsize::new(0));
        let counted = commits.clone();
        let commit: Commit<u32, u32> = Arc::new(move |items: Vec<u32>| {
            let counted = counted.clone();
            Box::pin(async move {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                if items.contains(&13) {
                    return Err("unlucky".to_owned());
                }
                Ok(items.into_iter().map(|i| i * 2).collect())
            })
        });
        let group = Arc::new(GroupCommit::new(1000));
        let mut calls = Vec::new();
        for i in 0..200u32 {
            let group = group.clone();
            let commit = commit.clone();
            calls.push(tokio::spawn(async move {
                (i, group.submit("org", i, commit).await)
            }));
            // The first caller's commit starts alone; the others arrive while
            // it runs (otherwise one batch could take all 200, 13 among them).
            while i == 0 && commits.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
        }
        let mut failed = 0;
        for call in calls {
            let (i, answer) = call.await.unwrap_or_else(|e| panic!("{e}"));
            match answer {
                Ok(doubled) => assert_eq!(doubled, i * 2),
                Err(message) => {
                    assert_eq!(message, "unlucky");
                    failed += 1;
                }
            }
        }
        // 200 callers, far fewer commits; only 13's batch failed, all of it.
        let commits = commits.load(Ordering::SeqCst);
        assert!(commits < 20, "{commits} commits for 200 callers");
        assert!((1..200).contains(&failed), "{failed} failed");
        assert!(lock(&group.queues).is_empty(), "the idle queue is removed");
    }

    #[tokio::test]
    async fn a_batch_never_exceeds_its_size() {
        let largest = Arc::new(AtomicUsize::new(0));
        let seen = largest.clone();
        let commit: Commit<u32, ()> = Arc::new(move |items: Vec<u32>| {
            let seen = seen.clone();
            Box::pin(async move {
                seen.fetch_max(items.len(), Ordering::SeqCst);
                tokio::task::yield_now().await;
                Ok(vec![(); items.len()])
            })
        });
        let group = Arc::new(GroupCommit::new(3));
        let calls: Vec<_> = (0..50u32)
            .map(|i| {
                let group = group.clone();
                let commit = commit.clone();
                tokio::spawn(async move { group.submit(1u8, i, commit).await })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap_or_else(|e| panic!("{e}")), Ok(()));
        }
        assert_eq!(largest.load(Ordering::SeqCst), 3);
    }
}
