//! Appending telemetry reports to devices' chains, many reports in one
//! transaction: the reports of every device of an organization that arrive
//! while a commit runs share the next ([`crate::group_commit`]), so a tenant
//! takes thousands of reports per second where one flush per report allowed
//! hundreds. Each caller still returns only once its report is durable.
//!
//! On SQLite a batch is written on a blocking thread, one row a statement
//! ([`append_all_blocking`]); on PostgreSQL through sqlx, hundreds of rows a
//! statement ([`append_all`]): one round trip to the database per statement
//! is what costs there. Both chain the reports with [`chain`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rusqlite::OptionalExtension;
use sentinel_core::custody::link_hash;
use sentinel_core::{OrgId, Timestamp};
use sentinel_protocol::facts::HostFacts;
use sentinel_protocol::telemetry::TimedSample;
use uuid::Uuid;

use crate::StoreError;
use crate::backend::{Db, Tx, with_tx};
use crate::group_commit::{Commit, GroupCommit};
use crate::tenant::TenantStore;

/// The most reports one commit takes.
const MAX_BATCH: usize = 2_000;
/// Links inserted per statement on PostgreSQL (7 parameters each).
const INSERT_ROWS: usize = 500;
/// Device rows updated per statement on PostgreSQL (4 parameters each).
const UPDATE_ROWS: usize = 500;

/// A device's chain head, if it is live (SQLite: one device a statement).
const HEAD: &str =
    "SELECT telemetry_seq, telemetry_head FROM devices WHERE id = ?1 AND revoked_at IS NULL";
/// Appends a link (SQLite: one link a statement).
const INSERT_LINK: &str =
    "INSERT INTO telemetry (device_id, seq, sampled_at, received_at, sample, prev_hash, hash)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
/// Moves a device's chain head and last-heard time (SQLite: one device a statement).
const ADVANCE: &str =
    "UPDATE devices SET telemetry_seq = ?2, telemetry_head = ?3, last_seen_at = ?4 WHERE id = ?1";
/// Replaces a device's facts (both engines).
const REPLACE_FACTS: &str =
    "UPDATE devices SET hostname = $1, os_id = $2, os_pretty_name = $3, kernel = $4,
     architecture = $5, machine_id = $6, facts = $7 WHERE id = $8";

/// One device's report: samples to append, and its facts when they changed.
#[derive(Debug)]
pub(crate) struct Report {
    pub device: Uuid,
    pub samples: Vec<EncodedSample>,
    pub facts: Option<HostFacts>,
    pub received_at: Timestamp,
}

/// A sample as its link stores it. Encoded by the reporting device's own task,
/// so the commit, which runs one at a time per organization, only chains.
#[derive(Debug)]
pub(crate) struct EncodedSample {
    pub sampled_at: Timestamp,
    pub text: String,
}

impl EncodedSample {
    pub(crate) fn new(sample: &TimedSample) -> Result<EncodedSample, StoreError> {
        Ok(EncodedSample {
            sampled_at: Timestamp::from_unix_seconds(sample.at),
            text: serde_json::to_string(&sample.sample)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        })
    }
}

/// The telemetry queues of every organization.
#[derive(Debug)]
pub(crate) struct TelemetryWriter {
    queues: GroupCommit<OrgId, Report, Option<u32>>,
}

impl Default for TelemetryWriter {
    fn default() -> Self {
        TelemetryWriter {
            queues: GroupCommit::new(MAX_BATCH),
        }
    }
}

impl TelemetryWriter {
    /// Forgets a deleted organization's queue.
    pub(crate) fn forget(&self, org: OrgId) {
        self.queues.forget(&org);
    }

    /// Appends `report` to its device's chain in `store`, returning once it is
    /// committed: how many samples were stored, or `NotFound` if the device is
    /// gone or revoked.
    pub(crate) async fn append(
        &self,
        store: &TenantStore,
        report: Report,
    ) -> Result<u32, StoreError> {
        let target = store.clone();
        let commit: Commit<Report, Option<u32>> = Arc::new(move |reports: Vec<Report>| {
            let store = target.clone();
            Box::pin(async move {
                let appended = match store.db() {
                    Db::Sqlite(pools) => {
                        pools
                            .writer()
                            .write_blocking(move |tx| append_all_blocking(tx, &reports))
                            .await
                    }
                    Db::Postgres(_) => append_all(&store, &reports).await,
                };
                appended.map_err(|e| e.to_string())
            })
        });
        match self.queues.submit(store.org_id(), report, commit).await {
            Ok(Some(stored)) => Ok(stored),
            Ok(None) => Err(StoreError::NotFound),
            Err(message) => Err(StoreError::Telemetry(message)),
        }
    }
}

