//! Version ordering for the package ecosystems Sentinel scans, without I/O.
//!
//! Deciding whether an installed package is affected by an advisory comes down to
//! asking "is version A older than version B?", and every packaging tool answers
//! that differently: `1.0~rc1` is older than `1.0` for dpkg and rpm but not for
//! SemVer, `1.0.0-beta` is older than `1.0.0` for SemVer but newer for dpkg. This
//! crate re-implements each tool's own rules so that the answer matches what the
//! package manager on the host would say:
//!
//! - [`debian`]: dpkg (Debian, Ubuntu and derivatives),
//! - [`rpm`]: rpm's `rpmvercmp` (Red Hat, Fedora, SUSE, …),
//! - [`apk`]: apk-tools (Alpine),
//! - [`semver`]: SemVer 2.0.0 precedence.
//!
//! Each module has a parsed version type whose `Ord` is the ecosystem's ordering
//! and whose `Eq`/`Hash` agree with it (two versions are equal exactly when they
//! compare `Equal`, even if they are spelled differently, like `1.0` and `1.00`
//! for dpkg). Parsing never panics: malformed input is a [`VersionError`].

use std::cmp::Ordering;
use std::fmt;

pub mod apk;
pub mod debian;
mod numeric;
pub mod rpm;
pub mod semver;

pub use apk::ApkVersion;
pub use debian::DebianVersion;
pub use rpm::RpmVersion;
pub use semver::SemVersion;

/// A package ecosystem whose version ordering this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ecosystem {
    /// dpkg versions: Debian, Ubuntu and their derivatives.
    Debian,
    /// rpm versions: Red Hat, Fedora, Rocky, Alma, SUSE and other rpm-based systems.
    Rpm,
    /// apk-tools versions: Alpine Linux.
    Alpine,
    /// SemVer 2.0.0, as used by OSV `SEMVER` ranges.
    SemVer,
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ecosystem::Debian => "Debian",
            Ecosystem::Rpm => "RPM",
            Ecosystem::Alpine => "Alpine",
            Ecosystem::SemVer => "SemVer",
        })
    }
}

/// Compares two version strings with the rules of `ecosystem`.
///
/// Both strings are parsed first, so an invalid version is an error rather than
/// being ordered arbitrarily; the error is the one for `a` if both are invalid.
pub fn compare(ecosystem: Ecosystem, a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(match ecosystem {
        Ecosystem::Debian => DebianVersion::parse(a)?.cmp(&DebianVersion::parse(b)?),
        Ecosystem::Rpm => RpmVersion::parse(a)?.cmp(&RpmVersion::parse(b)?),
        Ecosystem::Alpine => ApkVersion::parse(a)?.cmp(&ApkVersion::parse(b)?),
        Ecosystem::SemVer => SemVersion::parse(a)?.cmp(&SemVersion::parse(b)?),
    })
}

/// Why a version string was rejected.
///
/// Byte indexes are offsets into the string that was passed to the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VersionError {
    /// The string is empty (or, for Debian, only blanks).
    Empty,
    /// Debian versions may be surrounded by blanks but not contain them.
    EmbeddedWhitespace,
    /// The part before the first `:` is not a non-empty run of ASCII digits.
    InvalidEpoch,
    /// The epoch is larger than the ecosystem's tools can store.
    EpochTooLarge,
    /// Nothing is left for the version once the epoch and revision are split off.
    EmptyVersion,
    /// The string ends with the `-` that introduces a revision (or release).
    EmptyRevision,
    /// The version proper must start with a digit.
    MustStartWithDigit,
    /// A character the ecosystem does not allow at this place.
    InvalidCharacter {
        /// The offending character.
        character: char,
        /// Byte offset of `character`.
        index: usize,
    },
    /// The characters are allowed but not in this arrangement.
    Syntax {
        /// Byte offset where the problem was found.
        index: usize,
        /// What the ecosystem's grammar requires there.
        reason: &'static str,
    },
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionError::Empty => f.write_str("version string is empty"),
            VersionError::EmbeddedWhitespace => f.write_str("version string has embedded spaces"),
            VersionError::InvalidEpoch => f.write_str("epoch in version is not a number"),
            VersionError::EpochTooLarge => f.write_str("epoch in version is too big"),
            VersionError::EmptyVersion => f.write_str("version number is empty"),
            VersionError::EmptyRevision => f.write_str("revision number is empty"),
            VersionError::MustStartWithDigit => {
                f.write_str("version number does not start with a digit")
            }
            VersionError::InvalidCharacter { character, index } => {
                write!(f, "invalid character {character:?} at byte {index}")
            }
            VersionError::Syntax { index, reason } => {
                write!(f, "invalid version syntax at byte {index}: {reason}")
            }
        }
    }
}

