//! Alpine Linux package versions, ordered as apk-tools orders them.
//!
//! Alpine's security database and OSV's Alpine advisories name fixed package
//! versions such as `1.36.1-r7`; an installed package is affected if apk would
//! consider its version older. This follows `version.c` of apk-tools 3, whose
//! grammar is Gentoo's with a commit hash added:
//!
//! ```text
//! number { "." number } [ letter ] { "_" suffix [ number ] } [ "~" hash ] [ "-r" number ]
//! ```
//!
//! - `letter` is one lowercase ASCII letter, `hash` lowercase hexadecimal digits.
//! - `suffix` is one of `alpha`, `beta`, `pre`, `rc` (pre-releases, older than the
//!   version without them) or `cvs`, `svn`, `git`, `hg`, `p` (post-releases,
//!   newer), ranked in that order.
//! - `-rN` is Alpine's package revision.
//!
//! Both versions are read token by token. Tokens of the same kind compare by
//! value: numbers numerically, except that a number after a `.` which starts with
//! `0` in either version is compared as a string (so `1.01 < 1.1` and
//! `1.0 < 1.00`, as in Gentoo); letters, suffix ranks and hashes in order. Where
//! the kinds differ, or one version ends, the version that goes on is newer,
//! unless what it goes on with is a pre-release suffix. Hence, for instance,
//! `1.0_rc1 < 1.0 < 1.0-r1 < 1.0_p1 < 1.0a < 1.0.1`.
//!
//! apk-tools keeps numbers in 64 bits and wraps around on longer ones; this
//! implementation compares numbers of any length exactly. apk-tools 2 accepted a
//! few more spellings (such as digits after the letter, `1.0a1`), which version 3
//! and this parser reject.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::VersionError;
use crate::numeric::{cmp_decimal, split_run, trim_zeros};

/// A parsed apk version.
#[derive(Debug, Clone)]
pub struct ApkVersion {
    text: String,
    tokens: Vec<Token>,
}

/// A suffix after `_`, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Suffix {
    Alpha,
    Beta,
    Pre,
    Rc,
    Cvs,
    Svn,
    Git,
    Hg,
    P,
}

impl Suffix {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "alpha" => Suffix::Alpha,
            "beta" => Suffix::Beta,
            "pre" => Suffix::Pre,
            "rc" => Suffix::Rc,
            "cvs" => Suffix::Cvs,
            "svn" => Suffix::Svn,
            "git" => Suffix::Git,
            "hg" => Suffix::Hg,
            "p" => Suffix::P,
            _ => return None,
        })
    }

    fn is_pre_release(self) -> bool {
        self <= Suffix::Rc
    }
}

/// A token of an apk version, normalised so that derived `Eq`/`Hash` agree with
/// the ordering: numbers compared numerically have their leading zeros stripped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Token {
    /// The leading number.
    Initial(String),
    /// A number after `.`, as written: its leading zeros matter.
    Dotted(String),
    Letter(char),
    Suffix(Suffix),
    SuffixNumber(String),
    CommitHash(String),
    Revision(String),
}

/// How far into the grammar a version has got, which decides what may follow:
/// letters and dots only after numbers, suffixes (repeatable) only before the
/// hash, the hash only before the revision, nothing after the revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Number,
    Letter,
    Suffix,
    SuffixNumber,
    CommitHash,
    Revision,
}

impl Token {
    fn stage(&self) -> Stage {
        match self {
            Token::Initial(_) | Token::Dotted(_) => Stage::Number,
            Token::Letter(_) => Stage::Letter,
            Token::Suffix(_) => Stage::Suffix,
            Token::SuffixNumber(_) => Stage::SuffixNumber,
            Token::CommitHash(_) => Stage::CommitHash,
            Token::Revision(_) => Stage::Revision,
        }
    }
}

