//! Turning devices' inventories into findings, and the background task that
//! keeps every organization's findings current.
//!
//! A device is matched in its release (`Debian:12` from `/etc/os-release`)
//! under the names advisories use: the source package and source version for
//! dpkg (so `openssh-server` is checked as `openssh`, `bsdutils` as
//! `util-linux` at the source's own version), the origin for apk, the binary
//! package for rpm. Devices share package versions, so one catch-up run
//! evaluates each (release, package, version) once and fans the answer out.
//!
//! A device is matched again when its findings were made against another feed
//! generation or another inventory than its current one: the agent reporting a
//! changed inventory and a feed import that changed records both make that so,
//! and [`Matcher`] wakes to catch up.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sentinel_advisories::Ecosystem;
use sentinel_advisories::{EcosystemKey, Level, Release};
use sentinel_core::{Clock, OrgId};
use sentinel_protocol::inventory::{Package, PackageManager};
use sentinel_store::{
    DeviceToMatch, FindingChanges, FindingsWriter, MatchedDevice, NewFinding, StoreError, Stores,
};
use tokio::sync::{Notify, watch};

use crate::feeds::{FeedState, Feeds};

/// Devices matched and written per transaction.
const BATCH: usize = 64;
/// How often the matcher looks for imports made by another process.
pub const POLL_EVERY: Duration = Duration::from_secs(10);

/// What an advisory says about one package version, shared by every device
/// that has that version.
#[derive(Debug, Clone)]
struct Verdict {
    advisory_id: String,
    fixed_version: Option<String>,
    severity: Level,
    aliases: Vec<String>,
    summary: String,
    kev: Option<(String, String)>,
}

/// Verdicts already worked out in one run, by release, package and version.
#[derive(Debug, Default)]
pub struct Memo(HashMap<(String, String, String), Arc<Vec<Verdict>>>);

/// The findings of a device of release `os_id`/`os_version_id` with
/// `packages` installed. An unknown release, or one the feeds say nothing
/// about, has none.
pub fn match_device(
    feeds: &Feeds,
    os_id: &str,
    os_version_id: Option<&str>,
    packages: &[Package],
    memo: &mut Memo,
) -> Vec<NewFinding> {
    let Ok(key) = EcosystemKey::from_os_release(os_id, os_version_id) else {
        return Vec::new();
    };
    let Some(release) = feeds.index.release(&key) else {
        return Vec::new();
    };
    let release_name = key.to_string();
    let mut by_name: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    for package in packages {
        if let Some(named) = advisory_name(key.version_scheme(), package) {
            by_name.entry(named).or_default().push(&package.name);
        }
    }
    let mut findings = Vec::new();
    for ((name, version), mut binaries) in by_name {
        let memo_key = (release_name.clone(), name.to_owned(), version.to_owned());
        let verdicts = match memo.0.get(&memo_key) {
            Some(verdicts) => Arc::clone(verdicts),
            None => {
                let verdicts = Arc::new(judge(feeds, &key, release, name, version));
                memo.0.insert(memo_key, Arc::clone(&verdicts));
                verdicts
            }
        };
        if verdicts.is_empty() {
            continue;
        }
        binaries.sort_unstable();
        binaries.dedup();
        let binaries: Vec<String> = binaries.into_iter().map(str::to_owned).collect();
        for verdict in verdicts.iter() {
            findings.push(NewFinding {
                advisory_id: verdict.advisory_id.clone(),
                package: name.to_owned(),
                binaries: binaries.clone(),
                installed_version: version.to_owned(),
                fixed_version: verdict.fixed_version.clone(),
                release: release_name.clone(),
                severity: verdict.severity.as_str().to_owned(),
                severity_rank: verdict.severity as i32,
                aliases: verdict.aliases.clone(),
                summary: verdict.summary.clone(),
                kev_date_added: verdict.kev.as_ref().map(|(added, _)| added.clone()),
                kev_due_date: verdict.kev.as_ref().map(|(_, due)| due.clone()),
            });
        }
    }
    findings.sort_by(|a, b| (&a.advisory_id, &a.package).cmp(&(&b.advisory_id, &b.package)));
    findings
}

/// The name and version advisories of a release with version `scheme` use
/// for `package`; `None` for a package of another packaging system.
fn advisory_name(scheme: Ecosystem, package: &Package) -> Option<(&str, &str)> {
    let source = || package.source_name.as_deref().filter(|s| !s.is_empty());
    match (scheme, package.manager) {
        (Ecosystem::Debian, PackageManager::Dpkg) => Some((
            source().unwrap_or(&package.name),
            package
                .source_version
                .as_deref()
                .filter(|v| !v.is_empty())
                .unwrap_or(&package.version),
        )),
        (Ecosystem::Alpine, PackageManager::Apk) => {
            Some((source().unwrap_or(&package.name), &package.version))
        }
        (Ecosystem::Rpm, PackageManager::Rpm) => Some((&package.name, &package.version)),
        _ => None,
    }
}

