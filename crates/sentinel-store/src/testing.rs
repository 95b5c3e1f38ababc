//! Test support (feature `testing`): throwaway PostgreSQL databases, so that every
//! test run — and every test in it — starts from an empty database.
//!
//! Tests ask [`postgres_admin_url`] whether PostgreSQL is available: it reads
//! `SENTINEL_TEST_DATABASE_URL`. When that is unset the PostgreSQL variants are
//! skipped with a printed notice, except under `CI=true`, where they fail.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

/// The admin URL of the test PostgreSQL server, or `None` (with a notice) when the
/// PostgreSQL variants should be skipped. Under `CI=true` a missing URL is an error.
pub fn postgres_admin_url(test: &str) -> Result<Option<String>, String> {
    match std::env::var("SENTINEL_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Ok(Some(url)),
        _ if std::env::var("CI").as_deref() == Ok("true") => Err(format!(
            "{test}: SENTINEL_TEST_DATABASE_URL is not set, and CI=true requires the PostgreSQL suite"
        )),
        _ => {
            eprintln!("{test}: skipped on PostgreSQL (set SENTINEL_TEST_DATABASE_URL to run it)");
            Ok(None)
        }
    }
}

/// A database created for one test, dropped by [`TestDatabase::drop_database`].
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database with a random name on the server at `admin_url`.
    pub async fn create(admin_url: &str) -> Result<TestDatabase, sqlx::Error> {
        let name = format!("sentinel_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnectOptions::from_str(admin_url)?.connect().await?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        let url = replace_database(admin_url, &name);
        Ok(TestDatabase {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }

    /// The URL of the new database.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn drop_database(self) -> Result<(), sqlx::Error> {
        let mut admin = PgConnectOptions::from_str(&self.admin_url)?
            .connect()
            .await?;
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await?;
        admin.close().await
    }
}

/// `postgres://u@h:p/old?x` with `old` replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let prefix = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        use super::replace_database as r;
        assert_eq!(
            r("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            r("postgres://h/test?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
        assert_eq!(r("postgres://h", "x"), "postgres://h/x");
    }
}
