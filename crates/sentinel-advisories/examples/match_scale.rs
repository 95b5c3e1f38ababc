//! A benchmark of the matcher at fleet scale (meaningful in a release build):
//!
//! ```text
//! cargo run --release -p sentinel-advisories --example match_scale
//! ```
//!
//! It indexes 100,000 synthetic advisories and matches 10,000 devices with
//! 1,500 packages each (15 million queries), the size the fleet feature must
//! handle in under 10 seconds on 2 cores: once query by query on two
//! threads, and once deduplicated, as a fleet scan should do it.

// A benchmark fails loudly on bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::Instant;

use sentinel_advisories::{AdvisoryIndex, EcosystemKey, Version, osv};

const ADVISORIES: usize = 100_000;
const PACKAGES: usize = 20_000;
const DEVICES: usize = 10_000;
const PACKAGES_PER_DEVICE: usize = 1_500;

fn main() {
    let started = Instant::now();
    let mut index = AdvisoryIndex::new();
    for n in 0..ADVISORIES {
        let package = n % PACKAGES;
        let record = format!(
            r#"{{"id": "DEBIAN-CVE-{n}", "modified": "2024-01-01T00:00:00Z", "upstream": ["CVE-2024-{n}"],
                "affected": [
                  {{"package": {{"ecosystem": "Debian:12", "name": "pkg{package}"}},
                    "ranges": [{{"type": "ECOSYSTEM", "events": [{{"introduced": "0"}}, {{"fixed": "1:2.{minor}-1+deb12u{u}"}}]}}],
                    "ecosystem_specific": {{"urgency": "low"}}}},
                  {{"package": {{"ecosystem": "Debian:11", "name": "pkg{package}"}},
                    "ranges": [{{"type": "ECOSYSTEM", "events": [{{"introduced": "0"}}]}}]}}
                ]}}"#,
            minor = n % 7,
            u = n % 5,
        );
        index.insert(osv::parse_str(&record).unwrap());
    }
    let built = started.elapsed();

    let key = EcosystemKey::from_os_release("debian", Some("12")).unwrap();
    let release = index.release(&key).unwrap();
    // Devices run one of a few versions of each package.
    let versions: Vec<Vec<Version>> = (0..PACKAGES)
        .map(|p| {
            (0..4)
                .map(|v| {
                    Version::parse(
                        key.version_scheme(),
                        &format!("1:2.{}-1+deb12u{v}", (p + v) % 8),
                    )
                    .unwrap()
                })
                .collect()
        })
        .collect();
    let names: Vec<String> = (0..PACKAGES).map(|p| format!("pkg{p}")).collect();

    // SCALE_DEVICES runs fewer devices, for profiling.
    let devices = std::env::var("SCALE_DEVICES")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(DEVICES);
    let inventory = |device: usize| {
        (0..PACKAGES_PER_DEVICE).map(move |slot| {
            let package = (device * 7 + slot * 13) % PACKAGES;
            (package, (device + slot) % 4)
        })
    };

    // Every device's every package, one query each, on two threads.
    let started = Instant::now();
    let found: usize = std::thread::scope(|scope| {
        let (names, versions) = (&names, &versions);
        let part = |devices: std::ops::Range<usize>| {
            move || {
                let mut found = 0;
                for device in devices {
                    for (package, version) in inventory(device) {
                        found += release
                            .query(&names[package], &versions[package][version])
                            .len();
                    }
                }
                found
            }
        };
        let first = scope.spawn(part(0..devices / 2));
        let second = scope.spawn(part(devices / 2..devices));
        first.join().unwrap() + second.join().unwrap()
    });
    let naive = started.elapsed();

    // What a fleet scan should do: devices share package versions, so query
    // each distinct (package, version) once and fan the answer out.
    let started = Instant::now();
    let mut distinct: HashMap<(usize, usize), usize> = HashMap::new();
    for device in 0..devices {
        for pair in inventory(device) {
            *distinct.entry(pair).or_default() += 1;
        }
    }
    let mut fanned_out = 0usize;
    for (&(package, version), &count) in &distinct {
        fanned_out += count
            * release
                .query(&names[package], &versions[package][version])
                .len();
    }
    let deduplicated = started.elapsed();

    let queries = devices * PACKAGES_PER_DEVICE;
    println!("indexed {ADVISORIES} advisories in {built:?}");
    println!("{queries} queries one by one on two threads: {naive:?}, {found} matches");
    println!(
        "the same deduplicated to {} distinct queries: {deduplicated:?}, {fanned_out} matches",
        distinct.len()
    );
    assert_eq!(found, fanned_out);
    assert!(found > 0);
}
