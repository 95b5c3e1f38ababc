//! One simulated agent, well behaved: it enrolls with the organization's token,
//! reports its inventory (digest first, the full list when asked), sends a
//! telemetry sample every interval and long-polls for signed commands, which it
//! verifies and reports `running` then `succeeded` — the real agent's protocol,
//! without the host underneath. Like the agent, it speaks HTTP/1.1 and ends each
//! long-poll just before its next telemetry report, which then goes out on the
//! poll's connection ([`sentinel_protocol::polling`]).
//!
//! Each sample's `uptime_seconds` goes up by exactly one per sample, which makes it
//! the device's own sequence number: the loss check finds every acknowledged
//! sample in the store by it.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sentinel_protocol::command::{CommandBatch, CommandReport, CommandStatus};
use sentinel_protocol::enroll::{EnrollRequest, EnrollResponse};
use sentinel_protocol::facts::HostFacts;
use sentinel_protocol::inventory::{InventoryAck, InventoryReport, InventoryStatus};
use sentinel_protocol::signing::CommandVerifier;
use sentinel_protocol::telemetry::{
    DiskUsage, InterfaceStats, MemoryUsage, TelemetryAck, TelemetryBatch, TelemetrySample,
    TimedSample,
};
use sentinel_protocol::{paths, polling};
use tokio::sync::watch;
use uuid::Uuid;

use crate::client::{Answer, Call, Failure, Target};
use crate::inventory::Template;
use crate::loss::Ledger;
use crate::pool::{self, Pool};
use crate::rng::Rng;
use crate::stats::{Population, Recorder};
use crate::tracker::Tracker;

pub const AGENT_VERSION: &str = concat!("sentinel-loadgen/", env!("CARGO_PKG_VERSION"));

/// Unix seconds by the wall clock, as an agent stamps its samples.
#[allow(clippy::disallowed_methods)] // a device's own clock; the server takes its time from its Clock
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What simulated host `index` says about itself.
pub fn facts(index: usize) -> HostFacts {
    HostFacts {
        hostname: format!("sim-{index:05}"),
        os_id: "debian".into(),
        os_name: "Debian GNU/Linux".into(),
        os_version_id: Some("12".into()),
        os_pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
        kernel: "6.1.0-28-amd64".into(),
        architecture: "x86_64".into(),
        machine_id: Some(format!("{:032x}", 0x5e17_0000_0000_u128 + index as u128)),
        warnings: Vec::new(),
    }
}

/// An enrolled simulated device.
pub struct Device {
    pub index: usize,
    pub id: Uuid,
    pub token: String,
    pub source: Option<IpAddr>,
    verifier: Option<CommandVerifier>,
    pool: Pool,
    /// When the telemetry loop next reports, while it runs.
    telemetry_due: watch::Sender<Option<tokio::time::Instant>>,
    /// Whether a long-poll of this device is parked on the server now.
    pub polling: AtomicBool,
    /// The `uptime_seconds` of every sample the server acknowledged, in order.
    pub acknowledged: Mutex<Vec<u64>>,
    /// Samples sent whose fate is unknown (timeout, connection lost, 5xx).
    pub unconfirmed: AtomicU64,
    long_poll_seconds: u32,
    seen: Mutex<std::collections::HashSet<Uuid>>,
}

