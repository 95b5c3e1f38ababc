//! A device's software inventory and its digest.
//!
//! The agent reports the digest alone; the server asks for the full list only when the
//! digest differs from the one it holds, so unchanged lists never travel twice.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The most packages one inventory may list.
pub const MAX_PACKAGES: usize = 100_000;
/// The longest name, version, architecture or source field, in bytes.
pub const MAX_FIELD_BYTES: usize = 256;

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

    /// The manager named `name`, as [`PackageManager::as_str`] writes it.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "dpkg" => Some(Self::Dpkg),
            "rpm" => Some(Self::Rpm),
            "apk" => Some(Self::Apk),
            _ => None,
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
#[serde(deny_unknown_fields)]
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

impl Package {
    /// Why this package cannot be stored, if it cannot: an empty name or version, a
    /// field longer than [`MAX_FIELD_BYTES`], or control characters.
    pub fn problem(&self) -> Option<String> {
        if self.name.is_empty() || self.version.is_empty() {
            return Some("a package has an empty name or version".into());
        }
        let fields = [
            Some(&self.name),
            Some(&self.version),
            self.arch.as_ref(),
            self.source_name.as_ref(),
            self.source_version.as_ref(),
        ];
        for value in fields.into_iter().flatten() {
            if value.len() > MAX_FIELD_BYTES || value.chars().any(char::is_control) {
                return Some(format!(
                    "package {:?}: fields must be at most {MAX_FIELD_BYTES} bytes without control characters",
                    truncate(&self.name, 64)
                ));
            }
        }
        None
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
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

    /// Why this inventory cannot be stored, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if self.packages.len() > MAX_PACKAGES {
            return Some(format!("more than {MAX_PACKAGES} packages"));
        }
        self.packages.iter().find_map(Package::problem)
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

/// `POST /api/v1/agent/inventory`: the digest alone first; the digest and the full
/// list when the server answered [`InventoryStatus::SendFull`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryReport {
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<Vec<Package>>,
}

/// The server's answer to an [`InventoryReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InventoryStatus {
    /// The server already holds this inventory.
    Unchanged,
    /// The digest differs: send the full list.
    SendFull,
    /// The full list was stored.
    Stored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryAck {
    pub status: InventoryStatus,
}
