//! The control store: platform data that belongs to no single organization —
//! users, organizations, memberships, login sessions, two-factor authentication,
//! the setup token, and the credentials of devices (found before their
//! organization is known).

mod api_tokens;
mod enrollment;
#[cfg(test)]
pub(crate) use enrollment::credential_inline;
mod feeds;
mod lockout;
mod members;
mod orgs;
mod service_accounts;
mod sessions;
mod setup;
mod two_factor;
mod users;

use std::sync::Arc;

use sentinel_core::audit::{AuditEvent, LogId};

use crate::StoreError;
use crate::audit::{AuditLog, CheckpointQueue, append_in};
use crate::backend::{Db, Tx};

pub use api_tokens::{ApiToken, NewApiToken, PresentedToken};
pub use enrollment::{DeviceAccess, DeviceLogin, Enrollment, EnrollmentToken, NewEnrollmentToken};
pub use feeds::{
    AdvisoryRecord, FeedChanges, FeedCounts, FeedImport, FeedKind, KevCatalogVersion, KevRecord,
    NewFeedImport,
};
pub use members::{Member, Membership};
pub use orgs::{Organization, OrganizationWithRole};
pub use service_accounts::ServiceAccount;
pub use sessions::{NewSession, SessionRecord};
pub use setup::SetupOutcome;
pub use two_factor::{LoginChallenge, NewLoginChallenge, TwoFactorRecord};
pub use users::{NewUser, User, UserWithPassword};

/// The PostgreSQL schema of the control store (a label on SQLite).
pub(crate) const SCHEMA: &str = "sentinel_control";

/// Platform data. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct ControlStore {
    db: Db,
    checkpoints: Arc<CheckpointQueue>,
}

impl ControlStore {
    pub(crate) fn new(db: Db, checkpoints: Arc<CheckpointQueue>) -> Self {
        Self { db, checkpoints }
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// The platform audit log.
    pub fn audit_log(&self) -> AuditLog {
        AuditLog::new(
            LogId::Platform,
            self.db.clone(),
            SCHEMA.to_owned(),
            self.checkpoints.clone(),
        )
    }

    /// Records `event` in the platform log inside `tx`, the transaction of the
    /// change it describes.
    pub(crate) async fn audit(&self, tx: &mut Tx, event: AuditEvent) -> Result<(), StoreError> {
        append_in(tx, LogId::Platform, &[event], &self.checkpoints).await?;
        Ok(())
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await
    }

    pub(crate) async fn close(&self) {
        self.db.close().await;
    }

    /// Which engine this store runs on: `sqlite` or `postgres`.
    pub fn engine(&self) -> &'static str {
        match self.db {
            Db::Sqlite(..) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}
