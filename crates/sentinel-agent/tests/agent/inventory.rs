//! Inventory parsers on realistic fixtures, source detection, and a large dpkg database.

use sentinel_agent::inventory::{InventorySource, apk, dpkg, rpm};
use sentinel_protocol::inventory::{Inventory, Package, PackageManager};

use crate::{fixture, fixture_text, write};

fn package(
    manager: PackageManager,
    name: &str,
    version: &str,
    arch: Option<&str>,
    source: Option<(&str, &str)>,
) -> Package {
    Package {
        manager,
        name: name.to_owned(),
        version: version.to_owned(),
        arch: arch.map(str::to_owned),
        source_name: source.map(|(name, _)| name.to_owned()),
        source_version: source.map(|(_, version)| version.to_owned()),
    }
}

#[test]
fn dpkg_status_fixture() {
    use PackageManager::Dpkg;
    let parsed = dpkg::parse_status(&fixture_text("dpkg/status"));
    let expected = vec![
        package(
            Dpkg,
            "base-files",
            "12.4+deb12u5",
            Some("amd64"),
            Some(("base-files", "12.4+deb12u5")),
        ),
        package(
            Dpkg,
            "bsdutils",
            "1:2.38.1-5+b1",
            Some("amd64"),
            Some(("util-linux", "2.38.1-5")),
        ),
        package(
            Dpkg,
            "libc6",
            "2.36-9+deb12u7",
            Some("amd64"),
            Some(("glibc", "2.36-9+deb12u7")),
        ),
        package(
            Dpkg,
            "libc6",
            "2.36-9+deb12u7",
            Some("i386"),
            Some(("glibc", "2.36-9+deb12u7")),
        ),
        package(
            Dpkg,
            "nginx",
            "1.22.1-9",
            Some("amd64"),
            Some(("nginx", "1.22.1-9")),
        ),
        package(
            Dpkg,
            "tzdata",
            "2024a-0+deb12u1",
            Some("all"),
            Some(("tzdata", "2024a-0+deb12u1")),
        ),
        package(
            Dpkg,
            "zlib1g",
            "1:1.2.13.dfsg-1",
            Some("amd64"),
            Some(("zlib", "1:1.2.13.dfsg-1")),
        ),
    ];
    assert_eq!(parsed.inventory.packages(), expected);
    // Only the installed stanza without a Version is worth a warning: config-files and
    // half-installed packages are simply not installed.
    assert_eq!(parsed.warnings.len(), 1, "{:?}", parsed.warnings);
    assert_eq!(parsed.warnings[0].line, 141);
    assert!(parsed.warnings[0].to_string().contains("local-tools"));
    assert!(parsed.warnings[0].reason.contains("no Version field"));
}

#[test]
fn dpkg_status_with_crlf_line_endings_parses_the_same() {
    let text = fixture_text("dpkg/status");
    let crlf = dpkg::parse_status(&text.replace('\n', "\r\n"));
    let lf = dpkg::parse_status(&text);
    assert_eq!(crlf, lf);
}

#[test]
fn rpm_query_output_fixture() {
    use PackageManager::Rpm;
    let parsed = rpm::parse_query_output(&fixture_text("rpm/query.txt"));
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let found = parsed.inventory.packages();
    assert_eq!(found.len(), 9, "gpg-pubkey entries are skipped");
    assert!(found.iter().all(|p| p.name != "gpg-pubkey"));
    assert!(found.contains(&package(
        Rpm,
        "bash",
        "5.1.8-9.el9",
        Some("x86_64"),
        Some(("bash", "5.1.8-9.el9")),
    )));
    assert!(found.contains(&package(
        Rpm,
        "openssl-libs",
        "1:3.0.7-27.el9",
        Some("x86_64"),
        Some(("openssl", "1:3.0.7-27.el9")),
    )));
    assert!(found.contains(&package(
        Rpm,
        "python3-libs",
        "3.9.18-3.el9_4.3",
        Some("x86_64"),
        Some(("python3.9", "3.9.18-3.el9_4.3")),
    )));
    assert!(found.contains(&package(
        Rpm,
        "shadow-utils",
        "2:4.9-8.el9",
        Some("x86_64"),
        Some(("shadow-utils", "2:4.9-8.el9")),
    )));
    let kernels = found.iter().filter(|p| p.name == "kernel-core").count();
    let glibc_arches: Vec<_> = found
        .iter()
        .filter(|p| p.name == "glibc")
        .map(|p| p.arch.as_deref())
        .collect();
    assert_eq!(kernels, 2, "installed side by side");
    assert_eq!(glibc_arches, [Some("i686"), Some("x86_64")]);
}

