//! Realistic software inventories: a real Debian 12 desktop's package list
//! (`debian12-desktop.tsv`, 1,861 packages) as the template, and per device a
//! random ~85 % of it — about 1,580 packages — with one package in twenty at
//! another version (a host that missed or ran ahead of an update).

use std::sync::Arc;

use sentinel_protocol::inventory::{Inventory, Package, PackageManager};

use crate::rng::Rng;

const TEMPLATE: &str = include_str!("debian12-desktop.tsv");

/// The template's packages, parsed once and shared by every device.
#[derive(Clone)]
pub struct Template {
    packages: Arc<Vec<Package>>,
}

impl Template {
    pub fn debian12_desktop() -> Self {
        let packages = TEMPLATE
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(|line| {
                let mut f = line.split('\t');
                let (name, version, arch) = (f.next()?, f.next()?, f.next()?);
                let (source, source_version) = (f.next()?, f.next()?);
                Some(Package {
                    manager: PackageManager::Dpkg,
                    name: name.to_owned(),
                    version: version.to_owned(),
                    arch: Some(arch.to_owned()),
                    source_name: Some(source.to_owned()),
                    source_version: Some(source_version.to_owned()),
                })
            })
            .collect();
        Self {
            packages: Arc::new(packages),
        }
    }

    pub fn len(&self) -> usize {
        self.packages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// Device `seed`'s inventory: the same seed always gives the same list.
    pub fn for_device(&self, seed: u64) -> Inventory {
        let mut rng = Rng::new(seed ^ 0x1a7e_57a7_e000_0001);
        let mut packages = Vec::with_capacity(self.packages.len());
        for package in self.packages.iter() {
            if rng.below(100) >= 85 {
                continue;
            }
            let mut package = package.clone();
            match rng.below(40) {
                0 => package.version.push_str("~bpo12+1"),
                1 => package.version = format!("{}+local{}", package.version, rng.below(9) + 1),
                _ => {}
            }
            packages.push(package);
        }
        Inventory::new(packages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_get_realistic_varied_inventories() {
        let template = Template::debian12_desktop();
        assert!(template.len() > 1_800, "{}", template.len());
        let a = template.for_device(1);
        let b = template.for_device(2);
        for inventory in [&a, &b] {
            let n = inventory.packages().len();
            assert!((1_450..=1_700).contains(&n), "{n} packages");
            assert_eq!(inventory.problem(), None);
        }
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest(), template.for_device(1).digest());
    }
}
