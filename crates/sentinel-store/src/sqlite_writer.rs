//! A SQLite database's writer: the right to write, handed from one writer of
//! this process to the next in the order they asked for it (a fair mutex),
//! with the connections that write.
//!
//! Two connections write, one at a time since whoever writes holds the mutex:
//! sqlx's, for the store's statements, and a rusqlite one for bulk writes on a
//! blocking thread ([`SqliteWriter::write_blocking`]). A telemetry batch is a
//! thousand rows; through sqlx each of its statements was a hand-off to the
//! connection's thread and a wake-up back through the run queue, behind every
//! request the previous batch had answered, so the batch took ~10 trips through
//! the queue (docs/benchmarks.md, the ingest burst). On a blocking thread it is
//! one trip.
//!
//! There is no pool: a pool takes its connection back through a task it
//! spawns, which pings the connection's thread before the next writer may have
//! it. Here the next writer has the connections as soon as the previous one
//! lets go. They open on first use and close after [`IDLE_CLOSE`] without a
//! writer, so that an idle tenant keeps no page cache.

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteTransactionManager};
use sqlx::{ConnectOptions, Connection, SqlSafeStr};
use sqlx_core::transaction::TransactionManager;
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use crate::StoreError;
use crate::backend::{
    SQLITE_BUSY_TIMEOUT, SQLITE_WAL_CHECKPOINT_PAGES, SQLITE_WRITER_CACHE_KIB, open_existing,
};

/// How long the connections stay open with no writer.
const IDLE_CLOSE: Duration = Duration::from_secs(300);
/// How often open connections are checked for idleness.
const IDLE_CHECK: Duration = Duration::from_secs(60);
/// How long a writer waits for its turn before giving up (as a pool's acquire
/// would): a writer that waits on itself fails instead of hanging.
const HOLD_TIMEOUT: Duration = Duration::from_secs(30);

/// The writer of one database file.
#[derive(Debug)]
pub(crate) struct SqliteWriter {
    slot: Arc<Mutex<Slot>>,
    path: PathBuf,
    options: SqliteConnectOptions,
}

/// The writing connections, when open, and whether the database is closed.
#[derive(Debug)]
pub(crate) struct Slot {
    connection: Option<SqliteConnection>,
    bulk: Option<rusqlite::Connection>,
    used_at: Instant,
    closed: bool,
}

/// The writing connection, held: no other writer of this process runs until
/// it is dropped. Statements outside a [`WriteTx`] commit one by one.
pub(crate) type Held = OwnedMappedMutexGuard<Slot, SqliteConnection>;

impl SqliteWriter {
    /// The writer of the database at `path`, which sqlx connects to with
    /// `options`. Must be called within the runtime: a task closes the
    /// connections when they sit idle.
    pub(crate) fn new(path: PathBuf, options: SqliteConnectOptions) -> SqliteWriter {
        let slot = Arc::new(Mutex::new(Slot {
            connection: None,
            bulk: None,
            used_at: Instant::now(),
            closed: false,
        }));
        tokio::spawn(close_when_idle(Arc::downgrade(&slot)));
        SqliteWriter {
            slot,
            path,
            options,
        }
    }

