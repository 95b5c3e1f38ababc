//! Group commit for entries that accompany no change of their own (denials,
//! failed logins, exports): each caller waits until its entry is durable, and
//! callers that arrive while a commit is running share the next one.
//!
//! Per log, events wait in a queue. A caller enqueues its event, then takes the
//! log's commit lock; whoever holds it takes everything queued and appends it in
//! one transaction, in a task of its own, so a caller that gives up (a timed-out
//! request) cannot abandon the others' entries halfway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sentinel_core::audit::{AuditEvent, LogId};
use tokio::sync::oneshot;

use super::AuditLog;
use crate::StoreError;

type Waiter = oneshot::Sender<Result<(), String>>;

#[derive(Debug, Default)]
struct LogQueue {
    pending: Mutex<Vec<(AuditEvent, Waiter)>>,
    commit: Arc<tokio::sync::Mutex<()>>,
}

/// The queues of every log written through the writer.
#[derive(Debug, Default)]
pub(crate) struct AuditWriter {
    queues: Mutex<HashMap<LogId, Arc<LogQueue>>>,
}

impl AuditWriter {
    fn queue(&self, log: LogId) -> Arc<LogQueue> {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        queues.entry(log).or_default().clone()
    }

    /// Forgets a deleted organization's queue.
    pub(crate) fn forget(&self, log: LogId) {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        queues.remove(&log);
    }

    /// Appends `event` to `log`, returning once it is committed.
    pub(crate) async fn record(&self, log: &AuditLog, event: AuditEvent) -> Result<(), StoreError> {
        let queue = self.queue(log.id());
        let (done, committed) = oneshot::channel();
        queue
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((event, done));
        let turn = queue.commit.clone().lock_owned().await;
        let batch = std::mem::take(&mut *queue.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if !batch.is_empty() {
            let log = log.clone();
            tokio::spawn(async move {
                let _turn = turn;
                let (events, waiters): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                let result = log
                    .append(&events)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                for waiter in waiters {
                    let _ = waiter.send(result.clone());
                }
            });
        }
        match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Audit(message)),
            Err(_) => Err(StoreError::Audit("the audit commit was abandoned".into())),
        }
    }
}
