//! Group commit for entries that accompany no change of their own (denials,
//! failed logins, exports): each caller waits until its entry is durable, and
//! callers that arrive while a commit is running share the next one.
//!
//! Per log, events wait in a queue. The first caller to find no commit running
//! starts a committer task; it takes everything queued, appends it in one
//! transaction, answers those callers, and repeats until the queue is empty,
//! then ends. A caller that gives up (a timed-out request) abandons nobody: the
//! committer runs on its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sentinel_core::audit::{AuditEvent, LogId};
use tokio::sync::oneshot;

use super::AuditLog;
use crate::StoreError;

type Waiter = oneshot::Sender<Result<(), String>>;

/// The most events one commit takes; the rest wait for the next.
const MAX_BATCH: usize = 5_000;

#[derive(Debug, Default)]
struct LogQueue {
    pending: Vec<(AuditEvent, Waiter)>,
    committing: bool,
}

/// The queues of the logs being written through the writer.
#[derive(Debug, Default)]
pub(crate) struct AuditWriter {
    queues: Arc<Mutex<HashMap<LogId, LogQueue>>>,
}

impl AuditWriter {
    /// Forgets a deleted organization's queue.
    pub(crate) fn forget(&self, log: LogId) {
        lock(&self.queues).remove(&log);
    }

    /// Appends `event` to `log`, returning once it is committed.
    pub(crate) async fn record(&self, log: &AuditLog, event: AuditEvent) -> Result<(), StoreError> {
        let (done, committed) = oneshot::channel();
        let start = {
            let mut queues = lock(&self.queues);
            let queue = queues.entry(log.id()).or_default();
            queue.pending.push((event, done));
            !std::mem::replace(&mut queue.committing, true)
        };
        if start {
            tokio::spawn(commit_until_empty(self.queues.clone(), log.clone()));
        }
        match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Audit(message)),
            Err(_) => Err(StoreError::Audit("the audit commit was abandoned".into())),
        }
    }
}

/// The committer of one log: commits what is queued, batch after batch, and
/// ends (removing the idle queue) when nothing is left.
async fn commit_until_empty(queues: Arc<Mutex<HashMap<LogId, LogQueue>>>, log: AuditLog) {
    loop {
        let batch = {
            let mut queues = lock(&queues);
            let Some(queue) = queues.get_mut(&log.id()) else {
                return;
            };
            if queue.pending.is_empty() {
                queues.remove(&log.id());
                return;
            }
            let take = queue.pending.len().min(MAX_BATCH);
            queue.pending.drain(..take).collect::<Vec<_>>()
        };
        let (events, waiters): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let result = log
            .append(&events)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
