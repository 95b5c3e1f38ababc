//! Finding the advisories that affect an installed package.
//!
//! Records are compiled once ([`CompiledAdvisory`]) and gathered in an
//! [`AdvisoryIndex`] keyed by release ([`EcosystemKey`]) and package name, so
//! that a query is a hash look-up, a binary search among the versions that the
//! package's advisories name, and integer comparisons.
//!
//! What the caller must supply is the name the advisories use:
//!
//! - Debian, Ubuntu and Alpine advisories name **source** packages:
//!   `openssh-server` and `openssh-client` are built from `openssh`, `bsdutils`
//!   from `util-linux`, `libssl3` from `openssl`. Query with the source name
//!   and source version (dpkg's `Source:` field, see
//!   [`SourcePackage::from_dpkg`]; apk's origin). Querying with binary names
//!   would miss most advisories, and matching binary names against source
//!   names is how scanners end up attributing one package's flaws to another.
//! - Red Hat, Rocky Linux and AlmaLinux advisories list every **binary** RPM
//!   (`openssl`, `openssl-libs`, `openssl-devel`), so query with the name of
//!   the installed RPM and its `[epoch:]version-release`.
//!
//! A fleet scan should query each distinct (release, package, version) once
//! and share the answer among the devices that have it: devices of one fleet
//! run the same few builds, so deduplicating turns millions of queries (and
//! version parses) into a few hundred thousand. `examples/match_scale.rs` measures both.
//!
//! A match carries what the record says and nothing more: its id, aliases and
//! CVE ids, the installed version, the version that fixes it if the record
//! gives one, and severity as written (the record's `severity` scores, and the
//! distribution's urgency or priority where the entry has one). Withdrawn
//! records are never matched.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use sentinel_versions::Ecosystem;

use crate::ecosystem::EcosystemKey;
use crate::osv::{Severity, Timestamp, Vulnerability, cve_ids};
use crate::range::{Bound, CompiledAffected, SkipReason, Version, entry_verdict, order};

/// An OSV record compiled for matching: the fields a match reports, and its
/// `affected` entries with their versions parsed.
#[derive(Debug, Clone)]
pub struct CompiledAdvisory {
    id: String,
    modified: Timestamp,
    summary: Option<String>,
    aliases: Vec<String>,
    upstream: Vec<String>,
    related: Vec<String>,
    severity: Vec<Severity>,
    /// Shared with the index's lookup tables, which point at entries directly.
    affected: Vec<Arc<CompiledAffected>>,
}

/// An `affected` entry that was left out of matching, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    /// The record's id.
    pub advisory_id: String,
    /// The entry's position in the record's `affected` array.
    pub index: usize,
    /// The entry's ecosystem string, if it has a package.
    pub ecosystem: Option<String>,
    /// The entry's package name, if it has a package.
    pub package: Option<String>,
    /// Why it was skipped.
    pub reason: SkipReason,
}

impl CompiledAdvisory {
    /// Compiles a record. Entries that cannot be matched faithfully are left
    /// out and returned with their reasons; the rest still match.
    ///
    /// Withdrawn records compile like others; [`AdvisoryIndex::insert`] is
    /// what keeps them out of matching.
    pub fn compile(record: Vulnerability) -> (Self, Vec<SkippedEntry>) {
        let mut affected = Vec::with_capacity(record.affected.len());
        let mut skipped = Vec::new();
        for (index, entry) in record.affected.iter().enumerate() {
            match CompiledAffected::compile(entry) {
                Ok(compiled) => affected.push(Arc::new(compiled)),
                Err(reason) => skipped.push(SkippedEntry {
                    advisory_id: record.id.clone(),
                    index,
                    ecosystem: entry.package.as_ref().map(|p| p.ecosystem.clone()),
                    package: entry.package.as_ref().map(|p| p.name.clone()),
                    reason,
                }),
            }
        }
        let advisory = CompiledAdvisory {
            id: record.id,
            modified: record.modified,
            summary: record.summary,
            aliases: record.aliases,
            upstream: record.upstream,
            related: record.related,
            severity: record.severity,
            affected,
        };
        (advisory, skipped)
    }

    /// The record's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When the record last changed.
    pub fn modified(&self) -> &Timestamp {
        &self.modified
    }

    /// The record's summary.
    pub fn summary(&self) -> Option<&str> {
        self.summary.as_deref()
    }