#[test]
fn apk_installed_fixture() {
    use PackageManager::Apk;
    let parsed = apk::parse_installed(&fixture_text("apk/installed"));
    let expected = vec![
        package(
            Apk,
            "busybox",
            "1.36.1-r15",
            Some("x86_64"),
            Some(("busybox", "1.36.1-r15")),
        ),
        package(
            Apk,
            "libcrypto3",
            "3.1.4-r5",
            Some("x86_64"),
            Some(("openssl", "3.1.4-r5")),
        ),
        package(
            Apk,
            "musl",
            "1.2.4_git20230717-r4",
            Some("x86_64"),
            Some(("musl", "1.2.4_git20230717-r4")),
        ),
        package(
            Apk,
            "ssl_client",
            "1.36.1-r15",
            Some("x86_64"),
            Some(("busybox", "1.36.1-r15")),
        ),
    ];
    assert_eq!(parsed.inventory.packages(), expected);
    assert_eq!(parsed.warnings.len(), 1, "{:?}", parsed.warnings);
    assert!(parsed.warnings[0].reason.contains("half-written"));
}

#[test]
fn digest_is_stable_across_stanza_order_and_changes_with_content() {
    let text = fixture_text("dpkg/status");
    let stanzas: Vec<&str> = text.split("\n\n").collect();
    let reversed: Vec<&str> = stanzas.iter().rev().copied().collect();
    let forward = dpkg::parse_status(&text).inventory;
    let backward = dpkg::parse_status(&reversed.join("\n\n")).inventory;
    assert_eq!(forward.digest(), backward.digest());

    let upgraded =
        dpkg::parse_status(&text.replace("Version: 1.22.1-9", "Version: 1.22.1-9+deb12u1"));
    assert_ne!(upgraded.inventory.digest(), forward.digest());
    let removed = dpkg::parse_status(&text.replace(
        "Status: hold ok installed",
        "Status: deinstall ok config-files",
    ));
    assert_ne!(removed.inventory.digest(), forward.digest());
    let rebuilt =
        dpkg::parse_status(&text.replace("Source: util-linux (2.38.1-5)", "Source: util-linux"));
    assert_ne!(rebuilt.inventory.digest(), forward.digest());
}

#[test]
fn digest_matches_an_independent_computation_of_the_encoding() {
    // Pins the canonical encoding (computed with Python's hashlib: SHA-256 over the
    // length-prefixed tag `sentinel-inventory-v1`, the big-endian u64 package count, then
    // per package length-prefixed manager, name and version and, for each optional field,
    // 0 when absent or 1 and the length-prefixed value). Changing it invalidates every
    // digest agents have sent.
    assert_eq!(
        Inventory::new(vec![]).digest(),
        "adb8bd6f9093812be2495fdedda4297a0fba12841eecc1d86dd2000cfbb12de3"
    );
    let musl = package(
        PackageManager::Apk,
        "musl",
        "1.2.4-r2",
        Some("x86_64"),
        Some(("musl", "1.2.4-r2")),
    );
    assert_eq!(
        Inventory::new(vec![musl]).digest(),
        "3baf17e05fcb50e95de3e21fb9c848c99b8b18357c706eefcb6c3e474bfbb896"
    );
}

