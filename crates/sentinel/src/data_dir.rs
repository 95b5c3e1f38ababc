//! The data directory: databases (with SQLite), the master key, the TLS material
//! and the pending setup link. It is private to the server's user (0700) and the
//! server refuses one that is not.

use sentinel_core::sealing::SealingKey;
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sentinel_core::secret::random_bytes;
use sha2::{Digest, Sha256};

use crate::StartError;

#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Opens the directory, creating it (0700) if it does not exist. An existing
    /// directory that others can read or enter is refused.
    pub fn open(root: &Path) -> Result<DataDir, StartError> {
        if !root.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)
                .map_err(|e| {
                    StartError::io(format!("creating data directory {}", root.display()), e)
                })?;
        }
        let meta = std::fs::metadata(root)
            .map_err(|e| StartError::io(format!("reading data directory {}", root.display()), e))?;
        if !meta.is_dir() {
            return Err(StartError::Refused(format!(
                "data directory {} is not a directory",
                root.display()
            )));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(StartError::Refused(format!(
                "data directory {} is accessible by group or others (mode {mode:o}); run: chmod 700 {}",
                root.display(),
                root.display()
            )));
        }
        Ok(DataDir {
            root: root.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn master_key_file(&self) -> PathBuf {
        self.root.join("master.key")
    }

    /// The seed of the Ed25519 key that signs audit checkpoints.
    /// Claims the data directory for this process alone: a running server holds
    /// the claim, and so does a master-key rotation, so the two never run
    /// together. `doing` names what this process is about to do, for the error.
    pub fn lock(&self, doing: &str) -> Result<DataDirLock, StartError> {
        let path = self.root.join("sentinel.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StartError::io(format!("opening {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StartError::Refused(format!(
                "{} is in use by another Sentinel process (a running server?): stop it before {doing}",
                self.root.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(StartError::io(format!("locking {}", path.display()), e))
            }
        }
    }

    /// The new master key while a rotation is under way.
    pub fn next_master_key_file(&self) -> PathBuf {
        self.root.join("master.key.next")
    }

    /// The old master key, kept while a rotation switches keys.
    pub fn previous_master_key_file(&self) -> PathBuf {
        self.root.join("master.key.previous")
    }

    /// The key that seals secrets at rest: `master`, also opening values sealed
    /// under the other key of a rotation that is under way or was interrupted.
    pub fn sealing_key(&self, master: &MasterKey) -> Result<SealingKey, StartError> {
        let mut key = master.sealing_key()?;
        for path in [self.next_master_key_file(), self.previous_master_key_file()] {
            if let Some(other) = MasterKey::load_existing(&path)? {
                key = other.opened_too_by(key)?;
            }
        }
        Ok(key)
    }

    pub fn audit_key_file(&self) -> PathBuf {
        self.root.join("audit.key")
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }

    /// Where the first-start setup link is written (0600) while setup is pending.
    pub fn setup_url_file(&self) -> PathBuf {
        self.root.join("setup-url.txt")
    }
}

/// Writes `contents` to `path`, readable by the owner only, replacing any file there.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), StartError> {
    let context = || format!("writing {}", path.display());
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| StartError::io(context(), e))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| StartError::io(context(), e))?;
    file.write_all(contents)
        .map_err(|e| StartError::io(context(), e))?;
    file.sync_all().map_err(|e| StartError::io(context(), e))
}

/// A claim on a data directory (see [`DataDir::lock`]), released when dropped
/// or when the process ends.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

/// The 256-bit key that will encrypt recoverable secrets at rest. It lives in its
/// own file, outside every database, readable by the server's user only.
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// A short public fingerprint of the key (not the key), to tell keys apart in
    /// logs and, later, in the key ids of encrypted values.
    pub fn id(&self) -> String {
        let digest = Sha256::digest(self.0);
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }

    /// The key that seals secrets at rest (AES-256-GCM under this key).
    pub fn sealing_key(&self) -> Result<sentinel_core::sealing::SealingKey, StartError> {
        sentinel_core::sealing::SealingKey::new(&self.0)
            .map_err(|e| StartError::Refused(format!("master key: {e}")))
    }

    /// Loads the key, creating it on first start. A key file that group or others
    /// can read is refused: the key would no longer be a secret.
    pub fn load_or_create(path: &Path) -> Result<MasterKey, StartError> {
        load_or_create_key(path, "master key").map(MasterKey)
    }

    /// Loads the key if its file exists (same checks).
    pub fn load_existing(path: &Path) -> Result<Option<MasterKey>, StartError> {
        if !path.exists() {
            return Ok(None);
        }
        Self::load_or_create(path).map(Some)
    }

    /// `key`, also opening values sealed under this master key.
    pub fn opened_too_by(&self, key: SealingKey) -> Result<SealingKey, StartError> {
        key.also_opening(&self.0)
            .map_err(|e| StartError::Refused(format!("master key: {e}")))
    }

    /// The file text of this key (base64 and a newline).
    pub fn file_text(&self) -> String {
        let mut text = STANDARD.encode(self.0);
        text.push('\n');
        text
    }
}

/// Loads a 256-bit secret kept in its own base64 file, creating it (0600) if
/// missing. A file that group or others can read is refused.
pub fn load_or_create_key(path: &Path, what: &str) -> Result<[u8; 32], StartError> {
    if !path.exists() {
        let key = random_bytes::<32>().map_err(|e| StartError::Refused(e.to_string()))?;
        let mut text = STANDARD.encode(key);
        text.push('\n');
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StartError::io(format!("creating {what} {}", path.display()), e))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| StartError::io(format!("writing {what} {}", path.display()), e))?;
        tracing::info!(path = %path.display(), "created a new {what}");
        return Ok(key);
    }
    let mode = std::fs::metadata(path)
        .map_err(|e| StartError::io(format!("reading {what} {}", path.display()), e))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(StartError::Refused(format!(
            "{what} {} is readable by group or others (mode {mode:o}); run: chmod 600 {}",
            path.display(),
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| StartError::io(format!("reading {what} {}", path.display()), e))?;
    let bytes = STANDARD.decode(text.trim()).map_err(|_| {
        StartError::Refused(format!("{what} {} is not valid base64", path.display()))
    })?;
    bytes
        .try_into()
        .map_err(|_| StartError::Refused(format!("{what} {} is not 256 bits", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let created = MasterKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(created.0, loaded.0);
        assert_eq!(created.id(), loaded.id());
        assert_eq!(created.id().len(), 12);
        assert!(!format!("{loaded:?}").contains(&STANDARD.encode(loaded.0)));
    }

    #[test]
    fn a_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        MasterKey::load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = MasterKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("readable by group or others"), "{err}");
    }

    #[test]
    fn a_damaged_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        write_private(&path, b"c2hvcnQ=\n").unwrap();
        assert!(
            MasterKey::load_or_create(&path)
                .unwrap_err()
                .to_string()
                .contains("256 bits")
        );
    }

    #[test]
    fn an_open_data_directory_is_refused() {
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("data");
        let dir = DataDir::open(&root).unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            DataDir::open(&root)
                .unwrap_err()
                .to_string()
                .contains("chmod 700")
        );
    }
}
