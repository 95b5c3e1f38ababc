//! Package managers: the exact argument lists, refused names, and detection in `PATH`.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sentinel_agent::packages::{Operation, Tool};

#[test]
fn argument_lists_put_the_name_after_a_double_dash() {
    let cases = [
        (Tool::AptGet, Operation::Install, "install -y -- openssl"),
        (Tool::AptGet, Operation::Remove, "remove -y -- openssl"),
        (Tool::Dnf, Operation::Install, "install -y -- openssl"),
        (Tool::Dnf, Operation::Remove, "remove -y -- openssl"),
        (Tool::Apk, Operation::Install, "add -- openssl"),
        (Tool::Apk, Operation::Remove, "del -- openssl"),
    ];
    for (tool, operation, expected) in cases {
        assert_eq!(tool.args(operation, "openssl").unwrap().join(" "), expected);
    }
    assert_eq!(Tool::AptGet.env(), [("DEBIAN_FRONTEND", "noninteractive")]);
    assert!(Tool::Dnf.env().is_empty() && Tool::Apk.env().is_empty());
}

#[test]
fn names_that_could_be_options_versions_or_paths_are_refused() {
    for bad in [
        "",
        "-y",
        "--allow-unauthenticated",
        "-oAPT::Update::Pre-Invoke=sh",
        "foo=1.0",
        "../x",
        "/tmp/evil.deb",
        "a b",
        "x;rm",
        "*",
    ] {
        for tool in Tool::PREFERENCE {
            assert!(
                tool.args(Operation::Install, bad).is_err(),
                "{tool:?} {bad:?}"
            );
        }
    }
    for good in ["g++", "python3.11", "lib_x-1", "NetworkManager"] {
        assert!(Tool::Apk.args(Operation::Remove, good).is_ok(), "{good}");
    }
}

fn fake_program(dir: &Path, name: &str, executable: bool) {
    let path = dir.join(name);
    std::fs::write(&path, "#!/bin/sh\n").unwrap();
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn detection_prefers_apt_get_then_dnf_then_apk_and_needs_an_executable() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let path = std::env::join_paths([first.path(), second.path()]).unwrap();
    assert_eq!(Tool::detect(&path), None);

    fake_program(first.path(), "apk", true);
    fake_program(first.path(), "dnf", false); // not executable: not a candidate
    assert_eq!(Tool::detect(&path).unwrap().0, Tool::Apk);

    fake_program(second.path(), "dnf", true);
    assert_eq!(
        Tool::detect(&path),
        Some((Tool::Dnf, second.path().join("dnf")))
    );

    fake_program(second.path(), "apt-get", true);
    assert_eq!(Tool::detect(&path).unwrap().0, Tool::AptGet);

    // Relative directories in PATH are ignored.
    let relative = OsString::from("bin:.");
    assert_eq!(Tool::detect(&relative), None);
}
