//! Sentinel's storage: one control store for platform data and one tenant store per
//! organization, on embedded SQLite (the default: one file each) or PostgreSQL (one
//! schema each).
//!
//! - [`ControlStore`]: users, organizations, memberships, sessions, setup tokens.
//! - [`AuditLog`]: the hash-chained audit logs, one in each store (see [`audit`]).
//! - [`TenantStores`]: the per-organization databases. A [`TenantStore`] handle can
//!   only be obtained with a [`TenantAccess`], and a `TenantAccess` can only be made
//!   by [`Membership::authorize`] from a membership read from the control store:
//!   code that has not authorized a member cannot name tenant data.
//!
//! ```compile_fail,E0451
//! // A TenantAccess cannot be forged outside this crate: its fields are private
//! // and it has no public constructor.
//! use sentinel_core::{OrgId, TenantRole};
//! let access = sentinel_store::TenantAccess {
//!     org_id: OrgId::random(),
//!     role: TenantRole::Owner,
//! };
//! ```

pub mod audit;
mod backend;
#[cfg(test)]
mod conformance;
mod control;
mod devices;
mod group_commit;
mod inline;
mod lorawan;
mod migrate;
mod sealed;
mod sqlite_writer;
mod tenant;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::path::PathBuf;
use std::sync::Arc;

use sentinel_core::audit::{AuditContext, AuditEvent, LogId};
use sentinel_core::{Clock, OrgId, OrgName, SecretString, UserId};

pub use audit::{AuditFilter, AuditLog, AuditPage, CheckpointQueue};
pub use control::{
    AdvisoryRecord, ApiToken, ControlStore, DeviceAccess, DeviceLogin, EnrollmentToken,
    FeedChanges, FeedCounts, FeedImport, FeedKind, KevCatalogVersion, KevRecord, LoginChallenge,
    Member, Membership, NewApiToken, NewEnrollmentToken, NewFeedImport, NewLoginChallenge,
    NewSession, NewUser, Organization, OrganizationWithRole, PresentedToken, ServiceAccount,
    SessionRecord, SetupOutcome, TwoFactorRecord, User, UserWithPassword,
};
pub use devices::{
    AdvisoryGroup, CommandRecord, Device, DeviceFilter, DeviceIdentity, DeviceStore, DeviceToMatch,
    Enrolled, Finding, FindingChanges, FindingCursor, FindingFilter, FindingTotals, FindingsWriter,
    MatchedDevice, NewCommand, NewFinding, OrgKeys, PackageGroup, TelemetryRecord,
};
pub use lorawan::{
    DeviceEvent, DeviceProfile, EventCursor, Integration, IntegrationChange, IntegrationSettings,
    LorawanDevice, NewIntegration, NewUplinkEvent, PasswordChange, UplinkDevice, UplinkStore,
};
pub use sealed::{SealedSite, SealedValue};
pub use tenant::{PermissionDenied, TenantAccess, TenantIdentity, TenantStore, TenantStores};

use backend::Db;

/// Where Sentinel keeps its data.
#[derive(Debug, Clone)]
pub enum StoreLocation {
    /// `control.db` and `orgs/<org id>.db` inside this directory.
    Sqlite { data_dir: PathBuf },
    /// A PostgreSQL database: schema `sentinel_control` and one
    /// `sentinel_org_<id>` schema per organization.
    Postgres { url: SecretString },
}

