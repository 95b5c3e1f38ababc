//! Parsing apk's installed database (`/lib/apk/db/installed`) into the installed packages.
//!
//! The database is a sequence of blank-line separated stanzas of `X:value` lines, one
//! letter per field: `P` the name, `V` the version, `A` the architecture and `o` the
//! origin, the source package the binary was built from (at the same version).

use sentinel_protocol::inventory::{Inventory, Package, PackageManager};

use super::stanza::{Stanza, stanzas};
use super::{Collection, ParseWarning, excerpt};

/// The default location of the installed database.
pub const INSTALLED_PATH: &str = "/lib/apk/db/installed";

/// Parses the text of an apk installed database. Never fails: stanzas that cannot be used
/// are reported in the warnings.
pub fn parse_installed(text: &str) -> Collection {
    let mut packages = Vec::new();
    let mut warnings = Vec::new();
    for stanza in stanzas(text) {
        match parse_stanza(&stanza) {
            Ok(package) => packages.push(package),
            Err(reason) => warnings.push(ParseWarning {
                line: stanza.first_line,
                reason,
            }),
        }
    }
    Collection {
        inventory: Inventory::new(packages),
        warnings,
    }
}

fn parse_stanza(stanza: &Stanza<'_>) -> Result<Package, String> {
    let (mut name, mut version, mut arch, mut origin) = (None, None, None, None);
    for &(_, line) in &stanza.lines {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "P" => &mut name,
            "V" => &mut version,
            "A" => &mut arch,
            "o" => &mut origin,
            _ => continue,
        };
        let value = value.trim();
        if slot.is_none() && !value.is_empty() {
            *slot = Some(value);
        }
    }
    let Some(name) = name else {
        return Err("stanza skipped: no P (name) field".to_owned());
    };
    let Some(version) = version else {
        return Err(format!(
            "package {:?} skipped: no V (version) field",
            excerpt(name)
        ));
    };
    Ok(Package {
        manager: PackageManager::Apk,
        name: name.to_owned(),
        version: version.to_owned(),
        arch: arch.map(str::to_owned),
        source_name: origin.map(str::to_owned),
        source_version: origin.map(|_| version.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_missing_name_or_version_are_warned_about() {
        let parsed = parse_installed("V:1.0-r0\n\nP:busybox\nA:x86_64\n\nP:ok\nV:1-r0\n");
        assert_eq!(parsed.inventory.packages().len(), 1);
        let lines: Vec<_> = parsed.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, [1, 3]);
    }

    #[test]
    fn package_without_origin_has_no_source() {
        let parsed = parse_installed("P:local\nV:1-r0\n");
        let [package] = parsed.inventory.packages() else {
            panic!("one package expected")
        };
        assert_eq!(
            (
                package.source_name.as_ref(),
                package.source_version.as_ref()
            ),
            (None, None)
        );
    }
}
