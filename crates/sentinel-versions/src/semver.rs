//! Semantic versions, ordered by SemVer 2.0.0 precedence.
//!
//! OSV ranges of type `SEMVER` (and the many language ecosystems that follow
//! SemVer) compare versions this way. The rules are those of semver.org:
//!
//! - The form is `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`. The three numbers are
//!   decimal without leading zeros; pre-release and build metadata are
//!   dot-separated non-empty identifiers of ASCII letters, digits and `-`, and a
//!   numeric pre-release identifier may not have leading zeros either.
//! - Precedence compares MAJOR, MINOR and PATCH numerically. A version with a
//!   pre-release is older than the same version without one. Pre-releases compare
//!   identifier by identifier: numbers numerically, other identifiers in ASCII
//!   order, numbers before other identifiers, and a shorter list of otherwise
//!   equal identifiers first.
//! - Build metadata does not take part: `1.0.0+a` and `1.0.0+b` are equal
//!   (`Eq` and `Hash` agree with that), although `Display` still shows it.
//!
//! Numbers may be arbitrarily long; they are compared exactly.
//!
//! A single leading lowercase `v` is accepted and ignored (`v1.2.3` equals
//! `1.2.3`): SemVer itself has no prefix, but Go modules and git tags always
//! carry one, and an installed version read from them should not be rejected.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::VersionError;
use crate::numeric::cmp_decimal;

/// A parsed semantic version.
#[derive(Debug, Clone)]
pub struct SemVersion {
    text: String,
    major: String,
    minor: String,
    patch: String,
    pre_release: Option<String>,
    build: Option<String>,
}

impl SemVersion {
    /// Parses a SemVer 2.0.0 version, optionally prefixed with `v`.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        if input.is_empty() {
            return Err(VersionError::Empty);
        }
        let (body, offset): (&str, usize) = match input.strip_prefix('v') {
            Some(body) => (body, 1),
            None => (input, 0),
        };
        if body.is_empty() {
            return Err(VersionError::EmptyVersion);
        }
        let (rest, build) = match body.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (body, None),
        };
        let (core, pre_release) = match rest.split_once('-') {
            Some((core, pre_release)) => (core, Some(pre_release)),
            None => (rest, None),
        };

        let mut numbers = Vec::with_capacity(3);
        let mut index = offset;
        for number in core.split('.') {
            if numbers.len() == 3 {
                return Err(VersionError::Syntax {
                    index: index.saturating_sub(1),
                    reason: "the version core must be exactly MAJOR.MINOR.PATCH",
                });
            }
            check_number(number, index)?;
            numbers.push(number);
            index += number.len() + 1;
        }
        let &[major, minor, patch] = numbers.as_slice() else {
            return Err(VersionError::Syntax {
                index: offset + core.len(),
                reason: "the version core must be exactly MAJOR.MINOR.PATCH",
            });
        };

        let mut index = offset + core.len() + 1;
        if let Some(pre_release) = pre_release {
            for identifier in pre_release.split('.') {
                check_identifier(identifier, index)?;
                if is_numeric(identifier) {
                    check_number(identifier, index)?;
                }
                index += identifier.len() + 1;
            }
        }
        if let Some(build) = build {
            let mut index = offset + rest.len() + 1;
            for identifier in build.split('.') {
                check_identifier(identifier, index)?;
                index += identifier.len() + 1;
            }
        }

        Ok(SemVersion {
            text: input.to_owned(),
            major: major.to_owned(),
            minor: minor.to_owned(),
            patch: patch.to_owned(),
            pre_release: pre_release.map(str::to_owned),
            build: build.map(str::to_owned),
        })
    }

    /// The major version, in decimal digits (it may exceed any integer type).
    pub fn major(&self) -> &str {
        &self.major
    }

    /// The minor version, in decimal digits.
    pub fn minor(&self) -> &str {
        &self.minor
    }

    /// The patch version, in decimal digits.
    pub fn patch(&self) -> &str {
        &self.patch
    }

    /// The pre-release identifiers after `-`, still joined by dots.
    pub fn pre_release(&self) -> Option<&str> {
        self.pre_release.as_deref()
    }

    /// The build metadata after `+`, which does not affect ordering.
    pub fn build(&self) -> Option<&str> {
        self.build.as_deref()
    }
}

fn is_numeric(identifier: &str) -> bool {
    identifier.bytes().all(|b| b.is_ascii_digit())
}

/// A numeric identifier: digits, and no leading zero unless it is `0` itself.
fn check_number(number: &str, index: usize) -> Result<(), VersionError> {
    if number.is_empty() {
        return Err(VersionError::Syntax {
            index,
            reason: "a number must not be empty",
        });
    }
    if let Some((i, character)) = number.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        return Err(VersionError::InvalidCharacter {
            character,
            index: index + i,
        });
    }
    if number.len() > 1 && number.starts_with('0') {
        return Err(VersionError::Syntax {
            index,
            reason: "a number must not have leading zeros",
        });
    }
    Ok(())
}

/// A pre-release or build identifier: non-empty, ASCII alphanumerics and `-`.
fn check_identifier(identifier: &str, index: usize) -> Result<(), VersionError> {
    if identifier.is_empty() {
        return Err(VersionError::Syntax {
            index,
            reason: "an identifier must not be empty",
        });
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-';
    match identifier.char_indices().find(|&(_, c)| !allowed(c)) {
        Some((i, character)) => Err(VersionError::InvalidCharacter {
            character,
            index: index + i,
        }),
        None => Ok(()),
    }
}

fn cmp_pre_release(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        let (x, y) = match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => (x, y),
        };
        let ordering = match (is_numeric(x), is_numeric(y)) {
            (true, true) => cmp_decimal(x, y),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x.cmp(y),
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
}

impl Ord for SemVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_decimal(&self.major, &other.major)
            .then_with(|| cmp_decimal(&self.minor, &other.minor))
            .then_with(|| cmp_decimal(&self.patch, &other.patch))
            .then_with(|| match (&self.pre_release, &other.pre_release) {
                (Some(a), Some(b)) => cmp_pre_release(a, b),
                // Having a pre-release makes a version older.
                (a, b) => a.is_none().cmp(&b.is_none()),
            })
    }
}

