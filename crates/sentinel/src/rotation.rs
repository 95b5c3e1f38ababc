//! `sentinel admin rotate-master-key`: re-seals every secret kept at rest
//! under a new master key, then switches keys. Safe to run again after a crash
//! at any point:
//!
//! 1. the new key is written to `master.key.next` (kept if already there);
//! 2. every sealed value is opened (under whichever key its id names) and
//!    sealed under the new key, one compare-and-set update each; values
//!    already under the new key are skipped;
//! 3. the old key is copied to `master.key.previous`, `master.key.next` is
//!    renamed over `master.key`, and `master.key.previous` is removed.
//!
//! A server that starts in between opens values under any of these keys. The
//! server must be stopped while this runs: a value it changes meanwhile makes
//! the rotation stop (run it again once the server is down).

use sentinel_core::Clock;
use sentinel_core::audit::{
    Actor, ActorKind, AuditAction, AuditContext, Entity, EntityType, LogId, Origin,
};
use sentinel_core::sealing::sealed_key_id;
use sentinel_store::Stores;

use crate::StartError;
use crate::config::Config;
use crate::data_dir::{DataDir, MasterKey, write_private};

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub old_key_id: String,
    pub new_key_id: String,
    pub resealed: usize,
    /// Values found already under the new key (an interrupted run's work).
    pub already: usize,
}

pub async fn rotate_master_key(config: &Config, clock: &dyn Clock) -> Result<Rotation, StartError> {
    let data_dir = DataDir::open(&config.data_dir)?;
    let _lock = data_dir.lock("rotating the master key")?;
    let current = MasterKey::load_existing(&data_dir.master_key_file())?.ok_or_else(|| {
        StartError::Refused(format!(
            "{} does not exist: there is no key to rotate",
            data_dir.master_key_file().display()
        ))
    })?;
    let next = MasterKey::load_or_create(&data_dir.next_master_key_file())?;
    let keys = current.opened_too_by(data_dir.sealing_key(&next)?)?;
    let stores = Stores::open(&config.store_location(&data_dir), clock).await?;
    let result = match reseal(&stores, &keys, &next.id()).await {
        Ok(counts) => all_under(&stores, &next.id()).await.map(|()| counts),
        Err(e) => Err(e),
    };
    let (resealed, already) = match result {
        Ok(counts) => counts,
        Err(e) => {
            stores.close().await;
            return Err(e);
        }
    };
    // Switch: the old key stays on disk until the new one is in place, and is
    // itself written whole or not at all.
    let previous = data_dir.previous_master_key_file();
    let partial = previous.with_extension("previous.partial");
    write_private(&partial, current.file_text().as_bytes())?;
    std::fs::rename(&partial, &previous)
        .map_err(|e| StartError::io("keeping the old master key", e))?;
    std::fs::rename(data_dir.next_master_key_file(), data_dir.master_key_file())
        .map_err(|e| StartError::io("switching to the new master key", e))?;
    sync_dir(&data_dir)?;
    std::fs::remove_file(data_dir.previous_master_key_file())
        .map_err(|e| StartError::io("removing the old master key", e))?;
    let rotation = Rotation {
        old_key_id: current.id(),
        new_key_id: next.id(),
        resealed,
        already,
    };
    let recorded = record(&stores, clock, &rotation).await;
    stores.close().await;
    recorded?;
    tracing::info!(old = %rotation.old_key_id, new = %rotation.new_key_id, resealed, "master key rotated");
    Ok(rotation)
}

/// Re-seals every value not yet under `new_id`; returns (re-sealed, already).
async fn reseal(
    stores: &Stores,
    keys: &sentinel_core::sealing::SealingKey,
    new_id: &str,
) -> Result<(usize, usize), StartError> {
    let (mut resealed, mut already) = (0, 0);
    for value in stores.sealed_values().await? {
        let context = value.site.context();
        let refuse = |e: sentinel_core::sealing::SealError| {
            StartError::Refused(format!("{context}: {e}; nothing was switched"))
        };
        if sealed_key_id(&value.sealed).map_err(refuse)? == new_id {
            already += 1;
            continue;
        }
        let plain = keys.open(&value.sealed, &context).map_err(refuse)?;
        let sealed = keys.seal(&plain, &context).map_err(refuse)?;
        if !stores.replace_sealed(&value, &sealed).await? {
            return Err(StartError::Refused(format!(
                "{context} changed during the rotation: stop the server and run this again"
            )));
        }
        resealed += 1;
    }
    Ok((resealed, already))
}

/// Checks, after re-sealing, that no value is left under another key.
async fn all_under(stores: &Stores, new_id: &str) -> Result<(), StartError> {
    for value in stores.sealed_values().await? {
        if sealed_key_id(&value.sealed).ok().as_deref() != Some(new_id) {
            return Err(StartError::Refused(format!(
                "{} is not under the new key after re-sealing; nothing was switched: run this again",
                value.site.context()
            )));
        }
    }
    Ok(())
}

async fn record(stores: &Stores, clock: &dyn Clock, rotation: &Rotation) -> Result<(), StartError> {
    let by = AuditContext {
        actor: Actor {
            kind: ActorKind::System,
            id: String::new(),
            name: String::from("sentinel admin rotate-master-key"),
        },
        origin: Origin::default(),
    };
    let event = by.success(
        clock.now(),
        AuditAction::MasterKeyRotated,
        Entity::new(EntityType::Platform, ""),
        serde_json::json!({
            "old_key_id": rotation.old_key_id,
            "new_key_id": rotation.new_key_id,
            "resealed": rotation.resealed,
        }),
    );
    stores.record(LogId::Platform, event).await?;
    Ok(())
}

fn sync_dir(data_dir: &DataDir) -> Result<(), StartError> {
    std::fs::File::open(data_dir.path())
        .and_then(|dir| dir.sync_all())
        .map_err(|e| StartError::io("syncing the data directory", e))
}
