//! Deciding whether a version is affected by an OSV `affected` entry.
//!
//! The evaluation is the OSV schema's own algorithm (`IsVulnerable`): a version
//! is affected if it is in the entry's `versions` list or in any of its ranges.
//! Within a range, only versions below some `limit` can be affected (no limit
//! means no upper bound, and a limit containing `*` is infinity); the events
//! are sorted by version, and walking them in order, an `introduced` at or
//! below the version makes it affected, a `fixed` at or below it makes it
//! unaffected, and a `last_affected` below it makes it unaffected. That covers
//! `introduced: "0"` (before every version), several introduced/fixed pairs in
//! one range and events listed out of order. Where two events carry equal
//! versions, `introduced` is taken first, so `introduced: X, fixed: X` affects
//! nothing and `introduced: X, last_affected: X` affects only `X`.
//!
//! `ECOSYSTEM` ranges are ordered with the entry's distribution's rules (dpkg,
//! rpm or apk, from [`sentinel_versions`]) and `SEMVER` ranges with SemVer.
//! `GIT` ranges name commits, which say nothing about an installed package
//! without the repository's history, so they are ignored here, as are range
//! types this crate does not know.
//!
//! Every version in an entry is parsed once, when the entry is compiled into a
//! [`CompiledAffected`]; matching then only compares parsed versions. The
//! algorithm is written once, generic over what a range bound is, so that the
//! index in [`crate::matching`] runs the very same code over integer positions
//! among a package's versions. An entry
//! that cannot be evaluated faithfully — a version that does not parse in its
//! ecosystem, a range the schema forbids, an ecosystem this crate does not
//! support — is not guessed at: compiling it fails with a [`SkipReason`] for
//! the caller to report.

use std::cmp::Ordering;
use std::fmt;

use sentinel_versions::{
    ApkVersion, DebianVersion, Ecosystem, RpmVersion, SemVersion, VersionError,
};
use serde_json::{Map, Value};

use crate::ecosystem::{EcosystemError, EcosystemKey};
use crate::osv::{Affected, Event, Range, RangeType, Severity};

/// A version parsed with the rules of one ecosystem.
///
/// Versions of different ecosystems are not comparable: `partial_cmp` returns
/// `None` for them. `Display` shows the version as it was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Version {
    /// A dpkg version (Debian, Ubuntu).
    Debian(DebianVersion),
    /// An rpm EVR (Red Hat, Rocky Linux, AlmaLinux).
    Rpm(RpmVersion),
    /// An apk version (Alpine).
    Alpine(ApkVersion),
    /// A semantic version.
    SemVer(SemVersion),
}

impl Version {
    /// Parses `text` with the rules of `scheme`.
    pub fn parse(scheme: Ecosystem, text: &str) -> Result<Self, VersionError> {
        Ok(match scheme {
            Ecosystem::Debian => Version::Debian(DebianVersion::parse(text)?),
            Ecosystem::Rpm => Version::Rpm(RpmVersion::parse(text)?),
            Ecosystem::Alpine => Version::Alpine(ApkVersion::parse(text)?),
            Ecosystem::SemVer => Version::SemVer(SemVersion::parse(text)?),
        })
    }

