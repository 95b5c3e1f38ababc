//! Order laws for every ecosystem, over generated valid versions.
//!
//! `sort`, `BTreeMap` and range checks silently misbehave if `Ord` is not a total
//! order or disagrees with `Eq`/`Hash`, so these properties are checked on strings
//! from small alphabets, where equal and nearly equal versions are common.

use std::cmp::Ordering;
use std::collections::hash_map::DefaultHasher;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sentinel_versions::{
    ApkVersion, DebianVersion, Ecosystem, RpmVersion, SemVersion, VersionError, compare,
};

fn hash_of<T: Hash>(value: &T) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

fn parse<T>(s: &str, parse: fn(&str) -> Result<T, VersionError>) -> Result<T, TestCaseError> {
    parse(s).map_err(|e| TestCaseError::fail(format!("generated {s:?} should be valid: {e}")))
}

/// Reflexivity, antisymmetry, `Eq`/`Hash`/`PartialOrd` consistency for one pair.
fn check_pair<T: Ord + Hash + Debug>(a: &T, b: &T) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.cmp(a), Ordering::Equal);
    prop_assert!(PartialEq::eq(a, a), "Eq is reflexive: {:?}", a);
    prop_assert_eq!(
        a.cmp(b),
        b.cmp(a).reverse(),
        "antisymmetry of {:?} and {:?}",
        a,
        b
    );
    prop_assert_eq!(
        a == b,
        a.cmp(b) == Ordering::Equal,
        "Eq agrees with Ord: {:?} {:?}",
        a,
        b
    );
    prop_assert_eq!(a.partial_cmp(b), Some(a.cmp(b)));
    if a == b {
        prop_assert_eq!(
            hash_of(a),
            hash_of(b),
            "equal versions hash alike: {:?} {:?}",
            a,
            b
        );
    }
    Ok(())
}

/// Transitivity: for every arrangement x, y, z of the triple, x ≤ y ≤ z implies
/// x ≤ z (with equality chains included, since ≤ covers them).
fn check_triple<T: Ord + Debug>(a: &T, b: &T, c: &T) -> Result<(), TestCaseError> {
    for [x, y, z] in [
        [a, b, c],
        [a, c, b],
        [b, a, c],
        [b, c, a],
        [c, a, b],
        [c, b, a],
    ] {
        if x <= y && y <= z {
            prop_assert!(x <= z, "transitivity: {:?} <= {:?} <= {:?}", x, y, z);
            if x == y && y == z {
                prop_assert!(x == z);
            }
            if x < y || y < z {
                prop_assert!(x < z, "strict transitivity: {:?}, {:?}, {:?}", x, y, z);
            }
        }
    }
    Ok(())
}

/// Sorting a list and finding every pair in order is transitivity over many triples.
fn check_sorted<T: Ord + Debug>(mut versions: Vec<T>) -> Result<(), TestCaseError> {
    versions.sort();
    for (i, x) in versions.iter().enumerate() {
        for y in versions.iter().skip(i + 1) {
            prop_assert!(x <= y, "sorted list out of order: {:?} > {:?}", x, y);
        }
    }
    Ok(())
}

/// A respelling that must be an equal version: it has to behave the same as the
/// original against any third version and hash alike.
fn check_respelling<T: Ord + Hash + Debug>(
    original: &T,
    respelled: &T,
    other: &T,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        original.cmp(respelled),
        Ordering::Equal,
        "{:?} vs {:?}",
        original,
        respelled
    );
    prop_assert_eq!(hash_of(original), hash_of(respelled));
    prop_assert_eq!(original.cmp(other), respelled.cmp(other));
    Ok(())
}

/// Adds a leading zero to every run of digits.
fn pad_digit_runs(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    let mut previous_was_digit = false;
    for c in s.chars() {
        let is_digit = c.is_ascii_digit();
        if is_digit && !previous_was_digit {
            out.push('0');
        }
        out.push(c);
        previous_was_digit = is_digit;
    }
    out
}

fn debian() -> impl Strategy<Value = String> {
    let epoch = proptest::option::of("[0-2]{1,2}");
    let upstream = "[0-9][0-9aAz.+~:-]{0,6}";
    let revision = proptest::option::of("[0-9az.+~]{1,4}");
    (epoch, upstream, revision).prop_map(|(epoch, upstream, revision)| {
        // `:` needs an epoch and `-` a revision to stay in the upstream version.
        let upstream: String = upstream
            .chars()
            .map(|c| match c {
                ':' if epoch.is_none() => '.',
                '-' if revision.is_none() => '+',
                c => c,
            })
            .collect();
        let mut version = epoch.map(|e| format!("{e}:")).unwrap_or_default();
        version.push_str(&upstream);
        if let Some(revision) = revision {
            version.push('-');
            version.push_str(&revision);
        }
        version
    })
}

fn rpm() -> impl Strategy<Value = String> {
    let epoch = proptest::option::of("[0-2]{1,2}");
    let version = "[0-9aB._+~^]{1,7}";
    let release = proptest::option::of("[0-9a._~^]{1,4}");
    (epoch, version, release).prop_map(|(epoch, version, release)| {
        let mut evr = epoch.map(|e| format!("{e}:")).unwrap_or_default();
        evr.push_str(&version);
        if let Some(release) = release {
            evr.push('-');
            evr.push_str(&release);
        }
        evr
    })
}

