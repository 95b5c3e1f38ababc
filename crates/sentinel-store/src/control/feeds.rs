//! Vulnerability feeds: OSV advisories and the CISA KEV catalog, imported from
//! files and shared read-only by every organization, and the record of each
//! import. Which record wins is decided by the caller (it can read OSV
//! timestamps); the store only refuses, in SQL, to replace an advisory with an
//! older one, so two imports racing cannot regress a record.

use std::collections::HashMap;

use sentinel_core::Timestamp;
use sentinel_core::audit::{AuditAction, AuditContext, Entity, EntityType};
use uuid::Uuid;

use super::ControlStore;
use crate::StoreError;
use crate::backend::{Tx, with_db, with_tx};

/// What a feed file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FeedKind {
    /// OSV advisories.
    Osv,
    /// The CISA Known Exploited Vulnerabilities catalog.
    Kev,
}

impl FeedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Osv => "osv",
            FeedKind::Kev => "kev",
        }
    }

    fn parse(text: &str) -> Result<FeedKind, StoreError> {
        match text {
            "osv" => Ok(FeedKind::Osv),
            "kev" => Ok(FeedKind::Kev),
            other => Err(StoreError::Corrupt(format!("unknown feed kind {other:?}"))),
        }
    }
}

/// How many records of an import did what.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FeedCounts {
    /// Records read (malformed ones included).
    pub records: i64,
    pub added: i64,
    pub updated: i64,
    /// Withdrawn advisories, or KEV entries no longer in the catalog.
    pub withdrawn: i64,
    /// Records the store already had at the same or a newer version.
    pub unchanged: i64,
    /// Records that could not be read and were skipped.
    pub malformed: i64,
}

/// One import of one feed file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FeedImport {
    pub id: Uuid,
    /// Imports are numbered in the order they happened.
    pub seq: i64,
    pub kind: FeedKind,
    /// The file name as given.
    pub source: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    #[schema(value_type = String, format = DateTime)]
    pub imported_at: Timestamp,
    pub imported_by: String,
    #[serde(flatten)]
    pub counts: FeedCounts,
}

/// An advisory to store: its id, `modified` as a sortable key, and its OSV JSON.
#[derive(Debug, Clone)]
pub struct AdvisoryRecord {
    pub id: String,
    /// `modified` in a form that sorts as the timestamps do.
    pub modified_key: String,
    pub withdrawn: bool,
    pub record: String,
}

/// A KEV entry to store: its CVE id and its JSON.
#[derive(Debug, Clone)]
pub struct KevRecord {
    pub cve_id: String,
    pub entry: String,
}

/// The KEV catalog held: its version and release time, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KevCatalogVersion {
    pub catalog_version: String,
    pub date_released: String,
}

/// What a new import is: the file, who imported it, and what it changed.
#[derive(Debug, Clone)]
pub struct NewFeedImport {
    pub kind: FeedKind,
    pub source: String,
    pub sha256: String,
    pub counts: FeedCounts,
}

/// Advisories and KEV entries changed by imports after a given one.
#[derive(Debug, Clone, Default)]
pub struct FeedChanges {
    /// The newest import included.
    pub generation: i64,
    /// OSV JSON of every advisory changed (withdrawn ones included).
    pub advisories: Vec<String>,
    /// Whether any KEV import happened (the whole catalog is then reloaded).
    pub kev_changed: bool,
}

const GENERATION: &str = "SELECT MAX(seq) FROM feed_imports WHERE added + updated + withdrawn > 0";

const FEED_IMPORT_COLUMNS: &str = "id, seq, kind, source, sha256, imported_at, imported_by, \
     records, added, updated, withdrawn, unchanged, malformed";

#[derive(sqlx::FromRow)]
struct FeedImportRow {
    id: Uuid,
    seq: i64,
    kind: String,
    source: String,
    sha256: String,
    imported_at: Timestamp,
    imported_by: String,
    records: i64,
    added: i64,
    updated: i64,
    withdrawn: i64,
    unchanged: i64,
    malformed: i64,
}