impl std::error::Error for VersionError {}

/// Test helpers shared by the ecosystem modules, defined for one version type:
/// `v` parses (panicking with the input on failure), `cmp` compares two strings,
/// `assert_increasing` checks a strictly increasing list in both directions, and
/// `assert_equal` checks equality of order, value and hash.
#[cfg(test)]
#[macro_export]
macro_rules! ordering_test_helpers {
    ($version:ty) => {
        fn v(s: &str) -> $version {
            <$version>::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
        }

        fn cmp(a: &str, b: &str) -> std::cmp::Ordering {
            v(a).cmp(&v(b))
        }

        fn hash_of(s: &str) -> u64 {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            v(s).hash(&mut hasher);
            hasher.finish()
        }

        /// Asserts that the versions are listed in strictly increasing order.
        fn assert_increasing(versions: &[&str]) {
            for pair in versions.windows(2) {
                if let [a, b] = pair {
                    assert_eq!(cmp(a, b), std::cmp::Ordering::Less, "{a} < {b}");
                    assert_eq!(cmp(b, a), std::cmp::Ordering::Greater, "{b} > {a}");
                }
            }
        }

        fn assert_equal(a: &str, b: &str) {
            assert_eq!(cmp(a, b), std::cmp::Ordering::Equal, "{a} == {b}");
            assert_eq!(v(a), v(b));
            assert_eq!(hash_of(a), hash_of(b), "hash({a}) == hash({b})");
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_dispatches_to_each_ecosystem() {
        // The same pair orders differently per ecosystem, which is the point of
        // dispatching on it.
        assert_eq!(
            compare(Ecosystem::Debian, "1.0~rc1", "1.0"),
            Ok(Ordering::Less)
        );
        assert_eq!(
            compare(Ecosystem::Rpm, "1.0~rc1", "1.0"),
            Ok(Ordering::Less)
        );
        assert_eq!(
            compare(Ecosystem::Alpine, "1.0_rc1", "1.0"),
            Ok(Ordering::Less)
        );
        assert_eq!(
            compare(Ecosystem::SemVer, "1.0.0-rc.1", "1.0.0"),
            Ok(Ordering::Less)
        );
        assert_eq!(
            compare(Ecosystem::Debian, "1.0-beta", "1.0"),
            Ok(Ordering::Greater)
        );
        assert_eq!(
            compare(Ecosystem::SemVer, "1.0.0-beta", "1.0.0"),
            Ok(Ordering::Less)
        );
        assert_eq!(
            compare(Ecosystem::Debian, "1.0", "1.00"),
            Ok(Ordering::Equal)
        );
        assert_eq!(
            compare(Ecosystem::Alpine, "1.0", "1.00"),
            Ok(Ordering::Less)
        );
    }

    #[test]
    fn compare_reports_the_first_invalid_argument() {
        assert_eq!(
            compare(Ecosystem::Debian, "", "1.0"),
            Err(VersionError::Empty)
        );
        assert_eq!(
            compare(Ecosystem::Debian, "1.0", "1.0-"),
            Err(VersionError::EmptyRevision)
        );
        assert_eq!(
            compare(Ecosystem::Rpm, "1.0", "x:1"),
            Err(VersionError::InvalidEpoch)
        );
        assert_eq!(
            compare(Ecosystem::Alpine, "a", "1"),
            Err(VersionError::MustStartWithDigit)
        );
        assert!(compare(Ecosystem::SemVer, "1.0", "1.0.0").is_err());
    }

    #[test]
    fn errors_have_readable_messages() {
        let err = VersionError::InvalidCharacter {
            character: '_',
            index: 3,
        };
        assert_eq!(err.to_string(), "invalid character '_' at byte 3");
        let err = VersionError::Syntax {
            index: 4,
            reason: "digits after '.'",
        };
        assert_eq!(
            err.to_string(),
            "invalid version syntax at byte 4: digits after '.'"
        );
    }
}
