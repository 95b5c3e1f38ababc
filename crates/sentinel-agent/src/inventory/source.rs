//! Where a host's inventory is read from, detecting the package manager it uses.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use sentinel_protocol::inventory::PackageManager;

use super::{Collection, apk, dpkg, rpm};
use crate::files::read_text;

/// Where rpm keeps its database, newest layout first; either marks an rpm-based system.
const RPM_DATABASE_DIRS: [&str; 2] = ["/usr/lib/sysimage/rpm", "/var/lib/rpm"];

/// Where to read the installed packages from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventorySource {
    /// dpkg's status database, by default [`dpkg::STATUS_PATH`].
    Dpkg {
        /// The status file.
        status: PathBuf,
    },
    /// apk's installed database, by default [`apk::INSTALLED_PATH`].
    Apk {
        /// The installed database file.
        installed: PathBuf,
    },
    /// `rpm -qa` run against the database of the system installed under `root`.
    RpmQuery {
        /// The system's root directory: `/` for this host, else passed as `rpm --root`.
        root: PathBuf,
    },
    /// Output of `rpm -qa --queryformat` [`rpm::QUERY_FORMAT`] saved in a file.
    RpmQueryOutput {
        /// The file holding the output.
        path: PathBuf,
    },
}

/// Why an inventory could not be collected at all.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The database or query output file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The `rpm` program could not be started.
    #[error("cannot run {}: {source}", rpm::PROGRAM)]
    RpmSpawn {
        /// The underlying error.
        source: io::Error,
    },
    /// `rpm -qa` ran but failed.
    #[error("{} -qa failed ({status}): {stderr}", rpm::PROGRAM)]
    RpmFailed {
        /// How it exited.
        status: ExitStatus,
        /// The start of what it printed on standard error.
        stderr: String,
    },
}

impl InventorySource {
    /// The default source for `manager` on the system installed under `root`.
    pub fn for_manager(manager: PackageManager, root: &Path) -> Self {
        match manager {
            PackageManager::Dpkg => Self::Dpkg {
                status: under(root, dpkg::STATUS_PATH),
            },
            PackageManager::Apk => Self::Apk {
                installed: under(root, apk::INSTALLED_PATH),
            },
            PackageManager::Rpm => Self::RpmQuery {
                root: root.to_owned(),
            },
        }
    }

    /// The package manager of the system installed under `root` (`/` for this host): dpkg if
    /// its status file exists, else apk if its installed database exists, else rpm if its
    /// database directory exists.
    pub fn detect(root: &Path) -> Option<Self> {
        if under(root, dpkg::STATUS_PATH).is_file() {
            Some(Self::for_manager(PackageManager::Dpkg, root))
        } else if under(root, apk::INSTALLED_PATH).is_file() {
            Some(Self::for_manager(PackageManager::Apk, root))
        } else if RPM_DATABASE_DIRS
            .iter()
            .any(|dir| under(root, dir).is_dir())
        {
            Some(Self::for_manager(PackageManager::Rpm, root))
        } else {
            None
        }
    }

    /// The package manager this source lists the packages of.
    pub fn manager(&self) -> PackageManager {
        match self {
            Self::Dpkg { .. } => PackageManager::Dpkg,
            Self::Apk { .. } => PackageManager::Apk,
            Self::RpmQuery { .. } | Self::RpmQueryOutput { .. } => PackageManager::Rpm,
        }
    }

    /// Reads and parses the installed packages.
    pub fn collect(&self) -> Result<Collection, InventoryError> {
        let read = |path: &Path| {
            read_text(path).map_err(|source| InventoryError::Read {
                path: path.to_owned(),
                source,
            })
        };
        Ok(match self {
            Self::Dpkg { status } => dpkg::parse_status(&read(status)?),
            Self::Apk { installed } => apk::parse_installed(&read(installed)?),
            Self::RpmQuery { root } => rpm::parse_query_output(&rpm::query(root)?),
            Self::RpmQueryOutput { path } => rpm::parse_query_output(&read(path)?),
        })
    }
}

/// The absolute `path` of a system, found under that system's `root`.
fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_for_this_host() {
        let root = Path::new("/");
        assert_eq!(
            InventorySource::for_manager(PackageManager::Dpkg, root),
            InventorySource::Dpkg {
                status: PathBuf::from("/var/lib/dpkg/status")
            }
        );
        assert_eq!(
            InventorySource::for_manager(PackageManager::Apk, root),
            InventorySource::Apk {
                installed: PathBuf::from("/lib/apk/db/installed")
            }
        );
        assert_eq!(
            InventorySource::for_manager(PackageManager::Rpm, root),
            InventorySource::RpmQuery {
                root: PathBuf::from("/")
            }
        );
    }
}