    /// Waits for this process's turn to write (first come, first served, at
    /// most [`HOLD_TIMEOUT`]).
    async fn turn(&self) -> Result<OwnedMutexGuard<Slot>, sqlx::Error> {
        let mut slot = tokio::time::timeout(HOLD_TIMEOUT, self.slot.clone().lock_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?;
        if slot.closed {
            return Err(sqlx::Error::PoolClosed);
        }
        slot.used_at = Instant::now();
        Ok(slot)
    }

    /// Waits for the turn to write and holds sqlx's connection, connecting if
    /// it is closed.
    pub(crate) async fn hold(&self) -> Result<Held, sqlx::Error> {
        let mut slot = self.turn().await?;
        slot.connect(&self.options).await?;
        held(slot)
    }

    /// Begins a transaction that takes the database's write lock at once
    /// (`BEGIN IMMEDIATE`).
    pub(crate) async fn begin(&self) -> Result<WriteTx, sqlx::Error> {
        let mut slot = self.turn().await?;
        let connection = slot.connect(&self.options).await?;
        // sqlx's transaction manager keeps the connection's own count of open
        // transactions, as its `Transaction` does.
        let begun =
            SqliteTransactionManager::begin(connection, Some("BEGIN IMMEDIATE".into_sql_str()))
                .await;
        if let Err(e) = begun {
            if matches!(e, sqlx::Error::WorkerCrashed) {
                // Its thread is gone (a pool would have found out when the
                // connection came back): the next writer connects afresh.
                slot.connection = None;
            }
            return Err(e);
        }
        Ok(WriteTx {
            connection: held(slot)?,
            open: true,
        })
    }

    /// Waits for the turn to write, then runs `write` in one transaction
    /// (`BEGIN IMMEDIATE`) on the bulk connection, on a blocking thread:
    /// committed if it returns `Ok`, rolled back otherwise. The blocking
    /// thread holds the turn until the transaction is over, even if the
    /// caller stops waiting.
    pub(crate) async fn write_blocking<T: Send + 'static>(
        &self,
        write: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let mut slot = self.turn().await?;
        let path = self.path.clone();
        let written = tokio::task::spawn_blocking(move || {
            let bulk = match &mut slot.bulk {
                Some(bulk) => bulk,
                None => slot.bulk.insert(open_bulk(&path)?),
            };
            let written = in_transaction(bulk, write);
            if !bulk.is_autocommit() {
                // A rollback that failed left it inside the transaction,
                // holding the write lock: it is not used again.
                slot.bulk = None;
            }
            written
        })
        .await
        .map_err(|e| StoreError::Sqlite(format!("a bulk write stopped: {e}")))?;
        written.map_err(|e| StoreError::Sqlite(format!("writing {}: {e}", self.path.display())))
    }

    /// Closes the connections once the current writer is done; later writers
    /// are refused.
    pub(crate) async fn close(&self) {
        let mut slot = self.slot.lock().await;
        slot.closed = true;
        slot.close_connections().await;
    }
}

impl Slot {
    /// sqlx's connection, connecting if it is closed.
    async fn connect(
        &mut self,
        options: &SqliteConnectOptions,
    ) -> Result<&mut SqliteConnection, sqlx::Error> {
        if self.connection.is_none() {
            self.connection = Some(options.connect().await?);
        }
        self.connection.as_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// Closes the connections if no writer has had them for [`IDLE_CLOSE`].
    async fn close_if_idle(&mut self) {
        if self.used_at.elapsed() >= IDLE_CLOSE {
            self.close_connections().await;
        }
    }

    async fn close_connections(&mut self) {
        if let Some(bulk) = self.bulk.take() {
            // Closing the last connection checkpoints the WAL: a disk write,
            // not for an async worker.
            let _ = tokio::task::spawn_blocking(move || drop(bulk)).await;
        }
        if let Some(connection) = self.connection.take() {
            let _ = connection.close().await;
        }
    }
}

/// The turn, holding sqlx's connection (which [`Slot::connect`] opened).
fn held(slot: OwnedMutexGuard<Slot>) -> Result<Held, sqlx::Error> {
    OwnedMutexGuard::try_map(slot, |slot| slot.connection.as_mut())
        .map_err(|_| sqlx::Error::PoolClosed)
}

fn in_transaction<T>(
    bulk: &mut rusqlite::Connection,
    write: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let tx = bulk.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let value = write(&tx)?;
    tx.commit()?;
    Ok(value)
}

/// Opens the bulk connection with the settings of sqlx's writing connection
/// (`backend::Db::open_sqlite`); the journal mode (WAL) is kept in the file.
fn open_bulk(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    let bulk = open_existing(path)?;
    bulk.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
    bulk.pragma_update(None, "synchronous", "FULL")?;
    bulk.pragma_update(None, "foreign_keys", true)?;
    bulk.pragma_update(None, "wal_autocheckpoint", SQLITE_WAL_CHECKPOINT_PAGES)?;
    bulk.pragma_update(None, "cache_size", SQLITE_WRITER_CACHE_KIB)?;
    Ok(bulk)
}

/// A transaction on the writing connection: committed by [`WriteTx::commit`],
/// rolled back if dropped before (the rollback is queued to the connection's
/// thread at once, ahead of the next writer's statements).
pub(crate) struct WriteTx {
    connection: Held,
    open: bool,
}

impl WriteTx {
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        SqliteTransactionManager::commit(&mut self.connection).await?;
        self.open = false;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.open {
            SqliteTransactionManager::start_rollback(&mut self.connection);
        }
    }
}

