//! End-to-end matching scenarios, each named after a mistake that scanners are
//! known to make. The records are small hand-written fixtures shaped like the
//! ones OSV.dev publishes; every Debian version comparison they rely on was
//! checked with `dpkg --compare-versions`.

// Test helpers outside `#[test]` functions fail loudly too.

use sentinel_advisories::osv;
use sentinel_advisories::{
    AdvisoryIndex, EcosystemKey, InsertOutcome, KevCatalog, SkipReason, SourcePackage,
};

fn index(records: &[&str]) -> AdvisoryIndex {
    let mut index = AdvisoryIndex::new();
    for record in records {
        let record = osv::parse_str(record).unwrap_or_else(|e| panic!("{e}"));
        index.insert(record);
    }
    index
}

fn device(id: &str, version_id: &str) -> EcosystemKey {
    EcosystemKey::from_os_release(id, Some(version_id)).unwrap_or_else(|e| panic!("{e}"))
}

/// `(advisory id, fixed version)` of every match, sorted by id.
fn matches(
    index: &AdvisoryIndex,
    key: &EcosystemKey,
    package: &str,
    version: &str,
) -> Vec<(String, Option<String>)> {
    let installed = key
        .parse_version(version)
        .unwrap_or_else(|e| panic!("{version}: {e}"));
    let mut found: Vec<_> = index
        .query(key, package, &installed)
        .iter()
        .map(|m| (m.id().to_owned(), m.fixed_version()))
        .collect();
    found.sort();
    found
}

fn hit(id: &str, fixed: &str) -> Vec<(String, Option<String>)> {
    vec![(id.to_owned(), Some(fixed.to_owned()))]
}

fn unfixed(id: &str) -> Vec<(String, Option<String>)> {
    vec![(id.to_owned(), None)]
}

const NONE: Vec<(String, Option<String>)> = Vec::new();

/// CVE-2024-6387 (regreSSHion) as Debian's tracker shaped it: fixed in
/// bookworm by DSA-5724-1; bullseye's 8.4p1 predates the bug.
const DEBIAN_OPENSSH: &str = r#"{
  "id": "DEBIAN-CVE-2024-6387",
  "modified": "2024-07-02T10:00:00Z",
  "upstream": ["CVE-2024-6387"],
  "related": ["DSA-5724-1"],
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
  "affected": [
    {"package": {"ecosystem": "Debian:12", "name": "openssh",
                 "purl": "pkg:deb/debian/openssh?arch=source&distro=bookworm"},
     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:9.2p1-2+deb12u3"}]}],
     "ecosystem_specific": {"urgency": "high"}},
    {"package": {"ecosystem": "Debian:13", "name": "openssh"},
     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:9.7p1-7"}]}],
     "ecosystem_specific": {"urgency": "high"}}
  ]
}"#;

#[test]
fn binary_packages_are_matched_through_their_source_name_only() {
    let index = index(&[DEBIAN_OPENSSH]);
    let bookworm = device("debian", "12");
    for binary in ["openssh-server", "openssh-client", "openssh-sftp-server"] {
        // Asking with the binary name finds nothing: the record names the source.
        assert_eq!(
            matches(&index, &bookworm, binary, "1:9.2p1-2+deb12u2"),
            NONE
        );
        let source = SourcePackage::from_dpkg(binary, "1:9.2p1-2+deb12u2", Some("openssh"));
        assert_eq!(
            matches(&index, &bookworm, &source.name, &source.version),
            hit("DEBIAN-CVE-2024-6387", "1:9.2p1-2+deb12u3"),
            "{binary}"
        );
    }
}

