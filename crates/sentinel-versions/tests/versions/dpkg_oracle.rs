//! Checks the Debian implementation against the real dpkg.
//!
//! A seeded generator builds thousands of version pairs that stress the corners
//! of dpkg's rules (epochs, `~`, `+`, letters against other characters, leading
//! zeros, digit runs longer than any integer, revisions), and every pair must
//! order exactly as `dpkg --compare-versions` orders it. A second corpus of
//! mostly malformed strings must be accepted or rejected as
//! `dpkg --validate-version` does.
//!
//! Without dpkg the tests print a notice and pass, except in CI (`CI=true`), where
//! a missing oracle must not pass for a green run.

use std::cmp::Ordering;
use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;

use sentinel_versions::{DebianVersion, VersionError};

const PAIRS: usize = 3_500;
const VALIDITY_CANDIDATES: usize = 1_000;
const THREADS: usize = 4;

/// A tiny deterministic PRNG (SplitMix64), so that failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let index = self.below(items.len());
        items.get(index).copied().unwrap_or_default()
    }
}

/// A run of digits: usually short, sometimes with leading zeros, sometimes far
/// longer than 64 bits.
fn digits(rng: &mut Rng) -> String {
    let len = match rng.below(20) {
        0 => 20 + rng.below(12),
        1..=3 => 2 + rng.below(3),
        _ => 1,
    };
    let mut run: String = (0..len)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect();
    if rng.chance(20) {
        run.insert_str(0, if rng.chance(50) { "0" } else { "00" });
    }
    run
}

/// The pieces of a Debian version, kept apart so they can be mutated.
#[derive(Clone)]
struct Parts {
    epoch: Option<String>,
    /// Always starts with a digit run.
    upstream: Vec<String>,
    revision: Option<Vec<String>>,
}

const LETTERS: &[&str] = &[
    "a", "b", "z", "A", "Z", "rc", "dfsg", "git", "bpo", "deb", "ubuntu",
];
const UPSTREAM_SEPARATORS: &[&str] = &[".", ".", "+", "~", "~", "-", ":", "~~", ".~", "+~"];
const REVISION_SEPARATORS: &[&str] = &[".", "+", "~", "~~", "+~"];

fn fragment(rng: &mut Rng, separators: &[&str]) -> String {
    match rng.below(10) {
        0..=3 => digits(rng),
        4..=6 => rng.pick(LETTERS).to_owned(),
        _ => rng.pick(separators).to_owned(),
    }
}

fn generate(rng: &mut Rng) -> Parts {
    let epoch = rng.chance(25).then(|| {
        rng.pick(&["0", "1", "2", "00", "01", "10", "2147483647"])
            .to_owned()
    });
    let mut upstream = vec![digits(rng)];
    for _ in 0..rng.below(6) {
        upstream.push(fragment(rng, UPSTREAM_SEPARATORS));
    }
    let revision = rng.chance(65).then(|| {
        let mut revision = vec![fragment(rng, REVISION_SEPARATORS)];
        for _ in 0..rng.below(4) {
            revision.push(fragment(rng, REVISION_SEPARATORS));
        }
        revision
    });
    Parts {
        epoch,
        upstream,
        revision,
    }
}