    /// Ids of the same vulnerability elsewhere (`aliases`).
    pub fn aliases(&self) -> &[String] {
        &self.aliases
    }

    /// Upstream vulnerability ids (`upstream`; distributions put CVEs here).
    pub fn upstream(&self) -> &[String] {
        &self.upstream
    }

    /// Related ids (`related`).
    pub fn related(&self) -> &[String] {
        &self.related
    }

    /// The record-level severity scores.
    pub fn severity(&self) -> &[Severity] {
        &self.severity
    }

    /// The entries that can be matched.
    pub fn affected(&self) -> impl ExactSizeIterator<Item = &CompiledAffected> {
        self.affected.iter().map(|entry| entry.as_ref())
    }

    /// CVE ids of the record (see [`Vulnerability::cve_ids`]).
    pub fn cve_ids(&self) -> Vec<&str> {
        cve_ids(&self.id, &self.aliases, &self.upstream, &self.related)
    }

    /// Whether `package` at `installed` in release `key` is affected, without
    /// an index.
    pub fn matches<'a>(
        &'a self,
        key: &EcosystemKey,
        package: &str,
        installed: &'a Version,
    ) -> Option<AdvisoryMatch<'a>> {
        let hits = self
            .affected()
            .filter(|entry| entry.key() == key && entry.package() == package)
            .filter_map(|entry| entry.evaluate(installed).map(|hit| (entry, hit.fixed)));
        combine(self, hits, installed)
    }
}

/// Merges the affecting entries of one advisory for one package (Red Hat
/// lists `appstream` and `baseos` separately) into one match, fixed only by a
/// version that fixes every affecting entry.
fn combine<'a>(
    advisory: &'a CompiledAdvisory,
    mut hits: impl Iterator<Item = (&'a CompiledAffected, Option<&'a Version>)>,
    installed: &'a Version,
) -> Option<AdvisoryMatch<'a>> {
    let (entry, mut fixed) = hits.next()?;
    for (_, other) in hits {
        fixed = match (fixed, other) {
            (Some(a), Some(b)) => Some(if b > a { b } else { a }),
            _ => None,
        };
    }
    Some(AdvisoryMatch {
        advisory,
        entry,
        installed,
        fixed,
    })
}

/// An advisory that affects an installed package.
#[derive(Debug, Clone, Copy)]
pub struct AdvisoryMatch<'a> {
    /// The advisory (id, aliases, summary, …).
    pub advisory: &'a CompiledAdvisory,
    /// The advisory's entry that matched (the first, if several did).
    pub entry: &'a CompiledAffected,
    /// The installed version that was checked.
    pub installed: &'a Version,
    /// The version that fixes it (the smallest `fixed` above the installed
    /// version), or `None` if the record knows no fix for it.
    pub fixed: Option<&'a Version>,
}

impl<'a> AdvisoryMatch<'a> {
    /// The advisory id.
    pub fn id(&self) -> &'a str {
        self.advisory.id()
    }

    /// CVE ids of the advisory (see [`Vulnerability::cve_ids`]).
    pub fn cve_ids(&self) -> Vec<&'a str> {
        self.advisory.cve_ids()
    }

    /// The ecosystem string of the matching entry, as written in the record.
    pub fn ecosystem(&self) -> &'a str {
        self.entry.ecosystem()
    }

    /// The package name as written in the record.
    pub fn package(&self) -> &'a str {
        self.entry.package()
    }

    /// Severity scores: the entry's own, else the record's; possibly empty.
    pub fn severity(&self) -> &'a [Severity] {
        match self.entry.severity() {
            [] => self.advisory.severity(),
            own => own,
        }
    }

    /// The distribution's urgency or priority for the package, as written
    /// (see [`CompiledAffected::urgency`]).
    pub fn urgency(&self) -> Option<&'a str> {
        self.entry.urgency()
    }

    /// The fixed version as written in the record.
    pub fn fixed_version(&self) -> Option<String> {
        self.fixed.map(ToString::to_string)
    }
}

/// The source package of an installed Debian or Ubuntu binary package, which
/// is what their advisories name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePackage {
    /// The source package name.
    pub name: String,
    /// The source version.
    pub version: String,
}

