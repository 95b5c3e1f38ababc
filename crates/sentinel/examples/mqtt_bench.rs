//! MQTT device gateway benchmark (issue 8; results in docs/benchmarks.md):
//!
//! 1. **Idle connections**: `--idle N` devices connect over MQTTS (3.1.1,
//!    keepalive 20 min) from a child process (the open-file limit is per
//!    process) and stay idle; the server process's resident memory is read
//!    before and after, and the difference divided by N.
//! 2. **QoS 1 telemetry**: `--publishers P` devices each keep `--window W`
//!    telemetry publishes in flight for `--seconds S`; a PUBACK is sent only
//!    after the sample is committed (SQLite, `synchronous = FULL`).
//! 3. **Command push**: `--push-devices D` devices subscribe to their command
//!    topic; `--commands C` commands are queued one at a time through the
//!    HTTPS API, each timed from the moment its queue request is sent until
//!    the PUBLISH carrying it has reached the device.
//!
//! ```text
//! cargo build --release -p sentinel --example mqtt_bench
//! target/release/examples/mqtt_bench [--idle 10000] [--publishers 20] [--window 16] \
//!     [--seconds 20] [--push-devices 100] [--commands 1000] [--plain]
//! ```
//!
//! The real server runs in this process on 127.0.0.1 (SQLite, a temporary
//! data directory); `--plain` serves plain MQTT instead of MQTTS.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use reqwest::Client;
use rumqttc::mqttbytes::{QoS, v4};
use sentinel::config::{Config, MqttListen, Settings};
use sentinel_core::SystemClock;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const PASSWORD: &str = "orbit lantern velvet quarry";

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().unwrap())
}

fn arg_text(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn roots(ca_pem: &str) -> rustls::RootCertStore {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

fn tls_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(ca_pem))
        .with_no_client_auth(),
    )
}

fn https(ca_pem: &str, addr: SocketAddr) -> Client {
    Client::builder()
        .tls_backend_preconfigured((*tls_config(ca_pem)).clone())
        .resolve("localhost", addr)
        .build()
        .unwrap()
}

/// Connects one device and waits for its CONNACK.
async fn connect(
    addr: SocketAddr,
    tls: Option<&Arc<rustls::ClientConfig>>,
    device: &str,
    token: &str,
    keep_alive: u16,
) -> Box<dyn Io> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut stream: Box<dyn Io> = match tls {
        Some(config) => {
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            Box::new(connector.connect(name, tcp).await.unwrap())
        }
        None => Box::new(tcp),
    };
    let mut connect = v4::Connect::new(device);
    connect.keep_alive = keep_alive;
    connect.set_login(device, token);
    let mut out = BytesMut::new();
    v4::Packet::Connect(connect)
        .write(&mut out, 1 << 20)
        .unwrap();
    stream.write_all(&out).await.unwrap();
    stream.flush().await.unwrap();
    let mut buf = BytesMut::new();
    match next(&mut stream, &mut buf).await {
        Some(v4::Packet::ConnAck(ack)) if ack.code == v4::ConnectReturnCode::Success => stream,
        other => panic!("{device}: no CONNACK: {other:?}"),
    }
}

