//! One run: enroll the fleet (ramping up), then a measured window in which the
//! devices report and long-poll, commands are queued to random online devices,
//! and misbehaving devices (if any) do their worst; then everyone stops and the
//! store is read back through the member API for the loss check.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::admin::{Admin, AdminError};
use crate::client::Target;
use crate::device::Device;
use crate::fault::{self, FaultKind};
use crate::inventory::Template;
use crate::loss::{self, LossCheck};
use crate::procfs::{self, Sampler, ServerUse, mib};
use crate::rng::Rng;
use crate::stats::{EndpointStats, ErrorCount, Population, Recorder, Summary};
use crate::tracker::Tracker;

/// What to simulate.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// Devices in all, misbehaving ones included.
    pub devices: usize,
    /// The share of devices that misbehave (0.0–1.0).
    pub faulty_share: f64,
    /// How they misbehave, given out round robin (every kind when empty).
    pub faults: Vec<FaultKind>,
    /// Enrollments are spread over this long (0: all at once, `startup_concurrency`
    /// at a time).
    #[serde(with = "seconds")]
    pub ramp_up: Duration,
    /// How many devices may be connecting, enrolling and reporting inventory at once.
    pub startup_concurrency: usize,
    /// The share of devices that report their full inventory after enrolling.
    pub inventory_share: f64,
    /// Between two telemetry samples of a device.
    #[serde(with = "seconds")]
    pub telemetry_interval: Duration,
    /// The measured window, after the ramp-up.
    #[serde(with = "seconds")]
    pub duration: Duration,
    /// Commands queued per second during the window, each to a random online device.
    pub command_rate: f64,
    /// Whether devices long-poll for commands.
    pub long_poll: bool,
    /// Enroll, then stop: no reports, no window.
    pub enroll_only: bool,
    /// Local addresses the devices' connections are spread over.
    pub sources: Vec<IpAddr>,
    /// After misbehaving devices leave, how long the clean fleet goes on before the
    /// server's memory is read again.
    #[serde(with = "seconds")]
    pub settle: Duration,
    /// The server's process id, for CPU and memory.
    pub server_pid: Option<u32>,
}

/// Durations as seconds in the JSON reports.
pub(crate) mod seconds {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            devices: 100,
            faulty_share: 0.0,
            faults: Vec::new(),
            ramp_up: Duration::from_secs(10),
            startup_concurrency: 128,
            inventory_share: 1.0,
            telemetry_interval: Duration::from_secs(30),
            duration: Duration::from_secs(60),
            command_rate: 5.0,
            long_poll: true,
            enroll_only: false,
            sources: Vec::new(),
            settle: Duration::from_secs(10),
            server_pid: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("no device could enroll")]
    NothingEnrolled,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub options: Options,
    pub clean_devices: usize,
    pub faulty_devices: usize,
    pub enrollment: Enrollment,
    /// Latencies during the ramp-up (connect, enroll, inventory).
    pub ramp_endpoints: Vec<EndpointStats>,
    /// Length of the measured window, seconds.
    pub window_seconds: f64,
    pub telemetry_acknowledged_in_window: u64,
    pub telemetry_per_second: f64,
    /// Latencies during the measured window.
    pub endpoints: Vec<EndpointStats>,
    /// Every error of the run, ramp-up included.
    pub errors: Vec<ErrorCount>,
    pub commands_queued: u64,
    pub commands_received: u64,
    pub commands_undelivered: u64,
    pub command_delivery: Summary,
    /// Refusals the misbehaving devices got, as they should.
    pub expected_refusals: u64,
    pub server: Option<ServerUse>,
    /// Server memory after the misbehaving devices left and the fleet settled, MiB.
    pub rss_after_faults_mib: Option<f64>,
    /// The load generator's own CPU over the window, in cores.
    pub loadgen_cpu_cores: f64,
    pub loss: Option<LossCheck>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Enrollment {
    pub enrolled: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub latency: Summary,
}

impl Report {
    /// Answers with a 5xx status, to well-behaved and misbehaving devices alike.
    pub fn server_errors(&self) -> u64 {
        self.errors
            .iter()
            .filter(|e| e.server_error)
            .map(|e| e.count)
            .sum()
    }

    /// Whether nothing acknowledged was lost and the server answered no request
    /// with a 5xx.
    pub fn passed(&self) -> bool {
        self.loss.as_ref().is_none_or(LossCheck::passed) && self.server_errors() == 0
    }
}

impl Options {
    /// What the `faulty_index`th misbehaving device does.
    fn kind_of(&self, faulty_index: usize) -> FaultKind {
        let kinds = if self.faults.is_empty() {
            &FaultKind::ALL[..]
        } else {
            &self.faults[..]
        };
        kinds[faulty_index % kinds.len()]
    }
}

