//! The software inventory: the packages dpkg, rpm or apk installed, read into the
//! protocol's [`Inventory`] (which knows its own digest).
//!
//! Each package manager has a pure parser of its database or query output ([`dpkg`],
//! [`rpm`], [`apk`]) that never fails: entries it cannot use are skipped and reported as
//! [`ParseWarning`]s. [`InventorySource`] says where to read them on a host.

pub mod apk;
pub mod dpkg;
pub mod rpm;
mod source;
mod stanza;

use std::fmt;

use sentinel_protocol::inventory::Inventory;

pub use source::{InventoryError, InventorySource};

/// An entry a parser skipped or only partly understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseWarning {
    /// The 1-based line the entry starts on.
    pub line: usize,
    /// What was wrong with it.
    pub reason: String,
}

impl fmt::Display for ParseWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// What a parser found: the inventory, and what it had to skip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collection {
    /// The installed packages.
    pub inventory: Inventory,
    /// Entries skipped or partly understood.
    pub warnings: Vec<ParseWarning>,
}

/// The longest excerpt of host data quoted in a warning.
const EXCERPT_CHARS: usize = 64;

/// `text` cut to [`EXCERPT_CHARS`] characters, for quoting untrusted data in a warning.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Splits `text` into lines numbered from 1, without their `\n` or `\r\n` ending.
fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .enumerate()
        .map(|(index, line)| (index + 1, line))
}

#[cfg(test)]
mod tests {
    use sentinel_protocol::inventory::{Package, PackageManager};

    use super::*;

    fn package(name: &str, version: &str) -> Package {
        Package {
            manager: PackageManager::Dpkg,
            name: name.to_owned(),
            version: version.to_owned(),
            arch: Some("amd64".to_owned()),
            source_name: Some(name.to_owned()),
            source_version: Some(version.to_owned()),
        }
    }

    #[test]
    fn digest_ignores_input_order_and_duplicates() {
        let a = Inventory::new(vec![package("bash", "5.2-1"), package("zlib1g", "1:1.3")]);
        let b = Inventory::new(vec![
            package("zlib1g", "1:1.3"),
            package("bash", "5.2-1"),
            package("bash", "5.2-1"),
        ]);
        assert_eq!(a, b);
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.digest().len(), 64);
        assert!(
            a.digest()
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn digest_changes_with_every_field() {
        let base = package("openssl", "3.0.11-1");
        let digest = |package: &Package| Inventory::new(vec![package.clone()]).digest();
        let variants = [
            Package {
                manager: PackageManager::Rpm,
                ..base.clone()
            },
            Package {
                name: "openssl1".to_owned(),
                ..base.clone()
            },
            Package {
                version: "3.0.11-2".to_owned(),
                ..base.clone()
            },
            Package {
                arch: None,
                ..base.clone()
            },
            Package {
                arch: Some("arm64".to_owned()),
                ..base.clone()
            },
            Package {
                source_name: None,
                ..base.clone()
            },
            Package {
                source_name: Some("openssl3".to_owned()),
                ..base.clone()
            },
            Package {
                source_version: None,
                ..base.clone()
            },
            Package {
                source_version: Some("3.0.11-1+b1".to_owned()),
                ..base.clone()
            },
        ];
        for variant in &variants {
            assert_ne!(digest(variant), digest(&base), "{variant:?}");
        }
        assert_ne!(Inventory::new(vec![]).digest(), digest(&base));
    }

    #[test]
    fn digest_encoding_is_unambiguous() {
        // Moving a character across a field boundary must change the digest.
        let a = Package {
            name: "ab".to_owned(),
            version: "c".to_owned(),
            ..package("", "")
        };
        let b = Package {
            name: "a".to_owned(),
            version: "bc".to_owned(),
            ..package("", "")
        };
        assert_ne!(
            Inventory::new(vec![a]).digest(),
            Inventory::new(vec![b]).digest()
        );
        // An empty optional field differs from an absent one.
        let empty = Package {
            arch: Some(String::new()),
            ..package("x", "1")
        };
        let absent = Package {
            arch: None,
            ..package("x", "1")
        };
        assert_ne!(
            Inventory::new(vec![empty]).digest(),
            Inventory::new(vec![absent]).digest()
        );
    }

    #[test]
    fn serde_uses_lowercase_managers_and_sorts_on_the_way_in() {
        let json = r#"{"packages":[
            {"manager":"rpm","name":"zsh","version":"5.9-1","arch":"x86_64",
             "source_name":null,"source_version":null},
            {"manager":"apk","name":"musl","version":"1.2.4-r2","arch":null,
             "source_name":"musl","source_version":"1.2.4-r2"}]}"#;
        let inventory: Inventory = serde_json::from_str(json).unwrap();
        let names: Vec<_> = inventory
            .packages()
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, ["zsh", "musl"]); // rpm sorts before apk, as declared
        let back = serde_json::to_value(&inventory).unwrap();
        assert_eq!(back["packages"][1]["manager"], "apk");
    }

    #[test]
    fn excerpts_cut_long_untrusted_text_on_a_character_boundary() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(100);
        assert_eq!(excerpt(&long).chars().count(), EXCERPT_CHARS + 1);
    }
}
