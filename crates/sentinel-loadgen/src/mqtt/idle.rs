//! Idle connections and what each costs the server. A child process (this
//! program again, `mqtt-idle-clients`, its open-file limit raised) holds them,
//! so that their file descriptors do not count against the parent's limit: it
//! connects half the devices, then the rest, and holds them until its stdin
//! closes, while the parent reads the server's resident memory before, between
//! and after.
//!
//! The child's stdin: one `device-id token` line per device, an empty line (go:
//! connect the first half), another line (connect the rest), then end of file
//! (let go). Its stdout: one JSON [`Step`] line per half.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::client::Failure;
use crate::mqtt::enroll::Enrolled;
use crate::mqtt::link::{Gateway, Link};
use crate::procfs::{self, mib};
use crate::stats::{Population, Recorder, micros};

/// The keepalive idle devices ask for: the longest the gateway allows, so it
/// hears nothing from them during the measurement.
const KEEP_ALIVE_SECONDS: u16 = 1200;

/// How long the child may take to connect one half.
const STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// One half connected, as the child reports it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Step {
    pub connected: u64,
    pub seconds: f64,
    /// Each successful connect (TCP, TLS, CONNECT to CONNACK), microseconds.
    pub connect_micros: Vec<u32>,
    pub errors: Vec<(Failure, u64)>,
}

/// The idle phase's results.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    pub requested: usize,
    pub connected: u64,
    /// Connecting both halves (not the pause between them), seconds.
    pub connect_seconds: f64,
    /// Devices connecting at once.
    pub concurrency: usize,
    /// What the connections cost the server; `None` without its process id.
    pub server: Option<IdleMemory>,
}

/// The server's resident memory (`VmRSS`) around the idle connections.
#[derive(Debug, Clone, Serialize)]
pub struct IdleMemory {
    pub rss_before_mib: f64,
    pub rss_half_mib: f64,
    pub rss_after_mib: f64,
    /// The growth divided by the connections held.
    pub kib_per_connection: f64,
    /// The growth from the first half to all, divided by the second half's connections.
    pub kib_per_connection_second_half: f64,
    /// The server's open file descriptors with all of them connected.
    pub open_files: u64,
}

/// How the parent runs the child.
pub struct Holder<'a> {
    /// The `sentinel-loadgen` binary (this program when `None`).
    pub program: Option<&'a Path>,
    pub gateway: &'a Gateway,
    /// Local addresses the connections are spread over.
    pub sources: &'a [IpAddr],
    pub concurrency: usize,
    /// Waited after each step before the server's memory is read.
    pub settle: Duration,
}

/// Connects `devices` from a child process and measures the server `server_pid`.
pub async fn measure(
    holder: &Holder<'_>,
    devices: &[Enrolled],
    server_pid: Option<u32>,
    recorder: &Recorder,
) -> Result<IdleReport, String> {
    let program = match holder.program {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?,
    };
    let mut command = procfs::with_raised_file_limit(&program);
    command.args(child_args(holder));
    let mut child = tokio::process::Command::from(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", program.display()))?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("the child's stdin or stdout is missing".into());
    };
    let mut steps = BufReader::new(stdout).lines();
    let rss = || server_pid.and_then(procfs::read);

    tokio::time::sleep(holder.settle).await;
    let before = rss();
    let mut list = String::new();
    for device in devices {
        let _ = writeln!(list, "{} {}", device.id, device.token);
    }
    list.push('\n');
    let mut report = IdleReport {
        requested: devices.len(),
        connected: 0,
        connect_seconds: 0.0,
        concurrency: holder.concurrency,
        server: None,
    };
    let mut halves = Vec::with_capacity(2);
    for go in [list, "\n".to_owned()] {
        stdin
            .write_all(go.as_bytes())
            .await
            .map_err(|e| format!("writing to the child: {e}"))?;
        stdin
            .flush()
            .await
            .map_err(|e| format!("writing to the child: {e}"))?;
        let line = tokio::time::timeout(STEP_TIMEOUT, steps.next_line())
            .await
            .map_err(|_| "the child connected nothing for ten minutes".to_owned())?
            .map_err(|e| format!("reading from the child: {e}"))?
            .ok_or("the child ended early")?;
        let step: Step =
            serde_json::from_str(&line).map_err(|e| format!("the child's answer: {e}"))?;
        recorder.latencies(Population::Clean, "idle: connect", &step.connect_micros);
        for (failure, count) in &step.errors {
            for _ in 0..*count {
                recorder.error(Population::Clean, "idle: connect", failure.clone());
            }
        }
        report.connected += step.connected;
        report.connect_seconds += step.seconds;
        tokio::time::sleep(holder.settle).await;
        halves.push((step.connected, rss()));
    }
    drop(stdin);
    if tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
    if let (Some(before), [(_, Some(half)), (second, Some(after))]) = (before, halves.as_slice()) {
        let per = |grown: u64, n: u64| {
            if n == 0 { 0.0 } else { grown as f64 / n as f64 }
        };
        report.server = Some(IdleMemory {
            rss_before_mib: mib(before.rss_kib),
            rss_half_mib: mib(half.rss_kib),
            rss_after_mib: mib(after.rss_kib),
            kib_per_connection: per(
                after.rss_kib.saturating_sub(before.rss_kib),
                report.connected,
            ),
            kib_per_connection_second_half: per(
                after.rss_kib.saturating_sub(half.rss_kib),
                *second,
            ),
            open_files: after.open_files,
        });
    }
    // The server lets go of the connections before the next phase.
    tokio::time::sleep(holder.settle).await;
    Ok(report)
}

