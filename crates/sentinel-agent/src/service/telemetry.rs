//! The telemetry loop: a sample every `telemetry_interval_seconds`, spooled and sent
//! oldest first (several batches after an outage); the host's facts with the first batch
//! and whenever they change; the settings of each acknowledgement adopted.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sentinel_protocol::facts::HostFacts;
use sentinel_protocol::telemetry::{TelemetryBatch, TimedSample};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::{Agent, FLUSH_TIME, seconds};
use crate::api::ApiError;
use crate::clock::unix_now;
use crate::facts;
use crate::retry::Retry;
use crate::spool::Spool;
use crate::telemetry::Sampler;

/// Samples and sends telemetry until `stop`, then tries once more to send what is left.
pub(super) async fn run(agent: Arc<Agent>, stop: CancellationToken) {
    let mut sender = Sender {
        sampler: Arc::new(Mutex::new(Sampler::new(agent.host.telemetry.clone()))),
        agent,
        spool: Spool::default(),
        facts: None,
        facts_sent: None,
        retry: Retry::default(),
        dropping: false,
    };
    let mut settings = sender.agent.settings.subscribe();
    let mut last_sample: Option<Instant> = None;
    let mut retry_at: Option<Instant> = None;
    loop {
        let interval = seconds(settings.borrow_and_update().telemetry_interval_seconds);
        let next_sample = last_sample.map_or_else(Instant::now, |last| last + interval);
        let wake = retry_at.map_or(next_sample, |at| at.min(next_sample));
        sender.agent.telemetry_due_at(wake);
        tokio::select! {
            () = sleep_until(wake) => {}
            _ = settings.changed() => continue,
            () = stop.cancelled() => break,
        }
        let now = Instant::now();
        if now >= next_sample {
            sender.sample().await;
            last_sample = Some(now);
        }
        if retry_at.is_none_or(|at| now >= at) {
            retry_at = tokio::select! {
                delay = sender.flush() => delay.map(|delay| Instant::now() + delay),
                () = stop.cancelled() => break,
            };
        }
    }
    sender.agent.telemetry_due.send_replace(None);
    if tokio::time::timeout(FLUSH_TIME, sender.flush())
        .await
        .is_err()
    {
        tracing::debug!("{} telemetry samples left unsent", sender.spool.len());
    }
}

/// The samples and facts on their way to the server.
struct Sender {
    agent: Arc<Agent>,
    sampler: Arc<Mutex<Sampler>>,
    spool: Spool,
    /// The facts as last read.
    facts: Option<HostFacts>,
    /// The facts as last sent.
    facts_sent: Option<HostFacts>,
    retry: Retry,
    /// Whether old samples are being dropped for want of room.
    dropping: bool,
}

impl Sender {
    /// Takes a sample and reads the facts (off the async threads: they read files).
    async fn sample(&mut self) {
        let sampler = self.sampler.clone();
        let paths = self.agent.host.facts.clone();
        let read = tokio::task::spawn_blocking(move || {
            let sample = sampler
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .sample();
            (sample, facts::collect(&paths))
        })
        .await;
        let (sample, facts) = match read {
            Ok(read) => read,
            Err(error) => {
                tracing::error!("sampling failed: {error}");
                return;
            }
        };
        self.facts = Some(facts);
        let dropped = self.spool.push(TimedSample {
            at: unix_now(),
            sample,
        });
        if dropped && !self.dropping {
            tracing::warn!("the telemetry spool is full: dropping the oldest samples");
        }
        self.dropping = dropped;
    }

    /// Sends the spool, oldest first; how long to wait before trying again if it failed.
    async fn flush(&mut self) -> Option<Duration> {
        while let Some(batch) = self.spool.next_batch() {
            let facts = self
                .facts
                .clone()
                .filter(|facts| self.facts_sent.as_ref() != Some(facts));
            let sent = TelemetryBatch {
                samples: batch.samples.clone(),
                facts: facts.clone(),
            };
            match self.agent.transport.send_telemetry(&sent).await {
                Ok(settings) => {
                    self.retry.succeeded();
                    self.spool.acknowledge(&batch);
                    self.facts_sent = facts.or(self.facts_sent.take());
                    if let Some(settings) = settings {
                        self.agent.adopt(settings);
                    }
                }
                Err(ApiError::Refused { answer, detail }) => {
                    // Sending it again would be refused again: drop it, facts and all.
                    tracing::error!(
                        "the server refused {} telemetry samples ({answer}): {detail}; dropped",
                        batch.samples.len()
                    );
                    self.spool.acknowledge(&batch);
                    self.facts_sent = facts.or(self.facts_sent.take());
                }
                Err(error) => return Some(self.retry.delay_after(&error, "sending telemetry")),
            }
        }
        None
    }
}
