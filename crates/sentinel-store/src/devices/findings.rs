//! Vulnerability findings: which advisories affect which packages on which
//! devices. Sentinel's matcher writes them through a [`FindingsWriter`]
//! (platform code, no member involved); members read them through
//! [`TenantStore`], filtered, paged, and grouped by advisory or by package.
//! Revoked devices' findings are kept but never shown.

use std::collections::HashMap;

use sentinel_core::{OrgId, Timestamp};
use sentinel_protocol::inventory::{Package, PackageManager};
use uuid::Uuid;

use crate::audit::like_pattern;
use crate::backend::with_tx;
use crate::tenant::TenantStore;
use crate::{StoreError, Stores};

/// One advisory affecting one package on one device, as the matcher found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFinding {
    pub advisory_id: String,
    /// The name advisories use (the source package on Debian, Ubuntu, Alpine).
    pub package: String,
    /// The installed binary packages built from it.
    pub binaries: Vec<String>,
    pub installed_version: String,
    pub fixed_version: Option<String>,
    /// The device's release, such as `Debian:12`.
    pub release: String,
    /// `critical`, `high`, `medium`, `low` or `unknown`.
    pub severity: String,
    /// Orders severities: 4 critical … 0 unknown.
    pub severity_rank: i32,
    /// CVE ids first, then the other ids of the advisory.
    pub aliases: Vec<String>,
    pub summary: String,
    /// When CISA added it to the KEV catalog (`YYYY-MM-DD`), if it is there.
    pub kev_date_added: Option<String>,
    /// CISA's remediation due date, if it is in the KEV catalog.
    pub kev_due_date: Option<String>,
}

/// A finding as members see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Finding {
    pub device_id: Uuid,
    pub hostname: String,
    pub advisory_id: String,
    pub package: String,
    pub binaries: Vec<String>,
    pub installed_version: String,
    pub fixed_version: Option<String>,
    pub release: String,
    pub severity: String,
    pub aliases: Vec<String>,
    pub summary: String,
    /// In CISA's Known Exploited Vulnerabilities catalog.
    pub kev: bool,
    pub kev_date_added: Option<String>,
    pub kev_due_date: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub first_seen_at: Timestamp,
}

/// Which findings to list.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    pub device_id: Option<Uuid>,
    /// Only those in (true) or not in (false) the KEV catalog.
    pub kev: Option<bool>,
    /// Only this severity.
    pub severity: Option<String>,
    /// Text in the advisory id, its aliases, the package or the hostname.
    pub text: Option<String>,
}

/// Where a page of findings starts: after this finding in the listing order
/// (most severe first, then device, advisory, package).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FindingCursor {
    pub severity_rank: i32,
    pub device_id: Uuid,
    pub advisory_id: String,
    pub package: String,
}

/// Findings of one advisory across the organization.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct AdvisoryGroup {
    pub advisory_id: String,
    pub severity: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub kev: bool,
    pub kev_date_added: Option<String>,
    pub kev_due_date: Option<String>,
    /// Distinct devices affected.
    pub devices: i64,
    /// One affected package (the first by name) and how many there are.
    pub package: String,
    pub packages: i64,
    /// Findings with no fixed version known.
    pub unfixed: i64,
}

/// Findings of one package across the organization.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PackageGroup {
    pub package: String,
    /// The most severe of its findings.
    pub severity: String,
    pub advisories: i64,
    pub devices: i64,
    pub kev_advisories: i64,
}

const SEVERITIES: [&str; 5] = ["unknown", "low", "medium", "high", "critical"];

fn severity_of_rank(rank: i32) -> String {
    usize::try_from(rank)
        .ok()
        .and_then(|r| SEVERITIES.get(r))
        .unwrap_or(&"unknown")
        .to_string()
}