/// A version close to `parts`, so that pairs often share long prefixes and
/// differ in exactly the places where the rules are subtle.
fn mutate(rng: &mut Rng, parts: &Parts) -> Parts {
    let mut parts = parts.clone();
    match rng.below(9) {
        0 => {
            parts.epoch = rng
                .chance(50)
                .then(|| rng.pick(&["0", "1", "00", "3"]).to_owned())
        }
        1 => parts.upstream.push(fragment(rng, UPSTREAM_SEPARATORS)),
        2 => parts.upstream.push(
            rng.pick(&["~", "~rc1", "+", ".", "a", "0", "~~"])
                .to_owned(),
        ),
        3 => {
            let index = 1 + rng.below(parts.upstream.len());
            if let Some(slot) = parts.upstream.get_mut(index) {
                *slot = fragment(rng, UPSTREAM_SEPARATORS);
            }
        }
        4 => {
            // Same number, different spelling, or a neighbouring number.
            let index = rng.below(parts.upstream.len());
            if let Some(slot) = parts.upstream.get_mut(index)
                && slot.starts_with(|c: char| c.is_ascii_digit())
            {
                slot.insert(0, '0');
                if rng.chance(50) {
                    slot.push('1');
                }
            }
        }
        5 => parts.revision = None,
        6 => {
            parts.revision = Some(vec![
                rng.pick(&["0", "00", "1", "~", "0~", "1+b1"]).to_owned(),
            ])
        }
        7 => {
            let mut revision = parts.revision.unwrap_or_default();
            revision.push(
                rng.pick(&["~bpo12+1", "+deb12u1", "ubuntu0.1", "1", "~", "a"])
                    .to_owned(),
            );
            parts.revision = Some(revision);
        }
        _ => {
            if let Some(revision) = parts.revision.as_mut() {
                revision.push(fragment(rng, REVISION_SEPARATORS));
            }
        }
    }
    parts
}

/// Renders the parts, replacing `:` and `-` that would be misread as an epoch
/// or revision separator when there is no epoch or revision.
fn render(parts: &Parts) -> String {
    let mut version = parts
        .epoch
        .as_ref()
        .map(|e| format!("{e}:"))
        .unwrap_or_default();
    let upstream = parts.upstream.concat();
    version.extend(upstream.chars().map(|c| match c {
        ':' if parts.epoch.is_none() => '.',
        '-' if parts.revision.is_none() => '+',
        c => c,
    }));
    if let Some(revision) = &parts.revision {
        version.push('-');
        version.push_str(&revision.concat());
    }
    version
}

fn corpus() -> Vec<(String, String)> {
    let mut rng = Rng(0x5E27_1E1D_EB1A_2026);
    (0..PAIRS)
        .map(|_| {
            let a = generate(&mut rng);
            let b = if rng.chance(35) {
                generate(&mut rng)
            } else {
                mutate(&mut rng, &a)
            };
            (render(&a), render(&b))
        })
        .collect()
}

/// Writes straight to stderr: the test harness captures `eprintln!` of passing
/// tests, and a skipped oracle must be visible.
fn notice(message: &str) {
    let _ = writeln!(std::io::stderr(), "dpkg_oracle: {message}");
}

/// Whether a dpkg that can be used as an oracle is installed. Without one, the
/// test is skipped, except in CI where that would hide a broken setup.
fn dpkg_available() -> bool {
    let found = Command::new("dpkg")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "dpkg is not installed, but CI must run the dpkg oracle tests"
        );
        notice("skipped: dpkg not installed");
    }
    found
}

/// Runs `dpkg --compare-versions a op b`: `Ok(true)` for exit status 0, `Ok(false)`
/// for 1, and an error for anything else or for a warning about the syntax.
fn dpkg_relation(a: &str, op: &str, b: &str) -> Result<bool, String> {
    let output = Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .output()
        .map_err(|e| format!("cannot run dpkg: {e}"))?;
    if !output.stderr.is_empty() {
        return Err(format!(
            "dpkg complained about {a:?} {op} {b:?}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    match output.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(format!(
            "dpkg failed on {a:?} {op} {b:?}: {}",
            output.status
        )),
    }
}

fn dpkg_compare(a: &str, b: &str) -> Result<Ordering, String> {
    if dpkg_relation(a, "lt", b)? {
        Ok(Ordering::Less)
    } else if dpkg_relation(a, "eq", b)? {
        Ok(Ordering::Equal)
    } else {
        Ok(Ordering::Greater)
    }
}

