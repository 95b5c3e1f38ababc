//! The MQTT device gateway through real clients: Debian's `mosquitto_pub` and
//! `mosquitto_sub` over MQTTS for MQTT 3.1.1 and 5.0 (allowed publishes stored;
//! other devices', other organizations' and wildcard topics refused; bad and
//! revoked credentials refused; commands pushed), and a raw client speaking
//! the packets directly for what the command-line tools cannot show (QoS 2,
//! keepalive, a second connection taking over, malformed packets, revocation
//! of a connected device, the audit allowance).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use reqwest::Method;
use rumqttc::mqttbytes::{self as m4, v4};
use rumqttc::v5::mqttbytes::{self as m5, v5};
use sentinel::config::MqttListen;
use sentinel_protocol::signing::{CommandVerifier, SignedCommand};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::client::TlsStream;

use crate::support::{Agent, Engine, Session, TestServer};

/// A server with the gateway on a free loopback port, over TLS.
async fn gateway_server() -> TestServer {
    gateway_server_on(Engine::Sqlite).await.unwrap()
}

/// The same on `engine`; None when PostgreSQL is asked for and not available
/// (outside CI).
pub(crate) async fn gateway_server_on(engine: Engine) -> Option<TestServer> {
    TestServer::start_on(engine, |s| {
        s.mqtt_listen = Some(MqttListen::At("127.0.0.1:0".parse().unwrap()));
    })
    .await
}

pub(crate) fn mqtt_addr(server: &TestServer) -> SocketAddr {
    server.running().mqtt_addr.expect("the gateway is on")
}

/// An enrolled device, with what the enrollment answer says.
struct Device {
    org: String,
    id: String,
    token: String,
    command_key: String,
}

impl Device {
    fn topic(&self, leaf: &str) -> String {
        format!("sentinel/{}/devices/{}/{leaf}", self.org, self.id)
    }
}

async fn enroll(server: &TestServer, root: &Session, org: &str, hostname: &str) -> Device {
    let token = server.enrollment_token(root, org, json!({})).await;
    let resp = server.try_enroll(&token, hostname).await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    let body = resp.json();
    Device {
        org: org.to_owned(),
        id: body["device_id"].as_str().unwrap().to_owned(),
        token: body["device_token"].as_str().unwrap().to_owned(),
        command_key: body["command_key"].as_str().unwrap().to_owned(),
    }
}

fn telemetry_batch(uptime: u64) -> String {
    json!({
        "samples": [{
            "at": 1_700_000_000,
            "sample": {
                "uptime_seconds": uptime, "load": [0.1, 0.2, 0.3], "cpu_percent": 12.5,
                "memory": {"total_bytes": 100, "available_bytes": 50, "used_bytes": 50},
                "swap": {"total_bytes": 0, "available_bytes": 0, "used_bytes": 0},
                "disks": [], "interfaces": [], "logged_in_users": 1, "warnings": []
            }
        }]
    })
    .to_string()
}

async fn telemetry_count(server: &TestServer, root: &Session, device: &Device) -> usize {
    let path = format!(
        "/api/v1/orgs/{}/devices/{}/telemetry",
        device.org, device.id
    );
    let resp = server.get(root, &path).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json()["samples"].as_array().unwrap().len()
}

/// The organization's audit entries of `action`, newest first.
async fn audit_entries(server: &TestServer, root: &Session, org: &str, action: &str) -> Vec<Value> {
    let resp = server
        .get(
            root,
            &format!("/api/v1/orgs/{org}/audit?action={action}&limit=100"),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json()["entries"].as_array().unwrap().clone()
}

pub(crate) async fn metric(server: &TestServer, root: &Session, name: &str) -> u64 {
    let text = server.get(root, "/api/v1/metrics").await.text;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in the metrics: {text}"))
}

/// Runs a mosquitto client (off the runtime thread), killed after 20 s.
async fn mosquitto(tool: &str, args: Vec<String>) -> Output {
    let tool = tool.to_owned();
    tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .arg("20")
            .arg(&tool)
            .args(&args)
            .output()
            .unwrap_or_else(|e| {
                panic!("{tool} could not run (apt-get install mosquitto-clients): {e}")
            })
    })
    .await
    .unwrap()
}