    /// The ecosystem whose rules order this version.
    pub fn scheme(&self) -> Ecosystem {
        match self {
            Version::Debian(_) => Ecosystem::Debian,
            Version::Rpm(_) => Ecosystem::Rpm,
            Version::Alpine(_) => Ecosystem::Alpine,
            Version::SemVer(_) => Ecosystem::SemVer,
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Version::Debian(a), Version::Debian(b)) => Some(a.cmp(b)),
            (Version::Rpm(a), Version::Rpm(b)) => Some(a.cmp(b)),
            (Version::Alpine(a), Version::Alpine(b)) => Some(a.cmp(b)),
            (Version::SemVer(a), Version::SemVer(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Debian(v) => v.fmt(f),
            Version::Rpm(v) => v.fmt(f),
            Version::Alpine(v) => v.fmt(f),
            Version::SemVer(v) => v.fmt(f),
        }
    }
}

/// Why an `affected` entry was left out of matching.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// The entry names no package (the schema allows that for `GIT` ranges).
    #[error("the entry names no package")]
    NoPackage,
    /// The package's ecosystem is not one this crate matches.
    #[error(transparent)]
    Ecosystem(#[from] EcosystemError),
    /// A version in the entry does not parse in its ecosystem.
    #[error("version {version:?} is not a valid {scheme} version: {error}")]
    InvalidVersion {
        /// The version as written in the record.
        version: String,
        /// The ordering it was parsed for.
        scheme: Ecosystem,
        /// Why it was rejected.
        error: VersionError,
    },
    /// A range has no `introduced` event, which the schema requires.
    #[error("a {0} range has no `introduced` event")]
    NoIntroduced(RangeType),
    /// A range has both `fixed` and `last_affected` events, which the schema
    /// forbids.
    #[error("a {0} range has both `fixed` and `last_affected` events")]
    FixedAndLastAffected(RangeType),
    /// A `SEMVER` range in an ecosystem whose versions are not SemVer, so
    /// installed versions cannot be compared with it.
    #[error("a SEMVER range cannot be compared with {0} versions")]
    SemverRangeInEcosystem(Ecosystem),
    /// The entry has no version list and no range that can be evaluated (for
    /// instance only `GIT` ranges).
    #[error("the entry has no versions and no ECOSYSTEM or SEMVER ranges")]
    NothingToEvaluate,
}

/// What an affecting entry or range says about a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AffectedBy<'a> {
    /// The version that fixes it: in each range that affects the version, the
    /// smallest `fixed` above it, and the largest of those over the ranges.
    /// `None` when some affecting range has no fix above the version, or when
    /// the version is affected only through the `versions` list.
    pub fixed: Option<&'a Version>,
}

/// The ranges and versions list of an entry, parsed in one ordering.
#[derive(Debug, Clone)]
pub struct AffectedVersions {
    scheme: Ecosystem,
    ranges: Vec<CompiledRange>,
    /// Listed versions that no range covers, sorted for binary search.
    listed: Vec<Version>,
}

/// One range, with its versions parsed and its events sorted.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRange {
    /// Sorted by version, `introduced: "0"` first.
    pub(crate) events: Vec<Bound<Version>>,
    /// `None` is a `*` limit, infinity. Empty means no limit.
    pub(crate) limits: Vec<Option<Version>>,
}

/// A range event other than `limit`, over versions or (in the index's
/// per-package tables) over positions among a package's known versions.
#[derive(Debug, Clone)]
pub(crate) enum Bound<T> {
    /// `None` is `introduced: "0"`.
    Introduced(Option<T>),
    Fixed(T),
    LastAffected(T),
}

impl<T> Bound<T> {
    pub(crate) fn point(&self) -> Option<&T> {
        match self {
            Bound::Introduced(point) => point.as_ref(),
            Bound::Fixed(point) | Bound::LastAffected(point) => Some(point),
        }
    }

    /// The same bound at another kind of point.
    pub(crate) fn map<U>(&self, f: impl FnOnce(&T) -> U) -> Bound<U> {
        match self {
            Bound::Introduced(point) => Bound::Introduced(point.as_ref().map(f)),
            Bound::Fixed(point) => Bound::Fixed(f(point)),
            Bound::LastAffected(point) => Bound::LastAffected(f(point)),
        }
    }

    /// Among equal versions, `introduced` comes first (see the module docs).
    fn rank(&self) -> u8 {
        match self {
            Bound::Introduced(_) => 0,
            Bound::Fixed(_) | Bound::LastAffected(_) => 1,
        }
    }
}

/// The OSV algorithm for one range, given its sorted `events` and its
/// `limits`. `probe(point)` orders the version being checked against a point
/// of the range. Returns `None` if the version is not in the range, else the
/// smallest `fixed` above it, if any.
pub(crate) fn range_verdict<'r, T>(
    events: &'r [Bound<T>],
    limits: &[Option<T>],
    probe: impl Fn(&T) -> Ordering,
) -> Option<Option<&'r T>> {
    let below_a_limit = limits.is_empty()
        || limits
            .iter()
            .any(|limit| limit.as_ref().is_none_or(|l| probe(l) == Ordering::Less));
    if !below_a_limit {
        return None;
    }
    let mut affected = false;
    for event in events {
        match event {
            Bound::Introduced(None) => affected = true,
            Bound::Introduced(Some(introduced)) if probe(introduced) != Ordering::Less => {
                affected = true;
            }
            Bound::Fixed(fixed) if probe(fixed) != Ordering::Less => affected = false,
            Bound::LastAffected(last) if probe(last) == Ordering::Greater => affected = false,
            _ => {}
        }
    }
    affected.then(|| {
        events.iter().find_map(|event| match event {
            Bound::Fixed(fixed) if probe(fixed) == Ordering::Less => Some(fixed),
            _ => None,
        })
    })
}