fn json_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn to_json(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[derive(sqlx::FromRow)]
struct FindingRow {
    device_id: Uuid,
    hostname: String,
    advisory_id: String,
    package: String,
    binaries: String,
    installed_version: String,
    fixed_version: Option<String>,
    release: String,
    severity: String,
    aliases: String,
    summary: String,
    kev_date_added: Option<String>,
    kev_due_date: Option<String>,
    first_seen_at: Timestamp,
    severity_rank: i32,
}

impl FindingRow {
    fn cursor(&self) -> FindingCursor {
        FindingCursor {
            severity_rank: self.severity_rank,
            device_id: self.device_id,
            advisory_id: self.advisory_id.clone(),
            package: self.package.clone(),
        }
    }

    fn into_finding(self) -> Finding {
        Finding {
            device_id: self.device_id,
            hostname: self.hostname,
            advisory_id: self.advisory_id,
            package: self.package,
            binaries: json_list(&self.binaries),
            installed_version: self.installed_version,
            fixed_version: self.fixed_version,
            release: self.release,
            severity: self.severity,
            aliases: json_list(&self.aliases),
            summary: self.summary,
            kev: self.kev_due_date.is_some(),
            kev_date_added: self.kev_date_added,
            kev_due_date: self.kev_due_date,
            first_seen_at: self.first_seen_at,
        }
    }
}

/// Adds `filter`'s conditions (findings `f` joined with devices `d`).
fn push_filter<DB: sqlx::Database>(q: &mut sqlx::QueryBuilder<DB>, filter: &FindingFilter)
where
    for<'t> Uuid: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    q.push(" WHERE d.revoked_at IS NULL");
    if let Some(device) = filter.device_id {
        q.push(" AND f.device_id = ").push_bind(device);
    }
    match filter.kev {
        Some(true) => {
            q.push(" AND f.kev_due_date IS NOT NULL");
        }
        Some(false) => {
            q.push(" AND f.kev_due_date IS NULL");
        }
        None => {}
    }
    if let Some(severity) = &filter.severity {
        q.push(" AND f.severity = ").push_bind(severity.clone());
    }
    if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
        let pattern = like_pattern(text);
        q.push(" AND (LOWER(f.advisory_id) LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\'");
        q.push(" OR LOWER(f.aliases) LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\'");
        q.push(" OR LOWER(f.package) LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\'");
        q.push(" OR LOWER(d.hostname) LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
}

impl TenantStore {
    /// Up to `limit` findings after `after`, most severe first, and the
    /// cursor of the next page if there is one.
    pub async fn findings(
        &self,
        filter: &FindingFilter,
        after: Option<&FindingCursor>,
        limit: i64,
    ) -> Result<(Vec<Finding>, Option<FindingCursor>), StoreError> {
        let mut tx = self.read().await?;
        let mut rows: Vec<FindingRow> = with_tx!(&mut tx, c => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT f.device_id, d.hostname, f.advisory_id, f.package, f.binaries, f.installed_version,
                        f.fixed_version, f.release, f.severity, f.aliases, f.summary, f.kev_date_added,
                        f.kev_due_date, f.first_seen_at, f.severity_rank
                 FROM findings f JOIN devices d ON d.id = f.device_id",
            );
            push_filter(&mut q, filter);
            if let Some(after) = after {
                q.push(" AND (f.severity_rank < ").push_bind(after.severity_rank);
                q.push(" OR (f.severity_rank = ").push_bind(after.severity_rank);
                q.push(" AND (f.device_id > ").push_bind(after.device_id);
                q.push(" OR (f.device_id = ").push_bind(after.device_id);
                q.push(" AND (f.advisory_id > ").push_bind(after.advisory_id.clone());
                q.push(" OR (f.advisory_id = ").push_bind(after.advisory_id.clone());
                q.push(" AND f.package > ").push_bind(after.package.clone());
                q.push("))))))");
            }
            q.push(" ORDER BY f.severity_rank DESC, f.device_id, f.advisory_id, f.package LIMIT ")
                .push_bind(limit + 1);
            q.build_query_as().fetch_all(c).await
        })?;
        tx.commit().await?;
        let next = if rows.len() as i64 > limit {
            rows.truncate(usize::try_from(limit).unwrap_or(0));
            rows.last().map(FindingRow::cursor)
        } else {
            None
        };
        Ok((
            rows.into_iter().map(FindingRow::into_finding).collect(),
            next,
        ))
    }

    /// Findings grouped by advisory: most severe first, then most devices.
    pub async fn findings_by_advisory(
        &self,
        filter: &FindingFilter,
        limit: i64,
    ) -> Result<Vec<AdvisoryGroup>, StoreError> {
        let mut tx = self.read().await?;
        #[allow(clippy::type_complexity)]
        let rows: Vec<(
            String,
            i32,
            String,
            String,
            Option<String>,
            Option<String>,
            i64,
            String,
            i64,
            i64,
        )> = with_tx!(&mut tx, c => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT f.advisory_id, MAX(f.severity_rank), MAX(f.aliases), MAX(f.summary),
                            MAX(f.kev_date_added), MAX(f.kev_due_date), COUNT(DISTINCT f.device_id),
                            MIN(f.package), COUNT(DISTINCT f.package),
                            SUM(CASE WHEN f.fixed_version IS NULL THEN 1 ELSE 0 END)
                     FROM findings f JOIN devices d ON d.id = f.device_id",
            );
            push_filter(&mut q, filter);
            q.push(" GROUP BY f.advisory_id ORDER BY 2 DESC, 7 DESC, 1 LIMIT ")
                .push_bind(limit);
            q.build_query_as().fetch_all(c).await
        })?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    advisory_id,
                    rank,
                    aliases,
                    summary,
                    added,
                    due,
                    devices,
                    package,
                    packages,
                    unfixed,
                )| {
                    AdvisoryGroup {
                        advisory_id,
                        severity: severity_of_rank(rank),
                        aliases: json_list(&aliases),
                        summary,
                        kev: due.is_some(),
                        kev_date_added: added,
                        kev_due_date: due,
                        devices,
                        package,
                        packages,
                        unfixed,
                    }
                },
            )
            .collect())
    }

    /// Findings grouped by package: most severe first, then most devices.
    pub async fn findings_by_package(
        &self,
        filter: &FindingFilter,
        limit: i64,
    ) -> Result<Vec<PackageGroup>, StoreError> {
        let mut tx = self.read().await?;
        let rows: Vec<(String, i32, i64, i64, i64)> = with_tx!(&mut tx, c => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT f.package, MAX(f.severity_rank), COUNT(DISTINCT f.advisory_id),
                        COUNT(DISTINCT f.device_id),
                        COUNT(DISTINCT CASE WHEN f.kev_due_date IS NOT NULL THEN f.advisory_id END)
                 FROM findings f JOIN devices d ON d.id = f.device_id",
            );
            push_filter(&mut q, filter);
            q.push(" GROUP BY f.package ORDER BY 2 DESC, 4 DESC, 1 LIMIT ")
                .push_bind(limit);
            q.build_query_as().fetch_all(c).await
        })?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(
                |(package, rank, advisories, devices, kev_advisories)| PackageGroup {
                    package,
                    severity: severity_of_rank(rank),
                    advisories,
                    devices,
                    kev_advisories,
                },
            )
            .collect())
    }

    /// Counts of findings (not revoked devices) by severity, KEV findings,
    /// and devices with any finding.
    pub async fn finding_totals(&self) -> Result<FindingTotals, StoreError> {
        let mut tx = self.read().await?;
        let by_severity: Vec<(String, i64)> = with_tx!(&mut tx, c =>
            sqlx::query_as(
                "SELECT f.severity, COUNT(*) FROM findings f JOIN devices d ON d.id = f.device_id
                 WHERE d.revoked_at IS NULL GROUP BY f.severity",
            )
            .fetch_all(c)
            .await
        )?;
        let (kev, devices, devices_total): (i64, i64, i64) = with_tx!(&mut tx, c =>
            sqlx::query_as(
                "SELECT
                   (SELECT COUNT(*) FROM findings f JOIN devices d ON d.id = f.device_id
                     WHERE d.revoked_at IS NULL AND f.kev_due_date IS NOT NULL),
                   (SELECT COUNT(DISTINCT f.device_id) FROM findings f JOIN devices d ON d.id = f.device_id
                     WHERE d.revoked_at IS NULL),
                   (SELECT COUNT(*) FROM devices WHERE revoked_at IS NULL)",
            )
            .fetch_one(c)
            .await
        )?;
        tx.commit().await?;
        Ok(FindingTotals {
            by_severity: by_severity.into_iter().collect(),
            kev,
            devices_affected: devices,
            devices: devices_total,
        })
    }
}