/// Everything that can go wrong in the stores. The HTTP layer turns `NotFound`,
/// `Conflict` and `Refused` into 4xx answers and everything else into a 500 that
/// says nothing about the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken (an e-mail address or a slug is taken).
    #[error("{0}")]
    Conflict(&'static str),
    /// The change would break an invariant (e.g. remove an organization's last owner).
    #[error("{0}")]
    Refused(&'static str),
    /// The acting member's role does not allow this particular change.
    #[error("{0}")]
    NotPermitted(&'static str),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// An error on a SQLite connection that is not sqlx's (a bulk write).
    #[error("database error: {0}")]
    Sqlite(String),
    #[error("schema migration: {0}")]
    Migration(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("file system: {0}")]
    Io(String),
    /// Stored data that violates the schema's own rules.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// An audit entry could not be written.
    #[error("audit log: {0}")]
    Audit(String),
    /// A batch of telemetry reports could not be committed.
    #[error("telemetry: {0}")]
    Telemetry(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

/// Maps a unique-constraint violation to `Conflict(message)`, other errors as they are.
pub(crate) fn conflict_on_unique(message: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message),
        _ => StoreError::Database(e),
    }
}

/// The control store and the tenant stores, opened and migrated together.
#[derive(Debug)]
pub struct Stores {
    control: ControlStore,
    tenants: TenantStores,
    checkpoints: Arc<CheckpointQueue>,
    audit_writer: audit::writer::AuditWriter,
    telemetry_writer: Arc<devices::TelemetryWriter>,
}

/// A log is signed as soon as it has this many unsigned entries (and otherwise
/// on the server's checkpoint interval and at shutdown).
pub const CHECKPOINT_EVERY_ENTRIES: u64 = 1000;

/// Connection pool sizes.
const SQLITE_CONTROL_CONNECTIONS: u32 = 8;
const POSTGRES_CONNECTIONS: u32 = 16;

impl Stores {
    /// Opens the stores at `location`, creating them if new, and applies pending
    /// migrations to the control store and to every organization's tenant store.
    pub async fn open(location: &StoreLocation, clock: &dyn Clock) -> Result<Stores, StoreError> {
        let now = clock.now();
        let checkpoints = Arc::new(CheckpointQueue::new(CHECKPOINT_EVERY_ENTRIES));
        let (control_db, tenants) = match location {
            StoreLocation::Sqlite { data_dir } => {
                let db = Db::open_sqlite(
                    &data_dir.join("control.db"),
                    SQLITE_CONTROL_CONNECTIONS,
                    true,
                )
                .await?;
                (
                    db,
                    TenantStores::sqlite(data_dir.join("orgs"), checkpoints.clone())?,
                )
            }
            StoreLocation::Postgres { url } => {
                let db = Db::connect_postgres(url.expose(), POSTGRES_CONNECTIONS).await?;
                if let Db::Postgres(pool) = &db {
                    sqlx::query("CREATE SCHEMA IF NOT EXISTS sentinel_control")
                        .execute(pool)
                        .await?;
                }
                let tenants = match &db {
                    Db::Postgres(pool) => TenantStores::postgres(pool.clone(), checkpoints.clone()),
                    Db::Sqlite(..) => return Err(StoreError::Config("engine mismatch".into())),
                };
                (db, tenants)
            }
        };
        migrate::migrate(&control_db, control::SCHEMA, migrate::CONTROL, now).await?;
        let control = ControlStore::new(control_db, checkpoints.clone());
        let mut known = std::collections::HashSet::new();
        for org in control.all_organizations().await? {
            tenants.migrate_existing(org.id, now).await?;
            known.insert(org.id);
        }
        for stray in tenants.strays(&known).await? {
            tracing::warn!(
                tenant_store = %stray,
                "a tenant store belongs to no organization (left by a failed deletion?); remove it once you are sure"
            );
        }
        Ok(Stores {
            control,
            tenants,
            checkpoints,
            audit_writer: audit::writer::AuditWriter::default(),
            telemetry_writer: Arc::default(),
        })
    }

    /// Tenant stores that belong to no organization (see [`Stores::open`], which
    /// warns about them at every start).
    pub async fn stray_tenant_stores(&self) -> Result<Vec<String>, StoreError> {
        let known = self
            .control
            .all_organizations()
            .await?
            .into_iter()
            .map(|o| o.id)
            .collect();
        self.tenants.strays(&known).await
    }

    pub fn control(&self) -> &ControlStore {
        &self.control
    }

    pub fn tenants(&self) -> &TenantStores {
        &self.tenants
    }

    /// The log `log`, for the server's own use: recording, signing, pruning and
    /// verifying. (Readers reach an organization's log with
    /// [`Stores::org_audit_log`].)
    pub async fn audit_log(&self, log: LogId) -> Result<AuditLog, StoreError> {
        match log {
            LogId::Platform => Ok(self.control.audit_log()),
            LogId::Org(org) => Ok(self.tenants.open_existing(org).await?.audit_log()),
        }
    }

    /// The audit log of the organization `access` was granted for.
    pub async fn org_audit_log(&self, access: &TenantAccess) -> Result<AuditLog, StoreError> {
        self.audit_log(LogId::Org(access.org_id())).await
    }

    /// Which logs have entries no checkpoint signs yet.
    pub fn checkpoint_queue(&self) -> &CheckpointQueue {
        &self.checkpoints
    }

    /// Records `event` in `log` through group commit; returns once it is
    /// durable. For events that accompany no change of their own — a change
    /// records its event in its own transaction.
    pub async fn record(&self, log: LogId, event: AuditEvent) -> Result<(), StoreError> {
        let target = self.audit_log(log).await?;
        self.audit_writer.record(&target, event).await
    }

    /// Moves `org`'s queued audit events (see [`audit::outbox`]) into its log.
    pub async fn flush_audit_outbox(&self, org: OrgId) -> Result<(), StoreError> {
        let events = audit::outbox::queued(self.control.db(), org).await?;
        if events.is_empty() {
            return Ok(());
        }
        self.audit_log(LogId::Org(org))
            .await?
            .append(&events)
            .await?;
        let ids: Vec<_> = events.iter().map(|e| e.id).collect();
        audit::outbox::remove(self.control.db(), &ids).await
    }

    /// Moves every organization's queued audit events into its log (at start
    /// and periodically, for events a crash or an error left behind).
    pub async fn flush_all_audit_outboxes(&self) -> Result<(), StoreError> {
        for org in audit::outbox::orgs_waiting(self.control.db()).await? {
            self.flush_audit_outbox(org).await?;
        }
        Ok(())
    }

    /// True when every store answers (for `/readyz`).
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.control.ping().await?;
        self.tenants.ping().await
    }

    /// Creates an organization with `owner` as its first owner: its tenant store is
    /// provisioned first, then the control rows are written in one transaction; if
    /// that fails, the new tenant store is removed again.
    pub async fn create_organization(
        &self,
        name: &OrgName,
        owner: UserId,
        clock: &dyn Clock,
        audit: &AuditContext,
    ) -> Result<Organization, StoreError> {
        let id = OrgId::random();
        let now = clock.now();
        self.tenants.provision(id, now).await?;
        match self
            .control
            .insert_organization(id, name, owner, now, audit)
            .await
        {
            Ok(org) => Ok(org),
            Err(e) => {
                if let Err(cleanup) = self.tenants.destroy(id).await {
                    tracing::error!(org_id = %id, error = %cleanup, "could not remove the tenant store of a failed organization creation");
                }
                Err(e)
            }
        }
    }

    /// Deletes an organization: its control rows (memberships go with it), then its
    /// tenant store. Irreversible. Once the control rows are gone the organization
    /// is gone for everyone; if its data cannot be removed, that is logged and
    /// reported again at every start as a stray tenant store.
    pub async fn delete_organization(
        &self,
        id: OrgId,
        clock: &dyn Clock,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        self.control
            .delete_organization(id, clock.now(), audit)
            .await?;
        self.checkpoints.forget(LogId::Org(id));
        self.audit_writer.forget(LogId::Org(id));
        self.telemetry_writer.forget(id);
        if let Err(e) = self.tenants.destroy(id).await {
            tracing::error!(org_id = %id, error = %e, "the organization is deleted but its tenant store could not be removed");
        }
        Ok(())
    }

    /// Closes every pool; pending writes are committed or rolled back first.
    pub async fn close(&self) {
        self.tenants.close().await;
        self.control.close().await;
    }
}
