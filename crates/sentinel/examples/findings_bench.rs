//! Vulnerability detection benchmark (issue "Vulnerability detection", results
//! in docs/benchmarks.md): importing an OSV archive of 100,000 records with the
//! code `sentinel feeds import` runs, then matching a fleet of 10,000 devices
//! with 1,500 packages each against it through the store, as the server's
//! matcher does after a feed import.
//!
//! ```text
//! cargo run --release -p sentinel --example findings_bench -- [--postgres URL]
//!     [--devices N] [--packages N] [--advisories N]
//! ```
//!
//! SQLite runs in a temporary data directory; `--postgres` takes an admin URL
//! and creates (then drops) a throwaway database on that server.
//!
//! The synthetic data is shaped like Debian's: 20,000 source packages, each
//! named by ~5 advisories; about 2 % of advisories have no fix, the others are
//! fixed at versions most installed versions are already past, so that a
//! device has a few hundred findings, as a real Debian 12 host does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::time::{Duration, Instant};

use sentinel_core::audit::{AuditContext, Origin};
use sentinel_core::{
    Clock, DisplayName, Email, OrgId, OrgName, PasswordHash, SecretString, SystemClock, UserId,
};
use sentinel_protocol::facts::HostFacts;
use sentinel_protocol::inventory::{Inventory, Package, PackageManager};
use sentinel_store::testing::TestDatabase;
use sentinel_store::{NewEnrollmentToken, NewUser, StoreLocation, Stores};
use sentinel_vulns::FeedState;
use sentinel_vulns::import::{self, ImportOutcome, ReadFeed};
use sentinel_vulns::matcher;

struct Args {
    postgres: Option<String>,
    devices: usize,
    packages: usize,
    advisories: usize,
}

fn args() -> Args {
    let mut args = Args {
        postgres: None,
        devices: 10_000,
        packages: 1_500,
        advisories: 100_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--postgres" => args.postgres = Some(value),
            "--devices" => args.devices = value.parse().unwrap(),
            "--packages" => args.packages = value.parse().unwrap(),
            "--advisories" => args.advisories = value.parse().unwrap(),
            _ => panic!("unknown flag {flag}"),
        }
    }
    args
}

const SOURCE_PACKAGES: usize = 20_000;

fn record(n: usize) -> String {
    let package = n % SOURCE_PACKAGES;
    let events = if n.is_multiple_of(50) {
        String::from(r#"[{"introduced": "0"}]"#)
    } else {
        format!(
            r#"[{{"introduced": "0"}}, {{"fixed": "1:2.{}-1+deb12u1"}}]"#,
            n % 100
        )
    };
    format!(
        r#"{{"schema_version": "1.6.0", "id": "DEBIAN-CVE-2024-{n}", "modified": "2024-06-01T00:00:00Z",
  "published": "2024-05-01T00:00:00Z", "upstream": ["CVE-2024-{n}"],
  "summary": "A flaw in pkg{package} lets a remote attacker cause harm",
  "details": "A flaw was found in pkg{package}. When handling crafted input, the parser reads past the end of a buffer, which a remote attacker can use to crash the service or possibly run code. This text stands for the usual length of a record's details.",
  "affected": [
    {{"package": {{"ecosystem": "Debian:12", "name": "pkg{package}", "purl": "pkg:deb/debian/pkg{package}?arch=source"}},
      "ranges": [{{"type": "ECOSYSTEM", "events": {events}}}],
      "ecosystem_specific": {{"urgency": "{urgency}"}}, "database_specific": {{"source": "https://storage.googleapis.com/debian-osv/debian-cve-osv/DEBIAN-CVE-2024-{n}.json"}}}},
    {{"package": {{"ecosystem": "Debian:11", "name": "pkg{package}", "purl": "pkg:deb/debian/pkg{package}?arch=source"}},
      "ranges": [{{"type": "ECOSYSTEM", "events": [{{"introduced": "0"}}]}}]}}
  ],
  "references": [{{"type": "ADVISORY", "url": "https://security-tracker.debian.org/tracker/CVE-2024-{n}"}}]}}"#,
        urgency = ["low", "medium", "high", "unimportant"][n % 4],
    )
}

/// The package installed in `slot` of `device`, at one of four versions.
fn package(device: usize, slot: usize) -> Package {
    let name = format!("pkg{}", (device * 7 + slot * 13) % SOURCE_PACKAGES);
    let version = format!("1:2.{}-1+deb12u1", 96 + (device + slot) % 4);
    Package {
        manager: PackageManager::Dpkg,
        name: format!("{name}-bin"),
        version: version.clone(),
        arch: Some("amd64".into()),
        source_name: Some(name),
        source_version: Some(version),
    }
}

fn facts(device: usize) -> HostFacts {
    serde_json::from_value(serde_json::json!({
        "hostname": format!("host{device}"),
        "os_id": "debian",
        "os_name": "Debian GNU/Linux",
        "os_version_id": "12",
        "os_pretty_name": "Debian GNU/Linux 12 (bookworm)",
        "kernel": "6.1.0-18-amd64",
        "architecture": "x86_64",
    }))
    .unwrap()
}

