//! The server's log stream: `tracing` to standard error, JSON lines by default and
//! human-readable on a terminal. What is logged is chosen where it is logged: no
//! password, token, cookie, `Authorization` header or setup link is ever a field.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber (once, at process start).
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let pretty = match format {
        LogFormat::Pretty => true,
        LogFormat::Json => false,
        LogFormat::Auto => std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = if pretty {
        builder.with_target(false).try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    };
    if installed.is_err() {
        eprintln!("sentinel: a log subscriber was already installed");
    }
}