fn child_args(holder: &Holder<'_>) -> Vec<String> {
    let mut args = vec![
        "mqtt-idle-clients".to_owned(),
        "--gateway".to_owned(),
        holder.gateway.addr.to_string(),
        "--host".to_owned(),
        holder.gateway.host.clone(),
        "--concurrency".to_owned(),
        holder.concurrency.to_string(),
    ];
    for source in holder.sources {
        args.push("--source".to_owned());
        args.push(source.to_string());
    }
    if let Some(ca) = &holder.gateway.ca {
        args.push("--ca".to_owned());
        args.push(ca.display().to_string());
    }
    args
}

/// The child's side: reads the devices from stdin, connects them half at a
/// time (`concurrency` at once, spread over `sources`), reports each half on
/// stdout, and holds the connections until stdin closes.
pub async fn hold(
    gateway: Gateway,
    sources: Vec<IpAddr>,
    concurrency: usize,
) -> Result<(), String> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut devices = Vec::new();
    while let Some(line) = lines.next_line().await.map_err(|e| format!("stdin: {e}"))? {
        if line.is_empty() {
            break;
        }
        devices.push(parse_device(&line)?);
    }
    let second = devices.split_off(devices.len() / 2);
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut held: Vec<Link> = Vec::with_capacity(devices.len() + second.len());
    let mut stdout = tokio::io::stdout();
    let mut offset = 0;
    for (n, half) in [devices, second].into_iter().enumerate() {
        if n == 1 && lines.next_line().await.ok().flatten().is_none() {
            return Ok(());
        }
        let count = half.len();
        let step = connect_half(&gateway, half, offset, &sources, &gate, &mut held).await;
        offset += count;
        let mut line = serde_json::to_string(&step).map_err(|e| e.to_string())?;
        line.push('\n');
        stdout
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("stdout: {e}"))?;
        stdout.flush().await.map_err(|e| format!("stdout: {e}"))?;
    }
    while let Ok(Some(_)) = lines.next_line().await {}
    drop(held);
    Ok(())
}

/// A `device-id token` line.
fn parse_device(line: &str) -> Result<(Uuid, String), String> {
    let (id, token) = line
        .split_once(' ')
        .ok_or_else(|| format!("not `device-id token`: {line:?}"))?;
    let id = Uuid::parse_str(id).map_err(|e| format!("device id {id:?}: {e}"))?;
    Ok((id, token.to_owned()))
}

async fn connect_half(
    gateway: &Gateway,
    devices: Vec<(Uuid, String)>,
    offset: usize,
    sources: &[IpAddr],
    gate: &Arc<Semaphore>,
    held: &mut Vec<Link>,
) -> Step {
    let started = Instant::now();
    let mut connecting = JoinSet::new();
    for (n, (id, token)) in devices.into_iter().enumerate() {
        let source = (!sources.is_empty()).then(|| sources[(offset + n) % sources.len()]);
        let (gateway, gate) = (gateway.clone(), gate.clone());
        connecting.spawn(async move {
            let _slot = gate.acquire_owned().await.ok();
            let sent = Instant::now();
            let link = gateway
                .connect(source, id, &token, KEEP_ALIVE_SECONDS)
                .await;
            (link, sent.elapsed())
        });
    }
    let mut step = Step::default();
    let mut errors = std::collections::BTreeMap::new();
    while let Some(done) = connecting.join_next().await {
        match done {
            Ok((Ok(link), took)) => {
                held.push(link);
                step.connected += 1;
                step.connect_micros.push(micros(took));
            }
            Ok((Err(failure), _)) => *errors.entry(failure).or_insert(0) += 1,
            Err(_) => *errors.entry(Failure::Transport).or_insert(0) += 1,
        }
    }
    step.seconds = started.elapsed().as_secs_f64();
    step.errors = errors.into_iter().collect();
    step
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_lines_and_steps_read_back() {
        let id = Uuid::from_u128(7);
        assert_eq!(
            parse_device(&format!("{id} sdt_secret")).unwrap(),
            (id, "sdt_secret".to_owned())
        );
        assert!(parse_device("sdt_secret").is_err());
        assert!(parse_device("not-a-uuid sdt_secret").is_err());
        let step = Step {
            connected: 2,
            seconds: 0.5,
            connect_micros: vec![900, 1200],
            errors: vec![(Failure::Refused(5), 1), (Failure::Handshake, 3)],
        };
        let back: Step = serde_json::from_str(&serde_json::to_string(&step).unwrap()).unwrap();
        assert_eq!(back.connected, 2);
        assert_eq!(back.connect_micros, [900, 1200]);
        assert_eq!(back.errors, step.errors);
    }
}
