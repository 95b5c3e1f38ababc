//! An organization's package versions by number: the matcher keeps each
//! matched inventory as a list of numbers (4 bytes a package), read back in
//! a few megabytes for a whole fleet when the feeds change.

use std::collections::HashMap;

use sentinel_protocol::inventory::Package;

/// An organization's package versions by number, as the store keeps them
/// (`FindingsWriter::package_versions`). Numbers given out since loading are
/// held apart until [`Numbering::take_fresh`] hands them over to be written.
#[derive(Debug, Default)]
pub struct Numbering {
    /// Indexed by number; number 0 is never given.
    versions: Vec<Option<Package>>,
    numbers: HashMap<Package, u32>,
    fresh: Vec<(u32, Package)>,
}

impl Numbering {
    /// The numbering stored as `versions`.
    pub fn new(versions: Vec<(u32, Package)>) -> Self {
        let mut numbering = Numbering::default();
        for (number, package) in versions {
            numbering.place(number, package);
        }
        numbering
    }

    fn place(&mut self, number: u32, package: Package) {
        let slot = number as usize;
        if self.versions.len() <= slot {
            self.versions.resize(slot + 1, None);
        }
        self.numbers.insert(package.clone(), number);
        self.versions[slot] = Some(package);
    }

    /// The number of `package`'s version (its architecture aside), given now
    /// if it has none.
    pub fn number(&mut self, package: &Package) -> u32 {
        if package.arch.is_none()
            && let Some(number) = self.numbers.get(package)
        {
            return *number;
        }
        let key = Package {
            arch: None,
            ..package.clone()
        };
        if let Some(number) = self.numbers.get(&key) {
            return *number;
        }
        let number = u32::try_from(self.versions.len().max(1)).unwrap_or(u32::MAX);
        self.fresh.push((number, key.clone()));
        self.place(number, key);
        number
    }

    /// The package version numbered `number`.
    pub fn get(&self, number: u32) -> Option<&Package> {
        self.versions.get(number as usize)?.as_ref()
    }

    /// Whether every one of `numbers` is known (a copy written by another
    /// server since this numbering was loaded may hold newer ones).
    pub fn knows(&self, numbers: &[u32]) -> bool {
        numbers.iter().all(|n| self.get(*n).is_some())
    }

    /// The numbers given since loading, to be written with the inventories
    /// that use them.
    pub fn take_fresh(&mut self) -> Vec<(u32, Package)> {
        std::mem::take(&mut self.fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentinel_protocol::inventory::PackageManager;

    #[test]
    fn package_versions_are_numbered_once_whatever_their_architecture() {
        let dpkg = |name: &str, version: &str, arch: &str| Package {
            manager: PackageManager::Dpkg,
            name: name.into(),
            version: version.into(),
            arch: Some(arch.into()),
            source_name: Some("util-linux".into()),
            source_version: Some("2.38.1-5".into()),
        };
        let stored = Package {
            arch: None,
            ..dpkg("bsdutils", "1:2.38.1-5+b1", "amd64")
        };
        let mut numbering = Numbering::new(vec![(7, stored.clone())]);
        assert_eq!(
            numbering.number(&dpkg("bsdutils", "1:2.38.1-5+b1", "arm64")),
            7
        );
        let fresh = numbering.number(&dpkg("bsdutils", "1:2.38.1-6", "amd64"));
        assert_eq!(fresh, 8);
        assert_eq!(numbering.number(&dpkg("bsdutils", "1:2.38.1-6", "i386")), 8);
        assert_eq!(numbering.get(7), Some(&stored));
        assert!(numbering.knows(&[7, 8]));
        assert!(!numbering.knows(&[7, 9]));
        assert!(!numbering.knows(&[0]));
        let taken = numbering.take_fresh();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].0, 8);
        assert_eq!(taken[0].1.version, "1:2.38.1-6");
        assert!(numbering.take_fresh().is_empty());
        // An empty store starts at 1.
        assert_eq!(Numbering::default().number(&stored), 1);
    }
}