impl SourcePackage {
    /// Works out the source package from dpkg's `Package`, `Version` and
    /// `Source` fields (`dpkg-query -W -f='${Package} ${Version} ${Source}'`).
    ///
    /// `Source` is empty when the source has the binary's name, is just a name
    /// when it has the binary's version, and is `name (version)` when the
    /// versions differ (binary-only rebuilds such as `1.2-3+b1` are built from
    /// source `1.2-3`).
    pub fn from_dpkg(package: &str, version: &str, source: Option<&str>) -> Self {
        let source = source.map(str::trim).unwrap_or_default();
        let (name, source_version) = match source.split_once('(') {
            Some((name, rest)) => (name.trim(), rest.trim_end().strip_suffix(')')),
            None => (source, None),
        };
        let name = if name.is_empty() { package } else { name };
        let version = source_version
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .unwrap_or(version);
        SourcePackage {
            name: name.to_owned(),
            version: version.to_owned(),
        }
    }
}

/// One package in one release: the entries naming it, grouped by record, and
/// the table that queries use, built on the first query after a change.
#[derive(Debug, Default)]
struct Bucket {
    postings: Vec<Posting>,
    table: OnceLock<Table>,
}

/// The entries of one record that name one package in one release.
#[derive(Debug, Clone)]
struct Posting {
    advisory: Arc<CompiledAdvisory>,
    entries: Vec<Arc<CompiledAffected>>,
}

/// A bucket's entries restated over positions among the versions they name.
///
/// Whether a version is affected depends only on how it compares with the
/// versions the entries name. Those are sorted once into `breakpoints`; a
/// query finds the installed version's position among them with one binary
/// search and then evaluates every entry by comparing small integers, over
/// arrays laid out in the order they are read, instead of comparing version
/// strings scattered over the heap. Position `2i + 1` means "equal to
/// breakpoint `i`", position `2i` "between breakpoints `i - 1` and `i`".
#[derive(Debug, Default)]
struct Table {
    breakpoints: Vec<Version>,
    /// The `fixed` versions as each record spells them (`1.0` and `1.00`
    /// are one breakpoint but two spellings).
    fixes: Vec<Version>,
    /// In posting order, so one record's entries are adjacent.
    entries: Vec<TableEntry>,
    ranges: Vec<TableRange>,
    bounds: Vec<Bound<Point>>,
    limits: Vec<Option<Point>>,
    /// Breakpoint indexes of listed versions, sorted per entry.
    listed: Vec<u32>,
}

#[derive(Debug)]
struct TableEntry {
    advisory: Arc<CompiledAdvisory>,
    entry: Arc<CompiledAffected>,
    ranges: Range<usize>,
    listed: Range<usize>,
}

#[derive(Debug)]
struct TableRange {
    bounds: Range<usize>,
    limits: Range<usize>,
}

/// A version of a range as its breakpoint index, and for `fixed` its index in
/// `Table::fixes`.
#[derive(Debug, Clone, Copy)]
struct Point {
    at: u32,
    fix: u32,
}

