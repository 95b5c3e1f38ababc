//! What identifies a host and its operating system.

use serde::{Deserialize, Serialize};

/// Each field's longest accepted form, in bytes; longer reports are refused.
pub const MAX_FACT_BYTES: usize = 256;

/// What identifies a host and its operating system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFacts {
    /// The static hostname, else the kernel's.
    pub hostname: String,
    /// os-release `ID`, `linux` when unset.
    pub os_id: String,
    /// os-release `NAME`, `Linux` when unset.
    pub os_name: String,
    /// os-release `VERSION_ID`, absent on rolling releases.
    pub os_version_id: Option<String>,
    /// os-release `PRETTY_NAME`, `Linux` when unset.
    pub os_pretty_name: String,
    /// The kernel release, as `uname -r` prints it.
    pub kernel: String,
    /// The machine hardware name, as `uname -m` prints it.
    pub architecture: String,
    /// The systemd/D-Bus machine ID: 32 lowercase hex digits. Informative only: a
    /// device is identified by the id and token the server issued, never by this.
    pub machine_id: Option<String>,
    /// What could not be read, and what was used instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl HostFacts {
    /// Why these facts cannot be stored, if they cannot: an empty hostname, a field
    /// longer than [`MAX_FACT_BYTES`], control characters, or more than 32 warnings.
    pub fn problem(&self) -> Option<String> {
        if self.hostname.trim().is_empty() {
            return Some("hostname is empty".into());
        }
        let fields = [
            ("hostname", Some(&self.hostname)),
            ("os_id", Some(&self.os_id)),
            ("os_name", Some(&self.os_name)),
            ("os_version_id", self.os_version_id.as_ref()),
            ("os_pretty_name", Some(&self.os_pretty_name)),
            ("kernel", Some(&self.kernel)),
            ("architecture", Some(&self.architecture)),
            ("machine_id", self.machine_id.as_ref()),
        ];
        for (name, value) in fields {
            let Some(value) = value else { continue };
            if value.len() > MAX_FACT_BYTES {
                return Some(format!("{name} is longer than {MAX_FACT_BYTES} bytes"));
            }
            if value.chars().any(char::is_control) {
                return Some(format!("{name} contains control characters"));
            }
        }
        if self.warnings.len() > 32 || self.warnings.iter().any(|w| w.len() > 1024) {
            return Some("too many or too long warnings".into());
        }
        None
    }
}