/// The OSV algorithm for an entry: in any of its ranges (`(events, limits)`
/// pairs), or listed. Returns `None` if not affected, else the fix that
/// clears every affecting range (the largest of their fixes, as ordered by
/// `order`), or `None` if one of them has no fix.
pub(crate) fn entry_verdict<'r, T: 'r>(
    ranges: impl IntoIterator<Item = (&'r [Bound<T>], &'r [Option<T>])>,
    probe: impl Fn(&T) -> Ordering,
    order: impl Fn(&T, &T) -> Ordering,
    listed: impl FnOnce() -> bool,
) -> Option<Option<&'r T>> {
    let mut in_a_range = false;
    let mut unfixed = false;
    let mut fixed: Option<&T> = None;
    for (events, limits) in ranges {
        match range_verdict(events, limits, &probe) {
            None => {}
            Some(None) => {
                in_a_range = true;
                unfixed = true;
            }
            Some(Some(fix)) => {
                in_a_range = true;
                if fixed.is_none_or(|current| order(fix, current) == Ordering::Greater) {
                    fixed = Some(fix);
                }
            }
        }
    }
    if in_a_range {
        return Some(if unfixed { None } else { fixed });
    }
    listed().then_some(None)
}

/// Orders two versions of the same scheme (`Equal` for different schemes,
/// which compiled entries never mix).
pub(crate) fn order(a: &Version, b: &Version) -> Ordering {
    a.partial_cmp(b).unwrap_or(Ordering::Equal)
}

fn parse_in(scheme: Ecosystem, text: &str) -> Result<Version, SkipReason> {
    Version::parse(scheme, text).map_err(|error| SkipReason::InvalidVersion {
        version: text.to_owned(),
        scheme,
        error,
    })
}

impl CompiledRange {
    fn compile(range: &Range, scheme: Ecosystem) -> Result<Self, SkipReason> {
        let mut events = Vec::with_capacity(range.events.len());
        let mut limits = Vec::new();
        for event in &range.events {
            match event {
                Event::Introduced(text) if text == "0" => events.push(Bound::Introduced(None)),
                Event::Introduced(text) => {
                    events.push(Bound::Introduced(Some(parse_in(scheme, text)?)));
                }
                Event::Fixed(text) => events.push(Bound::Fixed(parse_in(scheme, text)?)),
                Event::LastAffected(text) => {
                    events.push(Bound::LastAffected(parse_in(scheme, text)?));
                }
                Event::Limit(text) if text.contains('*') => limits.push(None),
                Event::Limit(text) => limits.push(Some(parse_in(scheme, text)?)),
            }
        }
        if !events.iter().any(|e| matches!(e, Bound::Introduced(_))) {
            return Err(SkipReason::NoIntroduced(range.kind.clone()));
        }
        let has_fixed = events.iter().any(|e| matches!(e, Bound::Fixed(_)));
        let has_last = events.iter().any(|e| matches!(e, Bound::LastAffected(_)));
        if has_fixed && has_last {
            return Err(SkipReason::FixedAndLastAffected(range.kind.clone()));
        }
        // A stable sort by version, `introduced: "0"` first.
        events.sort_by(|a, b| {
            let by_version = match (a.point(), b.point()) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => order(x, y),
            };
            by_version.then(a.rank().cmp(&b.rank()))
        });
        Ok(CompiledRange { events, limits })
    }
}

