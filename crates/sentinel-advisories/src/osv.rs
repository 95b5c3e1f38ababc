//! The OSV record format (schema 1.x), as published by OSV.dev and the
//! distributions' own feeds, read from JSON.
//!
//! The model keeps every field that matching or reporting needs and ignores the
//! rest, because the format keeps growing (`upstream` arrived in 1.7, for
//! instance) and a new field must not make a whole feed unreadable. What the
//! model does insist on is structure: a record without an `id` or `modified`,
//! a field of the wrong JSON type, a timestamp that is not RFC 3339 or a range
//! event that names more or fewer than one bound is an [`OsvError`] naming the
//! record when its id could be read. Fields that the schema defines as arrays
//! may be `null`; that is read as an empty array, since some generators write
//! `null` for an empty list.
//!
//! Parsing is separate from interpreting: what an `affected` entry means for a
//! package (its ecosystem, its version ranges) is worked out in
//! [`crate::range`], where a semantically broken entry is skipped and reported
//! rather than failing the whole record.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::calendar::{days_from_civil, read_date, read_digits};

/// An OSV record.
#[derive(Debug, Clone, Deserialize)]
pub struct Vulnerability {
    /// The schema version the record claims (1.0.0 when absent).
    #[serde(default)]
    pub schema_version: Option<String>,
    /// The record's id, such as `DSA-5678-1`, `UBUNTU-CVE-2024-1234`.
    pub id: String,
    /// When the record last changed; a newer record replaces an older one.
    pub modified: Timestamp,
    /// When the record was published, kept as written: it plays no part in
    /// matching, so a value that is not quite RFC 3339 is no reason to drop it.
    #[serde(default)]
    pub published: Option<String>,
    /// When the record was withdrawn, if it was; see [`Vulnerability::is_withdrawn`].
    #[serde(default)]
    pub withdrawn: Option<Timestamp>,
    /// Ids of the same vulnerability in other databases.
    #[serde(default, deserialize_with = "null_as_default")]
    pub aliases: Vec<String>,
    /// Ids of upstream vulnerabilities this record covers (distributions put
    /// the CVE ids here).
    #[serde(default, deserialize_with = "null_as_default")]
    pub upstream: Vec<String>,
    /// Ids of closely related vulnerabilities.
    #[serde(default, deserialize_with = "null_as_default")]
    pub related: Vec<String>,
    /// A one-line summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// Details in CommonMark.
    #[serde(default)]
    pub details: Option<String>,
    /// Severity scores for the whole record.
    #[serde(default, deserialize_with = "null_as_default")]
    pub severity: Vec<Severity>,
    /// The affected packages and versions.
    #[serde(default, deserialize_with = "null_as_default")]
    pub affected: Vec<Affected>,
    /// Links to advisories, fixes and reports.
    #[serde(default, deserialize_with = "null_as_default")]
    pub references: Vec<Reference>,
    /// Whatever the publishing database adds.
    #[serde(default)]
    pub database_specific: Option<Map<String, Value>>,
}

/// A severity score: `CVSS_V2`, `CVSS_V3`, `CVSS_V4` vectors or `Ubuntu`
/// priorities, or a type added to the schema later (kept as written).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Severity {
    /// The scoring method (`type` in JSON).
    #[serde(rename = "type")]
    pub kind: String,
    /// The score in that method's notation, such as a CVSS vector.
    pub score: String,
}

/// A reference link.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Reference {
    /// `ADVISORY`, `FIX`, `WEB`, … (`type` in JSON).
    #[serde(rename = "type")]
    pub kind: String,
    /// The address.
    pub url: String,
}

