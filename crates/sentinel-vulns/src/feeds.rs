//! The platform's feeds in memory: every advisory compiled into one
//! [`AdvisoryIndex`] and the KEV catalog by CVE id, at a generation (the
//! number of the last import that changed anything). The control store is the
//! truth; [`FeedState::refresh`] loads what changed since the generation held,
//! so imports made by `sentinel feeds import` while the server runs arrive too.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use sentinel_advisories::kev::KevEntry;
use sentinel_advisories::{AdvisoryIndex, osv};
use sentinel_store::{StoreError, Stores};

/// The feeds at one generation.
#[derive(Debug, Default)]
pub struct Feeds {
    pub index: AdvisoryIndex,
    pub kev: HashMap<String, KevEntry>,
    pub generation: i64,
}

/// The feeds shared by the server's handlers and its matcher.
#[derive(Debug, Default)]
pub struct FeedState {
    feeds: RwLock<Feeds>,
    /// Held while refreshing, so two refreshes do not load the same changes.
    refreshing: tokio::sync::Mutex<()>,
}

impl FeedState {
    /// Read access to the feeds. Readers must not hold it across an await.
    pub fn read(&self) -> RwLockReadGuard<'_, Feeds> {
        self.feeds
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The generation held.
    pub fn generation(&self) -> i64 {
        self.read().generation
    }

    /// Loads the imports made since the generation held; returns whether the
    /// generation changed. Records that no longer parse (stored by a newer
    /// Sentinel, say) are skipped with a warning.
    pub async fn refresh(self: &Arc<Self>, stores: &Stores) -> Result<bool, StoreError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let held = self.generation();
        let control = stores.control();
        if control.feed_generation().await? == held {
            return Ok(false);
        }
        let changes = control.feed_changes_since(held).await?;
        let kev = if changes.kev_changed || held == 0 {
            Some(control.kev_entries().await?)
        } else {
            None
        };
        // Parsing and compiling 100,000 records takes a while: off the executor.
        let state = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let records: Vec<_> = changes
                .advisories
                .iter()
                .filter_map(|json| match osv::parse_str(json) {
                    Ok(record) => Some(record),
                    Err(e) => {
                        tracing::warn!(error = %e, "a stored advisory no longer parses; skipped");
                        None
                    }
                })
                .collect();
            let kev: Option<HashMap<String, KevEntry>> = kev.map(|entries| {
                entries
                    .iter()
                    .filter_map(|json| serde_json::from_str::<KevEntry>(json).ok())
                    .map(|entry| (entry.cve_id.clone(), entry))
                    .collect()
            });
            let mut feeds = state
                .feeds
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for record in records {
                feeds.index.insert(record);
            }
            if let Some(kev) = kev {
                feeds.kev = kev;
            }
            feeds.generation = changes.generation;
            tracing::info!(
                generation = feeds.generation,
                advisories = feeds.index.len(),
                kev = feeds.kev.len(),
                "vulnerability feeds loaded"
            );
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("loading feeds: {e}")))?;
        Ok(true)
    }
}