/// Applies `check` to every item on a few threads, collecting the failures.
fn par_failures<T: Sync>(items: &[T], check: impl Fn(&T) -> Option<String> + Sync) -> Vec<String> {
    let chunk = items.len().div_ceil(THREADS).max(1);
    thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|chunk| scope.spawn(|| chunk.iter().filter_map(&check).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| vec!["a worker panicked".into()])
            })
            .collect()
    })
}

fn report(what: &str, failures: &[String], total: usize) {
    assert!(
        failures.is_empty(),
        "{} of {total} {what} disagree with dpkg, e.g.:\n{}",
        failures.len(),
        failures
            .iter()
            .take(25)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn corpus_exercises_the_tricky_parts() {
    // The oracle is only as good as the corpus: make sure it really contains the
    // constructs it is meant to cover, whether or not dpkg is installed.
    let corpus = corpus();
    let all: Vec<&str> = corpus
        .iter()
        .flat_map(|(a, b)| [a.as_str(), b.as_str()])
        .collect();
    let count = |pred: &dyn Fn(&str) -> bool| all.iter().filter(|v| pred(v)).count();
    assert!(corpus.len() >= 3_000);
    assert!(count(&|v| v.contains(':')) > 500, "epochs");
    assert!(count(&|v| v.contains('~')) > 1_000, "tildes");
    assert!(count(&|v| v.contains('+')) > 500, "plus signs");
    assert!(count(&|v| v.contains('-')) > 1_000, "revisions");
    assert!(
        count(&|v| v.matches('-').count() > 1) > 100,
        "hyphens in upstream"
    );
    assert!(
        count(&|v| v.split(':').count() > 2) > 20,
        "colons in upstream"
    );
    assert!(
        count(&|v| v.bytes().any(|b| b.is_ascii_uppercase())) > 200,
        "capitals"
    );
    assert!(
        count(&|v| v.contains(".0") || v.starts_with('0')) > 500,
        "leading zeros"
    );
    let long_run = |v: &str| {
        v.split(|c: char| !c.is_ascii_digit())
            .any(|run| run.len() > 20)
    };
    assert!(count(&long_run) > 100, "digit runs beyond 64 bits");

    let parsed: Vec<DebianVersion> = all.iter().filter_map(|v| v.parse().ok()).collect();
    assert_eq!(parsed.len(), all.len(), "every generated version is valid");
    let orderings = corpus
        .iter()
        .filter_map(|(a, b)| {
            Some(
                DebianVersion::parse(a)
                    .ok()?
                    .cmp(&DebianVersion::parse(b).ok()?),
            )
        })
        .fold([0; 3], |[less, equal, greater], ordering| match ordering {
            Ordering::Less => [less + 1, equal, greater],
            Ordering::Equal => [less, equal + 1, greater],
            Ordering::Greater => [less, equal, greater + 1],
        });
    assert!(
        orderings.iter().all(|&n| n > 200),
        "less/equal/greater counts: {orderings:?}"
    );
}

#[test]
fn orderings_match_dpkg() {
    if !dpkg_available() {
        return;
    }
    let corpus = corpus();
    let failures = par_failures(&corpus, |(a, b)| {
        let ours = match (DebianVersion::parse(a), DebianVersion::parse(b)) {
            (Ok(va), Ok(vb)) => va.cmp(&vb),
            (Err(e), _) | (_, Err(e)) => return Some(format!("{a:?} vs {b:?}: we reject: {e}")),
        };
        match dpkg_compare(a, b) {
            Ok(theirs) if theirs == ours => None,
            Ok(theirs) => Some(format!(
                "{a:?} vs {b:?}: dpkg says {theirs:?}, we say {ours:?}"
            )),
            Err(e) => Some(e),
        }
    });
    report("pairs", &failures, corpus.len());
}

/// Hand-picked edge cases of dpkg's parser.
const EDGE_CASES: &[&str] = &[
    "1.0",
    " 1.0 ",
    "\t1.0",
    "1.0\n",
    "1 .0",
    "",
    " ",
    "1:2:3",
    "0-1-2",
    "1.0-~",
    "1.0-r+~.",
    "2147483647:1",
    "2147483648:1",
    "99999999999999999999:1",
    "08:1",
    "00:1.0",
    ":1",
    "1:",
    "1.0-",
    "1.0-1-",
    "-1",
    "1:-1",
    "a1",
    "1:a",
    "~1",
    "1.0-a:b",
    "1:2-3:4",
    "1.0_1",
    "1.0-1_2",
    "é",
    "1.0é",
    "1.0-é",
];

/// Strings near the edge of validity: mostly well-formed pieces with stray
/// blanks, underscores, colons, hyphens, non-ASCII letters and missing parts.
fn validity_candidates() -> Vec<String> {
    let mut rng = Rng(0xBAD_5EED);
    let pieces = [
        "1",
        "0",
        "2.0",
        "10",
        "a",
        "Z",
        ".",
        "+",
        "~",
        "-",
        ":",
        "_",
        " ",
        "\t",
        "!",
        "é",
        "1:",
        ":",
        "-1",
        "0:",
        "+1:",
        "2147483648:",
        "2147483647:",
    ];
    let random = (0..VALIDITY_CANDIDATES).map(|_| {
        let mut candidate = String::new();
        if rng.chance(60) {
            candidate.push_str(&digits(&mut rng));
        }
        for _ in 0..rng.below(5) {
            candidate.push_str(rng.pick(&pieces));
        }
        candidate
    });
    EDGE_CASES
        .iter()
        .map(|&s| s.to_owned())
        .chain(random)
        // An argument starting with `-` would be taken as an option by dpkg.
        .filter(|candidate| !candidate.starts_with('-'))
        .collect()
}

/// dpkg reads the epoch with `strtol`, which accepts a sign; Debian Policy says
/// the epoch is an unsigned integer, and this crate follows Policy.
fn signed_epoch(candidate: &str) -> bool {
    let trimmed = candidate.trim_matches([' ', '\t']);
    trimmed.split_once(':').is_some_and(|(epoch, _)| {
        epoch
            .strip_prefix(['+', '-'])
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
    })
}

#[test]
fn validity_matches_dpkg() {
    if !dpkg_available() {
        return;
    }
    let supported = Command::new("dpkg")
        .args(["--validate-version", "1.0"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !supported {
        notice("skipped: this dpkg has no --validate-version");
        return;
    }
    let candidates = validity_candidates();
    let failures = par_failures(&candidates, |candidate| {
        let ours = DebianVersion::parse(candidate);
        let status = Command::new("dpkg")
            .args(["--validate-version", candidate])
            .stderr(Stdio::null())
            .status();
        let theirs = match status.map(|status| status.code()) {
            Ok(Some(0)) => true,
            // 1 for what dpkg calls warnings, 2 for what it calls errors.
            Ok(Some(1 | 2)) => false,
            other => return Some(format!("{candidate:?}: dpkg failed: {other:?}")),
        };
        let documented_deviation =
            theirs && ours == Err(VersionError::InvalidEpoch) && signed_epoch(candidate);
        (theirs != ours.is_ok() && !documented_deviation)
            .then(|| format!("{candidate:?}: dpkg says valid={theirs}, we say {ours:?}"))
    });
    report("candidates", &failures, candidates.len());

    // The documented deviation really is one: dpkg accepts these, we do not.
    for signed in ["+1:1.0", " -0:1.0", "+0:1-1"] {
        let accepted = Command::new("dpkg")
            .args(["--validate-version", signed])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        assert!(
            accepted,
            "dpkg no longer accepts {signed:?}: drop the deviation"
        );
        assert_eq!(
            DebianVersion::parse(signed).err(),
            Some(VersionError::InvalidEpoch)
        );
    }

    // The corpus must not be trivially one-sided.
    let valid = candidates
        .iter()
        .filter(|c| DebianVersion::parse(c).is_ok())
        .count();
    assert!(
        valid > 100 && valid < candidates.len() - 100,
        "{valid} valid candidates"
    );
}