/// One affected package and the versions of it that are affected.
#[derive(Debug, Clone, Deserialize)]
pub struct Affected {
    /// The package; the schema lets entries with only `GIT` ranges omit it.
    #[serde(default)]
    pub package: Option<Package>,
    /// Per-package severity; the schema allows it only when the record has
    /// no top-level `severity`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub severity: Vec<Severity>,
    /// Version ranges.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ranges: Vec<Range>,
    /// Explicitly listed affected versions.
    #[serde(default, deserialize_with = "null_as_default")]
    pub versions: Vec<String>,
    /// What the ecosystem adds (Debian's `urgency`, Ubuntu's `binaries`, …).
    #[serde(default)]
    pub ecosystem_specific: Option<Map<String, Value>>,
    /// What the publishing database adds.
    #[serde(default)]
    pub database_specific: Option<Map<String, Value>>,
}

/// A package in an ecosystem.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Package {
    /// The ecosystem string, such as `Debian:12` or `Ubuntu:22.04:LTS`.
    pub ecosystem: String,
    /// The package name; for Debian, Ubuntu and Alpine a *source* package.
    pub name: String,
    /// The package URL, if given.
    #[serde(default)]
    pub purl: Option<String>,
}

/// A range of affected versions, as a timeline of events.
#[derive(Debug, Clone, Deserialize)]
pub struct Range {
    /// How the event versions are ordered (`type` in JSON).
    #[serde(rename = "type")]
    pub kind: RangeType,
    /// The repository, for `GIT` ranges.
    #[serde(default)]
    pub repo: Option<String>,
    /// The events, in any order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub events: Vec<Event>,
    /// What the publishing database adds.
    #[serde(default)]
    pub database_specific: Option<Map<String, Value>>,
}

/// The ordering that a range's versions follow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(from = "String")]
pub enum RangeType {
    /// SemVer 2.0.0 precedence.
    Semver,
    /// The package ecosystem's own ordering (dpkg, rpm, apk, …).
    Ecosystem,
    /// Git commits; needs the repository's history, so never used for
    /// matching installed packages.
    Git,
    /// A type this crate does not know, kept as written.
    Other(String),
}

impl From<String> for RangeType {
    fn from(kind: String) -> Self {
        match kind.as_str() {
            "SEMVER" => RangeType::Semver,
            "ECOSYSTEM" => RangeType::Ecosystem,
            "GIT" => RangeType::Git,
            _ => RangeType::Other(kind),
        }
    }
}

impl fmt::Display for RangeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RangeType::Semver => "SEMVER",
            RangeType::Ecosystem => "ECOSYSTEM",
            RangeType::Git => "GIT",
            RangeType::Other(kind) => kind,
        })
    }
}

/// One event of a range: exactly one bound, as the schema requires.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawEvent")]
pub enum Event {
    /// Versions from here on are affected; `"0"` means from the beginning.
    Introduced(String),
    /// Versions from here on are not affected.
    Fixed(String),
    /// Versions after this one are not affected.
    LastAffected(String),
    /// Only versions below this one are in the range; `"*"` is infinity.
    Limit(String),
}

/// An event as it appears in JSON, before checking that it has one bound.
#[derive(Deserialize)]
struct RawEvent {
    #[serde(default)]
    introduced: Option<String>,
    #[serde(default)]
    fixed: Option<String>,
    #[serde(default)]
    last_affected: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

impl TryFrom<RawEvent> for Event {
    type Error = String;

    fn try_from(raw: RawEvent) -> Result<Self, Self::Error> {
        let bounds = [
            raw.introduced.map(Event::Introduced),
            raw.fixed.map(Event::Fixed),
            raw.last_affected.map(Event::LastAffected),
            raw.limit.map(Event::Limit),
        ];
        let count = bounds.iter().flatten().count();
        match bounds.into_iter().flatten().next() {
            Some(event) if count == 1 => Ok(event),
            _ => Err(format!(
                "a range event must have exactly one of `introduced`, `fixed`, \
                 `last_affected` or `limit`, this one has {count}"
            )),
        }
    }
}

impl Vulnerability {
    /// Whether the record has been withdrawn and must not be matched.
    ///
    /// A `withdrawn` time of `0001-01-01T00:00:00Z` does not count: that is
    /// Go's zero time, which converters written in Go emit for an unset field,
    /// and no record was withdrawn in the year 1. Any other time counts, even
    /// one in the future, since this crate has no clock to compare it with.
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn
            .as_ref()
            .is_some_and(|t| !t.is_go_zero_time())
    }

