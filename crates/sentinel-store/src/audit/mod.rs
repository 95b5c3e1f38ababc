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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use sentinel_core::Timestamp;
use sentinel_core::audit::chain::genesis;
use sentinel_core::audit::checkpoint::Checkpoint;
use sentinel_core::audit::{
    AuditAction, AuditContext, AuditEvent, Entity, EntityType, LogId, StoredEntry,
};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::StoreError;
use crate::backend::{Db, Tx, with_tx};

pub use query::AuditFilter;

/// The columns of an entry, in [`StoredEntry`] order.
const ENTRY_COLUMNS: &str = "seq, event_id, at, actor_kind, actor_id, actor_name, action, \
     entity_type, entity_id, detail, client_ip, user_agent, request_id, outcome, prev_hash, hash";

/// Rows per INSERT statement (16 parameters each; SQLite allows 32,766).
const INSERT_CHUNK: usize = 1000;

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
    let head: Option<(i64, Vec<u8>)> = with_tx!(&mut *tx, c =>
        sqlx::query_as("SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1")
            .fetch_optional(c)
            .await
    )?;
    let (mut seq, mut prev) = head.unwrap_or_else(|| (0, genesis(&log).to_vec()));
    let mut entries = Vec::with_capacity(events.len());
    for event in events.iter().filter(|e| !stored.contains(&e.id)) {
        seq += 1;
        let entry = StoredEntry::chain(seq, &prev, event);
        prev = entry.hash.clone();
        entries.push(entry);
    }
    for chunk in entries.chunks(INSERT_CHUNK) {
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
    for chunk in events.chunks(INSERT_CHUNK) {
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

    /// Appends `events` in one transaction (skipping any already stored).
    pub async fn append(&self, events: &[AuditEvent]) -> Result<Vec<StoredEntry>, StoreError> {
        let mut tx = self.begin().await?;
        let entries = append_in(&mut tx, self.id, events, &self.queue).await?;
        tx.commit().await?;
        Ok(entries)
    }

    /// The newest entry.
    pub async fn head(&self) -> Result<Option<StoredEntry>, StoreError> {
        let mut tx = self.begin().await?;
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_entries ORDER BY seq DESC LIMIT 1");
        let head = with_tx!(&mut tx, c =>
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_optional(c).await
        )?;
        tx.commit().await?;
        Ok(head)
    }

    /// Up to `limit` entries from number `from` on, oldest first.
    pub async fn entries_from(
        &self,
        from: i64,
        limit: i64,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let mut tx = self.begin().await?;
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_entries WHERE seq >= $1 ORDER BY seq LIMIT $2"
        );
        let entries = with_tx!(&mut tx, c =>
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(from).bind(limit).fetch_all(c).await
        )?;
        tx.commit().await?;
        Ok(entries)
    }

    /// Up to `limit` entries matching `filter`, newest first.
    pub async fn page(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let mut tx = self.begin().await?;
        let entries = query::page(&mut tx, filter, limit).await?;
        tx.commit().await?;
        Ok(entries)
    }

    /// Every checkpoint, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let mut tx = self.begin().await?;
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
        let mut tx = self.begin().await?;
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
        let mut tx = self.begin().await?;
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

    /// The append-only triggers that are missing from this log's store (a
    /// tampered database).
    pub async fn missing_protections(&self) -> Result<Vec<&'static str>, StoreError> {
        let mut tx = self.begin().await?;
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
