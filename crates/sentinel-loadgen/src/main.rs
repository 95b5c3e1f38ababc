//! The `sentinel-loadgen` command: `run` simulates a fleet against a running
//! server; `bench` starts fresh servers and runs the standard scenarios (the
//! MQTT one holds its idle connections in a child: `mqtt-idle-clients`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use sentinel_loadgen::admin::Admin;
use sentinel_loadgen::bench::{self, Engine, Plan, Row, Scenario};
use sentinel_loadgen::client::Target;
use sentinel_loadgen::fault::FaultKind;
use sentinel_loadgen::fleet::{self, Options};
use sentinel_loadgen::mqtt::{idle, link::Gateway};
use sentinel_loadgen::report;
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "sentinel-loadgen",
    version,
    about = "Simulates a fleet of Sentinel agents and measures the server"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Simulates a fleet against a running server, as one of its members.
    Run(RunArgs),
    /// Starts a fresh server per scenario and runs the standard scenarios.
    Bench(BenchArgs),
    /// Holds idle MQTT connections for `bench`'s MQTT scenario (its child process).
    #[command(hide = true)]
    MqttIdleClients(IdleClientArgs),
}

#[derive(Args)]
struct Sources {
    /// Spread the devices' connections over 127.0.0.1 … 127.0.0.N.
    #[arg(long, default_value_t = 16)]
    loopback_sources: u8,
}

