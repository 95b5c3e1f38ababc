//! Misbehaving devices: what a broken, hostile or badly connected agent does to
//! the server while the rest of the fleet works. Each acts about once a second
//! until told to stop, then leaves (its sockets closed).
//!
//! The refusals they are meant to get (401, 400, 413, 403) are counted as
//! expected; a 2xx for garbage, a 5xx, or anything else is an error.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sentinel_protocol::paths;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::client::{Call, Connection, Failure, Target};
use crate::device::Device;
use crate::rng::Rng;
use crate::stats::{Population, Recorder};

/// The kinds of misbehaviour, given out round robin over the misbehaving devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Sends half a request (a telemetry body cut short, a long-poll) and vanishes.
    Disconnect,
    /// Uses a device token the server never issued.
    InvalidToken,
    /// Keeps using its token after the device was revoked.
    RevokedToken,
    /// Asks for something and reads the answer one byte a second.
    SlowReader,
    /// Sends bodies that are not what the protocol says.
    Malformed,
}

impl FaultKind {
    pub const ALL: [Self; 5] = [
        Self::Disconnect,
        Self::InvalidToken,
        Self::RevokedToken,
        Self::SlowReader,
        Self::Malformed,
    ];

    /// Whether the device enrolls first (everything but the invalid token).
    pub fn enrolls(self) -> bool {
        self != Self::InvalidToken
    }
}

/// Counts a misbehaving request's outcome.
fn outcome(
    recorder: &Recorder,
    endpoint: &'static str,
    result: Result<(), Failure>,
    took: Duration,
) {
    match result {
        Ok(()) => recorder.error(Population::Faulty, endpoint, Failure::Status(200)),
        Err(Failure::Status(s)) if (400..500).contains(&s) => {
            recorder.expected_refusals.fetch_add(1, Ordering::Relaxed);
            recorder.latency(Population::Faulty, endpoint, took);
        }
        Err(f) => recorder.error(Population::Faulty, endpoint, f),
    }
}

/// Runs one misbehaving device until `stop`.
pub async fn misbehave(
    kind: FaultKind,
    index: usize,
    device: Option<Arc<Device>>,
    source: Option<IpAddr>,
    target: Target,
    recorder: Arc<Recorder>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = Rng::new(index as u64 ^ 0xfa017);
    // Spread the first actions over the first second.
    let first = Duration::from_millis(rng.below(1000));
    tokio::select! {
        _ = tokio::time::sleep(first) => {}
        _ = stop.changed() => return,
    }
    let mut round = 0u64;
    // The invalid-token device keeps its connection, as a real (broken) agent would.
    let mut own: Option<Connection> = None;
    while !*stop.borrow() {
        let work = act(
            kind,
            round,
            device.as_deref(),
            source,
            &target,
            &recorder,
            &mut rng,
            &mut own,
        );
        tokio::select! {
            _ = work => {}
            _ = stop.changed() => break,
        }
        round += 1;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(800 + rng.below(400))) => {}
            _ = stop.changed() => break,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn act(
    kind: FaultKind,
    round: u64,
    device: Option<&Device>,
    source: Option<IpAddr>,
    target: &Target,
    recorder: &Recorder,
    rng: &mut Rng,
    own: &mut Option<Connection>,
) {
    match (kind, device) {
        (FaultKind::Disconnect, Some(device)) => {
            disconnect(round, device, target, recorder, rng).await
        }
        (FaultKind::InvalidToken, _) => {
            invalid_token(round, source, target, recorder, rng, own).await
        }
        (FaultKind::RevokedToken, Some(device)) => revoked(round, device, target, recorder).await,
        (FaultKind::SlowReader, Some(device)) => slow_reader(round, device, target, recorder).await,
        (FaultKind::Malformed, Some(device)) => malformed(round, device, target, recorder).await,
        // A device that should have enrolled and did not: nothing to misuse.
        _ => tokio::time::sleep(Duration::from_secs(1)).await,
    }
}

/// HTTP/1.1 request head for `path` with the device's token.
fn head(target: &Target, method: &str, path: &str, token: &str, length: Option<usize>) -> String {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}\r\n",
        target.authority
    );
    if let Some(length) = length {
        head.push_str(&format!(
            "content-type: application/json\r\ncontent-length: {length}\r\n"
        ));
    }
    head.push_str("\r\n");
    head
}

