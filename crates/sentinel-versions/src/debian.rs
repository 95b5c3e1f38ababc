//! Debian and Ubuntu package versions, ordered exactly as dpkg orders them.
//!
//! Advisories for Debian-based systems name the first fixed version of a source
//! package; an installed version is affected if dpkg would consider it older.
//! The rules below are dpkg's (`parseversion` and `verrevcmp` in libdpkg), which
//! Debian Policy §5.6.12 describes:
//!
//! - The form is `[epoch:]upstream_version[-debian_revision]`. Blanks (spaces and
//!   tabs) around the whole string are ignored, blanks inside it are an error.
//! - The epoch is everything before the first `:`; it must be a decimal number no
//!   larger than 2147483647 and defaults to 0.
//! - The revision is everything after the *last* `-`; it must not be empty, and
//!   may only contain ASCII letters, digits and `.+~`. A missing revision compares
//!   like the revision `0` (dpkg stores it as an empty string, which `verrevcmp`
//!   treats as equal to `0`).
//! - The upstream version must start with a digit and may contain ASCII letters,
//!   digits and `.+~`, plus `-` (possible only when there is a revision) and `:`
//!   (possible only when there is an epoch).
//! - Ordering compares the epochs numerically, then the upstream versions and then
//!   the revisions with `verrevcmp`: both strings are cut into alternating
//!   non-digit and digit parts. Non-digit parts are compared character by
//!   character, where `~` sorts before everything (even the end of the part),
//!   then the end of the part, then letters, then all other characters, each
//!   group in ASCII order. Digit parts are compared as numbers of any length, an
//!   empty digit part counting as 0.
//!
//! So `1.0` and `1.00` (and `1.0` and `1.0-0`) are *equal* versions; `Eq` and
//! `Hash` follow the ordering, and `Display` shows the string as it was written.
//!
//! Where dpkg is more lenient than Debian Policy because it reads the epoch with
//! `strtol`, this parser follows Policy: an epoch with a sign (`+1:2.0`) or with
//! whitespace before it is rejected, although dpkg accepts it.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::VersionError;
use crate::numeric::{cmp_decimal, split_run, trim_zeros};

/// dpkg stores the epoch in a C `int` and rejects anything larger.
const MAX_EPOCH: u32 = 2_147_483_647;

/// A parsed dpkg version.
#[derive(Debug, Clone)]
pub struct DebianVersion {
    text: String,
    epoch: u32,
    upstream: String,
    revision: Option<String>,
}

impl DebianVersion {
    /// Parses a version with dpkg's rules (see the [module documentation](self)).
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        let is_blank = |c: char| c == ' ' || c == '\t';
        let start_trimmed = input.trim_start_matches(is_blank);
        let offset = input.len() - start_trimmed.len();
        let text = start_trimmed.trim_end_matches(is_blank);
        if text.is_empty() {
            return Err(VersionError::Empty);
        }
        if text.contains(is_blank) {
            return Err(VersionError::EmbeddedWhitespace);
        }

        let (epoch, rest, rest_offset) = match text.split_once(':') {
            Some((epoch_text, rest)) => {
                let epoch = parse_epoch(epoch_text)?;
                if rest.is_empty() {
                    return Err(VersionError::EmptyVersion);
                }
                (epoch, rest, offset + epoch_text.len() + 1)
            }
            None => (0, text, offset),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((_, "")) => return Err(VersionError::EmptyRevision),
            Some((upstream, revision)) => (upstream, Some(revision)),
            None => (rest, None),
        };
        if upstream.is_empty() {
            return Err(VersionError::EmptyVersion);
        }
        if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(VersionError::MustStartWithDigit);
        }
        check_characters(upstream, rest_offset, |c| {
            c.is_ascii_alphanumeric() || ".+~-:".contains(c)
        })?;
        if let Some(revision) = revision {
            check_characters(revision, rest_offset + upstream.len() + 1, |c| {
                c.is_ascii_alphanumeric() || ".+~".contains(c)
            })?;
        }

        Ok(DebianVersion {
            text: text.to_owned(),
            epoch,
            upstream: upstream.to_owned(),
            revision: revision.map(str::to_owned),
        })
    }

    /// The epoch, 0 when the version has none.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream version: between the epoch and the revision.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The Debian revision, `None` for native packages written without one.
    pub fn revision(&self) -> Option<&str> {
        self.revision.as_deref()
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
    match significant.parse::<u32>() {
        Ok(epoch) if epoch <= MAX_EPOCH => Ok(epoch),
        _ => Err(VersionError::EpochTooLarge),
    }
}

