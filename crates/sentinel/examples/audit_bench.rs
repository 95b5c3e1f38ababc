//! Audit trail benchmark (issue "Tamper-evident audit trail", results in
//! docs/benchmarks.md): sustained group-commit appends into one organization's log,
//! then a log filled to a million entries, verified the way `sentinel audit verify`
//! verifies it, and queried for the first page of each kind of filter.
//!
//! ```text
//! cargo run --release -p sentinel --example audit_bench -- [--postgres URL] [--entries N]
//!     [--append-seconds S] [--producers P]
//! ```
//!
//! SQLite runs in a temporary data directory; `--postgres` takes an admin URL and
//! creates (then drops) a throwaway database on that server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sentinel_core::audit::{
    Actor, AuditAction, AuditContext, AuditEvent, Entity, EntityType, LogId, Origin, Outcome,
};
use sentinel_core::{
    Clock, DisplayName, Email, OrgId, OrgName, PasswordHash, SecretString, SystemClock, Timestamp,
    UserId,
};
use sentinel_store::testing::TestDatabase;
use sentinel_store::{AuditFilter, NewUser, StoreLocation, Stores};

struct Args {
    postgres: Option<String>,
    /// Keep the SQLite data directory here (with its audit.key), so that
    /// `sentinel audit verify --data-dir` can be timed on it afterwards.
    data_dir: Option<std::path::PathBuf>,
    entries: u64,
    append_seconds: u64,
    producers: usize,
}

fn args() -> Args {
    let mut args = Args {
        postgres: None,
        data_dir: None,
        entries: 1_000_000,
        append_seconds: 10,
        producers: 512,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--postgres" => args.postgres = Some(value),
            "--data-dir" => args.data_dir = Some(value.into()),
            "--entries" => args.entries = value.parse().unwrap(),
            "--append-seconds" => args.append_seconds = value.parse().unwrap(),
            "--producers" => args.producers = value.parse().unwrap(),
            _ => panic!("unknown flag {flag}"),
        }
    }
    args
}

const ACTIONS: [AuditAction; 6] = [
    AuditAction::MemberRoleChanged,
    AuditAction::MemberAdded,
    AuditAction::MemberRemoved,
    AuditAction::OrgRenamed,
    AuditAction::AuditExported,
    AuditAction::Login,
];