async fn disconnect(
    round: u64,
    device: &Device,
    target: &Target,
    recorder: &Recorder,
    rng: &mut Rng,
) {
    let mut tls = match target.tls(device.source, false).await {
        Ok(tls) => tls,
        Err(f) => return recorder.error(Population::Faulty, "abrupt disconnect", f),
    };
    let request = if round.is_multiple_of(2) {
        // A telemetry body promised at 2,000 bytes, cut off after 700.
        let mut r = head(target, "POST", paths::TELEMETRY, &device.token, Some(2000)).into_bytes();
        r.extend_from_slice(br#"{"samples":[{"at":1700000000,"sample":{"uptime_seconds":5,"load":[0.1,0.1,0.1],"cpu_percent":3.0,"#);
        r.resize(r.len() + 600, b' ');
        r
    } else {
        // A long-poll the device walks away from.
        let path = paths::commands_waiting(Duration::from_secs(25));
        head(target, "GET", &path, &device.token, None).into_bytes()
    };
    if tls.write_all(&request).await.is_err() || tls.flush().await.is_err() {
        return recorder.error(Population::Faulty, "abrupt disconnect", Failure::Transport);
    }
    tokio::time::sleep(Duration::from_millis(200 + rng.below(2000))).await;
    // Dropped without close_notify or FIN from TLS: the device is simply gone.
    drop(tls);
    recorder.expected_refusals.fetch_add(1, Ordering::Relaxed);
}

async fn invalid_token(
    round: u64,
    source: Option<IpAddr>,
    target: &Target,
    recorder: &Recorder,
    rng: &mut Rng,
    own: &mut Option<Connection>,
) {
    let connection = match own.take().filter(|c| !c.is_closed()) {
        Some(c) => c,
        None => match target.connect(source).await {
            Ok(c) => c,
            Err(f) => return recorder.error(Population::Faulty, "invalid token", f),
        },
    };
    *own = Some(connection.clone());
    let token = format!(
        "sdt_{:016x}{:016x}{:016x}",
        rng.next_u64(),
        rng.next_u64(),
        rng.next_u64()
    );
    let started = Instant::now();
    let result = if round.is_multiple_of(2) {
        connection
            .send(
                Call::post(paths::TELEMETRY, br#"{"samples":[]}"#.to_vec()),
                Some(&token),
            )
            .await
    } else {
        connection
            .send(Call::get(paths::COMMANDS), Some(&token))
            .await
    };
    outcome(
        recorder,
        "invalid token",
        result.map(drop),
        started.elapsed(),
    );
}

async fn revoked(round: u64, device: &Device, target: &Target, recorder: &Recorder) {
    let started = Instant::now();
    let token = Some(device.token.as_str());
    let result = if round.is_multiple_of(2) {
        let call = Call::post(paths::TELEMETRY, br#"{"samples":[]}"#.to_vec());
        device.call(target, call, token).await
    } else {
        let path = paths::commands_waiting(Duration::from_secs(25));
        device.call(target, Call::get(&path), token).await
    };
    outcome(
        recorder,
        "revoked token",
        result.map(drop),
        started.elapsed(),
    );
}

/// Asks for the OpenAPI document (a large answer) or its commands, then reads the
/// answer from the socket one byte a second, never finishing within a run.
async fn slow_reader(round: u64, device: &Device, target: &Target, recorder: &Recorder) {
    let mut tls = match target.tls(device.source, false).await {
        Ok(tls) => tls,
        Err(f) => return recorder.error(Population::Faulty, "slow reader", f),
    };
    let path = if round.is_multiple_of(2) {
        "/api/v1/openapi.json".to_owned()
    } else {
        paths::COMMANDS.to_owned()
    };
    let request = head(target, "GET", &path, &device.token, None);
    if tls.write_all(request.as_bytes()).await.is_err() || tls.flush().await.is_err() {
        return recorder.error(Population::Faulty, "slow reader", Failure::Transport);
    }
    recorder.expected_refusals.fetch_add(1, Ordering::Relaxed);
    // Below TLS: one byte of ciphertext a second, so the server's writes back up.
    let (mut tcp, _) = tls.into_inner();
    let mut byte = [0u8; 1];
    loop {
        match tcp.read(&mut byte).await {
            Ok(0) | Err(_) => return,
            Ok(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// The server's body limit on the agent routes (sentinel-http `AGENT_REPORT_BYTES`).
const AGENT_BODY_LIMIT: usize = 8 << 20;

/// Bodies an agent must never send; each should be refused with a 4xx.
async fn malformed(round: u64, device: &Device, target: &Target, recorder: &Recorder) {
    let (path, body): (&str, Vec<u8>) = match round % 8 {
        0 => (paths::TELEMETRY, b"{\"samples\": [".to_vec()),
        1 => (paths::TELEMETRY, br#"{"samples": "lots"}"#.to_vec()),
        2 => (paths::TELEMETRY, br#"{"samples": [], "admin": true}"#.to_vec()),
        3 => (
            paths::TELEMETRY,
            br#"{"samples":[{"at":1,"sample":{"uptime_seconds":1,"load":[-1,0,0],"cpu_percent":400,"memory":{"total_bytes":1,"available_bytes":1,"used_bytes":0},"swap":{"total_bytes":0,"available_bytes":0,"used_bytes":0},"disks":[],"interfaces":[],"logged_in_users":0,"warnings":[]}}]}"#.to_vec(),
        ),
        4 => (paths::INVENTORY, br#"{"digest": "../../etc/passwd"}"#.to_vec()),
        5 => (paths::ENROLL, br#"{"token":"set_nope","facts":{},"agent_version":"x"}"#.to_vec()),
        6 => (paths::INVENTORY, b"\x00\xff\xfe not even text".to_vec()),
        // Once in a while, a body past the agent routes' limit.
        _ if round % 48 == 7 => (paths::TELEMETRY, vec![b' '; AGENT_BODY_LIMIT + (1 << 20)]),
        _ => (paths::TELEMETRY, br#"{"samples":[{"at":"yesterday"}]}"#.to_vec()),
    };
    let started = Instant::now();
    let token = (path != paths::ENROLL).then_some(device.token.as_str());
    let oversized = body.len() > AGENT_BODY_LIMIT;
    let result = device.call(target, Call::post(path, body), token).await;
    if oversized && matches!(result, Err(Failure::Transport)) {
        // Over HTTP/1.1 a server that will not read a body has to close the
        // connection, and the 413 it wrote first may be lost with it.
        recorder.expected_refusals.fetch_add(1, Ordering::Relaxed);
        return;
    }
    outcome(
        recorder,
        "malformed payload",
        result.map(drop),
        started.elapsed(),
    );
}
