//! Command hand-over latency (devices issue, results in docs/benchmarks.md):
//! devices long-poll `GET /api/v1/agent/commands?wait=25`; commands are queued
//! one at a time through the API; each is timed from the moment its queue
//! request is sent (so the time includes queueing it: validation, signing,
//! the durable insert and its audit entry) to the moment the device's poll
//! answer carrying it has arrived.
//!
//! ```text
//! cargo run --release -p sentinel --example longpoll_bench -- [--devices N] [--commands N]
//! ```
//!
//! The real server runs in this process on 127.0.0.1 with TLS (SQLite, a
//! temporary data directory); devices and the admin are HTTPS clients.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Client;
use sentinel::config::{Config, Settings};
use sentinel_core::SystemClock;
use serde_json::{Value, json};

const PASSWORD: &str = "orbit lantern velvet quarry";

fn client(ca_pem: &str, addr: SocketAddr) -> Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Client::builder()
        .tls_backend_preconfigured(tls)
        .resolve("localhost", addr)
        .build()
        .unwrap()
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().unwrap())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let devices = arg("--devices", 100);
    let commands = arg("--commands", 1000);
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_settings(Settings {
        data_dir: Some(dir.path().join("data")),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        log_level: Some("warn".into()),
        mqtt_listen: Some(sentinel::config::MqttListen::Off),
        // One admin queues every command and every device enrolls from one
        // address: lift the limits that would otherwise pace the benchmark.
        rate_limit_requests: Some(1_000_000),
        rate_limit_enrollment: Some(1_000_000),
        ..Settings::default()
    })
    .unwrap();
    let server = sentinel::start(&config, Arc::new(SystemClock))
        .await
        .unwrap();
    let addr = server.local_addr;
    let base = format!("https://localhost:{}", addr.port());
    let http = client(server.ca_cert_pem.as_deref().unwrap(), addr);

    // An admin, an organization, and `devices` enrolled devices.
    let token = server.setup_url.clone().unwrap();
    let token = token.split("token=").nth(1).unwrap();
    let setup = json!({"token": token, "name": "Bench", "email": "bench@example.org", "password": PASSWORD});
    let resp = http
        .post(format!("{base}/api/v1/setup"))
        .json(&setup)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let login = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "bench@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = login
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = login.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{base}{path}"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("origin", &base)
    };
    let org: Value = admin(reqwest::Method::POST, "/api/v1/orgs")
        .json(&json!({"name": "Bench"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org = org["id"].as_str().unwrap().to_owned();
    let enrollment: Value = admin(
        reqwest::Method::POST,
        &format!("/api/v1/orgs/{org}/enrollment-tokens"),
    )
    .json(&json!({"max_uses": devices}))
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let enrollment = enrollment["token"].as_str().unwrap().to_owned();
    let mut agents = Vec::new();
    for n in 0..devices {
        let body = json!({
            "token": enrollment,
            "facts": {"hostname": format!("device-{n}"), "os_id": "debian", "os_name": "Debian",
                      "os_version_id": "12", "os_pretty_name": "Debian 12", "kernel": "6.1",
                      "architecture": "x86_64", "machine_id": null},
            "agent_version": "bench",
        });
        let resp: Value = http
            .post(format!("{base}/api/v1/agent/enroll"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        agents.push((
            resp["device_id"].as_str().unwrap().to_owned(),
            resp["device_token"].as_str().unwrap().to_owned(),
        ));
    }

    // Every device long-polls over its own connection, as real agents do,
    // noting when each command reaches it.
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    for (_, token) in &agents {
        let http = client(server.ca_cert_pem.as_deref().unwrap(), addr);
        let (base, token, arrived) = (base.clone(), token.clone(), arrived.clone());
        tokio::spawn(async move {
            loop {
                let Ok(resp) = http
                    .get(format!("{base}/api/v1/agent/commands?wait=25"))
                    .bearer_auth(&token)
                    .send()
                    .await
                else {
                    continue;
                };
                let Ok(batch) = resp.json::<Value>().await else {
                    continue;
                };
                let now = Instant::now();
                for command in batch["commands"].as_array().into_iter().flatten() {
                    let id = command["id"].as_str().unwrap().to_owned();
                    let first = {
                        let mut arrived = arrived.lock().unwrap();
                        let first = !arrived.contains_key(&id);
                        arrived.entry(id.clone()).or_insert(now);
                        first
                    };
                    if first {
                        // As the real agent does: report it running, then done,
                        // while the next poll waits.
                        let (http, base, token) = (http.clone(), base.clone(), token.clone());
                        tokio::spawn(async move {
                            for status in ["running", "succeeded"] {
                                let _ = http
                                    .post(format!("{base}/api/v1/agent/commands/{id}/result"))
                                    .bearer_auth(&token)
                                    .json(&json!({"status": status, "exit_code": 0}))
                                    .send()
                                    .await;
                            }
                        });
                    }
                }
            }
        });
    }
    // Let every poll reach the server and park.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut latencies = Vec::with_capacity(commands);
    let mut request_times = Vec::with_capacity(commands);
    let started = Instant::now();
    for n in 0..commands {
        let (device, _) = &agents[n % agents.len()];
        let sent = Instant::now();
        let resp: Value = admin(
            reqwest::Method::POST,
            &format!("/api/v1/orgs/{org}/devices/{device}/commands"),
        )
        .json(&json!({"type": "refresh_inventory"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let returned = Instant::now();
        request_times.push(returned - sent);
        let id = resp["id"].as_str().unwrap().to_owned();
        let arrival = loop {
            if let Some(at) = arrived.lock().unwrap().get(&id).copied() {
                break at;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(30),
                "command {id} never arrived"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        latencies.push(arrival.saturating_duration_since(sent));
        // Give the device's next poll time to park again, as a real fleet would
        // (commands are rare per device).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total = started.elapsed();
    latencies.sort();
    request_times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "the queue requests themselves: p50 {:.2} ms, p99 {:.2} ms",
        ms(request_times[request_times.len() / 2]),
        ms(request_times[(request_times.len() - 1) * 99 / 100])
    );
    let pct = |p: f64| ms(latencies[((latencies.len() - 1) as f64 * p).round() as usize]);
    println!(
        "{commands} commands to {devices} long-polling devices in {:.1} s: from queue request to the device: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        total.as_secs_f64(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        ms(*latencies.last().unwrap())
    );
    std::process::exit(0);
}