impl FeedImportRow {
    fn into_import(self) -> Result<FeedImport, StoreError> {
        Ok(FeedImport {
            id: self.id,
            seq: self.seq,
            kind: FeedKind::parse(&self.kind)?,
            source: self.source,
            sha256: self.sha256,
            imported_at: self.imported_at,
            imported_by: self.imported_by,
            counts: FeedCounts {
                records: self.records,
                added: self.added,
                updated: self.updated,
                withdrawn: self.withdrawn,
                unchanged: self.unchanged,
                malformed: self.malformed,
            },
        })
    }
}

impl ControlStore {
    /// The import of a file with this SHA-256 and kind, if there was one.
    pub async fn feed_import_of(
        &self,
        kind: FeedKind,
        sha256: &str,
    ) -> Result<Option<FeedImport>, StoreError> {
        let sql = format!(
            "SELECT {FEED_IMPORT_COLUMNS} FROM feed_imports WHERE kind = $1 AND sha256 = $2
             ORDER BY seq LIMIT 1"
        );
        let row: Option<FeedImportRow> = with_db!(&self.db, pool =>
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(kind.as_str()).bind(sha256).fetch_optional(pool).await
        )?;
        row.map(FeedImportRow::into_import).transpose()
    }

    /// The most recent imports, newest first.
    pub async fn feed_imports(&self, limit: i64) -> Result<Vec<FeedImport>, StoreError> {
        let sql =
            format!("SELECT {FEED_IMPORT_COLUMNS} FROM feed_imports ORDER BY seq DESC LIMIT $1");
        let rows: Vec<FeedImportRow> = with_db!(&self.db, pool =>
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(pool).await
        )?;
        rows.into_iter().map(FeedImportRow::into_import).collect()
    }

    /// The seq of the newest import that changed anything (0 before the
    /// first): the feed generation findings are matched against.
    pub async fn feed_generation(&self) -> Result<i64, StoreError> {
        let seq: Option<i64> = with_db!(&self.db, pool =>
            sqlx::query_scalar(GENERATION).fetch_one(pool).await
        )?;
        Ok(seq.unwrap_or(0))
    }

    /// Every advisory's sortable `modified` key and whether it is withdrawn.
    pub async fn advisory_versions(&self) -> Result<HashMap<String, (String, bool)>, StoreError> {
        let rows: Vec<(String, String, bool)> = with_db!(&self.db, pool =>
            sqlx::query_as("SELECT id, modified, withdrawn FROM advisories").fetch_all(pool).await
        )?;
        Ok(rows
            .into_iter()
            .map(|(id, modified, withdrawn)| (id, (modified, withdrawn)))
            .collect())
    }

    /// The KEV catalog held, if one was imported.
    pub async fn kev_catalog_version(&self) -> Result<Option<KevCatalogVersion>, StoreError> {
        let row: Option<(String, String)> = with_db!(&self.db, pool =>
            sqlx::query_as("SELECT catalog_version, date_released FROM kev_catalog WHERE id = 1")
                .fetch_optional(pool)
                .await
        )?;
        Ok(
            row.map(|(catalog_version, date_released)| KevCatalogVersion {
                catalog_version,
                date_released,
            }),
        )
    }

