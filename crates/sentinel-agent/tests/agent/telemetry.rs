//! Telemetry sampled from a fake procfs in a temporary directory, and from this host.

use std::path::Path;

use sentinel_agent::telemetry::{Sampler, SamplerPaths};

use crate::{fixture_text, write};

/// A glibc x86_64/aarch64 `struct utmp` record of `kind` for login name `user`.
fn utmp_record(kind: i16, user: &str) -> Vec<u8> {
    let mut record = vec![0u8; 384];
    record[..2].copy_from_slice(&kind.to_ne_bytes());
    record[8..13].copy_from_slice(b"pts/1");
    record[44..44 + user.len()].copy_from_slice(user.as_bytes());
    record
}

/// A fake procfs from the fixtures, whose only real mount is `disk`, plus a utmp file.
fn fake_host(root: &Path, disk: &Path) -> SamplerPaths {
    let proc_root = root.join("proc");
    for file in ["uptime", "loadavg", "stat", "meminfo"] {
        write(&proc_root, file, fixture_text(&format!("proc/{file}")));
    }
    write(&proc_root, "net/dev", fixture_text("proc/net_dev"));
    let mounts = format!(
        "proc /proc proc rw,nosuid 0 0\n\
         /dev/sda2 {} ext4 rw,relatime 0 0\n\
         tmpfs /run tmpfs rw 0 0\n\
         /dev/sda2 /var/lib/docker ext4 rw 0 0\n\
         /dev/sdb1 /nonexistent/sentinel-data xfs rw 0 0\n",
        disk.display()
    );
    write(&proc_root, "self/mounts", mounts);
    let utmp = [
        utmp_record(2, "reboot"),
        utmp_record(7, "alice"),
        utmp_record(7, "bob"),
    ]
    .concat();
    write(root, "run/utmp", utmp);
    SamplerPaths {
        proc_root,
        utmp: root.join("run/utmp"),
    }
}

#[test]
fn samples_a_fake_host() {
    let root = tempfile::tempdir().unwrap();
    let disk = tempfile::tempdir().unwrap();
    let paths = fake_host(root.path(), disk.path());
    let mut sampler = Sampler::new(paths.clone());

    let first = sampler.sample();
    assert_eq!(first.uptime_seconds, 350_735);
    assert_eq!(first.load, [0.52, 0.58, 1.59]);
    assert_eq!(first.cpu_percent, None, "no previous sample");
    assert_eq!(first.memory.total_bytes, 16_318_680 * 1024);
    assert_eq!(first.memory.available_bytes, 9_876_544 * 1024);
    assert_eq!(first.memory.used_bytes, (16_318_680 - 9_876_544) * 1024);
    assert_eq!(first.swap.total_bytes, 2_097_148 * 1024);
    assert_eq!(first.swap.used_bytes, (2_097_148 - 1_048_576) * 1024);
    assert_eq!(first.logged_in_users, 2);

    let [disk_usage] = first.disks.as_slice() else {
        panic!("{:?}", first.disks)
    };
    assert_eq!(disk_usage.mount, disk.path().display().to_string());
    assert_eq!(
        (disk_usage.filesystem.as_str(), disk_usage.device.as_str()),
        ("ext4", "/dev/sda2")
    );
    assert!(disk_usage.total_bytes > 0);
    assert!(disk_usage.used_bytes + disk_usage.available_bytes <= disk_usage.total_bytes);

    let counters: Vec<_> = first
        .interfaces
        .iter()
        .map(|i| (i.name.as_str(), i.rx_bytes, i.tx_bytes))
        .collect();
    assert_eq!(
        counters,
        [
            ("docker0", 0, 0),
            ("lo", 2_666_178, 2_666_178),
            ("wlp2s0", 8_812_345_123, 912_345_678)
        ]
    );

    assert_eq!(first.warnings.len(), 1, "{:?}", first.warnings);
    assert!(first.warnings[0].contains("/nonexistent/sentinel-data"));

    // 400 ticks later, 100 of them idle or waiting for I/O.
    let stat = fixture_text("proc/stat").replace(
        "cpu  10132153 290696 3084719 46828483 16683",
        "cpu  10132353 290796 3084719 46828563 16703",
    );
    write(&paths.proc_root, "stat", stat);
    let second = sampler.sample();
    assert_eq!(second.cpu_percent, Some(75.0));

    // A reading that cannot be parsed gives no percentage, and the next one is measured
    // from the last good reading.
    write(&paths.proc_root, "stat", "cpu garbage\n");
    let third = sampler.sample();
    assert_eq!(third.cpu_percent, None);
    assert!(
        third
            .warnings
            .iter()
            .any(|w| w.contains("stat: unrecognized contents"))
    );
}

#[test]
fn missing_sources_are_warnings_not_failures() {
    let root = tempfile::tempdir().unwrap();
    let paths = SamplerPaths {
        proc_root: root.path().join("proc"),
        utmp: root.path().join("utmp"),
    };
    let sample = Sampler::new(paths).sample();
    assert_eq!(sample.uptime_seconds, 0);
    assert_eq!(sample.memory.total_bytes, 0);
    assert!(sample.disks.is_empty() && sample.interfaces.is_empty());
    assert_eq!(sample.logged_in_users, 0);
    let warnings = sample.warnings.join("\n");
    for source in [
        "uptime", "loadavg", "stat", "meminfo", "mounts", "net/dev", "utmp",
    ] {
        assert!(warnings.contains(source), "{source} not in {warnings}");
    }
    assert_eq!(sample.warnings.len(), 7);
}

#[test]
fn sample_serializes_with_the_documented_field_names() {
    let root = tempfile::tempdir().unwrap();
    let disk = tempfile::tempdir().unwrap();
    let sample = Sampler::new(fake_host(root.path(), disk.path())).sample();
    let json = serde_json::to_value(&sample).unwrap();
    for field in [
        "uptime_seconds",
        "load",
        "cpu_percent",
        "memory",
        "swap",
        "disks",
        "interfaces",
        "logged_in_users",
        "warnings",
    ] {
        assert!(json.get(field).is_some(), "{field} missing from {json}");
    }
    assert_eq!(json["memory"]["total_bytes"], 16_318_680u64 * 1024);
    assert_eq!(json["interfaces"][1]["name"], "lo");
}

#[test]
fn samples_this_host() {
    let mut sampler = Sampler::new(SamplerPaths::default());
    let first = sampler.sample();
    assert!(first.uptime_seconds > 0, "{:?}", first.warnings);
    assert!(first.memory.total_bytes > 0, "{:?}", first.warnings);
    assert!(first.memory.used_bytes <= first.memory.total_bytes);
    assert!(first.load.iter().all(|load| *load >= 0.0));
    assert_eq!(first.cpu_percent, None);
    for disk in &first.disks {
        assert!(disk.used_bytes <= disk.total_bytes, "{disk:?}");
    }
    if let Some(lo) = first.interfaces.iter().find(|i| i.name == "lo") {
        assert!(lo.addresses.iter().any(|a| a == "127.0.0.1"), "{lo:?}");
    }
    let second = sampler.sample();
    if let Some(percent) = second.cpu_percent {
        assert!((0.0..=100.0).contains(&percent), "{percent}");
    }
}
