//! The control store: platform data that belongs to no single organization —
//! users, organizations, memberships, login sessions and the setup token.

mod members;
mod orgs;
mod sessions;
mod setup;
mod users;

use crate::StoreError;
use crate::backend::Db;

pub use members::{Member, Membership};
pub use orgs::{Organization, OrganizationWithRole};
pub use sessions::{NewSession, SessionRecord};
pub use setup::SetupOutcome;
pub use users::{NewUser, User, UserWithPassword};

/// The PostgreSQL schema of the control store (a label on SQLite).
pub(crate) const SCHEMA: &str = "sentinel_control";

/// Platform data. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct ControlStore {
    db: Db,
}

impl ControlStore {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
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
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}