impl AffectedVersions {
    /// Parses the ranges and versions list of an entry whose versions are
    /// ordered by `scheme`.
    ///
    /// `ECOSYSTEM` ranges use `scheme`; `SEMVER` ranges are accepted only when
    /// `scheme` is SemVer; `GIT` ranges and unknown range types are ignored.
    pub fn compile(
        scheme: Ecosystem,
        ranges: &[Range],
        versions: &[String],
    ) -> Result<Self, SkipReason> {
        let mut compiled = Vec::with_capacity(ranges.len());
        for range in ranges {
            match &range.kind {
                RangeType::Git | RangeType::Other(_) => {}
                RangeType::Semver if scheme != Ecosystem::SemVer => {
                    return Err(SkipReason::SemverRangeInEcosystem(scheme));
                }
                RangeType::Semver | RangeType::Ecosystem => {
                    compiled.push(CompiledRange::compile(range, scheme)?);
                }
            }
        }
        let mut listed = versions
            .iter()
            .map(|text| parse_in(scheme, text))
            .collect::<Result<Vec<_>, _>>()?;
        if compiled.is_empty() && listed.is_empty() {
            return Err(SkipReason::NothingToEvaluate);
        }
        // Listed versions inside a range add nothing; dropping them keeps the
        // long lists that feeds enumerate out of memory and out of the search.
        listed.retain(|v| {
            compiled
                .iter()
                .all(|range| range_verdict(&range.events, &range.limits, |p| order(v, p)).is_none())
        });
        listed.sort_by(order);
        listed.dedup();
        Ok(AffectedVersions {
            scheme,
            ranges: compiled,
            listed,
        })
    }

    /// The ordering the versions were parsed with.
    pub fn scheme(&self) -> Ecosystem {
        self.scheme
    }

    pub(crate) fn ranges(&self) -> &[CompiledRange] {
        &self.ranges
    }

    pub(crate) fn listed(&self) -> &[Version] {
        &self.listed
    }

    /// Whether `v` is affected, and by what fix it is resolved.
    ///
    /// A version of another scheme cannot be compared and is never affected.
    pub fn evaluate(&self, v: &Version) -> Option<AffectedBy<'_>> {
        if v.scheme() != self.scheme {
            return None;
        }
        let verdict = entry_verdict(
            self.ranges
                .iter()
                .map(|r| (r.events.as_slice(), r.limits.as_slice())),
            |point| order(v, point),
            order,
            || {
                self.listed
                    .binary_search_by(|probe| order(probe, v))
                    .is_ok()
            },
        );
        verdict.map(|fixed| AffectedBy { fixed })
    }
}

/// An `affected` entry of a distribution package, compiled for matching.
#[derive(Debug, Clone)]
pub struct CompiledAffected {
    key: EcosystemKey,
    ecosystem: String,
    package: String,
    versions: AffectedVersions,
    severity: Vec<Severity>,
    urgency: Option<String>,
}

impl CompiledAffected {
    /// Compiles an entry, or says why it cannot be matched.
    pub fn compile(affected: &Affected) -> Result<Self, SkipReason> {
        let package = affected.package.as_ref().ok_or(SkipReason::NoPackage)?;
        let key = EcosystemKey::from_osv(&package.ecosystem)?;
        let versions =
            AffectedVersions::compile(key.version_scheme(), &affected.ranges, &affected.versions)?;
        Ok(CompiledAffected {
            key,
            ecosystem: package.ecosystem.clone(),
            package: package.name.clone(),
            versions,
            severity: affected.severity.clone(),
            urgency: urgency(affected),
        })
    }

    /// The release the entry applies to.
    pub fn key(&self) -> &EcosystemKey {
        &self.key
    }

    /// The ecosystem string as written in the record.
    pub fn ecosystem(&self) -> &str {
        &self.ecosystem
    }

    /// The package name as written in the record.
    pub fn package(&self) -> &str {
        &self.package
    }

    /// The entry's own severity (empty when the record gives it at the top).
    pub fn severity(&self) -> &[Severity] {
        &self.severity
    }

    /// The distribution's urgency or priority for this package, as written:
    /// Debian's `urgency` (`low`, `unimportant`, `not yet assigned`, …) or the
    /// older Ubuntu `ubuntu_priority`, from `ecosystem_specific` or else
    /// `database_specific`.
    pub fn urgency(&self) -> Option<&str> {
        self.urgency.as_deref()
    }

    /// The parsed ranges and versions.
    pub fn versions(&self) -> &AffectedVersions {
        &self.versions
    }

    /// Whether `installed` is affected (see [`AffectedVersions::evaluate`]).
    pub fn evaluate(&self, installed: &Version) -> Option<AffectedBy<'_>> {
        self.versions.evaluate(installed)
    }
}