    /// The advisories changed by imports after `after` (all of them for 0),
    /// and the generation they bring the reader to.
    pub async fn feed_changes_since(&self, after: i64) -> Result<FeedChanges, StoreError> {
        let mut tx = self.db.begin_read().await?;
        let generation: Option<i64> = with_tx!(&mut tx, c =>
            sqlx::query_scalar(GENERATION).fetch_one(c).await
        )?;
        let generation = generation.unwrap_or(0);
        let advisories: Vec<String> = with_tx!(&mut tx, c =>
            sqlx::query_scalar(
                "SELECT record FROM advisories WHERE import_seq > $1 AND import_seq <= $2",
            )
            .bind(after)
            .bind(generation)
            .fetch_all(c)
            .await
        )?;
        let kev_changed: Option<i64> = with_tx!(&mut tx, c =>
            sqlx::query_scalar(
                "SELECT seq FROM feed_imports WHERE kind = 'kev' AND seq > $1 AND seq <= $2 LIMIT 1",
            )
            .bind(after)
            .bind(generation)
            .fetch_optional(c)
            .await
        )?;
        tx.commit().await?;
        Ok(FeedChanges {
            generation,
            advisories,
            kev_changed: kev_changed.is_some(),
        })
    }

    /// Every KEV entry's JSON.
    pub async fn kev_entries(&self) -> Result<Vec<String>, StoreError> {
        let entries = with_db!(&self.db, pool =>
            sqlx::query_scalar("SELECT entry FROM kev_entries ORDER BY cve_id").fetch_all(pool).await
        )?;
        Ok(entries)
    }

    /// Stores `changed` advisories (each only over an older copy) and records
    /// the import, in one transaction. Returns the import as recorded; its
    /// counts are `counts` with records that lost a race moved to unchanged.
    pub async fn import_advisories(
        &self,
        import: NewFeedImport,
        changed: &[AdvisoryRecord],
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<FeedImport, StoreError> {
        let mut tx = self.db.begin().await?;
        let seq = next_import_seq(&mut tx).await?;
        let mut lost = 0;
        for record in changed {
            let stored = with_tx!(&mut tx, c =>
                sqlx::query(
                    "INSERT INTO advisories (id, modified, withdrawn, record, import_seq)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (id) DO UPDATE SET modified = excluded.modified,
                         withdrawn = excluded.withdrawn, record = excluded.record,
                         import_seq = excluded.import_seq
                     WHERE advisories.modified < excluded.modified",
                )
                .bind(&record.id)
                .bind(&record.modified_key)
                .bind(record.withdrawn)
                .bind(&record.record)
                .bind(seq)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
            )?;
            if stored == 0 {
                lost += 1;
            }
        }
        let mut counts = import.counts;
        if lost > 0 {
            // Another import stored a newer copy meanwhile; attribute the loss
            // to updates first (the common case), then to the rest.
            for count in [
                &mut counts.updated,
                &mut counts.added,
                &mut counts.withdrawn,
            ] {
                let taken = (*count).min(lost);
                *count -= taken;
                lost -= taken;
                counts.unchanged += taken;
            }
        }
        let recorded = record_import(&mut tx, seq, import, counts, now, audit).await?;
        self.audit(&mut tx, import_event(&recorded, now, audit))
            .await?;
        tx.commit().await?;
        Ok(recorded)
    }

    /// Replaces the KEV catalog with `entries` (a catalog is a whole snapshot:
    /// entries it no longer lists are removed) and records the import.
    pub async fn import_kev(
        &self,
        import: NewFeedImport,
        version: &KevCatalogVersion,
        entries: &[KevRecord],
        now: Timestamp,
        audit: &AuditContext,
    ) -> Result<FeedImport, StoreError> {
        let mut tx = self.db.begin().await?;
        let seq = next_import_seq(&mut tx).await?;
        let held: Vec<(String, String)> = with_tx!(&mut tx, c =>
            sqlx::query_as("SELECT cve_id, entry FROM kev_entries").fetch_all(c).await
        )?;
        let held: HashMap<String, String> = held.into_iter().collect();
        let mut counts = FeedCounts {
            records: import.counts.records,
            malformed: import.counts.malformed,
            ..FeedCounts::default()
        };
        for entry in entries {
            match held.get(&entry.cve_id) {
                Some(old) if *old == entry.entry => {
                    counts.unchanged += 1;
                    continue;
                }
                Some(_) => counts.updated += 1,
                None => counts.added += 1,
            }
            with_tx!(&mut tx, c =>
                sqlx::query(
                    "INSERT INTO kev_entries (cve_id, entry, import_seq) VALUES ($1, $2, $3)
                     ON CONFLICT (cve_id) DO UPDATE SET entry = excluded.entry, import_seq = excluded.import_seq",
                )
                .bind(&entry.cve_id)
                .bind(&entry.entry)
                .bind(seq)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
            )?;
        }
        let listed: std::collections::HashSet<&str> =
            entries.iter().map(|e| e.cve_id.as_str()).collect();
        for cve_id in held.keys().filter(|id| !listed.contains(id.as_str())) {
            counts.withdrawn += 1;
            with_tx!(&mut tx, c =>
                sqlx::query("DELETE FROM kev_entries WHERE cve_id = $1")
                    .bind(cve_id)
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected())
            )?;
        }
        with_tx!(&mut tx, c =>
            sqlx::query(
                "INSERT INTO kev_catalog (id, catalog_version, date_released, import_seq) VALUES (1, $1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET catalog_version = excluded.catalog_version,
                     date_released = excluded.date_released, import_seq = excluded.import_seq",
            )
            .bind(&version.catalog_version)
            .bind(&version.date_released)
            .bind(seq)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        )?;
        let recorded = record_import(&mut tx, seq, import, counts, now, audit).await?;
        self.audit(&mut tx, import_event(&recorded, now, audit))
            .await?;
        tx.commit().await?;
        Ok(recorded)
    }
}