/// Orders tokens of different kinds at the same position, `None` being the end:
/// going on makes a version newer, except with a pre-release suffix; and among
/// the kinds, the one that can come earlier in a version is the newer one.
fn rank(token: Option<&Token>) -> u8 {
    match token {
        Some(Token::Suffix(suffix)) if suffix.is_pre_release() => 0,
        None => 1,
        Some(Token::Revision(_)) => 2,
        Some(Token::CommitHash(_)) => 3,
        Some(Token::SuffixNumber(_)) => 4,
        Some(Token::Suffix(_)) => 5,
        Some(Token::Letter(_)) => 6,
        Some(Token::Dotted(_)) => 7,
        Some(Token::Initial(_)) => 8,
    }
}

fn cmp_same_kind(a: &Token, b: &Token) -> Ordering {
    match (a, b) {
        (Token::Initial(x), Token::Initial(y))
        | (Token::SuffixNumber(x), Token::SuffixNumber(y))
        | (Token::Revision(x), Token::Revision(y)) => cmp_decimal(x, y),
        (Token::Dotted(x), Token::Dotted(y)) => {
            if x.starts_with('0') || y.starts_with('0') {
                x.cmp(y)
            } else {
                cmp_decimal(x, y)
            }
        }
        (Token::Letter(x), Token::Letter(y)) => x.cmp(y),
        (Token::Suffix(x), Token::Suffix(y)) => x.cmp(y),
        (Token::CommitHash(x), Token::CommitHash(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

impl ApkVersion {
    /// Parses a version with apk-tools' grammar (see the [module documentation](self)).
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        Ok(ApkVersion {
            text: input.to_owned(),
            tokens: tokenize(input)?,
        })
    }
}

fn tokenize(input: &str) -> Result<Vec<Token>, VersionError> {
    if input.is_empty() {
        return Err(VersionError::Empty);
    }
    let (digits, mut rest) = split_run(input, |c| c.is_ascii_digit());
    if digits.is_empty() {
        return Err(VersionError::MustStartWithDigit);
    }
    let mut tokens = vec![Token::Initial(trim_zeros(digits).to_owned())];
    let mut stage = Stage::Number;

    loop {
        let mut chars = rest.chars();
        let Some(c) = chars.next() else {
            break;
        };
        let after = chars.as_str();
        let index = input.len() - rest.len();
        let syntax = |offset: usize, reason: &'static str| VersionError::Syntax {
            index: index + offset,
            reason,
        };
        let (token, remaining) = match c {
            'a'..='z' if stage == Stage::Number => (Token::Letter(c), after),
            'a'..='z' => return Err(syntax(0, "a letter may only follow a number")),
            '.' if stage == Stage::Number => {
                let (digits, remaining) = split_run(after, |c| c.is_ascii_digit());
                if digits.is_empty() {
                    return Err(syntax(1, "digits must follow '.'"));
                }
                (Token::Dotted(digits.to_owned()), remaining)
            }
            '.' => return Err(syntax(0, "'.' may only follow a number")),
            '0'..='9' if stage == Stage::Suffix => {
                let (digits, remaining) = split_run(rest, |c| c.is_ascii_digit());
                (
                    Token::SuffixNumber(trim_zeros(digits).to_owned()),
                    remaining,
                )
            }
            '0'..='9' => return Err(syntax(0, "digits may not follow a letter")),
            '_' if stage <= Stage::SuffixNumber => {
                let (name, remaining) = split_run(after, |c| c.is_ascii_lowercase());
                let suffix = Suffix::from_name(name).ok_or_else(|| {
                    syntax(
                        1,
                        "the suffix must be alpha, beta, pre, rc, cvs, svn, git, hg or p",
                    )
                })?;
                (Token::Suffix(suffix), remaining)
            }
            '_' => {
                return Err(syntax(
                    0,
                    "a suffix may not follow a commit hash or revision",
                ));
            }
            '~' if stage < Stage::CommitHash => {
                let is_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
                let (hash, remaining) = split_run(after, is_hex);
                if hash.is_empty() {
                    return Err(syntax(1, "a lowercase hexadecimal hash must follow '~'"));
                }
                (Token::CommitHash(hash.to_owned()), remaining)
            }
            '~' => return Err(syntax(0, "only one commit hash, before the revision")),
            '-' if stage < Stage::Revision => {
                let Some(after_r) = after.strip_prefix('r') else {
                    return Err(syntax(1, "'-' must be followed by 'r' and the revision"));
                };
                let (digits, remaining) = split_run(after_r, |c| c.is_ascii_digit());
                if digits.is_empty() {
                    return Err(syntax(2, "digits must follow '-r'"));
                }
                (Token::Revision(trim_zeros(digits).to_owned()), remaining)
            }
            '-' => return Err(syntax(0, "only one revision, at the end")),
            character => return Err(VersionError::InvalidCharacter { character, index }),
        };
        stage = token.stage();
        tokens.push(token);
        rest = remaining;
    }
    Ok(tokens)
}

impl Ord for ApkVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let (mut a, mut b) = (self.tokens.iter(), other.tokens.iter());
        loop {
            let (ta, tb) = (a.next(), b.next());
            let ordering = rank(ta).cmp(&rank(tb)).then_with(|| match (ta, tb) {
                (Some(x), Some(y)) => cmp_same_kind(x, y),
                _ => Ordering::Equal,
            });
            if ordering != Ordering::Equal || ta.is_none() {
                return ordering;
            }
        }
    }
}