fn urgency(affected: &Affected) -> Option<String> {
    let string_at = |map: &Option<Map<String, Value>>, key: &str| {
        map.as_ref()?.get(key)?.as_str().map(str::to_owned)
    };
    ["urgency", "ubuntu_priority"].iter().find_map(|key| {
        string_at(&affected.ecosystem_specific, key)
            .or_else(|| string_at(&affected.database_specific, key))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, version: &str) -> Event {
        match kind {
            "introduced" => Event::Introduced(version.into()),
            "fixed" => Event::Fixed(version.into()),
            "last_affected" => Event::LastAffected(version.into()),
            _ => Event::Limit(version.into()),
        }
    }

    fn range(kind: RangeType, events: &[(&str, &str)]) -> Range {
        Range {
            kind,
            repo: None,
            events: events.iter().map(|(k, v)| event(k, v)).collect(),
            database_specific: None,
        }
    }

    fn compile(scheme: Ecosystem, ranges: &[Range], versions: &[&str]) -> AffectedVersions {
        let versions: Vec<String> = versions.iter().map(|v| (*v).to_owned()).collect();
        AffectedVersions::compile(scheme, ranges, &versions).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `Some(fixed)` when affected (`fixed` is `""` when there is no fix).
    fn check(compiled: &AffectedVersions, version: &str) -> Option<String> {
        let v = Version::parse(compiled.scheme(), version).unwrap_or_else(|e| panic!("{e}"));
        compiled
            .evaluate(&v)
            .map(|hit| hit.fixed.map(ToString::to_string).unwrap_or_default())
    }

    #[test]
    fn semver_ranges_follow_the_spec_examples() {
        let single = compile(
            Ecosystem::SemVer,
            &[range(
                RangeType::Semver,
                &[("introduced", "0"), ("fixed", "1.0.2")],
            )],
            &[],
        );
        assert_eq!(check(&single, "0.0.1"), Some("1.0.2".into()));
        assert_eq!(check(&single, "1.0.2-rc.1"), Some("1.0.2".into()));
        assert_eq!(check(&single, "1.0.2"), None);

        let pairs = compile(
            Ecosystem::SemVer,
            &[range(
                RangeType::Semver,
                &[
                    ("introduced", "1.0.0"),
                    ("fixed", "1.0.2"),
                    ("introduced", "3.0.0"),
                    ("fixed", "3.2.5"),
                ],
            )],
            &[],
        );
        assert_eq!(check(&pairs, "0.9.0"), None);
        assert_eq!(check(&pairs, "1.0.0"), Some("1.0.2".into()));
        assert_eq!(check(&pairs, "2.0.0"), None);
        assert_eq!(check(&pairs, "3.1.0"), Some("3.2.5".into()));
        assert_eq!(check(&pairs, "3.2.5"), None);
    }

    #[test]
    fn events_are_sorted_before_evaluation() {
        let shuffled = compile(
            Ecosystem::SemVer,
            &[range(
                RangeType::Semver,
                &[
                    ("fixed", "3.2.5"),
                    ("introduced", "3.0.0"),
                    ("fixed", "1.0.2"),
                    ("introduced", "1.0.0"),
                ],
            )],
            &[],
        );
        assert_eq!(check(&shuffled, "1.0.1"), Some("1.0.2".into()));
        assert_eq!(check(&shuffled, "2.0.0"), None);
        assert_eq!(check(&shuffled, "3.0.0"), Some("3.2.5".into()));
        assert_eq!(check(&shuffled, "4.0.0"), None);
    }

    #[test]
    fn last_affected_includes_the_version_itself() {
        let compiled = compile(
            Ecosystem::Debian,
            &[range(
                RangeType::Ecosystem,
                &[("introduced", "1.0-1"), ("last_affected", "1.2-3")],
            )],
            &[],
        );
        assert_eq!(check(&compiled, "0.9-1"), None);
        assert_eq!(check(&compiled, "1.0-1"), Some(String::new()));
        assert_eq!(check(&compiled, "1.2-3"), Some(String::new()));
        assert_eq!(check(&compiled, "1.2-3+deb12u1"), None);
    }

    #[test]
    fn limits_bound_the_range_from_above() {
        let compiled = compile(
            Ecosystem::Debian,
            &[range(
                RangeType::Ecosystem,
                &[("introduced", "0"), ("limit", "2.0-1")],
            )],
            &[],
        );
        assert_eq!(check(&compiled, "1.9-1"), Some(String::new()));
        assert_eq!(check(&compiled, "2.0-1"), None);
        assert_eq!(check(&compiled, "3.0-1"), None);

        // Several limits: below any of them counts; `*` is infinity.
        let several = compile(
            Ecosystem::Debian,
            &[range(
                RangeType::Ecosystem,
                &[("introduced", "0"), ("limit", "2.0"), ("limit", "5.0")],
            )],
            &[],
        );
        assert_eq!(check(&several, "4.0"), Some(String::new()));
        assert_eq!(check(&several, "5.0"), None);
        let star = compile(
            Ecosystem::Debian,
            &[range(
                RangeType::Ecosystem,
                &[("introduced", "0"), ("limit", "*")],
            )],
            &[],
        );
        assert_eq!(check(&star, "99"), Some(String::new()));
    }

    #[test]
    fn equal_introduced_and_fixed_affect_nothing() {
        let compiled = compile(
            Ecosystem::Debian,
            &[range(
                RangeType::Ecosystem,
                &[("fixed", "1.0"), ("introduced", "1.0")],
            )],
            &[],
        );
        assert_eq!(check(&compiled, "1.0"), None);
        assert_eq!(check(&compiled, "0.5"), None);
        let only = compile(
            Ecosystem::Debian,
            &[range(
                RangeType::Ecosystem,
                &[("last_affected", "1.0"), ("introduced", "1.0")],
            )],
            &[],
        );
        assert_eq!(check(&only, "1.0"), Some(String::new()));
        assert_eq!(check(&only, "1.0.1"), None);
    }

    #[test]
    fn dpkg_equal_spellings_compare_equal() {
        // dpkg: 1.0 == 1.00 and 1.0 == 1.0-0, so the fix applies to both.
        let compiled = compile(
            Ecosystem::Debian,
            &[range(
                RangeType::Ecosystem,
                &[("introduced", "0"), ("fixed", "1.0")],
            )],
            &["0.5-1"],
        );
        assert_eq!(check(&compiled, "1.00"), None);
        assert_eq!(check(&compiled, "1.0-0"), None);
        assert_eq!(check(&compiled, "0.99"), Some("1.0".into()));
    }

    #[test]
    fn the_versions_list_is_membership() {
        let compiled = compile(
            Ecosystem::Debian,
            &[range(
                RangeType::Ecosystem,
                &[("introduced", "2.0-1"), ("fixed", "2.0-3")],
            )],
            &["1.5-1", "1.5-2", "2.0-1"],
        );
        assert_eq!(check(&compiled, "1.5-1"), Some(String::new()));
        assert_eq!(check(&compiled, "1.5-2"), Some(String::new()));
        assert_eq!(check(&compiled, "1.5-1.1"), None);
        assert_eq!(check(&compiled, "2.0-2"), Some("2.0-3".into()));
        // Covered by the range, so not stored twice.
        assert_eq!(compiled.listed.len(), 2);

        let only_list = compile(Ecosystem::Alpine, &[], &["1.2.3-r4", "1.2.3-r0"]);
        assert_eq!(check(&only_list, "1.2.3-r4"), Some(String::new()));
        assert_eq!(check(&only_list, "1.2.3-r3"), None);
    }

    #[test]
    fn the_fix_reported_is_the_largest_needed_across_ranges() {
        let compiled = compile(
            Ecosystem::Debian,
            &[
                range(
                    RangeType::Ecosystem,
                    &[("introduced", "0"), ("fixed", "2.0")],
                ),
                range(
                    RangeType::Ecosystem,
                    &[("introduced", "1.0"), ("fixed", "2.5")],
                ),
            ],
            &[],
        );
        assert_eq!(check(&compiled, "0.5"), Some("2.0".into()));
        assert_eq!(check(&compiled, "1.5"), Some("2.5".into()));
        assert_eq!(check(&compiled, "2.2"), Some("2.5".into()));

        let one_unfixed = compile(
            Ecosystem::Debian,
            &[
                range(
                    RangeType::Ecosystem,
                    &[("introduced", "0"), ("fixed", "2.0")],
                ),
                range(RangeType::Ecosystem, &[("introduced", "1.0")]),
            ],
            &[],
        );
        assert_eq!(check(&one_unfixed, "1.5"), Some(String::new()));
    }

    #[test]
    fn git_ranges_are_ignored() {
        let git = range(RangeType::Git, &[("introduced", "0"), ("fixed", "abcdef")]);
        assert_eq!(
            AffectedVersions::compile(Ecosystem::Debian, std::slice::from_ref(&git), &[]).err(),
            Some(SkipReason::NothingToEvaluate)
        );
        let mixed = compile(
            Ecosystem::Debian,
            &[
                git,
                range(
                    RangeType::Ecosystem,
                    &[("introduced", "0"), ("fixed", "1.0-2")],
                ),
            ],
            &[],
        );
        assert_eq!(check(&mixed, "1.0-1"), Some("1.0-2".into()));
    }

    #[test]
    fn invalid_entries_are_skipped_with_a_reason() {
        let scheme = Ecosystem::Debian;
        let unparsable = range(
            RangeType::Ecosystem,
            &[("introduced", "0"), ("fixed", "not a version")],
        );
        assert!(matches!(
            AffectedVersions::compile(scheme, &[unparsable], &[]),
            Err(SkipReason::InvalidVersion { version, .. }) if version == "not a version"
        ));
        assert!(matches!(
            AffectedVersions::compile(scheme, &[], &["1.0".into(), "".into()]),
            Err(SkipReason::InvalidVersion { version, .. }) if version.is_empty()
        ));
        let no_introduced = range(RangeType::Ecosystem, &[("fixed", "1.0")]);
        assert_eq!(
            AffectedVersions::compile(scheme, &[no_introduced], &[]).err(),
            Some(SkipReason::NoIntroduced(RangeType::Ecosystem))
        );
        let both = range(
            RangeType::Ecosystem,
            &[
                ("introduced", "0"),
                ("fixed", "1.0"),
                ("last_affected", "0.9"),
            ],
        );
        assert_eq!(
            AffectedVersions::compile(scheme, &[both], &[]).err(),
            Some(SkipReason::FixedAndLastAffected(RangeType::Ecosystem))
        );
        let semver = range(
            RangeType::Semver,
            &[("introduced", "0"), ("fixed", "1.0.0")],
        );
        assert_eq!(
            AffectedVersions::compile(scheme, &[semver], &[]).err(),
            Some(SkipReason::SemverRangeInEcosystem(Ecosystem::Debian))
        );
        assert_eq!(
            AffectedVersions::compile(scheme, &[], &[]).err(),
            Some(SkipReason::NothingToEvaluate)
        );
        let message = AffectedVersions::compile(
            scheme,
            &[range(
                RangeType::Ecosystem,
                &[("introduced", "0"), ("fixed", "1:")],
            )],
            &[],
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            message.as_deref(),
            Some("version \"1:\" is not a valid Debian version: version number is empty")
        );
    }

    #[test]
    fn versions_of_another_scheme_are_never_affected() {
        let compiled = compile(
            Ecosystem::Debian,
            &[range(RangeType::Ecosystem, &[("introduced", "0")])],
            &[],
        );
        let rpm = Version::parse(Ecosystem::Rpm, "1.0-1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(compiled.evaluate(&rpm), None);
    }

    #[test]
    fn urgency_is_read_as_written() {
        let affected: Affected = serde_json::from_str(
            r#"{"package": {"ecosystem": "Debian:12", "name": "glibc"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                "ecosystem_specific": {"urgency": "unimportant"}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let compiled = CompiledAffected::compile(&affected).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(compiled.urgency(), Some("unimportant"));
        assert_eq!(compiled.package(), "glibc");
        assert_eq!(compiled.ecosystem(), "Debian:12");

        let ubuntu: Affected = serde_json::from_str(
            r#"{"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "glibc"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                "database_specific": {"ubuntu_priority": "negligible"},
                "ecosystem_specific": {"urgency": 3}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let compiled = CompiledAffected::compile(&ubuntu).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(compiled.urgency(), Some("negligible"));
    }

    #[test]
    fn entries_without_package_or_with_other_ecosystems_are_skipped() {
        let no_package: Affected = serde_json::from_str(
            r#"{"ranges": [{"type": "GIT", "repo": "r", "events": [{"introduced": "0"}]}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            CompiledAffected::compile(&no_package).err(),
            Some(SkipReason::NoPackage)
        );
        let npm: Affected = serde_json::from_str(
            r#"{"package": {"ecosystem": "npm", "name": "left-pad"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            CompiledAffected::compile(&npm).err(),
            Some(SkipReason::Ecosystem(EcosystemError::Unsupported(
                "npm".into()
            )))
        );
    }
}
