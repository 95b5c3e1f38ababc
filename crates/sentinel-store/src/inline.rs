//! Point reads on SQLite that run on the calling thread, without sqlx's hand-offs.
//!
//! sqlx runs every SQLite connection on a thread of its own: each statement,
//! and the ping with which a pooled connection goes back to its pool, is a
//! message to that thread and a wake-up back. An agent request's two reads
//! (its token's credential, its device's row) made four such hand-offs, ~40 %
//! of the server's CPU for a telemetry report (docs/benchmarks.md, the ingest
//! burst).
//! Those reads run here instead, on the async worker that needs them: an
//! indexed lookup in a WAL database whose pages are cached takes microseconds.
//!
//! The connections never write (`query_only`) and never wait for a lock
//! (busy timeout 0). Any failure — SQLite busy, an I/O error — makes a read
//! return `None`, and the caller reads through sqlx instead, which reports
//! errors as every other read does. Writes never run here: they take the
//! database's writer (`sqlite_writer`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::Connection;

use crate::backend::{SQLITE_READER_CACHE_KIB, open_existing};

/// Idle connections kept per database: more than the async workers that can
/// read at once on a small server; a connection past them is closed.
const IDLE_CONNECTIONS: usize = 4;

/// Connections that read one SQLite database on the calling thread.
#[derive(Debug)]
pub(crate) struct InlineReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl InlineReads {
    /// Reads `path`, which sqlx has opened (and so created and migrated).
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` on an idle connection, or a new one; `None` if it failed.
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Option<T> {
        let idle = self.idle.lock().ok()?.pop();
        let connection = match idle {
            Some(connection) => connection,
            None => match self.open() {
                Ok(connection) => connection,
                Err(error) => {
                    tracing::warn!(%error, path = %self.path.display(), "cannot open an inline SQLite reader");
                    return None;
                }
            },
        };
        match read(&connection) {
            Ok(value) => {
                if let Ok(mut idle) = self.idle.lock()
                    && idle.len() < IDLE_CONNECTIONS
                {
                    idle.push(connection);
                }
                Some(value)
            }
            // The connection is dropped: a busy database is the expected case,
            // and a new connection is cheap next to an error's cause.
            Err(error) => {
                tracing::debug!(%error, "inline SQLite read failed; reading through the pool");
                None
            }
        }
    }

    /// Closes the idle connections (the database is closing).
    pub(crate) fn close(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let connection = open_existing(&self.path)?;
        connection.busy_timeout(Duration::ZERO)?;
        connection.pragma_update(None, "query_only", true)?;
        connection.pragma_update(None, "cache_size", SQLITE_READER_CACHE_KIB)?;
        Ok(connection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let setup = Connection::open(&path).unwrap();
        setup
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT);
                 INSERT INTO t VALUES (1, 'one');",
            )
            .unwrap();
        (dir, path)
    }

    fn value(c: &Connection, k: i64) -> rusqlite::Result<String> {
        c.query_row("SELECT v FROM t WHERE k = ?1", [k], |row| row.get(0))
    }

    #[test]
    fn a_read_reuses_its_connection_and_sees_committed_writes() {
        let (_dir, path) = database();
        let reads = InlineReads::new(&path);
        assert_eq!(reads.read(|c| value(c, 1)).as_deref(), Some("one"));
        let writer = Connection::open(&path).unwrap();
        writer
            .execute("UPDATE t SET v = 'uno' WHERE k = 1", [])
            .unwrap();
        assert_eq!(reads.read(|c| value(c, 1)).as_deref(), Some("uno"));
        assert_eq!(reads.idle.lock().map(|i| i.len()).ok(), Some(1));
    }

    #[test]
    fn a_failed_read_is_none_and_its_connection_is_dropped() {
        let (_dir, path) = database();
        let reads = InlineReads::new(&path);
        assert_eq!(reads.read(|c| value(c, 2)), None);
        assert_eq!(reads.idle.lock().map(|i| i.len()).ok(), Some(0));
    }

    #[test]
    fn the_connections_cannot_write() {
        let (_dir, path) = database();
        let reads = InlineReads::new(&path);
        let wrote = reads.read(|c| c.execute("DELETE FROM t", []));
        assert_eq!(wrote, None);
        assert_eq!(reads.read(|c| value(c, 1)).as_deref(), Some("one"));
    }

    #[test]
    fn a_missing_file_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.sqlite");
        let reads = InlineReads::new(&path);
        assert_eq!(reads.read(|c| value(c, 1)), None);
        assert!(!path.exists());
    }

    #[test]
    fn a_locked_database_makes_the_read_give_way_at_once() {
        let (_dir, path) = database();
        let reads = InlineReads::new(&path);
        // An exclusive lock in WAL mode still lets readers in; only a rollback
        // journal's EXCLUSIVE keeps them out, so switch this database to one.
        let locker = Connection::open(&path).unwrap();
        locker
            .execute_batch("PRAGMA journal_mode = DELETE; BEGIN EXCLUSIVE;")
            .unwrap();
        let started = std::time::Instant::now();
        assert_eq!(reads.read(|c| value(c, 1)), None);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
