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
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};

use crate::feeds::{FeedState, Feeds};
use crate::numbering::Numbering;

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

/// A package version as the advisories of a release name it (the source
/// package and version on Debian), and what they say of it.
#[derive(Debug)]
struct Source {
    name: String,
    version: String,
    verdicts: Vec<Verdict>,
    /// SHA-256 of all of the above: the part of a device's findings digest
    /// that every device with this version shares.
    digest: [u8; 32],
}

/// A package-version number not looked at yet in a release.
const UNSEEN: u32 = u32::MAX;
/// A package version the release's advisories say nothing of.
const NOTHING: u32 = u32::MAX - 1;

/// What one run has worked out in one release.
#[derive(Debug, Default)]
struct ReleaseMemo {
    /// By package-version number: the index of its source in `sources`,
    /// [`UNSEEN`] or [`NOTHING`].
    by_number: Vec<u32>,
    /// By source name and version, the same.
    by_name: HashMap<(String, String), u32>,
    /// The sources that advisories affect.
    sources: Vec<Source>,
}

/// What one catch-up run has worked out, by release: each source version is
/// judged once however many devices have it (each thread has its own).
#[derive(Debug, Default)]
pub struct Memo {
    releases: HashMap<String, ReleaseMemo>,
}

impl ReleaseMemo {
    /// The index of the source of the package version numbered `number`, or
    /// [`NOTHING`].
    fn source_of(
        &mut self,
        number: u32,
        package: &Package,
        feeds: &Feeds,
        key: &EcosystemKey,
        release: Release<'_>,
    ) -> u32 {
        let slot = number as usize;
        if self.by_number.len() <= slot {
            self.by_number.resize(slot + 1, UNSEEN);
        }
        if self.by_number[slot] == UNSEEN {
            self.by_number[slot] = match advisory_name(key.version_scheme(), package) {
                None => NOTHING,
                Some((name, version)) => {
                    let named = (name.to_owned(), version.to_owned());
                    match self.by_name.get(&named) {
                        Some(index) => *index,
                        None => {
                            let verdicts = judge(feeds, key, release, name, version);
                            let index = if verdicts.is_empty() {
                                NOTHING
                            } else {
                                self.sources.push(Source {
                                    digest: source_digest(name, version, &verdicts),
                                    name: named.0.clone(),
                                    version: named.1.clone(),
                                    verdicts,
                                });
                                u32::try_from(self.sources.len() - 1).unwrap_or(NOTHING)
                            };
                            self.by_name.insert(named, index);
                            index
                        }
                    }
                }
            };
        }
        self.by_number[slot]
    }
}

/// The digest of what the advisories say of one source version.
fn source_digest(name: &str, version: &str, verdicts: &[Verdict]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for field in [name, version] {
        hasher.update(field.as_bytes());
        hasher.update([0x1f]);
    }
    for v in verdicts {
        let (added, due) = v.kev.clone().unzip();
        for field in [
            v.advisory_id.as_str(),
            v.fixed_version.as_deref().unwrap_or("\u{0}"),
            v.severity.as_str(),
            &v.aliases.join(" "),
            &v.summary,
            added.as_deref().unwrap_or("\u{0}"),
            due.as_deref().unwrap_or("\u{0}"),
        ] {
            hasher.update(field.as_bytes());
            hasher.update([0x1f]);
        }
        hasher.update([0x1e]);
    }
    hasher.finalize().into()
}

/// A device's findings as matched: their digest, and the findings themselves
/// unless the digest is the one already stored (a re-match that changed
/// nothing, the common case after a feed import, builds nothing).
#[derive(Debug)]
pub struct DeviceMatch {
    pub digest: String,
    pub findings: Option<Vec<NewFinding>>,
}

