//! `sentinel`: the server (`sentinel serve`) and its admin commands.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use sentinel::config::{Config, Settings};
use sentinel::data_dir::DataDir;
use sentinel::{StartError, admin, logging};
use sentinel_core::SystemClock;
use sentinel_core::audit::checkpoint::VerifyingKey;
use sentinel_store::Stores;

/// mimalloc, giving freed pages back at once (sentinel-allocator says why).
#[global_allocator]
static ALLOCATOR: sentinel_allocator::MiMalloc = sentinel_allocator::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sentinel",
    version,
    about = "Sentinel: a self-hosted fleet-security platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server
    Serve(Box<ServeArgs>),
    /// Administrative tasks on a data directory
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The audit logs: verify their integrity, print the checkpoint key
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Chain-of-custody evidence: a device's telemetry history, signed
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Vulnerability feeds: OSV advisories and the CISA KEV catalog
    #[command(subcommand)]
    Feeds(FeedsCommand),
    /// Signed vulnerability reports
    #[command(subcommand)]
    Report(ReportCommand),
}

#[derive(Subcommand)]
enum FeedsCommand {
    /// Import feed files: OSV records (single JSON files, JSON arrays,
    /// directories of them, OSV.dev's per-ecosystem all.zip) or the CISA KEV
    /// catalog JSON. Each path is one import; a file imported before changes
    /// nothing. Works while the server runs.
    Import(FeedsImportArgs),
}

#[derive(clap::Args)]
struct FeedsImportArgs {
    #[command(flatten)]
    stores: StoreArgs,
    /// Files or directories to import
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Check a report's digest and signature; exits 0 if it is intact, 1 if
    /// it was changed or signed by another key, 2 on error
    Verify(ReportVerifyArgs),
}

#[derive(clap::Args)]
struct ReportVerifyArgs {
    /// The report file (HTML or JSON)
    file: PathBuf,
    /// The platform's public key (hex, from `sentinel audit public-key`);
    /// without it, the data directory's own key is used
    #[arg(long, value_name = "HEX")]
    public_key: Option<String>,
    #[command(flatten)]
    stores: StoreArgs,
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// Write a device's telemetry chain, signed with the audit key, to a file
    Export(ExportArgs),
    /// Check an evidence file: complete, in order, unaltered, and signed by
    /// the key; exits non-zero otherwise
    Verify(EvidenceVerifyArgs),
}

#[derive(clap::Args)]
struct ExportArgs {
    #[command(flatten)]
    stores: StoreArgs,
    #[arg(long, value_name = "ORG_ID")]
    org: sentinel_core::OrgId,
    #[arg(long, value_name = "DEVICE_ID")]
    device: uuid::Uuid,
    /// Write here instead of standard output
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct EvidenceVerifyArgs {
    /// The evidence file
    file: PathBuf,
    /// The server's public audit key (hex, from `sentinel audit public-key`)
    #[arg(long, value_name = "HEX")]
    public_key: String,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute every audit chain and check every signed checkpoint; exits
    /// non-zero if anything was altered, deleted, reordered or truncated
    Verify(VerifyArgs),
    /// Print the public key that verifies this server's audit checkpoints
    PublicKey(StoreArgs),
}

/// Where the stores are.
#[derive(clap::Args)]
struct StoreArgs {
    /// TOML configuration file
    #[arg(long, env = "SENTINEL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory [default: ./sentinel-data]
    #[arg(long, env = "SENTINEL_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL, when the server uses PostgreSQL
    #[arg(
        long,
        env = "SENTINEL_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
}

impl StoreArgs {
    fn config(self) -> Result<Config, StartError> {
        let settings = Settings {
            data_dir: self.data_dir,
            database_url: self.database_url.map(sentinel_core::SecretString::new),
            ..Settings::default()
        };
        Ok(Config::load(settings, self.config.as_deref())?)
    }
}

#[derive(clap::Args)]
struct VerifyArgs {
    #[command(flatten)]
    stores: StoreArgs,
    /// Verify only this organization's log
    #[arg(long, value_name = "ORG_ID")]
    org: Option<sentinel_core::OrgId>,
    /// Check checkpoints against this public key (hex) instead of the data
    /// directory's own key
    #[arg(long, value_name = "HEX")]
    public_key: Option<String>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML configuration file (flags and SENTINEL_* variables take precedence)
    #[arg(long, env = "SENTINEL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the effective configuration (secrets redacted) and exit
    #[arg(long)]
    print_config: bool,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user; the password is read from standard input
    CreateUser(CreateUserArgs),
    /// Re-seal every secret kept at rest under a new master key (stop the server first)
    RotateMasterKey(StoreArgs),
}

#[derive(clap::Args)]
struct CreateUserArgs {
    #[command(flatten)]
    stores: StoreArgs,
    /// The new user's e-mail address (their login name)
    #[arg(long)]
    email: String,
    /// The new user's display name
    #[arg(long)]
    name: String,
    /// Make the user a platform admin
    #[arg(long)]
    platform_admin: bool,
}

fn main() -> ExitCode {
    sentinel_allocator::give_freed_pages_back_at_once();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(*args)),
        Command::Admin(AdminCommand::CreateUser(args)) => runtime.block_on(create_user(args)),
        Command::Admin(AdminCommand::RotateMasterKey(args)) => {
            runtime.block_on(rotate_master_key(args))
        }
        Command::Audit(AuditCommand::Verify(args)) => {
            return match runtime.block_on(verify_audit(args)) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    fail(&e.to_string());
                    ExitCode::from(2)
                }
            };
        }
        Command::Audit(AuditCommand::PublicKey(args)) => print_public_key(args),
        Command::Evidence(EvidenceCommand::Export(args)) => runtime.block_on(export_evidence(args)),
        Command::Feeds(FeedsCommand::Import(args)) => {
            return match runtime.block_on(import_feeds(args)) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => fail(&e.to_string()),
            };
        }
        Command::Report(ReportCommand::Verify(args)) => {
            return match verify_report(args) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("sentinel: error: {e}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Evidence(EvidenceCommand::Verify(args)) => {
            return match verify_evidence(&args) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("sentinel: error: {e}");
                    ExitCode::from(2)
                }
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("sentinel: error: {message}");
    ExitCode::FAILURE
}