/// Runs the simulation against the server `target`, in organization `org`, as `admin`.
pub async fn run(
    target: &Target,
    admin: &Admin,
    org: Uuid,
    options: &Options,
) -> Result<Report, RunError> {
    let recorder = Arc::new(Recorder::default());
    let tracker = Arc::new(Tracker::default());
    let template = Template::debian12_desktop();
    let faulty = ((options.devices as f64) * options.faulty_share).round() as usize;
    let faulty = faulty.min(options.devices);
    let clean = options.devices - faulty;
    let enrollment_token = admin
        .enrollment_token(org, options.devices.max(1) as u64)
        .await?;
    let sampler = options.server_pid.map(Sampler::start);
    let source = |i: usize| -> Option<IpAddr> {
        (!options.sources.is_empty()).then(|| options.sources[i % options.sources.len()])
    };
    let (stop_fleet, stop_fleet_rx) = watch::channel(false);

    // Ramp-up: enroll everyone (misbehaving devices that need a real token too),
    // each clean device reporting inventory and starting its loops.
    let ramp_started = Instant::now();
    let gate = Arc::new(Semaphore::new(options.startup_concurrency.max(1)));
    let mut starting = JoinSet::new();
    let mut loops = JoinSet::new();
    let spacing = options
        .ramp_up
        .checked_div(options.devices.max(1) as u32)
        .unwrap_or_default();
    for index in 0..options.devices {
        let is_faulty = index >= clean;
        if is_faulty && !options.kind_of(index - clean).enrolls() {
            continue;
        }
        let start_at = tokio::time::Instant::now() + spacing * index as u32;
        let (target, recorder, gate, token) = (
            target.clone(),
            recorder.clone(),
            gate.clone(),
            enrollment_token.clone(),
        );
        let template = template.clone();
        let mut pick = Rng::new(index as u64 ^ 0x1ee7);
        let inventory = !is_faulty && pick.unit() < options.inventory_share;
        let source = source(index);
        starting.spawn(async move {
            tokio::time::sleep_until(start_at).await;
            let _slot = gate.acquire_owned().await.ok()?;
            let population = if is_faulty {
                Population::Faulty
            } else {
                Population::Clean
            };
            let device = Device::enroll(&target, source, index, &token, &recorder, population)
                .await
                .ok()?;
            let finished = Instant::now();
            if inventory {
                let _ = device.report_inventory(&target, &template, &recorder).await;
            }
            Some((device, finished))
        });
    }
    let mut devices: Vec<Arc<Device>> = Vec::new();
    let mut faulty_devices: Vec<Arc<Device>> = Vec::new();
    let mut last_enrolled = ramp_started;
    let interval = options.telemetry_interval;
    while let Some(started) = starting.join_next().await {
        let Ok(Some((device, finished))) = started else {
            continue;
        };
        last_enrolled = last_enrolled.max(finished);
        if device.index >= clean {
            faulty_devices.push(device);
            continue;
        }
        if !options.enroll_only {
            let mut rng = Rng::new(device.index as u64);
            let phase = interval.mul_f64(rng.unit());
            loops.spawn(device.clone().telemetry_loop(
                target.clone(),
                interval,
                phase,
                recorder.clone(),
                stop_fleet_rx.clone(),
            ));
            if options.long_poll {
                loops.spawn(device.clone().poll_loop(
                    target.clone(),
                    recorder.clone(),
                    tracker.clone(),
                    stop_fleet_rx.clone(),
                ));
            }
        }
        devices.push(device);
    }
    let enrolled = recorder.enrolled.load(Ordering::Relaxed);
    if enrolled == 0 {
        return Err(RunError::NothingEnrolled);
    }
    let ramp_endpoints = recorder.endpoints();
    let enroll_seconds = last_enrolled.duration_since(ramp_started).as_secs_f64();
    let enrollment = Enrollment {
        enrolled,
        seconds: enroll_seconds,
        per_second: if enroll_seconds > 0.0 {
            enrolled as f64 / enroll_seconds
        } else {
            0.0
        },
        latency: ramp_endpoints
            .iter()
            .filter(|e| e.endpoint == "enroll")
            .map(|e| e.latency)
            .max_by_key(|s| s.count)
            .unwrap_or_default(),
    };
    devices.sort_by_key(|d| d.index);

    // The measured window.
    let mut server = None;
    let mut rss_after_faults_mib = None;
    let mut window_seconds = 0.0;
    let mut loadgen_cpu = 0.0;
    let mut acknowledged_in_window = 0;
    if !options.enroll_only {
        // Let the last devices' first polls park.
        tokio::time::sleep(Duration::from_secs(2)).await;
        recorder.reset_latencies();
        let acknowledged_at_start = recorder.telemetry_acknowledged.load(Ordering::Relaxed);
        let server_start = options.server_pid.and_then(procfs::read);
        let me_start = procfs::read(std::process::id());
        if let Some(s) = &sampler {
            s.reset_max();
        }
        let window_started = Instant::now();
        let (stop_faults, stop_faults_rx) = watch::channel(false);
        let mut misbehaving = JoinSet::new();
        if faulty > 0 {
            for device in &faulty_devices {
                if options.kind_of(device.index - clean) == FaultKind::RevokedToken
                    && let Err(f) = admin.revoke_device(org, device.id).await
                {
                    recorder.error(Population::Clean, "member: revoke device", f);
                }
            }
            let mut by_index: Vec<Option<Arc<Device>>> = vec![None; faulty];
            for device in &faulty_devices {
                if let Some(slot) = by_index.get_mut(device.index - clean) {
                    *slot = Some(device.clone());
                }
            }
            for (n, device) in by_index.into_iter().enumerate() {
                misbehaving.spawn(fault::misbehave(
                    options.kind_of(n),
                    clean + n,
                    device,
                    source(clean + n),
                    target.clone(),
                    recorder.clone(),
                    stop_faults_rx.clone(),
                ));
            }
        }
        let (stop_commands, stop_commands_rx) = watch::channel(false);
        let commander = tokio::spawn(command_loop(
            admin.clone(),
            org,
            devices.clone(),
            options.command_rate,
            recorder.clone(),
            tracker.clone(),
            stop_commands_rx,
        ));
        tokio::time::sleep(options.duration).await;
        window_seconds = window_started.elapsed().as_secs_f64();
        acknowledged_in_window =
            recorder.telemetry_acknowledged.load(Ordering::Relaxed) - acknowledged_at_start;
        let server_end = options.server_pid.and_then(procfs::read);
        if let (Some(a), Some(b)) = (me_start, procfs::read(std::process::id())) {
            loadgen_cpu = procfs::cores_between(&a, &b);
        }
        if let (Some(a), Some(b)) = (server_start, server_end) {
            server = Some(ServerUse {
                cpu_cores: procfs::cores_between(&a, &b),
                rss_start_mib: mib(a.rss_kib),
                rss_max_mib: mib(sampler.as_ref().map_or(b.rss_kib, Sampler::max_rss_kib)),
                peak_rss_mib: mib(b.peak_kib),
                rss_end_mib: mib(b.rss_kib),
                open_files: b.open_files,
            });
        }
        if faulty > 0 {
            let _ = stop_faults.send(true);
            while misbehaving.join_next().await.is_some() {}
            tokio::time::sleep(options.settle).await;
            rss_after_faults_mib = options
                .server_pid
                .and_then(procfs::read)
                .map(|r| mib(r.rss_kib));
        }
        // No new commands; those queued get up to ten seconds to reach their
        // devices before the fleet stops polling.
        let _ = stop_commands.send(true);
        let _ = commander.await;
        let grace = Instant::now();
        while tracker.undelivered() > 0 && grace.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let _ = stop_fleet.send(true);
    while loops.join_next().await.is_some() {}
    let endpoints = recorder.endpoints();
    for device in devices.iter().chain(&faulty_devices) {
        device.disconnect();
    }
    let loss = if options.enroll_only {
        None
    } else {
        let ledgers = devices.iter().map(|d| d.ledger()).collect();
        Some(loss::check(admin, org, ledgers).await)
    };
    Ok(Report {
        options: options.clone(),
        clean_devices: clean,
        faulty_devices: faulty,
        enrollment,
        ramp_endpoints,
        window_seconds,
        telemetry_acknowledged_in_window: acknowledged_in_window,
        telemetry_per_second: if window_seconds > 0.0 {
            acknowledged_in_window as f64 / window_seconds
        } else {
            0.0
        },
        endpoints,
        errors: recorder.errors(),
        commands_queued: recorder.commands_queued.load(Ordering::Relaxed),
        commands_received: recorder.commands_received.load(Ordering::Relaxed),
        commands_undelivered: tracker.undelivered(),
        command_delivery: recorder.delivery(),
        expected_refusals: recorder.expected_refusals.load(Ordering::Relaxed),
        server,
        rss_after_faults_mib,
        loadgen_cpu_cores: loadgen_cpu,
        loss,
    })
}

/// Queues `rate` commands a second, each to a random device whose long-poll is
/// parked, until `stop`.
async fn command_loop(
    admin: Admin,
    org: Uuid,
    devices: Vec<Arc<Device>>,
    rate: f64,
    recorder: Arc<Recorder>,
    tracker: Arc<Tracker>,
    mut stop: watch::Receiver<bool>,
) {
    if rate <= 0.0 || devices.is_empty() {
        return;
    }
    let mut rng = Rng::new(0xc0_33a2d);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut spread = 0usize;
    let mut queueing = JoinSet::new();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        let online = (0..50)
            .map(|_| rng.below(devices.len() as u64) as usize)
            .filter_map(|i| devices.get(i))
            .find(|d| d.polling.load(Ordering::Relaxed));
        let Some(device) = online else {
            continue;
        };
        spread += 1;
        let (admin, recorder, tracker, device_id) =
            (admin.clone(), recorder.clone(), tracker.clone(), device.id);
        queueing.spawn(async move {
            let sent = Instant::now();
            match admin.queue_command(org, device_id, spread).await {
                Ok(id) => {
                    recorder.latency(Population::Clean, "member: queue command", sent.elapsed());
                    recorder.commands_queued.fetch_add(1, Ordering::Relaxed);
                    tracker.queued(id, sent, &recorder);
                }
                Err(f) => recorder.error(Population::Clean, "member: queue command", f),
            }
        });
        while queueing.try_join_next().is_some() {}
    }
    while queueing.join_next().await.is_some() {}
}
