//! The real `sentinel-agent` with `--transport mqtt` against the real server's device
//! gateway, on SQLite and on PostgreSQL: enrolled over HTTPS, it then reports
//! telemetry and its inventory over MQTT, a command queued through the API is pushed
//! to it, run and reported over MQTT, and once revoked it is disconnected and refused
//! when it connects again.

use std::process::Stdio;

use reqwest::Method;
use serde_json::{Value, json};

use crate::devices::{EnrolledAgent, KillOnDrop, agent_binary, enroll_real_agent};
use crate::mqtt::{gateway_server_on, metric, mqtt_addr};
use crate::support::{Engine, eventually};

#[tokio::test]
async fn the_real_agent_reports_and_runs_commands_over_mqtt() {
    the_agent_over_mqtt(Engine::Sqlite).await;
}

#[tokio::test]
async fn the_real_agent_reports_and_runs_commands_over_mqtt_on_postgresql_too() {
    the_agent_over_mqtt(Engine::Postgres).await;
}

async fn the_agent_over_mqtt(engine: Engine) {
    let Some(server) = gateway_server_on(engine).await else {
        return;
    };
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let token = server.enrollment_token(&root, &org, json!({})).await;
    let EnrolledAgent { dir, state, status } = enroll_real_agent(&server, &token).await;

    let log_path = dir.path().join("agent.log");
    let gateway = format!("127.0.0.1:{}", mqtt_addr(&server).port());
    let agent = std::process::Command::new(agent_binary())
        .args(["run", "--transport", "mqtt", "--mqtt-address", &gateway])
        .arg("--state-dir")
        .arg(&state)
        .arg("--dpkg-status")
        .arg(&status)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let _agent = KillOnDrop(agent);
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let devices_path = format!("/api/v1/orgs/{org}/devices");
    let device: Value = eventually("the device", || async {
        let list = server.get(&root, &devices_path).await.json();
        list["devices"].as_array()?.first().cloned()
    })
    .await;
    let device_id = device["id"].as_str().unwrap().to_owned();
    eventually("the agent connected over MQTT", || async {
        (metric(&server, &root, "sentinel_mqtt_connections").await == 1).then_some(())
    })
    .await;

    // Telemetry and the inventory (its digest, unknown to the server, answered
    // 0x10; then the full list) arrive over MQTT.
    let telemetry_path = format!("/api/v1/orgs/{org}/devices/{device_id}/telemetry");
    let samples: Value = eventually("telemetry", || async {
        let page = server.get(&root, &telemetry_path).await.json();
        let samples = page["samples"].as_array()?;
        (!samples.is_empty()).then(|| page["samples"].clone())
    })
    .await;
    assert!(
        samples[0]["sample"]["memory"]["total_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    let inventory_path = format!("/api/v1/orgs/{org}/devices/{device_id}/inventory");
    let packages: Value = eventually("the inventory", || async {
        let page = server.get(&root, &inventory_path).await.json();
        (page["packages"].as_array()?.len() == 3).then(|| page["packages"].clone())
    })
    .await;
    assert!(
        packages
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "libssl3" && p["source_name"] == "openssl")
    );
    // Both went through the gateway (stored messages are counted there), not HTTPS.
    assert!(metric(&server, &root, "sentinel_mqtt_messages_stored_total").await >= 2);

    // A command queued through the API is pushed, verified, run, and its reports
    // (running, then how it ended) published back.
    let command = server
        .queue_command(
            &root,
            &org,
            &device_id,
            json!({"type": "run_script", "params": {"interpreter": "sh", "script": "echo hello over mqtt; echo oops >&2; exit 3"}}),
        )
        .await;
    let command_path = format!("/api/v1/orgs/{org}/commands/{command}");
    let done: Value = eventually("the command's result", || async {
        let record = server.get(&root, &command_path).await.json();
        (record["status"] == "failed").then_some(record)
    })
    .await;
    assert_eq!(done["exit_code"], 3);
    assert_eq!(done["stdout"], "hello over mqtt\n");
    assert_eq!(done["stderr"], "oops\n");
    assert!(done["delivered_at"].is_string() && done["started_at"].is_string());
    assert!(log().contains("connected to the MQTT gateway"), "{}", log());

    // Revoked: the session ends at once, and the agent's next CONNECT is refused
    // (it backs off as it does after an HTTPS 401).
    let refused_before = metric(&server, &root, "sentinel_mqtt_connect_refusals_total").await;
    let revoke = server
        .call(
            &root,
            Method::DELETE,
            &format!("/api/v1/orgs/{org}/devices/{device_id}"),
            json!({}),
        )
        .await;
    assert_eq!(revoke.status, 200, "{}", revoke.text);
    eventually("the revoked agent disconnected", || async {
        (metric(&server, &root, "sentinel_mqtt_connections").await == 0).then_some(())
    })
    .await;
    eventually("the revoked agent refused at CONNECT", || async {
        let refused = metric(&server, &root, "sentinel_mqtt_connect_refusals_total").await;
        (refused > refused_before && log().contains("may have been revoked")).then_some(())
    })
    .await;
    assert_eq!(metric(&server, &root, "sentinel_mqtt_connections").await, 0);

    server.stop().await;
}