impl Sources {
    fn addresses(&self) -> Vec<IpAddr> {
        (1..=self.loopback_sources)
            .map(|n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
            .collect()
    }
}

#[derive(Args)]
struct FleetArgs {
    /// Simulated devices in all (misbehaving ones included).
    #[arg(long, default_value_t = 100)]
    devices: usize,
    /// Share of the devices that misbehave (0-1).
    #[arg(long, default_value_t = 0.0)]
    faulty_share: f64,
    /// Only this kind of misbehaviour (repeatable); every kind when none.
    #[arg(long = "fault", value_enum)]
    faults: Vec<FaultKind>,
    /// Seconds over which enrollments are spread.
    #[arg(long, default_value_t = 10.0)]
    ramp_up: f64,
    /// Devices connecting, enrolling and reporting inventory at once.
    #[arg(long, default_value_t = 128)]
    startup_concurrency: usize,
    /// Share of the devices that upload their full inventory after enrolling (0-1).
    #[arg(long, default_value_t = 1.0)]
    inventory_share: f64,
    /// Seconds between a device's telemetry samples.
    #[arg(long, default_value_t = 30.0)]
    telemetry_interval: f64,
    /// Seconds of the measured window.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Commands queued per second, each to a random online device.
    #[arg(long, default_value_t = 5.0)]
    command_rate: f64,
    /// Do not long-poll for commands.
    #[arg(long)]
    no_long_poll: bool,
    /// Enroll, then stop.
    #[arg(long)]
    enroll_only: bool,
    /// Seconds the fleet goes on after misbehaving devices leave, before the
    /// server's memory is read again.
    #[arg(long, default_value_t = 10.0)]
    settle: f64,
}

#[derive(Args)]
struct RunArgs {
    /// The server's URL, as its certificate names it.
    #[arg(long, default_value = "https://localhost:8443")]
    server: String,
    /// Connect here instead of resolving the URL's host.
    #[arg(long)]
    connect: Option<SocketAddr>,
    /// The CA certificate (PEM) that issued the server's certificate.
    #[arg(long)]
    ca: PathBuf,
    /// A member allowed to enroll devices and queue commands (owner or admin).
    #[arg(long)]
    email: String,
    /// Their password.
    #[arg(long, env = "SENTINEL_LOADGEN_PASSWORD", hide_env_values = true)]
    password: String,
    /// First start: complete setup with the token from this file (`setup-url.txt`
    /// or the token alone), creating `--email` as the first admin.
    #[arg(long)]
    setup_token_file: Option<PathBuf>,
    /// The organization to enroll into; a new one is created when not given.
    #[arg(long)]
    org: Option<Uuid>,
    /// The server's process id, for CPU and memory from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    fleet: FleetArgs,
    #[command(flatten)]
    sources: Sources,
}

#[derive(Args)]
struct BenchArgs {
    /// The `sentinel` binary to start (a release build).
    #[arg(long, default_value = "target/release/sentinel")]
    sentinel: PathBuf,
    /// Also run every scenario on PostgreSQL: an administrative URL on which a
    /// database is created per scenario (and dropped after).
    #[arg(long)]
    postgres: Option<String>,
    /// Only these scenarios (repeatable); all when none.
    #[arg(long, value_enum)]
    scenario: Vec<Scenario>,
    /// The faults scenario's misbehaving devices do only this (repeatable);
    /// every kind when none.
    #[arg(long = "fault", value_enum)]
    faults: Vec<FaultKind>,
    /// Scale device counts (and, by its square root, durations); 1 is the full size.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Write each report as JSON into this directory.
    #[arg(long)]
    json_dir: Option<PathBuf>,
    /// Rewrite the results section of this Markdown file.
    #[arg(long)]
    write_docs: Option<PathBuf>,
    #[command(flatten)]
    mqtt: MqttArgs,
    #[command(flatten)]
    sources: Sources,
}

/// The MQTT scenario's sizes, when not the standard ones (which --scale scales).
#[derive(Args)]
#[command(next_help_heading = "MQTT scenario")]
struct MqttArgs {
    /// Serve plain MQTT (on loopback) instead of MQTTS.
    #[arg(long)]
    mqtt_plain: bool,
    /// Devices that connect and stay idle [default: as many as the open-file
    /// limit allows, up to 19,000]
    #[arg(long)]
    mqtt_idle: Option<usize>,
    /// How many of them connect at once [default: 64]
    #[arg(long)]
    mqtt_idle_concurrency: Option<usize>,
    /// Devices publishing QoS 1 telemetry [default: 20]
    #[arg(long)]
    mqtt_publishers: Option<usize>,
    /// Publishes each keeps in flight [default: 32]
    #[arg(long)]
    mqtt_window: Option<usize>,
    /// Seconds of telemetry [default: 20]
    #[arg(long)]
    mqtt_seconds: Option<f64>,
    /// Devices subscribed to their commands [default: 100]
    #[arg(long)]
    mqtt_push_devices: Option<usize>,
    /// Commands pushed to them, one at a time [default: 1000]
    #[arg(long)]
    mqtt_commands: Option<usize>,
}

impl MqttArgs {
    /// The scenario's options with the sizes given here.
    fn apply(&self, options: &mut sentinel_loadgen::mqtt::Options) {
        let given = [
            (self.mqtt_idle, &mut options.idle),
            (self.mqtt_idle_concurrency, &mut options.idle_concurrency),
            (self.mqtt_publishers, &mut options.publishers),
            (self.mqtt_window, &mut options.window),
            (self.mqtt_push_devices, &mut options.push_devices),
            (self.mqtt_commands, &mut options.commands),
        ];
        for (value, field) in given {
            if let Some(value) = value {
                *field = value;
            }
        }
        if let Some(seconds) = self.mqtt_seconds {
            options.telemetry_duration = Duration::from_secs_f64(seconds.max(0.0));
        }
    }
}

#[derive(Args)]
struct IdleClientArgs {
    /// The gateway's address.
    #[arg(long)]
    gateway: SocketAddr,
    /// The name its certificate carries.
    #[arg(long, default_value = "localhost")]
    host: String,
    /// The server's CA certificate (PEM): MQTTS; plain MQTT without it.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Devices connecting at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Local addresses to connect from, in turn (repeatable).
    #[arg(long = "source")]
    sources: Vec<IpAddr>,
}

fn options(f: &FleetArgs, sources: Vec<IpAddr>) -> Options {
    let secs = |s: f64| Duration::from_secs_f64(s.max(0.0));
    Options {
        devices: f.devices,
        faulty_share: f.faulty_share.clamp(0.0, 1.0),
        faults: f.faults.clone(),
        ramp_up: secs(f.ramp_up),
        startup_concurrency: f.startup_concurrency,
        inventory_share: f.inventory_share.clamp(0.0, 1.0),
        telemetry_interval: secs(f.telemetry_interval.max(0.001)),
        duration: secs(f.duration),
        command_rate: f.command_rate,
        long_poll: !f.no_long_poll,
        enroll_only: f.enroll_only,
        sources,
        settle: secs(f.settle),
        server_pid: None,
    }
}

async fn run(args: RunArgs) -> Result<ExitCode, String> {
    let url = args
        .server
        .strip_prefix("https://")
        .ok_or("--server must be an https:// URL")?
        .trim_end_matches('/');
    let (host, port) = match url.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|e| format!("--server port: {e}"))?,
        ),
        None => (url, 443),
    };
    let addr = match args.connect {
        Some(addr) => addr,
        None => (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("resolving {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} has no address"))?,
    };
    let ca =
        std::fs::read_to_string(&args.ca).map_err(|e| format!("{}: {e}", args.ca.display()))?;
    let target = Target::new(addr, host, &ca).map_err(|e| e.to_string())?;
    let admin = match &args.setup_token_file {
        Some(file) => {
            let text =
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let token = text.trim().rsplit("token=").next().unwrap_or_default();
            Admin::setup(&target, token, &args.email, &args.password).await
        }
        None => Admin::login(&target, &args.email, &args.password).await,
    }
    .map_err(|e| e.to_string())?;
    let org = match args.org {
        Some(org) => org,
        None => admin
            .create_org("Simulated fleet")
            .await
            .map_err(|e| e.to_string())?,
    };
    let sources = if addr.ip().is_loopback() {
        args.sources.addresses()
    } else {
        Vec::new()
    };
    let mut options = options(&args.fleet, sources);
    options.server_pid = args.server_pid;
    let report = fleet::run(&target, &admin, org, &options)
        .await
        .map_err(|e| e.to_string())?;
    print!("{}", report::text(&report));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn bench(args: BenchArgs) -> Result<ExitCode, String> {
    let scenarios = if args.scenario.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenario.clone()
    };
    let mut engines = vec![Engine::Sqlite];
    if args.postgres.is_some() {
        engines.push(Engine::Postgres);
    }
    if let Some((soft, hard)) = sentinel_loadgen::procfs::open_file_limits("self") {
        println!("open-file limit: {soft} (hard {hard}); servers are started with the hard limit");
    }
    let sources = args.sources.addresses();
    let mut rows = Vec::new();
    let mut failed = false;
    for scenario in scenarios {
        let mut results = Vec::new();
        for &engine in &engines {
            println!("\n== {} on {}", scenario.title(), engine.label());
            let postgres = match engine {
                Engine::Sqlite => None,
                Engine::Postgres => args.postgres.as_deref(),
            };
            let plan = match scenario.plan(args.scale, &sources) {
                Plan::Fleet(options) => Plan::Fleet(Options {
                    faults: args.faults.clone(),
                    ..options
                }),
                Plan::Mqtt { mut options, .. } => {
                    args.mqtt.apply(&mut options);
                    Plan::Mqtt {
                        options,
                        plain: args.mqtt.mqtt_plain,
                    }
                }
            };
            match bench::run_scenario(&args.sentinel, postgres, plan).await {
                Ok(outcome) => {
                    print!("{}", outcome.text());
                    if !outcome.passed() {
                        failed = true;
                    }
                    if let Some(dir) = &args.json_dir {
                        std::fs::create_dir_all(dir)
                            .map_err(|e| format!("{}: {e}", dir.display()))?;
                        let path = dir.join(format!(
                            "{}-{}.json",
                            scenario.slug(),
                            engine.label().to_lowercase()
                        ));
                        let json =
                            serde_json::to_string_pretty(&outcome).map_err(|e| e.to_string())?;
                        std::fs::write(&path, json)
                            .map_err(|e| format!("{}: {e}", path.display()))?;
                    }
                    results.push((engine, Ok(outcome)));
                }
                Err(e) => {
                    println!("failed: {e}");
                    failed = true;
                    results.push((engine, Err(e.to_string())));
                }
            }
        }
        rows.push(Row { scenario, results });
    }
    if let Some(path) = &args.write_docs {
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let section = bench::markdown(&rows, &engines, &command);
        let doc = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::write(path, bench::splice(&doc, &section))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        println!("\nresults written to {}", path.display());
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The child of `bench`'s MQTT scenario: holds the idle connections.
async fn idle_clients(args: IdleClientArgs) -> Result<ExitCode, String> {
    let gateway =
        Gateway::new(args.gateway, &args.host, args.ca.as_deref()).map_err(|e| e.to_string())?;
    idle::hold(gateway, args.sources, args.concurrency).await?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sentinel-loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Cmd::Run(args) => run(args).await,
            Cmd::Bench(args) => bench(args).await,
            Cmd::MqttIdleClients(args) => idle_clients(args).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sentinel-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
