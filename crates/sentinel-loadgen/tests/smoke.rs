//! CI smoke run of the fleet simulator: a few hundred devices (a tenth of them
//! misbehaving) against the real server, in process, for a few seconds. It checks
//! correctness only — nothing acknowledged is lost, no request gets a 5xx, commands
//! arrive — never speed (docs/benchmarks.md has the numbers).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use sentinel::config::{Config, Settings};
use sentinel_core::SystemClock;
use sentinel_loadgen::admin::Admin;
use sentinel_loadgen::client::Target;
use sentinel_loadgen::fleet::{self, Options};
use sentinel_loadgen::stats::Population;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_fleet_loses_nothing_and_sees_no_server_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_settings(Settings {
        data_dir: Some(dir.path().join("data")),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        log_level: Some("error".into()),
        rate_limit_requests: Some(1_000_000),
        rate_limit_agent: Some(1_000_000),
        rate_limit_enrollment: Some(1_000_000),
        ..Settings::default()
    })
    .unwrap();
    let server = sentinel::start(&config, Arc::new(SystemClock))
        .await
        .unwrap();
    let target = Target::new(
        server.local_addr,
        "localhost",
        server.ca_cert_pem.as_deref().unwrap(),
    )
    .unwrap();
    let setup_url = server.setup_url.clone().unwrap();
    let token = setup_url.split("token=").nth(1).unwrap();
    let admin = Admin::setup(
        &target,
        token,
        "smoke@example.org",
        "smoke orbit lantern quarry",
    )
    .await
    .unwrap();
    let org = admin.create_org("Smoke fleet").await.unwrap();

    let options = Options {
        devices: 200,
        faulty_share: 0.1,
        faults: Vec::new(),
        ramp_up: Duration::from_secs(2),
        startup_concurrency: 64,
        inventory_share: 0.05,
        telemetry_interval: Duration::from_millis(500),
        duration: Duration::from_secs(3),
        command_rate: 20.0,
        long_poll: true,
        enroll_only: false,
        sources: (1..=4)
            .map(|n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
            .collect(),
        settle: Duration::from_secs(1),
        server_pid: None,
    };
    let report = fleet::run(&target, &admin, org, &options).await.unwrap();
    println!("{}", sentinel_loadgen::report::text(&report));

    assert_eq!(
        report.enrollment.enrolled,
        200 - 20 / 5,
        "every device but the invalid-token ones enrolls"
    );
    let server_errors: Vec<_> = report.errors.iter().filter(|e| e.server_error).collect();
    assert!(server_errors.is_empty(), "5xx answers: {server_errors:?}");
    let clean_errors: Vec<_> = report
        .errors
        .iter()
        .filter(|e| e.population == Population::Clean)
        .collect();
    assert!(
        clean_errors.is_empty(),
        "well-behaved devices saw errors: {clean_errors:?}"
    );
    let loss = report.loss.clone().unwrap();
    assert_eq!(loss.devices_checked, 180);
    assert!(loss.acknowledged >= 180 * 3, "{}", loss.line());
    assert_eq!(loss.lost, 0, "{}", loss.line());
    assert_eq!(loss.sequence_gaps, 0);
    assert_eq!(loss.unreadable, 0);
    // Stored is what was acknowledged, plus at most the samples whose answer never came.
    assert!(
        loss.stored >= loss.acknowledged && loss.stored <= loss.acknowledged + loss.unconfirmed,
        "{}",
        loss.line()
    );
    assert!(
        report.commands_queued >= 10,
        "{} commands queued",
        report.commands_queued
    );
    assert_eq!(
        report.commands_undelivered, 0,
        "queued commands never reached their device"
    );
    assert_eq!(report.commands_received, report.commands_queued);
    assert!(
        report.expected_refusals > 0,
        "the misbehaving devices did nothing"
    );
    server.shutdown().await;
}
