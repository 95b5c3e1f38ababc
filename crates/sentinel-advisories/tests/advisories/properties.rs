//! Property tests: no input panics the parsers or the matcher, and matching
//! agrees with a direct transcription of the OSV specification's pseudocode.

// Test helpers outside `#[test]` functions fail loudly too.

use std::cmp::Ordering;

use proptest::prelude::*;
use sentinel_advisories::osv::{self, Timestamp};
use sentinel_advisories::{
    AdvisoryIndex, Date, Ecosystem, EcosystemKey, KevCatalog, SourcePackage, Version,
};
use sentinel_versions::compare;
use serde_json::{Map, Value, json};

/// Field names of OSV and KEV documents, so that random documents often have
/// the right shape in places and exercise more than the first type check.
const KEYS: &[&str] = &[
    "id",
    "modified",
    "published",
    "withdrawn",
    "aliases",
    "upstream",
    "related",
    "summary",
    "severity",
    "type",
    "score",
    "affected",
    "package",
    "ecosystem",
    "name",
    "purl",
    "ranges",
    "events",
    "introduced",
    "fixed",
    "last_affected",
    "limit",
    "versions",
    "ecosystem_specific",
    "database_specific",
    "urgency",
    "title",
    "catalogVersion",
    "dateReleased",
    "count",
    "vulnerabilities",
    "cveID",
    "dateAdded",
    "dueDate",
    "cwes",
];

const STRINGS: &[&str] = &[
    "0",
    "*",
    "ECOSYSTEM",
    "SEMVER",
    "GIT",
    "Debian:12",
    "Ubuntu:22.04:LTS",
    "Ubuntu:Pro:18.04:LTS",
    "Alpine:v3.19",
    "Rocky Linux:9",
    "AlmaLinux:9",
    "Red Hat:enterprise_linux:9::appstream",
    "npm",
    "openssl",
    "1:9.2p1-2+deb12u3",
    "1.36.1-r7",
    "1:3.0.7-27.el9",
    "1.0.0",
    "1.0~rc1",
    "2024-07-22",
    "2024-05-01T10:00:00Z",
    "0001-01-01T00:00:00Z",
    "CVE-2024-6387",
    "",
];

fn json_ish() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(Value::from),
        "\\PC{0,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(KEYS).prop_map(str::to_owned),
                        "\\PC{0,6}"
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Small dpkg versions over a narrow alphabet, so that equal and adjacent
/// versions (`1.0` and `1.00`, `1~rc1` and `1`) come up often.
fn debian_version() -> impl Strategy<Value = String> {
    "([12]:)?[0-2](\\.[0-2]{1,2}){0,2}(~rc[12])?(\\+dfsg)?(-[12](\\+deb12u[0-9]{1,2})?)?"
}

/// A version string that may or may not be valid anywhere.
fn version_ish() -> impl Strategy<Value = String> {
    prop_oneof![
        debian_version(),
        Just("0".to_owned()),
        Just("*".to_owned()),
        "[0-9a-z.:~+_^-]{0,10}",
        "\\PC{0,6}",
    ]
}

fn ecosystem_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(&STRINGS[5..13]).prop_map(str::to_owned),
        "[A-Za-z :.0-9]{0,20}",
    ]
}

/// A range the schema allows: at least one `introduced`, and `fixed` or
/// `last_affected` but not both; events in random order, `limit` now and then.
fn valid_range() -> impl Strategy<Value = Vec<(Kind, String)>> {
    let version = prop_oneof![5 => debian_version(), 1 => Just("0".to_owned())];
    let other = prop_oneof![
        3 => Just(Kind::Introduced),
        4 => Just(Kind::Fixed),
        1 => Just(Kind::Limit),
    ];
    (
        any::<bool>(),
        version.clone(),
        prop::collection::vec((other, version), 0..5),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(last_affected, first, rest, position)| {
            let mut events: Vec<(Kind, String)> = rest
                .into_iter()
                .map(|(kind, version)| match kind {
                    Kind::Fixed if last_affected => (Kind::LastAffected, version),
                    Kind::Limit if version == "0" => (kind, "*".to_owned()),
                    _ => (kind, version),
                })
                .collect();
            events.insert(position.index(events.len() + 1), (Kind::Introduced, first));
            events
        })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Introduced,
    Fixed,
    LastAffected,
    Limit,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Introduced),
        3 => Just(Kind::Fixed),
        1 => Just(Kind::LastAffected),
        1 => Just(Kind::Limit),
    ]
}

