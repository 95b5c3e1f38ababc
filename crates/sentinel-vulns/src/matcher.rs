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
    DeviceToMatch, FindingChanges, MatchedDevice, NewFinding, StoreError, Stores,
};
use tokio::sync::{Notify, watch};

use crate::feeds::{FeedState, Feeds};

/// Devices matched and written per transaction.
const BATCH: usize = 256;
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

/// Verdicts already worked out in one run: by release, then by package and
/// version (`name\tversion`, looked up without allocating).
#[derive(Debug, Default)]
pub struct Memo {
    releases: HashMap<String, HashMap<String, Arc<Vec<Verdict>>>>,
    probe: String,
}

/// What matching needs of one installed package.
#[derive(Debug, Clone, Copy)]
pub struct PackageRef<'a> {
    pub manager: PackageManager,
    pub name: &'a str,
    pub version: &'a str,
    pub source_name: Option<&'a str>,
    pub source_version: Option<&'a str>,
}

impl<'a> From<&'a Package> for PackageRef<'a> {
    fn from(package: &'a Package) -> Self {
        PackageRef {
            manager: package.manager,
            name: &package.name,
            version: &package.version,
            source_name: package.source_name.as_deref(),
            source_version: package.source_version.as_deref(),
        }
    }
}

/// The compact copy of an inventory the matcher keeps with a device: one line
/// per package, its fields separated by tabs (which package fields never hold).
pub fn compact(packages: &[Package]) -> String {
    let mut out = String::with_capacity(packages.len() * 48);
    for p in packages {
        for field in [
            p.manager.as_str(),
            &p.name,
            &p.version,
            p.source_name.as_deref().unwrap_or_default(),
            p.source_version.as_deref().unwrap_or_default(),
        ] {
            out.push_str(field);
            out.push('\t');
        }
        out.push('\n');
    }
    out
}

/// The packages of a compact copy (lines that do not read are skipped).
pub fn packages_of(compact: &str) -> impl Iterator<Item = PackageRef<'_>> {
    compact.lines().filter_map(|line| {
        let mut fields = line.split('\t');
        let manager = PackageManager::parse(fields.next()?)?;
        let name = fields.next()?;
        let version = fields.next()?;
        let source_name = Some(fields.next()?).filter(|s| !s.is_empty());
        let source_version = Some(fields.next()?).filter(|s| !s.is_empty());
        Some(PackageRef {
            manager,
            name,
            version,
            source_name,
            source_version,
        })
    })
}

/// The digest of a device's findings (in the order matched), to tell whether a
/// re-match changed anything.
pub fn findings_digest(findings: &[NewFinding]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for f in findings {
        for field in [
            f.advisory_id.as_str(),
            &f.package,
            &f.binaries.join(" "),
            &f.installed_version,
            f.fixed_version.as_deref().unwrap_or("\u{0}"),
            &f.release,
            &f.severity,
            &f.aliases.join(" "),
            &f.summary,
            f.kev_date_added.as_deref().unwrap_or("\u{0}"),
            f.kev_due_date.as_deref().unwrap_or("\u{0}"),
        ] {
            hasher.update(field.as_bytes());
            hasher.update([0x1f]);
        }
        hasher.update([0x1e]);
    }
    sentinel_core::audit::hex(&hasher.finalize())
}