#[test]
fn large_generated_dpkg_status_parses_completely() {
    const COUNT: usize = 2_000;
    let mut text = String::new();
    for index in 0..COUNT {
        let source = match index % 3 {
            0 => String::new(),
            1 => format!("Source: src{}\n", index / 10),
            _ => format!("Source: src{} (1:{index}.0-1)\n", index / 10),
        };
        let description: String = (0..20)
            .map(|line| format!(" Line {line} of a long description of package {index}.\n"))
            .collect();
        text.push_str(&format!(
            "Package: pkg{index}\nStatus: install ok installed\nPriority: optional\n\
             Architecture: amd64\n{source}Version: 1:{index}.0-1+b1\n\
             Depends: libc6 (>= 2.34), zlib1g (>= 1:1.2.0)\n\
             Description: package number {index}\n{description}\n"
        ));
    }
    assert!(
        text.len() > 2_000_000,
        "as large as a real status file: {}",
        text.len()
    );
    let parsed = dpkg::parse_status(&text);
    assert!(parsed.warnings.is_empty());
    let packages = parsed.inventory.packages();
    assert_eq!(packages.len(), COUNT);
    let with_own_source = packages
        .iter()
        .filter(|p| p.source_name.as_ref() == Some(&p.name))
        .count();
    let with_source_version = packages
        .iter()
        .filter(|p| {
            p.source_version
                .as_deref()
                .is_some_and(|v| !v.ends_with("+b1"))
        })
        .count();
    assert_eq!(with_own_source, COUNT.div_ceil(3));
    assert_eq!(with_source_version, COUNT / 3);
}

#[test]
fn detects_the_package_manager_under_a_root() {
    let root = tempfile::tempdir().unwrap();
    assert_eq!(InventorySource::detect(root.path()), None);

    std::fs::create_dir_all(root.path().join("var/lib/rpm")).unwrap();
    let rpm = InventorySource::detect(root.path()).unwrap();
    assert_eq!(
        rpm,
        InventorySource::RpmQuery {
            root: root.path().to_owned()
        }
    );
    assert_eq!(rpm.manager(), PackageManager::Rpm);

    write(
        root.path(),
        "lib/apk/db/installed",
        fixture_text("apk/installed"),
    );
    let apk = InventorySource::detect(root.path()).unwrap();
    assert_eq!(apk.manager(), PackageManager::Apk);
    assert_eq!(apk.collect().unwrap().inventory.packages().len(), 4);

    write(
        root.path(),
        "var/lib/dpkg/status",
        fixture_text("dpkg/status"),
    );
    let dpkg = InventorySource::detect(root.path()).unwrap();
    assert_eq!(
        dpkg,
        InventorySource::Dpkg {
            status: root.path().join("var/lib/dpkg/status")
        }
    );
    assert_eq!(dpkg.collect().unwrap().inventory.packages().len(), 7);
}

#[test]
fn detects_rpm_databases_in_the_sysimage_layout() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("usr/lib/sysimage/rpm")).unwrap();
    let source = InventorySource::detect(root.path()).unwrap();
    assert_eq!(source.manager(), PackageManager::Rpm);
}

#[test]
fn collects_rpm_query_output_from_a_file() {
    let source = InventorySource::RpmQueryOutput {
        path: fixture("rpm/query.txt"),
    };
    let collected = source.collect().unwrap();
    assert_eq!(collected.inventory.packages().len(), 9);
}

#[test]
fn missing_database_is_an_error_naming_the_file() {
    let source = InventorySource::Dpkg {
        status: fixture("dpkg/absent"),
    };
    let error = source.collect().unwrap_err();
    assert!(error.to_string().contains("dpkg/absent"), "{error}");
}

#[test]
fn rpm_query_of_a_root_without_rpm_fails_cleanly() {
    // Runs the real command: where rpm is not installed that is an error naming it;
    // where it is, an empty root has no packages.
    let root = tempfile::tempdir().unwrap();
    let source = InventorySource::RpmQuery {
        root: root.path().to_owned(),
    };
    match source.collect() {
        Err(error) => assert!(error.to_string().contains("rpm"), "{error}"),
        Ok(collected) => assert!(collected.inventory.packages().is_empty()),
    }
}