fn as_u32(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

impl Table {
    fn build(postings: &[Posting]) -> Self {
        let all_entries = || {
            postings
                .iter()
                .flat_map(|posting| posting.entries.iter().map(move |e| (posting, e)))
        };
        let mut breakpoints = Vec::new();
        for (_, entry) in all_entries() {
            let versions = entry.versions();
            for range in versions.ranges() {
                breakpoints.extend(range.events.iter().filter_map(Bound::point).cloned());
                breakpoints.extend(range.limits.iter().flatten().cloned());
            }
            breakpoints.extend(versions.listed().iter().cloned());
        }
        breakpoints.sort_by(order);
        breakpoints.dedup();

        let mut table = Table::default();
        let at = |v: &Version| {
            as_u32(
                breakpoints
                    .binary_search_by(|b| order(b, v))
                    .unwrap_or_default(),
            )
        };
        for (posting, entry) in all_entries() {
            let versions = entry.versions();
            let first_range = table.ranges.len();
            for range in versions.ranges() {
                let first_bound = table.bounds.len();
                for bound in &range.events {
                    let fix = match bound {
                        Bound::Fixed(version) => {
                            table.fixes.push(version.clone());
                            as_u32(table.fixes.len() - 1)
                        }
                        _ => u32::MAX,
                    };
                    table.bounds.push(bound.map(|v| Point { at: at(v), fix }));
                }
                let first_limit = table.limits.len();
                table.limits.extend(range.limits.iter().map(|limit| {
                    limit.as_ref().map(|v| Point {
                        at: at(v),
                        fix: u32::MAX,
                    })
                }));
                table.ranges.push(TableRange {
                    bounds: first_bound..table.bounds.len(),
                    limits: first_limit..table.limits.len(),
                });
            }
            let first_listed = table.listed.len();
            table.listed.extend(versions.listed().iter().map(at));
            table.entries.push(TableEntry {
                advisory: Arc::clone(&posting.advisory),
                entry: Arc::clone(entry),
                ranges: first_range..table.ranges.len(),
                listed: first_listed..table.listed.len(),
            });
        }
        table.breakpoints = breakpoints;
        table
    }

    fn query<'a>(&'a self, installed: &'a Version) -> Vec<AdvisoryMatch<'a>> {
        let position = match self.breakpoints.binary_search_by(|b| order(b, installed)) {
            Ok(index) => 2 * index as u64 + 1,
            Err(index) => 2 * index as u64,
        };
        let probe = |point: &Point| position.cmp(&(2 * u64::from(point.at) + 1));
        let by_place = |a: &Point, b: &Point| a.at.cmp(&b.at);

        let mut found = Vec::new();
        let same_record = |a: &TableEntry, b: &TableEntry| Arc::ptr_eq(&a.advisory, &b.advisory);
        for entries in self.entries.chunk_by(same_record) {
            let Some(advisory) = entries.first().map(|e| e.advisory.as_ref()) else {
                continue;
            };
            let hits = entries.iter().filter_map(|entry| {
                let ranges = self.ranges.get(entry.ranges.clone())?.iter().map(|range| {
                    let bounds = self.bounds.get(range.bounds.clone()).unwrap_or_default();
                    let limits = self.limits.get(range.limits.clone()).unwrap_or_default();
                    (bounds, limits)
                });
                let listed = || {
                    position % 2 == 1
                        && self.listed.get(entry.listed.clone()).is_some_and(|listed| {
                            u32::try_from(position / 2)
                                .is_ok_and(|i| listed.binary_search(&i).is_ok())
                        })
                };
                let verdict = entry_verdict(ranges, probe, by_place, listed)?;
                let fixed = verdict.and_then(|point| self.fixes.get(point.fix as usize));
                Some((entry.entry.as_ref(), fixed))
            });
            found.extend(combine(advisory, hits, installed));
        }
        found
    }
}

impl Bucket {
    /// The postings changed: the table must be rebuilt.
    fn invalidate(&mut self) {
        self.table = OnceLock::new();
    }

    fn query<'a>(&'a self, installed: &'a Version) -> Vec<AdvisoryMatch<'a>> {
        self.table
            .get_or_init(|| Table::build(&self.postings))
            .query(installed)
    }
}

type Packages = HashMap<String, Bucket>;

/// Many advisories, indexed by release and package name.
///
/// Each record id is held once: a record with a later `modified` replaces the
/// one held, an older or equally old one is ignored, and a withdrawn record
/// removes the id (and is remembered, so that an older copy arriving later
/// does not bring it back).
///
/// The index is `Send` and `Sync`, so one index can serve queries from many
/// threads. The first query of a package after records naming it changed
/// builds that package's lookup table; later queries only read it.
#[derive(Debug, Default)]
pub struct AdvisoryIndex {
    advisories: HashMap<String, Arc<CompiledAdvisory>>,
    withdrawn: HashMap<String, Timestamp>,
    releases: HashMap<EcosystemKey, Packages>,
}

/// What [`AdvisoryIndex::insert`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The id was new.
    Added,
    /// An older record with the id was replaced.
    Replaced,
    /// The index already had this id at the same or a later `modified`.
    Stale,
    /// The record is withdrawn; the id was removed if it was held.
    Withdrawn,
}

/// The result of inserting a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insertion {
    /// What happened to the record.
    pub outcome: InsertOutcome,
    /// Entries of an added or replacing record that cannot be matched.
    pub skipped: Vec<SkippedEntry>,
}

/// One release of an index, to query many packages of one device without
/// looking its release up each time.
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    scheme: Ecosystem,
    packages: &'a Packages,
}

