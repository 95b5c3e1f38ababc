//! The command line: `sentinel-agent enroll` and `sentinel-agent run`, their arguments,
//! and their exit codes.
//!
//! The enrollment token is never an argument (arguments are visible to every user in
//! `ps`): it is read from a file, or from standard input with `--token-file -`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::enroll::{self, EnrollError, Enrollment};
use crate::inventory::InventorySource;
use crate::service::{self, RunOptions};
use crate::transport::Protocol;
use crate::transport::mqtt::Address;

/// Exit code: done.
pub const EXIT_OK: u8 = 0;
/// Exit code: the server refused (enrollment).
pub const EXIT_REFUSED: u8 = 1;
/// Exit code: bad usage, a local problem, or the server could not be reached.
pub const EXIT_ERROR: u8 = 2;

/// The Sentinel device agent.
#[derive(Debug, Parser)]
#[command(name = "sentinel-agent", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: CliCommand,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Enroll this device with a server, using a one-time enrollment token.
    Enroll(EnrollArgs),
    /// Run as a service until SIGTERM or SIGINT.
    Run(RunArgs),
}

/// `sentinel-agent enroll`.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The server's URL: https://host[:port].
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The file holding the enrollment token, or - to read it from standard input.
    #[arg(long, value_name = "PATH")]
    pub token_file: PathBuf,
    /// Where the agent keeps its state (created 0700).
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Trust only this CA certificate (PEM) for the server, from now on.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Replace an existing enrollment.
    #[arg(long)]
    pub re_enroll: bool,
    /// Read the host's facts under this directory instead of /.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub host_root: PathBuf,
}

/// `sentinel-agent run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where enrollment left the agent's state.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Read the host's facts, telemetry and packages under this directory instead of /.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub host_root: PathBuf,
    /// Where to read the installed packages from.
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// What carries reports and commands: the HTTPS agent API, or the server's MQTT
    /// device gateway (MQTT 5 over TLS; the token is still rotated over HTTPS).
    #[arg(long, value_enum, default_value_t = TransportArg::Https)]
    pub transport: TransportArg,
    /// The MQTT device gateway, with --transport mqtt [default: the server's host, port
    /// 8883].
    #[arg(long, value_name = "HOST:PORT")]
    pub mqtt_address: Option<Address>,
}

/// `--transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    /// The agent routes over HTTPS.
    Https,
    /// The device gateway over MQTT.
    Mqtt,
}

impl RunArgs {
    /// The transport the flags ask for; an address without `--transport mqtt` is a
    /// mistake, not something to ignore.
    pub fn protocol(&self) -> Result<Protocol, String> {
        match (self.transport, &self.mqtt_address) {
            (TransportArg::Https, None) => Ok(Protocol::Https),
            (TransportArg::Https, Some(_)) => Err("--mqtt-address is for --transport mqtt".into()),
            (TransportArg::Mqtt, address) => Ok(Protocol::Mqtt(address.clone())),
        }
    }
}

/// Where to read the installed packages, instead of detecting the package manager.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct InventoryArgs {
    /// A dpkg status database.
    #[arg(long, value_name = "FILE")]
    pub dpkg_status: Option<PathBuf>,
    /// An apk installed database.
    #[arg(long, value_name = "FILE")]
    pub apk_installed: Option<PathBuf>,
    /// Saved output of rpm -qa --queryformat (see the inventory module).
    #[arg(long, value_name = "FILE")]
    pub rpm_query_output: Option<PathBuf>,
}

impl InventoryArgs {
    /// The source the flags name, if any.
    pub fn source(&self) -> Option<InventorySource> {
        let Self {
            dpkg_status,
            apk_installed,
            rpm_query_output,
        } = self;
        dpkg_status
            .clone()
            .map(|status| InventorySource::Dpkg { status })
            .or_else(|| {
                apk_installed
                    .clone()
                    .map(|installed| InventorySource::Apk { installed })
            })
            .or_else(|| {
                rpm_query_output
                    .clone()
                    .map(|path| InventorySource::RpmQueryOutput { path })
            })
    }
}

/// Parses the command line, runs the command, and says how it went.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let code = runtime.block_on(execute(cli.command));
    // Work left on blocking threads (a hung file read) must not hold up the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    ExitCode::from(code)
}

async fn execute(command: CliCommand) -> u8 {
    match command {
        CliCommand::Enroll(args) => enroll_device(args).await,
        CliCommand::Run(args) => run_service(args).await,
    }
}

async fn enroll_device(args: EnrollArgs) -> u8 {
    let enrollment = Enrollment {
        server: args.server,
        token_file: args.token_file,
        state_dir: args.state_dir,
        ca_cert: args.ca_cert,
        re_enroll: args.re_enroll,
        host_root: args.host_root,
    };
    match enroll::enroll(&enrollment).await {
        Ok(state) => {
            tracing::info!(
                org = %state.org_id,
                "enrolled; start the service: sentinel-agent run --state-dir {}",
                enrollment.state_dir.display()
            );
            println!("{}", state.device_id);
            EXIT_OK
        }
        Err(error) => {
            tracing::error!("{error}");
            match error {
                EnrollError::Refused(_) => EXIT_REFUSED,
                EnrollError::Unavailable(_) | EnrollError::Local(_) => EXIT_ERROR,
            }
        }
    }
}

async fn run_service(args: RunArgs) -> u8 {
    let shutdown = CancellationToken::new();
    if let Err(error) = stop_on_signals(shutdown.clone()) {
        tracing::error!("cannot listen for signals: {error}");
        return EXIT_ERROR;
    }
    let transport = match args.protocol() {
        Ok(transport) => transport,
        Err(problem) => {
            tracing::error!("{problem}");
            return EXIT_ERROR;
        }
    };
    let options = RunOptions {
        transport,
        inventory: args.inventory.source(),
        state_dir: args.state_dir,
        host_root: args.host_root,
    };
    match service::run(options, shutdown).await {
        Ok(()) => EXIT_OK,
        Err(error) => {
            tracing::error!("{error}");
            EXIT_ERROR
        }
    }
}

/// Cancels `shutdown` on the first SIGTERM or SIGINT; exits at once on the second.
fn stop_on_signals(shutdown: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        for signals in 0.. {
            let name = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            if signals > 0 {
                tracing::warn!("{name} received again: exiting now");
                std::process::exit(EXIT_ERROR.into());
            }
            tracing::info!("{name} received");
            shutdown.cancel();
        }
    });
    Ok(())
}