fn apk() -> impl Strategy<Value = String> {
    "[0-9]{1,2}(\\.[0-9]{1,2}){0,3}[a-c]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]{0,2}){0,2}(~[0-9a-f]{1,2})?(-r[0-9]{1,2})?"
}

fn semver() -> impl Strategy<Value = String> {
    "v?(0|[1-9][0-9]?)\\.(0|[1-9])\\.(0|[1-9])(-(0|[1-9][0-9]?|[aB-]{1,2}|a[0-9])(\\.(0|[1-9]|[aB-]{1,2})){0,2})?(\\+[0-9a-z]{1,3})?"
}

macro_rules! order_laws {
    ($module:ident, $ty:ty, $ecosystem:expr, $strategy:expr, $respell:expr) => {
        mod $module {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(400))]

                #[test]
                fn pairs_are_consistent(a in $strategy, b in $strategy) {
                    let (va, vb) = (parse(&a, <$ty>::parse)?, parse(&b, <$ty>::parse)?);
                    check_pair(&va, &vb)?;
                    prop_assert_eq!(compare($ecosystem, &a, &b), Ok(va.cmp(&vb)));
                }

                #[test]
                fn ordering_is_transitive(a in $strategy, b in $strategy, c in $strategy) {
                    let va = parse(&a, <$ty>::parse)?;
                    let vb = parse(&b, <$ty>::parse)?;
                    let vc = parse(&c, <$ty>::parse)?;
                    check_triple(&va, &vb, &vc)?;
                }

                #[test]
                fn sorting_orders_every_pair(list in proptest::collection::vec($strategy, 2..12)) {
                    let versions = list
                        .iter()
                        .map(|s| parse(s, <$ty>::parse))
                        .collect::<Result<Vec<_>, _>>()?;
                    check_sorted(versions)?;
                }

                #[test]
                fn display_round_trips(a in $strategy) {
                    let version = parse(&a, <$ty>::parse)?;
                    prop_assert_eq!(version.to_string(), a.clone());
                    prop_assert_eq!(parse(&version.to_string(), <$ty>::parse)?, version);
                }

                #[test]
                fn respellings_are_equal(a in $strategy, other in $strategy) {
                    let respell: fn(&str) -> String = $respell;
                    let respelled = respell(&a);
                    check_respelling(
                        &parse(&a, <$ty>::parse)?,
                        &parse(&respelled, <$ty>::parse)?,
                        &parse(&other, <$ty>::parse)?,
                    )?;
                }
            }
        }
    };
}

order_laws!(
    debian_laws,
    DebianVersion,
    Ecosystem::Debian,
    debian(),
    |s| {
        // Leading zeros never matter, and a missing revision is revision 0.
        let padded = pad_digit_runs(s);
        if s.contains('-') {
            padded
        } else {
            format!("{padded}-0")
        }
    }
);

order_laws!(rpm_laws, RpmVersion, Ecosystem::Rpm, rpm(), |s| {
    // Leading zeros never matter, separators are interchangeable and the default
    // epoch is 0.
    let respelled = pad_digit_runs(s).replace('.', "_");
    if s.contains(':') {
        respelled
    } else {
        format!("0:{respelled}")
    }
});

order_laws!(apk_laws, ApkVersion, Ecosystem::Alpine, apk(), |s| {
    // The leading number and the revision are compared numerically (numbers after
    // a dot are not: there a leading zero changes the version).
    format!("0{}", s.replace("-r", "-r0"))
});

order_laws!(semver_laws, SemVersion, Ecosystem::SemVer, semver(), |s| {
    // Build metadata and the `v` prefix do not take part in precedence.
    let core = s.split('+').next().unwrap_or(s);
    match core.strip_prefix('v') {
        Some(core) => format!("{core}+respelled.1"),
        None => format!("v{core}+respelled.1"),
    }
});

/// Parsers see untrusted input (package databases, advisory feeds): whatever it
/// is, they must return instead of panicking, and what they accept must survive
/// a round trip through `Display`.
fn check_any_input(s: &str) -> Result<(), TestCaseError> {
    fn round_trip<T: Ord + Debug + ToString>(
        parsed: Result<T, VersionError>,
        parse: fn(&str) -> Result<T, VersionError>,
    ) -> Result<(), TestCaseError> {
        if let Ok(version) = parsed {
            prop_assert_eq!(parse(&version.to_string()), Ok(version));
        }
        Ok(())
    }
    round_trip(DebianVersion::parse(s), DebianVersion::parse)?;
    round_trip(RpmVersion::parse(s), RpmVersion::parse)?;
    round_trip(ApkVersion::parse(s), ApkVersion::parse)?;
    round_trip(SemVersion::parse(s), SemVersion::parse)?;
    for ecosystem in [
        Ecosystem::Debian,
        Ecosystem::Rpm,
        Ecosystem::Alpine,
        Ecosystem::SemVer,
    ] {
        let _ = compare(ecosystem, s, "1.0.0");
        let _ = compare(ecosystem, "1.0.0", s);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,16}") {
        check_any_input(&s)?;
    }

    #[test]
    fn version_like_text_never_panics(s in "[0-9a-fpr.:~^+_ v-]{0,16}") {
        check_any_input(&s)?;
    }
}
