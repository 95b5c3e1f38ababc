//! The two database engines behind one portable SQL dialect.
//!
//! [`Db`] is an enum of native sqlx pools rather than a generic `DB: Database`
//! parameter or sqlx's `Any` driver: native pools keep native types (UUID,
//! TIMESTAMPTZ, BOOLEAN, BYTEA) on PostgreSQL, and the [`with_db!`] / [`with_tx!`]
//! macros compile one query text once per engine, so SQL that both dialects accept
//! is written once. Code branches on the engine only where the dialects really
//! differ (schemas, locks, DDL on PostgreSQL; files and pragmas on SQLite).

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor, PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use crate::StoreError;
use crate::inline::InlineReads;
use crate::sqlite_writer::{SqliteWriter, WriteTx};

/// The pools of one database on one of the two engines.
#[derive(Clone, Debug)]
pub(crate) enum Db {
    Sqlite(SqlitePools),
    Postgres(PgPool),
}

/// A SQLite database's connections: readers, and the one connection that
/// writes. SQLite lets one writer in at a time; with a single writing
/// connection, writers of this process queue for it in the order they asked
/// ([`SqliteWriter`]) instead of racing with `BEGIN IMMEDIATE` and sleeping in
/// SQLite's busy handler while the lock sits free, and a writer never waits
/// behind readers for a connection while holding the lock. Other processes
/// (the CLI) still meet the busy timeout.
#[derive(Clone, Debug)]
pub(crate) struct SqlitePools {
    reads: SqlitePool,
    writer: Arc<SqliteWriter>,
    inline: Arc<InlineReads>,
}

/// An open transaction on one of the two engines.
pub(crate) enum Tx {
    Sqlite(SqliteTx),
    Postgres(Transaction<'static, Postgres>),
}

/// A SQLite transaction: a snapshot on a reading connection, or a write on
/// the writing one. Either dereferences to its connection.
pub(crate) enum SqliteTx {
    Read(Transaction<'static, Sqlite>),
    Write(WriteTx),
}

/// Runs `$body` with `$p` bound to the native pool, whichever engine it is:
/// for a statement that reads, or with `write`, for one that writes (on
/// SQLite, the writing connection, held for `$body`, which yields a
/// `Result<_, sqlx::Error>`).
macro_rules! with_db {
    (write $db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::backend::Db::Sqlite(pools) => match pools.writer().hold().await {
                Ok(mut held) => {
                    let $p = &mut *held;
                    $body
                }
                Err(e) => Err(e),
            },
            $crate::backend::Db::Postgres($p) => $body,
        }
    };
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::backend::Db::Sqlite(pools) => {
                let $p = pools.reads();
                $body
            }
            $crate::backend::Db::Postgres($p) => $body,
        }
    };
}

/// Runs `$body` with `$c` bound to the transaction's native connection
/// (`&mut SqliteConnection` or `&mut PgConnection`).
macro_rules! with_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::backend::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::backend::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

pub(crate) use {with_db, with_tx};

/// How long a SQLite writer waits for another writer before giving up.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows a connection's thread may read ahead of the task consuming them.
const SQLITE_ROW_BUFFER: usize = 4096;
/// Page cache of a database's writing connection (negative: KiB rather than
/// pages): the index pages every append touches stay in memory.
pub(crate) const SQLITE_WRITER_CACHE_KIB: &str = "-16384";
/// Page cache of each reading connection: SQLite's default. Every reader keeps
/// its own copy of the pages it read, so a large cache per reader grew the
/// server by the size of the data touched times the readers (docs/benchmarks.md,
/// the MQTT gateway's idle connections); the kernel's page cache holds the file
/// for all of them. The inline readers (`inline`) use the same.
pub(crate) const SQLITE_READER_CACHE_KIB: i64 = -2048;
/// WAL pages after which a commit copies the WAL back into the database.
pub(crate) const SQLITE_WAL_CHECKPOINT_PAGES: &str = "4000";

impl Db {
    /// Opens (creating if needed) a SQLite database file with the settings every
    /// Sentinel database uses: WAL, a busy timeout, foreign keys enforced, and
    /// `synchronous = FULL` so that a committed write survives a power cut.
    /// With `create` false, a missing file is an error instead of a new database.
    pub(crate) async fn open_sqlite(
        path: &Path,
        max_connections: u32,
        create: bool,
    ) -> Result<Db, StoreError> {
        if create {
            create_private_file(path)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true)
            // Copy the WAL back into the database every 16 MB instead of 4 MB:
            // index pages that every commit touches are written back once per
            // checkpoint, so fewer checkpoints write less.
            .pragma("wal_autocheckpoint", SQLITE_WAL_CHECKPOINT_PAGES)
            // Rows the connection's thread may run ahead of the reader: large
            // reads (verifying a log) otherwise hand over every few rows.
            .row_buffer_size(SQLITE_ROW_BUFFER);
        let pool = |connections: u32| {
            SqlitePoolOptions::new()
                .max_connections(connections)
                .min_connections(0)
                .idle_timeout(Duration::from_secs(300))
                .acquire_timeout(Duration::from_secs(30))
                // A file connection does not go stale as a network one does, and
                // the test is a round trip to the connection's thread on every
                // acquire.
                .test_before_acquire(false)
        };
        // The caches grow only as pages are used.
        let writer = SqliteWriter::new(
            path.to_owned(),
            options
                .clone()
                .pragma("cache_size", SQLITE_WRITER_CACHE_KIB),
        );
        let reads = pool(max_connections)
            .connect_with(options.pragma("cache_size", SQLITE_READER_CACHE_KIB.to_string()))
            .await?;
        restrict_to_owner(path)?;
        Ok(Db::Sqlite(SqlitePools {
            reads,
            writer: Arc::new(writer),
            inline: Arc::new(InlineReads::new(path)),
        }))
    }