    /// The CVE ids this record is about: its own id if it is one, then those
    /// in `aliases`, `upstream` and `related`, without duplicates.
    ///
    /// `related` is included because distribution advisories (AlmaLinux's
    /// ALSA, Ubuntu's USN) list the CVEs they fix there and nowhere else.
    pub fn cve_ids(&self) -> Vec<&str> {
        cve_ids(&self.id, &self.aliases, &self.upstream, &self.related)
    }
}

/// Collects CVE ids from an id and its alias lists (see [`Vulnerability::cve_ids`]).
pub(crate) fn cve_ids<'a>(
    id: &'a str,
    aliases: &'a [String],
    upstream: &'a [String],
    related: &'a [String],
) -> Vec<&'a str> {
    let mut ids: Vec<&str> = Vec::new();
    let candidates = std::iter::once(id)
        .chain(aliases.iter().map(String::as_str))
        .chain(upstream.iter().map(String::as_str))
        .chain(related.iter().map(String::as_str));
    for candidate in candidates {
        if candidate.starts_with("CVE-") && !ids.contains(&candidate) {
            ids.push(candidate);
        }
    }
    ids
}

/// Why an OSV record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("OSV record {} is invalid: {message}", id.as_deref().unwrap_or("(id unknown)"))]
pub struct OsvError {
    /// The record's id, when it could be read.
    pub id: Option<String>,
    /// What is wrong, with the position in the input where JSON parsing failed.
    pub message: String,
}

/// Parses one OSV record from JSON bytes (a UTF-8 byte order mark is allowed).
pub fn parse(input: &[u8]) -> Result<Vulnerability, OsvError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let record: Vulnerability = serde_json::from_slice(input).map_err(|error| OsvError {
        id: probe_id(input),
        message: error.to_string(),
    })?;
    if record.id.trim().is_empty() {
        return Err(OsvError {
            id: None,
            message: "`id` is empty".to_owned(),
        });
    }
    Ok(record)
}

/// Parses one OSV record from a JSON string.
pub fn parse_str(input: &str) -> Result<Vulnerability, OsvError> {
    parse(input.as_bytes())
}

/// Reads just the `id` of a record that failed to parse, for the error message.
fn probe_id(input: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    serde_json::from_slice::<IdOnly>(input)
        .ok()
        .and_then(|probe| probe.id)
        .filter(|id| !id.trim().is_empty())
}

/// Reads `null` as the type's default, for arrays that generators leave `null`.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// An RFC 3339 timestamp, ordered by the instant it names.
///
/// Records are compared by `modified` to decide which is newer, and RFC 3339
/// strings do not sort as text (`…05.9Z` is later than `…05Z` but sorts
/// first), so the timestamp is parsed into seconds and nanoseconds since the
/// Unix epoch in UTC. Digits of a fraction beyond nanoseconds are ignored.
/// `Display` shows the string as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Timestamp {
    text: String,
    seconds: i64,
    nanos: u32,
}

/// Why a string is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an RFC 3339 timestamp such as 2024-01-31T12:00:00Z")]
pub struct InvalidTimestamp(pub String);

const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

impl Timestamp {
    /// Parses `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)`.
    pub fn parse(input: &str) -> Result<Self, InvalidTimestamp> {
        Self::parse_parts(input.as_bytes())
            .map(|(seconds, nanos)| Timestamp {
                text: input.to_owned(),
                seconds,
                nanos,
            })
            .ok_or_else(|| InvalidTimestamp(input.to_owned()))
    }