fn check_characters(
    part: &str,
    offset: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<(), VersionError> {
    match part.char_indices().find(|&(_, c)| !allowed(c)) {
        Some((index, character)) => Err(VersionError::InvalidCharacter {
            character,
            index: offset + index,
        }),
        None => Ok(()),
    }
}

/// dpkg's `verrevcmp`.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (Parts::new(a), Parts::new(b));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (pa, pb) => {
                // A string that has run out compares like an empty non-digit part
                // followed by the number 0.
                let (a_text, a_num) = pa.unwrap_or(("", ""));
                let (b_text, b_num) = pb.unwrap_or(("", ""));
                let ordering =
                    cmp_non_digits(a_text, b_text).then_with(|| cmp_decimal(a_num, b_num));
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
        }
    }
}

/// Compares non-digit parts character by character, the end of a part included.
fn cmp_non_digits(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.bytes(), b.bytes());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (ca, cb) => {
                let ordering = weight(ca).cmp(&weight(cb));
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
        }
    }
}

/// dpkg's `order()`: `~` < end of part < letters < everything else.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// Yields `(non-digit part, digit part)` pairs; either may be empty.
struct Parts<'a> {
    rest: &'a str,
}

impl<'a> Parts<'a> {
    fn new(s: &'a str) -> Self {
        Parts { rest: s }
    }
}

impl<'a> Iterator for Parts<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let (text, rest) = split_run(self.rest, |c| !c.is_ascii_digit());
        let (digits, rest) = split_run(rest, |c| c.is_ascii_digit());
        self.rest = rest;
        Some((text, digits))
    }
}

/// Hashes what `verrevcmp` looks at, so that equal strings hash alike.
fn hash_verrev<H: Hasher>(s: &str, state: &mut H) {
    let mut parts = Parts::new(s).peekable();
    while let Some((text, digits)) = parts.next() {
        let digits = trim_zeros(digits);
        // "", "0" and "00" are all equal; only a lone all-zero string yields this
        // pair at the end, because every later pair starts with a non-digit.
        if text.is_empty() && digits.is_empty() && parts.peek().is_none() {
            break;
        }
        text.hash(state);
        digits.hash(state);
    }
}

impl Ord for DebianVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| {
                verrevcmp(
                    self.revision.as_deref().unwrap_or(""),
                    other.revision.as_deref().unwrap_or(""),
                )
            })
    }
}

impl PartialOrd for DebianVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for DebianVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DebianVersion {}

impl Hash for DebianVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.epoch.hash(state);
        hash_verrev(&self.upstream, state);
        hash_verrev(self.revision.as_deref().unwrap_or(""), state);
    }
}

