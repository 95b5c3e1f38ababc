//! QoS 1 telemetry throughput: each publishing device writes a burst of W
//! telemetry publishes at once, then waits for their W PUBACKs (the gateway
//! sends one only after the sample is committed), again and again until the
//! window ends. Every sample's `uptime_seconds` is one more than the last, so
//! the loss check finds each acknowledged one in the store.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rumqttc::mqttbytes::v4;
use sentinel_protocol::telemetry::{TelemetryBatch, TimedSample};
use serde::Serialize;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::client::Failure;
use crate::device::{sample, unix_now};
use crate::loss::Ledger;
use crate::mqtt::enroll::Enrolled;
use crate::mqtt::link::{self, Gateway, Link};
use crate::procfs;
use crate::rng::Rng;
use crate::stats::{Population, Recorder, micros};

/// What publishing devices ask for (the gateway ends a session silent for 1.5×).
const KEEP_ALIVE_SECONDS: u16 = 60;

/// How long a PUBACK may take before the device gives up on the connection.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// The telemetry phase's results.
#[derive(Debug, Clone, Serialize)]
pub struct TelemetryReport {
    /// Devices that connected and published.
    pub publishers: usize,
    /// Publishes each kept in flight.
    pub window: usize,
    /// From the first burst to the last PUBACK, seconds.
    pub seconds: f64,
    pub acknowledged: u64,
    pub per_second: f64,
    /// The server's CPU over the phase, in cores; `None` without its process id.
    pub server_cpu_cores: Option<f64>,
    /// The load generator's own CPU over the phase, in cores.
    pub loadgen_cpu_cores: f64,
}

/// What the phase publishes, from where.
pub struct Publishers<'a> {
    pub gateway: &'a Gateway,
    pub org: Uuid,
    pub window: usize,
    pub duration: Duration,
    pub sources: &'a [IpAddr],
    pub server_pid: Option<u32>,
}

/// Connects `devices`, then has each publish bursts of `plan.window` until
/// `plan.duration` has passed; each device's ledger for the loss check.
pub async fn measure(
    plan: &Publishers<'_>,
    devices: &[Enrolled],
    recorder: &Recorder,
) -> (TelemetryReport, Vec<Ledger>) {
    let mut connecting = JoinSet::new();
    for device in devices {
        let source =
            (!plan.sources.is_empty()).then(|| plan.sources[device.index % plan.sources.len()]);
        let (gateway, id, token, index) = (
            plan.gateway.clone(),
            device.id,
            device.token.clone(),
            device.index,
        );
        connecting.spawn(async move {
            let sent = Instant::now();
            let link = gateway
                .connect(source, id, &token, KEEP_ALIVE_SECONDS)
                .await;
            (id, index, link, sent.elapsed())
        });
    }
    let mut connected = Vec::with_capacity(devices.len());
    while let Some(done) = connecting.join_next().await {
        match done {
            Ok((id, index, Ok(link), took)) => {
                recorder.latency(Population::Clean, "telemetry: connect", took);
                connected.push((id, index, link));
            }
            Ok((_, _, Err(failure), _)) => {
                recorder.error(Population::Clean, "telemetry: connect", failure);
            }
            Err(_) => recorder.error(Population::Clean, "telemetry: connect", Failure::Transport),
        }
    }

    let server_start = plan.server_pid.and_then(procfs::read);
    let me_start = procfs::read(std::process::id());
    let started = Instant::now();
    let deadline = started + plan.duration;
    let publishers = connected.len();
    let mut publishing = JoinSet::new();
    for (id, index, link) in connected {
        let topic = link::topic(plan.org, id, "telemetry");
        publishing.spawn(publish(link, topic, id, index, plan.window, deadline));
    }
    let mut ledgers = Vec::with_capacity(publishers);
    while let Some(done) = publishing.join_next().await {
        let Ok(published) = done else {
            recorder.error(Population::Clean, "telemetry", Failure::Transport);
            continue;
        };
        recorder.latencies(
            Population::Clean,
            "telemetry (QoS 1 PUBACK)",
            &published.acks,
        );
        if let Some(failure) = published.failure {
            recorder.error(Population::Clean, "telemetry", failure);
        }
        recorder.telemetry_acknowledged.fetch_add(
            published.ledger.acknowledged.len() as u64,
            Ordering::Relaxed,
        );
        ledgers.push(published.ledger);
    }
    let seconds = started.elapsed().as_secs_f64();
    let acknowledged: u64 = ledgers.iter().map(|l| l.acknowledged.len() as u64).sum();
    let server_end = plan.server_pid.and_then(procfs::read);
    let cores = |a: Option<procfs::Reading>, b: Option<procfs::Reading>| match (a, b) {
        (Some(a), Some(b)) => Some(procfs::cores_between(&a, &b)),
        _ => None,
    };
    let report = TelemetryReport {
        publishers,
        window: plan.window,
        seconds,
        acknowledged,
        per_second: if seconds > 0.0 {
            acknowledged as f64 / seconds
        } else {
            0.0
        },
        server_cpu_cores: cores(server_start, server_end),
        loadgen_cpu_cores: cores(me_start, procfs::read(std::process::id())).unwrap_or(0.0),
    };
    (report, ledgers)
}

