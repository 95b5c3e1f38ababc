//! Commands: queued by members for one device, signed by the caller with the
//! organization's key before they are stored, handed to the device when it
//! polls, and closed by its reports.
//!
//! Lifecycle: queued → delivered (handed over) → running → succeeded, failed,
//! timed_out or rejected (the device's report); expired when its time passed
//! before it finished; cancelled by a member before it was delivered.

use sentinel_core::audit::{Actor, AuditAction, AuditContext, Entity, EntityType, Origin};
use sentinel_core::{Timestamp, UserId};
use sentinel_protocol::command::{CommandReport, CommandStatus};
use sentinel_protocol::signing::SignedCommand;
use uuid::Uuid;

use super::{DeviceStore, OrgKeys};
use crate::StoreError;
use crate::backend::{Tx, with_tx};
use crate::tenant::TenantStore;

/// A command to store, already signed.
#[derive(Debug, Clone)]
pub struct NewCommand {
    pub id: Uuid,
    pub device_id: Uuid,
    pub kind: String,
    pub params: serde_json::Value,
    pub signed: SignedCommand,
    pub issued_by: UserId,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A command and what became of it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct CommandRecord {
    pub id: Uuid,
    pub device_id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    pub issued_by_name: String,
    #[schema(value_type = String, format = DateTime)]
    pub issued_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    pub status: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    pub exit_code: Option<i64>,
    pub stdout: String,
    pub stderr: String,
    pub output_truncated: bool,
    pub reason: Option<String>,
}

const COMMAND_COLUMNS: &str = "id, device_id, kind, params, issued_by_name, issued_at, expires_at, status, \
     delivered_at, started_at, finished_at, exit_code, stdout, stderr, output_truncated, reason";

#[derive(sqlx::FromRow)]
struct CommandRow {
    id: Uuid,
    device_id: Uuid,
    kind: String,
    params: String,
    issued_by_name: String,
    issued_at: Timestamp,
    expires_at: Timestamp,
    status: String,
    delivered_at: Option<Timestamp>,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
    exit_code: Option<i64>,
    stdout: String,
    stderr: String,
    output_truncated: bool,
    reason: Option<String>,
}

impl CommandRow {
    fn into_record(self) -> CommandRecord {
        CommandRecord {
            id: self.id,
            device_id: self.device_id,
            kind: self.kind,
            params: serde_json::from_str(&self.params).unwrap_or_default(),
            issued_by_name: self.issued_by_name,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            status: self.status,
            delivered_at: self.delivered_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            exit_code: self.exit_code,
            stdout: self.stdout,
            stderr: self.stderr,
            output_truncated: self.output_truncated,
            reason: self.reason,
        }
    }
}

/// Marks `device`'s commands past their expiry that never finished as `expired`.
async fn expire(tx: &mut Tx, device: Uuid, now: Timestamp) -> Result<(), StoreError> {
    with_tx!(tx, c =>
        sqlx::query(
            "UPDATE commands SET status = 'expired', finished_at = $1
             WHERE device_id = $2 AND status IN ('queued', 'delivered', 'running') AND expires_at <= $1",
        )
        .bind(now)
        .bind(device)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    )?;
    Ok(())
}

async fn command_row(tx: &mut Tx, id: Uuid) -> Result<Option<CommandRow>, StoreError> {
    let sql = format!("SELECT {COMMAND_COLUMNS} FROM commands WHERE id = $1");
    Ok(
        with_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(c).await)?,
    )
}

impl OrgKeys {
    pub fn org_id(&self) -> sentinel_core::OrgId {
        self.0.org_id()
    }

    /// The organization's command-signing key: public key (hex) and the sealed
    /// private key, if one was made.
    pub async fn command_key(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let mut tx = self.0.read().await?;
        let key = with_tx!(&mut tx, c =>
            sqlx::query_as("SELECT public_key, sealed_private_key FROM org_keys WHERE purpose = 'command_signing'")
                .fetch_optional(c)
                .await
        )?;
        tx.commit().await?;
        Ok(key)
    }

    /// Stores the organization's command-signing key unless one exists (two
    /// first uses racing); returns the one kept.
    pub async fn save_command_key(
        &self,
        public_key: &str,
        sealed: &[u8],
        now: Timestamp,
    ) -> Result<(String, Vec<u8>), StoreError> {
        let mut tx = self.0.begin().await?;
        with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO org_keys (purpose, public_key, sealed_private_key, created_at)
                 VALUES ('command_signing', $1, $2, $3) ON CONFLICT (purpose) DO NOTHING",
            )
            .bind(public_key)
            .bind(sealed)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        )?;
        let kept = with_tx!(&mut tx, c =>
            sqlx::query_as("SELECT public_key, sealed_private_key FROM org_keys WHERE purpose = 'command_signing'")
                .fetch_one(c)
                .await
        )?;
        tx.commit().await?;
        Ok(kept)
    }
}

