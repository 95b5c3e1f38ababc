//! Host facts: the operating system, kernel, architecture, hostname and machine ID.
//!
//! Files are read under a configurable root ([`HostPaths`]) so that tests, and an agent
//! inspecting a mounted image, can point it elsewhere. What the files do not say comes from
//! `uname(2)`. Nothing here fails: what cannot be read is left at the os-release defaults
//! or absent, and reported in the facts' `warnings`.

mod os_release;

use std::io;
use std::path::{Path, PathBuf};

use nix::sys::utsname::{UtsName, uname};
use sentinel_protocol::facts::HostFacts;

use crate::files::read_text;

/// Where the host's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    /// The root directory the absolute paths below are resolved under.
    pub root: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/"),
        }
    }
}

impl HostPaths {
    /// The host's files under `root` rather than `/`.
    pub fn under(root: impl AsRef<Path>) -> Self {
        Self {
            root: root.as_ref().to_owned(),
        }
    }

    /// The absolute `path` of the host, found under [`HostPaths::root`].
    fn file(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
}

const OS_RELEASE_PATHS: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];
const HOSTNAME_PATH: &str = "/etc/hostname";
const KERNEL_RELEASE_PATH: &str = "/proc/sys/kernel/osrelease";
const MACHINE_ID_PATHS: [&str; 2] = ["/etc/machine-id", "/var/lib/dbus/machine-id"];

/// Reads the facts of the host at `paths`.
pub fn collect(paths: &HostPaths) -> HostFacts {
    let mut warnings = Vec::new();
    let uname = uname()
        .map_err(|errno| warnings.push(format!("uname: {errno}")))
        .ok();
    let from_uname = |field: fn(&UtsName) -> &std::ffi::OsStr| {
        uname
            .as_ref()
            .map(|uname| field(uname).to_string_lossy().into_owned())
            .filter(|value| !value.is_empty())
    };

    let mut os_release = read_first(paths, &OS_RELEASE_PATHS, &mut warnings)
        .map(|text| os_release::parse(&text))
        .unwrap_or_default();
    let mut os_field = |key: &str| os_release.remove(key).filter(|value| !value.is_empty());
    let (os_id, os_name) = (os_field("ID"), os_field("NAME"));
    let (os_version_id, os_pretty_name) = (os_field("VERSION_ID"), os_field("PRETTY_NAME"));

    let hostname = read_first(paths, &[HOSTNAME_PATH], &mut warnings)
        .and_then(|text| first_value_line(&text))
        .or_else(|| from_uname(UtsName::nodename))
        .unwrap_or_else(|| "localhost".to_owned());
    let kernel = read_first(paths, &[KERNEL_RELEASE_PATH], &mut warnings)
        .and_then(|text| first_value_line(&text))
        .or_else(|| from_uname(UtsName::release))
        .unwrap_or_default();
    let architecture =
        from_uname(UtsName::machine).unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let machine_id = read_first(paths, &MACHINE_ID_PATHS, &mut warnings)
        .and_then(|text| parse_machine_id(&text, &mut warnings));

    HostFacts {
        hostname,
        os_id: os_id.unwrap_or_else(|| "linux".to_owned()),
        os_name: os_name.unwrap_or_else(|| "Linux".to_owned()),
        os_version_id,
        os_pretty_name: os_pretty_name.unwrap_or_else(|| "Linux".to_owned()),
        kernel,
        architecture,
        machine_id,
        warnings,
    }
}

/// The text of the first of `candidates` that exists; a warning if none can be read.
fn read_first(
    paths: &HostPaths,
    candidates: &[&str],
    warnings: &mut Vec<String>,
) -> Option<String> {
    for candidate in candidates {
        let path = paths.file(candidate);
        match read_text(&path) {
            Ok(text) => return Some(text),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                warnings.push(format!("{}: {error}", path.display()));
                return None;
            }
        }
    }
    let root = paths.root.display();
    warnings.push(format!(
        "not found under {root}: {}",
        candidates.join(" or ")
    ));
    None
}

/// The first line that is neither blank nor a `#` comment, trimmed.
fn first_value_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
}

/// A machine ID file's ID, if it holds one; `uninitialized` and empty files (first boot,
/// container images) hold none.
fn parse_machine_id(text: &str, warnings: &mut Vec<String>) -> Option<String> {
    let id = text.trim();
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(id.to_ascii_lowercase());
    }
    if !id.is_empty() && id != "uninitialized" {
        warnings.push("machine ID file does not hold 32 hex digits".to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_ids() {
        let mut warnings = Vec::new();
        let id = "0123456789ABCDEF0123456789abcdef\n";
        assert_eq!(
            parse_machine_id(id, &mut warnings).as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(parse_machine_id("uninitialized\n", &mut warnings), None);
        assert_eq!(parse_machine_id("", &mut warnings), None);
        assert!(warnings.is_empty());
        assert_eq!(parse_machine_id("not-an-id", &mut warnings), None);
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn hostname_file_comments_are_skipped() {
        assert_eq!(
            first_value_line("# set by installer\n\n  web-01 \n").as_deref(),
            Some("web-01")
        );
        assert_eq!(first_value_line("# only a comment\n"), None);
    }
}

#[cfg(test)]
mod hostile_input {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn file_parsers_never_panic(text in "[\\PC\n\"'\\\\=# ]{0,512}") {
            let _ = os_release::parse(&text);
            let _ = first_value_line(&text);
            let mut warnings = Vec::new();
            if let Some(id) = parse_machine_id(&text, &mut warnings) {
                prop_assert_eq!(id.len(), 32);
            }
        }
    }
}