/// How many findings an organization has.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FindingTotals {
    /// Findings per severity name.
    pub by_severity: HashMap<String, i64>,
    /// Findings in the KEV catalog.
    pub kev: i64,
    /// Devices with at least one finding.
    pub devices_affected: i64,
    /// Devices not revoked.
    pub devices: i64,
}

/// A device whose findings are out of date: its release and inventory.
#[derive(Debug, Clone)]
pub struct DeviceToMatch {
    pub id: Uuid,
    pub os_id: String,
    pub os_version_id: Option<String>,
    /// The inventory the device last reported (its digest), if any.
    pub inventory_digest: Option<String>,
    /// The digest of the findings stored for it.
    pub findings_digest: Option<String>,
}

/// A device's findings as matched against `generation` and inventory `digest`.
#[derive(Debug, Clone)]
pub struct MatchedDevice {
    pub id: Uuid,
    pub generation: i64,
    pub inventory_digest: Option<String>,
    /// The inventory as the organization's package-version numbers (see
    /// [`FindingsWriter::package_versions`]), to keep when it was read afresh.
    pub packages: Option<Vec<u32>>,
    pub findings: Vec<NewFinding>,
    /// The digest of `findings`; when it is the stored one, nothing is written
    /// but the generation.
    pub findings_digest: String,
    /// The digest stored before this match.
    pub previous_digest: Option<String>,
}