async fn serve(args: ServeArgs) -> Result<(), StartError> {
    let config = Config::load(args.settings, args.config.as_deref())?;
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    logging::init(config.log_format, &config.log_level);
    let server = sentinel::start(&config, Arc::new(SystemClock)).await?;
    if let Some(url) = &server.setup_url {
        show_on_terminal(url);
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// Shows the setup link on the controlling terminal, apart from the log stream
/// (which may be collected elsewhere). Without a terminal, the link is only in
/// the data directory's `setup-url.txt`.
fn show_on_terminal(url: &str) {
    let Ok(mut tty) = std::fs::OpenOptions::new().write(true).open("/dev/tty") else {
        return;
    };
    let _ = writeln!(
        tty,
        "\n  Sentinel has no users yet. Create the first admin within one hour at:\n\n    {url}\n"
    );
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

async fn create_user(args: CreateUserArgs) -> Result<(), StartError> {
    let config = args.stores.config()?;
    logging::init(config.log_format, "warn");
    let user = admin::create_user(
        &config,
        &SystemClock,
        &args.email,
        &args.name,
        args.platform_admin,
    )
    .await?;
    println!(
        "created user {} <{}>{}",
        user.id,
        user.email,
        if user.platform_admin {
            " (platform admin)"
        } else {
            ""
        }
    );
    Ok(())
}

async fn rotate_master_key(args: StoreArgs) -> Result<(), StartError> {
    let config = args.config()?;
    logging::init(config.log_format, "warn");
    let rotation = sentinel::rotation::rotate_master_key(&config, &SystemClock).await?;
    println!(
        "master key rotated: {} -> {}; {} secrets re-sealed ({} already were)",
        rotation.old_key_id, rotation.new_key_id, rotation.resealed, rotation.already
    );
    Ok(())
}

/// Verifies the audit logs; true when every one is intact.
async fn verify_audit(args: VerifyArgs) -> Result<bool, StartError> {
    let config = args.stores.config()?;
    logging::init(config.log_format, "warn");
    let data_dir = DataDir::open(&config.data_dir)?;
    let key = match &args.public_key {
        Some(hex) => VerifyingKey::from_hex(hex)
            .map_err(|_| StartError::Refused("--public-key must be 64 hex digits".into()))?,
        None => existing_audit_key(&data_dir)?.verifying_key(),
    };
    let stores = Stores::open(&config.store_location(&data_dir), &SystemClock).await?;
    let reports = sentinel::audit::verify(&stores, &key, args.org).await;
    stores.close().await;
    let mut intact = true;
    for report in reports? {
        match report.result {
            Ok(v) => println!(
                "{}: intact: {} entries{}, {} checkpoints{}",
                report.log,
                v.entries,
                match (v.first_seq, v.last_seq) {
                    (Some(first), Some(last)) => format!(" ({first}..={last})"),
                    _ => String::new(),
                },
                v.checkpoints,
                match (v.last_checkpoint, v.last_seq) {
                    (Some(signed), Some(last)) if last > signed =>
                        format!("; entries after {signed} are not signed yet"),
                    _ => String::new(),
                }
            ),
            Err(broken) => {
                intact = false;
                println!("TAMPERED {broken}");
            }
        }
    }
    Ok(intact)
}

async fn export_evidence(args: ExportArgs) -> Result<(), StartError> {
    let config = args.stores.config()?;
    logging::init(config.log_format, "warn");
    let data_dir = DataDir::open(&config.data_dir)?;
    let key = existing_audit_key(&data_dir)?;
    let stores = Stores::open(&config.store_location(&data_dir), &SystemClock).await?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| StartError::Refused(format!("{}: {e}", path.display())))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let now = sentinel_core::Clock::now(&SystemClock);
    let result =
        sentinel::evidence::export(&stores, &key, args.org, args.device, now, &mut out).await;
    stores.close().await;
    let links = result.map_err(|e| StartError::Refused(e.to_string()))?;
    eprintln!("exported {links} telemetry links of device {}", args.device);
    Ok(())
}

/// Verifies an evidence file; true when it holds.
fn verify_evidence(args: &EvidenceVerifyArgs) -> Result<bool, StartError> {
    let key = VerifyingKey::from_hex(&args.public_key)
        .map_err(|_| StartError::Refused("--public-key must be 64 hex digits".into()))?;
    let file = std::fs::File::open(&args.file)
        .map_err(|e| StartError::Refused(format!("{}: {e}", args.file.display())))?;
    match sentinel::evidence::verify(std::io::BufReader::new(file), &key) {
        Ok(header) => {
            println!(
                "intact: device {} ({}) of organization {}: {} telemetry links, head {}, exported {}",
                header.device_id,
                header.hostname,
                header.org_id,
                header.links,
                header.head_hash,
                header.exported_at
            );
            Ok(true)
        }
        Err(invalid) => {
            println!("INVALID {invalid}");
            Ok(false)
        }
    }
}

async fn import_feeds(args: FeedsImportArgs) -> Result<bool, StartError> {
    let config = args.stores.config()?;
    logging::init(config.log_format, "warn");
    sentinel::feeds::import_paths(&config, &args.paths).await
}

/// Verifies a report; true when it is intact.
fn verify_report(args: ReportVerifyArgs) -> Result<bool, StartError> {
    let key = match &args.public_key {
        Some(hex) => VerifyingKey::from_hex(hex)
            .map_err(|_| StartError::Refused("--public-key must be 64 hex digits".into()))?,
        None => {
            let config = args.stores.config()?;
            existing_audit_key(&DataDir::open(&config.data_dir)?)?.verifying_key()
        }
    };
    let bytes = std::fs::read(&args.file)
        .map_err(|e| StartError::Refused(format!("{}: {e}", args.file.display())))?;
    match sentinel_vulns::report::verify(&bytes, &key) {
        Ok(verified) => {
            println!(
                "intact: {} report, SHA-256 {}, signed by key {}",
                verified.format.extension(),
                verified.sha256,
                verified.key_id
            );
            Ok(true)
        }
        Err(invalid) => {
            println!("INVALID {invalid}");
            Ok(false)
        }
    }
}

fn print_public_key(args: StoreArgs) -> Result<(), StartError> {
    let config = args.config()?;
    let data_dir = DataDir::open(&config.data_dir)?;
    let key = existing_audit_key(&data_dir)?.verifying_key();
    println!("{} (key id {})", key.to_hex(), key.key_id());
    Ok(())
}

/// The data directory's audit key; never created here (a new key would not
/// verify the checkpoints of the old one).
fn existing_audit_key(
    data_dir: &DataDir,
) -> Result<sentinel_core::audit::checkpoint::SigningKey, StartError> {
    if !data_dir.audit_key_file().exists() {
        return Err(StartError::Refused(format!(
            "{} does not exist; has this server started once? (or pass --public-key)",
            data_dir.audit_key_file().display()
        )));
    }
    sentinel::audit::signing_key(data_dir)
}