/// The `n`th event of a realistic mix: 100 users, 10,000 entities, 90 % success,
/// 8 % denied, 2 % failure; the rarest action is 1 in 1,000.
fn event(n: u64, at: Timestamp) -> AuditEvent {
    let user = n % 100;
    let action = if n % 1000 == 999 {
        AuditAction::AuditPruned
    } else {
        ACTIONS[(n % ACTIONS.len() as u64) as usize]
    };
    let outcome = match n % 50 {
        0..=3 => Outcome::Denied,
        4 => Outcome::Failure,
        _ => Outcome::Success,
    };
    let context = AuditContext {
        actor: Actor {
            kind: sentinel_core::audit::ActorKind::User,
            id: format!("00000000-0000-4000-8000-{user:012}"),
            name: format!("User {user}"),
        },
        origin: Origin::new(
            format!("10.0.{}.{}", user / 256, user % 256),
            "Mozilla/5.0 (X11; Linux x86_64) Benchmark",
            uuid::Uuid::new_v4(),
        ),
    };
    context.event(
        at,
        action,
        Entity::new(EntityType::User, format!("entity-{}", n % 10_000)),
        serde_json::json!({"from": "analyst", "to": "admin", "n": n}),
        outcome,
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = args();
    let machine = format!(
        "{} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let temp_dir = tempfile::tempdir().unwrap();
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temp_dir.path().join("data"));
    let data_dir = sentinel::data_dir::DataDir::open(&data_dir).unwrap();
    let test_db = match &args.postgres {
        Some(url) => Some(TestDatabase::create(url).await.unwrap()),
        None => None,
    };
    let location = match &test_db {
        Some(db) => StoreLocation::Postgres {
            url: SecretString::new(db.url().to_owned()),
        },
        None => StoreLocation::Sqlite {
            data_dir: data_dir.path().to_owned(),
        },
    };
    let engine = if test_db.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!("engine: {engine}; machine: {machine}");
    let clock = SystemClock;
    let stores = Arc::new(Stores::open(&location, &clock).await.unwrap());
    let org = create_org(&stores, &clock).await;
    let log_id = LogId::Org(org);
    let log = stores.audit_log(log_id).await.unwrap();

    // 1. Sustained appends: producers each record one event at a time through the
    //    group-commit writer and wait until it is durable, as request handlers do.
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.append_seconds);
    let started = Instant::now();
    let mut producers = Vec::new();
    for _ in 0..args.producers {
        let stores = stores.clone();
        let counter = counter.clone();
        producers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                stores
                    .record(log_id, event(n, SystemClock.now()))
                    .await
                    .unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for producer in producers {
        latencies.extend(producer.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let appended = latencies.len() as u64;
    println!(
        "append: {appended} entries by {} producers in {:.2} s = {:.0} entries/s (latency p50 {:.1} ms, p99 {:.1} ms)",
        args.producers,
        elapsed.as_secs_f64(),
        appended as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
    );

    // 2. Fill to `entries`, in batches of 1,000 with a checkpoint after each, as
    //    the server signs every 1,000 entries.
    let key = sentinel::audit::signing_key(&data_dir).unwrap();
    let fill_started = Instant::now();
    let mut n = appended;
    let year_ago = SystemClock.now().minus(Duration::from_secs(365 * 86_400));
    while n < args.entries {
        let batch: Vec<_> = (n..(n + 1000).min(args.entries))
            .map(|i| event(i, year_ago.plus(Duration::from_secs(i * 30))))
            .collect();
        n += batch.len() as u64;
        log.append(&batch).await.unwrap();
        let head = log.head().await.unwrap().unwrap();
        log.add_checkpoint(&key.sign(&log_id, &head, SystemClock.now()))
            .await
            .unwrap();
    }
    log.refresh_statistics().await.unwrap();
    println!(
        "fill: {} entries in {:.1} s (batches of 1,000, each checkpointed)",
        n - appended,
        fill_started.elapsed().as_secs_f64()
    );

    // 3. Verify, as `sentinel audit verify --org` does (after timing the reads alone).
    let read_started = Instant::now();
    let mut read = 0;
    for from in (0..=n as i64).step_by(10_000) {
        read += log.entries(from..from + 10_000).await.unwrap().len();
    }
    println!(
        "read alone: {read} entries in {:.2} s",
        read_started.elapsed().as_secs_f64()
    );
    let verify_started = Instant::now();
    let reports = sentinel::audit::verify(&stores, &key.verifying_key(), Some(org))
        .await
        .unwrap();
    let verify_time = verify_started.elapsed();
    let verified = reports[0].result.as_ref().unwrap();
    println!(
        "verify: {} entries, {} checkpoints in {:.2} s = {:.0} entries/s",
        verified.entries,
        verified.checkpoints,
        verify_time.as_secs_f64(),
        verified.entries as f64 / verify_time.as_secs_f64()
    );

    // 4. First page (50 entries, newest first) of each kind of filter.
    let now = SystemClock.now();
    let filters = [
        ("none", AuditFilter::default()),
        (
            "action (1 in 1,000)",
            AuditFilter {
                action: Some("audit.pruned".into()),
                ..AuditFilter::default()
            },
        ),
        (
            "actor (1 in 100)",
            AuditFilter {
                actor: Some("00000000-0000-4000-8000-000000000042".into()),
                ..AuditFilter::default()
            },
        ),
        (
            "entity (1 in 10,000)",
            AuditFilter {
                entity_type: Some("user".into()),
                entity_id: Some("entity-4242".into()),
                ..AuditFilter::default()
            },
        ),
        (
            "outcome failure (1 in 50)",
            AuditFilter {
                outcome: Some("failure".into()),
                ..AuditFilter::default()
            },
        ),
        (
            "time range (a day, 6 months ago)",
            AuditFilter {
                since: Some(now.minus(Duration::from_secs(183 * 86_400))),
                until: Some(now.minus(Duration::from_secs(182 * 86_400))),
                ..AuditFilter::default()
            },
        ),
        (
            "action + outcome + actor",
            AuditFilter {
                action: Some("member.role_changed".into()),
                outcome: Some("denied".into()),
                actor: Some("00000000-0000-4000-8000-000000000012".into()),
                ..AuditFilter::default()
            },
        ),
        (
            "free text, common (\"user 42\")",
            AuditFilter {
                text: Some("user 42".into()),
                ..AuditFilter::default()
            },
        ),
        (
            "free text, rare (\"entity-4242\")",
            AuditFilter {
                text: Some("entity-4242".into()),
                ..AuditFilter::default()
            },
        ),
        (
            "free text, no match",
            AuditFilter {
                text: Some("no such text".into()),
                ..AuditFilter::default()
            },
        ),
    ];
    for (name, filter) in filters {
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..7 {
            let t = Instant::now();
            found = log.page(&filter, 50).await.unwrap().entries.len();
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "first page, {name}: {found} entries, median {:.2} ms, worst {:.2} ms",
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1])
        );
    }

    stores.close().await;
    if let Some(db) = test_db {
        db.drop_database().await.unwrap();
    }
}

async fn create_org(stores: &Stores, clock: &dyn Clock) -> OrgId {
    let owner = stores
        .control()
        .create_user(
            &NewUser {
                email: Email::parse("bench@example.org").unwrap(),
                name: DisplayName::parse("Bench").unwrap(),
                password_hash: PasswordHash::from_trusted("x".into()),
                platform_admin: true,
            },
            clock.now(),
            &AuditContext::system(),
        )
        .await
        .unwrap();
    let owner: UserId = owner.id;
    stores
        .create_organization(
            &OrgName::parse("Bench").unwrap(),
            owner,
            clock,
            &AuditContext::system(),
        )
        .await
        .unwrap()
        .id
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    ms(sorted[i])
}