/// What writing matched devices changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FindingChanges {
    pub added: u64,
    pub removed: u64,
    pub updated: u64,
}

/// Sentinel's matcher's access to one organization's findings.
#[derive(Debug, Clone)]
pub struct FindingsWriter {
    store: TenantStore,
}

impl Stores {
    /// The findings of `org`, for the matcher.
    pub async fn findings_writer(&self, org: OrgId) -> Result<FindingsWriter, StoreError> {
        Ok(FindingsWriter {
            store: self.tenants().open_existing(org).await?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct StaleRow {
    id: Uuid,
    os_id: String,
    facts: String,
    inventory_digest: Option<String>,
    findings_digest: Option<String>,
}

/// An inventory row: manager, name, version, source name and version.
type InventoryRow = (String, String, String, Option<String>, Option<String>);

/// Findings inserted per statement.
const INSERT_ROWS: usize = 500;

type StoredFinding = (
    Option<String>,
    String,
    String,
    String,
    i32,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
);

impl FindingsWriter {
    pub fn org_id(&self) -> OrgId {
        self.store.org_id()
    }

    /// Devices (not revoked) whose findings were matched against another
    /// generation or another inventory than their current one.
    pub async fn stale_devices(&self, generation: i64) -> Result<Vec<DeviceToMatch>, StoreError> {
        let mut tx = self.store.read().await?;
        let rows: Vec<StaleRow> = with_tx!(&mut tx, c =>
            sqlx::query_as(
                "SELECT id, os_id, facts, inventory_digest, findings_digest FROM devices
                 WHERE revoked_at IS NULL
                   AND (matched_generation IS NULL OR matched_generation <> $1
                        OR COALESCE(matched_inventory, '') <> COALESCE(inventory_digest, ''))
                 ORDER BY id",
            )
            .bind(generation)
            .fetch_all(c)
            .await
        )?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(
                |StaleRow {
                     id,
                     os_id,
                     facts,
                     inventory_digest,
                     findings_digest,
                 }| {
                    let facts: serde_json::Value = serde_json::from_str(&facts).unwrap_or_default();
                    DeviceToMatch {
                        id,
                        os_id,
                        os_version_id: facts
                            .get("os_version_id")
                            .and_then(|v| v.as_str())
                            .map(str::to_owned),
                        inventory_digest,
                        findings_digest,
                    }
                },
            )
            .collect())
    }

    /// Every package version the matcher has numbered in this organization,
    /// with its number: what advisories need of an installed package (no
    /// architecture).
    pub async fn package_versions(&self) -> Result<Vec<(u32, Package)>, StoreError> {
        let mut tx = self.store.read().await?;
        let rows: Vec<(i64, String, String, String, String, String)> = with_tx!(&mut tx, c =>
            sqlx::query_as(
                "SELECT id, manager, name, version, source_name, source_version
                 FROM package_versions ORDER BY id",
            )
            .fetch_all(c)
            .await
        )?;
        tx.commit().await?;
        rows.into_iter()
            .map(
                |(id, manager, name, version, source_name, source_version)| {
                    let id = u32::try_from(id)
                        .map_err(|_| StoreError::Corrupt(format!("package version number {id}")))?;
                    let manager = PackageManager::parse(&manager).ok_or_else(|| {
                        StoreError::Corrupt(format!("package manager {manager:?}"))
                    })?;
                    let present = |s: String| Some(s).filter(|s| !s.is_empty());
                    Ok((
                        id,
                        Package {
                            manager,
                            name,
                            version,
                            arch: None,
                            source_name: present(source_name),
                            source_version: present(source_version),
                        },
                    ))
                },
            )
            .collect()
    }

    /// The matcher's copies of the inventories of `devices` (as package-version
    /// numbers), where they are of the current inventory.
    pub async fn cached_packages(
        &self,
        devices: &[Uuid],
    ) -> Result<HashMap<Uuid, (String, Vec<u32>)>, StoreError> {
        if devices.is_empty() {
            return Ok(HashMap::new());
        }
        let mut tx = self.store.read().await?;
        let rows: Vec<(Uuid, String, Vec<u8>)> = with_tx!(&mut tx, c => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT m.device_id, m.inventory_digest, m.packages
                 FROM matched_inventories m JOIN devices d ON d.id = m.device_id
                 WHERE m.inventory_digest = d.inventory_digest AND m.device_id IN (",
            );
            let mut ids = q.separated(", ");
            for id in devices {
                ids.push_bind(*id);
            }
            q.push(")");
            q.build_query_as().fetch_all(c).await
        })?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|(id, digest, packages)| {
                let numbers = packages
                    .chunks_exact(4)
                    .map(|n| u32::from_le_bytes([n[0], n[1], n[2], n[3]]))
                    .collect();
                (id, (digest, numbers))
            })
            .collect())
    }

