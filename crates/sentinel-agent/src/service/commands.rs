//! The command loop: long-polls the server for commands and hands each to the
//! dispatcher, which verifies it, guards against replay, and runs it (at most
//! [`MAX_RUNNING`] at once, the rest queued), reporting `running` then how it ended.

use std::sync::Arc;
use std::time::Duration;

use sentinel_protocol::command::{Command, CommandReport, CommandStatus};
use sentinel_protocol::signing::{CommandVerifier, Rejection, SignedCommand};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::reports::Outbox;
use super::{Agent, actions, pause, seconds};
use crate::clock::unix_now;
use crate::retry::Retry;

/// How many commands run at once.
const MAX_RUNNING: usize = 4;
/// How long killed commands get to report once they are killed.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// The least time between two polls that brought nothing, whatever the server does.
const MIN_POLL_SPACING: Duration = Duration::from_secs(1);

/// Polls for commands until `stop`, then gives the dispatcher back to be finished.
pub(super) async fn poll(
    agent: Arc<Agent>,
    dispatcher: Dispatcher,
    stop: CancellationToken,
) -> Dispatcher {
    let mut retry = Retry::default();
    loop {
        let settings = agent.settings();
        let started = Instant::now();
        let polled = tokio::select! {
            polled = agent.transport.api().poll_commands(settings.long_poll_seconds) => polled,
            () = stop.cancelled() => break,
        };
        let delay = match polled {
            Ok(batch) => {
                retry.succeeded();
                let empty = batch.commands.is_empty();
                for signed in batch.commands {
                    dispatcher.accept(signed);
                }
                if settings.long_poll_seconds == 0 {
                    seconds(settings.poll_interval_seconds)
                } else if empty {
                    MIN_POLL_SPACING.saturating_sub(started.elapsed())
                } else {
                    Duration::ZERO
                }
            }
            Err(error) => retry.delay_after(&error, "polling for commands"),
        };
        if !pause(delay, &stop).await {
            break;
        }
    }
    dispatcher
}

/// Verifies, records and runs the commands it is handed.
pub(super) struct Dispatcher {
    agent: Arc<Agent>,
    verifier: CommandVerifier,
    device_id: Uuid,
    outbox: Outbox,
    slots: Arc<Semaphore>,
    running: TaskTracker,
    /// The agent is stopping: queued commands are not started.
    stop: CancellationToken,
    /// Running commands must end now.
    kill: CancellationToken,
}

impl Dispatcher {
    pub(super) fn new(
        agent: Arc<Agent>,
        verifier: CommandVerifier,
        device_id: Uuid,
        outbox: Outbox,
        stop: CancellationToken,
    ) -> Self {
        Self {
            agent,
            verifier,
            device_id,
            outbox,
            slots: Arc::new(Semaphore::new(MAX_RUNNING)),
            running: TaskTracker::new(),
            stop,
            kill: CancellationToken::new(),
        }
    }

    /// Refuses `signed` (reporting why) or starts running it. A command already pending
    /// (its report not yet delivered) is ignored.
    pub(super) fn accept(&self, signed: SignedCommand) {
        let id = signed.id;
        if !self.outbox.claim(id) {
            tracing::debug!(command = %id, "delivered again while pending; ignored");
            return;
        }
        let command = match self.admit(&signed) {
            Ok(command) => command,
            Err(report) => {
                self.outbox.send(id, report);
                return;
            }
        };
        tracing::info!(
            command = %id,
            action = command.action.kind(),
            issued_by = %command.issued_by,
            "command accepted"
        );
        let agent = self.agent.clone();
        let outbox = self.outbox.clone();
        let slots = self.slots.clone();
        let (stop, kill) = (self.stop.clone(), self.kill.clone());
        self.running.spawn(async move {
            let permit = tokio::select! {
                permit = slots.acquire_owned() => permit.ok(),
                () = stop.cancelled() => None,
            };
            if permit.is_none() {
                let mut report = blank(CommandStatus::Failed);
                report.reason = Some("the agent stopped before running it".into());
                outbox.send(id, report);
                return;
            }
            let started_at = unix_now();
            let mut running = blank(CommandStatus::Running);
            running.started_at = Some(started_at);
            outbox.send(id, running);
            let report = actions::execute(&agent, &command, started_at, &kill).await;
            tracing::info!(command = %id, status = report.status.as_str(), "command finished");
            outbox.send(id, report);
            drop(permit);
        });
    }

    /// The verified command, recorded as received; or the report refusing it.
    fn admit(&self, signed: &SignedCommand) -> Result<Command, CommandReport> {
        let now = unix_now();
        let refuse = |rejection: Rejection| {
            tracing::warn!(command = %signed.id, "command refused: {rejection}");
            let mut report = blank(CommandStatus::Rejected);
            report.reason = Some(rejection.to_string());
            report
        };
        let command = self
            .verifier
            .open(signed, self.device_id, now)
            .map_err(refuse)?;
        let mut replay = self.agent.replay();
        if replay.contains(command.id) {
            return Err(refuse(Rejection::Replayed));
        }
        let mut recorded = replay.clone();
        recorded.insert(command.id, command.expires_at, now);
        if let Err(error) = recorded.save(&self.agent.dir.replay_file()) {
            tracing::error!(command = %command.id, "cannot save the replay record: {error}");
            let mut report = blank(CommandStatus::Failed);
            report.reason = Some(format!(
                "not run: the replay record could not be saved ({error})"
            ));
            return Err(report);
        }
        *replay = recorded;
        Ok(command)
    }

    /// Lets the running commands finish for up to `grace`, then kills them and waits a
    /// little for their reports.
    pub(super) async fn finish(self, grace: Duration) {
        self.running.close();
        if tokio::time::timeout(grace, self.running.wait())
            .await
            .is_ok()
        {
            return;
        }
        tracing::warn!(
            "commands still running after {}s: killing them",
            grace.as_secs()
        );
        self.kill.cancel();
        if tokio::time::timeout(KILL_WAIT, self.running.wait())
            .await
            .is_err()
        {
            tracing::warn!("killed commands did not finish reporting");
        }
    }
}

/// A report with `status` and nothing else.
pub(super) fn blank(status: CommandStatus) -> CommandReport {
    CommandReport {
        status,
        exit_code: None,
        stdout: String::new(),
        stderr: String::new(),
        output_truncated: false,
        started_at: None,
        finished_at: None,
        reason: None,
    }
}