impl<'a> Release<'a> {
    /// The advisories affecting `package` at `installed` (see
    /// [`AdvisoryIndex::query`]).
    pub fn query(&self, package: &str, installed: &'a Version) -> Vec<AdvisoryMatch<'a>> {
        if installed.scheme() != self.scheme {
            return Vec::new();
        }
        match self.packages.get(package) {
            Some(bucket) => bucket.query(installed),
            None => Vec::new(),
        }
    }
}

impl AdvisoryIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of advisories held.
    pub fn len(&self) -> usize {
        self.advisories.len()
    }

    /// Whether no advisory is held.
    pub fn is_empty(&self) -> bool {
        self.advisories.is_empty()
    }

    /// The advisory held under `id`.
    pub fn get(&self, id: &str) -> Option<&CompiledAdvisory> {
        self.advisories.get(id).map(|advisory| advisory.as_ref())
    }

    /// Adds a record, replacing an older one with its id (see the type's
    /// documentation for the rules).
    pub fn insert(&mut self, record: Vulnerability) -> Insertion {
        let stale = |held: Option<&Timestamp>| held.is_some_and(|held| *held >= record.modified);
        if stale(self.advisories.get(&record.id).map(|a| &a.modified))
            || stale(self.withdrawn.get(&record.id))
        {
            return Insertion {
                outcome: InsertOutcome::Stale,
                skipped: Vec::new(),
            };
        }
        if record.is_withdrawn() {
            self.remove(&record.id);
            self.withdrawn.insert(record.id, record.modified);
            return Insertion {
                outcome: InsertOutcome::Withdrawn,
                skipped: Vec::new(),
            };
        }
        self.withdrawn.remove(&record.id);
        let replaced = self.remove(&record.id);
        let (advisory, skipped) = CompiledAdvisory::compile(record);
        let advisory = Arc::new(advisory);

        // Entries of one record for the same package in the same release
        // share a posting, so that a query reports the record once.
        let mut postings: Vec<Posting> = Vec::new();
        for entry in &advisory.affected {
            let same_package = |p: &&mut Posting| {
                p.entries
                    .first()
                    .is_some_and(|e| e.key() == entry.key() && e.package() == entry.package())
            };
            match postings.iter_mut().find(same_package) {
                Some(posting) => posting.entries.push(Arc::clone(entry)),
                None => postings.push(Posting {
                    advisory: Arc::clone(&advisory),
                    entries: vec![Arc::clone(entry)],
                }),
            }
        }
        for posting in postings {
            let Some(first) = posting.entries.first() else {
                continue;
            };
            let bucket = self
                .releases
                .entry(first.key().clone())
                .or_default()
                .entry(first.package().to_owned())
                .or_default();
            bucket.postings.push(posting);
            bucket.invalidate();
        }
        self.advisories.insert(advisory.id.clone(), advisory);
        Insertion {
            outcome: if replaced {
                InsertOutcome::Replaced
            } else {
                InsertOutcome::Added
            },
            skipped,
        }
    }

