//! The scenario runner: for each engine (SQLite, and PostgreSQL when given a
//! server), a fresh `sentinel serve` per scenario (its own temporary data
//! directory or database, rate limits lifted, the open-file limit raised to the
//! hard limit, the MQTT gateway on a free port only for the MQTT scenario), the
//! standard scenarios of the load and MQTT issues, and the results written as
//! JSON and into the results section of `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::admin::Admin;
use crate::client::Target;
use crate::fleet::{self, Options, Report};
use crate::loss::LossCheck;
use crate::mqtt::{self, link::Gateway};
use crate::stats::{EndpointStats, ErrorCount, Population};

/// The marker lines between which the results section is rewritten.
pub const BEGIN: &str =
    "<!-- sentinel-loadgen results: begin (rewritten by `sentinel-loadgen bench --write-docs`) -->";
pub const END: &str = "<!-- sentinel-loadgen results: end -->";

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Server(String),
    #[error(transparent)]
    Run(#[from] fleet::RunError),
    #[error(transparent)]
    Mqtt(#[from] mqtt::RunError),
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    #[error(transparent)]
    Setup(#[from] crate::client::SetupError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |e| BenchError::Io(what, e)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// The standard scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Devices enrolling as fast as allowed.
    EnrollmentStorm,
    /// Telemetry as fast as the fleet can send it, 12,000 reports/s offered.
    Ingest,
    /// A large fleet long-polling, reporting every 30 s, commands to random devices.
    ConnectedFleet,
    /// The connected fleet with 10 % misbehaving devices.
    Faults,
    /// The MQTT gateway: idle connections, QoS 1 telemetry, command push.
    Mqtt,
}

/// What a scenario runs.
pub enum Plan {
    Fleet(Options),
    Mqtt {
        options: mqtt::Options,
        /// Serve plain MQTT (loopback) instead of MQTTS.
        plain: bool,
    },
}

/// The connections a started server accepts, per listener.
const MAX_CONNECTIONS: usize = 19_000;

/// The MQTT scenario's idle connections at full size: as many as the open-file
/// limit lets both the server and the idle clients' process hold (1,000 left for
/// everything else), at most what the server accepts.
fn idle_ceiling() -> usize {
    let hard = crate::procfs::open_file_limits("self").map_or(0, |(_, hard)| hard);
    usize::try_from(hard.saturating_sub(1_000))
        .unwrap_or(usize::MAX)
        .min(MAX_CONNECTIONS)
}

impl Scenario {
    pub const ALL: [Self; 5] = [
        Self::EnrollmentStorm,
        Self::Ingest,
        Self::ConnectedFleet,
        Self::Faults,
        Self::Mqtt,
    ];

    /// The scenario's plan at full size (`scale` 1.0) or smaller.
    pub fn plan(self, scale: f64, sources: &[IpAddr]) -> Plan {
        let n = |full: usize| ((full as f64 * scale).round() as usize).max(10);
        let t = |full: f64| Duration::from_secs_f64((full * scale.sqrt()).max(3.0));
        let base = Options {
            sources: sources.to_vec(),
            ..Options::default()
        };
        match self {
            Self::EnrollmentStorm => Plan::Fleet(Options {
                devices: n(5_000),
                ramp_up: Duration::ZERO,
                startup_concurrency: 256,
                inventory_share: 0.0,
                enroll_only: true,
                ..base
            }),
            Self::Ingest => Plan::Fleet(Options {
                devices: n(2_400),
                ramp_up: t(10.0),
                inventory_share: 0.0,
                // 2,400 devices every 0.2 s: 12,000 reports/s offered, a fifth
                // above the target, so that a server that keeps up shows it
                // (accepted cannot exceed offered).
                telemetry_interval: Duration::from_millis(200),
                duration: t(60.0),
                command_rate: 0.0,
                long_poll: false,
                ..base
            }),
            Self::ConnectedFleet | Self::Faults => Plan::Fleet(Options {
                devices: n(10_000),
                faulty_share: if self == Self::Faults { 0.1 } else { 0.0 },
                ramp_up: t(60.0),
                startup_concurrency: 256,
                // 1 device in 50 uploads its full inventory while the fleet ramps up.
                inventory_share: 0.02,
                telemetry_interval: Duration::from_secs(30),
                duration: t(90.0),
                command_rate: 20.0,
                long_poll: true,
                settle: t(20.0),
                ..base
            }),
            Self::Mqtt => Plan::Mqtt {
                options: mqtt::Options {
                    idle: n(idle_ceiling()),
                    publishers: 20,
                    window: 32,
                    telemetry_duration: t(20.0),
                    push_devices: n(100),
                    commands: n(1_000),
                    sources: sources.to_vec(),
                    ..mqtt::Options::default()
                },
                plain: false,
            },
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::EnrollmentStorm => "Enrollment storm",
            Self::Ingest => "Ingest burst",
            Self::ConnectedFleet => "Connected fleet",
            Self::Faults => "Connected fleet with 10 % misbehaving devices",
            Self::Mqtt => "MQTT device gateway",
        }
    }

    pub fn slug(self) -> &'static str {
        match self {
            Self::EnrollmentStorm => "enrollment-storm",
            Self::Ingest => "ingest",
            Self::ConnectedFleet => "connected-fleet",
            Self::Faults => "faults",
            Self::Mqtt => "mqtt",
        }
    }
}

/// A `sentinel serve` process with its data directory (and database), stopped
/// and removed when dropped.
struct Process {
    child: Child,
    dir: PathBuf,
    database: Option<(String, String)>,
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some((admin_url, name)) = &self.database {
            let _ = psql(
                admin_url,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
        if std::env::var_os("SENTINEL_LOADGEN_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether and how a started server's MQTT gateway listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayMode {
    Off,
    Tls,
    /// Plain MQTT, on loopback.
    Plain,
}

/// A `sentinel serve` started for one scenario, ready for its first admin.
pub struct Server {
    process: Process,
    pub pid: u32,
    pub target: Target,
    /// The MQTT gateway, unless it is off.
    pub gateway: Option<Gateway>,
    pub setup_token: String,
}

static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn free_port() -> Result<u16, BenchError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port())
}

fn psql(admin_url: &str, sql: &str) -> Result<(), BenchError> {
    let status = Command::new("psql")
        .args([admin_url, "-qAtc", sql])
        .stdout(Stdio::null())
        .status()
        .map_err(io("running psql"))?;
    if status.success() {
        Ok(())
    } else {
        Err(BenchError::Server(format!("psql failed: {sql}")))
    }
}

impl Server {
    /// Starts `sentinel` on a fresh data directory (and a fresh database on the
    /// PostgreSQL server `postgres`, an administrative URL), its MQTT gateway
    /// as `gateway` says.
    pub async fn start(
        sentinel: &Path,
        postgres: Option<&str>,
        gateway: GatewayMode,
    ) -> Result<Self, BenchError> {
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("sentinel-loadgen-{}-{serial}", std::process::id()));
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .map_err(io(format!("creating {}", dir.display())))?;
        }
        let data = dir.join("data");
        let port = free_port()?;
        let (database, database_url) = match postgres {
            None => (None, None),
            Some(admin_url) => {
                let name = format!("sentinel_loadgen_{}_{serial}", std::process::id());
                psql(admin_url, &format!("CREATE DATABASE {name}"))?;
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url, |(base, _)| base);
                let url = format!("{base}/{name}");
                (Some((admin_url.to_owned(), name)), Some(url))
            }
        };
        let log =
            std::fs::File::create(dir.join("server.log")).map_err(io("creating server.log"))?;
        let log_err = log.try_clone().map_err(io("server.log"))?;
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--log-format".into(),
            "json".into(),
            "--log-level".into(),
            "warn".into(),
            // One member queues every command and reads everything back; every
            // device of a source address enrolls from it.
            "--rate-limit-requests".into(),
            "1000000".into(),
            "--rate-limit-agent".into(),
            "1000000".into(),
            "--rate-limit-enrollment".into(),
            "1000000".into(),
            "--max-connections".into(),
            MAX_CONNECTIONS.to_string(),
        ];
        if let Some(url) = database_url {
            args.push("--database-url".into());
            args.push(url);
        }
        let mqtt_port = match gateway {
            GatewayMode::Off => None,
            GatewayMode::Tls | GatewayMode::Plain => Some(free_port()?),
        };
        args.push("--mqtt-listen".into());
        args.push(mqtt_port.map_or("off".into(), |port| format!("127.0.0.1:{port}")));
        if gateway == GatewayMode::Plain {
            args.push("--mqtt-plain".into());
            args.push("true".into());
        }
        let child = crate::procfs::with_raised_file_limit(sentinel)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(io(format!("starting {}", sentinel.display())))?;
        let pid = child.id();
        let mut process = Process {
            child,
            dir,
            database,
        };
        let started = Instant::now();
        let setup_file = data.join("setup-url.txt");
        let ca_file = data.join("tls").join("ca.pem");
        loop {
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(BenchError::Server(format!(
                    "sentinel exited at start ({status}); see {}",
                    process.dir.join("server.log").display()
                )));
            }
            let listening = |port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if listening(port)
                && mqtt_port.is_none_or(listening)
                && let (Ok(url), Ok(ca)) = (
                    std::fs::read_to_string(&setup_file),
                    std::fs::read_to_string(&ca_file),
                )
                && let Some(token) = url.trim().split("token=").nth(1)
            {
                let loopback = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
                let gateway = match mqtt_port {
                    None => None,
                    Some(port) => Some(Gateway::new(
                        loopback(port),
                        "localhost",
                        (gateway == GatewayMode::Tls).then_some(ca_file.as_path()),
                    )?),
                };
                return Ok(Self {
                    pid,
                    target: Target::new(loopback(port), "localhost", &ca)?,
                    gateway,
                    setup_token: token.to_owned(),
                    process,
                });
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(BenchError::Server(
                    "sentinel did not start within 60 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asks the server to stop (SIGTERM) and waits for it (at most 30 s).
    pub async fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.process.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

const PASSWORD: &str = "loadgen orbit lantern quarry";

/// A scenario's results: a fleet run's or the MQTT run's.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Fleet(Box<Report>),
    Mqtt(Box<mqtt::Report>),
}

impl Outcome {
    pub fn passed(&self) -> bool {
        match self {
            Self::Fleet(report) => report.passed(),
            Self::Mqtt(report) => report.passed(),
        }
    }

    /// The report as text tables.
    pub fn text(&self) -> String {
        match self {
            Self::Fleet(report) => crate::report::text(report),
            Self::Mqtt(report) => crate::report::mqtt_text(report),
        }
    }

    fn fleet(&self) -> Option<&Report> {
        match self {
            Self::Fleet(report) => Some(report),
            Self::Mqtt(_) => None,
        }
    }

    fn mqtt(&self) -> Option<&mqtt::Report> {
        match self {
            Self::Mqtt(report) => Some(report),
            Self::Fleet(_) => None,
        }
    }
}

/// Starts a server, sets it up (first admin, organization) and runs `plan` on it.
pub async fn run_scenario(
    sentinel: &Path,
    postgres: Option<&str>,
    plan: Plan,
) -> Result<Outcome, BenchError> {
    let mode = match &plan {
        Plan::Fleet(_) => GatewayMode::Off,
        Plan::Mqtt { plain: false, .. } => GatewayMode::Tls,
        Plan::Mqtt { plain: true, .. } => GatewayMode::Plain,
    };
    let server = Server::start(sentinel, postgres, mode).await?;
    let admin = Admin::setup(
        &server.target,
        &server.setup_token,
        "loadgen@example.org",
        PASSWORD,
    )
    .await?;
    let org = admin.create_org("Simulated fleet").await?;
    let outcome = match (plan, &server.gateway) {
        (Plan::Fleet(mut options), _) => {
            options.server_pid = Some(server.pid);
            fleet::run(&server.target, &admin, org, &options)
                .await
                .map(|r| Outcome::Fleet(Box::new(r)))
                .map_err(BenchError::from)
        }
        (Plan::Mqtt { mut options, .. }, Some(gateway)) => {
            options.server_pid = Some(server.pid);
            mqtt::run(&server.target, gateway, &admin, org, &options)
                .await
                .map(|r| Outcome::Mqtt(Box::new(r)))
                .map_err(BenchError::from)
        }
        (Plan::Mqtt { .. }, None) => Err(BenchError::Server(
            "the server's MQTT gateway is off".into(),
        )),
    };
    server.stop().await;
    outcome
}

/// One scenario's results on each engine.
pub struct Row {
    pub scenario: Scenario,
    pub results: Vec<(Engine, Result<Outcome, String>)>,
}

/// What the machine is, for the record.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0.0, |kib| kib as f64 / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let limits = crate::procfs::open_file_limits("self")
        .map_or("unknown".to_owned(), |(soft, hard)| {
            format!("{soft} (hard {hard})")
        });
    format!(
        "{cores} cores ({model}), {memory:.0} GiB RAM, Linux {}, open-file limit {limits}",
        kernel.trim()
    )
}

fn today() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(String::new, |s| s.trim().to_owned())
}