struct Client<'a> {
    port: u16,
    cafile: &'a Path,
    version: &'static str,
}

impl Client<'_> {
    /// The connection arguments of one device.
    fn args(&self, username: &str, password: &str) -> Vec<String> {
        [
            "-h",
            "localhost",
            "-p",
            &self.port.to_string(),
            "--cafile",
            self.cafile.to_str().unwrap(),
            "-V",
            self.version,
            "-u",
            username,
            "-P",
            password,
            "-i",
            &format!("test-{}", uuid::Uuid::new_v4().simple()),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    async fn publish(&self, device: &Device, topic: &str, qos: u8, message: &str) -> Output {
        let mut args = self.args(&device.id, &device.token);
        args.extend(["-t", topic, "-q", &qos.to_string(), "-m", message].map(String::from));
        mosquitto("mosquitto_pub", args).await
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn cafile(server: &TestServer, dir: &Path) -> PathBuf {
    let path = dir.join("ca.pem");
    std::fs::write(&path, &server.ca_pem).unwrap();
    path
}

#[tokio::test]
async fn mosquitto_clients_publish_where_allowed_and_are_refused_elsewhere() {
    let server = gateway_server().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let other_org = server.create_org(&root, "Other").await;
    let sibling = enroll(&server, &root, &org, "sibling").await;
    let stranger = enroll(&server, &root, &other_org, "stranger").await;
    let dir = tempfile::tempdir().unwrap();
    let ca = cafile(&server, dir.path());
    let port = mqtt_addr(&server).port();

    let mut last = None;
    for version in ["mqttv311", "mqttv5"] {
        // One device per version: each has its own audit allowance.
        let device = enroll(&server, &root, &org, version).await;
        let mut stored = 0;
        let client = Client {
            port,
            cafile: &ca,
            version,
        };
        // Allowed: its own telemetry topic, QoS 1 and QoS 0, stored and chained.
        for qos in [1, 0] {
            let out = client
                .publish(
                    &device,
                    &device.topic("telemetry"),
                    qos,
                    &telemetry_batch(7),
                )
                .await;
            assert!(out.status.success(), "{version}: {}", text(&out.stderr));
            stored += 1;
            if qos == 1 {
                // Acknowledged only once stored.
                assert_eq!(
                    telemetry_count(&server, &root, &device).await,
                    stored,
                    "{version} QoS 1"
                );
            } else {
                // QoS 0 has no acknowledgement: the client may leave first.
                crate::support::eventually("the QoS 0 sample", || async {
                    (telemetry_count(&server, &root, &device).await == stored).then_some(())
                })
                .await;
            }
        }
        // Refused: a sibling's topic, another organization's, a wildcard
        // topic name. MQTT 5 QoS 1 gets PUBACK 0x87 (mosquitto_pub names it);
        // 3.1.1 is disconnected.
        let before = audit_entries(&server, &root, &org, "device.mqtt_publish")
            .await
            .len();
        let qos = if version == "mqttv5" { 1 } else { 0 };
        for topic in [
            sibling.topic("telemetry"),
            stranger.topic("telemetry"),
            format!("sentinel/{org}/devices/{}/commands", device.id),
        ] {
            let out = client
                .publish(&device, &topic, qos, &telemetry_batch(8))
                .await;
            if version == "mqttv5" {
                assert!(
                    text(&out.stderr).contains("Not authorized"),
                    "{topic}: {}",
                    text(&out.stderr)
                );
            }
        }
        assert_eq!(telemetry_count(&server, &root, &device).await, stored);
        assert_eq!(telemetry_count(&server, &root, &sibling).await, 0);
        // QoS 0 has no answer: the client may have left before the entry was written.
        let refusals = crate::support::eventually("three audited refusals", || async {
            let entries = audit_entries(&server, &root, &org, "device.mqtt_publish").await;
            (entries.len() == before + 3).then_some(entries)
        })
        .await;
        let newest = &refusals[0];
        assert_eq!(newest["outcome"], "denied");
        assert_eq!(newest["actor_kind"], "device");
        assert_eq!(newest["actor_id"], device.id.as_str());
        assert_eq!(newest["entity_type"], "device");
        assert_eq!(newest["entity_id"], device.id.as_str());
        assert_eq!(newest["client_ip"], "127.0.0.1");
        let reasons: Vec<&str> = refusals[..3]
            .iter()
            .map(|e| e["detail"]["reason"].as_str().unwrap())
            .collect();
        assert!(reasons.contains(&"another device's topic"), "{reasons:?}");
        assert!(
            reasons.contains(&"another organization's topic"),
            "{reasons:?}"
        );
        assert!(
            reasons.contains(&"not a topic this device may use this way"),
            "{reasons:?}"
        );
        // The other organization's log holds none of it.
        assert!(
            audit_entries(&server, &root, &other_org, "device.mqtt_publish")
                .await
                .is_empty()
        );

        // A wildcard subscription and another device's command topic are refused.
        for filter in ["sentinel/#".to_owned(), sibling.topic("commands")] {
            let mut args = client.args(&device.id, &device.token);
            args.extend(["-t", &filter, "-q", "1", "-C", "1", "-W", "3"].map(String::from));
            let out = mosquitto("mosquitto_sub", args).await;
            assert!(
                text(&out.stdout).is_empty(),
                "{filter}: {}",
                text(&out.stdout)
            );
        }
        let subscribe_refusals = audit_entries(&server, &root, &org, "device.mqtt_subscribe").await;
        assert!(
            subscribe_refusals
                .iter()
                .any(|e| e["detail"]["topic"] == "sentinel/#"
                    && e["detail"]["reason"] == "wildcard topic filters are not allowed"),
            "{subscribe_refusals:?}"
        );

        // A wrong token, another device's token, and a malformed one: refused at CONNECT.
        for (user, password) in [
            (device.id.clone(), format!("{}x", device.token)),
            (device.id.clone(), sibling.token.clone()),
            (device.id.clone(), String::from("not-a-token")),
            (String::from("not-a-device"), device.token.clone()),
        ] {
            let mut args = client.args(&user, &password);
            args.extend(["-t", &device.topic("telemetry"), "-m", "{}"].map(String::from));
            let out = mosquitto("mosquitto_pub", args).await;
            assert!(!out.status.success(), "{version} {user}");
            let stderr = text(&out.stderr).to_lowercase();
            assert!(
                stderr.contains("bad user name or password"),
                "{version}: {stderr}"
            );
        }
        assert_eq!(telemetry_count(&server, &root, &device).await, stored);
        last = Some((device, stored));
    }
    let (device, stored) = last.unwrap();
    assert!(metric(&server, &root, "sentinel_mqtt_topic_refusals_total").await >= 10);
    assert!(metric(&server, &root, "sentinel_mqtt_connect_refusals_total").await >= 8);

    // Revoked: its token stops working on the gateway too.
    let revoke = server
        .call(
            &root,
            Method::DELETE,
            &format!("/api/v1/orgs/{org}/devices/{}", device.id),
            json!({}),
        )
        .await;
    assert_eq!(revoke.status, 200, "{}", revoke.text);
    for version in ["mqttv311", "mqttv5"] {
        let client = Client {
            port,
            cafile: &ca,
            version,
        };
        let out = client
            .publish(&device, &device.topic("telemetry"), 1, &telemetry_batch(9))
            .await;
        assert!(
            !out.status.success(),
            "{version}: a revoked device published"
        );
    }
    assert_eq!(telemetry_count(&server, &root, &device).await, stored);
    server.stop().await;
}

#[tokio::test]
async fn commands_reach_a_subscribed_device_at_once_signed_as_over_https() {
    let server = gateway_server().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let device = enroll(&server, &root, &org, "sensor").await;
    let dir = tempfile::tempdir().unwrap();
    let ca = cafile(&server, dir.path());
    let port = mqtt_addr(&server).port();

    for version in ["mqttv311", "mqttv5"] {
        // Queued while the device is away: delivered when it subscribes.
        let first = server
            .queue_command(&root, &org, &device.id, json!({"type": "reboot"}))
            .await;
        let client = Client {
            port,
            cafile: &ca,
            version,
        };
        let mut args = client.args(&device.id, &device.token);
        args.extend(
            [
                "-t",
                &device.topic("commands"),
                "-q",
                "1",
                "-C",
                "2",
                "-W",
                "15",
            ]
            .map(String::from),
        );
        let sub = tokio::task::spawn_blocking(move || {
            Command::new("mosquitto_sub").args(&args).output().unwrap()
        });
        // Once the first arrived (so the device is subscribed), a second one
        // is pushed the moment it is queued.
        let first_path = format!("/api/v1/orgs/{org}/commands/{first}");
        crate::support::eventually("the first command delivered", || async {
            let record = server.get(&root, &first_path).await.json();
            (record["status"] == "delivered").then_some(())
        })
        .await;
        let second = server
            .queue_command(
                &root,
                &org,
                &device.id,
                json!({"type": "install_package", "params": {"name": "curl"}}),
            )
            .await;
        let out = sub.await.unwrap();
        assert!(out.status.success(), "{version}: {}", text(&out.stderr));
        let verifier = CommandVerifier::from_hex(&device.command_key).unwrap();
        let now = sentinel_core::Clock::now(&server.clock).unix_seconds();
        let device_id: uuid::Uuid = device.id.parse().unwrap();
        let received: Vec<SignedCommand> = text(&out.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let ids: Vec<String> = received
            .iter()
            .map(|signed| {
                let command = verifier.open(signed, device_id, now).unwrap();
                command.id.to_string()
            })
            .collect();
        assert_eq!(ids, vec![first.clone(), second.clone()], "{version}");
        let second_path = format!("/api/v1/orgs/{org}/commands/{second}");
        crate::support::eventually("the second command delivered", || async {
            let record = server.get(&root, &second_path).await.json();
            (record["status"] == "delivered").then_some(())
        })
        .await;
    }

    // A result over MQTT goes through the same operation as over HTTPS:
    // stored and audited.
    let command = server
        .queue_command(&root, &org, &device.id, json!({"type": "reboot"}))
        .await;
    let result = json!({
        "command_id": command,
        "report": {"status": "succeeded", "exit_code": 0, "stdout": "done", "finished_at": 1_700_000_100}
    })
    .to_string();
    let client = Client {
        port,
        cafile: &ca,
        version: "mqttv5",
    };
    let out = client
        .publish(&device, &device.topic("results"), 1, &result)
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let record = server
        .get(&root, &format!("/api/v1/orgs/{org}/commands/{command}"))
        .await
        .json();
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["stdout"], "done");
    let audited = audit_entries(&server, &root, &org, "command.result_received").await;
    assert_eq!(audited[0]["entity_id"], command.as_str());
    assert_eq!(audited[0]["actor_kind"], "device");
    // Reported again (as a device that missed the PUBACK would): refused for
    // good with 0x83, not 0x80 (which says "try again"), and nothing changes.
    let again = json!({
        "command_id": command,
        "report": {"status": "failed", "exit_code": 1, "stdout": "again"}
    })
    .to_string();
    let out = client
        .publish(&device, &device.topic("results"), 1, &again)
        .await;
    assert!(
        text(&out.stderr).contains("Implementation specific error"),
        "{}",
        text(&out.stderr)
    );
    let record = server
        .get(&root, &format!("/api/v1/orgs/{org}/commands/{command}"))
        .await
        .json();
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["stdout"], "done");

    // Malformed telemetry is refused (PUBACK 0x99) and stores nothing.
    let out = client
        .publish(&device, &device.topic("telemetry"), 1, "{\"samples\": 5}")
        .await;
    assert!(
        text(&out.stderr).contains("Payload format invalid"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(telemetry_count(&server, &root, &device).await, 0);
    server.stop().await;
}

// ---------------------------------------------------------------------------
// A raw client: the packets themselves.

type Stream = TlsStream<tokio::net::TcpStream>;

async fn tls_connect(server: &TestServer) -> Stream {
    server.tls_connect(mqtt_addr(server)).await
}

struct Raw {
    stream: Stream,
    buf: BytesMut,
    v5: bool,
}

impl Raw {
    /// Connects and sends CONNECT; returns the CONNACK's return code byte.
    async fn connect(server: &TestServer, device: &Device, v5: bool, keep_alive: u16) -> (Raw, u8) {
        let mut raw = Raw {
            stream: tls_connect(server).await,
            buf: BytesMut::new(),
            v5,
        };
        let mut out = BytesMut::new();
        if v5 {
            let connect = v5::Connect {
                keep_alive,
                client_id: "raw".into(),
                clean_start: true,
                properties: None,
            };
            v5::Packet::Connect(
                connect,
                None,
                Some(v5::Login::new(&device.id, &device.token)),
            )
            .write(&mut out, None)
            .unwrap();
        } else {
            let mut connect = v4::Connect::new("raw");
            connect.keep_alive = keep_alive;
            connect.set_login(&device.id, &device.token);
            v4::Packet::Connect(connect)
                .write(&mut out, 1 << 20)
                .unwrap();
        }
        raw.send(&out).await;
        let code = match raw.next().await {
            Some(Packet::V4(v4::Packet::ConnAck(ack))) => ack.code as u8,
            Some(Packet::V5(v5::Packet::ConnAck(ack))) => {
                u8::from(ack.code == v5::ConnectReturnCode::Success) ^ 1
            }
            other => panic!("no CONNACK: {other:?}"),
        };
        (raw, code)
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    async fn publish(&mut self, topic: &str, qos: u8, pkid: u16, payload: &str) {
        let mut out = BytesMut::new();
        if self.v5 {
            let mut publish =
                v5::Publish::new(topic, m5::qos(qos).unwrap(), payload.to_owned(), None);
            publish.pkid = pkid;
            v5::Packet::Publish(publish).write(&mut out, None).unwrap();
        } else {
            let mut publish = v4::Publish::new(topic, m4::qos(qos).unwrap(), payload.as_bytes());
            publish.pkid = pkid;
            v4::Packet::Publish(publish)
                .write(&mut out, 1 << 20)
                .unwrap();
        }
        self.send(&out).await;
    }

    /// Publishes `payload` at QoS 1 and expects it acknowledged as stored.
    async fn publish_acked(&mut self, topic: &str, pkid: u16, payload: &str) {
        self.publish(topic, 1, pkid, payload).await;
        match self.next().await {
            Some(Packet::V5(v5::Packet::PubAck(ack))) => {
                assert_eq!(ack.reason, v5::PubAckReason::Success);
            }
            Some(Packet::V4(v4::Packet::PubAck(_))) => {}
            other => panic!("{other:?}"),
        }
    }

    /// The next packet, or None once the server closed the connection.
    async fn next(&mut self) -> Option<Packet> {
        loop {
            let parsed = if self.v5 {
                match v5::Packet::read(&mut self.buf, None) {
                    Ok(p) => Some(Packet::V5(p)),
                    Err(m5::Error::InsufficientBytes(_)) => None,
                    Err(e) => panic!("{e}"),
                }
            } else {
                match v4::Packet::read(&mut self.buf, 1 << 24) {
                    Ok(p) => Some(Packet::V4(p)),
                    Err(m4::Error::InsufficientBytes(_)) => None,
                    Err(e) => panic!("{e}"),
                }
            };
            if parsed.is_some() {
                return parsed;
            }
            let read =
                tokio::time::timeout(Duration::from_secs(10), self.stream.read_buf(&mut self.buf))
                    .await
                    .expect("the server said nothing for 10 s");
            match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The reason of the server's MQTT 5 DISCONNECT, then the connection's end.
    async fn disconnected(&mut self) -> Option<v5::DisconnectReasonCode> {
        let mut reason = None;
        while let Some(packet) = self.next().await {
            match packet {
                Packet::V5(v5::Packet::Disconnect(d)) => reason = Some(d.reason_code),
                other => panic!("expected the end, got {other:?}"),
            }
        }
        reason
    }
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Packet {
    V4(v4::Packet),
    V5(v5::Packet),
}

#[tokio::test]
async fn the_gateway_refuses_qos2_enforces_keepalive_and_lets_a_newer_connection_take_over() {
    let server = gateway_server().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let device = enroll(&server, &root, &org, "sensor").await;

    for (stored, v5) in [(0, false), (1, true)] {
        // QoS 2 is refused cleanly, and nothing is stored.
        let (mut raw, code) = Raw::connect(&server, &device, v5, 30).await;
        assert_eq!(code, 0);
        raw.publish(&device.topic("telemetry"), 2, 1, &telemetry_batch(1))
            .await;
        let reason = raw.disconnected().await;
        if v5 {
            assert_eq!(reason, Some(v5::DisconnectReasonCode::QoSNotSupported));
        }
        assert_eq!(telemetry_count(&server, &root, &device).await, stored);

        // A client silent past 1.5 × its keepalive is disconnected.
        let (mut raw, _) = Raw::connect(&server, &device, v5, 1).await;
        let started = Instant::now();
        let reason = raw.disconnected().await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(1400) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        if v5 {
            assert_eq!(reason, Some(v5::DisconnectReasonCode::KeepAliveTimeout));
        }

        // A ping keeps it alive and is answered.
        let (mut raw, _) = Raw::connect(&server, &device, v5, 30).await;
        let mut ping = BytesMut::new();
        ping.extend_from_slice(&[0xC0, 0x00]);
        raw.send(&ping).await;
        assert!(matches!(
            raw.next().await,
            Some(Packet::V4(v4::Packet::PingResp) | Packet::V5(v5::Packet::PingResp(_)))
        ));

        // A newer connection of the same device replaces the older.
        let (mut newer, code) = Raw::connect(&server, &device, v5, 30).await;
        assert_eq!(code, 0);
        let reason = raw.disconnected().await;
        if v5 {
            assert_eq!(reason, Some(v5::DisconnectReasonCode::SessionTakenOver));
        }
        newer
            .publish(&device.topic("telemetry"), 1, 9, &telemetry_batch(2))
            .await;
        let acked = match newer.next().await {
            Some(Packet::V4(v4::Packet::PubAck(a))) => a.pkid,
            Some(Packet::V5(v5::Packet::PubAck(a))) => {
                assert_eq!(a.reason, v5::PubAckReason::Success);
                a.pkid
            }
            other => panic!("no PUBACK: {other:?}"),
        };
        assert_eq!(acked, 9);
    }
    // Each PUBACK came after its sample was stored.
    assert_eq!(telemetry_count(&server, &root, &device).await, 2);
    server.stop().await;
}

#[tokio::test]
async fn malformed_packets_close_the_connection_and_the_gateway_keeps_serving() {
    let server = gateway_server().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let device = enroll(&server, &root, &org, "sensor").await;

    let garbage: [&[u8]; 6] = [
        // Not CONNECT first.
        &[0x30, 0x02, 0x00, 0x00],
        // A CONNECT for MQTT 3.1 (protocol level 3).
        &[
            0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x03, 0x02, 0x00, 0x1E, 0x00, 0x00,
        ],
        // A remaining length that never ends.
        &[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
        // A CONNECT claiming far more than it may be.
        &[0x10, 0xFF, 0xFF, 0xFF, 0x7F],
        // A CONNECT with a truncated protocol name.
        &[0x10, 0x03, 0x00, 0x09, b'M'],
        // HTTP.
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for bytes in garbage {
        let mut stream = tls_connect(&server).await;
        stream.write_all(bytes).await.unwrap();
        stream.flush().await.unwrap();
        let mut answer = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(12), stream.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "{bytes:?}: still open");
        // At most a refusing CONNACK (0x20 …), never anything else.
        assert!(
            answer.is_empty() || answer[0] == 0x20,
            "{bytes:?}: {answer:?}"
        );
    }
    // After CONNECT, in both versions: a reserved packet type, a PUBLISH
    // whose topic length overruns it, an oversized SUBSCRIBE header.
    for v5 in [false, true] {
        for bytes in [
            &[0xF0u8, 0x00][..],
            &[0x32, 0x04, 0x00, 0x40, b's', b'x'][..],
            &[0x82, 0xFF, 0xFF, 0xFF, 0x7F][..],
        ] {
            let (mut raw, code) = Raw::connect(&server, &device, v5, 30).await;
            assert_eq!(code, 0);
            raw.send(bytes).await;
            let reason = raw.disconnected().await;
            if v5 {
                assert!(
                    matches!(
                        reason,
                        Some(
                            v5::DisconnectReasonCode::MalformedPacket
                                | v5::DisconnectReasonCode::PacketTooLarge
                        )
                    ),
                    "{bytes:?}: {reason:?}"
                );
            }
        }
    }
    // Still serving.
    let (mut raw, code) = Raw::connect(&server, &device, true, 30).await;
    assert_eq!(code, 0);
    raw.publish_acked(&device.topic("telemetry"), 1, &telemetry_batch(3))
        .await;
    assert_eq!(telemetry_count(&server, &root, &device).await, 1);
    assert!(metric(&server, &root, "sentinel_mqtt_connect_refusals_total").await >= 6);
    server.stop().await;
}

#[tokio::test]
async fn a_revoked_device_is_disconnected_and_refusals_are_audited_within_an_allowance() {
    let server = gateway_server().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let device = enroll(&server, &root, &org, "noisy").await;
    let victim = enroll(&server, &root, &org, "victim").await;

    // Fifteen refused publishes: every one answered and counted, ten audited.
    let (mut raw, _) = Raw::connect(&server, &device, true, 30).await;
    for pkid in 1..=15 {
        raw.publish(&victim.topic("telemetry"), 1, pkid, &telemetry_batch(1))
            .await;
        match raw.next().await {
            Some(Packet::V5(v5::Packet::PubAck(ack))) => {
                assert_eq!(ack.pkid, pkid);
                assert_eq!(ack.reason, v5::PubAckReason::NotAuthorized);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        audit_entries(&server, &root, &org, "device.mqtt_publish")
            .await
            .len(),
        10
    );
    assert_eq!(
        metric(&server, &root, "sentinel_mqtt_topic_refusals_total").await,
        15
    );
    assert_eq!(
        metric(&server, &root, "sentinel_mqtt_refusals_unaudited_total").await,
        5
    );
    assert_eq!(telemetry_count(&server, &root, &victim).await, 0);
    assert_eq!(metric(&server, &root, "sentinel_mqtt_connections").await, 1);

    // Revoked while connected: disconnected at once.
    let revoke = server
        .call(
            &root,
            Method::DELETE,
            &format!("/api/v1/orgs/{org}/devices/{}", device.id),
            json!({}),
        )
        .await;
    assert_eq!(revoke.status, 200, "{}", revoke.text);
    assert_eq!(
        raw.disconnected().await,
        Some(v5::DisconnectReasonCode::AdministrativeAction)
    );
    let (_, code) = Raw::connect(&server, &device, true, 30).await;
    assert_ne!(code, 0, "a revoked device connected");
    server.stop().await;
}

#[tokio::test]
async fn a_session_ends_when_a_rotation_retires_its_token() {
    let server = gateway_server().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let device = enroll(&server, &root, &org, "sensor").await;
    let old = Agent {
        device_id: device.id.clone(),
        token: device.token.clone(),
    };
    let (mut raw, code) = Raw::connect(&server, &device, true, 30).await;
    assert_eq!(code, 0);

    // Rotated over HTTPS: the old token works until the new one is used, so
    // the session logged in with it goes on.
    let rotated =
        TestServer::send(server.as_agent(&old, Method::POST, "/api/v1/agent/token")).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let fresh = Agent {
        device_id: device.id.clone(),
        token: rotated.json()["device_token"].as_str().unwrap().to_owned(),
    };
    raw.publish_acked(&device.topic("telemetry"), 1, &telemetry_batch(1))
        .await;

    // The new token's first use retires the old one: the session that logged
    // in with it ends at once, and the old token logs in no more.
    let commands =
        |a: &Agent| TestServer::send(server.as_agent(a, Method::GET, "/api/v1/agent/commands"));
    assert_eq!(commands(&fresh).await.status, 200);
    assert_eq!(
        raw.disconnected().await,
        Some(v5::DisconnectReasonCode::NotAuthorized)
    );
    assert_eq!(commands(&old).await.status, 401);
    let (_, code) = Raw::connect(&server, &device, true, 30).await;
    assert_ne!(code, 0, "a retired token logged in");
    let renewed = Device {
        org: device.org.clone(),
        id: device.id.clone(),
        token: fresh.token.clone(),
        command_key: device.command_key.clone(),
    };
    let (mut raw, code) = Raw::connect(&server, &renewed, true, 30).await;
    assert_eq!(code, 0);
    raw.publish_acked(&device.topic("telemetry"), 1, &telemetry_batch(2))
        .await;
    assert_eq!(telemetry_count(&server, &root, &device).await, 2);
    server.stop().await;
}

#[tokio::test]
async fn pipelined_telemetry_is_stored_in_order_and_each_message_answered() {
    pipelined_telemetry(Engine::Sqlite).await;
}

#[tokio::test]
async fn pipelined_telemetry_is_stored_in_order_on_postgresql_too() {
    pipelined_telemetry(Engine::Postgres).await;
}

async fn pipelined_telemetry(engine: Engine) {
    let Some(server) = gateway_server_on(engine).await else {
        return;
    };
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let device = enroll(&server, &root, &org, "sensor").await;

    // Twenty publishes in one write (they reach the gateway together), the
    // seventh malformed: it alone is refused, the others are stored in order.
    let (mut raw, _) = Raw::connect(&server, &device, true, 30).await;
    let mut out = BytesMut::new();
    for pkid in 1..=20u16 {
        let payload = if pkid == 7 {
            String::from("{\"samples\": \"no\"}")
        } else {
            telemetry_batch(u64::from(pkid))
        };
        let mut publish = v5::Publish::new(
            device.topic("telemetry"),
            m5::QoS::AtLeastOnce,
            payload,
            None,
        );
        publish.pkid = pkid;
        v5::Packet::Publish(publish).write(&mut out, None).unwrap();
    }
    raw.send(&out).await;
    for pkid in 1..=20u16 {
        match raw.next().await {
            Some(Packet::V5(v5::Packet::PubAck(ack))) => {
                assert_eq!(ack.pkid, pkid);
                let expected = if pkid == 7 {
                    v5::PubAckReason::PayloadFormatInvalid
                } else {
                    v5::PubAckReason::Success
                };
                assert_eq!(ack.reason, expected, "{pkid}");
            }
            other => panic!("{pkid}: {other:?}"),
        }
    }
    let path = format!("/api/v1/orgs/{org}/devices/{}/telemetry", device.id);
    let page = server.get(&root, &path).await.json();
    let uptimes: Vec<u64> = page["samples"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|s| s["sample"]["uptime_seconds"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (1..=20).filter(|n| *n != 7).collect();
    assert_eq!(uptimes, expected);
    server.stop().await;
}