impl TenantStore {
    /// The organization's keys.
    pub fn keys(&self) -> OrgKeys {
        OrgKeys(self.clone())
    }

    /// Queues a signed command for a device of this organization (audited).
    /// `NotFound` unless the device exists and is not revoked.
    pub async fn queue_command(
        &self,
        new: &NewCommand,
        audit: &AuditContext,
    ) -> Result<CommandRecord, StoreError> {
        let mut tx = self.begin().await?;
        let live: Option<Uuid> = with_tx!(&mut tx, c =>
            sqlx::query_scalar("SELECT id FROM devices WHERE id = $1 AND revoked_at IS NULL")
                .bind(new.device_id)
                .fetch_optional(c)
                .await
        )?;
        if live.is_none() {
            return Err(StoreError::NotFound);
        }
        let signed =
            serde_json::to_string(&new.signed).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let params = new.params.to_string();
        with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO commands (id, device_id, kind, params, signed, issued_by, issued_by_name, issued_at, expires_at, status)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued')",
            )
            .bind(new.id)
            .bind(new.device_id)
            .bind(&new.kind)
            .bind(&params)
            .bind(&signed)
            .bind(new.issued_by)
            .bind(&audit.actor.name)
            .bind(new.issued_at)
            .bind(new.expires_at)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        )?;
        let event = audit.success(
            new.issued_at,
            AuditAction::CommandQueued,
            Entity::new(EntityType::Command, new.id),
            serde_json::json!({
                "device": new.device_id,
                "type": new.kind,
                "params": new.params,
                "expires_at": new.expires_at,
            }),
        );
        self.audit(&mut tx, &[event]).await?;
        tx.commit().await?;
        Ok(CommandRecord {
            id: new.id,
            device_id: new.device_id,
            kind: new.kind.clone(),
            params: new.params.clone(),
            issued_by_name: audit.actor.name.clone(),
            issued_at: new.issued_at,
            expires_at: new.expires_at,
            status: CommandStatus::Queued.as_str().to_owned(),
            delivered_at: None,
            started_at: None,
            finished_at: None,
            exit_code: None,
            stdout: String::new(),
            stderr: String::new(),
            output_truncated: false,
            reason: None,
        })
    }

    /// One command of this organization; `NotFound` for any other id.
    pub async fn command(&self, id: Uuid, now: Timestamp) -> Result<CommandRecord, StoreError> {
        let mut tx = self.begin().await?;
        let device = command_row(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?
            .device_id;
        expire(&mut tx, device, now).await?;
        let row = command_row(&mut tx, id).await?;
        tx.commit().await?;
        row.map(CommandRow::into_record).ok_or(StoreError::NotFound)
    }

    /// A device's commands, newest first.
    pub async fn device_commands(
        &self,
        device: Uuid,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<CommandRecord>, StoreError> {
        let mut tx = self.begin().await?;
        expire(&mut tx, device, now).await?;
        let sql = format!(
            "SELECT {COMMAND_COLUMNS} FROM commands WHERE device_id = $1 ORDER BY issued_at DESC LIMIT $2"
        );
        let rows: Vec<CommandRow> = with_tx!(&mut tx, c =>
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(device).bind(limit).fetch_all(c).await
        )?;
        tx.commit().await?;
        Ok(rows.into_iter().map(CommandRow::into_record).collect())
    }

    /// Cancels a command not yet delivered (audited). `NotFound` for another
    /// organization's; `Refused` once its device has it.
    pub async fn cancel_command(
        &self,
        id: Uuid,
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<CommandRecord, StoreError> {
        let mut tx = self.begin().await?;
        let device = command_row(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?
            .device_id;
        expire(&mut tx, device, now).await?;
        let row = command_row(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if row.status != "queued" {
            return Err(StoreError::Refused(
                "only a command its device has not received can be cancelled",
            ));
        }
        with_tx!(&mut tx, c =>
            sqlx::query("UPDATE commands SET status = 'cancelled', finished_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        )?;
        let event = audit.success(
            now,
            AuditAction::CommandCancelled,
            Entity::new(EntityType::Command, id),
            serde_json::json!({ "device": row.device_id, "type": row.kind }),
        );
        self.audit(&mut tx, &[event]).await?;
        let record = command_row(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(record.into_record())
    }
}

/// How long a delivered command the agent has not reported on waits before it
/// is handed over again.
pub const REDELIVER_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

impl DeviceStore {
    /// The commands waiting for this device, oldest first: a read, so that
    /// handing a command over waits for no disk flush. Mark them with
    /// [`DeviceStore::mark_delivered`] afterwards. A command delivered but not
    /// reported on within [`REDELIVER_AFTER`] is handed over again (the answer
    /// may have been lost; the agent's replay record keeps it from running
    /// twice) — not sooner, or an agent still holding it would be answered at
    /// once on every poll.
    pub async fn waiting_commands(&self, now: Timestamp) -> Result<Vec<SignedCommand>, StoreError> {
        let mut tx = self.tenant().read().await?;
        let waiting: Vec<String> = with_tx!(&mut tx, c =>
            sqlx::query_scalar(
                "SELECT signed FROM commands WHERE device_id = $1 AND expires_at > $2
                 AND (status = 'queued' OR (status = 'delivered' AND delivered_at <= $3))
                 ORDER BY issued_at, id LIMIT 100",
            )
            .bind(self.device_id())
            .bind(now)
            .bind(now.minus(REDELIVER_AFTER))
            .fetch_all(c)
            .await
        )?;
        tx.commit().await?;
        waiting
            .into_iter()
            .map(|signed| {
                serde_json::from_str(&signed).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// Marks the commands `ids` of this device delivered now (those queued, or
    /// delivered before and handed over again), and this device's expired ones
    /// expired.
    pub async fn mark_delivered(&self, ids: &[Uuid], now: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.tenant().begin().await?;
        expire(&mut tx, self.device_id(), now).await?;
        for id in ids {
            with_tx!(&mut tx, c =>
                sqlx::query(
                    "UPDATE commands SET status = 'delivered', delivered_at = $1
                     WHERE id = $2 AND device_id = $3 AND status IN ('queued', 'delivered')",
                )
                .bind(now)
                .bind(*id)
                .bind(self.device_id())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
            )?;
        }
        tx.commit().await
    }

    /// Records this device's report on one of its commands; a final report is
    /// audited. `NotFound` for a command of another device; `Refused` once the
    /// command is over.
    pub async fn report(
        &self,
        id: Uuid,
        report: &CommandReport,
        hostname: &str,
        origin: &Origin,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant().begin().await?;
        expire(&mut tx, self.device_id(), now).await?;
        let row = command_row(&mut tx, id).await?;
        let row = row
            .filter(|r| r.device_id == self.device_id())
            .ok_or(StoreError::NotFound)?;
        let current = CommandStatus::parse(&row.status)
            .ok_or_else(|| StoreError::Corrupt(row.status.clone()))?;
        if current.is_final() {
            return Err(StoreError::Refused("the command is already over"));
        }
        let started_at = report
            .started_at
            .map(Timestamp::from_unix_seconds)
            .or(row.started_at);
        let finished_at = report
            .status
            .is_final()
            .then(|| report.finished_at.map_or(now, Timestamp::from_unix_seconds));
        with_tx!(&mut tx, c =>
            sqlx::query(
                "UPDATE commands SET status = $1, started_at = $2, finished_at = $3, exit_code = $4,
                     stdout = $5, stderr = $6, output_truncated = $7, reason = $8,
                     delivered_at = COALESCE(delivered_at, $10) WHERE id = $9",
            )
            .bind(report.status.as_str())
            .bind(started_at)
            .bind(finished_at)
            .bind(report.exit_code.map(i64::from))
            .bind(&report.stdout)
            .bind(&report.stderr)
            .bind(report.output_truncated)
            .bind(report.reason.as_deref())
            .bind(id)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        )?;
        if report.status.is_final() {
            let context = AuditContext {
                actor: Actor::device(self.device_id(), hostname),
                origin: origin.clone(),
            };
            let event = context.success(
                now,
                AuditAction::CommandResultReceived,
                Entity::new(EntityType::Command, id),
                serde_json::json!({
                    "type": row.kind,
                    "status": report.status.as_str(),
                    "exit_code": report.exit_code,
                    "reason": report.reason,
                }),
            );
            self.tenant().audit(&mut tx, &[event]).await?;
        }
        tx.commit().await
    }
}
