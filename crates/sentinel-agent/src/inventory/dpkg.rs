//! Parsing dpkg's status database (`/var/lib/dpkg/status`) into the installed packages.
//!
//! The database is a sequence of RFC 822-style stanzas separated by blank lines; lines
//! starting with a space or tab continue the previous field. Only stanzas whose `Status`
//! ends in `installed` (`install ok installed`, `hold ok installed`) are packages on disk:
//! `config-files`, `half-installed` and the like are skipped without a warning.

use sentinel_protocol::inventory::{Inventory, Package, PackageManager};

use super::stanza::{Stanza, stanzas};
use super::{Collection, ParseWarning, excerpt};

/// The default location of the status database.
pub const STATUS_PATH: &str = "/var/lib/dpkg/status";

/// The fields of a stanza the inventory needs; the first occurrence of each wins.
#[derive(Default)]
struct Fields<'a> {
    package: Option<&'a str>,
    version: Option<&'a str>,
    architecture: Option<&'a str>,
    source: Option<&'a str>,
    status: Option<&'a str>,
}

impl<'a> Fields<'a> {
    fn slot(&mut self, name: &str) -> Option<&mut Option<&'a str>> {
        [
            ("Package", &mut self.package),
            ("Version", &mut self.version),
            ("Architecture", &mut self.architecture),
            ("Source", &mut self.source),
            ("Status", &mut self.status),
        ]
        .into_iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|(_, slot)| slot)
    }
}

/// Parses the text of a dpkg status database. Never fails: stanzas that cannot be used
/// are reported in the warnings.
pub fn parse_status(text: &str) -> Collection {
    let mut packages = Vec::new();
    let mut warnings = Vec::new();
    for stanza in stanzas(text) {
        if let Some(package) = parse_stanza(&stanza, &mut warnings) {
            packages.push(package);
        }
    }
    Collection {
        inventory: Inventory::new(packages),
        warnings,
    }
}

fn parse_stanza(stanza: &Stanza<'_>, warnings: &mut Vec<ParseWarning>) -> Option<Package> {
    let mut fields = Fields::default();
    for &(line, text) in &stanza.lines {
        if text.starts_with([' ', '\t']) {
            continue; // continuation of a multi-line field such as Description
        }
        let Some((name, value)) = text.split_once(':') else {
            warnings.push(ParseWarning {
                line,
                reason: format!("not a field, ignored: {:?}", excerpt(text)),
            });
            continue;
        };
        let value = value.trim();
        if let Some(slot) = fields.slot(name.trim())
            && slot.is_none()
            && !value.is_empty()
        {
            *slot = Some(value);
        }
    }
    let skip = |reason: String| ParseWarning {
        line: stanza.first_line,
        reason,
    };
    let described = || match fields.package {
        Some(name) => format!("package {:?}", excerpt(name)),
        None => "stanza".to_owned(),
    };
    let Some(status) = fields.status else {
        warnings.push(skip(format!("{} skipped: no Status field", described())));
        return None;
    };
    if status.split_ascii_whitespace().last() != Some("installed") {
        return None;
    }
    let (Some(name), Some(version)) = (fields.package, fields.version) else {
        let missing = if fields.package.is_none() {
            "Package"
        } else {
            "Version"
        };
        warnings.push(skip(format!("{} skipped: no {missing} field", described())));
        return None;
    };
    let (source_name, source_version) = match fields.source.map(split_source) {
        None => (name, version),
        Some(Some((source, source_version))) => (source, source_version.unwrap_or(version)),
        Some(None) => {
            warnings.push(skip(format!(
                "package {:?}: malformed Source field {:?}, using the binary package",
                excerpt(name),
                excerpt(fields.source.unwrap_or_default()),
            )));
            (name, version)
        }
    };
    Some(Package {
        manager: PackageManager::Dpkg,
        name: name.to_owned(),
        version: version.to_owned(),
        arch: fields.architecture.map(str::to_owned),
        source_name: Some(source_name.to_owned()),
        source_version: Some(source_version.to_owned()),
    })
}

/// Splits a `Source` field, `name` or `name (version)`, into its name and version.
fn split_source(field: &str) -> Option<(&str, Option<&str>)> {
    let Some((name, rest)) = field.split_once([' ', '\t']) else {
        return Some((field, None));
    };
    let version = rest.trim().strip_prefix('(')?.strip_suffix(')')?.trim();
    if version.is_empty() || version.contains([' ', '\t', '(', ')']) {
        return None;
    }
    Some((name, Some(version)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_field_forms() {
        assert_eq!(split_source("glibc"), Some(("glibc", None)));
        assert_eq!(
            split_source("glibc (2.36-9+deb12u4)"),
            Some(("glibc", Some("2.36-9+deb12u4")))
        );
        assert_eq!(
            split_source("glibc  ( 2.36-9 )"),
            Some(("glibc", Some("2.36-9")))
        );
        assert_eq!(split_source("glibc (2.36"), None);
        assert_eq!(split_source("glibc ()"), None);
        assert_eq!(split_source("glibc 2.36"), None);
        assert_eq!(split_source("glibc (a) (b)"), None);
    }

    #[test]
    fn minimal_installed_stanza() {
        let parsed = parse_status("Package: a\nStatus: install ok installed\nVersion: 1\n");
        assert!(parsed.warnings.is_empty());
        let [package] = parsed.inventory.packages() else {
            panic!("one package expected")
        };
        assert_eq!(package.arch, None);
        assert_eq!(package.source_name.as_deref(), Some("a"));
        assert_eq!(package.source_version.as_deref(), Some("1"));
    }

    #[test]
    fn field_names_are_case_insensitive_and_first_occurrence_wins() {
        let parsed = parse_status(
            "package: a\nSTATUS: hold ok installed\nversion: 1\nVersion: 2\nPackage: b\n",
        );
        let [package] = parsed.inventory.packages() else {
            panic!("one package expected")
        };
        assert_eq!(
            (package.name.as_str(), package.version.as_str()),
            ("a", "1")
        );
    }

    #[test]
    fn malformed_lines_and_sources_are_warned_about_but_the_package_is_kept() {
        let parsed = parse_status(
            "Package: a\nStatus: install ok installed\ngarbage line\nVersion: 1\nSource: b (2\n",
        );
        assert_eq!(parsed.inventory.packages().len(), 1);
        assert_eq!(
            parsed.inventory.packages()[0].source_name.as_deref(),
            Some("a")
        );
        let lines: Vec<_> = parsed.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, [3, 1]);
    }

    #[test]
    fn stanza_without_status_is_skipped_with_a_warning() {
        let parsed = parse_status("Package: a\nVersion: 1\n");
        assert!(parsed.inventory.packages().is_empty());
        assert_eq!(parsed.warnings.len(), 1);
        assert!(
            parsed.warnings[0].reason.contains("no Status"),
            "{:?}",
            parsed.warnings
        );
    }
}
