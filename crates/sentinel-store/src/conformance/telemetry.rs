//! Telemetry under group commit: many devices' reports arriving at once share
//! transactions, yet every device's chain runs without a gap or a fork, and a
//! revoked device's report is refused without taking the others down.

use sentinel_core::audit::Origin;
use sentinel_core::custody::link_hash;
use sentinel_core::{Clock, OrgName, SecretHash};
use sentinel_protocol::facts::HostFacts;
use sentinel_protocol::telemetry::{MemoryUsage, TelemetrySample, TimedSample};

use super::{Fixture, sys};
use crate::{DeviceStore, NewEnrollmentToken, StoreError};

fn sample(at: i64) -> TimedSample {
    TimedSample {
        at,
        sample: TelemetrySample {
            uptime_seconds: at as u64,
            load: [0.5; 3],
            cpu_percent: Some(12.5),
            memory: MemoryUsage::default(),
            swap: MemoryUsage::default(),
            disks: Vec::new(),
            interfaces: Vec::new(),
            logged_in_users: 1,
            warnings: Vec::new(),
        },
    }
}

fn facts(host: &str) -> HostFacts {
    serde_json::from_value(serde_json::json!({
        "hostname": host,
        "os_id": "debian",
        "os_name": "Debian GNU/Linux",
        "os_version_id": "12",
        "os_pretty_name": "Debian GNU/Linux 12 (bookworm)",
        "kernel": "6.1.0-18-amd64",
        "architecture": "x86_64",
    }))
    .unwrap()
}

pub(super) async fn enroll(
    f: &Fixture,
    devices: usize,
) -> (sentinel_core::OrgId, Vec<DeviceStore>) {
    let owner = f.user("owner@example.org", false).await;
    let org = f
        .stores
        .create_organization(&OrgName::parse("Fleet").unwrap(), owner.id, &f.clock, sys())
        .await
        .unwrap()
        .id;
    let token = SecretHash::of(b"enrollment token");
    f.stores
        .control()
        .create_enrollment_token(
            org,
            &NewEnrollmentToken {
                secret_hash: token,
                tags: Vec::new(),
                max_uses: devices as i64,
                expires_at: f.clock.now().plus(std::time::Duration::from_secs(3600)),
                created_by: owner.id,
            },
            f.clock.now(),
            sys(),
        )
        .await
        .unwrap();
    let mut stores = Vec::new();
    for n in 0..devices {
        let enrolled = f
            .stores
            .enroll(
                token,
                SecretHash::of(format!("device {n}").as_bytes()),
                &facts(&format!("host{n}")),
                "test",
                &Origin::default(),
                f.clock.now(),
            )
            .await
            .unwrap()
            .unwrap();
        stores.push(enrolled.store);
    }
    (org, stores)
}

conformance!(
    concurrent_reports_share_commits_and_keep_every_chain_whole,
    |f: Fixture| async move {
        let (org, devices) = enroll(&f, 12).await;
        let tenant = f.stores.tenants().open_existing(org).await.unwrap();
        let revoked = devices[11].device_id();
        tenant
            .revoke_device(revoked, f.clock.now(), sys())
            .await
            .unwrap();
        // Every device sends 8 reports of 2 samples, all at once; the first
        // device's facts change with its last report.
        f.clock.advance(std::time::Duration::from_secs(90));
        let now = f.clock.now();
        let mut sent = Vec::new();
        for (d, device) in devices.iter().enumerate() {
            for r in 0..8i64 {
                let device = device.clone();
                let renamed = (d == 0 && r == 7).then(|| facts("renamed"));
                sent.push(tokio::spawn(async move {
                    let samples = vec![sample(r * 2), sample(r * 2 + 1)];
                    device.record_telemetry(&samples, renamed, now).await
                }));
            }
        }
        let mut stored = 0;
        let mut refused = 0;
        for answer in sent {
            match answer.await.unwrap() {
                Ok(n) => stored += n,
                Err(StoreError::NotFound) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(stored, 11 * 8 * 2);
        assert_eq!(refused, 8, "the revoked device's reports, and only those");

        for device in &devices[..11] {
            let mut chain = tenant.telemetry(device.device_id(), 100).await.unwrap();
            chain.sort_by_key(|link| link.seq);
            assert_eq!(
                chain.iter().map(|l| l.seq).collect::<Vec<_>>(),
                (1..=16).collect::<Vec<_>>(),
                "no gap, no fork"
            );
            let mut prev = sentinel_core::custody::genesis(device.device_id()).to_vec();
            for link in &chain {
                assert_eq!(link.prev_hash, sentinel_core::audit::hex(&prev));
                let hash = link_hash(
                    &prev,
                    link.seq,
                    link.sampled_at,
                    link.received_at,
                    &link.sample_text,
                );
                assert_eq!(link.hash, sentinel_core::audit::hex(&hash));
                prev = hash.to_vec();
            }
            let row = tenant.device(device.device_id()).await.unwrap();
            assert_eq!(row.telemetry_count, 16);
            assert_eq!(row.last_seen_at, now, "heard from when it reported");
        }
        assert_eq!(
            tenant
                .device(devices[0].device_id())
                .await
                .unwrap()
                .hostname,
            "renamed"
        );
        assert!(tenant.telemetry(revoked, 100).await.unwrap().is_empty());
        f
    }
);

/// The agent hot path's two reads run on the calling thread on SQLite. A
/// failure there falls back to sqlx unseen, so this checks that they succeed
/// and read what sqlx reads.
#[tokio::test]
async fn the_agent_reads_run_inline_on_sqlite() {
    use crate::backend::Db;
    let f = Fixture::sqlite().await;
    let (org, stores) = enroll(&f, 2).await;
    let Db::Sqlite(control) = f.stores.control().db() else {
        panic!("a SQLite fixture");
    };
    let device = &stores[1];
    let Db::Sqlite(tenant) = device.tenant().db() else {
        panic!("a SQLite fixture");
    };
    let credential = |hash: &SecretHash| {
        control
            .inline()
            .read(|c| crate::control::credential_inline(c, hash))
            .expect("the inline read succeeds")
    };
    let device_row = || {
        tenant
            .inline()
            .read(|c| crate::devices::seen_inline(c, device.device_id()))
            .expect("the inline read succeeds")
            .expect("the device's row exists")
    };
    let hash = SecretHash::of(b"device 1");
    let known = credential(&hash).expect("the token is known");
    assert_eq!((known.0, known.1), (org, device.device_id()));
    assert_eq!(known.2, known.3, "one generation, the oldest");
    assert_eq!(credential(&SecretHash::of(b"never issued")), None);

    let identity = device
        .seen(f.clock.now(), std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    let row = device_row();
    assert_eq!(
        row,
        (identity.id, identity.hostname, identity.last_seen_at, None)
    );

    // Revoked: the inline reads see it at once, and so the device is refused.
    let now = f.clock.now();
    let tenant_store = f.stores.tenants().open_existing(org).await.unwrap();
    tenant_store
        .revoke_device(device.device_id(), now, sys())
        .await
        .unwrap();
    f.stores
        .control()
        .revoke_device_credentials(org, device.device_id())
        .await
        .unwrap();
    assert_eq!(device_row().3, Some(now));
    assert_eq!(credential(&hash), None);
    assert!(matches!(
        device
            .seen(f.clock.now(), std::time::Duration::from_secs(3600))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(
        f.stores
            .control()
            .authenticate_device(hash)
            .await
            .unwrap()
            .is_none()
    );
}
