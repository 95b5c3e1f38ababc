//! Embedded schema migrations, applied at start to the control store and to every
//! tenant store.
//!
//! Each migration is one SQL file in `migrations/{control,tenant}/`, written in the
//! portable dialect; a migration that needs engine-specific SQL carries one text per
//! engine. Applied migrations are recorded with a SHA-256 checksum: a database that
//! was migrated with a different text, or by a newer Sentinel, is refused rather
//! than guessed at.

use sha2::{Digest, Sha256};
use sqlx::AssertSqlSafe;

use crate::StoreError;
use crate::backend::{Db, Tx, with_tx};
use sentinel_core::Timestamp;

/// One schema step.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// A migration whose SQL is the same on both engines.
macro_rules! portable {
    ($version:literal, $name:literal, $file:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!($file),
            postgres: include_str!($file),
        }
    };
}

/// A migration with one text per engine.
macro_rules! per_engine {
    ($version:literal, $name:literal, $sqlite:literal, $postgres:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!($sqlite),
            postgres: include_str!($postgres),
        }
    };
}

pub(crate) const CONTROL: &[Migration] = &[
    portable!(1, "identity", "../migrations/control/0001_identity.sql"),
    per_engine!(
        2,
        "audit",
        "../migrations/audit/sqlite.sql",
        "../migrations/audit/postgres.sql"
    ),
    portable!(
        3,
        "audit outbox",
        "../migrations/control/0003_audit_outbox.sql"
    ),
    portable!(4, "audit indexes", "../migrations/audit/indexes.sql"),
    portable!(
        5,
        "device credentials",
        "../migrations/control/0005_device_credentials.sql"
    ),
    portable!(
        6,
        "account security",
        "../migrations/control/0006_account_security.sql"
    ),
    portable!(
        7,
        "two-factor authentication",
        "../migrations/control/0007_two_factor.sql"
    ),
    portable!(
        8,
        "vulnerability feeds",
        "../migrations/control/0008_feeds.sql"
    ),
];

pub(crate) const TENANT: &[Migration] = &[
    portable!(1, "identity", "../migrations/tenant/0001_identity.sql"),
    per_engine!(
        2,
        "audit",
        "../migrations/audit/sqlite.sql",
        "../migrations/audit/postgres.sql"
    ),
    portable!(3, "audit indexes", "../migrations/audit/indexes.sql"),
    portable!(4, "devices", "../migrations/tenant/0004_devices.sql"),
    portable!(5, "findings", "../migrations/tenant/0005_findings.sql"),
    portable!(
        6,
        "package versions",
        "../migrations/tenant/0006_package_versions.sql"
    ),
    portable!(
        7,
        "lorawan devices, profiles, integrations and events",
        "../migrations/tenant/0007_lorawan.sql"
    ),
];

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    checksum BYTEA NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
)";

impl Migration {
    fn sql(&self, tx: &Tx) -> &'static str {
        match tx {
            Tx::Sqlite(..) => self.sqlite,
            Tx::Postgres(_) => self.postgres,
        }
    }

    fn checksum(sql: &str) -> Vec<u8> {
        Sha256::digest(sql.as_bytes()).to_vec()
    }
}

/// Brings one store (the database, or on PostgreSQL the `schema` in it) up to the
/// newest of `migrations`. Each step runs in its own transaction together with its
/// ledger entry; on PostgreSQL an advisory lock keeps two starting servers from
/// migrating the same schema at once (SQLite's `BEGIN IMMEDIATE` does the same).
pub(crate) async fn migrate(
    db: &Db,
    schema: &str,
    migrations: &[Migration],
    now: Timestamp,
) -> Result<(), StoreError> {
    for migration in migrations {
        let mut tx = db.begin().await?;
        tx.use_schema(schema).await?;
        tx.serialize_on(&format!("migrate:{schema}")).await?;
        with_tx!(&mut tx, c => sqlx::raw_sql(CREATE_LEDGER).execute(c).await.map(|r| r.rows_affected()))?;
        let applied: Vec<(i64, Vec<u8>)> = with_tx!(&mut tx, c =>
            sqlx::query_as("SELECT version, checksum FROM schema_migrations ORDER BY version")
                .fetch_all(c)
                .await
        )?;
        check_history(&applied, migrations, schema)?;
        let sql = migration.sql(&tx);
        let checksum = Migration::checksum(sql);
        if applied.iter().any(|(v, _)| *v == migration.version) {
            continue;
        }
        with_tx!(&mut tx, c => sqlx::raw_sql(AssertSqlSafe(sql)).execute(c).await.map(|r| r.rows_affected()))?;
        with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(migration.version)
            .bind(migration.name)
            .bind(checksum)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected())
        )?;
        tx.commit().await?;
        tracing::info!(
            store = schema,
            version = migration.version,
            name = migration.name,
            "applied migration"
        );
    }
    Ok(())
}

/// Refuses a history this binary does not recognise: an applied version it does not
/// know (a newer Sentinel migrated this database) or one whose text has changed.
fn check_history(
    applied: &[(i64, Vec<u8>)],
    migrations: &[Migration],
    schema: &str,
) -> Result<(), StoreError> {
    for (version, checksum) in applied {
        let Some(known) = migrations.iter().find(|m| m.version == *version) else {
            return Err(StoreError::Migration(format!(
                "store {schema} has schema version {version}, which this Sentinel does not know; \
                 it was upgraded by a newer release"
            )));
        };
        let matches_an_engine = Migration::checksum(known.sqlite) == *checksum
            || Migration::checksum(known.postgres) == *checksum;
        if !matches_an_engine {
            return Err(StoreError::Migration(format!(
                "store {schema}: migration {version} ({}) was applied with different SQL",
                known.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_from_one() {
        for set in [CONTROL, TENANT] {
            for (i, m) in set.iter().enumerate() {
                assert_eq!(m.version, i as i64 + 1, "{}", m.name);
            }
        }
    }

    #[test]
    fn unknown_or_edited_history_is_refused() {
        let known = Migration::checksum(CONTROL[0].sqlite);
        assert!(check_history(&[(1, known.clone())], CONTROL, "control").is_ok());
        assert!(check_history(&[(1, vec![0; 32])], CONTROL, "control").is_err());
        assert!(check_history(&[(1, known), (99, vec![0; 32])], CONTROL, "control").is_err());
    }
}
