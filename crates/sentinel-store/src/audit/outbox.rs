//! The audit outbox: events of control-store changes that belong in an
//! organization's log. [`enqueue`] writes the event in the control transaction
//! of the change; [`crate::Stores::flush_audit_outbox`] then appends it to the
//! organization's log and removes it here. Appending is idempotent (by event id),
//! so a crash between the two steps repeats the second, never loses the event.

use sentinel_core::OrgId;
use sentinel_core::audit::AuditEvent;
use uuid::Uuid;

use crate::StoreError;
use crate::backend::{Db, Tx, with_db, with_tx};

/// Queues `event` for `org`'s log, inside the control transaction `tx`.
pub(crate) async fn enqueue(tx: &mut Tx, org: OrgId, event: &AuditEvent) -> Result<(), StoreError> {
    let text = serde_json::to_string(event).map_err(|e| StoreError::Audit(e.to_string()))?;
    with_tx!(tx, c =>
        sqlx::query(
            "INSERT INTO audit_outbox (event_id, org_id, position, event)
             VALUES ($1, $2, (SELECT COALESCE(MAX(position), 0) + 1 FROM audit_outbox), $3)",
        )
        .bind(event.id)
        .bind(org)
        .bind(text)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    )?;
    Ok(())
}

/// The organizations with queued events.
pub(crate) async fn orgs_waiting(db: &Db) -> Result<Vec<OrgId>, StoreError> {
    let orgs = with_db!(db, p =>
        sqlx::query_scalar("SELECT DISTINCT org_id FROM audit_outbox").fetch_all(p).await
    )?;
    Ok(orgs)
}

/// `org`'s queued events, in the order they were queued.
pub(crate) async fn queued(db: &Db, org: OrgId) -> Result<Vec<AuditEvent>, StoreError> {
    let texts: Vec<String> = with_db!(db, p =>
        sqlx::query_scalar("SELECT event FROM audit_outbox WHERE org_id = $1 ORDER BY position")
            .bind(org)
            .fetch_all(p)
            .await
    )?;
    texts
        .iter()
        .map(|t| {
            serde_json::from_str(t)
                .map_err(|e| StoreError::Corrupt(format!("an audit outbox event: {e}")))
        })
        .collect()
}

/// Removes events that are now in their organization's log.
pub(crate) async fn remove(db: &Db, ids: &[Uuid]) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    for id in ids {
        with_tx!(&mut tx, c =>
            sqlx::query("DELETE FROM audit_outbox WHERE event_id = $1")
                .bind(id)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        )?;
    }
    tx.commit().await
}
