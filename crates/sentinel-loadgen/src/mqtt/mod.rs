//! The MQTT device gateway's measurements, against a running server: devices
//! enrolled over HTTPS, then speaking MQTT 3.1.1 (username = device id,
//! password = device token) in three phases, one after another:
//!
//! 1. [`idle`]: N devices connect and stay idle; what each costs the server.
//! 2. [`telemetry`]: P devices × W QoS 1 publishes in flight; messages/s,
//!    each acknowledged only once stored, then the loss check.
//! 3. [`push`]: commands queued over HTTPS to subscribed devices; push latency.
//!
//! [`link`] is one device's connection; [`enroll`] enrolls them.

pub mod enroll;
pub mod idle;
pub mod link;
pub mod push;
pub mod telemetry;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use crate::admin::{Admin, AdminError};
use crate::client::Target;
use crate::fleet::{Enrollment, seconds};
use crate::loss::{self, LossCheck};
use crate::procfs::{self, mib};
use crate::stats::{EndpointStats, ErrorCount, Recorder};

use self::idle::{Holder, IdleReport};
use self::link::Gateway;
use self::push::PushReport;
use self::telemetry::TelemetryReport;

/// What to measure; a phase with no devices is skipped.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// Devices that connect and stay idle.
    pub idle: usize,
    /// How many of them connect at once.
    pub idle_concurrency: usize,
    /// Devices publishing QoS 1 telemetry.
    pub publishers: usize,
    /// Publishes each of them keeps in flight.
    pub window: usize,
    #[serde(with = "seconds")]
    pub telemetry_duration: Duration,
    /// Devices subscribed to their commands.
    pub push_devices: usize,
    /// Commands queued to them, one at a time.
    pub commands: usize,
    /// Waited before each reading of the server's memory (and after the idle
    /// devices leave).
    #[serde(with = "seconds")]
    pub settle: Duration,
    /// Local addresses the devices' connections are spread over.
    pub sources: Vec<IpAddr>,
    /// The server's process id, for its memory and CPU.
    pub server_pid: Option<u32>,
    /// The `sentinel-loadgen` binary that holds the idle connections (this
    /// program when `None`).
    pub idle_clients: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            idle: 10_000,
            idle_concurrency: 64,
            publishers: 20,
            window: 32,
            telemetry_duration: Duration::from_secs(20),
            push_devices: 100,
            commands: 1_000,
            settle: Duration::from_secs(3),
            sources: Vec::new(),
            server_pid: None,
            idle_clients: None,
        }
    }
}

impl Options {
    /// The phases that run, in a few words each.
    pub fn phases(&self) -> String {
        let mut phases = Vec::new();
        if self.idle > 0 {
            phases.push(format!("{} idle devices", self.idle));
        }
        if self.publishers > 0 {
            phases.push(format!(
                "{} devices × {} QoS 1 telemetry publishes in flight for {:.1} s",
                self.publishers,
                self.window,
                self.telemetry_duration.as_secs_f64()
            ));
        }
        if self.push_devices > 0 && self.commands > 0 {
            phases.push(format!(
                "{} commands pushed to {} subscribed devices, one at a time",
                self.commands, self.push_devices
            ));
        }
        if phases.is_empty() {
            "enrollment only".to_owned()
        } else {
            phases.join("; ")
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("no device could enroll")]
    NothingEnrolled,
    #[error("the idle connections: {0}")]
    Idle(String),
}

/// Everything the MQTT run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub options: Options,
    /// "MQTTS" or "plain MQTT".
    pub scheme: &'static str,
    pub enrollment: Enrollment,
    pub idle: Option<IdleReport>,
    pub telemetry: Option<TelemetryReport>,
    pub push: Option<PushReport>,
    /// Latencies of every phase, by endpoint.
    pub endpoints: Vec<EndpointStats>,
    pub errors: Vec<ErrorCount>,
    /// The server's peak resident memory (`VmHWM`) at the end, MiB.
    pub server_peak_rss_mib: Option<f64>,
    /// The publishers' acknowledged telemetry against the store.
    pub loss: Option<LossCheck>,
}

impl Report {
    /// Whether every device connected, nothing failed, every command arrived
    /// and nothing acknowledged was lost.
    pub fn passed(&self) -> bool {
        self.errors.is_empty()
            && self
                .idle
                .as_ref()
                .is_none_or(|i| i.connected == i.requested as u64)
            && self
                .push
                .as_ref()
                .is_none_or(|p| p.commands_undelivered == 0)
            && self.loss.as_ref().is_none_or(LossCheck::passed)
    }
}

/// Runs the three phases against the server `target` and its gateway, in
/// organization `org`, as `admin`.
pub async fn run(
    target: &Target,
    gateway: &Gateway,
    admin: &Admin,
    org: Uuid,
    options: &Options,
) -> Result<Report, RunError> {
    let recorder = Arc::new(Recorder::default());
    let total = options
        .idle
        .max(options.publishers)
        .max(options.push_devices);
    let token = admin.enrollment_token(org, total.max(1) as u64).await?;
    let (devices, enrollment) =
        enroll::enroll_all(target, &token, total, &options.sources, &recorder).await;
    if devices.is_empty() && total > 0 {
        return Err(RunError::NothingEnrolled);
    }
    let first = |n: usize| &devices[..n.min(devices.len())];

    let idle = if options.idle > 0 {
        let holder = Holder {
            program: options.idle_clients.as_deref(),
            gateway,
            sources: &options.sources,
            concurrency: options.idle_concurrency,
            settle: options.settle,
        };
        let report = idle::measure(&holder, first(options.idle), options.server_pid, &recorder)
            .await
            .map_err(RunError::Idle)?;
        Some(report)
    } else {
        None
    };

    let (telemetry, ledgers) = if options.publishers > 0 {
        let plan = telemetry::Publishers {
            gateway,
            org,
            window: options.window,
            duration: options.telemetry_duration,
            sources: &options.sources,
            server_pid: options.server_pid,
        };
        let (report, ledgers) =
            telemetry::measure(&plan, first(options.publishers), &recorder).await;
        (Some(report), ledgers)
    } else {
        (None, Vec::new())
    };

    let push = if options.push_devices > 0 && options.commands > 0 {
        Some(
            push::measure(
                gateway,
                admin,
                org,
                first(options.push_devices),
                options.commands,
                &options.sources,
                &recorder,
            )
            .await,
        )
    } else {
        None
    };

    let loss = if ledgers.is_empty() {
        None
    } else {
        Some(loss::check(admin, org, ledgers).await)
    };
    Ok(Report {
        options: options.clone(),
        scheme: gateway.scheme(),
        enrollment,
        idle,
        telemetry,
        push,
        endpoints: recorder.endpoints(),
        errors: recorder.errors(),
        server_peak_rss_mib: options
            .server_pid
            .and_then(procfs::read)
            .map(|r| mib(r.peak_kib)),
        loss,
    })
}