/// The findings of a device of release `os_id`/`os_version_id` with
/// `packages` installed. An unknown release, or one the feeds say nothing
/// about, has none.
pub fn match_device<'p>(
    feeds: &Feeds,
    os_id: &str,
    os_version_id: Option<&str>,
    packages: impl IntoIterator<Item = PackageRef<'p>>,
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
            by_name.entry(named).or_default().push(package.name);
        }
    }
    let mut findings = Vec::new();
    let Memo { releases, probe } = memo;
    let known = releases.entry(release_name.clone()).or_default();
    for ((name, version), mut binaries) in by_name {
        probe.clear();
        probe.push_str(name);
        probe.push('\t');
        probe.push_str(version);
        let verdicts = match known.get(probe.as_str()) {
            Some(verdicts) => Arc::clone(verdicts),
            None => {
                let verdicts = Arc::new(judge(feeds, &key, release, name, version));
                known.insert(probe.clone(), Arc::clone(&verdicts));
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
fn advisory_name(scheme: Ecosystem, package: PackageRef<'_>) -> Option<(&str, &str)> {
    let source = package.source_name.filter(|s| !s.is_empty());
    match (scheme, package.manager) {
        (Ecosystem::Debian, PackageManager::Dpkg) => Some((
            source.unwrap_or(package.name),
            package
                .source_version
                .filter(|v| !v.is_empty())
                .unwrap_or(package.version),
        )),
        (Ecosystem::Alpine, PackageManager::Apk) => {
            Some((source.unwrap_or(package.name), package.version))
        }
        (Ecosystem::Rpm, PackageManager::Rpm) => Some((package.name, package.version)),
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
    feeds: &Arc<FeedState>,
    clock: &dyn Clock,
    org: OrgId,
) -> Result<CatchUp, StoreError> {
    let writer = stores.findings_writer(org).await?;
    let generation = feeds.generation();
    let stale = writer.stale_devices(generation).await?;
    let mut done = CatchUp::default();
    // One memo per core; each half of a batch is matched on its own thread.
    let mut memos = [Memo::default(), Memo::default()];
    for chunk in stale.chunks(BATCH) {
        let ids: Vec<_> = chunk.iter().map(|device| device.id).collect();
        let mut cached = writer.cached_packages(&ids).await?;
        let mut batch = Vec::with_capacity(chunk.len());
        for device in chunk {
            // The compact copy when it is of the current inventory, else the
            // inventory itself (and a new copy to keep).
            let read = match cached.remove(&device.id) {
                Some((digest, packages)) => (Some(digest), packages, false),
                None => {
                    let (digest, packages) = writer.packages_of(device.id).await?;
                    (digest, compact(&packages), true)
                }
            };
            batch.push((device.clone(), read));
        }
        // Matching is CPU work: off the executor, on both cores.
        let state = Arc::clone(feeds);
        let worked = tokio::task::spawn_blocking(move || {
            let feeds = state.read();
            if feeds.generation != generation {
                return (None, memos);
            }
            let (left, right) = batch.split_at(batch.len().div_ceil(2));
            let [mut first, mut second] = memos;
            let (mut matched, rest) = std::thread::scope(|scope| {
                let other = scope.spawn(|| match_batch(&feeds, generation, right, &mut second));
                let mine = match_batch(&feeds, generation, left, &mut first);
                (mine, other.join())
            });
            match rest {
                Ok(rest) => matched.extend(rest),
                Err(_) => return (None, [first, second]),
            }
            (Some(matched), [first, second])
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("matching: {e}")))?;
        memos = worked.1;
        // None: the feeds moved on mid-run (the next run starts over).
        let Some(matched) = worked.0 else { break };
        let changes = writer.write(&matched, clock.now()).await?;
        done.devices += matched.len() as u64;
        done.changes.added += changes.added;
        done.changes.removed += changes.removed;
        done.changes.updated += changes.updated;
        tokio::task::yield_now().await;
    }
    Ok(done)
}

type ReadDevice = (DeviceToMatch, (Option<String>, String, bool));

/// Matches devices read from the store.
fn match_batch(
    feeds: &Feeds,
    generation: i64,
    batch: &[ReadDevice],
    memo: &mut Memo,
) -> Vec<MatchedDevice> {
    batch
        .iter()
        .map(|(device, (digest, packages, fresh))| {
            let findings = match_device(
                feeds,
                &device.os_id,
                device.os_version_id.as_deref(),
                packages_of(packages),
                memo,
            );
            MatchedDevice {
                id: device.id,
                generation,
                inventory_digest: digest.clone(),
                findings_digest: findings_digest(&findings),
                previous_digest: device.findings_digest.clone(),
                packages: fresh.then(|| packages.clone()),
                findings,
            }
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compact_copy_keeps_what_matching_needs() {
        let packages = vec![
            Package {
                manager: PackageManager::Dpkg,
                name: "bsdutils".into(),
                version: "1:2.38.1-5+b1".into(),
                arch: Some("amd64".into()),
                source_name: Some("util-linux".into()),
                source_version: Some("2.38.1-5".into()),
            },
            Package {
                manager: PackageManager::Rpm,
                name: "openssl".into(),
                version: "1:3.0.7-27.el9".into(),
                arch: None,
                source_name: None,
                source_version: None,
            },
        ];
        let copy = compact(&packages);
        let read: Vec<_> = packages_of(&copy)
            .map(|p| {
                (
                    p.manager,
                    p.name,
                    p.version,
                    p.source_name,
                    p.source_version,
                )
            })
            .collect();
        assert_eq!(
            read,
            vec![
                (
                    PackageManager::Dpkg,
                    "bsdutils",
                    "1:2.38.1-5+b1",
                    Some("util-linux"),
                    Some("2.38.1-5")
                ),
                (PackageManager::Rpm, "openssl", "1:3.0.7-27.el9", None, None),
            ]
        );
        assert_eq!(packages_of("garbage\nnot\tenough\n").count(), 0);
    }
}
