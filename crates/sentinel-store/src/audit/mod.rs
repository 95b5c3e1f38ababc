//! Where audit logs live and the one way entries get into them.
//!
//! Each store keeps one log: the platform log in the control store, each
//! organization's log in its tenant store. [`append_in`] is the only code that
//! writes entries: inside the caller's transaction, under a per-log lock, it reads
//! the head, chains the events after it and inserts them, so a change and its
//! entry commit together and the chain never forks. Around it:
//!
//! - [`AuditLog`]: one log's handle: append, read, checkpoint, prune, and the
//!   checks `sentinel audit verify` needs.
//! - [`writer`]: group commit for entries that accompany no change of their own
//!   (denials, failed logins, exports): concurrent events share one transaction.
//! - [`outbox`]: events of control-store changes that belong in an organization's
//!   log, queued in the control transaction and then moved to the tenant store.
//! - [`CheckpointQueue`]: which logs have entries no checkpoint has signed yet.

pub(crate) mod outbox;
mod query;
pub(crate) mod writer;

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use sentinel_core::Timestamp;
use sentinel_core::audit::chain::{Break, ChainCheck, Verified, genesis};
use sentinel_core::audit::checkpoint::{Checkpoint, VerifyingKey};
use sentinel_core::audit::{
    AuditAction, AuditContext, AuditEvent, Entity, EntityType, LogId, StoredEntry, unhex,
};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::StoreError;
use crate::backend::{Db, Tx, with_tx};

pub(crate) use query::like_pattern;
pub use query::{AuditFilter, AuditPage};

/// The columns of an entry, in [`StoredEntry`] order.
const ENTRY_COLUMNS: &str = "seq, event_id, at, actor_kind, actor_id, actor_name, action, \
     entity_type, entity_id, detail, client_ip, user_agent, request_id, outcome, prev_hash, hash";

/// A page of entries as one JSON array of arrays, columns in [`ENTRY_COLUMNS`]
/// order, blobs in hex (JSON cannot hold them). NULL when the page is empty.
const SQLITE_PAGE_AS_JSON: &str = "SELECT json_group_array(json_array(seq, hex(event_id), at, \
     actor_kind, actor_id, actor_name, action, entity_type, entity_id, detail, client_ip, \
     user_agent, request_id, outcome, hex(prev_hash), hex(hash))) \
     FROM audit_entries WHERE seq >= $1 AND seq < $2";

