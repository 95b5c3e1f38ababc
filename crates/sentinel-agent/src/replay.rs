//! The replay record: the ids of the commands this device accepted, each kept until the
//! command expires, so that no command runs twice, even across restarts.
//!
//! An expired command is refused whatever its id, so an id can be forgotten once its
//! command has expired: the record holds at most the commands of the last
//! [`MAX_EXPIRY_SECONDS`](sentinel_protocol::command::MAX_EXPIRY_SECONDS).

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::state::write_private;

/// The commands accepted and not yet expired.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRecord {
    /// Each command's id and its expiry, Unix seconds.
    accepted: BTreeMap<Uuid, i64>,
}

impl ReplayRecord {
    /// The record saved at `path`, empty if there is none yet. A file that cannot be
    /// read or parsed is an error, not an empty record: that would let replays through.
    pub fn load(path: &Path) -> io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// Saves the record at `path`, atomically and durably.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(io::Error::other)?;
        write_private(path, &bytes)
    }

    /// Whether the command `id` was accepted before.
    pub fn contains(&self, id: Uuid) -> bool {
        self.accepted.contains_key(&id)
    }

    /// Records the command `id`, which expires at `expires_at`, and forgets the commands
    /// expired at `now`.
    pub fn insert(&mut self, id: Uuid, expires_at: i64, now: i64) {
        self.accepted.retain(|_, expiry| *expiry > now);
        self.accepted.insert(id, expires_at);
    }

    /// How many ids the record holds.
    pub fn len(&self) -> usize {
        self.accepted.len()
    }

    /// Whether the record holds no id.
    pub fn is_empty(&self) -> bool {
        self.accepted.is_empty()
    }
}
