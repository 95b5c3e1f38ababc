//! Per-organization tenant stores, and the [`TenantAccess`] proof without which no
//! code can reach one.
//!
//! SQLite: one database file per organization, `orgs/<org id>.db`, opened on first
//! use and kept in a bounded cache of pools. PostgreSQL: one schema per
//! organization, `sentinel_org_<id as 32 hex digits>`, on the shared pool; every
//! transaction on a tenant store sets its search path to that schema and nothing
//! else, so an unqualified table name can only mean this organization's table.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sentinel_core::{OrgId, Permission, TenantRole, Timestamp};
use sqlx::{AssertSqlSafe, PgPool};

use sentinel_core::audit::{AuditEvent, LogId};

use crate::StoreError;
use crate::audit::{CheckpointQueue, append_in};
use crate::backend::{Db, Tx, with_tx};
use crate::migrate;

/// Proof that the holder was authorized for one permission in one organization.
///
/// The fields are private and the only constructor is crate-private, called by
/// [`crate::Membership::authorize`] — so holding a `TenantAccess` means a
/// membership was read from the control store and its role grants the permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantAccess {
    org_id: OrgId,
    role: TenantRole,
}

impl TenantAccess {
    pub(crate) fn new(org_id: OrgId, role: TenantRole) -> Self {
        Self { org_id, role }
    }

    pub fn org_id(&self) -> OrgId {
        self.org_id
    }

    pub fn role(&self) -> TenantRole {
        self.role
    }
}

/// A member's role does not grant the permission asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("permission {permission} is not granted")]
pub struct PermissionDenied {
    pub permission: Permission,
}

/// The stamp a tenant store carries.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TenantIdentity {
    pub org_id: OrgId,
    pub created_at: Timestamp,
}

/// Access to every organization's tenant store.
#[derive(Debug)]
pub struct TenantStores {
    engine: Engine,
    checkpoints: Arc<CheckpointQueue>,
}

#[derive(Debug)]
enum Engine {
    Sqlite {
        dir: PathBuf,
        pools: Mutex<PoolCache>,
    },
    Postgres {
        pool: PgPool,
    },
}

/// Open SQLite tenant pools, least recently used evicted beyond `CAPACITY`.
#[derive(Debug, Default)]
struct PoolCache {
    pools: HashMap<OrgId, (Db, u64)>,
    uses: u64,
}

impl PoolCache {
    const CAPACITY: usize = 256;

    fn get(&mut self, org: OrgId) -> Option<Db> {
        self.uses += 1;
        let uses = self.uses;
        self.pools.get_mut(&org).map(|(db, last)| {
            *last = uses;
            db.clone()
        })
    }

    /// Adds a pool and returns the one evicted to make room, if any.
    fn insert(&mut self, org: OrgId, db: Db) -> Option<Db> {
        self.uses += 1;
        let mut evicted = None;
        if self.pools.len() >= Self::CAPACITY && !self.pools.contains_key(&org) {
            let oldest = self
                .pools
                .iter()
                .min_by_key(|(_, (_, last))| *last)
                .map(|(id, _)| *id);
            evicted = oldest
                .and_then(|id| self.pools.remove(&id))
                .map(|(db, _)| db);
        }
        self.pools.insert(org, (db, self.uses));
        evicted
    }

    fn remove(&mut self, org: OrgId) -> Option<Db> {
        self.pools.remove(&org).map(|(db, _)| db)
    }
}

/// Connections per SQLite tenant database.
const SQLITE_TENANT_CONNECTIONS: u32 = 4;

/// The PostgreSQL schema of an organization: built from hex digits only, which
/// is what makes it safe to splice into DDL.
fn schema_name(org: OrgId) -> String {
    format!("sentinel_org_{}", org.as_uuid().simple())
}

impl TenantStores {
    pub(crate) fn sqlite(
        dir: PathBuf,
        checkpoints: Arc<CheckpointQueue>,
    ) -> Result<Self, StoreError> {
        create_private_dir(&dir)?;
        Ok(Self {
            engine: Engine::Sqlite {
                dir,
                pools: Mutex::new(PoolCache::default()),
            },
            checkpoints,
        })
    }

    pub(crate) fn postgres(pool: PgPool, checkpoints: Arc<CheckpointQueue>) -> Self {
        Self {
            engine: Engine::Postgres { pool },
            checkpoints,
        }
    }

