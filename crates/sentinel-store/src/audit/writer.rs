//! Group commit for entries that accompany no change of their own (denials,
//! failed logins, exports): each caller waits until its entry is durable, and
//! callers that arrive while a commit is running share the next one
//! ([`crate::group_commit`], one queue per log).

use std::sync::Arc;

use sentinel_core::audit::{AuditEvent, LogId};

use super::AuditLog;
use crate::StoreError;
use crate::group_commit::{Commit, GroupCommit};

/// The most events one commit takes; the rest wait for the next.
const MAX_BATCH: usize = 5_000;

/// The queues of the logs being written through the writer.
#[derive(Debug)]
pub(crate) struct AuditWriter {
    queues: GroupCommit<LogId, AuditEvent, ()>,
}

impl Default for AuditWriter {
    fn default() -> Self {
        AuditWriter {
            queues: GroupCommit::new(MAX_BATCH),
        }
    }
}

impl AuditWriter {
    /// Forgets a deleted organization's queue.
    pub(crate) fn forget(&self, log: LogId) {
        self.queues.forget(&log);
    }

    /// Appends `event` to `log`, returning once it is committed.
    pub(crate) async fn record(&self, log: &AuditLog, event: AuditEvent) -> Result<(), StoreError> {
        let target = log.clone();
        let commit: Commit<AuditEvent, ()> = Arc::new(move |events: Vec<AuditEvent>| {
            let log = target.clone();
            Box::pin(async move {
                log.append(&events)
                    .await
                    .map(|_| vec![(); events.len()])
                    .map_err(|e| e.to_string())
            })
        });
        self.queues
            .submit(log.id(), event, commit)
            .await
            .map_err(StoreError::Audit)
    }
}