/// One device's publishing: its ledger, each PUBACK's time since its burst was
/// written (microseconds), and what ended it early, if anything.
struct Published {
    ledger: Ledger,
    acks: Vec<u32>,
    failure: Option<Failure>,
}

async fn publish(
    mut link: Link,
    topic: String,
    device: Uuid,
    index: usize,
    window: usize,
    deadline: Instant,
) -> Published {
    let mut rng = Rng::new(index as u64 ^ 0x3a77_9e1e);
    let mut uptime = 10_000 + rng.below(1_000_000);
    let mut batch = TelemetryBatch {
        samples: vec![TimedSample {
            at: unix_now(),
            sample: sample(&mut rng, uptime),
        }],
        facts: None,
    };
    let mut published = Published {
        ledger: Ledger {
            device,
            acknowledged: Vec::new(),
            unconfirmed: 0,
        },
        acks: Vec::new(),
        failure: None,
    };
    let mut pkid: u16 = 0;
    let mut in_flight: Vec<(u16, u64)> = Vec::with_capacity(window);
    while Instant::now() < deadline {
        let now = unix_now();
        for timed in &mut batch.samples {
            timed.at = now;
        }
        for _ in 0..window.max(1) {
            uptime += 1;
            // Packet ids 1..=65535 (0 is not one), wrapping.
            pkid = pkid.checked_add(1).unwrap_or(1);
            for timed in &mut batch.samples {
                timed.sample.uptime_seconds = uptime;
            }
            let queued = serde_json::to_vec(&batch)
                .map_err(|_| Failure::Decode)
                .and_then(|payload| link.publish(&topic, pkid, payload));
            if let Err(failure) = queued {
                published.failure = Some(failure);
                return published;
            }
            in_flight.push((pkid, uptime));
        }
        let written = Instant::now();
        let outcome = match link.flush().await {
            Ok(()) => acknowledge(&mut link, &mut in_flight, written, &mut published).await,
            Err(failure) => Err(failure),
        };
        if let Err(failure) = outcome {
            published.ledger.unconfirmed += in_flight.len() as u64;
            published.failure = Some(failure);
            return published;
        }
    }
    published
}

/// Reads the PUBACKs of `in_flight`, in order, moving each acknowledged sample
/// into the ledger; what is left in `in_flight` on failure went unanswered.
async fn acknowledge(
    link: &mut Link,
    in_flight: &mut Vec<(u16, u64)>,
    written: Instant,
    published: &mut Published,
) -> Result<(), Failure> {
    let mut answered = 0;
    let outcome = loop {
        let Some(&(pkid, uptime)) = in_flight.get(answered) else {
            break Ok(());
        };
        match link.next_within(ACK_TIMEOUT).await {
            Ok(v4::Packet::PubAck(ack)) if ack.pkid == pkid => {
                published.acks.push(micros(written.elapsed()));
                published.ledger.acknowledged.push(uptime);
                answered += 1;
            }
            Ok(_) => break Err(Failure::Decode),
            Err(failure) => break Err(failure),
        }
    };
    in_flight.drain(..answered);
    outcome
}
