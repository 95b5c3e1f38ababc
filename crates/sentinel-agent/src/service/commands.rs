//! Taking commands: long-polled over HTTPS ([`poll`]) or pushed over MQTT
//! ([`receive`]), each is handed to the one dispatcher, which verifies it, guards
//! against replay, and runs it (at most [`MAX_RUNNING`] at once, the rest queued),
//! reporting `running` then how it ended.

use std::sync::Arc;
use std::time::Duration;

use sentinel_protocol::command::{Command, CommandReport, CommandStatus};
use sentinel_protocol::polling;
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
use crate::transport::mqtt::Pushed;

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
    let mut telemetry_due = agent.telemetry_due.subscribe();
    let mut after_report = false;
    loop {
        let settings = agent.settings();
        let started = Instant::now();
        let until_report = telemetry_due
            .borrow_and_update()
            .map(|due| due.saturating_duration_since(started));
        let long_poll = seconds(settings.long_poll_seconds);
        let wait = match polling::poll_wait(long_poll, until_report, after_report) {
            Some(wait) => wait,
            None => {
                // Telemetry is about to go: the poll follows it on the same
                // connection, or goes anyway if the report takes long.
                let sent = tokio::time::timeout(polling::REPORT_GRACE, telemetry_due.changed());
                tokio::select! {
                    sent = sent => match sent {
                        Ok(_) => {
                            after_report = true;
                            continue;
                        }
                        Err(_) => long_poll,
                    },
                    () = stop.cancelled() => break,
                }
            }
        };
        after_report = false;
        let polled = tokio::select! {
            polled = agent.transport.api().poll_commands(wait) => polled,
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

/// Takes the commands the gateway pushes until `stop`, then gives the dispatcher back
/// to be finished. Each is acknowledged once the dispatcher has it (accepted, refused
/// or ignored as already pending); one not taken before `stop` comes again later.
pub(super) async fn receive(
    mut pushed: Pushed,
    dispatcher: Dispatcher,
    stop: CancellationToken,
) -> Dispatcher {
    loop {
        let delivered = tokio::select! {
            delivered = pushed.recv() => delivered,
            () = stop.cancelled() => break,
        };
        let Some(delivered) = delivered else {
            // The link is gone: nothing more comes.
            stop.cancelled().await;
            break;
        };
        dispatcher.take(delivered.payload());
        delivered.acknowledge();
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

    /// A message that should hold a signed command: one that does not is ignored (it
    /// names no command to report on); one that does goes to [`Self::accept`].
    pub(super) fn take(&self, message: &[u8]) {
        match serde_json::from_slice::<SignedCommand>(message) {
            Ok(signed) => self.accept(signed),
            Err(error) => {
                tracing::warn!("a pushed message is not a signed command ({error}); ignored")
            }
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

#[cfg(test)]
mod tests {
    //! Commands as they arrive pushed over MQTT: the message handler hands them to the
    //! one dispatcher, which runs only what the organization signed for this device.

    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::path::{Path, PathBuf};

    use proptest::prelude::*;
    use sentinel_protocol::command::{CommandAction, Interpreter};
    use sentinel_protocol::enroll::AgentSettings;
    use sentinel_protocol::signing::CommandSigner;

    use super::super::reports::{self, Delivery};
    use super::super::{RunOptions, load};
    use super::*;
    use crate::secret::Secret;
    use crate::state::{State, StateDir};
    use crate::transport::Protocol;

    const WAIT: Duration = Duration::from_secs(10);

    /// A dispatcher of an agent enrolled in a temporary state directory, trusting
    /// `signer`'s key, and the reports it makes.
    struct Enrolled {
        dispatcher: Dispatcher,
        delivery: Delivery,
        signer: CommandSigner,
        org_id: Uuid,
        device_id: Uuid,
        dir: tempfile::TempDir,
    }

    fn enrolled() -> Enrolled {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state");
        let (signer, _) = CommandSigner::generate().unwrap();
        let (org_id, device_id) = (Uuid::new_v4(), Uuid::new_v4());
        StateDir::create_private(&state_dir)
            .unwrap()
            .save(&State {
                server_url: "https://127.0.0.1:9".into(),
                device_id,
                org_id,
                device_token: Secret::new("sdt_test"),
                command_key: signer.public_key_hex(),
                ca_pinned: false,
                settings: AgentSettings::default(),
                enrolled_at: 0,
                token_rotated_at: 0,
            })
            .unwrap();
        let (agent, _) = load(RunOptions {
            state_dir,
            host_root: PathBuf::from("/"),
            inventory: None,
            transport: Protocol::Https,
        })
        .unwrap();
        let verifier = CommandVerifier::from_hex(&signer.public_key_hex()).unwrap();
        let (outbox, delivery) = reports::outbox();
        let dispatcher = Dispatcher::new(
            Arc::new(agent),
            verifier,
            device_id,
            outbox,
            CancellationToken::new(),
        );
        Enrolled {
            dispatcher,
            delivery,
            signer,
            org_id,
            device_id,
            dir,
        }
    }

    impl Enrolled {
        /// A script creating `marker`, for this device, valid for an hour.
        fn touch(&self, marker: &Path) -> Command {
            let now = unix_now();
            Command {
                id: Uuid::new_v4(),
                org_id: self.org_id,
                device_id: self.device_id,
                issued_at: now,
                expires_at: now + 3600,
                issued_by: "ada@example.org".into(),
                action: CommandAction::RunScript {
                    interpreter: Interpreter::Sh,
                    script: format!("touch {}", marker.display()),
                    timeout_seconds: 10,
                },
            }
        }

        /// The message as the gateway publishes it: the signed command's JSON.
        fn message(signed: &SignedCommand) -> Vec<u8> {
            serde_json::to_vec(signed).unwrap()
        }
    }

    #[tokio::test]
    async fn forged_unsigned_and_tampered_commands_are_refused_and_never_run() {
        let mut agent = enrolled();
        let marker = agent.dir.path().join("marker");
        let command = agent.touch(&marker);

        let (other_key, _) = CommandSigner::generate().unwrap();
        let forged = other_key.sign(&command).unwrap();
        let unsigned = SignedCommand {
            signature: String::new(),
            ..agent.signer.sign(&command).unwrap()
        };
        let tampered = {
            // The genuine signature over a harmless command, on another payload.
            let mut harmless = agent.touch(&agent.dir.path().join("harmless"));
            harmless.id = command.id;
            harmless.action = CommandAction::Reboot {};
            let genuine = agent.signer.sign(&harmless).unwrap();
            SignedCommand {
                payload: agent.signer.sign(&command).unwrap().payload,
                ..genuine
            }
        };
        // Each with its own id, so that none is taken for a repeat of another.
        for mut signed in [forged, unsigned, tampered] {
            signed.id = Uuid::new_v4();
            agent.dispatcher.take(&Enrolled::message(&signed));
            let (id, report) = agent.delivery.next_within(WAIT).await.unwrap();
            assert_eq!(id, signed.id);
            assert_eq!(report.status, CommandStatus::Rejected, "{report:?}");
            let reason = report.reason.unwrap();
            assert!(
                reason == Rejection::BadSignature.to_string()
                    || reason == Rejection::Malformed.to_string(),
                "{reason}"
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!marker.exists(), "a refused command ran");
        assert!(agent.dispatcher.agent.replay().is_empty());

        // The same command, signed by the organization, runs: the test would see it.
        agent
            .dispatcher
            .take(&Enrolled::message(&agent.signer.sign(&command).unwrap()));
        let (_, running) = agent.delivery.next_within(WAIT).await.unwrap();
        assert_eq!(running.status, CommandStatus::Running);
        let (_, done) = agent.delivery.next_within(WAIT).await.unwrap();
        assert_eq!(done.status, CommandStatus::Succeeded, "{done:?}");
        assert!(marker.exists());
        // Pushed again (the gateway redelivers what it has no final report on, and
        // this one's report was never delivered): ignored while pending, not run twice.
        std::fs::remove_file(&marker).unwrap();
        agent
            .dispatcher
            .take(&Enrolled::message(&agent.signer.sign(&command).unwrap()));
        assert!(
            agent
                .delivery
                .next_within(Duration::from_millis(300))
                .await
                .is_none()
        );
        assert!(!marker.exists());
    }

    #[tokio::test]
    async fn malformed_pushed_messages_are_ignored_without_a_report() {
        let mut agent = enrolled();
        let marker = agent.dir.path().join("marker");
        let genuine = agent.signer.sign(&agent.touch(&marker)).unwrap();
        let text = String::from_utf8(Enrolled::message(&genuine)).unwrap();
        let messages: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"not json".to_vec(),
            b"null".to_vec(),
            b"{}".to_vec(),
            b"[]".to_vec(),
            format!("{{\"id\": \"{}\"}}", genuine.id).into_bytes(),
            // Unknown fields are refused, not ignored.
            text.replacen('{', "{\"run\": true, ", 1).into_bytes(),
            // Cut short.
            text.as_bytes()[..text.len() / 2].to_vec(),
            vec![0xff; 64],
            format!("[{text}]").into_bytes(),
        ];
        for message in &messages {
            agent.dispatcher.take(message);
        }
        proptest!(ProptestConfig::with_cases(256), |(bytes in proptest::collection::vec(any::<u8>(), 0..512))| {
            agent.dispatcher.take(&bytes);
        });
        assert!(
            agent
                .delivery
                .next_within(Duration::from_millis(300))
                .await
                .is_none(),
            "a malformed message was reported on"
        );
        assert!(!marker.exists());
        assert!(agent.dispatcher.agent.replay().is_empty());
    }
}