/// The seq of the import being written. Writers are serialized (SQLite's
/// single writer; on PostgreSQL `seq` is unique, so a concurrent import fails
/// cleanly instead of sharing a number).
async fn next_import_seq(tx: &mut Tx) -> Result<i64, StoreError> {
    tx.serialize_on("feed-import").await?;
    let seq: Option<i64> = with_tx!(tx, c =>
        sqlx::query_scalar("SELECT MAX(seq) FROM feed_imports").fetch_one(c).await
    )?;
    Ok(seq.unwrap_or(0) + 1)
}

async fn record_import(
    tx: &mut Tx,
    seq: i64,
    import: NewFeedImport,
    counts: FeedCounts,
    now: Timestamp,
    audit: &AuditContext,
) -> Result<FeedImport, StoreError> {
    let recorded = FeedImport {
        id: Uuid::now_v7(),
        seq,
        kind: import.kind,
        source: import.source,
        sha256: import.sha256,
        imported_at: now,
        imported_by: audit.actor.name.clone(),
        counts,
    };
    with_tx!(tx, c =>
        sqlx::query(
            "INSERT INTO feed_imports (id, seq, kind, source, sha256, imported_at, imported_by,
                 records, added, updated, withdrawn, unchanged, malformed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(recorded.id)
        .bind(seq)
        .bind(recorded.kind.as_str())
        .bind(&recorded.source)
        .bind(&recorded.sha256)
        .bind(now)
        .bind(&recorded.imported_by)
        .bind(counts.records)
        .bind(counts.added)
        .bind(counts.updated)
        .bind(counts.withdrawn)
        .bind(counts.unchanged)
        .bind(counts.malformed)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    )?;
    Ok(recorded)
}

fn import_event(
    import: &FeedImport,
    now: Timestamp,
    audit: &AuditContext,
) -> sentinel_core::audit::AuditEvent {
    audit.success(
        now,
        AuditAction::FeedImported,
        Entity::new(EntityType::Feed, import.id),
        serde_json::json!({
            "kind": import.kind.as_str(),
            "source": import.source,
            "sha256": import.sha256,
            "seq": import.seq,
            "records": import.counts.records,
            "added": import.counts.added,
            "updated": import.counts.updated,
            "withdrawn": import.counts.withdrawn,
            "unchanged": import.counts.unchanged,
            "malformed": import.counts.malformed,
        }),
    )
}