fn event_json((kind, version): &(Kind, String)) -> Value {
    let key = match kind {
        Kind::Introduced => "introduced",
        Kind::Fixed => "fixed",
        Kind::LastAffected => "last_affected",
        Kind::Limit => "limit",
    };
    json!({ key: version })
}

fn record_json(
    ecosystem: &str,
    ranges: &[Vec<(Kind, String)>],
    versions: &[String],
    withdrawn: bool,
) -> String {
    let ranges: Vec<Value> = ranges
        .iter()
        .map(|events| json!({"type": "ECOSYSTEM", "events": events.iter().map(event_json).collect::<Vec<_>>()}))
        .collect();
    let mut record = json!({
        "id": "TEST-1",
        "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": ecosystem, "name": "pkg"}, "ranges": ranges, "versions": versions}]
    });
    if withdrawn && let Some(object) = record.as_object_mut() {
        object.insert("withdrawn".into(), json!("2024-01-02T00:00:00Z"));
    }
    record.to_string()
}

fn debian_cmp(a: &str, b: &str) -> Option<Ordering> {
    compare(Ecosystem::Debian, a, b).ok()
}

/// The OSV schema's `IsVulnerable`, transcribed over version strings, with
/// this crate's documented choices: an entry with an unparsable version, a
/// range without `introduced` or with both `fixed` and `last_affected` is
/// skipped (matches nothing), and equal versions sort `introduced` first.
fn reference(ranges: &[Vec<(Kind, String)>], versions: &[String], v: &str) -> Option<bool> {
    let parses = |s: &str| debian_cmp(s, s).is_some();
    for events in ranges {
        for (kind, version) in events {
            let special = matches!(kind, Kind::Introduced) && version == "0"
                || matches!(kind, Kind::Limit) && version.contains('*');
            if !special && !parses(version) {
                return None;
            }
        }
        let has = |k: Kind| events.iter().any(|(kind, _)| *kind == k);
        if !has(Kind::Introduced) || (has(Kind::Fixed) && has(Kind::LastAffected)) {
            return None;
        }
    }
    if versions.iter().any(|version| !parses(version)) || (ranges.is_empty() && versions.is_empty())
    {
        return None;
    }

    let at_least =
        |a: &str, b: &str| matches!(debian_cmp(a, b), Some(Ordering::Greater | Ordering::Equal));
    let in_list = versions
        .iter()
        .any(|listed| debian_cmp(v, listed) == Some(Ordering::Equal));
    let in_range = ranges.iter().any(|events| {
        let limits: Vec<&String> = events
            .iter()
            .filter(|(kind, _)| *kind == Kind::Limit)
            .map(|(_, version)| version)
            .collect();
        let before_limits = limits.is_empty()
            || limits
                .iter()
                .any(|limit| limit.contains('*') || debian_cmp(v, limit) == Some(Ordering::Less));
        if !before_limits {
            return false;
        }
        let mut sorted: Vec<&(Kind, String)> = events
            .iter()
            .filter(|(kind, _)| *kind != Kind::Limit)
            .collect();
        let is_zero =
            |(kind, version): &(Kind, String)| *kind == Kind::Introduced && version == "0";
        sorted.sort_by(|a, b| {
            let by_version = match (is_zero(a), is_zero(b)) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                (false, false) => debian_cmp(&a.1, &b.1).unwrap_or(Ordering::Equal),
            };
            let rank = |(kind, _): &(Kind, String)| u8::from(*kind != Kind::Introduced);
            by_version.then(rank(a).cmp(&rank(b)))
        });
        let mut vulnerable = false;
        for event in sorted {
            match event {
                (Kind::Introduced, version) if version == "0" || at_least(v, version) => {
                    vulnerable = true;
                }
                (Kind::Fixed, version) if at_least(v, version) => vulnerable = false,
                (Kind::LastAffected, version)
                    if debian_cmp(v, version) == Some(Ordering::Greater) =>
                {
                    vulnerable = false;
                }
                _ => {}
            }
        }
        vulnerable
    });
    Some(in_list || in_range)
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_parsers(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = osv::parse(&bytes);
        let _ = KevCatalog::parse(&bytes);
    }

    #[test]
    fn arbitrary_strings_never_panic(text in "\\PC{0,40}", other in "\\PC{0,12}") {
        let _ = osv::parse_str(&text);
        let _ = EcosystemKey::from_osv(&text);
        let _ = EcosystemKey::from_os_release(&text, Some(&other));
        let _ = EcosystemKey::from_os_release(&other, None);
        let _ = Timestamp::parse(&text);
        let _ = Date::parse(&text);
        let _ = SourcePackage::from_dpkg(&text, &other, Some(&text));
        for scheme in [Ecosystem::Debian, Ecosystem::Rpm, Ecosystem::Alpine, Ecosystem::SemVer] {
            let _ = Version::parse(scheme, &text);
        }
    }

    #[test]
    fn json_ish_documents_never_panic(document in json_ish(), version in version_ish()) {
        let text = document.to_string();
        let _ = KevCatalog::parse(text.as_bytes());
        if let Ok(record) = osv::parse_str(&text) {
            let keys: Vec<_> = record
                .affected
                .iter()
                .filter_map(|a| a.package.as_ref())
                .filter_map(|p| EcosystemKey::from_osv(&p.ecosystem).ok().map(|k| (k, p.name.clone())))
                .collect();
            let mut index = AdvisoryIndex::new();
            index.insert(record);
            for (key, name) in keys {
                if let Ok(installed) = key.parse_version(&version) {
                    let _ = index.query(&key, &name, &installed);
                }
            }
        }
    }

    #[test]
    fn random_records_never_panic_the_matcher(
        ecosystem in ecosystem_string(),
        ranges in prop::collection::vec(prop::collection::vec((kind(), version_ish()), 0..6), 0..3),
        versions in prop::collection::vec(version_ish(), 0..4),
        withdrawn in any::<bool>(),
        installed in version_ish(),
    ) {
        let record = osv::parse_str(&record_json(&ecosystem, &ranges, &versions, withdrawn));
        prop_assert!(record.is_ok(), "{record:?}");
        let mut index = AdvisoryIndex::new();
        if let Ok(record) = record {
            index.insert(record);
        }
        if let Ok(key) = EcosystemKey::from_osv(&ecosystem)
            && let Ok(installed) = key.parse_version(&installed)
        {
            let _ = index.query(&key, "pkg", &installed);
        }
    }

    #[test]
    fn matching_agrees_with_the_osv_pseudocode(
        ranges in prop::collection::vec(valid_range(), 0..3),
        versions in prop::collection::vec(debian_version(), 0..3),
        installed in debian_version(),
        pick in prop::option::of(any::<prop::sample::Index>()),
    ) {
        // Boundaries are where evaluation goes wrong, so often test a version
        // that the record itself names.
        let named: Vec<&String> = ranges.iter().flatten().map(|(_, v)| v).chain(&versions)
            .filter(|v| *v != "0" && *v != "*")
            .collect();
        let installed = match pick {
            Some(index) if !named.is_empty() => index.get(&named).to_string(),
            _ => installed,
        };
        let record = osv::parse_str(&record_json("Debian:12", &ranges, &versions, false))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut index = AdvisoryIndex::new();
        index.insert(record);
        let key = EcosystemKey::from_os_release("debian", Some("12"))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let parsed = key.parse_version(&installed).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let found = index.query(&key, "pkg", &parsed);
        // Without the index's tables, the same answer.
        let direct: Vec<_> = index
            .get("TEST-1")
            .and_then(|advisory| advisory.matches(&key, "pkg", &parsed))
            .map(|m| m.fixed_version())
            .into_iter()
            .collect();
        prop_assert_eq!(found.iter().map(|m| m.fixed_version()).collect::<Vec<_>>(), direct);
        let expected = reference(&ranges, &versions, &installed).unwrap_or(false);
        prop_assert_eq!(!found.is_empty(), expected);
        for m in &found {
            if let Some(fixed) = m.fixed_version() {
                // A reported fix is above the installed version and is one of
                // the record's `fixed` events.
                prop_assert_eq!(debian_cmp(&installed, &fixed), Some(Ordering::Less));
                prop_assert!(ranges.iter().flatten().any(|(k, v)| *k == Kind::Fixed && *v == fixed));
            }
        }
    }

    #[test]
    fn a_withdrawn_record_never_matches(
        ranges in prop::collection::vec(prop::collection::vec((kind(), debian_version()), 1..4), 1..3),
        installed in debian_version(),
    ) {
        let record = osv::parse_str(&record_json("Debian:12", &ranges, &[], true))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut index = AdvisoryIndex::new();
        index.insert(record);
        let key = EcosystemKey::from_os_release("debian", Some("12"))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let parsed = key.parse_version(&installed).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(index.query(&key, "pkg", &parsed).is_empty());
    }
}