fn judge(
    feeds: &Feeds,
    key: &EcosystemKey,
    release: Release<'_>,
    name: &str,
    version: &str,
) -> Vec<Verdict> {
    let Ok(installed) = key.parse_version(version) else {
        return Vec::new();
    };
    release
        .query(name, &installed)
        .into_iter()
        .map(|hit| {
            let cves = hit.cve_ids();
            let mut aliases: Vec<String> = cves.iter().map(|id| (*id).to_owned()).collect();
            for alias in hit.advisory.aliases() {
                if !aliases.contains(alias) {
                    aliases.push(alias.clone());
                }
            }
            let kev = cves
                .iter()
                .find_map(|cve| feeds.kev.get(*cve))
                .map(|entry| (entry.date_added.to_string(), entry.due_date.to_string()));
            Verdict {
                advisory_id: hit.id().to_owned(),
                fixed_version: hit.fixed_version(),
                severity: Level::assess(hit.severity(), hit.urgency()),
                aliases,
                summary: hit.advisory.summary().unwrap_or_default().to_owned(),
                kev,
            }
        })
        .collect()
}

/// What a catch-up run did for one organization.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUp {
    pub devices: u64,
    pub changes: FindingChanges,
}

/// Matches every device of `org` whose findings are out of date.
pub async fn catch_up(
    stores: &Stores,
    feeds: &FeedState,
    clock: &dyn Clock,
    org: OrgId,
) -> Result<CatchUp, StoreError> {
    let writer = stores.findings_writer(org).await?;
    let generation = feeds.generation();
    let stale = writer.stale_devices(generation).await?;
    let mut done = CatchUp::default();
    let mut memo = Memo::default();
    for chunk in stale.chunks(BATCH) {
        let mut batch = Vec::with_capacity(chunk.len());
        for device in chunk {
            batch.push(read_device(&writer, device).await?);
        }
        let matched: Vec<MatchedDevice> = {
            let feeds = feeds.read();
            if feeds.generation != generation {
                // Feeds moved on mid-run; the next run starts over.
                break;
            }
            batch
                .into_iter()
                .map(|(device, digest, packages)| MatchedDevice {
                    id: device.id,
                    generation,
                    findings: match_device(
                        &feeds,
                        &device.os_id,
                        device.os_version_id.as_deref(),
                        &packages,
                        &mut memo,
                    ),
                    inventory_digest: digest,
                })
                .collect()
        };
        let changes = writer.write(&matched, clock.now()).await?;
        done.devices += matched.len() as u64;
        done.changes.added += changes.added;
        done.changes.removed += changes.removed;
        done.changes.updated += changes.updated;
        tokio::task::yield_now().await;
    }
    Ok(done)
}

async fn read_device<'a>(
    writer: &FindingsWriter,
    device: &'a DeviceToMatch,
) -> Result<(&'a DeviceToMatch, Option<String>, Vec<Package>), StoreError> {
    let (digest, packages) = writer.packages_of(device.id).await?;
    Ok((device, digest, packages))
}

/// Wakes the matching task: an organization's inventory changed, or the feeds did.
#[derive(Debug, Default)]
pub struct Matcher {
    dirty: Mutex<HashSet<OrgId>>,
    everything: AtomicBool,
    wake: Notify,
}

impl Matcher {
    /// A device of `org` reported a new inventory.
    pub fn inventory_changed(&self, org: OrgId) {
        self.dirty
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(org);
        self.wake.notify_one();
    }

    /// The feeds may have changed (an import): look now rather than at the next poll.
    pub fn feeds_changed(&self) {
        self.everything.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Keeps findings current until `stop` turns true: at start and after
    /// every feed change every organization is caught up, otherwise those whose
    /// devices reported inventories.
    pub async fn run(
        self: Arc<Self>,
        stores: Arc<Stores>,
        feeds: Arc<FeedState>,
        clock: Arc<dyn Clock>,
        mut stop: watch::Receiver<bool>,
    ) {
        self.everything.store(true, Ordering::SeqCst);
        loop {
            let everything = self.everything.swap(false, Ordering::SeqCst);
            let refreshed = match feeds.refresh(&stores).await {
                Ok(changed) => changed,
                Err(e) => {
                    tracing::warn!(error = %e, "loading vulnerability feeds failed; retrying");
                    false
                }
            };
            let orgs: Vec<OrgId> = if everything || refreshed {
                match stores.control().all_organizations().await {
                    Ok(orgs) => orgs.into_iter().map(|o| o.id).collect(),
                    Err(e) => {
                        tracing::warn!(error = %e, "listing organizations for matching failed");
                        self.everything.store(true, Ordering::SeqCst);
                        Vec::new()
                    }
                }
            } else {
                self.dirty
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .drain()
                    .collect()
            };
            for org in orgs {
                match catch_up(&stores, &feeds, clock.as_ref(), org).await {
                    Ok(done) if done.devices > 0 => tracing::info!(
                        %org,
                        devices = done.devices,
                        added = done.changes.added,
                        removed = done.changes.removed,
                        updated = done.changes.updated,
                        "findings matched"
                    ),
                    Ok(_) => {}
                    Err(StoreError::NotFound) => {}
                    Err(e) => {
                        tracing::warn!(%org, error = %e, "matching findings failed; retrying");
                        self.dirty
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .insert(org);
                    }
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL_EVERY) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}
