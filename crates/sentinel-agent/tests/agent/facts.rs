//! Host facts read from fake roots, and from this host.

use sentinel_agent::facts::{self, HostPaths};

use crate::write;

const DEBIAN_OS_RELEASE: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"#;

#[test]
fn reads_facts_under_a_root() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "etc/os-release", DEBIAN_OS_RELEASE);
    write(root.path(), "usr/lib/os-release", "ID=ignored\n");
    write(root.path(), "etc/hostname", "web-01\n");
    write(
        root.path(),
        "etc/machine-id",
        "4c4c4544004a3510804cb4c04f4e3233\n",
    );
    write(root.path(), "proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");

    let facts = facts::collect(&HostPaths::under(root.path()));
    assert_eq!(facts.hostname, "web-01");
    assert_eq!(facts.os_id, "debian");
    assert_eq!(facts.os_name, "Debian GNU/Linux");
    assert_eq!(facts.os_version_id.as_deref(), Some("12"));
    assert_eq!(facts.os_pretty_name, "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(facts.kernel, "6.1.0-18-amd64");
    assert_eq!(
        facts.machine_id.as_deref(),
        Some("4c4c4544004a3510804cb4c04f4e3233")
    );
    assert!(facts.warnings.is_empty(), "{:?}", facts.warnings);
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    assert_eq!(facts.architecture, std::env::consts::ARCH);
}

#[test]
fn falls_back_to_usr_lib_os_release_and_dbus_machine_id() {
    let root = tempfile::tempdir().unwrap();
    let arch = "NAME=\"Arch Linux\"\nPRETTY_NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\n";
    write(root.path(), "usr/lib/os-release", arch);
    write(
        root.path(),
        "var/lib/dbus/machine-id",
        "0123456789abcdef0123456789abcdef",
    );
    let facts = facts::collect(&HostPaths::under(root.path()));
    assert_eq!(facts.os_id, "arch");
    assert_eq!(
        facts.os_version_id, None,
        "rolling releases have no VERSION_ID"
    );
    assert_eq!(
        facts.machine_id.as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
}

#[test]
fn empty_root_gets_the_os_release_defaults_and_warnings() {
    let root = tempfile::tempdir().unwrap();
    let facts = facts::collect(&HostPaths::under(root.path()));
    assert_eq!(
        (facts.os_id.as_str(), facts.os_name.as_str()),
        ("linux", "Linux")
    );
    assert_eq!(facts.os_pretty_name, "Linux");
    assert_eq!(facts.os_version_id, None);
    assert_eq!(facts.machine_id, None);
    // The hostname and kernel release fall back to uname(2).
    assert!(!facts.hostname.is_empty());
    assert!(!facts.kernel.is_empty());
    let warnings = facts.warnings.join("\n");
    for missing in ["os-release", "hostname", "osrelease", "machine-id"] {
        assert!(warnings.contains(missing), "{missing} not in {warnings}");
    }
}

#[test]
fn uninitialized_machine_id_and_commented_hostname() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "etc/machine-id", "uninitialized\n");
    write(
        root.path(),
        "etc/hostname",
        "# managed by cloud-init\ndb-02.example.com\n",
    );
    let facts = facts::collect(&HostPaths::under(root.path()));
    assert_eq!(facts.machine_id, None);
    assert_eq!(facts.hostname, "db-02.example.com");
}

#[test]
fn this_host() {
    let facts = facts::collect(&HostPaths::default());
    assert!(!facts.hostname.is_empty());
    assert!(!facts.kernel.is_empty());
    assert!(!facts.architecture.is_empty());
    assert!(!facts.os_id.is_empty());
    let json = serde_json::to_value(&facts).unwrap();
    assert_eq!(json["kernel"], facts.kernel.as_str());
}