/// One entry of [`SQLITE_PAGE_AS_JSON`].
type JsonEntry = (
    i64,
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

/// The entries of a [`SQLITE_PAGE_AS_JSON`] page, by number.
fn entries_from_json(json: &str) -> Result<Vec<StoredEntry>, StoreError> {
    let damaged =
        |what: &str| StoreError::Corrupt(format!("an audit entry's {what} is unreadable"));
    let rows: Vec<JsonEntry> = serde_json::from_str(json).map_err(|_| damaged("text"))?;
    let mut entries = rows
        .into_iter()
        .map(|row| {
            Ok(StoredEntry {
                seq: row.0,
                event_id: Uuid::try_parse(&row.1).map_err(|_| damaged("event id"))?,
                at: Timestamp::from_unix_micros(row.2),
                actor_kind: row.3,
                actor_id: row.4,
                actor_name: row.5,
                action: row.6,
                entity_type: row.7,
                entity_id: row.8,
                detail: row.9,
                client_ip: row.10,
                user_agent: row.11,
                request_id: row.12,
                outcome: row.13,
                prev_hash: unhex(&row.14).ok_or_else(|| damaged("prev_hash"))?,
                hash: unhex(&row.15).ok_or_else(|| damaged("hash"))?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    entries.sort_unstable_by_key(|entry| entry.seq);
    Ok(entries)
}

/// Entries per page read by [`AuditLog::verify`], and how many pages it reads at once.
const VERIFY_PAGE: i64 = 10_000;
const VERIFY_READ_AHEAD: usize = 3;

/// Rows per INSERT (16 parameters each; SQLite allows 32,766) and ids per
/// lookup: every batch is cut into statements of these sizes, so that a few
/// prepared statements serve batches of any size (preparing an INSERT of a
/// new size for every group commit cost more than running it).
const STATEMENT_ROWS: [usize; 5] = [512, 128, 32, 8, 1];

/// `items` cut into runs of [`STATEMENT_ROWS`] sizes, largest first.
fn statement_chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let size = STATEMENT_ROWS
            .into_iter()
            .find(|&size| size <= items.len())?;
        let (chunk, rest) = items.split_at(size);
        items = rest;
        Some(chunk)
    })
}

/// The triggers that make the audit tables append-only, on each engine.
const SQLITE_TRIGGERS: &[&str] = &[
    "audit_entries_no_update",
    "audit_entries_no_delete",
    "audit_checkpoints_no_update",
    "audit_checkpoints_no_delete",
    "audit_retention_forward_only",
    "audit_retention_no_delete",
];
const POSTGRES_TRIGGERS: &[&str] = &[
    "audit_entries_no_update",
    "audit_entries_no_delete",
    "audit_entries_no_truncate",
    "audit_checkpoints_no_update",
    "audit_checkpoints_no_delete",
    "audit_checkpoints_no_truncate",
    "audit_retention_forward_only",
    "audit_retention_no_delete",
    "audit_retention_no_truncate",
];

/// Appends `events` to `log`, whose store `tx` is open on, after its current
/// head; events already in the log (same event id) are skipped. Returns the new
/// entries.
pub(crate) async fn append_in(
    tx: &mut Tx,
    log: LogId,
    events: &[AuditEvent],
    queue: &CheckpointQueue,
) -> Result<Vec<StoredEntry>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    tx.serialize_on(&format!("audit:{log}")).await?;
    let stored = already_stored(tx, events).await?;
    let mut head: Option<(i64, Vec<u8>)> = with_tx!(&mut *tx, c =>
        sqlx::query_as("SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1")
            .fetch_optional(c)
            .await
    )?;
    if head.is_none() {
        // Retention may have removed every entry: the chain goes on from the
        // signed checkpoint it was pruned up to.
        head = with_tx!(&mut *tx, c =>
            sqlx::query_as(
                "SELECT c.seq, c.hash FROM audit_checkpoints c
                 JOIN audit_retention r ON r.id = 1 AND c.seq = r.pruned_through",
            )
            .fetch_optional(c)
            .await
        )?;
    }
    let (mut seq, mut prev) = head.unwrap_or_else(|| (0, genesis(&log).to_vec()));
    let mut entries = Vec::with_capacity(events.len());
    for event in events.iter().filter(|e| !stored.contains(&e.id)) {
        seq += 1;
        let entry = StoredEntry::chain(seq, &prev, event);
        prev = entry.hash.clone();
        entries.push(entry);
    }
    for chunk in statement_chunks(&entries) {
        with_tx!(&mut *tx, c => {
            let mut insert = sqlx::QueryBuilder::new(format!("INSERT INTO audit_entries ({ENTRY_COLUMNS}) "));
            insert.push_values(chunk, |mut row, e| {
                row.push_bind(e.seq)
                    .push_bind(e.event_id)
                    .push_bind(e.at)
                    .push_bind(e.actor_kind.as_str())
                    .push_bind(e.actor_id.as_str())
                    .push_bind(e.actor_name.as_str())
                    .push_bind(e.action.as_str())
                    .push_bind(e.entity_type.as_str())
                    .push_bind(e.entity_id.as_str())
                    .push_bind(e.detail.as_str())
                    .push_bind(e.client_ip.as_str())
                    .push_bind(e.user_agent.as_str())
                    .push_bind(e.request_id.as_str())
                    .push_bind(e.outcome.as_str())
                    .push_bind(e.prev_hash.as_slice())
                    .push_bind(e.hash.as_slice());
            });
            insert.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    if let Some(last) = entries.last() {
        queue.appended(log, last.seq);
    }
    Ok(entries)
}

/// Which of `events` the log already holds.
async fn already_stored(tx: &mut Tx, events: &[AuditEvent]) -> Result<HashSet<Uuid>, StoreError> {
    let mut found = HashSet::new();
    for chunk in statement_chunks(events) {
        let ids: Vec<Uuid> = with_tx!(&mut *tx, c => {
            let mut select = sqlx::QueryBuilder::new("SELECT event_id FROM audit_entries WHERE event_id IN (");
            let mut list = select.separated(", ");
            for event in chunk {
                list.push_bind(event.id);
            }
            select.push(")");
            select.build_query_scalar().fetch_all(c).await
        })?;
        found.extend(ids);
    }
    Ok(found)
}

/// One log: the platform log or one organization's. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    id: LogId,
    db: Db,
    schema: String,
    queue: Arc<CheckpointQueue>,
}

impl AuditLog {
    pub(crate) fn new(id: LogId, db: Db, schema: String, queue: Arc<CheckpointQueue>) -> Self {
        Self {
            id,
            db,
            schema,
            queue,
        }
    }

    pub fn id(&self) -> LogId {
        self.id
    }

    async fn begin(&self) -> Result<Tx, StoreError> {
        let mut tx = self.db.begin().await?;
        tx.use_schema(&self.schema).await?;
        Ok(tx)
    }

    async fn read(&self) -> Result<Tx, StoreError> {
        let mut tx = self.db.begin_read().await?;
        tx.use_schema(&self.schema).await?;
        Ok(tx)
    }

    /// Appends `events` in one transaction (skipping any already stored).
    pub async fn append(&self, events: &[AuditEvent]) -> Result<Vec<StoredEntry>, StoreError> {
        let mut tx = self.begin().await?;
        let entries = append_in(&mut tx, self.id, events, &self.queue).await?;
        tx.commit().await?;
        Ok(entries)
    }

    /// The newest entry.
    pub async fn head(&self) -> Result<Option<StoredEntry>, StoreError> {
        let mut tx = self.read().await?;
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_entries ORDER BY seq DESC LIMIT 1");
        let head = with_tx!(&mut tx, c =>
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_optional(c).await
        )?;
        tx.commit().await?;
        Ok(head)
    }

    /// The entries numbered within `range`, oldest first.
    ///
    /// On SQLite the page arrives as one JSON text built by SQLite: sqlx copies
    /// every value of every row it returns, which made reading, not hashing,
    /// most of the cost of verifying a log.
    pub async fn entries(&self, range: Range<i64>) -> Result<Vec<StoredEntry>, StoreError> {
        let mut tx = self.read().await?;
        let entries = match &mut tx {
            Tx::Sqlite(t) => {
                let page: Option<String> = sqlx::query_scalar(SQLITE_PAGE_AS_JSON)
                    .bind(range.start)
                    .bind(range.end)
                    .fetch_one(&mut **t)
                    .await?;
                page.map_or(Ok(Vec::new()), |json| entries_from_json(&json))?
            }
            Tx::Postgres(t) => {
                let sql = format!(
                    "SELECT {ENTRY_COLUMNS} FROM audit_entries WHERE seq >= $1 AND seq < $2 ORDER BY seq"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(range.start)
                    .bind(range.end)
                    .fetch_all(&mut **t)
                    .await?
            }
        };
        tx.commit().await?;
        Ok(entries)
    }

    /// Checks the log: the database protections, every checkpoint's signature,
    /// and every entry's place in the chain. `Ok(Err(_))` names what is broken.
    ///
    /// Pages are read several at a time, each in its own read transaction on
    /// its own connection, while the chain is checked in order.
    pub async fn verify(&self, key: &VerifyingKey) -> Result<Result<Verified, Break>, StoreError> {
        let missing = self.missing_protections().await?;
        if !missing.is_empty() {
            let reason = format!(
                "the database no longer refuses edits: trigger(s) {} removed",
                missing.join(", ")
            );
            return Ok(Err(Break::new(&self.id, None, reason)));
        }
        let checkpoints = self.checkpoints().await?;
        let mut check =
            match ChainCheck::start(self.id, self.pruned_through().await?, checkpoints, key) {
                Ok(check) => check,
                Err(broken) => return Ok(Err(broken)),
            };
        let head = self.head().await?.map_or(0, |entry| entry.seq);
        let mut starts = (0..=head).step_by(VERIFY_PAGE as usize);
        let mut reading = VecDeque::new();
        let read = |from: i64| {
            let log = self.clone();
            tokio::spawn(async move { log.entries(from..from + VERIFY_PAGE).await })
        };
        reading.extend(starts.by_ref().take(VERIFY_READ_AHEAD).map(read));
        while let Some(next) = reading.pop_front() {
            reading.extend(starts.next().map(read));
            let page = next
                .await
                .map_err(|e| StoreError::Audit(format!("reading entries: {e}")))??;
            for entry in &page {
                if let Err(broken) = check.feed(entry) {
                    reading.iter().for_each(|task| task.abort());
                    return Ok(Err(broken));
                }
            }
        }
        Ok(check.finish())
    }

    /// Up to `limit` entries matching `filter`, newest first, and where the
    /// next page starts (see [`AuditPage`]).
    pub async fn page(&self, filter: &AuditFilter, limit: i64) -> Result<AuditPage, StoreError> {
        self.page_within(filter, limit, query::TEXT_SCAN_WINDOW)
            .await
    }

    pub(crate) async fn page_within(
        &self,
        filter: &AuditFilter,
        limit: i64,
        text_window: i64,
    ) -> Result<AuditPage, StoreError> {
        let mut tx = self.read().await?;
        let page = query::page(&mut tx, filter, limit, text_window).await?;
        tx.commit().await?;
        Ok(page)
    }

    /// Every checkpoint, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let mut tx = self.read().await?;
        let checkpoints = with_tx!(&mut tx, c =>
            sqlx::query_as("SELECT seq, hash, at, key_id, signature FROM audit_checkpoints ORDER BY seq")
                .fetch_all(c)
                .await
        )?;
        tx.commit().await?;
        Ok(checkpoints)
    }

    /// The number of the newest signed entry (0: none).
    pub async fn last_checkpoint_seq(&self) -> Result<i64, StoreError> {
        let mut tx = self.read().await?;
        let seq: Option<i64> = with_tx!(&mut tx, c =>
            sqlx::query_scalar("SELECT MAX(seq) FROM audit_checkpoints").fetch_one(c).await
        )?;
        tx.commit().await?;
        Ok(seq.unwrap_or(0))
    }

    /// Stores a checkpoint (a second one for the same entry is ignored).
    pub async fn add_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING",
            )
            .bind(checkpoint.seq)
            .bind(&checkpoint.hash)
            .bind(checkpoint.at)
            .bind(&checkpoint.key_id)
            .bind(&checkpoint.signature)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        )?;
        tx.commit().await?;
        self.queue.signed_through(self.id, checkpoint.seq);
        Ok(())
    }

    /// How far retention has removed entries (0: nothing removed).
    pub async fn pruned_through(&self) -> Result<i64, StoreError> {
        let mut tx = self.read().await?;
        let seq: i64 = with_tx!(&mut tx, c =>
            sqlx::query_scalar("SELECT pruned_through FROM audit_retention WHERE id = 1")
                .fetch_one(c)
                .await
        )?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Removes the entries older than `cutoff`, up to the newest signed
    /// checkpoint among them, and records that as an `audit.pruned` entry in
    /// the same transaction. Returns how many entries were removed.
    pub async fn prune(&self, cutoff: Timestamp, now: Timestamp) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        tx.serialize_on(&format!("audit:{}", self.id)).await?;
        let through: Option<i64> = with_tx!(&mut tx, c =>
            sqlx::query_scalar(
                "SELECT MAX(c.seq) FROM audit_checkpoints c JOIN audit_entries e ON e.seq = c.seq
                 WHERE e.at < $1 AND c.seq > (SELECT pruned_through FROM audit_retention WHERE id = 1)",
            )
            .bind(cutoff)
            .fetch_one(c)
            .await
        )?;
        let Some(through) = through else {
            return Ok(0);
        };
        with_tx!(&mut tx, c =>
            sqlx::query("UPDATE audit_retention SET pruned_through = $1 WHERE id = 1")
                .bind(through)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        )?;
        let removed = with_tx!(&mut tx, c =>
            sqlx::query("DELETE FROM audit_entries WHERE seq <= $1")
                .bind(through)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        )?;
        let event = AuditContext::system().success(
            now,
            AuditAction::AuditPruned,
            Entity::new(EntityType::AuditLog, self.id),
            serde_json::json!({
                "through_seq": through,
                "removed": removed,
                "older_than": cutoff.to_rfc3339(),
            }),
        );
        append_in(&mut tx, self.id, &[event], &self.queue).await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Refreshes the query planner's statistics of the log, so that a filter
    /// starts from its most selective index (run by maintenance, daily).
    pub async fn refresh_statistics(&self) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        if let Tx::Sqlite(t) = &mut tx {
            // Sample instead of reading every row: estimates are all the
            // planner needs.
            sqlx::query("PRAGMA analysis_limit = 1000")
                .execute(&mut **t)
                .await?;
        }
        with_tx!(&mut tx, c =>
            sqlx::query("ANALYZE audit_entries").execute(c).await.map(|r| r.rows_affected())
        )?;
        tx.commit().await
    }

    /// The append-only triggers that are missing from this log's store (a
    /// tampered database).
    pub async fn missing_protections(&self) -> Result<Vec<&'static str>, StoreError> {
        let mut tx = self.read().await?;
        let (present, expected): (Vec<String>, &[&str]) = match &mut tx {
            Tx::Sqlite(t) => (
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                    .fetch_all(&mut **t)
                    .await?,
                SQLITE_TRIGGERS,
            ),
            Tx::Postgres(t) => (
                sqlx::query_scalar(
                    "SELECT t.tgname::text FROM pg_trigger t
                     JOIN pg_class r ON r.oid = t.tgrelid
                     JOIN pg_namespace n ON n.oid = r.relnamespace
                     WHERE n.nspname = $1 AND t.tgenabled <> 'D'",
                )
                .bind(&self.schema)
                .fetch_all(&mut **t)
                .await?,
                POSTGRES_TRIGGERS,
            ),
        };
        tx.commit().await?;
        Ok(expected
            .iter()
            .copied()
            .filter(|name| !present.iter().any(|p| p == name))
            .collect())
    }
}