    /// A device's packages (what matching needs of them: no architecture)
    /// and the digest of the inventory they are, read together.
    pub async fn packages_of(
        &self,
        device: Uuid,
    ) -> Result<(Option<String>, Vec<Package>), StoreError> {
        let mut tx = self.store.read().await?;
        let digest: Option<Option<String>> = with_tx!(&mut tx, c =>
            sqlx::query_scalar("SELECT inventory_digest FROM devices WHERE id = $1")
                .bind(device)
                .fetch_optional(c)
                .await
        )?;
        let rows: Vec<InventoryRow> = with_tx!(&mut tx, c =>
            sqlx::query_as(
                "SELECT manager, name, version, source_name, source_version
                 FROM inventory_packages WHERE device_id = $1",
            )
            .bind(device)
            .fetch_all(c)
            .await
        )?;
        tx.commit().await?;
        let packages = rows
            .into_iter()
            .filter_map(|(manager, name, version, source_name, source_version)| {
                Some(Package {
                    manager: PackageManager::parse(&manager)?,
                    name,
                    version,
                    arch: None,
                    source_name,
                    source_version,
                })
            })
            .collect();
        Ok((digest.flatten(), packages))
    }

    /// Brings the findings of `devices` to what was matched, writing only
    /// what changed (a finding keeps its first-seen time), and records what
    /// each was matched against, with the package versions numbered for them
    /// (`versions`: new numbers only; a number already taken fails the write).
    /// One transaction for the batch.
    pub async fn write(
        &self,
        devices: &[MatchedDevice],
        versions: &[(u32, Package)],
        now: Timestamp,
    ) -> Result<FindingChanges, StoreError> {
        let mut changes = FindingChanges::default();
        let mut inserts: Vec<(Uuid, String, String, StoredFinding)> = Vec::new();
        let mut tx = self.store.begin().await?;
        for chunk in versions.chunks(INSERT_ROWS) {
            with_tx!(&mut tx, c => {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO package_versions (id, manager, name, version, source_name, source_version) ",
                );
                insert.push_values(chunk, |mut row, (id, p)| {
                    row.push_bind(i64::from(*id))
                        .push_bind(p.manager.as_str())
                        .push_bind(p.name.clone())
                        .push_bind(p.version.clone())
                        .push_bind(p.source_name.clone().unwrap_or_default())
                        .push_bind(p.source_version.clone().unwrap_or_default());
                });
                insert.build().execute(c).await.map(|r| r.rows_affected())
            })?;
        }
        for device in devices {
            if device.previous_digest.as_deref() == Some(device.findings_digest.as_str()) {
                record_match(&mut tx, device).await?;
                continue;
            }
            let held: Vec<(String, String, StoredFinding)> = with_tx!(&mut tx, c =>
                sqlx::query_as::<_, (String, String, Option<String>, String, String, String, i32, String, String, Option<String>, Option<String>, String)>(
                    "SELECT advisory_id, package, fixed_version, binaries, installed_version, release,
                            severity_rank, aliases, summary, kev_date_added, kev_due_date, severity
                     FROM findings WHERE device_id = $1",
                )
                .bind(device.id)
                .fetch_all(c)
                .await
                .map(|rows| rows.into_iter().map(|(a, p, fixed, bins, inst, rel, rank, al, sum, added, due, sev)| {
                    (a, p, (fixed, bins, inst, rel, rank, al, sum, added, due, sev))
                }).collect())
            )?;
            let mut held: HashMap<(String, String), StoredFinding> = held
                .into_iter()
                .map(|(advisory, package, rest)| ((advisory, package), rest))
                .collect();
            for finding in &device.findings {
                let binaries = to_json(&finding.binaries)?;
                let aliases = to_json(&finding.aliases)?;
                let wanted: StoredFinding = (
                    finding.fixed_version.clone(),
                    binaries,
                    finding.installed_version.clone(),
                    finding.release.clone(),
                    finding.severity_rank,
                    aliases,
                    finding.summary.clone(),
                    finding.kev_date_added.clone(),
                    finding.kev_due_date.clone(),
                    finding.severity.clone(),
                );
                let key = (finding.advisory_id.clone(), finding.package.clone());
                match held.remove(&key) {
                    Some(old) if old == wanted => continue,
                    Some(_) => changes.updated += 1,
                    None => {
                        changes.added += 1;
                        inserts.push((device.id, key.0, key.1, wanted));
                        continue;
                    }
                }
                let (
                    fixed,
                    binaries,
                    installed,
                    release,
                    rank,
                    aliases,
                    summary,
                    added,
                    due,
                    severity,
                ) = wanted;
                with_tx!(&mut tx, c =>
                    sqlx::query(
                        "UPDATE findings SET fixed_version = $4, binaries = $5, installed_version = $6,
                             release = $7, severity_rank = $8, aliases = $9, summary = $10,
                             kev_date_added = $11, kev_due_date = $12, severity = $13
                         WHERE device_id = $1 AND advisory_id = $2 AND package = $3",
                    )
                    .bind(device.id)
                    .bind(&key.0)
                    .bind(&key.1)
                    .bind(fixed)
                    .bind(binaries)
                    .bind(installed)
                    .bind(release)
                    .bind(rank)
                    .bind(aliases)
                    .bind(summary)
                    .bind(added)
                    .bind(due)
                    .bind(severity)
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected())
                )?;
            }
            for (advisory, package) in held.into_keys() {
                changes.removed += 1;
                with_tx!(&mut tx, c =>
                    sqlx::query("DELETE FROM findings WHERE device_id = $1 AND advisory_id = $2 AND package = $3")
                        .bind(device.id)
                        .bind(advisory)
                        .bind(package)
                        .execute(c)
                        .await
                        .map(|r| r.rows_affected())
                )?;
            }
            record_match(&mut tx, device).await?;
        }
        // New findings go in many rows per statement (14 parameters each, well
        // under both engines' limits).
        for chunk in inserts.chunks(INSERT_ROWS) {
            with_tx!(&mut tx, c => {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO findings (device_id, advisory_id, package, fixed_version, binaries,
                         installed_version, release, severity_rank, aliases, summary, kev_date_added,
                         kev_due_date, severity, first_seen_at) ",
                );
                insert.push_values(chunk, |mut row, (device, advisory, package, f)| {
                    row.push_bind(*device)
                        .push_bind(advisory.clone())
                        .push_bind(package.clone())
                        .push_bind(f.0.clone())
                        .push_bind(f.1.clone())
                        .push_bind(f.2.clone())
                        .push_bind(f.3.clone())
                        .push_bind(f.4)
                        .push_bind(f.5.clone())
                        .push_bind(f.6.clone())
                        .push_bind(f.7.clone())
                        .push_bind(f.8.clone())
                        .push_bind(f.9.clone())
                        .push_bind(now);
                });
                insert.build().execute(c).await.map(|r| r.rows_affected())
            })?;
        }
        tx.commit().await?;
        Ok(changes)
    }
}

/// Records what `device` was matched against (and its compact inventory copy
/// when it was read afresh) and the digest of its findings.
async fn record_match(
    tx: &mut crate::backend::Tx,
    device: &MatchedDevice,
) -> Result<(), StoreError> {
    with_tx!(tx, c =>
        sqlx::query(
            "UPDATE devices SET matched_generation = $1, matched_inventory = $2, findings_digest = $3
             WHERE id = $4",
        )
        .bind(device.generation)
        .bind(device.inventory_digest.as_deref())
        .bind(device.findings_digest.as_str())
        .bind(device.id)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    )?;
    if let (Some(packages), Some(digest)) = (&device.packages, &device.inventory_digest) {
        let packages: Vec<u8> = packages.iter().flat_map(|n| n.to_le_bytes()).collect();
        with_tx!(tx, c =>
            sqlx::query(
                "INSERT INTO matched_inventories (device_id, inventory_digest, packages) VALUES ($1, $2, $3)
                 ON CONFLICT (device_id) DO UPDATE SET inventory_digest = excluded.inventory_digest,
                     packages = excluded.packages",
            )
            .bind(device.id)
            .bind(digest)
            .bind(packages)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        )?;
    }
    Ok(())
}
