//! Enrolling the MQTT devices over HTTPS with one enrollment token, as agents
//! do, over a few shared HTTP/2 connections (an MQTT device keeps no HTTPS
//! connection open afterwards).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use sentinel_protocol::enroll::{EnrollRequest, EnrollResponse};
use sentinel_protocol::paths;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::client::{Call, Connection, Failure, Target};
use crate::device::{AGENT_VERSION, facts};
use crate::fleet::Enrollment;
use crate::stats::{Population, Recorder, Summary, micros};

/// Enrollments in flight at once.
const CONCURRENCY: usize = 64;
/// HTTP/2 connections they are spread over (each from the next source address).
const CONNECTIONS: usize = 8;

/// An enrolled device's MQTT credentials and command key.
pub struct Enrolled {
    pub index: usize,
    pub id: Uuid,
    pub token: String,
    /// The organization's command-signing key (hex).
    pub command_key: String,
}

/// Enrolls `count` devices (`sim-00000` …) with `token`; the enrolled ones in
/// index order, and how fast it went. Failures are recorded as `enroll` errors.
pub async fn enroll_all(
    target: &Target,
    token: &str,
    count: usize,
    sources: &[IpAddr],
    recorder: &Recorder,
) -> (Vec<Enrolled>, Enrollment) {
    let started = Instant::now();
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for n in 0..CONNECTIONS.min(count) {
        let source = (!sources.is_empty()).then(|| sources[n % sources.len()]);
        match target.connect(source).await {
            Ok(connection) => connections.push(connection),
            Err(f) => recorder.error(Population::Clean, "connect", f),
        }
    }
    let token: Arc<str> = Arc::from(token);
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let mut enrolling = JoinSet::new();
    for index in 0..count {
        let Some(connection) = connections.get(index % connections.len().max(1)).cloned() else {
            break;
        };
        let Ok(slot) = gate.clone().acquire_owned().await else {
            break;
        };
        let token = token.clone();
        enrolling.spawn(async move {
            let _slot = slot;
            let sent = Instant::now();
            let outcome = enroll_one(&connection, &token, index).await;
            (index, outcome, sent.elapsed())
        });
    }
    let mut enrolled = Vec::with_capacity(count);
    let mut latencies = Vec::with_capacity(count);
    while let Some(done) = enrolling.join_next().await {
        let Ok((index, outcome, took)) = done else {
            continue;
        };
        match outcome {
            Ok(answer) => {
                latencies.push(micros(took));
                enrolled.push(Enrolled {
                    index,
                    id: answer.device_id,
                    token: answer.device_token,
                    command_key: answer.command_key,
                });
            }
            Err(f) => recorder.error(Population::Clean, "enroll", f),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    recorder.latencies(Population::Clean, "enroll", &latencies);
    enrolled.sort_by_key(|d| d.index);
    let summary = Enrollment {
        enrolled: enrolled.len() as u64,
        seconds,
        per_second: if seconds > 0.0 {
            enrolled.len() as f64 / seconds
        } else {
            0.0
        },
        latency: Summary::of(&latencies),
    };
    (enrolled, summary)
}

async fn enroll_one(
    connection: &Connection,
    token: &str,
    index: usize,
) -> Result<EnrollResponse, Failure> {
    let request = EnrollRequest {
        token: token.to_owned(),
        facts: facts(index),
        agent_version: AGENT_VERSION.into(),
    };
    let body = serde_json::to_vec(&request).map_err(|_| Failure::Decode)?;
    connection
        .send(Call::post(paths::ENROLL, body), None)
        .await?
        .json()
}
