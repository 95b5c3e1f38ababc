//! `sentinel`: the server (`sentinel serve`) and its admin commands.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use sentinel::config::{Config, Settings};
use sentinel::{StartError, admin, logging};
use sentinel_core::SystemClock;

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
}

#[derive(clap::Args)]
struct CreateUserArgs {
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
    let settings = Settings {
        data_dir: args.data_dir,
        database_url: args.database_url.map(sentinel_core::SecretString::new),
        ..Settings::default()
    };
    let config = Config::load(settings, args.config.as_deref())?;
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