async fn next(stream: &mut Box<dyn Io>, buf: &mut BytesMut) -> Option<v4::Packet> {
    loop {
        match v4::Packet::read(buf, 1 << 20) {
            Ok(packet) => return Some(packet),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(e) => panic!("{e}"),
        }
        if stream.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// The child process of phase 1: reads the devices listed on stdin (`id
/// token` lines, then an empty line), connects the first half, prints a line,
/// waits for a line on stdin, connects the rest, prints another, and holds the
/// connections until stdin closes.
async fn idle_clients() {
    let addr: SocketAddr = arg_text("--addr").unwrap().parse().unwrap();
    let tls = arg_text("--ca").map(|path| tls_config(&std::fs::read_to_string(path).unwrap()));
    let stdin = std::io::stdin();
    let mut devices = Vec::new();
    for line in stdin.lock().lines() {
        let line = line.unwrap();
        if line.is_empty() {
            break;
        }
        let (id, token) = line.split_once(' ').unwrap();
        devices.push((id.to_owned(), token.to_owned()));
    }
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let second = devices.split_off(devices.len() / 2);
    let mut held = Vec::new();
    for (n, half) in [devices, second].into_iter().enumerate() {
        if n == 1 {
            tokio::task::spawn_blocking(|| {
                let mut go = String::new();
                let _ = std::io::stdin().read_line(&mut go);
            })
            .await
            .unwrap();
        }
        let mut tasks = Vec::new();
        for (id, token) in half {
            let (gate, tls) = (gate.clone(), tls.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                connect(addr, tls.as_ref(), &id, &token, 1200).await
            }));
        }
        for task in tasks {
            held.push(task.await.unwrap());
        }
        println!(
            "connected {} in {:.1} s",
            held.len(),
            started.elapsed().as_secs_f64()
        );
        std::io::stdout().flush().unwrap();
    }
    // Hold until the parent closes stdin.
    tokio::task::spawn_blocking(|| {
        let mut rest = String::new();
        let _ = std::io::stdin().read_line(&mut rest);
    })
    .await
    .unwrap();
    drop(held);
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if flag("--client-role") {
        idle_clients().await;
        return;
    }
    let idle = arg("--idle", 10_000);
    let publishers = arg("--publishers", 20);
    let window = arg("--window", 16);
    let seconds = arg("--seconds", 20) as u64;
    let push_devices = arg("--push-devices", 100);
    let commands = arg("--commands", 1000);
    let plain = flag("--plain");

    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_settings(Settings {
        data_dir: Some(dir.path().join("data")),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        log_level: Some("warn".into()),
        mqtt_listen: Some(MqttListen::At("127.0.0.1:0".parse().unwrap())),
        mqtt_plain: Some(plain),
        max_connections: Some(19_000),
        // One admin, one address, devices publishing as fast as they can:
        // lift the limits that would otherwise pace the benchmark.
        rate_limit_requests: Some(1_000_000),
        rate_limit_enrollment: Some(1_000_000),
        rate_limit_agent: Some(1_000_000),
        ..Settings::default()
    })
    .unwrap();
    let server = sentinel::start(&config, Arc::new(SystemClock))
        .await
        .unwrap();
    let addr = server.local_addr;
    let mqtt = server.mqtt_addr.unwrap();
    let ca_pem = server.ca_cert_pem.clone().unwrap();
    let tls = (!plain).then(|| tls_config(&ca_pem));
    let base = format!("https://localhost:{}", addr.port());
    let http = https(&ca_pem, addr);

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
    let total = idle.max(publishers).max(push_devices);
    let enrollment: Value = admin(
        reqwest::Method::POST,
        &format!("/api/v1/orgs/{org}/enrollment-tokens"),
    )
    .json(&json!({"max_uses": total}))
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let enrollment = enrollment["token"].as_str().unwrap().to_owned();

    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::new();
    for n in 0..total {
        let (gate, http, base, enrollment) =
            (gate.clone(), http.clone(), base.clone(), enrollment.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
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
            (
                resp["device_id"].as_str().unwrap().to_owned(),
                resp["device_token"].as_str().unwrap().to_owned(),
            )
        }));
    }
    let mut devices = Vec::new();
    for task in tasks {
        devices.push(task.await.unwrap());
    }
    println!(
        "enrolled {total} devices in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        if plain { "plain MQTT" } else { "MQTTS" }
    );

    // 1. Idle connections, from a child process.
    if idle > 0 {
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca_pem).unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = rss_kib();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child.args(["--client-role", "--addr", &mqtt.to_string()]);
        if !plain {
            child.arg("--ca").arg(&ca_file);
        }
        let mut child = child
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for (id, token) in devices.iter().take(idle) {
            writeln!(stdin, "{id} {token}").unwrap();
        }
        writeln!(stdin).unwrap();
        stdin.flush().unwrap();
        // Reads one line of the child's output off the runtime's threads.
        async fn line_of(
            mut reader: std::io::BufReader<std::process::ChildStdout>,
        ) -> (std::io::BufReader<std::process::ChildStdout>, String) {
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                (reader, line)
            })
            .await
            .unwrap()
        }
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (stdout, line) = line_of(stdout).await;
        println!("idle: {}", line.trim());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let half = rss_kib();
        writeln!(stdin).unwrap();
        stdin.flush().unwrap();
        let (_stdout, line) = line_of(stdout).await;
        println!("idle: {}", line.trim());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = rss_kib();
        let per = (after.saturating_sub(before) * 1024) as f64 / idle as f64;
        let second = idle - idle / 2;
        let marginal = (after.saturating_sub(half) * 1024) as f64 / second as f64;
        println!(
            "idle: {idle} connections, server RSS {} MiB -> {} MiB (half) -> {} MiB: {:.1} KiB per connection overall, {:.1} KiB each for the second half",
            before / 1024,
            half / 1024,
            after / 1024,
            per / 1024.0,
            marginal / 1024.0
        );
        drop(stdin);
        let _ = child.wait();
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // 2. QoS 1 telemetry throughput.
    if publishers > 0 {
        let sample = json!({
            "samples": [{"at": 1_700_000_000, "sample": {
                "uptime_seconds": 5, "load": [0.1, 0.2, 0.3], "cpu_percent": 12.5,
                "memory": {"total_bytes": 100, "available_bytes": 50, "used_bytes": 50},
                "swap": {"total_bytes": 0, "available_bytes": 0, "used_bytes": 0},
                "disks": [], "interfaces": [], "logged_in_users": 1, "warnings": []}}]
        })
        .to_string();
        let acked = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for (id, token) in devices.iter().take(publishers) {
            let (id, token) = (id.clone(), token.clone());
            let (tls, acked, org, sample) =
                (tls.clone(), acked.clone(), org.clone(), sample.clone());
            tasks.push(tokio::spawn(async move {
                let mut stream = connect(mqtt, tls.as_ref(), &id, &token, 60).await;
                let topic = format!("sentinel/{org}/devices/{id}/telemetry");
                let mut buf = BytesMut::new();
                let mut pkid: u16 = 0;
                while Instant::now() < deadline {
                    let mut out = BytesMut::new();
                    for _ in 0..window {
                        pkid = pkid.checked_add(1).unwrap_or(1);
                        let mut publish =
                            v4::Publish::new(&topic, QoS::AtLeastOnce, sample.as_bytes());
                        publish.pkid = pkid;
                        v4::Packet::Publish(publish)
                            .write(&mut out, 1 << 20)
                            .unwrap();
                    }
                    stream.write_all(&out).await.unwrap();
                    stream.flush().await.unwrap();
                    for _ in 0..window {
                        match next(&mut stream, &mut buf).await {
                            Some(v4::Packet::PubAck(_)) => {
                                acked.fetch_add(1, Ordering::Relaxed);
                            }
                            other => panic!("{other:?}"),
                        }
                    }
                }
            }));
        }
        let started = Instant::now();
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = started.elapsed().as_secs_f64();
        let n = acked.load(Ordering::Relaxed);
        println!(
            "telemetry: {publishers} devices x {window} in flight: {n} QoS 1 messages acknowledged (each committed) in {elapsed:.1} s = {:.0} msg/s",
            n as f64 / elapsed
        );
    }

    // 3. Command push latency.
    if push_devices > 0 && commands > 0 {
        let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let subscribed = Arc::new(tokio::sync::Semaphore::new(0));
        for (id, token) in devices.iter().take(push_devices) {
            let (id, token) = (id.clone(), token.clone());
            let (tls, arrived, org, subscribed) = (
                tls.clone(),
                arrived.clone(),
                org.clone(),
                subscribed.clone(),
            );
            tokio::spawn(async move {
                let mut stream = connect(mqtt, tls.as_ref(), &id, &token, 600).await;
                let mut out = BytesMut::new();
                let subscribe = v4::Subscribe::new(
                    format!("sentinel/{org}/devices/{id}/commands"),
                    QoS::AtLeastOnce,
                );
                let mut subscribe = subscribe;
                subscribe.pkid = 1;
                v4::Packet::Subscribe(subscribe)
                    .write(&mut out, 1 << 20)
                    .unwrap();
                stream.write_all(&out).await.unwrap();
                stream.flush().await.unwrap();
                let mut buf = BytesMut::new();
                while let Some(packet) = next(&mut stream, &mut buf).await {
                    match packet {
                        v4::Packet::SubAck(_) => subscribed.add_permits(1),
                        v4::Packet::Publish(publish) => {
                            let now = Instant::now();
                            let command: Value = serde_json::from_slice(&publish.payload).unwrap();
                            let id = command["id"].as_str().unwrap().to_owned();
                            arrived.lock().unwrap().entry(id).or_insert(now);
                            let mut ack = BytesMut::new();
                            v4::Packet::PubAck(v4::PubAck::new(publish.pkid))
                                .write(&mut ack, 1 << 20)
                                .unwrap();
                            stream.write_all(&ack).await.unwrap();
                            stream.flush().await.unwrap();
                        }
                        other => panic!("{other:?}"),
                    }
                }
            });
        }
        let _all = subscribed.acquire_many(push_devices as u32).await.unwrap();
        let mut latencies = Vec::with_capacity(commands);
        for n in 0..commands {
            let (device, _) = &devices[n % push_devices];
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
            let id = resp["id"].as_str().unwrap().to_owned();
            let at = loop {
                if let Some(at) = arrived.lock().unwrap().get(&id).copied() {
                    break at;
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            };
            latencies.push(at.saturating_duration_since(sent));
        }
        latencies.sort();
        let pct = |p: f64| {
            let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[i].as_secs_f64() * 1000.0
        };
        println!(
            "push: {commands} commands over {push_devices} subscribed devices: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms (queue request sent -> PUBLISH received)",
            pct(0.50),
            pct(0.95),
            pct(0.99),
            pct(1.0)
        );
    }
    server.shutdown().await;
}
