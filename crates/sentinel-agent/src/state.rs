//! The state directory: the enrollment (`state.json`), the pinned CA (`ca.pem`), the
//! replay record (`replay.json`) and the scripts being run (`scripts/`).
//!
//! The directory is `0700` and every file in it `0600`, written atomically (temporary
//! file, fsync, rename, fsync of the directory) so that a crash leaves the old version or
//! the new one, never half of either. `sentinel-agent run` refuses a directory or state
//! file that group or others can access, rather than silently tightening it: the
//! device token may already have leaked, and whoever loosened it should know.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sentinel_protocol::enroll::AgentSettings;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::secret::Secret;

/// The enrollment, in the state directory.
pub const STATE_FILE: &str = "state.json";
/// The CA certificate the server is pinned to, when enrollment was given one.
pub const CA_FILE: &str = "ca.pem";
/// The ids of the commands received, until they expire.
pub const REPLAY_FILE: &str = "replay.json";
/// Where scripts are written while they run.
pub const SCRIPTS_DIR: &str = "scripts";

/// Who this device is to its server, and how it talks to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The server's base URL, `https://host[:port]`.
    pub server_url: String,
    /// The device's id, as the server issued it.
    pub device_id: Uuid,
    /// The organization the device belongs to.
    pub org_id: Uuid,
    /// Sent as `Authorization: Bearer` on every request.
    pub device_token: Secret,
    /// The organization's command-signing public key, lowercase hex.
    pub command_key: String,
    /// Whether the server is trusted through [`CA_FILE`] only (else the public roots).
    pub ca_pinned: bool,
    /// The settings the server last gave.
    pub settings: AgentSettings,
    /// Unix seconds.
    pub enrolled_at: i64,
    /// Unix seconds: when the device token was issued (at enrollment or rotation).
    pub token_rotated_at: i64,
}

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// Group or others may access a file or the directory.
    #[error(
        "{} is accessible by group or others (mode {mode:04o}); it holds the device token: \
         make it private (chmod {wanted:o}) and consider re-enrolling",
        path.display()
    )]
    Exposed {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The mode it should have.
        wanted: u32,
    },
    /// The state file does not parse.
    #[error("{} is not a valid state file: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why it does not parse.
        source: serde_json::Error,
    },
    /// There is no state file: the device was not enrolled here.
    #[error("{} does not exist: enroll first (sentinel-agent enroll)", path.display())]
    NotEnrolled {
        /// The missing file.
        path: PathBuf,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A private state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// Creates the directory (and its parents) if need be and makes it `0700`.
    pub fn create_private(path: &Path) -> Result<Self, StateError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(io_error(path))?;
        fs::set_permissions(path, Permissions::from_mode(0o700)).map_err(io_error(path))?;
        Ok(Self {
            path: path.to_owned(),
        })
    }

    /// The existing directory at `path`, refused if group or others can access it.
    pub fn open_private(path: &Path) -> Result<Self, StateError> {
        ensure_private(path, 0o700)?;
        Ok(Self {
            path: path.to_owned(),
        })
    }

    /// The state file's path.
    pub fn state_file(&self) -> PathBuf {
        self.path.join(STATE_FILE)
    }

    /// The pinned CA's path.
    pub fn ca_file(&self) -> PathBuf {
        self.path.join(CA_FILE)
    }

    /// The replay record's path.
    pub fn replay_file(&self) -> PathBuf {
        self.path.join(REPLAY_FILE)
    }

    /// The scripts directory, created `0700` if need be.
    pub fn scripts_dir(&self) -> Result<PathBuf, StateError> {
        let dir = self.path.join(SCRIPTS_DIR);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_error(&dir))?;
        fs::set_permissions(&dir, Permissions::from_mode(0o700)).map_err(io_error(&dir))?;
        Ok(dir)
    }

    /// Whether a device was enrolled here.
    pub fn is_enrolled(&self) -> bool {
        self.state_file().exists()
    }

    /// The enrollment, refused if the file is accessible by group or others.
    pub fn load(&self) -> Result<State, StateError> {
        let path = self.state_file();
        if !path.exists() {
            return Err(StateError::NotEnrolled { path });
        }
        ensure_private(&path, 0o600)?;
        let bytes = fs::read(&path).map_err(io_error(&path))?;
        serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt { path, source })
    }

    /// Writes the enrollment durably: when this returns, the new state survives a crash.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let path = self.state_file();
        let bytes = serde_json::to_vec_pretty(state).map_err(|source| StateError::Corrupt {
            path: path.clone(),
            source,
        })?;
        write_private(&path, &bytes).map_err(io_error(&path))
    }
}

/// Refuses `path` if its mode has any bit for group or others.
fn ensure_private(path: &Path, wanted: u32) -> Result<(), StateError> {
    let mode = fs::metadata(path)
        .map_err(io_error(path))?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 != 0 {
        return Err(StateError::Exposed {
            path: path.to_owned(),
            mode,
            wanted,
        });
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically and durably, as a `0600` file: a temporary
/// file beside it is written and fsynced, renamed over it, and the directory fsynced.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let temporary = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    match fs::remove_file(&temporary) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temporary, path)?;
    File::open(dir)?.sync_all()
}