impl PartialOrd for ApkVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ApkVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ApkVersion {}

impl Hash for ApkVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.tokens.hash(state);
    }
}

impl FromStr for ApkVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ApkVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    crate::ordering_test_helpers!(ApkVersion);

    #[test]
    fn release_candidates_revisions_and_patches() {
        // A revision repackages the same upstream release; `_p` is a newer upstream
        // patch level, so it wins over any revision of the plain version.
        assert_increasing(&["1.0_rc1", "1.0", "1.0-r1", "1.0-r2", "1.0_p1", "1.0_p1-r1"]);
        assert_increasing(&["1.0_p9-r0", "1.0_p10-r0"]);
        assert_increasing(&["1.3_pre1-r1", "1.3", "1.3.2"]);
    }

    #[test]
    fn suffix_ranks() {
        assert_increasing(&[
            "1.0_alpha",
            "1.0_beta",
            "1.0_pre",
            "1.0_rc",
            "1.0",
            "1.0_cvs",
            "1.0_svn",
            "1.0_git",
            "1.0_hg",
            "1.0_p",
        ]);
        assert_increasing(&[
            "1.0_alpha",
            "1.0_alpha1",
            "1.0_alpha2",
            "1.0_alpha10",
            "1.0_beta",
        ]);
        assert_increasing(&["1.0_git20240101", "1.0_p1"]);
        // A second pre-release suffix makes it older again.
        assert_increasing(&["0.1.0_alpha_pre2", "0.1.0_alpha", "0.1.0_alpha1"]);
        assert_increasing(&["1.0_p1_pre2", "1.0_p1", "1.0_p1_p1"]);
        assert_increasing(&["1.0.0_pre20191002222144-r0", "1.0.0_pre20210530193627-r0"]);
    }

    #[test]
    fn letters_sit_between_the_end_and_more_numbers() {
        assert_increasing(&["1.0", "1.0a", "1.0b", "1.0z", "1.0.1"]);
        assert_increasing(&["2.3.0b-r1", "2.3.0b-r2", "2.3.0c"]);
        assert_increasing(&["1.0_p1", "1.0a"]);
    }

    #[test]
    fn numbers_after_a_dot_with_leading_zeros_compare_as_strings() {
        assert_increasing(&["8.2.0", "8.2.001", "8.2.0015", "8.2.002", "8.2.1"]);
        assert_increasing(&["1.0", "1.00", "1.01", "1.010", "1.09", "1.1"]);
        assert_increasing(&["1.2.3", "1.2.3.1", "1.2.4", "1.2.10", "1.10"]);
        assert_increasing(&["1.99999999999999999999999", "1.100000000000000000000000"]);
    }

    #[test]
    fn leading_number_and_other_numbers_compare_numerically() {
        assert_increasing(&["1.0.0", "006", "10"]);
        assert_equal("01.2", "1.2");
        assert_equal("1.0_rc01", "1.0_rc1");
        assert_equal("1.0-r007", "1.0-r7");
        assert_increasing(&["1.0-r9", "1.0-r10"]);
    }

    #[test]
    fn commit_hashes() {
        assert_increasing(&["1.0~1234", "1.0~2345"]);
        assert_increasing(&["1.0~1234-r1", "1.0~2345-r0"]);
        assert_increasing(&["1.0~1234-r0", "1.0~1234-r1"]);
        assert_increasing(&["1.0", "1.0-r1", "1.0~abc", "1.0_p1"]);
        assert_increasing(&["0.1_pre2~1234abcd", "0.1_pre2_p1"]);
    }

    #[test]
    fn display_keeps_the_original_spelling() {
        for s in ["01.002_rc03-r04", "1.0", "0.1_pre2~1234abcd-r1"] {
            assert_eq!(v(s).to_string(), s);
        }
    }

    #[test]
    fn valid_spellings() {
        for s in [
            "1",
            "1.2",
            "0.1_pre2",
            "0.1_pre2~1234abcd",
            "0.1_p1_pre2",
            "0.1_alpha1_pre2",
            "0.1_git20240101_pre1",
            "1.0a_p1-r3",
            "1.0a~0-r0",
        ] {
            assert!(ApkVersion::parse(s).is_ok(), "{s} is valid");
        }
    }

    #[test]
    fn malformed_versions_are_rejected() {
        let err = |s: &str| ApkVersion::parse(s).err();
        let syntax = |s: &str| matches!(err(s), Some(VersionError::Syntax { .. }));
        assert_eq!(err(""), Some(VersionError::Empty));
        for s in [".1", "a", "_pre1", "-r1", "~abc"] {
            assert_eq!(err(s), Some(VersionError::MustStartWithDigit), "{s}");
        }
        for s in [
            "0.1bc",
            "0.1bc1",
            "0.1a1",
            "0.1a.1",
            "0.1_pre2~",
            "0.1_pre2~1234xbcd",
            "0.1_pre2~1234abcd_pre1",
            "0.1_pre2-r1~1234",
            "0.1_foobar",
            "0.1_foobar1",
            "0.1-pre1.1",
            "0.1-r",
            "0.1-r2_pre1",
            "0.1-r2_p3_pre1",
            "0.1-r2-r3",
            "0.1-r2.1",
            "0.1_",
            "0.1_-r0",
            "0.1__alpha",
            "0.1_1_alpha",
            "0.1_Alpha",
            "1..0",
            "1.0.",
            "1.0~1~2",
        ] {
            assert!(syntax(s), "{s} is rejected as bad syntax, got {:?}", err(s));
        }
        assert_eq!(
            err("1.0-r1x"),
            Some(VersionError::Syntax {
                index: 6,
                reason: "a letter may only follow a number"
            })
        );
        assert_eq!(err("1.0_rc"), None, "a suffix without a number is fine");
        assert_eq!(
            err("1.0_foo"),
            Some(VersionError::Syntax {
                index: 4,
                reason: "the suffix must be alpha, beta, pre, rc, cvs, svn, git, hg or p"
            })
        );
        assert_eq!(
            err("1.0A"),
            Some(VersionError::InvalidCharacter {
                character: 'A',
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
            err("1+2"),
            Some(VersionError::InvalidCharacter {
                character: '+',
                index: 1
            })
        );
    }
}