    fn store(&self, org_id: OrgId, db: Db) -> TenantStore {
        TenantStore {
            org_id,
            db,
            schema: schema_name(org_id),
            checkpoints: self.checkpoints.clone(),
        }
    }

    /// The tenant store that `access` was granted for.
    pub async fn open(&self, access: &TenantAccess) -> Result<TenantStore, StoreError> {
        self.open_existing(access.org_id).await
    }

    pub(crate) async fn open_existing(&self, org: OrgId) -> Result<TenantStore, StoreError> {
        match &self.engine {
            Engine::Sqlite { dir, pools } => {
                if let Some(db) = lock(pools).get(org) {
                    return Ok(self.store(org, db));
                }
                let path = dir.join(format!("{org}.db"));
                if !path.exists() {
                    return Err(StoreError::Corrupt(format!(
                        "the tenant database of organization {org} is missing"
                    )));
                }
                let db = Db::open_sqlite(&path, SQLITE_TENANT_CONNECTIONS, false).await?;
                let store = self.store(org, db.clone());
                store.verify_identity().await?;
                if let Some(evicted) = lock(pools).insert(org, db) {
                    tokio::spawn(async move { evicted.close().await });
                }
                Ok(store)
            }
            Engine::Postgres { pool } => Ok(self.store(org, Db::Postgres(pool.clone()))),
        }
    }

    /// Creates the store of a new organization, migrated and stamped with its id;
    /// on failure, whatever was created is removed again.
    pub(crate) async fn provision(&self, org: OrgId, now: Timestamp) -> Result<(), StoreError> {
        let result = self.try_provision(org, now).await;
        if result.is_err()
            && let Err(cleanup) = self.destroy(org).await
        {
            tracing::error!(org_id = %org, error = %cleanup, "could not remove a half-created tenant store");
        }
        result
    }

    async fn try_provision(&self, org: OrgId, now: Timestamp) -> Result<(), StoreError> {
        let store = match &self.engine {
            Engine::Sqlite { dir, .. } => {
                let db = Db::open_sqlite(
                    &dir.join(format!("{org}.db")),
                    SQLITE_TENANT_CONNECTIONS,
                    true,
                )
                .await?;
                self.store(org, db)
            }
            Engine::Postgres { pool } => {
                let schema = schema_name(org);
                sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
                    .execute(pool)
                    .await?;
                self.store(org, Db::Postgres(pool.clone()))
            }
        };
        migrate::migrate(&store.db, &store.schema, migrate::TENANT, now).await?;
        let mut tx = store.begin().await?;
        with_tx!(&mut tx, c =>
            sqlx::query("INSERT INTO tenant_identity (org_id, created_at) VALUES ($1, $2)")
                .bind(org)
                .bind(now)
                .execute(c)
                .await.map(|r| r.rows_affected())
        )?;
        tx.commit().await?;
        if let Engine::Sqlite { pools, .. } = &self.engine
            && let Some(evicted) = lock(pools).insert(org, store.db)
        {
            tokio::spawn(async move { evicted.close().await });
        }
        Ok(())
    }

    /// Applies pending migrations to an existing organization's store (at start).
    pub(crate) async fn migrate_existing(
        &self,
        org: OrgId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let store = self.open_existing(org).await?;
        migrate::migrate(&store.db, &store.schema, migrate::TENANT, now).await?;
        store.verify_identity().await
    }