impl Deref for WriteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.connection
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.connection
    }
}

/// Closes the connections after [`IDLE_CLOSE`] without a writer; ends with
/// the writer.
async fn close_when_idle(slot: Weak<Mutex<Slot>>) {
    loop {
        tokio::time::sleep(IDLE_CHECK).await;
        let Some(slot) = slot.upgrade() else {
            return;
        };
        let Ok(mut slot) = slot.try_lock() else {
            continue;
        };
        if slot.closed {
            return;
        }
        slot.close_if_idle().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Db;

    async fn database() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("db.sqlite"), 2, true)
            .await
            .unwrap();
        let mut held = writer(&db).hold().await.unwrap();
        sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY)")
            .execute(&mut *held)
            .await
            .unwrap();
        drop(held);
        (dir, db)
    }

    fn pools(db: &Db) -> &crate::backend::SqlitePools {
        let Db::Sqlite(pools) = db else {
            unreachable!()
        };
        pools
    }

    fn writer(db: &Db) -> &SqliteWriter {
        pools(db).writer()
    }

    /// Inserts the row `k` through sqlx's connection.
    async fn insert(connection: &mut SqliteConnection, k: i64) {
        sqlx::query("INSERT INTO t VALUES ($1)")
            .bind(k)
            .execute(connection)
            .await
            .unwrap();
    }

    async fn rows(db: &Db) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(pools(db).reads())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_bulk_connection_has_the_settings_of_sqlx_writing_connection() {
        let (_dir, db) = database().await;
        let pragmas = [
            "synchronous",
            "foreign_keys",
            "busy_timeout",
            "wal_autocheckpoint",
            "cache_size",
        ];
        let mut held = writer(&db).hold().await.unwrap();
        let mut by_sqlx = Vec::new();
        for pragma in pragmas {
            let value: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("PRAGMA {pragma}")))
                .fetch_one(&mut *held)
                .await
                .unwrap();
            by_sqlx.push(value);
        }
        drop(held);
        let by_bulk = writer(&db)
            .write_blocking(move |tx| {
                pragmas
                    .iter()
                    .map(|pragma| tx.query_row(&format!("PRAGMA {pragma}"), [], |row| row.get(0)))
                    .collect::<rusqlite::Result<Vec<i64>>>()
            })
            .await
            .unwrap();
        assert_eq!(by_bulk, by_sqlx);
        assert_eq!(
            by_sqlx,
            vec![2, 1, 10_000, 4_000, -16_384],
            "FULL, on, 10 s"
        );
    }

    #[tokio::test]
    async fn a_bulk_write_commits_on_ok_and_rolls_back_on_error() {
        let (_dir, db) = database().await;
        let failed = writer(&db)
            .write_blocking(|tx| {
                tx.execute("INSERT INTO t VALUES (1)", [])?;
                tx.execute("INSERT INTO t VALUES (1)", [])
            })
            .await;
        assert!(failed.is_err(), "the second row breaks the key");
        assert_eq!(rows(&db).await, 0, "the first row went with it");
        writer(&db)
            .write_blocking(|tx| tx.execute("INSERT INTO t VALUES (1)", []))
            .await
            .unwrap();
        assert_eq!(rows(&db).await, 1, "readers see the commit");
    }

    #[tokio::test]
    async fn a_transaction_dropped_before_commit_is_rolled_back_for_the_next_writer() {
        let (_dir, db) = database().await;
        let mut tx = writer(&db).begin().await.unwrap();
        insert(&mut tx, 1).await;
        drop(tx);
        // The next writers begin afresh (not inside the abandoned transaction)
        // on either connection.
        writer(&db)
            .write_blocking(|tx| tx.execute("INSERT INTO t VALUES (2)", []))
            .await
            .unwrap();
        let mut tx = writer(&db).begin().await.unwrap();
        insert(&mut tx, 3).await;
        tx.commit().await.unwrap();
        let kept: Vec<i64> = sqlx::query_scalar("SELECT k FROM t ORDER BY k")
            .fetch_all(pools(&db).reads())
            .await
            .unwrap();
        assert_eq!(kept, vec![2, 3]);
    }

    #[tokio::test]
    async fn a_bulk_write_keeps_the_turn_when_its_caller_stops_waiting() {
        let (_dir, db) = database().await;
        let (finish, finished) = std::sync::mpsc::channel::<()>();
        let abandoned = tokio::time::timeout(
            Duration::from_millis(20),
            writer(&db).write_blocking(move |tx| {
                tx.execute("INSERT INTO t VALUES (1)", [])?;
                let _ = finished.recv();
                Ok(())
            }),
        )
        .await;
        assert!(abandoned.is_err(), "the caller gave up first");
        let next = db.clone();
        let mut next = tokio::spawn(async move {
            let mut held = writer(&next).hold().await.unwrap();
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM t")
                .fetch_one(&mut *held)
                .await
                .unwrap()
        });
        let early = tokio::time::timeout(Duration::from_millis(100), &mut next).await;
        assert!(
            early.is_err(),
            "the next writer waits for the abandoned one"
        );
        finish.send(()).unwrap();
        assert_eq!(
            next.await.unwrap(),
            1,
            "and its turn comes after the commit"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn writers_take_turns_in_the_order_they_asked() {
        let (_dir, db) = database().await;
        let first = writer(&db).hold().await.unwrap();
        let turns = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for n in 0..4 {
            let db = db.clone();
            let turns = turns.clone();
            waiting.push(tokio::spawn(async move {
                let held = writer(&db).hold().await.unwrap();
                turns.lock().unwrap().push(n);
                drop(held);
            }));
            // Let it queue before the next one asks.
            tokio::task::yield_now().await;
        }
        assert!(turns.lock().unwrap().is_empty(), "all wait for the first");
        drop(first);
        for task in waiting {
            task.await.unwrap();
        }
        assert_eq!(*turns.lock().unwrap(), vec![0, 1, 2, 3]);
    }

    #[tokio::test]
    async fn idle_connections_close_and_open_again_when_needed() {
        let (_dir, db) = database().await;
        writer(&db)
            .write_blocking(|tx| tx.execute("INSERT INTO t VALUES (1)", []))
            .await
            .unwrap();
        let slot = &writer(&db).slot;
        {
            let mut slot = slot.lock().await;
            slot.close_if_idle().await;
            assert!(
                slot.connection.is_some() && slot.bulk.is_some(),
                "just used"
            );
            slot.used_at = Instant::now().checked_sub(IDLE_CLOSE).unwrap();
            slot.close_if_idle().await;
            assert!(slot.connection.is_none() && slot.bulk.is_none(), "idle");
        }
        writer(&db)
            .write_blocking(|tx| tx.execute("INSERT INTO t VALUES (2)", []))
            .await
            .unwrap();
        let mut held = writer(&db).hold().await.unwrap();
        insert(&mut held, 3).await;
        drop(held);
        assert_eq!(rows(&db).await, 3);
    }

    #[tokio::test]
    async fn a_closed_writer_refuses_writers() {
        let (_dir, db) = database().await;
        writer(&db).close().await;
        assert!(matches!(
            writer(&db).hold().await,
            Err(sqlx::Error::PoolClosed)
        ));
        assert!(writer(&db).begin().await.is_err());
        let refused = writer(&db)
            .write_blocking(|tx| tx.execute("INSERT INTO t VALUES (1)", []))
            .await;
        assert!(refused.is_err());
    }
}