/// Which logs have entries that no checkpoint signs yet, and a signal when one
/// has gathered enough of them to be signed now.
#[derive(Debug)]
pub struct CheckpointQueue {
    state: Mutex<QueueState>,
    due: Notify,
    every_entries: i64,
}

#[derive(Debug, Default)]
struct QueueState {
    /// Newest appended entry of each log with unsigned entries.
    unsigned: HashMap<LogId, i64>,
    /// Newest signed entry, for logs signed since start.
    signed: HashMap<LogId, i64>,
}

impl CheckpointQueue {
    /// A queue that signals when a log has `every_entries` unsigned entries.
    pub fn new(every_entries: u64) -> Self {
        Self {
            state: Mutex::new(QueueState::default()),
            due: Notify::new(),
            every_entries: i64::try_from(every_entries.max(1)).unwrap_or(i64::MAX),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn appended(&self, log: LogId, newest: i64) {
        let mut state = self.lock();
        let signed = state.signed.get(&log).copied().unwrap_or(0);
        let slot = state.unsigned.entry(log).or_insert(newest);
        *slot = (*slot).max(newest);
        if newest - signed >= self.every_entries {
            self.due.notify_one();
        }
    }

    /// Marks `log` as signed up to entry `seq`: by a new checkpoint, or because
    /// its head needs none (nothing was appended, or the append rolled back).
    pub fn signed_through(&self, log: LogId, seq: i64) {
        let mut state = self.lock();
        let signed = state.signed.entry(log).or_insert(seq);
        *signed = (*signed).max(seq);
        if state
            .unsigned
            .get(&log)
            .is_some_and(|&newest| newest <= seq)
        {
            state.unsigned.remove(&log);
        }
    }

    /// The logs with unsigned entries.
    pub fn unsigned(&self) -> Vec<LogId> {
        self.lock().unsigned.keys().copied().collect()
    }

    /// Waits until some log has enough unsigned entries.
    pub async fn due(&self) {
        self.due.notified().await;
    }

    /// Forgets a deleted organization's log.
    pub(crate) fn forget(&self, log: LogId) {
        let mut state = self.lock();
        state.unsigned.remove(&log);
        state.signed.remove(&log);
    }
}

#[cfg(test)]
mod tests {
    use super::statement_chunks;

    #[test]
    fn batches_are_cut_into_a_few_statement_sizes() {
        let items: Vec<usize> = (0..700).collect();
        let sizes: Vec<usize> = statement_chunks(&items).map(<[usize]>::len).collect();
        assert_eq!(sizes, [512, 128, 32, 8, 8, 8, 1, 1, 1, 1]);
        let rejoined: Vec<usize> = statement_chunks(&items).flatten().copied().collect();
        assert_eq!(rejoined, items);
        assert_eq!(statement_chunks::<u8>(&[]).count(), 0);
    }
}