    /// Removes the advisory held under `id`; returns whether there was one.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(advisory) = self.advisories.remove(id) else {
            return false;
        };
        for entry in &advisory.affected {
            let Entry::Occupied(mut release) = self.releases.entry(entry.key().clone()) else {
                continue;
            };
            if let Entry::Occupied(mut slot) = release.get_mut().entry(entry.package().to_owned()) {
                let bucket = slot.get_mut();
                bucket
                    .postings
                    .retain(|posting| !Arc::ptr_eq(&posting.advisory, &advisory));
                bucket.invalidate();
                if bucket.postings.is_empty() {
                    slot.remove();
                }
            }
            if release.get().is_empty() {
                release.remove();
            }
        }
        true
    }

    /// The advisories affecting `package` at version `installed` on a device
    /// of release `key`, one match per advisory.
    ///
    /// `package` is the source package for Debian, Ubuntu and Alpine and the
    /// binary RPM for the rpm distributions (see the [module documentation](self)).
    /// `installed` must be parsed with `key`'s version scheme
    /// ([`EcosystemKey::parse_version`]); a version of another scheme matches
    /// nothing.
    pub fn query<'a>(
        &'a self,
        key: &EcosystemKey,
        package: &str,
        installed: &'a Version,
    ) -> Vec<AdvisoryMatch<'a>> {
        self.release(key)
            .map(|release| release.query(package, installed))
            .unwrap_or_default()
    }

    /// The advisories of one release, if the index has any.
    pub fn release(&self, key: &EcosystemKey) -> Option<Release<'_>> {
        self.releases.get(key).map(|packages| Release {
            scheme: key.version_scheme(),
            packages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osv;

    fn record(id: &str, fixed: &str) -> Vulnerability {
        osv::parse_str(&format!(
            r#"{{"id": "{id}", "modified": "2024-01-01T00:00:00Z", "severity": [{{"type": "CVSS_V3", "score": "x"}}],
                "affected": [{{"package": {{"ecosystem": "Debian:12", "name": "foo"}},
                  "ranges": [{{"type": "ECOSYSTEM", "events": [{{"introduced": "0"}}, {{"fixed": "{fixed}"}}]}}]}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn each_match_reports_the_fix_as_its_own_record_spells_it() {
        // dpkg: 1.0-1 == 1.00-1, one breakpoint in the table, two spellings.
        let mut index = AdvisoryIndex::new();
        index.insert(record("A-1", "1.0-1"));
        index.insert(record("B-1", "1.00-1"));
        let key = EcosystemKey::from_osv("Debian:12").unwrap();
        let installed = key.parse_version("0.9-1").unwrap();
        let mut found: Vec<_> = index
            .query(&key, "foo", &installed)
            .iter()
            .map(|m| (m.id(), m.fixed_version()))
            .collect();
        found.sort();
        assert_eq!(
            found,
            vec![
                ("A-1", Some("1.0-1".into())),
                ("B-1", Some("1.00-1".into()))
            ]
        );
        let fixed = key.parse_version("1.00-1").unwrap();
        assert!(index.query(&key, "foo", &fixed).is_empty());
    }

    #[test]
    fn a_record_matches_without_an_index_too() {
        let (advisory, skipped) = CompiledAdvisory::compile(record("A-1", "1.0-1"));
        assert!(skipped.is_empty());
        let key = EcosystemKey::from_osv("Debian:12").unwrap();
        let installed = key.parse_version("0.9-1").unwrap();
        let m = advisory.matches(&key, "foo", &installed).unwrap();
        assert_eq!(m.fixed_version().as_deref(), Some("1.0-1"));
        assert_eq!(m.severity().len(), 1);
        assert_eq!(m.urgency(), None);
        assert!(advisory.matches(&key, "bar", &installed).is_none());
        let other = EcosystemKey::from_osv("Debian:11").unwrap();
        assert!(advisory.matches(&other, "foo", &installed).is_none());
    }

    #[test]
    fn versions_of_another_scheme_match_nothing() {
        let mut index = AdvisoryIndex::new();
        index.insert(record("A-1", "1.0-1"));
        let key = EcosystemKey::from_osv("Debian:12").unwrap();
        let rpm = Version::parse(Ecosystem::Rpm, "0.9-1").unwrap();
        assert!(index.query(&key, "foo", &rpm).is_empty());
    }

    #[test]
    fn the_index_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<AdvisoryIndex>();
        assert_send_sync::<AdvisoryMatch<'_>>();
    }

    #[test]
    fn dpkg_source_fields_are_read() {
        let plain = SourcePackage::from_dpkg("openssl", "3.0.11-1~deb12u2", None);
        assert_eq!(
            (plain.name.as_str(), plain.version.as_str()),
            ("openssl", "3.0.11-1~deb12u2")
        );
        let named =
            SourcePackage::from_dpkg("openssh-server", "1:9.2p1-2+deb12u3", Some("openssh"));
        assert_eq!(
            (named.name.as_str(), named.version.as_str()),
            ("openssh", "1:9.2p1-2+deb12u3")
        );
        let binnmu = SourcePackage::from_dpkg("libfoo1", "1.2-3+b1", Some("foo (1.2-3)"));
        assert_eq!(
            (binnmu.name.as_str(), binnmu.version.as_str()),
            ("foo", "1.2-3")
        );
        let blank = SourcePackage::from_dpkg("bash", "5.2.15-2+b7", Some("  "));
        assert_eq!(
            (blank.name.as_str(), blank.version.as_str()),
            ("bash", "5.2.15-2+b7")
        );
        let odd = SourcePackage::from_dpkg("x", "1", Some("y ()"));
        assert_eq!((odd.name.as_str(), odd.version.as_str()), ("y", "1"));
    }
}