/// One kind of report per engine (or why there is none).
type Results<'a, T> = Vec<(Engine, Result<&'a T, String>)>;

fn narrow<'a, T>(
    results: &'a [(Engine, Result<Outcome, String>)],
    pick: fn(&'a Outcome) -> Option<&'a T>,
) -> Results<'a, T> {
    results
        .iter()
        .map(|(engine, r)| {
            let report = match r {
                Ok(outcome) => pick(outcome).ok_or_else(|| "another kind of report".to_owned()),
                Err(e) => Err(e.clone()),
            };
            (*engine, report)
        })
        .collect()
}

fn cell<T>(results: &[(Engine, Result<&T, String>)], f: impl Fn(&T) -> String) -> String {
    results
        .iter()
        .map(|(_, r)| match r {
            Ok(report) => f(report),
            Err(e) => format!("failed: {e}"),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// An endpoint's p50, p99 and max (well-behaved devices), in milliseconds.
fn endpoint_p99(endpoints: &[EndpointStats], endpoint: &str) -> Option<(f64, f64, f64)> {
    endpoints
        .iter()
        .find(|e| e.endpoint == endpoint && e.population == Population::Clean)
        .map(|e| (e.latency.p50_ms, e.latency.p99_ms, e.latency.max_ms))
}

fn errors_cell(errors: &[ErrorCount]) -> String {
    let clean: Vec<String> = errors
        .iter()
        .filter(|e| e.population == Population::Clean)
        .map(|e| format!("{} {}: {}", e.endpoint, e.kind, e.count))
        .collect();
    if clean.is_empty() {
        "none".into()
    } else {
        clean.join("; ")
    }
}

fn server_cells(report: &Report) -> (String, String) {
    match &report.server {
        Some(s) => (
            format!("{:.2} cores", s.cpu_cores),
            format!("{:.0} MiB", s.peak_rss_mib),
        ),
        None => ("—".into(), "—".into()),
    }
}

fn loss_cell(loss: Option<&LossCheck>) -> String {
    loss.map_or("—".into(), |l| {
        let mut s = l.line();
        if l.sequence_gaps > 0 || l.unreadable > 0 || l.unconfirmed > 0 {
            let _ = write!(
                s,
                " ({} gaps, {} unreadable, {} unconfirmed)",
                l.sequence_gaps, l.unreadable, l.unconfirmed
            );
        }
        s
    })
}

/// The results section: machine, command, one table per scenario with an engine
/// per column.
pub fn markdown(rows: &[Row], engines: &[Engine], command: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Results ({}, {}; the load generator on the same machine):\n",
        today(),
        machine()
    );
    let _ = writeln!(out, "```sh\n{command}\n```\n");
    let header = engines
        .iter()
        .map(|e| e.label())
        .collect::<Vec<_>>()
        .join(" | ");
    let divider = engines.iter().map(|_| "---").collect::<Vec<_>>().join("|");
    for row in rows {
        if row.scenario == Scenario::Mqtt {
            mqtt_markdown(
                &mut out,
                &narrow(&row.results, Outcome::mqtt),
                &header,
                &divider,
            );
            continue;
        }
        let results = narrow(&row.results, Outcome::fleet);
        let Some(options) = results
            .iter()
            .find_map(|(_, r)| r.as_ref().ok().map(|r| r.options.clone()))
        else {
            let _ = writeln!(
                out,
                "**{}**: {}\n",
                row.scenario.title(),
                cell(&results, |_| String::new())
            );
            continue;
        };
        let _ = writeln!(
            out,
            "**{}** — {} devices{}, telemetry every {} s, {} commands/s, {} s measured window:\n",
            row.scenario.title(),
            options.devices,
            if options.faulty_share > 0.0 {
                format!(" ({:.0} % misbehaving)", options.faulty_share * 100.0)
            } else {
                String::new()
            },
            options.telemetry_interval.as_secs_f64(),
            options.command_rate,
            options.duration.as_secs_f64(),
        );
        let _ = writeln!(out, "| | {header} |\n|---|{divider}|");
        let mut line = |name: &str, f: &dyn Fn(&Report) -> String| {
            let _ = writeln!(out, "| {name} | {} |", cell(&results, f));
        };
        line("enrollments/s (p50 / p99 / max)", &|r| {
            let e = &r.enrollment;
            format!(
                "{:.0}/s ({:.1} / {:.1} / {:.1} ms)",
                e.per_second, e.latency.p50_ms, e.latency.p99_ms, e.latency.max_ms
            )
        });
        if row.scenario != Scenario::EnrollmentStorm {
            line("telemetry accepted/s", &|r| {
                format!("{:.0}/s", r.telemetry_per_second)
            });
            line("telemetry p50 / p99 / max", &|r| {
                endpoint_p99(&r.endpoints, "telemetry").map_or("—".into(), |(a, b, c)| {
                    format!("{a:.1} / {b:.1} / {c:.1} ms")
                })
            });
            if options.command_rate > 0.0 {
                line("command delivery p50 / p99 / max", &|r| {
                    let d = &r.command_delivery;
                    format!(
                        "{:.1} / {:.1} / {:.1} ms ({} of {} received)",
                        d.p50_ms, d.p99_ms, d.max_ms, r.commands_received, r.commands_queued
                    )
                });
                line("queue command p99 (member API)", &|r| {
                    endpoint_p99(&r.endpoints, "member: queue command")
                        .map_or("—".into(), |(_, b, _)| format!("{b:.1} ms"))
                });
            }
            line("server CPU (window average)", &|r| server_cells(r).0);
            line("server peak RSS", &|r| server_cells(r).1);
        }
        if row.scenario == Scenario::Faults {
            line("server RSS: window start / max / after they left", &|r| {
                r.server.as_ref().map_or("—".into(), |s| {
                    format!(
                        "{:.0} / {:.0} / {} MiB",
                        s.rss_start_mib,
                        s.rss_max_mib,
                        r.rss_after_faults_mib
                            .map_or("—".into(), |m| format!("{m:.0}"))
                    )
                })
            });
            line("misbehaving requests refused as expected", &|r| {
                r.expected_refusals.to_string()
            });
            line("misbehaving devices' unexpected outcomes", &|r| {
                let v: Vec<String> = r
                    .errors
                    .iter()
                    .filter(|e| e.population == Population::Faulty)
                    .map(|e| format!("{} {}: {}", e.endpoint, e.kind, e.count))
                    .collect();
                if v.is_empty() {
                    "none".into()
                } else {
                    v.join("; ")
                }
            });
        }
        line("errors (well-behaved devices, member)", &|r| {
            errors_cell(&r.errors)
        });
        if row.scenario != Scenario::EnrollmentStorm {
            line("loss check", &|r| loss_cell(r.loss.as_ref()));
        }
        if row.scenario == Scenario::Faults {
            let clean_run = rows.iter().find(|r| r.scenario == Scenario::ConnectedFleet);
            let ratios: Vec<String> = results
                .iter()
                .map(|(engine, r)| {
                    let with_faults = r
                        .as_ref()
                        .ok()
                        .and_then(|r| endpoint_p99(&r.endpoints, "telemetry"));
                    let clean = clean_run
                        .and_then(|c| c.results.iter().find(|(e, _)| e == engine))
                        .and_then(|(_, r)| r.as_ref().ok())
                        .and_then(Outcome::fleet)
                        .and_then(|r| endpoint_p99(&r.endpoints, "telemetry"));
                    match (with_faults, clean) {
                        (Some((_, f, _)), Some((_, c, _))) if c > 0.0 => {
                            format!("{f:.1} vs {c:.1} ms = {:.2}×", f / c)
                        }
                        _ => "—".into(),
                    }
                })
                .collect();
            let _ = writeln!(
                out,
                "| well-behaved telemetry p99 vs the clean run | {} |",
                ratios.join(" | ")
            );
        }
        out.push('\n');
    }
    out
}

/// The MQTT scenario's table, an engine per column.
fn mqtt_markdown(
    out: &mut String,
    results: &[(Engine, Result<&mqtt::Report, String>)],
    header: &str,
    divider: &str,
) {
    let title = Scenario::Mqtt.title();
    let Some(first) = results.iter().find_map(|(_, r)| r.as_ref().ok()) else {
        let _ = writeln!(out, "**{title}**: {}\n", cell(results, |_| String::new()));
        return;
    };
    let _ = writeln!(
        out,
        "**{title}** over {} — {}:\n",
        first.scheme,
        first.options.phases()
    );
    let _ = writeln!(out, "| | {header} |\n|---|{divider}|");
    let mut line = |name: &str, f: &dyn Fn(&mqtt::Report) -> String| {
        let _ = writeln!(out, "| {name} | {} |", cell(results, f));
    };
    let none = || "—".to_owned();
    line("idle connections held", &|r| {
        r.idle
            .as_ref()
            .map_or_else(none, |i| format!("{} of {}", i.connected, i.requested))
    });
    line(
        "server memory per idle connection: overall / second half (RSS before → half → all)",
        &|r| {
            r.idle
                .as_ref()
                .and_then(|i| i.server.as_ref())
                .map_or_else(none, |m| {
                    format!(
                        "**{:.1}** / {:.1} KiB ({:.0} → {:.0} → {:.0} MiB)",
                        m.kib_per_connection,
                        m.kib_per_connection_second_half,
                        m.rss_before_mib,
                        m.rss_half_mib,
                        m.rss_after_mib
                    )
                })
        },
    );
    line("connecting them (connect p50 / p99)", &|r| {
        r.idle.as_ref().map_or_else(none, |i| {
            let latency = endpoint_p99(&r.endpoints, "idle: connect")
                .map_or_else(none, |(p50, p99, _)| format!("{p50:.1} / {p99:.1} ms"));
            format!(
                "{:.1} s, {} at a time ({latency})",
                i.connect_seconds, i.concurrency
            )
        })
    });
    line("QoS 1 telemetry acknowledged (each stored)", &|r| {
        r.telemetry.as_ref().map_or_else(none, |t| {
            format!(
                "**{:.0} msg/s** ({} in {:.1} s, {} devices)",
                t.per_second, t.acknowledged, t.seconds, t.publishers
            )
        })
    });
    line("burst written → PUBACK p50 / p99 / max", &|r| {
        endpoint_p99(&r.endpoints, "telemetry (QoS 1 PUBACK)")
            .map_or_else(none, |(a, b, c)| format!("{a:.1} / {b:.1} / {c:.1} ms"))
    });
    line("server / load generator CPU during telemetry", &|r| {
        r.telemetry.as_ref().map_or_else(none, |t| {
            format!(
                "{} / {:.2} cores",
                t.server_cpu_cores.map_or_else(none, |c| format!("{c:.2}")),
                t.loadgen_cpu_cores
            )
        })
    });
    line("command push p50 / p95 / p99 / max", &|r| {
        r.push.as_ref().map_or_else(none, |p| {
            let d = &p.delivery;
            format!(
                "{:.1} / {:.1} / **{:.1}** / {:.1} ms ({} of {} received)",
                d.p50_ms, d.p95_ms, d.p99_ms, d.max_ms, p.commands_received, p.commands_queued
            )
        })
    });
    line("queue command p99 (member API)", &|r| {
        endpoint_p99(&r.endpoints, "member: queue command")
            .map_or_else(none, |(_, p99, _)| format!("{p99:.1} ms"))
    });
    line("server peak RSS", &|r| {
        r.server_peak_rss_mib
            .map_or_else(none, |m| format!("{m:.0} MiB"))
    });
    line("errors", &|r| errors_cell(&r.errors));
    line("loss check", &|r| loss_cell(r.loss.as_ref()));
    out.push('\n');
}

/// Replaces the text between [`BEGIN`] and [`END`] in `doc` (appending a section
/// with both markers when they are missing).
pub fn splice(doc: &str, results: &str) -> String {
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(begin), Some(end)) if begin < end => {
            format!("{}{BEGIN}\n\n{results}{}", &doc[..begin], &doc[end..])
        }
        _ => format!(
            "{}\n{BEGIN}\n\n{results}{END}\n",
            doc.trim_end_matches('\n').to_owned() + "\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::idle::{IdleMemory, IdleReport};
    use crate::mqtt::push::PushReport;
    use crate::mqtt::telemetry::TelemetryReport;
    use crate::stats::Summary;

    fn mqtt_report() -> mqtt::Report {
        let ms = |p50_ms, p99_ms| Summary {
            count: 1000,
            p50_ms,
            p95_ms: p99_ms,
            p99_ms,
            max_ms: p99_ms,
        };
        mqtt::Report {
            options: mqtt::Options {
                idle: 18_000,
                ..mqtt::Options::default()
            },
            scheme: "MQTTS",
            enrollment: fleet::Enrollment {
                enrolled: 18_000,
                seconds: 18.0,
                per_second: 1000.0,
                latency: ms(60.0, 90.0),
            },
            idle: Some(IdleReport {
                requested: 18_000,
                connected: 18_000,
                connect_seconds: 6.7,
                concurrency: 64,
                server: Some(IdleMemory {
                    rss_before_mib: 91.0,
                    rss_half_mib: 377.0,
                    rss_after_mib: 655.0,
                    kib_per_connection: 32.09,
                    kib_per_connection_second_half: 31.72,
                    open_files: 18_048,
                }),
            }),
            telemetry: Some(TelemetryReport {
                publishers: 20,
                window: 32,
                seconds: 20.0,
                acknowledged: 840_000,
                per_second: 42_000.0,
                server_cpu_cores: Some(1.0),
                loadgen_cpu_cores: 0.13,
            }),
            push: Some(PushReport {
                subscribed: 100,
                commands_queued: 1000,
                commands_received: 1000,
                commands_undelivered: 0,
                delivery: ms(1.8, 2.8),
            }),
            endpoints: vec![EndpointStats {
                population: Population::Clean,
                endpoint: "idle: connect".into(),
                latency: ms(22.8, 42.8),
            }],
            errors: Vec::new(),
            server_peak_rss_mib: Some(655.0),
            loss: Some(LossCheck {
                devices_checked: 20,
                acknowledged: 840_000,
                stored: 840_000,
                ..LossCheck::default()
            }),
        }
    }

    #[test]
    fn the_mqtt_table_has_a_column_per_engine_and_says_what_failed() {
        let rows = [Row {
            scenario: Scenario::Mqtt,
            results: vec![
                (Engine::Sqlite, Ok(Outcome::Mqtt(Box::new(mqtt_report())))),
                (Engine::Postgres, Err("sentinel did not start".into())),
            ],
        }];
        let table = markdown(&rows, &[Engine::Sqlite, Engine::Postgres], "bench");
        for line in [
            "**MQTT device gateway** over MQTTS — 18000 idle devices; 20 devices × 32 QoS 1 telemetry publishes in flight for 20.0 s; 1000 commands pushed to 100 subscribed devices, one at a time:",
            "| | SQLite | PostgreSQL |",
            "| idle connections held | 18000 of 18000 | failed: sentinel did not start |",
            "| server memory per idle connection: overall / second half (RSS before → half → all) | **32.1** / 31.7 KiB (91 → 377 → 655 MiB) | failed: sentinel did not start |",
            "| connecting them (connect p50 / p99) | 6.7 s, 64 at a time (22.8 / 42.8 ms) |",
            "| QoS 1 telemetry acknowledged (each stored) | **42000 msg/s** (840000 in 20.0 s, 20 devices) |",
            "| command push p50 / p95 / p99 / max | 1.8 / 2.8 / **2.8** / 2.8 ms (1000 of 1000 received) |",
            "| errors | none |",
            "| loss check | acknowledged 840000, stored 840000, lost 0 |",
        ] {
            assert!(table.contains(line), "missing {line:?} in\n{table}");
        }
        assert!(Outcome::Mqtt(Box::new(mqtt_report())).passed());
    }

    #[test]
    fn splice_replaces_only_between_the_markers() {
        let doc = format!("# B\n\nintro\n\n{BEGIN}\n\nold\n{END}\n\nafter\n");
        let out = splice(&doc, "new\n");
        assert_eq!(
            out,
            format!("# B\n\nintro\n\n{BEGIN}\n\nnew\n{END}\n\nafter\n")
        );
        let appended = splice("# B\n", "new\n");
        assert!(appended.ends_with(&format!("{BEGIN}\n\nnew\n{END}\n")));
        assert_eq!(splice(&appended, "newer\n").matches(BEGIN).count(), 1);
    }
}
