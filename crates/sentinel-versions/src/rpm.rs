//! RPM package versions (`[epoch:]version[-release]`), ordered as rpm orders them.
//!
//! Advisories for Red Hat, Fedora, SUSE and the other rpm-based distributions name
//! fixed EVRs (epoch, version, release); an installed package is affected if rpm
//! would consider its EVR older. The ordering is rpm's `rpmverCmp`:
//!
//! - The epoch (digits before the first `:`, default 0) is compared numerically;
//!   it is stored as an unsigned 32-bit number, like rpm's `Epoch` tag.
//! - Then the versions, then the releases, are compared with `rpmvercmp`: each
//!   string is cut into segments, which are runs of ASCII digits, runs of ASCII
//!   letters, `~` or `^`; every other character only separates segments, so `1.0`,
//!   `1_0` and `1+0` are equal. Segments are compared in turn:
//!   - `~` sorts before anything, even the end of the string (`1.0~rc1 < 1.0`);
//!   - the end of the string sorts next;
//!   - `^` sorts after the end of the string but before any other segment
//!     (`1.0 < 1.0^git1 < 1.0.1`);
//!   - then letter runs, compared in ASCII order;
//!   - then digit runs, compared as numbers of any length (leading zeros are
//!     ignored, so `1.01 == 1.1`); a number is always newer than letters.
//! - The release is everything after the last `-`. A version without a release
//!   sorts before the same version with any release (rpm compares a missing
//!   release as older than a present one).
//!
//! rpm's own parser is lenient (it would treat `1.0-2-3` as version `1.0-2`);
//! this one accepts only what rpmbuild lets into a version or release: ASCII
//! letters, digits and `._+~^`, with a non-empty version and release.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::VersionError;
use crate::numeric::{cmp_decimal, split_run, trim_zeros};

/// A parsed rpm EVR.
#[derive(Debug, Clone)]
pub struct RpmVersion {
    text: String,
    epoch: u32,
    version: String,
    release: Option<String>,
}

impl RpmVersion {
    /// Parses `[epoch:]version[-release]` (see the [module documentation](self)).
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        if input.is_empty() {
            return Err(VersionError::Empty);
        }
        let (epoch, rest, offset) = match input.split_once(':') {
            Some((epoch_text, rest)) => {
                let epoch = parse_epoch(epoch_text)?;
                if rest.is_empty() {
                    return Err(VersionError::EmptyVersion);
                }
                (epoch, rest, epoch_text.len() + 1)
            }
            None => (0, input, 0),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((_, "")) => return Err(VersionError::EmptyRevision),
            Some((version, release)) => (version, Some(release)),
            None => (rest, None),
        };
        if version.is_empty() {
            return Err(VersionError::EmptyVersion);
        }
        check_characters(version, offset)?;
        if let Some(release) = release {
            check_characters(release, offset + version.len() + 1)?;
        }
        Ok(RpmVersion {
            text: input.to_owned(),
            epoch,
            version: version.to_owned(),
            release: release.map(str::to_owned),
        })
    }

    /// The epoch, 0 when the EVR has none.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The version: between the epoch and the release.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The release, if the EVR has one.
    pub fn release(&self) -> Option<&str> {
        self.release.as_deref()
    }
}

fn parse_epoch(epoch: &str) -> Result<u32, VersionError> {
    if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VersionError::InvalidEpoch);
    }
    let significant = trim_zeros(epoch);
    if significant.is_empty() {
        return Ok(0);
    }
    significant.parse().map_err(|_| VersionError::EpochTooLarge)
}

fn check_characters(part: &str, offset: usize) -> Result<(), VersionError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._+~^".contains(c);
    match part.char_indices().find(|&(_, c)| !allowed(c)) {
        Some((index, character)) => Err(VersionError::InvalidCharacter {
            character,
            index: offset + index,
        }),
        None => Ok(()),
    }
}

/// One unit of comparison of `rpmvercmp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Segment<'a> {
    Tilde,
    Caret,
    Alpha(&'a str),
    /// Digits without their leading zeros.
    Number(&'a str),
}

/// Sorts segment kinds against each other, `None` being the end of the string.
fn rank(segment: Option<Segment<'_>>) -> u8 {
    match segment {
        Some(Segment::Tilde) => 0,
        None => 1,
        Some(Segment::Caret) => 2,
        Some(Segment::Alpha(_)) => 3,
        Some(Segment::Number(_)) => 4,
    }
}

struct Segments<'a> {
    rest: &'a str,
}