/// A device's chain head: its last sequence number and link hash.
type Head = (i64, Vec<u8>);

/// A link ready to insert: device, seq, sampled at, received at, sample, prev, hash.
type Link<'r> = (Uuid, i64, Timestamp, Timestamp, &'r str, Vec<u8>, Vec<u8>);

/// What a batch writes: the links to insert, each device touched (in id
/// order, so that writers on several nodes lock rows in one order) with when
/// it was last heard and its newest facts, and each report's outcome: `None`
/// for a report of a device that is gone or revoked.
struct Chained<'r> {
    links: Vec<Link<'r>>,
    touched: Vec<(Uuid, Touched<'r>)>,
    outcomes: Vec<Option<u32>>,
}

/// A device touched by a batch: when it was last heard, its newest facts.
type Touched<'r> = (Timestamp, Option<&'r HostFacts>);

/// Chains `reports`, in order, onto `heads` (a device's several reports chain
/// one after the other), moving each head forward.
fn chain<'r>(reports: &'r [Report], heads: &mut HashMap<Uuid, Head>) -> Chained<'r> {
    let mut touched: BTreeMap<Uuid, Touched<'r>> = BTreeMap::new();
    let mut links: Vec<Link> = Vec::new();
    let mut outcomes = Vec::with_capacity(reports.len());
    for report in reports {
        let Some((seq, prev)) = heads.get_mut(&report.device) else {
            outcomes.push(None);
            continue;
        };
        for sample in &report.samples {
            *seq += 1;
            let hash = link_hash(
                prev,
                *seq,
                sample.sampled_at,
                report.received_at,
                &sample.text,
            )
            .to_vec();
            let prev_hash = std::mem::replace(prev, hash.clone());
            links.push((
                report.device,
                *seq,
                sample.sampled_at,
                report.received_at,
                &sample.text,
                prev_hash,
                hash,
            ));
        }
        let entry = touched
            .entry(report.device)
            .or_insert((report.received_at, None));
        entry.0 = report.received_at;
        if report.facts.is_some() {
            entry.1 = report.facts.as_ref();
        }
        outcomes.push(Some(report.samples.len() as u32));
    }
    Chained {
        links,
        touched: touched.into_iter().collect(),
        outcomes,
    }
}