#[tokio::main]
async fn main() {
    let args = args();
    let clock = SystemClock;
    let dir = tempfile::tempdir().unwrap();
    let test_db = match &args.postgres {
        Some(url) => Some(TestDatabase::create(url).await.unwrap()),
        None => None,
    };
    let location = match &test_db {
        Some(db) => StoreLocation::Postgres {
            url: SecretString::new(db.url().to_owned()),
        },
        None => StoreLocation::Sqlite {
            data_dir: dir.path().to_owned(),
        },
    };
    let stores = Stores::open(&location, &clock).await.unwrap();
    println!(
        "engine: {}; {} devices × {} packages; {} advisories",
        stores.control().engine(),
        args.devices,
        args.packages,
        args.advisories
    );

    // 1. The archive, as OSV.dev publishes it: one deflated JSON file per record.
    let archive = dir.path().join("all.zip");
    {
        let file = std::fs::File::create(&archive).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for n in 0..args.advisories {
            zip.start_file(format!("DEBIAN-CVE-2024-{n}.json"), options)
                .unwrap();
            zip.write_all(record(n).as_bytes()).unwrap();
        }
        zip.finish().unwrap();
    }
    let size = std::fs::metadata(&archive).unwrap().len();
    let started = Instant::now();
    let feed = ReadFeed::from_path(&archive, &mut |_| {}).unwrap();
    let read = started.elapsed();
    let outcome = import::import(&stores, feed, clock.now(), &AuditContext::system())
        .await
        .unwrap();
    let imported = started.elapsed();
    let ImportOutcome::Imported(done) = outcome else {
        panic!("not imported");
    };
    assert_eq!(done.counts.added as usize, args.advisories);
    println!(
        "import of a {:.1} MB archive of {} records: {:.1} s (reading {:.1} s, storing {:.1} s)",
        size as f64 / 1e6,
        args.advisories,
        secs(imported),
        secs(read),
        secs(imported - read)
    );

    // 2. The fleet (setup, not measured against a target).
    let started = Instant::now();
    let (org, owner) = create_org(&stores, &clock).await;
    let token = sentinel_core::SecretHash::of(b"bench enrollment token");
    stores
        .control()
        .create_enrollment_token(
            org,
            &NewEnrollmentToken {
                secret_hash: token,
                tags: Vec::new(),
                max_uses: args.devices as i64,
                expires_at: clock.now().plus(Duration::from_secs(86_400)),
                created_by: owner,
            },
            clock.now(),
            &AuditContext::system(),
        )
        .await
        .unwrap();
    for device in 0..args.devices {
        let device_token = sentinel_core::SecretHash::of(format!("device {device}").as_bytes());
        let enrolled = stores
            .enroll(
                token,
                device_token,
                &facts(device),
                "bench",
                &Origin::default(),
                clock.now(),
            )
            .await
            .unwrap()
            .unwrap();
        let inventory = Inventory::new(
            (0..args.packages)
                .map(|slot| package(device, slot))
                .collect(),
        );
        enrolled
            .store
            .replace_inventory(&inventory.digest(), inventory.packages(), clock.now())
            .await
            .unwrap();
    }
    println!(
        "fleet stored: {} devices, {} inventory rows in {:.1} s",
        args.devices,
        args.devices * args.packages,
        secs(started.elapsed())
    );

    // 3. What a server does at start: load the feeds.
    let feeds = std::sync::Arc::new(FeedState::default());
    let started = Instant::now();
    feeds.refresh(&stores).await.unwrap();
    println!(
        "feeds loaded and compiled: {} advisories in {:.1} s",
        feeds.read().index.len(),
        secs(started.elapsed())
    );

    // 4. The first match of the whole fleet: every finding is new.
    let started = Instant::now();
    let first = matcher::catch_up(&stores, &feeds, &clock, org)
        .await
        .unwrap();
    let first_time = started.elapsed();
    println!(
        "first match of the fleet: {} devices, {} findings written, in {:.1} s ({:.2} ms per device)",
        first.devices,
        first.changes.added,
        secs(first_time),
        first_time.as_secs_f64() * 1000.0 / first.devices.max(1) as f64
    );

    // 5. Nothing changed: nothing to do.
    let started = Instant::now();
    let idle = matcher::catch_up(&stores, &feeds, &clock, org)
        .await
        .unwrap();
    assert_eq!(idle.devices, 0);
    println!(
        "catch-up with nothing stale: {:.3} s",
        secs(started.elapsed())
    );

    // 6. A feed import that changes one record: every device is matched again
    //    (generation changed), writing only what changed.
    let changed = record(args.advisories + 1).replace("2024-06-01", "2024-07-01");
    let feed_file = dir.path().join("one.json");
    std::fs::write(&feed_file, changed).unwrap();
    let feed = ReadFeed::from_path(&feed_file, &mut |_| {}).unwrap();
    import::import(&stores, feed, clock.now(), &AuditContext::system())
        .await
        .unwrap();
    feeds.refresh(&stores).await.unwrap();
    let started = Instant::now();
    let again = matcher::catch_up(&stores, &feeds, &clock, org)
        .await
        .unwrap();
    let again_time = started.elapsed();
    println!(
        "re-match of the fleet after a feed change: {} devices, {} findings added, {} removed, in {:.1} s",
        again.devices,
        again.changes.added,
        again.changes.removed,
        secs(again_time)
    );
    stores.close().await;
    if let Some(db) = test_db {
        db.drop_database().await.unwrap();
    }
}

async fn create_org(stores: &Stores, clock: &dyn Clock) -> (OrgId, UserId) {
    let owner = stores
        .control()
        .create_user(
            &NewUser {
                email: Email::parse("bench@example.org").unwrap(),
                name: DisplayName::parse("Bench").unwrap(),
                password_hash: PasswordHash::from_trusted("x".into()),
                platform_admin: true,
            },
            clock.now(),
            &AuditContext::system(),
        )
        .await
        .unwrap();
    let org = stores
        .create_organization(
            &OrgName::parse("Bench").unwrap(),
            owner.id,
            clock,
            &AuditContext::system(),
        )
        .await
        .unwrap()
        .id;
    (org, owner.id)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