impl Device {
    /// Connects from `source` and enrolls with `enrollment_token`.
    pub async fn enroll(
        target: &Target,
        source: Option<IpAddr>,
        index: usize,
        enrollment_token: &str,
        recorder: &Recorder,
        population: Population,
    ) -> Result<Arc<Self>, Failure> {
        let pool = Pool::new(source);
        let request = EnrollRequest {
            token: enrollment_token.to_owned(),
            facts: facts(index),
            agent_version: AGENT_VERSION.into(),
        };
        let body = serde_json::to_vec(&request).map_err(|_| Failure::Decode)?;
        let started = Instant::now();
        let enrolled: EnrollResponse = pool
            .send(target, Call::post(paths::ENROLL, body), None)
            .await
            .and_then(|a| a.json())
            .inspect_err(|f| recorder.error(population, "enroll", f.clone()))?;
        recorder.latency(population, "enroll", started.elapsed());
        recorder.enrolled.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(Self {
            index,
            id: enrolled.device_id,
            token: enrolled.device_token,
            source,
            verifier: CommandVerifier::from_hex(&enrolled.command_key),
            pool,
            telemetry_due: watch::Sender::new(None),
            polling: AtomicBool::new(false),
            acknowledged: Mutex::new(Vec::new()),
            unconfirmed: AtomicU64::new(0),
            long_poll_seconds: enrolled.settings.long_poll_seconds,
            seen: Mutex::new(std::collections::HashSet::new()),
        }))
    }

    /// Sends `call` with `bearer` (if any) on the device's connections.
    pub async fn call(
        &self,
        target: &Target,
        call: Call<'_>,
        bearer: Option<&str>,
    ) -> Result<Answer, Failure> {
        self.pool.send(target, call, bearer).await
    }

    /// What the device knows of its telemetry, for the loss check.
    pub fn ledger(&self) -> Ledger {
        Ledger {
            device: self.id,
            acknowledged: self
                .acknowledged
                .lock()
                .map(|a| a.clone())
                .unwrap_or_default(),
            unconfirmed: self.unconfirmed.load(Ordering::Relaxed),
        }
    }

    /// Closes the device's connection (at the end of a run).
    pub fn disconnect(&self) {
        self.pool.close();
    }

    async fn send(
        &self,
        target: &Target,
        call: Call<'_>,
        recorder: &Recorder,
        population: Population,
        endpoint: &'static str,
    ) -> Result<Answer, Failure> {
        let started = Instant::now();
        match self.pool.send(target, call, Some(&self.token)).await {
            Ok(answer) => {
                recorder.latency(population, endpoint, started.elapsed());
                Ok(answer)
            }
            Err(f) => {
                recorder.error(population, endpoint, f.clone());
                Err(f)
            }
        }
    }

    /// Reports the inventory as the agent does at start: the digest, then the full
    /// list when the server asks for it.
    pub async fn report_inventory(
        &self,
        target: &Target,
        template: &Template,
        recorder: &Recorder,
    ) -> Result<(), Failure> {
        let inventory = template.for_device(self.index as u64);
        let digest = inventory.digest();
        let report = InventoryReport {
            digest: digest.clone(),
            packages: None,
        };
        let body = serde_json::to_vec(&report).map_err(|_| Failure::Decode)?;
        let ack: InventoryAck = self
            .send(
                target,
                Call::post(paths::INVENTORY, body),
                recorder,
                Population::Clean,
                "inventory digest",
            )
            .await?
            .json()?;
        if ack.status != InventoryStatus::SendFull {
            return Ok(());
        }
        let report = InventoryReport {
            digest,
            packages: Some(inventory.packages().to_vec()),
        };
        let body = serde_json::to_vec(&report).map_err(|_| Failure::Decode)?;
        drop(inventory);
        let ack: InventoryAck = self
            .send(
                target,
                Call::post(paths::INVENTORY, body).timeout(Duration::from_secs(120)),
                recorder,
                Population::Clean,
                "inventory upload (full list)",
            )
            .await?
            .json()?;
        if ack.status == InventoryStatus::Stored {
            Ok(())
        } else {
            recorder.error(
                Population::Clean,
                "inventory upload (full list)",
                Failure::Decode,
            );
            Err(Failure::Decode)
        }
    }

    /// Sends a sample every `interval` (the first after `phase`, the first with the
    /// host's facts) until `stop`; a request under way is finished first. The first
    /// report is scheduled at once, before the loop runs, so that a poll started
    /// beside it already ends before that report.
    pub fn telemetry_loop(
        self: Arc<Self>,
        target: Target,
        interval: Duration,
        phase: Duration,
        recorder: Arc<Recorder>,
        mut stop: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let mut due = tokio::time::Instant::now() + phase;
        self.telemetry_due.send_replace(Some(due));
        async move {
            let mut rng = Rng::new(self.index as u64 ^ 0x7e1e_3e72);
            let mut uptime = 10_000 + rng.below(1_000_000);
            let mut first = true;
            loop {
                if !first {
                    // The last report has gone: the poll may follow it.
                    self.telemetry_due.send_replace(Some(due));
                }
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    _ = stop.changed() => break,
                }
                if *stop.borrow() {
                    break;
                }
                // The next one an interval on; an interval from now if this one is late.
                due += interval;
                let now = tokio::time::Instant::now();
                if due < now {
                    due = now + interval;
                }
                uptime += 1;
                let batch = TelemetryBatch {
                    samples: vec![TimedSample {
                        at: unix_now(),
                        sample: sample(&mut rng, uptime),
                    }],
                    facts: first.then(|| facts(self.index)),
                };
                first = false;
                let Ok(body) = serde_json::to_vec(&batch) else {
                    continue;
                };
                match self
                    .send(
                        &target,
                        Call::post(paths::TELEMETRY, body),
                        &recorder,
                        Population::Clean,
                        "telemetry",
                    )
                    .await
                    .and_then(|a| a.json::<TelemetryAck>())
                {
                    Ok(ack) if ack.accepted == 1 => {
                        if let Ok(mut acknowledged) = self.acknowledged.lock() {
                            acknowledged.push(uptime);
                        }
                        recorder
                            .telemetry_acknowledged
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => recorder.error(Population::Clean, "telemetry", Failure::Decode),
                    // A refusal (4xx) stored nothing; anything else may have.
                    Err(Failure::Status(s)) if (400..500).contains(&s) => {}
                    Err(_) => {
                        self.unconfirmed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            self.telemetry_due.send_replace(None);
        }
    }

    /// Long-polls for commands until `stop`, verifying and reporting each.
    pub async fn poll_loop(
        self: Arc<Self>,
        target: Target,
        recorder: Arc<Recorder>,
        tracker: Arc<Tracker>,
        mut stop: watch::Receiver<bool>,
    ) {
        let long_poll = Duration::from_secs(self.long_poll_seconds.into());
        let mut telemetry_due = self.telemetry_due.subscribe();
        let mut after_report = false;
        while !*stop.borrow() {
            let until_report = telemetry_due
                .borrow_and_update()
                .map(|due| due.saturating_duration_since(tokio::time::Instant::now()));
            let wait = match polling::poll_wait(long_poll, until_report, after_report) {
                Some(wait) => wait,
                None => {
                    // As the agent: the report first, then the poll on its connection.
                    let sent = tokio::time::timeout(polling::REPORT_GRACE, telemetry_due.changed());
                    tokio::select! {
                        sent = sent => match sent {
                            Ok(_) => {
                                after_report = true;
                                continue;
                            }
                            Err(_) => long_poll,
                        },
                        _ = stop.changed() => break,
                    }
                }
            };
            after_report = false;
            let path = paths::commands_waiting(wait);
            let call = Call::get(&path).timeout(wait + Duration::from_secs(15));
            self.polling.store(true, Ordering::Relaxed);
            let answer = tokio::select! {
                answer = self.pool.send(&target, call, Some(&self.token)) => answer,
                _ = stop.changed() => break,
            };
            self.polling.store(false, Ordering::Relaxed);
            let arrived = Instant::now();
            match answer.and_then(|a| a.json::<CommandBatch>()) {
                Ok(batch) => {
                    for signed in batch.commands {
                        self.handle(&target, &recorder, &tracker, &signed, arrived);
                    }
                }
                Err(f) => {
                    recorder.error(Population::Clean, "commands (long-poll)", f);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        self.polling.store(false, Ordering::Relaxed);
    }

    fn handle(
        self: &Arc<Self>,
        target: &Target,
        recorder: &Arc<Recorder>,
        tracker: &Tracker,
        signed: &sentinel_protocol::signing::SignedCommand,
        arrived: Instant,
    ) {
        let first = self
            .seen
            .lock()
            .is_ok_and(|mut seen| seen.insert(signed.id));
        if !first {
            return;
        }
        tracker.arrived(signed.id, arrived, recorder);
        let verified = self
            .verifier
            .as_ref()
            .map(|v| v.open(signed, self.id, unix_now()));
        let outcome = match verified {
            Some(Ok(_)) => None,
            Some(Err(rejection)) => Some(rejection.to_string()),
            None => Some("no command key".to_owned()),
        };
        if outcome.is_some() {
            recorder.error(Population::Clean, "command signature", Failure::Decode);
        }
        let (device, target, recorder, id) =
            (self.clone(), target.clone(), recorder.clone(), signed.id);
        tokio::spawn(async move {
            let now = unix_now();
            let reports = match outcome {
                None => vec![
                    report(CommandStatus::Running, now, None),
                    report(CommandStatus::Succeeded, now, None),
                ],
                Some(reason) => vec![report(CommandStatus::Rejected, now, Some(reason))],
            };
            let path = paths::command_result(id);
            for report in reports {
                let Ok(body) = serde_json::to_vec(&report) else {
                    break;
                };
                let call = Call::post(&path, body);
                let sent = device.send(
                    &target,
                    call,
                    &recorder,
                    Population::Clean,
                    "command result",
                );
                if sent.await.is_err() {
                    break;
                }
            }
            // The poll took the connection back at once, so the reports went out on a
            // second one: the agent's client closes it once idle for `pool::IDLE`.
            tokio::time::sleep(pool::IDLE).await;
            device.pool.expire();
        });
    }
}

fn report(status: CommandStatus, now: i64, reason: Option<String>) -> CommandReport {
    let over = status != CommandStatus::Running;
    CommandReport {
        status,
        exit_code: (status == CommandStatus::Succeeded).then_some(0),
        stdout: if over {
            "inventory refreshed\n".into()
        } else {
            String::new()
        },
        stderr: String::new(),
        output_truncated: false,
        started_at: Some(now),
        finished_at: over.then_some(now),
        reason,
    }
}

/// A plausible laptop's vital signs: 22 numbers (uptime, three load averages, CPU,
/// memory and swap, two disks, two interfaces, logged-in users).
pub fn sample(rng: &mut Rng, uptime: u64) -> TelemetrySample {
    const GIB: u64 = 1 << 30;
    let memory_total = 16 * GIB;
    let memory_available = GIB + rng.below(12 * GIB);
    let swap_total = 2 * GIB;
    let swap_available = swap_total - rng.below(GIB / 4);
    let load = 0.05 + rng.unit() * 2.0;
    TelemetrySample {
        uptime_seconds: uptime,
        load: [load, load * 0.9, load * 0.8],
        cpu_percent: Some((rng.unit() * 100.0).min(100.0)),
        memory: MemoryUsage {
            total_bytes: memory_total,
            available_bytes: memory_available,
            used_bytes: memory_total - memory_available,
        },
        swap: MemoryUsage {
            total_bytes: swap_total,
            available_bytes: swap_available,
            used_bytes: swap_total - swap_available,
        },
        disks: vec![
            disk(
                "/",
                "ext4",
                "/dev/nvme0n1p2",
                480 * GIB,
                rng.below(400 * GIB),
            ),
            disk(
                "/boot/efi",
                "vfat",
                "/dev/nvme0n1p1",
                GIB / 2,
                rng.below(GIB / 8),
            ),
        ],
        interfaces: vec![
            InterfaceStats {
                name: "lo".into(),
                addresses: vec!["127.0.0.1".into(), "::1".into()],
                rx_bytes: uptime * 1_000,
                tx_bytes: uptime * 1_000,
            },
            InterfaceStats {
                name: "wlp2s0".into(),
                addresses: vec!["10.20.30.40".into()],
                rx_bytes: uptime * 40_000 + rng.below(1 << 20),
                tx_bytes: uptime * 9_000 + rng.below(1 << 20),
            },
        ],
        logged_in_users: 1,
        warnings: Vec::new(),
    }
}

fn disk(mount: &str, filesystem: &str, device: &str, total: u64, used: u64) -> DiskUsage {
    DiskUsage {
        mount: mount.into(),
        filesystem: filesystem.into(),
        device: device.into(),
        total_bytes: total,
        used_bytes: used,
        available_bytes: total.saturating_sub(used) / 20 * 19,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_valid_and_carry_about_twenty_metrics() {
        let mut rng = Rng::new(3);
        for uptime in 0..1000 {
            let s = sample(&mut rng, uptime);
            assert_eq!(s.problem(), None);
            assert_eq!(s.uptime_seconds, uptime);
        }
        assert_eq!(facts(7).problem(), None);
    }
}
