//! `sentinel feeds import PATH…`: vulnerability feeds read from files and
//! stored as platform data, each path one recorded, audited import. A running
//! server picks the changes up within `sentinel_vulns::matcher::POLL_EVERY`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use sentinel_core::audit::{Actor, ActorKind, AuditContext, Origin};
use sentinel_core::{Clock, SystemClock};
use sentinel_store::Stores;
use sentinel_vulns::import::{self, ImportOutcome, MALFORMED_SHOWN, ReadFeed};

use crate::StartError;
use crate::config::Config;
use crate::data_dir::DataDir;

/// Imports each of `paths`; returns false if any could not be read.
pub async fn import_paths(config: &Config, paths: &[PathBuf]) -> Result<bool, StartError> {
    let data_dir = DataDir::open(&config.data_dir)?;
    let stores = Stores::open(&config.store_location(&data_dir), &SystemClock).await?;
    let audit = AuditContext {
        actor: Actor {
            kind: ActorKind::System,
            id: String::new(),
            name: String::from("sentinel feeds import"),
        },
        origin: Origin::default(),
    };
    let mut all_read = true;
    for path in paths {
        let started = Instant::now();
        let shown = path.display().to_string();
        let read = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || ReadFeed::from_path(&path, &mut progress))
                .await
                .map_err(|e| StartError::Refused(format!("reading {shown}: {e}")))?
        };
        if std::io::stderr().is_terminal() {
            eprint!("\r\x1b[2K");
        }
        let feed = match read {
            Ok(feed) => feed,
            Err(e) => {
                eprintln!("{e}: nothing imported");
                all_read = false;
                continue;
            }
        };
        for malformed in feed.malformed.iter().take(MALFORMED_SHOWN) {
            eprintln!("skipped {}: {}", malformed.location, malformed.error);
        }
        if feed.malformed.len() > MALFORMED_SHOWN {
            eprintln!(
                "… and {} more malformed records",
                feed.malformed.len() - MALFORMED_SHOWN
            );
        }
        let outcome = import::import(&stores, feed, SystemClock.now(), &audit).await;
        let elapsed = started.elapsed().as_secs_f64();
        match outcome.map_err(|e| StartError::Refused(format!("{shown}: {e}")))? {
            ImportOutcome::Imported(done) => {
                let c = done.counts;
                println!(
                    "{shown}: {} {} records: {} added, {} updated, {} withdrawn, {} unchanged, {} malformed (import {}, sha256 {}, {elapsed:.1} s)",
                    c.records,
                    done.kind.as_str(),
                    c.added,
                    c.updated,
                    c.withdrawn,
                    c.unchanged,
                    c.malformed,
                    done.seq,
                    done.sha256
                );
            }
            ImportOutcome::AlreadyImported(earlier) => println!(
                "{shown}: already imported (import {} at {}); nothing changed",
                earlier.seq,
                earlier.imported_at.to_rfc3339()
            ),
            ImportOutcome::OlderCatalog { held, offered } => println!(
                "{shown}: KEV catalog {} ({}) is older than the one held, {} ({}); nothing changed",
                offered.catalog_version,
                offered.date_released,
                held.catalog_version,
                held.date_released
            ),
        }
    }
    stores.close().await;
    Ok(all_read)
}

/// Shows how many records have been read, on a terminal.
fn progress(records: usize) {
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = write!(err, "\r\x1b[2Kreading: {records} records");
        let _ = err.flush();
    }
}
