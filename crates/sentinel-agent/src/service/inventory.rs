//! The inventory loop: every `inventory_interval_seconds` (and when a `refresh_inventory`
//! command asks), the package list's digest is sent, and the full list only when the
//! server answers that it differs from the one it holds.

use std::fmt;
use std::sync::Arc;

use sentinel_protocol::inventory::{InventoryReport, InventoryStatus};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Agent, pause};
use crate::api::ApiError;
use crate::inventory::InventoryError;
use crate::retry::Retry;

/// What a report achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Synced {
    /// The server already held this inventory.
    Unchanged { packages: usize },
    /// The server stored the full list.
    Stored { packages: usize },
}

impl fmt::Display for Synced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unchanged { packages } => write!(f, "inventory unchanged ({packages} packages)"),
            Self::Stored { packages } => write!(f, "inventory stored ({packages} packages)"),
        }
    }
}

/// Why the inventory could not be reported.
#[derive(Debug, thiserror::Error)]
pub(super) enum SyncError {
    #[error("no package manager found on this host")]
    NoSource,
    #[error("cannot list the installed packages: {0}")]
    Collect(#[from] InventoryError),
    #[error("the inventory could not be listed: {0}")]
    Crashed(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("the server answered {0:?} to an inventory report")]
    Unexpected(InventoryStatus),
}

/// Reports the inventory until `stop`.
pub(super) async fn run(agent: Arc<Agent>, stop: CancellationToken) {
    if agent.host.inventory.is_none() {
        return;
    }
    let mut retry = Retry::default();
    loop {
        let started = Instant::now();
        let synced = tokio::select! {
            synced = sync(&agent) => synced,
            () = stop.cancelled() => return,
        };
        let carry_on = match synced {
            Ok(synced) => {
                retry.succeeded();
                tracing::info!("{synced}");
                agent
                    .wait_interval(started, |s| s.inventory_interval_seconds, &stop)
                    .await
            }
            Err(SyncError::Api(error)) if !matches!(error, ApiError::Refused { .. }) => {
                pause(retry.delay_after(&error, "reporting the inventory"), &stop).await
            }
            Err(error) => {
                tracing::warn!("{error}");
                agent
                    .wait_interval(started, |s| s.inventory_interval_seconds, &stop)
                    .await
            }
        };
        if !carry_on {
            return;
        }
    }
}

/// Reports the inventory now: the digest, then the list if the server asks for it.
pub(super) async fn sync(agent: &Agent) -> Result<Synced, SyncError> {
    let _turn = agent.inventory_turn.lock().await;
    let source = agent.host.inventory.clone().ok_or(SyncError::NoSource)?;
    let collection = tokio::task::spawn_blocking(move || source.collect())
        .await
        .map_err(|e| SyncError::Crashed(e.to_string()))??;
    if !collection.warnings.is_empty() {
        tracing::debug!(
            "{} package entries skipped or partly read",
            collection.warnings.len()
        );
    }
    let inventory = collection.inventory;
    let packages = inventory.packages().len();
    let digest = inventory.digest();
    let status = agent
        .transport
        .send_inventory(&InventoryReport {
            digest: digest.clone(),
            packages: None,
        })
        .await?;
    match status {
        InventoryStatus::Unchanged => return Ok(Synced::Unchanged { packages }),
        InventoryStatus::SendFull => {}
        other => return Err(SyncError::Unexpected(other)),
    }
    let status = agent
        .transport
        .send_inventory(&InventoryReport {
            digest,
            packages: Some(inventory.packages().to_vec()),
        })
        .await?;
    match status {
        InventoryStatus::Stored => Ok(Synced::Stored { packages }),
        other => Err(SyncError::Unexpected(other)),
    }
}