#[test]
fn a_deb12u_security_update_is_recognised_as_the_fix() {
    let index = index(&[DEBIAN_OPENSSH]);
    let bookworm = device("debian", "12");
    let installed = bookworm.parse_version("1:9.2p1-2+deb12u2").unwrap();
    let found = index.query(&bookworm, "openssh", &installed);
    let [m] = found.as_slice() else {
        panic!("one match expected, got {found:?}");
    };
    assert_eq!(m.id(), "DEBIAN-CVE-2024-6387");
    assert_eq!(m.cve_ids(), vec!["CVE-2024-6387"]);
    assert_eq!(m.installed.to_string(), "1:9.2p1-2+deb12u2");
    assert_eq!(m.fixed_version().as_deref(), Some("1:9.2p1-2+deb12u3"));
    assert_eq!(m.urgency(), Some("high"));
    assert_eq!(
        m.severity().first().map(|s| s.kind.as_str()),
        Some("CVSS_V3")
    );
    assert_eq!(m.ecosystem(), "Debian:12");
    assert_eq!(m.package(), "openssh");
    // The fixed build and anything later (a binNMU, the next update) is clean.
    for clean in [
        "1:9.2p1-2+deb12u3",
        "1:9.2p1-2+deb12u3+b1",
        "1:9.2p1-2+deb12u4",
    ] {
        assert_eq!(
            matches(&index, &bookworm, "openssh", clean),
            NONE,
            "{clean}"
        );
    }
    // Without the epoch the installed version would be older than every fix.
    assert_eq!(
        matches(&index, &bookworm, "openssh", "9.2p1-2+deb12u9"),
        hit("DEBIAN-CVE-2024-6387", "1:9.2p1-2+deb12u3")
    );
}

