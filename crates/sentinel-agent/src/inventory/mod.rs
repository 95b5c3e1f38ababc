//! The software inventory: packages installed by dpkg, rpm or apk, and a digest of them.
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

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use source::{InventoryError, InventorySource};

/// The package manager that installed a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageManager {
    /// Debian, Ubuntu and derivatives.
    Dpkg,
    /// Red Hat, Fedora, SUSE and derivatives.
    Rpm,
    /// Alpine.
    Apk,
}

impl PackageManager {
    /// The manager's name as serialized: `dpkg`, `rpm` or `apk`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dpkg => "dpkg",
            Self::Rpm => "rpm",
            Self::Apk => "apk",
        }
    }
}

impl fmt::Display for PackageManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One installed binary package, with the source package it was built from when known.
///
/// Versions are kept as the package manager writes them, epoch included (`1:2.3-4`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Package {
    /// The package manager that installed it.
    pub manager: PackageManager,
    /// The binary package name.
    pub name: String,
    /// The installed version.
    pub version: String,
    /// The architecture it was built for (`amd64`, `x86_64`, `noarch`, …).
    pub arch: Option<String>,
    /// The source package it was built from.
    pub source_name: Option<String>,
    /// The source package's version.
    pub source_version: Option<String>,
}

/// The packages installed on a host, sorted and without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "UnsortedInventory")]
pub struct Inventory {
    packages: Vec<Package>,
}

/// An inventory as received, before it is put in canonical order.
#[derive(Deserialize)]
struct UnsortedInventory {
    packages: Vec<Package>,
}

impl From<UnsortedInventory> for Inventory {
    fn from(unsorted: UnsortedInventory) -> Self {
        Self::new(unsorted.packages)
    }
}

/// Tags the digest's encoding so that a future change of encoding cannot collide with it.
const DIGEST_DOMAIN: &[u8] = b"sentinel-inventory-v1";

impl Inventory {
    /// Puts `packages` in canonical order and drops exact duplicates.
    pub fn new(mut packages: Vec<Package>) -> Self {
        packages.sort_unstable();
        packages.dedup();
        Self { packages }
    }

    /// The packages, in canonical order.
    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    /// Lowercase hex SHA-256 of the canonical encoding of the packages.
    ///
    /// Equal inventories have equal digests whatever order their packages were found in,
    /// so the agent can send the digest and the full list only when the digest changed.
    /// The encoding length-prefixes every string and marks absent fields, so no two
    /// different inventories share an encoding.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        put_bytes(&mut hasher, DIGEST_DOMAIN);
        hasher.update((self.packages.len() as u64).to_be_bytes());
        for package in &self.packages {
            put_bytes(&mut hasher, package.manager.as_str().as_bytes());
            put_bytes(&mut hasher, package.name.as_bytes());
            put_bytes(&mut hasher, package.version.as_bytes());
            put_optional(&mut hasher, package.arch.as_deref());
            put_optional(&mut hasher, package.source_name.as_deref());
            put_optional(&mut hasher, package.source_version.as_deref());
        }
        hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

fn put_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

fn put_optional(hasher: &mut Sha256, value: Option<&str>) {
    match value {
        None => hasher.update([0]),
        Some(value) => {
            hasher.update([1]);
            put_bytes(hasher, value.as_bytes());
        }
    }
}

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