impl<'a> Segments<'a> {
    fn new(s: &'a str) -> Self {
        Segments { rest: s }
    }
}

impl<'a> Iterator for Segments<'a> {
    type Item = Segment<'a>;

    fn next(&mut self) -> Option<Segment<'a>> {
        let is_separator = |c: char| !(c.is_ascii_alphanumeric() || c == '~' || c == '^');
        let rest = self.rest.trim_start_matches(is_separator);
        let mut chars = rest.chars();
        let (segment, rest) = match chars.next()? {
            '~' => (Segment::Tilde, chars.as_str()),
            '^' => (Segment::Caret, chars.as_str()),
            c if c.is_ascii_digit() => {
                let (digits, rest) = split_run(rest, |c| c.is_ascii_digit());
                (Segment::Number(trim_zeros(digits)), rest)
            }
            _ => {
                let (letters, rest) = split_run(rest, |c| c.is_ascii_alphabetic());
                (Segment::Alpha(letters), rest)
            }
        };
        self.rest = rest;
        Some(segment)
    }
}

/// rpm's `rpmvercmp`.
fn rpmvercmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (Segments::new(a), Segments::new(b));
    loop {
        let (sa, sb) = (a.next(), b.next());
        let ordering = rank(sa).cmp(&rank(sb)).then_with(|| match (sa, sb) {
            (Some(Segment::Alpha(x)), Some(Segment::Alpha(y))) => x.cmp(y),
            (Some(Segment::Number(x)), Some(Segment::Number(y))) => cmp_decimal(x, y),
            _ => Ordering::Equal,
        });
        if ordering != Ordering::Equal || sa.is_none() {
            return ordering;
        }
    }
}

impl Ord for RpmVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| rpmvercmp(&self.version, &other.version))
            .then_with(|| match (&self.release, &other.release) {
                (Some(a), Some(b)) => rpmvercmp(a, b),
                (a, b) => a.is_some().cmp(&b.is_some()),
            })
    }
}

impl PartialOrd for RpmVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for RpmVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for RpmVersion {}

impl Hash for RpmVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.epoch.hash(state);
        Segments::new(&self.version).for_each(|segment| segment.hash(state));
        self.release.is_some().hash(state);
        if let Some(release) = &self.release {
            Segments::new(release).for_each(|segment| segment.hash(state));
        }
    }
}