/// The findings of a device of release `os_id`/`os_version_id` with the
/// package versions numbered `numbers` installed, given the digest of those
/// stored (`stored`). An unknown release, or one the feeds say nothing about,
/// has none.
pub fn match_device(
    feeds: &Feeds,
    numbering: &Numbering,
    (os_id, os_version_id): (&str, Option<&str>),
    numbers: &[u32],
    memo: &mut Memo,
    stored: Option<&str>,
) -> DeviceMatch {
    let release_name;
    let mut hits: Vec<(u32, &str)> = Vec::new();
    let mut known = None;
    if let Ok(key) = EcosystemKey::from_os_release(os_id, os_version_id)
        && let Some(release) = feeds.index.release(&key)
    {
        release_name = key.to_string();
        let memo = memo.releases.entry(release_name.clone()).or_default();
        for &number in numbers {
            let Some(package) = numbering.get(number) else {
                continue;
            };
            let source = memo.source_of(number, package, feeds, &key, release);
            if source != NOTHING {
                hits.push((source, package.name.as_str()));
            }
        }
        known = Some(&*memo);
    } else {
        release_name = String::new();
    }
    let sources: &[Source] = known.map(|m| m.sources.as_slice()).unwrap_or_default();
    // In the advisories' names' order, so that the digest does not depend on
    // the order numbers were given in; binaries by name within a source.
    hits.sort_unstable_by(|(a, a_bin), (b, b_bin)| {
        let (a, b) = (&sources[*a as usize], &sources[*b as usize]);
        (&a.name, &a.version, a_bin).cmp(&(&b.name, &b.version, b_bin))
    });
    hits.dedup();
    let groups = || hits.chunk_by(|a, b| a.0 == b.0);
    let mut hasher = Sha256::new();
    hasher.update(release_name.as_bytes());
    hasher.update([0x1e]);
    for group in groups() {
        hasher.update(sources[group[0].0 as usize].digest);
        for (_, binary) in group {
            hasher.update(binary.as_bytes());
            hasher.update([0x1f]);
        }
        hasher.update([0x1e]);
    }
    let digest = sentinel_core::audit::hex(&hasher.finalize());
    if stored == Some(digest.as_str()) {
        return DeviceMatch {
            digest,
            findings: None,
        };
    }
    let mut findings = Vec::new();
    for group in groups() {
        let source = &sources[group[0].0 as usize];
        let binaries: Vec<String> = group.iter().map(|(_, b)| (*b).to_owned()).collect();
        for verdict in &source.verdicts {
            findings.push(NewFinding {
                advisory_id: verdict.advisory_id.clone(),
                package: source.name.clone(),
                binaries: binaries.clone(),
                installed_version: source.version.clone(),
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
    DeviceMatch {
        digest,
        findings: Some(findings),
    }
}

/// The name and version advisories of a release with version `scheme` use
/// for `package`; `None` for a package of another packaging system.
fn advisory_name(scheme: Ecosystem, package: &Package) -> Option<(&str, &str)> {
    let source = package.source_name.as_deref().filter(|s| !s.is_empty());
    match (scheme, package.manager) {
        (Ecosystem::Debian, PackageManager::Dpkg) => Some((
            source.unwrap_or(&package.name),
            package
                .source_version
                .as_deref()
                .filter(|v| !v.is_empty())
                .unwrap_or(&package.version),
        )),
        (Ecosystem::Alpine, PackageManager::Apk) => {
            Some((source.unwrap_or(&package.name), &package.version))
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
    feeds: &Arc<FeedState>,
    clock: &dyn Clock,
    org: OrgId,
) -> Result<CatchUp, StoreError> {
    let writer = stores.findings_writer(org).await?;
    let generation = feeds.generation();
    let stale = writer.stale_devices(generation).await?;
    let mut done = CatchUp::default();
    if stale.is_empty() {
        return Ok(done);
    }
    let mut numbering = Numbering::new(writer.package_versions().await?);
    // One memo per core; each half of a batch is matched on its own thread.
    let mut memos = [Memo::default(), Memo::default()];
    for chunk in stale.chunks(BATCH) {
        let ids: Vec<_> = chunk.iter().map(|device| device.id).collect();
        let mut cached = writer.cached_packages(&ids).await?;
        let mut batch = Vec::with_capacity(chunk.len());
        for device in chunk {
            // The copy kept at the last match when it is of the current
            // inventory, else the inventory itself (and a new copy to keep).
            let read = match cached.remove(&device.id) {
                Some((digest, numbers)) if numbering.knows(&numbers) => {
                    (Some(digest), numbers, false)
                }
                _ => {
                    let (digest, packages) = writer.packages_of(device.id).await?;
                    let numbers = packages.iter().map(|p| numbering.number(p)).collect();
                    (digest, numbers, true)
                }
            };
            batch.push((device.clone(), read));
        }
        let versions = numbering.take_fresh();
        // Matching is CPU work: off the executor, on both cores.
        let state = Arc::clone(feeds);
        let worked = tokio::task::spawn_blocking(move || {
            let feeds = state.read();
            if feeds.generation != generation {
                return (None, memos, numbering);
            }
            let (left, right) = batch.split_at(batch.len().div_ceil(2));
            let [mut first, mut second] = memos;
            let (mut matched, rest) = std::thread::scope(|scope| {
                let other =
                    scope.spawn(|| match_batch(&feeds, &numbering, generation, right, &mut second));
                let mine = match_batch(&feeds, &numbering, generation, left, &mut first);
                (mine, other.join())
            });
            match rest {
                Ok(rest) => matched.extend(rest),
                Err(_) => return (None, [first, second], numbering),
            }
            (Some(matched), [first, second], numbering)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("matching: {e}")))?;
        let matched;
        (matched, memos, numbering) = worked;
        // None: the feeds moved on mid-run (the next run starts over).
        let Some(matched) = matched else { break };
        let changes = writer.write(&matched, &versions, clock.now()).await?;
        done.devices += matched.len() as u64;
        done.changes.added += changes.added;
        done.changes.removed += changes.removed;
        done.changes.updated += changes.updated;
        tokio::task::yield_now().await;
    }
    Ok(done)
}

/// A device to match: its inventory digest, its package-version numbers,
/// and whether they were read afresh (and are to be kept).
type ReadDevice = (DeviceToMatch, (Option<String>, Vec<u32>, bool));

/// Matches devices read from the store.
fn match_batch(
    feeds: &Feeds,
    numbering: &Numbering,
    generation: i64,
    batch: &[ReadDevice],
    memo: &mut Memo,
) -> Vec<MatchedDevice> {
    batch
        .iter()
        .map(|(device, (digest, numbers, fresh))| {
            let matched = match_device(
                feeds,
                numbering,
                (&device.os_id, device.os_version_id.as_deref()),
                numbers,
                memo,
                device.findings_digest.as_deref(),
            );
            MatchedDevice {
                id: device.id,
                generation,
                inventory_digest: digest.clone(),
                findings_digest: matched.digest,
                previous_digest: device.findings_digest.clone(),
                packages: fresh.then(|| numbers.clone()),
                findings: matched.findings.unwrap_or_default(),
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
    use sentinel_advisories::osv;

    fn feeds() -> Feeds {
        let mut feeds = Feeds::default();
        for (id, package, fixed) in [
            ("DEBIAN-CVE-2024-1", "util-linux", "2.38.1-6"),
            ("DEBIAN-CVE-2024-2", "openssh", "1:9.2p1-2+deb12u3"),
        ] {
            let json = format!(
                r#"{{"id": "{id}", "modified": "2024-06-01T00:00:00Z", "summary": "a flaw",
                  "upstream": ["{cve}"],
                  "affected": [{{"package": {{"ecosystem": "Debian:12", "name": "{package}"}},
                    "ranges": [{{"type": "ECOSYSTEM", "events": [{{"introduced": "0"}}, {{"fixed": "{fixed}"}}]}}]}}]}}"#,
                cve = id.trim_start_matches("DEBIAN-"),
            );
            feeds
                .index
                .insert(osv::parse_str(&json).unwrap_or_else(|e| panic!("{e}")));
        }
        feeds
    }

    fn dpkg(name: &str, version: &str, source: &str, source_version: &str) -> Package {
        Package {
            manager: PackageManager::Dpkg,
            name: name.into(),
            version: version.into(),
            arch: Some("amd64".into()),
            source_name: Some(source.into()),
            source_version: Some(source_version.into()),
        }
    }

    fn installed() -> Vec<Package> {
        vec![
            dpkg("bsdutils", "1:2.38.1-5+b1", "util-linux", "2.38.1-5"),
            dpkg("util-linux", "2.38.1-5+b1", "util-linux", "2.38.1-5"),
            dpkg(
                "openssh-server",
                "1:9.2p1-2+deb12u3",
                "openssh",
                "1:9.2p1-2+deb12u3",
            ),
            dpkg("zlib1g", "1:1.2.13.dfsg-1", "zlib", "1:1.2.13.dfsg-1"),
        ]
    }

    #[test]
    fn a_device_is_matched_by_source_and_an_unchanged_match_builds_nothing() {
        let feeds = feeds();
        let mut numbering = Numbering::default();
        let numbers: Vec<u32> = installed().iter().map(|p| numbering.number(p)).collect();
        let mut memo = Memo::default();
        let debian = ("debian", Some("12"));
        let first = match_device(&feeds, &numbering, debian, &numbers, &mut memo, None);
        let findings = first.findings.unwrap_or_else(|| panic!("findings built"));
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].advisory_id, "DEBIAN-CVE-2024-1");
        assert_eq!(findings[0].package, "util-linux");
        assert_eq!(findings[0].binaries, ["bsdutils", "util-linux"]);
        assert_eq!(findings[0].installed_version, "2.38.1-5");
        assert_eq!(findings[0].fixed_version.as_deref(), Some("2.38.1-6"));
        assert_eq!(findings[0].release, "Debian:12");
        assert_eq!(findings[0].aliases, ["CVE-2024-1"]);

        // The same inventory, numbered in another order by another run: the
        // same digest, and nothing built when it is the stored one.
        let mut other = Numbering::default();
        let mut reversed = installed();
        reversed.reverse();
        let numbers: Vec<u32> = reversed.iter().map(|p| other.number(p)).collect();
        let again = match_device(
            &feeds,
            &other,
            debian,
            &numbers,
            &mut Memo::default(),
            Some(&first.digest),
        );
        assert_eq!(again.digest, first.digest);
        assert!(again.findings.is_none());

        // Another release, or none the feeds know: no findings, another digest.
        let bullseye = match_device(
            &feeds,
            &other,
            ("debian", Some("11")),
            &numbers,
            &mut Memo::default(),
            Some(&first.digest),
        );
        assert_eq!(bullseye.findings.map(|f| f.len()), Some(0));
        assert_ne!(bullseye.digest, first.digest);
    }

    #[test]
    fn a_changed_verdict_changes_the_digest() {
        let mut feeds = feeds();
        let mut numbering = Numbering::default();
        let numbers: Vec<u32> = installed().iter().map(|p| numbering.number(p)).collect();
        let debian = ("debian", Some("12"));
        let before = match_device(
            &feeds,
            &numbering,
            debian,
            &numbers,
            &mut Memo::default(),
            None,
        );
        // The advisory now says the fix is in a later version: same finding,
        // another fixed version, so the stored findings must be rewritten.
        let json = r#"{"id": "DEBIAN-CVE-2024-1", "modified": "2024-07-01T00:00:00Z", "summary": "a flaw",
            "upstream": ["CVE-2024-1"],
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "util-linux"},
              "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.38.1-7"}]}]}]}"#;
        feeds
            .index
            .insert(osv::parse_str(json).unwrap_or_else(|e| panic!("{e}")));
        let after = match_device(
            &feeds,
            &numbering,
            debian,
            &numbers,
            &mut Memo::default(),
            Some(&before.digest),
        );
        assert_ne!(after.digest, before.digest);
        let findings = after.findings.unwrap_or_default();
        assert_eq!(findings[0].fixed_version.as_deref(), Some("2.38.1-7"));
    }
}