impl PartialOrd for SemVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SemVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SemVersion {}

impl Hash for SemVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Numbers have no leading zeros, so equal precedence means equal strings.
        self.major.hash(state);
        self.minor.hash(state);
        self.patch.hash(state);
        self.pre_release.hash(state);
    }
}

impl FromStr for SemVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for SemVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    crate::ordering_test_helpers!(SemVersion);

    #[test]
    fn specification_examples() {
        assert_increasing(&["1.0.0", "2.0.0", "2.1.0", "2.1.1"]);
        assert_increasing(&[
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ]);
    }

    #[test]
    fn numbers_compare_numerically_at_any_length() {
        assert_increasing(&["0.9.0", "0.10.0", "1.0.0", "10.0.0"]);
        assert_increasing(&["1.0.18446744073709551615", "1.0.18446744073709551616"]);
        assert_increasing(&["1.0.0-2", "1.0.0-10", "1.0.0-18446744073709551616"]);
    }

    #[test]
    fn pre_release_identifiers() {
        // Numbers before alphanumerics; alphanumerics in ASCII order, so a digit
        // inside an identifier does not make it numeric.
        assert_increasing(&["1.0.0-1", "1.0.0-a", "1.0.0-a.1", "1.0.0-a.a"]);
        assert_increasing(&["1.0.0-a10", "1.0.0-a9"]);
        assert_increasing(&["1.0.0-Beta", "1.0.0-alpha"]);
        assert_increasing(&["1.0.0-0", "1.0.0--", "1.0.0-0-"]);
        assert_increasing(&["1.0.0-rc.1", "1.0.0-rc.1.0", "1.0.0"]);
    }

    #[test]
    fn build_metadata_and_prefix_are_ignored() {
        assert_equal("1.0.0+a", "1.0.0+b");
        assert_equal("1.0.0", "1.0.0+20130313144700");
        assert_equal("1.0.0-alpha+001", "1.0.0-alpha");
        assert_equal("v1.2.3", "1.2.3");
        assert_increasing(&["1.0.0-rc.1+build.9", "1.0.0+build.1"]);
    }

    #[test]
    fn parts_and_display() {
        let version = v("v1.2.3-rc.1+build.5");
        assert_eq!(
            (version.major(), version.minor(), version.patch()),
            ("1", "2", "3")
        );
        assert_eq!(version.pre_release(), Some("rc.1"));
        assert_eq!(version.build(), Some("build.5"));
        assert_eq!(version.to_string(), "v1.2.3-rc.1+build.5");
        let version = v("1.0.0+build-1");
        assert_eq!(
            (version.pre_release(), version.build()),
            (None, Some("build-1"))
        );
    }

    #[test]
    fn valid_spellings() {
        for s in [
            "0.0.0",
            "0.0.4",
            "10.20.30",
            "1.1.2-prerelease+meta",
            "1.0.0-0A.is.legal",
            "1.2.3----RC-SNAPSHOT.12.9.1--.12+788",
            "1.0.0+0.build.1-rc.10000aaa-kk-0.1",
            "1.0.0+0123",
            "99999999999999999999999.999999999999999999.99999999999999999",
        ] {
            assert!(SemVersion::parse(s).is_ok(), "{s} is valid");
        }
    }

    #[test]
    fn malformed_versions_are_rejected() {
        let err = |s: &str| SemVersion::parse(s).err();
        assert_eq!(err(""), Some(VersionError::Empty));
        assert_eq!(err("v"), Some(VersionError::EmptyVersion));
        for s in [
            "1",
            "1.2",
            "1.2.3.4",
            "1.2.3.DEV",
            "1.2-SNAPSHOT",
            "01.1.1",
            "1.02.3",
            "1.2.03",
            "1.2.3-0123",
            "1.2.3-0123.0123",
            "1.2.3-",
            "1.2.3+",
            "1.2.3-a..b",
            "1.1.2+.123",
            "1..3",
            "+justmeta",
            "-1.0.3-gamma+b7718",
        ] {
            assert!(
                matches!(err(s), Some(VersionError::Syntax { .. })),
                "{s}: {:?}",
                err(s)
            );
        }
        for (s, character, index) in [
            ("1.0.0-alpha_beta", '_', 11),
            ("9.8.7+meta+meta", '+', 10),
            ("alpha", 'a', 0),
            ("V1.2.3", 'V', 0),
            ("vv1.2.3", 'v', 1),
            (" 1.2.3", ' ', 0),
            ("1.2.3 ", ' ', 5),
            ("1.2.3-é", 'é', 6),
        ] {
            assert_eq!(
                err(s),
                Some(VersionError::InvalidCharacter { character, index }),
                "{s}"
            );
        }
        assert_eq!(
            err("v1.2.3.4"),
            Some(VersionError::Syntax {
                index: 6,
                reason: "the version core must be exactly MAJOR.MINOR.PATCH"
            })
        );
        assert_eq!(
            err("1.2.3-01"),
            Some(VersionError::Syntax {
                index: 6,
                reason: "a number must not have leading zeros"
            })
        );
    }
}