impl FromStr for RpmVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for RpmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    crate::ordering_test_helpers!(RpmVersion);

    #[test]
    fn numeric_segments() {
        assert_increasing(&[
            "1.0", "2.0", "2.0.1", "4.999.9", "5.0", "20101121", "20101122",
        ]);
        assert_increasing(&["5.5p1", "5.5p2", "5.5p10", "5.6p1", "6.5p1"]);
        assert_increasing(&["10.0001", "10.0039"]);
        assert_equal("10.0001", "10.1");
        assert_increasing(&["1.99999999999999999999999", "1.100000000000000000000000"]);
    }

    #[test]
    fn letters_sort_before_numbers_and_after_the_end() {
        assert_increasing(&["2.0.1", "2.0.1a"]);
        // `a` meets `1` in the third segment and numbers are always newer.
        assert_increasing(&["1.0a", "1.0.1"]);
        assert_increasing(&["xyz.4", "2", "8"]);
        assert_increasing(&["10xyz", "10.1xyz"]);
        assert_increasing(&["xyz10", "xyz10.1"]);
        assert_increasing(&["10a1", "10a2", "10b2"]);
        assert_increasing(&["1.0a", "1.0aa"]);
        assert_increasing(&["1.0B", "1.0a"]);
        // Without a tilde, "rc" is just one more segment, so it is newer.
        assert_increasing(&["6.0", "6.0.rc1"]);
    }

    #[test]
    fn separators_only_separate() {
        assert_equal("2.0", "2_0");
        assert_equal("2.0", "2+0");
        assert_equal("2..0", "2.0");
        assert_equal("a+", "a_");
        assert_equal("1.0.", "1.0");
        assert_equal("1.0a", "1.0.a");
    }

    #[test]
    fn tilde_sorts_before_everything_even_the_end() {
        assert_increasing(&["1.0~rc1", "1.0~rc2", "1.0"]);
        assert_increasing(&["1.0~rc1~git123", "1.0~rc1", "1.0"]);
        assert_increasing(&["1.0~~", "1.0~", "1.0"]);
        assert_increasing(&["1.0~", "1.0^"]);
    }

    #[test]
    fn caret_sorts_after_the_end_but_before_other_segments() {
        assert_increasing(&["1.0", "1.0^", "1.0^git1", "1.0^git2", "1.0.1"]);
        assert_increasing(&["1.0^git1", "1.01"]);
        assert_increasing(&["1.0^20160101", "1.0^20160101^git1", "1.0^20160102", "1.0.1"]);
        assert_increasing(&["1.0^", "1.0a"]);
    }

    #[test]
    fn tilde_and_caret_together() {
        assert_increasing(&["1.0~rc1", "1.0~rc1^git1", "1.0"]);
        assert_increasing(&["1.0", "1.0^git1~pre", "1.0^git1"]);
    }

    #[test]
    fn epoch_then_version_then_release() {
        assert_increasing(&["2.0", "1:1.0", "2:0.1"]);
        assert_equal("0:1.0-1", "1.0-1");
        assert_equal("00:1.0", "1.0");
        assert_increasing(&["1.0-9", "1.0.1-1"]);
        assert_increasing(&["1.0-1", "1.0-2", "1.0-10"]);
        assert_increasing(&["1.0-1.el9", "1.0-1.el9_1", "1.0-2.el9"]);
        assert_increasing(&["0:2.4.57-5.el9", "0:2.4.57-8.el9", "1:2.4.57-1.el9"]);
    }

    #[test]
    fn a_missing_release_sorts_before_any_release() {
        assert_increasing(&["1.0", "1.0-~", "1.0-0", "1.0-1"]);
        assert_increasing(&["1.0", "1.0-."]);
        assert_increasing(&["1.0-1", "1.0.1"]);
    }

    #[test]
    fn parts_and_display() {
        let version = v("3:1.2.3^git1-4.el9_2");
        assert_eq!(version.epoch(), 3);
        assert_eq!(version.version(), "1.2.3^git1");
        assert_eq!(version.release(), Some("4.el9_2"));
        assert_eq!(version.to_string(), "3:1.2.3^git1-4.el9_2");
        assert_eq!(v("1.0").release(), None);
    }

    #[test]
    fn malformed_versions_are_rejected() {
        let err = |s: &str| RpmVersion::parse(s).err();
        assert_eq!(err(""), Some(VersionError::Empty));
        assert_eq!(err(":1.0"), Some(VersionError::InvalidEpoch));
        assert_eq!(err("a:1.0"), Some(VersionError::InvalidEpoch));
        assert_eq!(err("4294967296:1"), Some(VersionError::EpochTooLarge));
        assert!(err("4294967295:1").is_none());
        assert_eq!(err("1:"), Some(VersionError::EmptyVersion));
        assert_eq!(err("-1"), Some(VersionError::EmptyVersion));
        assert_eq!(err("1:-1"), Some(VersionError::EmptyVersion));
        assert_eq!(err("1.0-"), Some(VersionError::EmptyRevision));
        assert_eq!(
            err("1.0-2-3"),
            Some(VersionError::InvalidCharacter {
                character: '-',
                index: 3
            })
        );
        assert_eq!(
            err("1:1:1"),
            Some(VersionError::InvalidCharacter {
                character: ':',
                index: 3
            })
        );
        assert_eq!(
            err("1.0 "),
            Some(VersionError::InvalidCharacter {
                character: ' ',
                index: 3
            })
        );
        assert_eq!(
            err("1.0-1/2"),
            Some(VersionError::InvalidCharacter {
                character: '/',
                index: 5
            })
        );
        assert_eq!(
            err("1.α"),
            Some(VersionError::InvalidCharacter {
                character: 'α',
                index: 2
            })
        );
    }
}