    fn parse_parts(bytes: &[u8]) -> Option<(i64, u32)> {
        let (year, month, day) = read_date(bytes)?;
        if !matches!(bytes.get(10), Some(b'T' | b't')) {
            return None;
        }
        let hour = read_digits(bytes, 11, 2)?;
        let minute = read_digits(bytes, 14, 2)?;
        // 60 is a leap second.
        let second = read_digits(bytes, 17, 2)?;
        if bytes.get(13) != Some(&b':') || bytes.get(16) != Some(&b':') {
            return None;
        }
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }

        let mut rest = bytes.get(19..)?;
        let mut nanos = 0u32;
        if let Some(fraction) = rest.strip_prefix(b".") {
            let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            for position in 0..9 {
                let digit = fraction
                    .get(position)
                    .filter(|_| position < digits)
                    .map_or(0, |b| u32::from(b - b'0'));
                nanos = nanos * 10 + digit;
            }
            rest = fraction.get(digits..)?;
        }

        let offset_seconds = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
                let hours = read_digits(rest, 1, 2)?;
                let minutes = read_digits(rest, 4, 2)?;
                if hours > 23 || minutes > 59 {
                    return None;
                }
                let offset = i64::from(hours * 3600 + minutes * 60);
                if *sign == b'-' { -offset } else { offset }
            }
            _ => return None,
        };

        let days = days_from_civil(year, month, day);
        let seconds =
            days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_seconds;
        Some((seconds, nanos))
    }

    /// The timestamp as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A fixed-width text that sorts as the timestamps do, for a database to
    /// compare: seconds since year 1 and nanoseconds, zero-padded.
    pub fn sort_key(&self) -> String {
        let seconds = self.seconds.saturating_sub(GO_ZERO_TIME_SECONDS).max(0);
        format!("{seconds:020}.{:09}", self.nanos)
    }

    /// Whole seconds since 1970-01-01T00:00:00Z (negative before it).
    pub fn unix_seconds(&self) -> i64 {
        self.seconds
    }

    /// Whether this is `0001-01-01T00:00:00Z`, Go's zero `time.Time`.
    pub fn is_go_zero_time(&self) -> bool {
        self.seconds == GO_ZERO_TIME_SECONDS && self.nanos == 0
    }
}