impl FromStr for DebianVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for DebianVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    crate::ordering_test_helpers!(DebianVersion);

    #[test]
    fn tilde_sorts_before_everything_even_the_end() {
        // The ladder from Debian Policy §5.6.12.
        assert_increasing(&["1.0~~", "1.0~~a", "1.0~", "1.0", "1.0a"]);
        assert_increasing(&["1.0~rc1", "1.0~rc2", "1.0"]);
        assert_increasing(&["1.0~beta", "1.0~rc1", "1.0"]);
        // Backports are built as `~bpo` revisions so the next stable upload wins.
        assert_increasing(&["2.30-1~bpo12+1", "2.30-1"]);
        assert_increasing(&["2.30-1~bpo", "2.30-1", "2.30-1+b1"]);
    }

    #[test]
    fn letters_sort_before_other_characters() {
        // The end of the part sits between `~` and the letters.
        assert_increasing(&["1:1.0~", "1:1.0", "1:1.0A", "1:1.0Z", "1:1.0a", "1:1.0z"]);
        // Other characters follow in ASCII order: `+` < `-` < `.` < `:`.
        assert_increasing(&["1:1.0z", "1:1.0+", "1:1.0-0-1", "1:1.0.", "1:1.0:"]);
        // `a` is compared with `.`: letters first, whatever the digits after them.
        assert_increasing(&["1.0a", "1.0.1"]);
        assert_increasing(&["1.0+dfsg", "1.0.1"]);
        assert_increasing(&["1.0", "1.0+dfsg", "1.0+dfsg1"]);
    }

    #[test]
    fn security_and_stable_updates_sort_after_the_base_revision() {
        assert_increasing(&["1.0-1", "1.0-1+deb12u1", "1.0-1+deb12u2", "1.0-2"]);
        assert_increasing(&["1.0-1", "1.0-1ubuntu0.22.04.1", "1.0-1ubuntu1", "1.0-2"]);
        assert_increasing(&["2.36-9+deb12u3", "2.36-9+deb12u10"]);
    }

    #[test]
    fn digits_compare_numerically_at_any_length() {
        assert_increasing(&["1.2.3", "1.9", "1.10", "1.100"]);
        assert_increasing(&[
            "9",
            "10",
            "99999999999999999999999",
            "100000000000000000000000",
        ]);
        assert_increasing(&["1.99999999999999999999999", "1.100000000000000000000000"]);
        assert_equal("1.0", "1.00");
        assert_equal("1.000000000000000000000000000001", "1.1");
        assert_equal("010", "10");
    }

    #[test]
    fn epochs_override_everything_else() {
        assert_increasing(&["2.0", "1:0.1", "1:1.0", "2:0"]);
        assert_increasing(&["9999", "1:0"]);
        assert_increasing(&["1:999", "2:0~rc1"]);
        assert_equal("0:1.0", "1.0");
        assert_equal("00:1.0", "1.0");
        assert_equal("2147483647:1.0", "2147483647:1.00");
    }

    #[test]
    fn absent_revision_equals_revision_zero() {
        // dpkg stores no revision as "", and verrevcmp("", "0") is 0.
        assert_equal("1.0", "1.0-0");
        assert_equal("1.0-0", "1.0-00");
        assert_increasing(&["1.0~", "1.0", "1.0-0.1", "1.0-1"]);
        assert_increasing(&["1.0-~", "1.0", "1.0-a"]);
    }

    #[test]
    fn trailing_separators_are_not_ignored_but_empty_numbers_are_zero() {
        // "1." splits into "", 1, "." and an empty number, which counts as 0.
        assert_equal("1.", "1.0");
        assert_increasing(&["1", "1.", "1.1"]);
        assert_increasing(&["1.0", "1.0."]);
    }

    #[test]
    fn hyphens_and_colons_in_the_upstream_version() {
        let version = v("1:2.0-rc1-3");
        assert_eq!(version.epoch(), 1);
        assert_eq!(version.upstream(), "2.0-rc1");
        assert_eq!(version.revision(), Some("3"));
        let version = v("1:2:3");
        assert_eq!(
            (version.epoch(), version.upstream(), version.revision()),
            (1, "2:3", None)
        );
        assert_increasing(&["1:2.3", "1:2:3"]);
        assert_increasing(&["1.0-1", "1.0-1-1"]);
    }

    #[test]
    fn surrounding_blanks_are_ignored_like_dpkg_does() {
        let version = v(" \t1.0-1 ");
        assert_eq!(version.to_string(), "1.0-1");
        assert_equal(" 1.0", "1.0\t");
    }

    #[test]
    fn display_keeps_the_original_spelling() {
        for s in ["00:1.00-01", "1.0", "1:2:3-4~bpo"] {
            assert_eq!(v(s).to_string(), s);
        }
    }

    #[test]
    fn malformed_versions_are_rejected() {
        let err = |s: &str| DebianVersion::parse(s).err();
        assert_eq!(err(""), Some(VersionError::Empty));
        assert_eq!(err(" \t "), Some(VersionError::Empty));
        assert_eq!(err("1.0 1"), Some(VersionError::EmbeddedWhitespace));
        assert_eq!(err(":1.0"), Some(VersionError::InvalidEpoch));
        assert_eq!(err("a:1.0"), Some(VersionError::InvalidEpoch));
        assert_eq!(err("1.0-a:b"), Some(VersionError::InvalidEpoch));
        assert_eq!(err("+1:1.0"), Some(VersionError::InvalidEpoch));
        assert_eq!(err("-1:1.0"), Some(VersionError::InvalidEpoch));
        assert_eq!(err("2147483648:1"), Some(VersionError::EpochTooLarge));
        assert_eq!(
            err("99999999999999999999:1"),
            Some(VersionError::EpochTooLarge)
        );
        assert_eq!(err("1:"), Some(VersionError::EmptyVersion));
        assert_eq!(err("-1"), Some(VersionError::EmptyVersion));
        assert_eq!(err("1:-1"), Some(VersionError::EmptyVersion));
        assert_eq!(err("1.0-"), Some(VersionError::EmptyRevision));
        assert_eq!(err("1.0-1-"), Some(VersionError::EmptyRevision));
        assert_eq!(err("a1.0"), Some(VersionError::MustStartWithDigit));
        assert_eq!(err("1:a"), Some(VersionError::MustStartWithDigit));
        assert_eq!(err("~1"), Some(VersionError::MustStartWithDigit));
        assert_eq!(
            err("1.0_1"),
            Some(VersionError::InvalidCharacter {
                character: '_',
                index: 3
            })
        );
        assert_eq!(
            err(" 2:1.0_1"),
            Some(VersionError::InvalidCharacter {
                character: '_',
                index: 6
            })
        );
        assert_eq!(
            err("1:2-3:4"),
            Some(VersionError::InvalidCharacter {
                character: ':',
                index: 5
            })
        );
        assert_eq!(
            err("1.0-1_2"),
            Some(VersionError::InvalidCharacter {
                character: '_',
                index: 5
            })
        );
        assert_eq!(
            err("1.0é"),
            Some(VersionError::InvalidCharacter {
                character: 'é',
                index: 3
            })
        );
        assert_eq!(
            err("1.0\n"),
            Some(VersionError::InvalidCharacter {
                character: '\n',
                index: 3
            })
        );
    }
}
