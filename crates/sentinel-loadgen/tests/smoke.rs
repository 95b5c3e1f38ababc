//! CI smoke runs of the load generator against the real server, in process,
//! for a few seconds each: a few hundred HTTPS devices (a tenth of them
//! misbehaving), and a few dozen MQTT devices through the three MQTT phases.
//! They check correctness only — nothing acknowledged is lost, no request gets
//! a 5xx, commands arrive — never speed (docs/benchmarks.md has the numbers).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sentinel::RunningServer;
use sentinel::config::{Config, MqttListen, Settings};
use sentinel_core::SystemClock;
use sentinel_loadgen::admin::Admin;
use sentinel_loadgen::client::Target;
use sentinel_loadgen::fleet::{self, Options};
use sentinel_loadgen::mqtt::{self, link::Gateway};
use sentinel_loadgen::stats::Population;
use uuid::Uuid;

/// The real server on a fresh data directory (with its MQTT gateway on a free
/// port when `mqtt`), rate limits lifted, set up with a first admin and an
/// organization.
async fn server(data: &Path, mqtt: bool) -> (RunningServer, Target, Admin, Uuid) {
    let config = Config::from_settings(Settings {
        data_dir: Some(data.to_path_buf()),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        log_level: Some("error".into()),
        rate_limit_requests: Some(1_000_000),
        rate_limit_agent: Some(1_000_000),
        rate_limit_enrollment: Some(1_000_000),
        mqtt_listen: Some(if mqtt {
            MqttListen::At("127.0.0.1:0".parse().unwrap())
        } else {
            MqttListen::Off
        }),
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
    (server, target, admin, org)
}

fn loopback_sources(n: u8) -> Vec<IpAddr> {
    (1..=n)
        .map(|n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_fleet_loses_nothing_and_sees_no_server_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (server, target, admin, org) = server(&dir.path().join("data"), false).await;

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
        sources: loopback_sources(4),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_devices_connect_publish_and_get_their_commands_losing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, target, admin, org) = server(&data, true).await;
    let ca = data.join("tls").join("ca.pem");
    let gateway = Gateway::new(server.mqtt_addr.unwrap(), "localhost", Some(&ca)).unwrap();

    let options = mqtt::Options {
        idle: 40,
        idle_concurrency: 8,
        publishers: 4,
        window: 8,
        telemetry_duration: Duration::from_secs(2),
        push_devices: 5,
        commands: 20,
        settle: Duration::from_millis(100),
        sources: loopback_sources(4),
        server_pid: None,
        // The idle connections are held by the real binary's child mode.
        idle_clients: Some(PathBuf::from(env!("CARGO_BIN_EXE_sentinel-loadgen"))),
    };
    let report = mqtt::run(&target, &gateway, &admin, org, &options)
        .await
        .unwrap();
    println!("{}", sentinel_loadgen::report::mqtt_text(&report));

    assert_eq!(report.scheme, "MQTTS");
    assert!(report.errors.is_empty(), "errors: {:?}", report.errors);
    assert_eq!(report.enrollment.enrolled, 40);
    let idle = report.idle.clone().unwrap();
    assert_eq!(idle.connected, 40, "every idle device connected");
    let telemetry = report.telemetry.clone().unwrap();
    assert_eq!(telemetry.publishers, 4);
    assert!(
        telemetry.acknowledged >= 4 * 8,
        "{} acknowledged",
        telemetry.acknowledged
    );
    let loss = report.loss.clone().unwrap();
    assert_eq!(loss.devices_checked, 4);
    assert_eq!(loss.acknowledged, telemetry.acknowledged);
    assert_eq!(
        (loss.stored, loss.lost, loss.unconfirmed),
        (loss.acknowledged, 0, 0),
        "{}",
        loss.line()
    );
    let push = report.push.clone().unwrap();
    assert_eq!(push.subscribed, 5);
    assert_eq!(
        (
            push.commands_queued,
            push.commands_received,
            push.commands_undelivered
        ),
        (20, 20, 0)
    );
    assert_eq!(push.delivery.count, 20);
    assert!(report.passed());
    server.shutdown().await;
}