    /// Removes an organization's store and everything in it.
    pub(crate) async fn destroy(&self, org: OrgId) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite { dir, pools } => {
                let cached = lock(pools).remove(org);
                if let Some(db) = cached {
                    db.close().await;
                }
                for suffix in ["db", "db-wal", "db-shm"] {
                    let path = dir.join(format!("{org}.{suffix}"));
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(StoreError::Io(format!(
                                "removing {}: {e}",
                                path.display()
                            )));
                        }
                    }
                }
                Ok(())
            }
            Engine::Postgres { pool } => {
                let schema = schema_name(org);
                sqlx::query(AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                )))
                .execute(pool)
                .await?;
                Ok(())
            }
        }
    }

    /// Tenant stores that belong to no organization in `known` (left behind by a
    /// deletion whose cleanup failed, or copied in by hand), by file or schema name.
    pub(crate) async fn strays(&self, known: &HashSet<OrgId>) -> Result<Vec<String>, StoreError> {
        let mut strays = Vec::new();
        match &self.engine {
            Engine::Sqlite { dir, .. } => {
                let entries = std::fs::read_dir(dir)
                    .map_err(|e| StoreError::Io(format!("listing {}: {e}", dir.display())))?;
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let Some(stem) = name.strip_suffix(".db") else {
                        continue;
                    };
                    if !stem.parse::<OrgId>().is_ok_and(|id| known.contains(&id)) {
                        strays.push(entry.path().display().to_string());
                    }
                }
            }
            Engine::Postgres { pool } => {
                let schemas: Vec<String> = sqlx::query_scalar(
                    "SELECT schema_name::TEXT FROM information_schema.schemata WHERE schema_name LIKE 'sentinel\\_org\\_%'",
                )
                .fetch_all(pool)
                .await?;
                let known: HashSet<String> = known.iter().map(|id| schema_name(*id)).collect();
                strays.extend(schemas.into_iter().filter(|s| !known.contains(s)));
            }
        }
        strays.sort();
        Ok(strays)
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite { dir, .. } => {
                if dir.is_dir() {
                    Ok(())
                } else {
                    Err(StoreError::Io("the tenant directory is missing".into()))
                }
            }
            Engine::Postgres { .. } => Ok(()),
        }
    }

    pub(crate) async fn close(&self) {
        if let Engine::Sqlite { pools, .. } = &self.engine {
            let all: Vec<Db> = lock(pools).pools.drain().map(|(_, (db, _))| db).collect();
            for db in all {
                db.close().await;
            }
        }
    }
}

fn lock(pools: &Mutex<PoolCache>) -> std::sync::MutexGuard<'_, PoolCache> {
    pools
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn create_private_dir(dir: &std::path::Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::Io(format!("creating {}: {e}", dir.display())))
}

/// One organization's data. Obtained only through [`TenantStores::open`]. Every
/// query goes through [`TenantStore::begin`], which scopes it to this
/// organization's schema.
#[derive(Debug, Clone)]
pub struct TenantStore {
    org_id: OrgId,
    db: Db,
    schema: String,
    checkpoints: Arc<CheckpointQueue>,
}

impl TenantStore {
    pub fn org_id(&self) -> OrgId {
        self.org_id
    }

    /// Begins a transaction scoped to this organization's schema.
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        let mut tx = self.db.begin().await?;
        tx.use_schema(&self.schema).await?;
        Ok(tx)
    }

    /// The organization's database, for a statement that needs no transaction.
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Begins a read-only transaction scoped to this organization's schema.
    pub(crate) async fn read(&self) -> Result<Tx, StoreError> {
        let mut tx = self.db.begin_read().await?;
        tx.use_schema(&self.schema).await?;
        Ok(tx)
    }

    /// This organization's audit log.
    pub(crate) fn audit_log(&self) -> crate::AuditLog {
        crate::AuditLog::new(
            LogId::Org(self.org_id),
            self.db.clone(),
            self.schema.clone(),
            self.checkpoints.clone(),
        )
    }

    /// Records `events` in this organization's log inside `tx`, the
    /// transaction of the change they describe.
    pub(crate) async fn audit(&self, tx: &mut Tx, events: &[AuditEvent]) -> Result<(), StoreError> {
        append_in(tx, LogId::Org(self.org_id), events, &self.checkpoints).await?;
        Ok(())
    }

    /// The stamp written when this store was created.
    pub async fn identity(&self) -> Result<TenantIdentity, StoreError> {
        let mut tx = self.begin().await?;
        let identity: Option<TenantIdentity> = with_tx!(&mut tx, c =>
            sqlx::query_as("SELECT org_id, created_at FROM tenant_identity").fetch_optional(c).await
        )?;
        tx.commit().await?;
        identity.ok_or_else(|| {
            StoreError::Corrupt(format!("tenant store of {} has no identity", self.org_id))
        })
    }

    /// Refuses a store stamped for another organization (a swapped or copied file).
    async fn verify_identity(&self) -> Result<(), StoreError> {
        let identity = self.identity().await?;
        if identity.org_id != self.org_id {
            return Err(StoreError::Corrupt(format!(
                "the tenant store of organization {} belongs to organization {}",
                self.org_id, identity.org_id
            )));
        }
        Ok(())
    }

    /// Checks that the store answers. Like every tenant query it runs in a
    /// transaction scoped to this organization's schema: on PostgreSQL a query on
    /// the bare pool would see the control schema instead.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        with_tx!(&mut tx, c => sqlx::query("SELECT 1").execute(c).await.map(|r| r.rows_affected()))?;
        tx.commit().await
    }
}
