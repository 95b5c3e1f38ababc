//! The server's side of the audit trail: the Ed25519 key that signs checkpoints,
//! the checkpointer that signs every log's head (every N entries, every
//! interval, and at shutdown), retention, and the check behind
//! `sentinel audit verify`.

use std::sync::Arc;
use std::time::Duration;

use sentinel_core::audit::LogId;
use sentinel_core::audit::chain::{Break, Verified};
use sentinel_core::audit::checkpoint::{SigningKey, VerifyingKey};
use sentinel_core::{Clock, OrgId};
use sentinel_store::{StoreError, Stores};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::StartError;
use crate::config::AuditSettings;
use crate::data_dir::{DataDir, load_or_create_key};

/// The audit signing key of this data directory, created on first start.
pub fn signing_key(data_dir: &DataDir) -> Result<SigningKey, StartError> {
    let seed = load_or_create_key(&data_dir.audit_key_file(), "audit signing key")?;
    SigningKey::from_seed(&seed).map_err(|e| StartError::Refused(e.to_string()))
}

/// Signs `log`'s head if entries were appended since its last checkpoint;
/// returns the signed entry number.
pub async fn checkpoint(
    stores: &Stores,
    key: &SigningKey,
    clock: &dyn Clock,
    log: LogId,
) -> Result<Option<i64>, StoreError> {
    let audit_log = stores.audit_log(log).await?;
    let Some(head) = audit_log.head().await? else {
        return Ok(None);
    };
    if head.seq <= audit_log.last_checkpoint_seq().await? {
        stores.checkpoint_queue().signed_through(log, head.seq);
        return Ok(None);
    }
    audit_log
        .add_checkpoint(&key.sign(&log, &head, clock.now()))
        .await?;
    Ok(Some(head.seq))
}

/// Signs every log with unsigned entries.
pub async fn checkpoint_unsigned(stores: &Stores, key: &SigningKey, clock: &dyn Clock) {
    for log in stores.checkpoint_queue().unsigned() {
        if let Err(e) = checkpoint(stores, key, clock, log).await {
            tracing::warn!(%log, error = %e, "could not sign the audit log's head");
        }
    }
}

/// The platform log and every organization's log.
async fn every_log(stores: &Stores) -> Result<Vec<LogId>, StoreError> {
    let mut logs = vec![LogId::Platform];
    for org in stores.control().all_organizations().await? {
        logs.push(LogId::Org(org.id));
    }
    Ok(logs)
}

/// Signs the head of every log (at start: a crash may have left heads unsigned).
async fn checkpoint_all(
    stores: &Stores,
    key: &SigningKey,
    clock: &dyn Clock,
) -> Result<(), StoreError> {
    for log in every_log(stores).await? {
        checkpoint(stores, key, clock, log).await?;
    }
    Ok(())
}

/// Runs until `stopped`: first signs every log's head (a crash may have left
/// some unsigned), then signs logs when one has gathered enough entries and on
/// every `interval`; signs what is left once more on the way out.
pub fn spawn_checkpointer(
    stores: Arc<Stores>,
    key: Arc<SigningKey>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = checkpoint_all(&stores, &key, clock.as_ref()).await {
            tracing::warn!(error = %e, "could not sign every audit log's head at start");
        }
        let mut tick = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stores.checkpoint_queue().due() => {}
                _ = stopped.changed() => break,
            }
            checkpoint_unsigned(&stores, &key, clock.as_ref()).await;
        }
        checkpoint_unsigned(&stores, &key, clock.as_ref()).await;
    })
}

/// Prunes every log's entries older than its retention (up to a signed
/// checkpoint, recorded in the log), and refreshes its query statistics.
pub async fn prune_all(
    stores: &Stores,
    clock: &dyn Clock,
    settings: &AuditSettings,
) -> Result<u64, StoreError> {
    let now = clock.now();
    let mut removed = 0;
    for log in every_log(stores).await? {
        let cutoff = now.minus(settings.retention_of(log));
        let audit_log = stores.audit_log(log).await?;
        let n = audit_log.prune(cutoff, now).await?;
        audit_log.refresh_statistics().await?;
        if n > 0 {
            tracing::info!(%log, entries = n, "pruned audit entries past retention");
        }
        removed += n;
    }
    Ok(removed)
}

/// The verdict on one log.
#[derive(Debug)]
pub struct LogReport {
    pub log: LogId,
    pub result: Result<Verified, Break>,
}

/// Checks every log (or one organization's): the database protections, every
/// checkpoint signature, and every entry's place in the chain.
pub async fn verify(
    stores: &Stores,
    key: &VerifyingKey,
    org: Option<OrgId>,
) -> Result<Vec<LogReport>, StoreError> {
    let logs = match org {
        Some(org) => vec![LogId::Org(org)],
        None => every_log(stores).await?,
    };
    let mut reports = Vec::new();
    for log in logs {
        let result = stores.audit_log(log).await?.verify(key).await?;
        reports.push(LogReport { log, result });
    }
    Ok(reports)
}