impl TryFrom<String> for Timestamp {
    type Error = InvalidTimestamp;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Timestamp::parse(&text)
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.seconds, self.nanos).cmp(&(other.seconds, other.nanos))
    }
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Timestamp {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Timestamp {}

impl Hash for Timestamp {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.seconds, self.nanos).hash(state);
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::Timestamp as Ts;

    #[test]
    fn sort_keys_sort_as_the_timestamps_do() {
        let stamps = [
            "0001-01-01T00:00:00Z",
            "2024-01-01T00:00:05Z",
            "2024-01-01T00:00:05.9Z",
            "2024-01-01T01:00:04+01:00",
            "2024-01-01T00:00:06Z",
            "2999-12-31T23:59:59.999999999Z",
        ];
        for a in stamps {
            for b in stamps {
                let (a, b) = (Ts::parse(a).unwrap(), Ts::parse(b).unwrap());
                assert_eq!(a.sort_key().cmp(&b.sort_key()), a.cmp(&b), "{a} {b}");
            }
        }
    }
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn timestamps_order_by_instant_not_by_text() {
        assert!(ts("2024-01-01T00:00:05.9Z") > ts("2024-01-01T00:00:05Z"));
        assert!(ts("2024-01-01T00:00:05.000000001Z") > ts("2024-01-01T00:00:05Z"));
        assert_eq!(ts("2024-01-01T02:00:00+02:00"), ts("2024-01-01T00:00:00Z"));
        assert_eq!(ts("2023-12-31T19:30:00-04:30"), ts("2024-01-01T00:00:00z"));
        assert_eq!(ts("1970-01-01T00:00:00Z").unix_seconds(), 0);
        assert_eq!(
            ts("2026-09-12T11:00:05.986201214Z").as_str(),
            "2026-09-12T11:00:05.986201214Z"
        );
        // Digits past nanoseconds do not make an otherwise equal time later.
        assert_eq!(
            ts("2024-01-01T00:00:00.1234567891Z"),
            ts("2024-01-01T00:00:00.123456789Z")
        );
    }

    #[test]
    fn invalid_timestamps_are_rejected() {
        for bad in [
            "",
            "2024-01-01",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-02-30T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:60:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+0200",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00Zjunk",
            "yesterday",
            "２０２４-01-01T00:00:00Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn go_zero_time_is_recognised() {
        assert!(ts("0001-01-01T00:00:00Z").is_go_zero_time());
        assert!(!ts("0001-01-01T00:00:01Z").is_go_zero_time());
    }

    #[test]
    fn a_full_record_is_read_and_unknown_fields_are_ignored() {
        let record = parse_str(
            r#"{
              "schema_version": "1.7.0",
              "id": "UBUNTU-CVE-2024-0001",
              "modified": "2024-05-01T10:00:00Z",
              "published": "2024-04-01T10:00:00Z",
              "upstream": ["CVE-2024-0001"],
              "related": ["USN-6800-1"],
              "summary": "a flaw",
              "details": "more",
              "severity": [{"type": "Ubuntu", "score": "medium"}],
              "some_future_field": {"nested": [1, 2, 3]},
              "affected": [{
                "package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "openssl",
                            "purl": "pkg:deb/ubuntu/openssl?arch=source&distro=jammy"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.2-0ubuntu1.15"}],
                            "database_specific": {"x": 1}}],
                "versions": ["3.0.2-0ubuntu1"],
                "ecosystem_specific": {"binaries": [{"binary_name": "libssl3", "binary_version": "3.0.2-0ubuntu1.15"}]},
                "future": true
              }],
              "references": [{"type": "ADVISORY", "url": "https://ubuntu.com/security/CVE-2024-0001"}],
              "database_specific": {"cve": "x"}
            }"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(record.id, "UBUNTU-CVE-2024-0001");
        assert_eq!(record.schema_version.as_deref(), Some("1.7.0"));
        assert_eq!(record.severity[0].kind, "Ubuntu");
        let affected = &record.affected[0];
        assert_eq!(
            affected.package.as_ref().map(|p| p.name.as_str()),
            Some("openssl")
        );
        assert_eq!(affected.ranges[0].kind, RangeType::Ecosystem);
        assert_eq!(
            affected.ranges[0].events,
            vec![
                Event::Introduced("0".into()),
                Event::Fixed("3.0.2-0ubuntu1.15".into())
            ]
        );
        assert_eq!(record.references[0].kind, "ADVISORY");
        assert_eq!(record.cve_ids(), vec!["CVE-2024-0001"]);
        assert!(!record.is_withdrawn());
    }

    #[test]
    fn null_arrays_read_as_empty() {
        let record = parse_str(
            r#"{"id": "X-1", "modified": "2024-05-01T10:00:00Z", "aliases": null,
                "affected": [{"package": {"ecosystem": "Debian:12", "name": "a"}, "ranges": null, "versions": null}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(record.aliases.is_empty());
        assert!(record.affected[0].ranges.is_empty());
    }

    #[test]
    fn structural_errors_name_the_record() {
        let cases = [
            (
                r#"{"id": "DSA-1-1"}"#,
                Some("DSA-1-1"),
                "missing field `modified`",
            ),
            (
                r#"{"modified": "2024-05-01T10:00:00Z"}"#,
                None,
                "missing field `id`",
            ),
            (
                r#"{"id": "DSA-1-1", "modified": "2024-05-01 10:00:00"}"#,
                Some("DSA-1-1"),
                "RFC 3339",
            ),
            (
                r#"{"id": "DSA-1-1", "modified": "2024-05-01T10:00:00Z", "affected": {"package": 1}}"#,
                Some("DSA-1-1"),
                "invalid type",
            ),
            (
                r#"{"id": "DSA-1-1", "modified": "2024-05-01T10:00:00Z", "affected": [{"ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "1.0-1"}]}]}]}"#,
                Some("DSA-1-1"),
                "exactly one of",
            ),
            (
                r#"{"id": "DSA-1-1", "modified": "2024-05-01T10:00:00Z", "affected": [{"ranges": [
                    {"type": "ECOSYSTEM", "events": [{}]}]}]}"#,
                Some("DSA-1-1"),
                "this one has 0",
            ),
            (
                r#"{"id": "", "modified": "2024-05-01T10:00:00Z"}"#,
                None,
                "`id` is empty",
            ),
            (r#"{"id": "DSA-1-1", "modified": "#, None, "EOF"),
            ("not json", None, "expected"),
            (r#"[1, 2]"#, None, "invalid type"),
        ];
        for (input, id, needle) in cases {
            let error = parse_str(input)
                .err()
                .unwrap_or_else(|| panic!("{input} should fail"));
            assert_eq!(error.id.as_deref(), id, "{input}");
            let message = error.to_string();
            assert!(
                message.contains(needle),
                "{message:?} should mention {needle:?}"
            );
            assert!(message.starts_with("OSV record "), "{message}");
        }
    }

    #[test]
    fn the_error_message_names_the_id() {
        let error = parse_str(r#"{"id": "DSA-1-1"}"#).err();
        assert_eq!(
            error.map(|e| e.to_string()),
            Some(
                "OSV record DSA-1-1 is invalid: missing field `modified` at line 1 column 17"
                    .into()
            )
        );
    }

    #[test]
    fn a_byte_order_mark_is_allowed() {
        let input = b"\xEF\xBB\xBF{\"id\": \"X-1\", \"modified\": \"2024-05-01T10:00:00Z\"}";
        assert!(parse(input).is_ok());
    }

    #[test]
    fn withdrawn_records_are_recognised_but_not_go_zero_times() {
        let withdrawn = parse_str(
            r#"{"id": "X-1", "modified": "2024-05-01T10:00:00Z", "withdrawn": "2024-05-01T10:00:00Z"}"#,
        );
        assert!(withdrawn.is_ok_and(|r| r.is_withdrawn()));
        let zero = parse_str(
            r#"{"id": "X-1", "modified": "2024-05-01T10:00:00Z", "withdrawn": "0001-01-01T00:00:00Z"}"#,
        );
        assert!(zero.is_ok_and(|r| !r.is_withdrawn()));
    }

    #[test]
    fn unknown_range_types_are_kept() {
        let record = parse_str(
            r#"{"id": "X-1", "modified": "2024-05-01T10:00:00Z", "affected": [{"ranges": [
                {"type": "FANCY", "events": [{"introduced": "0"}]},
                {"type": "GIT", "repo": "https://example.org/r.git", "events": [{"introduced": "abc"}, {"limit": "def"}]}]}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let ranges = &record.affected[0].ranges;
        assert_eq!(ranges[0].kind, RangeType::Other("FANCY".into()));
        assert_eq!(ranges[1].kind, RangeType::Git);
        assert_eq!(ranges[1].events[1], Event::Limit("def".into()));
    }

    #[test]
    fn cve_ids_come_from_every_list_once() {
        let record = parse_str(
            r#"{"id": "ALSA-2024:1", "modified": "2024-05-01T10:00:00Z",
                "aliases": ["CVE-2024-1", "GHSA-x"], "upstream": ["CVE-2024-2", "CVE-2024-1"],
                "related": ["CVE-2024-3", "RHSA-2024:1"]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            record.cve_ids(),
            vec!["CVE-2024-1", "CVE-2024-2", "CVE-2024-3"]
        );
    }
}