#[test]
fn the_binary_epoch_of_bsdutils_is_not_the_source_version_of_util_linux() {
    // bsdutils carries epoch 1, util-linux none: dpkg reports
    // `Version: 1:2.38.1-5+b1` and `Source: util-linux (2.38.1-5)`.
    let index = index(&[r#"{
      "id": "DEBIAN-CVE-2024-28085",
      "modified": "2024-04-01T00:00:00Z",
      "upstream": ["CVE-2024-28085"],
      "affected": [{"package": {"ecosystem": "Debian:12", "name": "util-linux"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.38.1-5+deb12u1"}]}],
                    "ecosystem_specific": {"urgency": "not yet assigned"}}]
    }"#]);
    let bookworm = device("debian", "12");
    assert_eq!(
        matches(&index, &bookworm, "bsdutils", "1:2.38.1-5+b1"),
        NONE
    );
    let source =
        SourcePackage::from_dpkg("bsdutils", "1:2.38.1-5+b1", Some("util-linux (2.38.1-5)"));
    assert_eq!(
        (source.name.as_str(), source.version.as_str()),
        ("util-linux", "2.38.1-5")
    );
    // With the binary's epoch the package would look newer than the fix and
    // the vulnerability would be missed; with the source version it is found.
    assert_eq!(
        matches(&index, &bookworm, "util-linux", "1:2.38.1-5+b1"),
        NONE
    );
    assert_eq!(
        matches(&index, &bookworm, &source.name, &source.version),
        hit("DEBIAN-CVE-2024-28085", "2.38.1-5+deb12u1")
    );
    let updated = SourcePackage::from_dpkg(
        "bsdutils",
        "1:2.38.1-5+deb12u1",
        Some("util-linux (2.38.1-5+deb12u1)"),
    );
    assert_eq!(
        matches(&index, &bookworm, &updated.name, &updated.version),
        NONE
    );
}

#[test]
fn a_fix_in_debian_12_says_nothing_about_debian_11() {
    let index = index(&[r#"{
      "id": "DEBIAN-CVE-2024-2511",
      "modified": "2024-06-01T00:00:00Z",
      "upstream": ["CVE-2024-2511"],
      "affected": [
        {"package": {"ecosystem": "Debian:11", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
         "ecosystem_specific": {"urgency": "unimportant"}},
        {"package": {"ecosystem": "Debian:12", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}]}],
         "ecosystem_specific": {"urgency": "low"}}
      ]
    }"#]);
    let bullseye = device("debian", "11");
    let bookworm = device("debian", "12");
    // bookworm: fixed by the update, affected before it.
    assert_eq!(
        matches(&index, &bookworm, "openssl", "3.0.13-1~deb12u1"),
        NONE
    );
    assert_eq!(
        matches(&index, &bookworm, "openssl", "3.0.11-1~deb12u2"),
        hit("DEBIAN-CVE-2024-2511", "3.0.13-1~deb12u1")
    );
    // bullseye: no fix, whatever the version, and Debian's urgency travels along.
    assert_eq!(
        matches(&index, &bullseye, "openssl", "1.1.1w-0+deb11u1"),
        unfixed("DEBIAN-CVE-2024-2511")
    );
    let installed = bullseye.parse_version("1.1.1w-0+deb11u1").unwrap();
    let found = index.query(&bullseye, "openssl", &installed);
    assert_eq!(found.first().and_then(|m| m.urgency()), Some("unimportant"));
    // No release that the record does not name.
    assert_eq!(
        matches(
            &index,
            &device("debian", "10"),
            "openssl",
            "1.1.1n-0+deb10u1"
        ),
        NONE
    );
}

#[test]
fn epochs_outrank_the_upstream_version() {
    let index = index(&[r#"{
      "id": "DSA-9001-1",
      "modified": "2024-01-01T00:00:00Z",
      "affected": [
        {"package": {"ecosystem": "Debian:12", "name": "pkg-a"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.4-1"}]}]},
        {"package": {"ecosystem": "Debian:12", "name": "pkg-b"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:2.4-1"}]}]}
      ]
    }"#]);
    let bookworm = device("debian", "12");
    // 1:2.3-1 is newer than 2.4-1: comparing without the epoch would report it.
    assert_eq!(matches(&index, &bookworm, "pkg-a", "1:2.3-1"), NONE);
    assert_eq!(
        matches(&index, &bookworm, "pkg-a", "2.3-1"),
        hit("DSA-9001-1", "2.4-1")
    );
    // And 2.5-1 is older than 1:2.4-1.
    assert_eq!(
        matches(&index, &bookworm, "pkg-b", "2.5-1"),
        hit("DSA-9001-1", "1:2.4-1")
    );
    assert_eq!(matches(&index, &bookworm, "pkg-b", "1:2.4-1"), NONE);
}

#[test]
fn tilde_pre_releases_sort_before_the_release() {
    let index = index(&[r#"{
      "id": "DEBIAN-CVE-2024-0002",
      "modified": "2024-01-01T00:00:00Z",
      "affected": [{"package": {"ecosystem": "Debian:13", "name": "foo"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-1"}]}]}]
    }"#]);
    let trixie = device("debian", "13");
    assert_eq!(
        matches(&index, &trixie, "foo", "1.0~rc1-1"),
        hit("DEBIAN-CVE-2024-0002", "1.0-1")
    );
    assert_eq!(matches(&index, &trixie, "foo", "1.0-1"), NONE);
    assert_eq!(matches(&index, &trixie, "foo", "1.0+dfsg-1"), NONE);
}

#[test]
fn a_bookworm_backport_is_not_judged_by_the_trixie_fix() {
    // 3.0.13-1~deb12u1 sorts before trixie's 3.0.13-1; a scanner that applies
    // the unstable fix to a stable machine reports the backport as vulnerable.
    let index = index(&[r#"{
      "id": "DEBIAN-CVE-2024-0727",
      "modified": "2024-03-01T00:00:00Z",
      "affected": [
        {"package": {"ecosystem": "Debian:12", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}]}]},
        {"package": {"ecosystem": "Debian:13", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1"}]}]}
      ]
    }"#]);
    assert_eq!(
        matches(
            &index,
            &device("debian", "12"),
            "openssl",
            "3.0.13-1~deb12u1"
        ),
        NONE
    );
    assert_eq!(
        matches(
            &index,
            &device("debian", "13"),
            "openssl",
            "3.0.13-1~deb12u1"
        ),
        hit("DEBIAN-CVE-2024-0727", "3.0.13-1")
    );
}

#[test]
fn debian_revisions_compare_numerically_not_as_text() {
    // As text, "deb12u10" < "deb12u4"; for dpkg 10 > 4.
    let index = index(&[r#"{
      "id": "DSA-5678-1",
      "modified": "2024-04-17T00:00:00Z",
      "affected": [{"package": {"ecosystem": "Debian:12", "name": "glibc"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u4"}]}]}]
    }"#]);
    let bookworm = device("debian", "12");
    assert_eq!(matches(&index, &bookworm, "glibc", "2.36-9+deb12u10"), NONE);
    assert_eq!(
        matches(&index, &bookworm, "glibc", "2.36-9+deb12u3"),
        hit("DSA-5678-1", "2.36-9+deb12u4")
    );
}

#[test]
fn range_shapes_are_evaluated_per_the_osv_algorithm() {
    let index = index(&[r#"{
      "id": "TEST-RANGES",
      "modified": "2024-01-01T00:00:00Z",
      "affected": [
        {"package": {"ecosystem": "Debian:12", "name": "last-affected"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0-1"}, {"last_affected": "1.4-2"}]}]},
        {"package": {"ecosystem": "Debian:12", "name": "limited"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"limit": "2.0-1"}]}]},
        {"package": {"ecosystem": "Debian:12", "name": "two-branches"},
         "ranges": [{"type": "ECOSYSTEM", "events": [
           {"fixed": "3.2.5-1"}, {"introduced": "3.0.0-1"}, {"introduced": "1.0.0-1"}, {"fixed": "1.0.2-1"}]}]},
        {"package": {"ecosystem": "Debian:12", "name": "listed"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.5-1"}]}],
         "versions": ["1.1-1", "1.3-1"]}
      ]
    }"#]);
    let k = device("debian", "12");
    assert_eq!(matches(&index, &k, "last-affected", "0.9-1"), NONE);
    assert_eq!(
        matches(&index, &k, "last-affected", "1.4-2"),
        unfixed("TEST-RANGES")
    );
    assert_eq!(matches(&index, &k, "last-affected", "1.4-2+deb12u1"), NONE);
    assert_eq!(
        matches(&index, &k, "limited", "1.9-9"),
        unfixed("TEST-RANGES")
    );
    assert_eq!(matches(&index, &k, "limited", "2.0-1"), NONE);
    assert_eq!(matches(&index, &k, "two-branches", "0.9-1"), NONE);
    assert_eq!(
        matches(&index, &k, "two-branches", "1.0.1-1"),
        hit("TEST-RANGES", "1.0.2-1")
    );
    assert_eq!(matches(&index, &k, "two-branches", "2.0.0-1"), NONE);
    assert_eq!(
        matches(&index, &k, "two-branches", "3.1.0-1"),
        hit("TEST-RANGES", "3.2.5-1")
    );
    assert_eq!(matches(&index, &k, "two-branches", "3.2.5-1"), NONE);
    assert_eq!(
        matches(&index, &k, "listed", "0.4-1"),
        hit("TEST-RANGES", "0.5-1")
    );
    assert_eq!(
        matches(&index, &k, "listed", "1.1-1"),
        unfixed("TEST-RANGES")
    );
    assert_eq!(matches(&index, &k, "listed", "1.2-1"), NONE);
}

#[test]
fn withdrawn_advisories_are_never_reported() {
    let live = r#"{"id": "UBUNTU-CVE-2023-9999", "modified": "2024-01-01T00:00:00Z",
      "affected": [{"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "curl"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}"#;
    let withdrawn = r#"{"id": "UBUNTU-CVE-2023-9999", "modified": "2024-02-01T00:00:00Z",
      "withdrawn": "2024-02-01T00:00:00Z",
      "affected": [{"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "curl"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}"#;
    let jammy = device("ubuntu", "22.04");

    let mut index = index(&[live]);
    assert_eq!(
        matches(&index, &jammy, "curl", "7.81.0-1ubuntu1.15"),
        unfixed("UBUNTU-CVE-2023-9999")
    );
    let parse = |s: &str| osv::parse_str(s).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        index.insert(parse(withdrawn)).outcome,
        InsertOutcome::Withdrawn
    );
    assert_eq!(matches(&index, &jammy, "curl", "7.81.0-1ubuntu1.15"), NONE);
    assert!(index.is_empty());
    // An older copy arriving late does not bring it back.
    assert_eq!(index.insert(parse(live)).outcome, InsertOutcome::Stale);
    assert_eq!(matches(&index, &jammy, "curl", "7.81.0-1ubuntu1.15"), NONE);
    // A withdrawn record on its own is never indexed.
    let only_withdrawn = self::index(&[withdrawn]);
    assert_eq!(
        matches(&only_withdrawn, &jammy, "curl", "7.81.0-1ubuntu1.15"),
        NONE
    );
    // A later, reinstated record is matched again.
    let reinstated = live.replace("2024-01-01T00:00:00Z", "2024-03-01T00:00:00Z");
    assert_eq!(
        index.insert(parse(&reinstated)).outcome,
        InsertOutcome::Added
    );
    assert_eq!(
        matches(&index, &jammy, "curl", "7.81.0-1ubuntu1.15"),
        unfixed("UBUNTU-CVE-2023-9999")
    );
}

#[test]
fn a_newer_record_replaces_the_older_and_stale_copies_are_ignored() {
    let first = r#"{"id": "USN-6000-1", "modified": "2024-01-01T00:00:00Z",
      "affected": [{"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "vim"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2:8.2.3995-1ubuntu2.5"}]}]}]}"#;
    // The corrected record moves the fix and drops the package it wrongly named.
    let corrected = r#"{"id": "USN-6000-1", "modified": "2024-01-01T00:00:00.5Z",
      "affected": [{"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "vim"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2:8.2.3995-1ubuntu2.7"}]}]}]}"#;
    let jammy = device("ubuntu", "22.04");
    let parse = |s: &str| osv::parse_str(s).unwrap_or_else(|e| panic!("{e}"));
    let mut index = AdvisoryIndex::new();
    assert_eq!(index.insert(parse(first)).outcome, InsertOutcome::Added);
    assert_eq!(index.insert(parse(first)).outcome, InsertOutcome::Stale);
    assert_eq!(
        matches(&index, &jammy, "vim", "2:8.2.3995-1ubuntu2.6"),
        NONE
    );
    // Half a second later is later, although "…00.5Z" sorts before "…00Z" as text.
    assert_eq!(
        index.insert(parse(corrected)).outcome,
        InsertOutcome::Replaced
    );
    assert_eq!(
        matches(&index, &jammy, "vim", "2:8.2.3995-1ubuntu2.6"),
        hit("USN-6000-1", "2:8.2.3995-1ubuntu2.7")
    );
    assert_eq!(index.insert(parse(first)).outcome, InsertOutcome::Stale);
    assert_eq!(index.len(), 1);
    assert_eq!(
        matches(&index, &jammy, "vim", "2:8.2.3995-1ubuntu2.6"),
        hit("USN-6000-1", "2:8.2.3995-1ubuntu2.7")
    );
    // Replacing drops postings the new record no longer has.
    let renamed = corrected
        .replace("\"vim\"", "\"vim-tiny-src\"")
        .replace("00.5Z", "01Z");
    assert_eq!(
        index.insert(parse(&renamed)).outcome,
        InsertOutcome::Replaced
    );
    assert_eq!(
        matches(&index, &jammy, "vim", "2:8.2.3995-1ubuntu2.6"),
        NONE
    );
}

#[test]
fn ubuntu_pro_fixes_are_not_reported_to_plain_ubuntu_machines() {
    let index = index(&[r#"{
      "id": "UBUNTU-CVE-2025-29769",
      "modified": "2025-05-01T00:00:00Z",
      "upstream": ["CVE-2025-29769"],
      "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H"},
                   {"type": "Ubuntu", "score": "medium"}],
      "affected": [
        {"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "vips"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
         "versions": ["8.12.1-1"]},
        {"package": {"ecosystem": "Ubuntu:Pro:22.04:LTS", "name": "vips"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "8.12.1-1ubuntu0.1~esm1"}]}]}
      ]
    }"#]);
    let jammy = device("ubuntu", "22.04");
    // The standard archive has no fix: the match must not advertise the Pro one.
    assert_eq!(
        matches(&index, &jammy, "vips", "8.12.1-1"),
        unfixed("UBUNTU-CVE-2025-29769")
    );
    let installed = jammy.parse_version("8.12.1-1").unwrap();
    let found = index.query(&jammy, "vips", &installed);
    let severities: Vec<_> = found
        .iter()
        .flat_map(|m| {
            m.severity()
                .iter()
                .map(|s| (s.kind.as_str(), s.score.as_str()))
        })
        .collect();
    assert!(severities.contains(&("Ubuntu", "medium")), "{severities:?}");
    // A machine attached to Pro is asked about its stream explicitly.
    let pro = EcosystemKey::ubuntu_pro("22.04");
    assert_eq!(
        matches(&index, &pro, "vips", "8.12.1-1"),
        hit("UBUNTU-CVE-2025-29769", "8.12.1-1ubuntu0.1~esm1")
    );
    assert_eq!(
        matches(&index, &pro, "vips", "8.12.1-1ubuntu0.1~esm1"),
        NONE
    );
}

#[test]
fn alpine_revisions_compare_numerically() {
    let index = index(&[r#"{
      "id": "ALPINE-CVE-2023-42363",
      "modified": "2024-01-01T00:00:00Z",
      "upstream": ["CVE-2023-42363"],
      "affected": [
        {"package": {"ecosystem": "Alpine:v3.19", "name": "busybox"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.36.1-r7"}]}]},
        {"package": {"ecosystem": "Alpine:v3.18", "name": "busybox"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.36.1-r6"}]}]},
        {"package": {"ecosystem": "Alpine:v3.19", "name": "zlib"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.2.3-r4"}, {"fixed": "1.2.13-r0"}]}]}
      ]
    }"#]);
    let alpine = device("alpine", "3.19.1");
    assert_eq!(matches(&index, &alpine, "busybox", "1.36.1-r15"), NONE);
    assert_eq!(
        matches(&index, &alpine, "busybox", "1.36.1-r6"),
        hit("ALPINE-CVE-2023-42363", "1.36.1-r7")
    );
    assert_eq!(
        matches(&index, &device("alpine", "3.18.4"), "busybox", "1.36.1-r6"),
        NONE
    );
    assert_eq!(matches(&index, &alpine, "zlib", "1.2.3-r3"), NONE);
    assert_eq!(
        matches(&index, &alpine, "zlib", "1.2.3-r4"),
        hit("ALPINE-CVE-2023-42363", "1.2.13-r0")
    );
    assert_eq!(
        matches(&index, &alpine, "zlib", "1.2.12-r3"),
        hit("ALPINE-CVE-2023-42363", "1.2.13-r0")
    );
}

#[test]
fn rpm_epochs_and_dist_tags_are_compared_like_rpm() {
    let index = index(&[
        r#"{
      "id": "RHSA-2024:2447",
      "modified": "2024-05-01T00:00:00Z",
      "upstream": ["CVE-2023-5678"],
      "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}],
      "affected": [
        {"package": {"ecosystem": "Red Hat:enterprise_linux:9::appstream", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-27.el9"}]}]},
        {"package": {"ecosystem": "Red Hat:enterprise_linux:9::baseos", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-27.el9"}]}]},
        {"package": {"ecosystem": "Red Hat:enterprise_linux:9::baseos", "name": "openssl-libs"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-27.el9"}]}]},
        {"package": {"ecosystem": "Red Hat:rhel_eus:9.2::baseos", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-20.el9_2.1"}]}]}
      ]
    }"#,
        r#"{
      "id": "RLSA-2025:9978",
      "modified": "2025-07-01T00:00:00Z",
      "upstream": ["CVE-2025-32462"],
      "affected": [{"package": {"ecosystem": "Rocky Linux:9", "name": "sudo"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0:1.9.5p2-10.el9_6.1"}]}]}]
    }"#,
        r#"{
      "id": "ALSA-2024:2447",
      "modified": "2024-05-01T00:00:00Z",
      "related": ["CVE-2023-5678", "RHSA-2024:2447"],
      "affected": [{"package": {"ecosystem": "AlmaLinux:9", "name": "openssl-libs"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-27.el9"}]}]}]
    }"#,
    ]);
    let rhel = device("rhel", "9.3");
    // appstream and baseos entries of one advisory are one match.
    assert_eq!(
        matches(&index, &rhel, "openssl", "1:3.0.7-24.el9"),
        hit("RHSA-2024:2447", "1:3.0.7-27.el9")
    );
    assert_eq!(matches(&index, &rhel, "openssl", "1:3.0.7-27.el9"), NONE);
    assert_eq!(
        matches(&index, &rhel, "openssl", "1:3.0.7-27.el9_4.1"),
        NONE
    );
    // An inventory that drops the epoch makes every build look older than the fix.
    assert_eq!(
        matches(&index, &rhel, "openssl-libs", "3.0.7-28.el9"),
        hit("RHSA-2024:2447", "1:3.0.7-27.el9")
    );
    // The EUS stream's older fix does not apply to a mainline machine, nor the
    // other way round.
    assert_eq!(
        matches(&index, &device("rhel", "8.9"), "openssl", "1:1.1.1k-9.el8"),
        NONE
    );
    let eus = EcosystemKey::new(sentinel_advisories::Distro::RedHat, "9.2").with_stream("rhel_eus");
    assert_eq!(matches(&index, &eus, "openssl", "1:3.0.7-20.el9_2.1"), NONE);
    assert_eq!(
        matches(&index, &eus, "openssl", "1:3.0.7-20.el9_2"),
        hit("RHSA-2024:2447", "1:3.0.7-20.el9_2.1")
    );

    let rocky = device("rocky", "9.6");
    // `0:` is the same as no epoch; `.el9_6` is older than `.el9_6.1`.
    assert_eq!(matches(&index, &rocky, "sudo", "1.9.5p2-10.el9_6.1"), NONE);
    assert_eq!(
        matches(&index, &rocky, "sudo", "1.9.5p2-10.el9_6"),
        hit("RLSA-2025:9978", "0:1.9.5p2-10.el9_6.1")
    );
    // The Rocky record is not an AlmaLinux one.
    assert_eq!(
        matches(
            &index,
            &device("almalinux", "9.6"),
            "sudo",
            "1.9.5p2-10.el9_6"
        ),
        NONE
    );

    // AlmaLinux lists the CVEs it fixes under `related`.
    let alma = device("almalinux", "9.4");
    let installed = alma.parse_version("1:3.0.7-24.el9").unwrap();
    let found = index.query(&alma, "openssl-libs", &installed);
    assert_eq!(
        found.first().map(|m| m.cve_ids()),
        Some(vec!["CVE-2023-5678"])
    );
}

#[test]
fn entries_that_cannot_be_evaluated_are_reported_and_the_rest_still_match() {
    let record = osv::parse_str(
        r#"{
      "id": "DSA-7000-1",
      "modified": "2024-01-01T00:00:00Z",
      "affected": [
        {"package": {"ecosystem": "Debian:12", "name": "broken"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "version 2"}]}]},
        {"package": {"ecosystem": "PyPI", "name": "requests"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.32.0"}]}]},
        {"package": {"ecosystem": "Debian:12", "name": "git-only"},
         "ranges": [{"type": "GIT", "repo": "https://example.org/x.git", "events": [{"introduced": "0"}, {"fixed": "abc123"}]}]},
        {"package": {"ecosystem": "Debian:12", "name": "fine"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-2"}]}]}
      ]
    }"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut index = AdvisoryIndex::new();
    let insertion = index.insert(record);
    assert_eq!(insertion.outcome, InsertOutcome::Added);
    let reasons: Vec<_> = insertion
        .skipped
        .iter()
        .map(|s| (s.index, s.package.as_deref(), s.reason.to_string()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (
                0,
                Some("broken"),
                "version \"version 2\" is not a valid Debian version: version string has embedded spaces"
                    .to_owned()
            ),
            (1, Some("requests"), "unsupported distribution or ecosystem \"PyPI\"".to_owned()),
            (2, Some("git-only"), SkipReason::NothingToEvaluate.to_string()),
        ]
    );
    let bookworm = device("debian", "12");
    assert_eq!(matches(&index, &bookworm, "broken", "1.0-1"), NONE);
    assert_eq!(
        matches(&index, &bookworm, "fine", "1.0-1"),
        hit("DSA-7000-1", "1.0-2")
    );
    // An installed version that does not parse is an error for the caller.
    assert!(bookworm.parse_version("not a version").is_err());
}

#[test]
fn matches_lead_to_kev_entries_through_their_cve_ids() {
    let index = index(&[DEBIAN_OPENSSH]);
    let kev = KevCatalog::parse(
        br#"{"title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2024.07.01",
             "dateReleased": "2024-07-01T00:00:00Z", "count": 1,
             "vulnerabilities": [{"cveID": "CVE-2024-6387", "vendorProject": "OpenBSD", "product": "OpenSSH",
               "vulnerabilityName": "OpenSSH Signal Handler Race Condition", "dateAdded": "2024-07-01",
               "shortDescription": "race", "requiredAction": "patch", "dueDate": "2024-07-22",
               "knownRansomwareCampaignUse": "Unknown", "notes": "", "cwes": ["CWE-364"]}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let bookworm = device("debian", "12");
    let installed = bookworm.parse_version("1:9.2p1-2+deb12u2").unwrap();
    let found = index.query(&bookworm, "openssh", &installed);
    let exploited: Vec<_> = found
        .iter()
        .flat_map(|m| m.cve_ids())
        .filter_map(|cve| kev.get(cve))
        .map(|entry| entry.due_date.to_string())
        .collect();
    assert_eq!(exploited, vec!["2024-07-22"]);
}

#[test]
fn a_withdrawn_record_leaves_the_other_records_of_its_package_alone() {
    let kept = r#"{"id": "DEBIAN-CVE-2024-1000", "modified": "2024-01-01T00:00:00Z",
      "affected": [{"package": {"ecosystem": "Debian:12", "name": "curl"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "7.88.1-10+deb12u5"}]}]}]}"#;
    let rejected = r#"{"id": "DEBIAN-CVE-2024-2000", "modified": "2024-01-01T00:00:00Z",
      "affected": [{"package": {"ecosystem": "Debian:12", "name": "curl"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}"#;
    let bookworm = device("debian", "12");
    let mut index = index(&[kept, rejected]);
    let both = vec![
        (
            "DEBIAN-CVE-2024-1000".to_owned(),
            Some("7.88.1-10+deb12u5".to_owned()),
        ),
        ("DEBIAN-CVE-2024-2000".to_owned(), None),
    ];
    assert_eq!(
        matches(&index, &bookworm, "curl", "7.88.1-10+deb12u4"),
        both
    );
    // The CVE was rejected, and the record withdrawn.
    let withdrawn = rejected.replace(
        r#""modified": "2024-01-01T00:00:00Z","#,
        r#""modified": "2024-02-01T00:00:00Z", "withdrawn": "2024-02-01T00:00:00Z","#,
    );
    let outcome = index.insert(osv::parse_str(&withdrawn).unwrap()).outcome;
    assert_eq!(outcome, InsertOutcome::Withdrawn);
    assert_eq!(
        matches(&index, &bookworm, "curl", "7.88.1-10+deb12u4"),
        hit("DEBIAN-CVE-2024-1000", "7.88.1-10+deb12u5")
    );
    assert!(index.get("DEBIAN-CVE-2024-2000").is_none());
}

#[test]
fn rhel_10_minor_streams_merge_and_the_fix_reported_clears_both() {
    // From RHEL 10 on, CPEs name the minor release. A 10.1 host can still
    // carry 10.0 builds, so both entries apply, and only a version that
    // clears both is a fix.
    let index = index(&[r#"{
      "id": "RHSA-2026:0001",
      "modified": "2026-01-01T00:00:00Z",
      "affected": [
        {"package": {"ecosystem": "Red Hat:enterprise_linux:10.0", "name": "libfoo"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0:1.2-5.el10_0.1"}]}]},
        {"package": {"ecosystem": "Red Hat:enterprise_linux:10.1", "name": "libfoo"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0:1.2-6.el10_1"}]}]}
      ]
    }"#]);
    let rhel = device("rhel", "10.1");
    assert_eq!(
        matches(&index, &rhel, "libfoo", "1.2-5.el10_0"),
        hit("RHSA-2026:0001", "0:1.2-6.el10_1")
    );
    assert_eq!(
        matches(&index, &rhel, "libfoo", "1.2-5.el10_1"),
        hit("RHSA-2026:0001", "0:1.2-6.el10_1")
    );
    assert_eq!(matches(&index, &rhel, "libfoo", "1.2-6.el10_1"), NONE);
}