/// Appends `reports` in `tx` on a SQLite database, one row a statement: on a
/// blocking thread, a statement is a call into SQLite, and a prepared
/// single-row statement costs less than building and preparing a many-row
/// one.
fn append_all_blocking(
    tx: &rusqlite::Transaction<'_>,
    reports: &[Report],
) -> rusqlite::Result<Vec<Option<u32>>> {
    let mut heads = HashMap::with_capacity(reports.len());
    let mut head = tx.prepare_cached(HEAD)?;
    for report in reports {
        if heads.contains_key(&report.device) {
            continue;
        }
        let found = head
            .query_row([report.device], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        if let Some(found) = found {
            heads.insert(report.device, found);
        }
    }
    let chained = chain(reports, &mut heads);
    let mut insert = tx.prepare_cached(INSERT_LINK)?;
    for (device, seq, sampled_at, received_at, text, prev, hash) in &chained.links {
        insert.execute(rusqlite::params![
            device,
            seq,
            sampled_at.unix_micros(),
            received_at.unix_micros(),
            text,
            prev,
            hash,
        ])?;
    }
    let mut advance = tx.prepare_cached(ADVANCE)?;
    let mut replace_facts = tx.prepare_cached(REPLACE_FACTS)?;
    for (device, (last_heard, facts)) in &chained.touched {
        let (seq, head) = &heads[device];
        advance.execute(rusqlite::params![
            device,
            seq,
            head,
            last_heard.unix_micros()
        ])?;
        if let Some(facts) = facts {
            let json = serde_json::to_string(facts)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
            replace_facts.execute(rusqlite::params![
                facts.hostname,
                facts.os_id,
                facts.os_pretty_name,
                facts.kernel,
                facts.architecture,
                facts.machine_id,
                json,
                device,
            ])?;
        }
    }
    Ok(chained.outcomes)
}

/// Appends `reports` in one transaction through sqlx, hundreds of rows a
/// statement (PostgreSQL).
async fn append_all(
    store: &TenantStore,
    reports: &[Report],
) -> Result<Vec<Option<u32>>, StoreError> {
    let mut tx = store.begin().await?;
    let mut heads = chain_heads(&mut tx, reports).await?;
    let chained = chain(reports, &mut heads);
    for chunk in chained.links.chunks(INSERT_ROWS) {
        with_tx!(&mut tx, c => {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO telemetry (device_id, seq, sampled_at, received_at, sample, prev_hash, hash) ",
            );
            insert.push_values(chunk, |mut row, (device, seq, sampled_at, received_at, text, prev, hash)| {
                row.push_bind(*device)
                    .push_bind(*seq)
                    .push_bind(*sampled_at)
                    .push_bind(*received_at)
                    .push_bind(*text)
                    .push_bind(prev.as_slice())
                    .push_bind(hash.as_slice());
            });
            insert.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    for chunk in chained.touched.chunks(UPDATE_ROWS) {
        advance_devices(&mut tx, &heads, chunk).await?;
    }
    for (device, (_, facts)) in &chained.touched {
        if let Some(facts) = facts {
            replace_facts(&mut tx, *device, facts).await?;
        }
    }
    tx.commit().await?;
    Ok(chained.outcomes)
}

/// Moves each device's chain head and last-heard time forward, in one statement
/// for the whole chunk: one statement per device made the commit a round trip
/// to the database per device.
async fn advance_devices(
    tx: &mut Tx,
    heads: &HashMap<Uuid, Head>,
    devices: &[(Uuid, Touched<'_>)],
) -> Result<(), StoreError> {
    // A VALUES list's columns are column1, column2, … on both engines.
    with_tx!(tx, c => {
        let mut update = sqlx::QueryBuilder::new(
            "UPDATE devices SET telemetry_seq = v.column2, telemetry_head = v.column3, last_seen_at = v.column4 FROM (",
        );
        update.push_values(devices, |mut row, (device, (last_heard, _))| {
            let (seq, head) = &heads[device];
            row.push_bind(*device)
                .push_bind(*seq)
                .push_bind(head.as_slice())
                .push_bind(*last_heard);
        });
        update.push(") AS v WHERE devices.id = v.column1");
        update.build().execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The chain heads of the (not revoked) devices that `reports` are of.
async fn chain_heads(tx: &mut Tx, reports: &[Report]) -> Result<HashMap<Uuid, Head>, StoreError> {
    let mut devices: Vec<Uuid> = reports.iter().map(|r| r.device).collect();
    devices.sort_unstable();
    devices.dedup();
    let mut heads = HashMap::with_capacity(devices.len());
    for chunk in devices.chunks(INSERT_ROWS) {
        let rows: Vec<(Uuid, i64, Vec<u8>)> = with_tx!(&mut *tx, c => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT id, telemetry_seq, telemetry_head FROM devices WHERE revoked_at IS NULL AND id IN (",
            );
            let mut ids = q.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            q.push(")");
            q.build_query_as().fetch_all(c).await
        })?;
        heads.extend(rows.into_iter().map(|(id, seq, head)| (id, (seq, head))));
    }
    Ok(heads)
}

/// Replaces a device's facts (its hostname, release, kernel and the rest).
async fn replace_facts(tx: &mut Tx, device: Uuid, facts: &HostFacts) -> Result<(), StoreError> {
    let json = serde_json::to_string(facts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    with_tx!(tx, c =>
        sqlx::query(REPLACE_FACTS)
        .bind(&facts.hostname)
        .bind(&facts.os_id)
        .bind(&facts.os_pretty_name)
        .bind(&facts.kernel)
        .bind(&facts.architecture)
        .bind(facts.machine_id.as_deref())
        .bind(&json)
        .bind(device)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    )?;
    Ok(())
}