    /// Connects to PostgreSQL. Every connection starts with the control schema as
    /// its search path; tenant work switches it per transaction (see
    /// [`Tx::use_schema`]).
    pub(crate) async fn connect_postgres(
        url: &str,
        max_connections: u32,
    ) -> Result<Db, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("database URL: {e}")))?
            .application_name("sentinel");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("SET search_path TO sentinel_control").await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Db::Postgres(pool))
    }

    /// Begins a transaction that will write. On SQLite it runs on the writing
    /// connection and takes the database's write lock at once (`BEGIN
    /// IMMEDIATE`), so that a reader upgrading to a writer never deadlocks into
    /// `SQLITE_BUSY`.
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Db::Sqlite(pools) => Tx::Sqlite(SqliteTx::Write(pools.writer.begin().await?)),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Opens a read-only transaction: one consistent snapshot, no write lock
    /// (SQLite `BEGIN DEFERRED` that never writes; PostgreSQL `READ ONLY`).
    pub(crate) async fn begin_read(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Db::Sqlite(pools) => Tx::Sqlite(SqliteTx::Read(
                pools.reads.begin_with("BEGIN DEFERRED").await?,
            )),
            Db::Postgres(pool) => Tx::Postgres(pool.begin_with("BEGIN READ ONLY").await?),
        })
    }

    /// Checks that the database answers.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        with_db!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        match self {
            Db::Sqlite(pools) => {
                pools.inline.close();
                pools.reads.close().await;
                pools.writer.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

impl SqlitePools {
    pub(crate) fn reads(&self) -> &SqlitePool {
        &self.reads
    }

    pub(crate) fn writer(&self) -> &SqliteWriter {
        &self.writer
    }

    /// Point reads on the calling thread, for the agent hot path (`inline`).
    pub(crate) fn inline(&self) -> &InlineReads {
        &self.inline
    }
}

impl Tx {
    /// On PostgreSQL, points this transaction's unqualified table names at
    /// `schema` until commit (`set_config(…, true)` is transaction-local and takes
    /// the name as a bound parameter). On SQLite each store is its own file and
    /// this does nothing.
    pub(crate) async fn use_schema(&mut self, schema: &str) -> Result<(), StoreError> {
        if let Tx::Postgres(t) = self {
            sqlx::query("SELECT set_config('search_path', $1, true)")
                .bind(schema)
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    /// Serializes this transaction with every other one that names the same `key`
    /// until commit: a PostgreSQL advisory lock. On SQLite every writing transaction
    /// already holds the database's write lock (`BEGIN IMMEDIATE`).
    pub(crate) async fn serialize_on(&mut self, key: &str) -> Result<(), StoreError> {
        if let Tx::Postgres(t) = self {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(key)
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(SqliteTx::Read(t)) => t.commit().await?,
            Tx::Sqlite(SqliteTx::Write(t)) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

impl std::ops::Deref for SqliteTx {
    type Target = sqlx::SqliteConnection;

    fn deref(&self) -> &sqlx::SqliteConnection {
        match self {
            SqliteTx::Read(t) => t,
            SqliteTx::Write(t) => t,
        }
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut sqlx::SqliteConnection {
        match self {
            SqliteTx::Read(t) => t,
            SqliteTx::Write(t) => t,
        }
    }
}

/// Opens a database file that sqlx has opened, with rusqlite, for the
/// connections that are not sqlx's (`inline`, `sqlite_writer`). It never
/// creates the file: the file is sqlx's, with its permissions and schema.
pub(crate) fn open_existing(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    rusqlite::Connection::open_with_flags(path, flags)
}

/// Creates an empty database file readable by the server's user only, before
/// SQLite opens it: SQLite gives the `-wal` and `-shm` files it creates later the
/// database file's permissions.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Io(format!("creating {}: {e}", path.display()))),
    }
}

/// Database files hold tenant data: readable by the server's user only, with
/// their WAL and shared-memory files. (The data directory is 0700 as well; this
/// keeps the files private if they are moved, and repairs older files.)
fn restrict_to_owner(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = vec![path.to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut sibling = path.as_os_str().to_owned();
        sibling.push(suffix);
        files.push(sibling.into());
    }
    for file in files.iter().filter(|f| f.exists()) {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            StoreError::Io(format!("setting permissions of {}: {e}", file.display()))
        })?;
    }
    Ok(())
}
