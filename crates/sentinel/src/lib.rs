//! The `sentinel` server: configuration, the data directory and its keys, TLS,
//! the listener and the server's lifecycle, and the admin CLI. The HTTP surface is
//! `sentinel-http`; storage is `sentinel-store`.

pub mod admin;
pub mod audit;
pub mod config;
pub mod data_dir;
pub mod evidence;
pub mod feeds;
pub mod listener;
pub mod logging;
pub mod mqtt;
pub mod rotation;
pub mod server;
pub mod setup_link;
pub mod tls;

pub use server::{RunningServer, start};

/// Why the server (or an admin command) could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A state the server will not run in (an exposed key, a bad data directory…).
    #[error("{0}")]
    Refused(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("store: {0}")]
    Store(#[from] sentinel_store::StoreError),
}

impl StartError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> StartError {
        StartError::Io {
            context: context.into(),
            source,
        }
    }
}
