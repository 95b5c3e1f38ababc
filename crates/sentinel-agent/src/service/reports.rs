//! Command reports on their way to the server: queued in order, delivered one at a time
//! with retries, and the set of commands whose report is still to be delivered.
//!
//! A command is *pending* from the moment it is accepted (or refused) until its final
//! report reached the server. The server hands a command out again while it has no
//! report on it; such a repeated delivery of a pending command is ignored, because the
//! report it is waiting for is on its way.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use sentinel_protocol::command::CommandReport;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::api::ApiError;
use crate::retry::Retry;
use crate::transport::Transport;

/// The commands whose final report is not delivered yet.
#[derive(Debug, Clone, Default)]
struct Pending(Arc<Mutex<HashSet<Uuid>>>);

impl Pending {
    fn claim(&self, id: Uuid) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id)
    }

    fn settle(&self, id: Uuid) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}

/// Where reports are queued.
#[derive(Debug, Clone)]
pub(super) struct Outbox {
    queue: mpsc::UnboundedSender<(Uuid, CommandReport)>,
    pending: Pending,
}

/// The delivering end of an [`Outbox`].
#[derive(Debug)]
pub(super) struct Delivery {
    queue: mpsc::UnboundedReceiver<(Uuid, CommandReport)>,
    pending: Pending,
}

/// An outbox and its delivery.
pub(super) fn outbox() -> (Outbox, Delivery) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let pending = Pending::default();
    (
        Outbox {
            queue: sender,
            pending: pending.clone(),
        },
        Delivery {
            queue: receiver,
            pending,
        },
    )
}

impl Outbox {
    /// Marks the command `id` pending; false if it already was.
    pub(super) fn claim(&self, id: Uuid) -> bool {
        self.pending.claim(id)
    }

    /// Queues a report on the command `id`.
    pub(super) fn send(&self, id: Uuid, report: CommandReport) {
        // The delivery ends only after every outbox is dropped.
        let _ = self.queue.send((id, report));
    }
}

#[cfg(test)]
impl Delivery {
    /// The next report queued, waiting up to `wait` for it.
    pub(super) async fn next_within(
        &mut self,
        wait: std::time::Duration,
    ) -> Option<(Uuid, CommandReport)> {
        tokio::time::timeout(wait, self.queue.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Delivery {
    /// Delivers the reports in the order they were queued until every [`Outbox`] is
    /// dropped and the queue is empty. A report the server refuses (4xx, or an MQTT
    /// refusal) is dropped.
    pub(super) async fn run(mut self, transport: &Transport) {
        let mut retry = Retry::default();
        while let Some((id, report)) = self.queue.recv().await {
            loop {
                match transport.report(id, &report).await {
                    Ok(()) => {
                        retry.succeeded();
                        break;
                    }
                    Err(ApiError::Refused { answer, detail }) => {
                        tracing::warn!(
                            command = %id,
                            "the server refused the {} report ({answer}): {detail}",
                            report.status.as_str()
                        );
                        break;
                    }
                    Err(error) => {
                        let delay = retry.delay_after(&error, "reporting on a command");
                        tokio::time::sleep(delay).await;
                    }
                }
            }
            if report.status.is_final() {
                self.pending.settle(id);
            }
        }
    }
}
