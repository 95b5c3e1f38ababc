//! IoT ingestion through the real server and a real MQTT broker (Mosquitto on
//! 127.0.0.1:1883, anonymous): ChirpStack v4 uplinks published there are
//! matched by DevEUI, decoded by the device profile's decoder and stored as
//! device events; hostile decoders and malformed events leave the worker
//! healthy; an uplink published while the worker is away arrives once. And the
//! API's attacks: other organizations' ids, roles without the permission,
//! malformed and oversized input, and a broker password that never comes back.
//!
//! Tests that need the broker print why and pass when it is not there, unless
//! `CI=true`, where its absence fails them.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Session, TestServer, eventually, on_both_engines};

const BROKER: (&str, u16) = ("127.0.0.1", 1883);

/// A temperature (centi-degrees, big-endian) and humidity (half percent) sensor.
pub(crate) const TEMPERATURE_DECODER: &str = "function decodeUplink(input) {
  var b = input.bytes;
  return { data: { temperature: ((b[0] << 8) | b[1]) / 100, humidity: b[2] / 2 } };
}";

/// The body of a broker connection to the test broker subscribed to `topic`.
pub fn broker_body(topic: &str, enabled: bool) -> Value {
    json!({
        "name": "ChirpStack",
        "host": BROKER.0,
        "port": BROKER.1,
        "topic": topic,
        "format": "chirpstack_v4",
        "enabled": enabled,
    })
}

/// Whether the broker is there; outside CI its absence skips the test.
pub(crate) async fn broker_available() -> bool {
    let connected = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(BROKER),
    )
    .await;
    if matches!(connected, Ok(Ok(_))) {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but no MQTT broker answers on 127.0.0.1:1883"
    );
    eprintln!(
        "SKIPPED: no MQTT broker on 127.0.0.1:1883 (start mosquitto; CI=true makes this fail)"
    );
    false
}

/// Publishes `payload` to `topic` with QoS 1 and waits for the broker's PUBACK.
pub(crate) async fn publish(topic: &str, payload: Vec<u8>) {
    let id = format!("sentinel-test-{}", Uuid::new_v4().simple());
    let mut options = MqttOptions::new(id, BROKER.0, BROKER.1);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(options, 10);
    client
        .publish(topic, QoS::AtLeastOnce, false, payload)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::Incoming(Packet::PubAck(_)) = events.poll().await.unwrap() {
                break;
            }
        }
    })
    .await
    .expect("the broker acknowledged the publish");
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), events.poll()).await;
}

/// A ChirpStack v4 uplink event.
pub(crate) fn uplink(dev_eui: &str, dedup: &str, bytes: &[u8]) -> Vec<u8> {
    json!({
        "deduplicationId": dedup,
        "time": "2026-01-01T12:00:00.000+00:00",
        "deviceInfo": {"tenantName": "t", "applicationName": "a", "deviceName": "s1", "devEui": dev_eui},
        "devAddr": "00189440",
        "fCnt": 7,
        "fPort": 2,
        "data": STANDARD.encode(bytes),
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": -40}],
    })
    .to_string()
    .into_bytes()
}

/// One test's topics: its own prefix, so parallel tests see only their messages.
pub(crate) struct Topics {
    prefix: String,
}

impl Topics {
    pub(crate) fn new() -> Topics {
        Topics {
            prefix: format!("sentinel-test/{}", Uuid::new_v4().simple()),
        }
    }

    pub(crate) fn filter(&self) -> String {
        format!("{}/application/+/device/+/event/up", self.prefix)
    }

    pub(crate) fn uplink(&self, dev_eui: &str) -> String {
        format!("{}/application/1/device/{dev_eui}/event/up", self.prefix)
    }
}

/// An organization with one device (DevEUI `dev_eui`, a profile with
/// `decoder`) and a connection to the test broker: (org, device, profile,
/// integration).
async fn iot_org(
    server: &TestServer,
    admin: &Session,
    topics: &Topics,
    dev_eui: &str,
    decoder: &str,
) -> (String, String, String, String) {
    let org = server.create_org(admin, "Sensors").await;
    let device = server.enroll(admin, &org, "gateway-1").await.device_id;
    let profile = server
        .call(
            admin,
            Method::POST,
            &format!("/api/v1/orgs/{org}/device-profiles"),
            json!({"name": "TH sensor", "decoder": decoder}),
        )
        .await;
    assert_eq!(profile.status, 201, "{}", profile.text);
    let profile = profile.json()["id"].as_str().unwrap().to_owned();
    let set = server
        .call(
            admin,
            Method::PUT,
            &format!("/api/v1/orgs/{org}/devices/{device}/lorawan"),
            json!({"dev_eui": dev_eui, "profile_id": profile}),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    let integration = server
        .call(
            admin,
            Method::POST,
            &format!("/api/v1/orgs/{org}/integrations"),
            broker_body(&topics.filter(), true),
        )
        .await;
    assert_eq!(integration.status, 201, "{}", integration.text);
    let integration = integration.json()["id"].as_str().unwrap().to_owned();
    (org, device, profile, integration)
}

async fn events(server: &TestServer, admin: &Session, org: &str, device: &str) -> Vec<Value> {
    let page = server
        .get(
            admin,
            &format!("/api/v1/orgs/{org}/devices/{device}/events?limit=100"),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    page.json()["events"].as_array().unwrap().clone()
}

async fn status(server: &TestServer, admin: &Session, org: &str, integration: &str) -> Value {
    let resp = server
        .get(
            admin,
            &format!("/api/v1/orgs/{org}/integrations/{integration}/status"),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json()
}

/// Publishes `payload` until `count` events are stored: the first publishes
/// may come before the worker's subscription is in place. Only for uplinks
/// with a deduplication id, whose repeats are not stored twice.
pub(crate) async fn publish_until_stored(
    server: &TestServer,
    admin: &Session,
    (org, device): (&str, &str),
    topic: &str,
    payload: Vec<u8>,
    count: usize,
) -> Vec<Value> {
    for _ in 0..40 {
        publish(topic, payload.clone()).await;
        for _ in 0..5 {
            let stored = events(server, admin, org, device).await;
            if stored.len() >= count {
                return stored;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!("the uplink was never stored");
}

/// Waits until the newest event differs from `known` events, and returns it.
pub(crate) async fn next_event(
    server: &TestServer,
    admin: &Session,
    org: &str,
    device: &str,
    known: usize,
) -> Value {
    eventually("the next uplink to be stored", || async {
        let stored = events(server, admin, org, device).await;
        (stored.len() > known).then(|| stored[0].clone())
    })
    .await
}

on_both_engines!(
    uplinks_are_decoded_stored_and_counted,
    |server: TestServer| async move {
        if !broker_available().await {
            return server;
        }
        let admin = server.setup_admin().await;
        let topics = Topics::new();
        let eui = "70b3d57ed0000001";
        let (org, device, profile, integration) =
            iot_org(&server, &admin, &topics, eui, TEMPERATURE_DECODER).await;

        // 25.00 °C, 50 %; the DevEUI's case does not matter.
        let stored = publish_until_stored(
            &server,
            &admin,
            (&org, &device),
            &topics.uplink(eui),
            uplink(&eui.to_uppercase(), "first", &[0x09, 0xc4, 0x64]),
            1,
        )
        .await;
        assert_eq!(stored.len(), 1, "{stored:?}");
        let event = &stored[0];
        assert_eq!(
            event["decoded"]["data"],
            json!({"temperature": 25, "humidity": 50})
        );
        assert_eq!(event["decoder_error"], Value::Null);
        assert_eq!(event["f_port"], 2);
        assert_eq!(event["payload_base64"], STANDARD.encode([0x09, 0xc4, 0x64]));
        assert_eq!(event["integration_id"], integration.as_str());
        let before = status(&server, &admin, &org, &integration).await;
        assert_eq!(before["connected"], true, "{before}");

        // A redelivered uplink is not stored again; an unknown DevEUI and a
        // malformed event are counted, dropped and acknowledged.
        publish(
            &topics.uplink(eui),
            uplink(eui, "first", &[0x09, 0xc4, 0x64]),
        )
        .await;
        publish(
            &topics.uplink("70b3d57ed0009999"),
            uplink("70b3d57ed0009999", "other", &[1, 2, 3]),
        )
        .await;
        publish(&topics.uplink(eui), b"{\"deviceInfo\": 42".to_vec()).await;
        publish(&topics.uplink(eui), b"not json at all".to_vec()).await;
        publish(
            &topics.uplink(eui),
            uplink(eui, "second", &[0x00, 0x64, 0x32]),
        )
        .await;
        let second = next_event(&server, &admin, &org, &device, 1).await;
        assert_eq!(
            second["decoded"]["data"],
            json!({"temperature": 1, "humidity": 25})
        );
        // (A probe still in flight when the first uplink was stored may add
        // to the duplicates.)
        let after = eventually("the counters", || async {
            let now = status(&server, &admin, &org, &integration).await;
            let grown = |k: &str| now[k].as_u64().unwrap() - before[k].as_u64().unwrap();
            (grown("stored") == 1 && grown("unknown_dev_eui") == 1 && grown("malformed") == 2)
                .then_some(now)
        })
        .await;
        let grown = |k: &str| after[k].as_u64().unwrap() - before[k].as_u64().unwrap();
        assert!(grown("duplicates") >= 1, "{after}");
        assert_eq!(grown("received"), 4 + grown("duplicates"), "{after}");
        assert_eq!(after["connected"], true, "{after}");
        assert_eq!(events(&server, &admin, &org, &device).await.len(), 2);

        // Hostile decoders: each uplink is stored raw with the error, and the
        // worker decodes the next one normally.
        let hostile = [
            ("function decodeUplink(input) { while (true) {} }", "time"),
            (
                "function decodeUplink(input) { var a = []; while (true) { a.push(new Array(1000000).fill(7)); } }",
                "memory",
            ),
            (
                "function decodeUplink(input) { function down(n) { return down(n + 1) + 1; } return { data: { n: down(0) } }; }",
                "stack",
            ),
            (
                "function decodeUplink(input) { throw new Error('bad sensor'); }",
                "bad sensor",
            ),
        ];
        let mut known = 2;
        for (n, (code, error)) in hostile.iter().enumerate() {
            let changed = server
                .call(
                    &admin,
                    Method::PUT,
                    &format!("/api/v1/orgs/{org}/device-profiles/{profile}"),
                    json!({"name": "TH sensor", "decoder": code}),
                )
                .await;
            assert_eq!(changed.status, 200, "{}", changed.text);
            publish(
                &topics.uplink(eui),
                uplink(eui, &format!("hostile-{n}"), &[1, 2, 3]),
            )
            .await;
            let event = next_event(&server, &admin, &org, &device, known).await;
            known += 1;
            let message = event["decoder_error"].as_str().unwrap_or_default();
            assert!(message.contains(error), "{code}: {event}");
            assert_eq!(
                event["payload_base64"],
                STANDARD.encode([1, 2, 3]),
                "{event}"
            );
        }
        let restored = server
            .call(
                &admin,
                Method::PUT,
                &format!("/api/v1/orgs/{org}/device-profiles/{profile}"),
                json!({"name": "TH sensor", "decoder": TEMPERATURE_DECODER}),
            )
            .await;
        assert_eq!(restored.status, 200, "{}", restored.text);
        publish(
            &topics.uplink(eui),
            uplink(eui, "healthy", &[0x0a, 0x28, 0x50]),
        )
        .await;
        let event = next_event(&server, &admin, &org, &device, known).await;
        assert_eq!(
            event["decoded"]["data"],
            json!({"temperature": 26, "humidity": 40})
        );
        let last = status(&server, &admin, &org, &integration).await;
        assert_eq!(
            last["decode_errors"].as_u64().unwrap() - before["decode_errors"].as_u64().unwrap(),
            4,
            "{last}"
        );
        assert_eq!(last["connected"], true, "{last}");

        // Events page newest first.
        let first_page = server
            .get(
                &admin,
                &format!("/api/v1/orgs/{org}/devices/{device}/events?limit=2"),
            )
            .await
            .json();
        let next = first_page["next"].as_str().unwrap();
        let second_page = server
            .get(
                &admin,
                &format!("/api/v1/orgs/{org}/devices/{device}/events?limit=100&before={next}"),
            )
            .await
            .json();
        assert_eq!(first_page["events"].as_array().unwrap().len(), 2);
        assert_eq!(second_page["events"].as_array().unwrap().len(), known - 1);
        assert_eq!(second_page["next"], Value::Null);
        server
    }
);

/// At least once with idempotent storage: an uplink published while the
/// worker is stopped is kept by the broker for its persistent session and
/// arrives when the worker is back, once, however often it is delivered.
#[tokio::test]
async fn an_uplink_published_while_the_worker_is_away_arrives_once() {
    if !broker_available().await {
        return;
    }
    let mut server = TestServer::start().await;
    let admin = server.setup_admin().await;
    let topics = Topics::new();
    let eui = "70b3d57ed0000002";
    let (org, device, _, integration) =
        iot_org(&server, &admin, &topics, eui, TEMPERATURE_DECODER).await;
    publish_until_stored(
        &server,
        &admin,
        (&org, &device),
        &topics.uplink(eui),
        uplink(eui, "probe", &[0, 100, 100]),
        1,
    )
    .await;

    // The worker stops with the server; the broker holds what comes meanwhile.
    server.shut_down().await;
    publish(
        &topics.uplink(eui),
        uplink(eui, "while-away", &[0x09, 0xc4, 0x64]),
    )
    .await;
    server.start_again().await;
    let admin = server
        .login("root@example.org", crate::support::PASSWORD)
        .await
        .unwrap();
    let event = next_event(&server, &admin, &org, &device, 1).await;
    assert_eq!(
        event["decoded"]["data"],
        json!({"temperature": 25, "humidity": 50})
    );

    // Disabled: the worker stops; enabled again, it resumes the session.
    let path = format!("/api/v1/orgs/{org}/integrations/{integration}");
    let toggle = |enabled: bool| {
        server.call(
            &admin,
            Method::PUT,
            &path,
            broker_body(&topics.filter(), enabled),
        )
    };
    assert_eq!(toggle(false).await.status, 200);
    assert_eq!(
        status(&server, &admin, &org, &integration).await["running"],
        false
    );
    publish(
        &topics.uplink(eui),
        uplink(eui, "while-disabled", &[0x00, 0x64, 0x32]),
    )
    .await;
    assert_eq!(toggle(true).await.status, 200);
    let event = next_event(&server, &admin, &org, &device, 2).await;
    assert_eq!(
        event["decoded"]["data"],
        json!({"temperature": 1, "humidity": 25})
    );

    // The same uplink again (as a broker redelivers it): not stored twice.
    publish(
        &topics.uplink(eui),
        uplink(eui, "while-disabled", &[0x00, 0x64, 0x32]),
    )
    .await;
    eventually("the redelivery to be counted", || async {
        (status(&server, &admin, &org, &integration).await["duplicates"] == 1).then_some(())
    })
    .await;
    assert_eq!(events(&server, &admin, &org, &device).await.len(), 3);
    server.stop().await;
}

#[tokio::test]
async fn iot_routes_refuse_attacks_and_never_show_the_broker_password() {
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    let org = server.create_org(&admin, "Mine").await;
    let other = server.create_org(&admin, "Theirs").await;
    let device = server.enroll(&admin, &org, "sensor-host").await.device_id;
    let second = server.enroll(&admin, &org, "sensor-host-2").await.device_id;
    let api = |path: &str| format!("/api/v1/orgs/{org}/{path}");
    let theirs = |path: &str| format!("/api/v1/orgs/{other}/{path}");

    let profile = server
        .call(
            &admin,
            Method::POST,
            &api("device-profiles"),
            json!({"name": "TH", "decoder": TEMPERATURE_DECODER}),
        )
        .await;
    assert_eq!(profile.status, 201, "{}", profile.text);
    let profile = profile.json()["id"].as_str().unwrap().to_owned();
    const PASSWORD: &str = "broker-pa55word-never-shown";
    let mut body = broker_body("sentinel-test/attacks/#", false);
    body["username"] = json!("sentinel");
    body["password"] = json!(PASSWORD);
    let created = server
        .call(&admin, Method::POST, &api("integrations"), body.clone())
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json()["has_password"], true);
    let integration = created.json()["id"].as_str().unwrap().to_owned();
    let set = server
        .call(
            &admin,
            Method::PUT,
            &api(&format!("devices/{device}/lorawan")),
            json!({"dev_eui": "0011223344556677", "profile_id": profile}),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);

    // Another organization's ids are unknown there.
    for (method, path) in [
        (Method::GET, theirs(&format!("device-profiles/{profile}"))),
        (Method::PUT, theirs(&format!("device-profiles/{profile}"))),
        (
            Method::DELETE,
            theirs(&format!("device-profiles/{profile}")),
        ),
        (Method::GET, theirs(&format!("integrations/{integration}"))),
        (
            Method::GET,
            theirs(&format!("integrations/{integration}/status")),
        ),
        (Method::PUT, theirs(&format!("integrations/{integration}"))),
        (
            Method::DELETE,
            theirs(&format!("integrations/{integration}")),
        ),
        (Method::GET, theirs(&format!("devices/{device}/lorawan"))),
        (Method::PUT, theirs(&format!("devices/{device}/lorawan"))),
        (Method::GET, theirs(&format!("devices/{device}/events"))),
    ] {
        let body = if path.contains("integrations") {
            broker_body("x/#", false)
        } else if path.contains("lorawan") {
            json!({"dev_eui": "8899aabbccddeeff"})
        } else {
            json!({"name": "x"})
        };
        let resp = server.call(&admin, method.clone(), &path, body).await;
        assert_eq!(resp.status, 404, "{method} {path}: {}", resp.text);
    }
    // A profile of another organization cannot be given to a device here.
    let foreign = server
        .call(
            &admin,
            Method::POST,
            &theirs("device-profiles"),
            json!({"name": "Foreign"}),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = server
        .call(
            &admin,
            Method::PUT,
            &api(&format!("devices/{second}/lorawan")),
            json!({"dev_eui": "8899aabbccddeeff", "profile_id": foreign}),
        )
        .await;
    assert_eq!(resp.status, 404, "{}", resp.text);

    // Readers and analysts read, and change nothing.
    for role in ["readonly", "analyst"] {
        let member = server
            .member(&admin, &org, &format!("{role}@example.org"), role)
            .await;
        for path in ["device-profiles", "integrations"] {
            assert_eq!(
                server.get(&member, &api(path)).await.status,
                200,
                "{role} {path}"
            );
        }
        for (method, path, body) in [
            (
                Method::POST,
                api("device-profiles"),
                json!({"name": "Mine now"}),
            ),
            (
                Method::PUT,
                api(&format!("device-profiles/{profile}")),
                json!({"name": "Mine now"}),
            ),
            (
                Method::DELETE,
                api(&format!("device-profiles/{profile}")),
                json!({}),
            ),
            (
                Method::POST,
                api("device-profiles/test-decoder"),
                json!({"code": "x", "payload_hex": "00"}),
            ),
            (
                Method::PUT,
                api(&format!("devices/{second}/lorawan")),
                json!({"dev_eui": "8899aabbccddeeff"}),
            ),
            (Method::POST, api("integrations"), broker_body("x/#", true)),
            (
                Method::PUT,
                api(&format!("integrations/{integration}")),
                broker_body("x/#", true),
            ),
            (
                Method::DELETE,
                api(&format!("integrations/{integration}")),
                json!({}),
            ),
        ] {
            let resp = server.call(&member, method.clone(), &path, body).await;
            assert_eq!(resp.status, 403, "{role} {method} {path}: {}", resp.text);
        }
    }

    // Malformed and oversized input changes nothing.
    let snapshot = || async {
        (
            server.get(&admin, &api("device-profiles")).await.text,
            server.get(&admin, &api("integrations")).await.text,
            server
                .get(&admin, &api(&format!("devices/{second}/lorawan")))
                .await
                .text,
        )
    };
    let before = snapshot().await;
    let malformed = TestServer::send(
        server
            .as_user(&admin, Method::POST, &api("device-profiles"))
            .header("content-type", "application/json")
            .body("{\"name\": \"broken"),
    )
    .await;
    assert_eq!(malformed.status, 400, "{}", malformed.text);
    let oversized = format!(
        "function decodeUplink(input) {{ return {{ data: {{}} }}; }}\n//{}",
        "x".repeat(64 * 1024)
    );
    let cases = [
        (
            Method::POST,
            api("device-profiles"),
            json!({"name": "Big", "decoder": oversized}),
            422,
        ),
        (
            Method::POST,
            api("device-profiles"),
            json!({"name": "Broken", "decoder": "function decodeUplink(input) {"}),
            422,
        ),
        (
            Method::POST,
            api("device-profiles"),
            json!({"name": "No function", "decoder": "var x = 1;"}),
            422,
        ),
        (
            Method::POST,
            api("device-profiles"),
            json!({"name": ""}),
            422,
        ),
        (
            Method::POST,
            api("device-profiles"),
            json!({"name": "TH"}),
            409,
        ),
        (
            Method::POST,
            api("device-profiles"),
            json!({"name": "Extra", "evil": true}),
            400,
        ),
        (
            Method::PUT,
            api(&format!("device-profiles/{profile}")),
            json!({"name": "TH", "decoder": "syntax error("}),
            422,
        ),
        (
            Method::DELETE,
            api(&format!("device-profiles/{profile}")),
            json!({}),
            409,
        ),
        (
            Method::PUT,
            api(&format!("devices/{second}/lorawan")),
            json!({"dev_eui": "0011223344556677"}),
            409,
        ),
        (
            Method::PUT,
            api(&format!("devices/{second}/lorawan")),
            json!({"dev_eui": "00112233445566"}),
            422,
        ),
        (
            Method::PUT,
            api(&format!("devices/{second}/lorawan")),
            json!({"dev_eui": "zz11223344556677"}),
            422,
        ),
        (
            Method::PUT,
            api(&format!("devices/{second}/lorawan")),
            json!({"dev_eui": null, "profile_id": profile}),
            422,
        ),
        (
            Method::POST,
            api("integrations"),
            broker_body("a/#/b", false),
            422,
        ),
        (
            Method::POST,
            api("integrations"),
            broker_body("", false),
            422,
        ),
        (
            Method::POST,
            api("integrations"),
            {
                let mut b = broker_body("x/#", false);
                b["format"] = json!("ttn_v3");
                b
            },
            422,
        ),
        (
            Method::POST,
            api("integrations"),
            {
                let mut b = broker_body("x/#", false);
                b["host"] = json!("evil host");
                b
            },
            422,
        ),
        (
            Method::POST,
            api("integrations"),
            {
                let mut b = broker_body("x/#", false);
                b["port"] = json!(0);
                b
            },
            422,
        ),
        (
            Method::POST,
            api("integrations"),
            {
                let mut b = broker_body("x/#", false);
                b["tls"] = json!(true);
                b["ca_pem"] = json!("not a pem");
                b
            },
            422,
        ),
        (
            Method::POST,
            api("integrations"),
            {
                let mut b = broker_body("x/#", false);
                b["port"] = json!(70000);
                b
            },
            400,
        ),
    ];
    for (method, path, body, expected) in cases {
        let resp = server
            .call(&admin, method.clone(), &path, body.clone())
            .await;
        assert_eq!(
            resp.status, expected,
            "{method} {path} {body}: {}",
            resp.text
        );
    }
    assert_eq!(
        snapshot().await,
        before,
        "a refused request changed something"
    );

    // Testing a decoder answers its result or its error, and stores nothing.
    let tested = server
        .call(
            &admin,
            Method::POST,
            &api("device-profiles/test-decoder"),
            json!({"code": TEMPERATURE_DECODER, "payload_hex": "09C464", "f_port": 2}),
        )
        .await;
    assert_eq!(tested.status, 200, "{}", tested.text);
    assert_eq!(
        tested.json()["data"],
        json!({"temperature": 25, "humidity": 50})
    );
    let tested = server
        .call(&admin, Method::POST, &api("device-profiles/test-decoder"), json!({"code": "function decodeUplink(input) { while (true) {} }", "payload_base64": "AQID"}))
        .await;
    assert_eq!(tested.status, 200, "{}", tested.text);
    assert!(
        tested.json()["error"].as_str().unwrap().contains("time"),
        "{}",
        tested.text
    );
    for bad in [
        json!({"code": "x", "payload_hex": "0g"}),
        json!({"code": "x"}),
        json!({"code": "x", "payload_hex": "00", "payload_base64": "AA=="}),
    ] {
        let resp = server
            .call(
                &admin,
                Method::POST,
                &api("device-profiles/test-decoder"),
                bad,
            )
            .await;
        assert_eq!(resp.status, 400, "{}", resp.text);
    }
    assert_eq!(
        snapshot().await,
        before,
        "testing a decoder changed something"
    );

    // The password is write-only: kept when left out, never shown or audited.
    let mut update = body.clone();
    update.as_object_mut().unwrap().remove("password");
    update["name"] = json!("Renamed");
    let updated = server
        .call(
            &admin,
            Method::PUT,
            &api(&format!("integrations/{integration}")),
            update,
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json()["has_password"], true);
    let mut seen = vec![created.text, updated.text];
    for path in [
        api("integrations"),
        api(&format!("integrations/{integration}")),
        api(&format!("integrations/{integration}/status")),
        api("audit?limit=500"),
        api("audit/export"),
        String::from("/api/v1/audit?limit=500"),
    ] {
        let resp = server.get(&admin, &path).await;
        assert_eq!(resp.status, 200, "{path}: {}", resp.text);
        seen.push(resp.text);
    }
    for text in &seen {
        assert!(!text.contains(PASSWORD), "the password leaked: {text}");
        assert!(!text.contains("sealed_password"), "{text}");
    }
    let audit = server.get(&admin, &api("audit?limit=500")).await.text;
    assert!(audit.contains("integration.updated") && audit.contains("device_profile.created"));
    let deleted = server
        .call(
            &admin,
            Method::DELETE,
            &api(&format!("integrations/{integration}")),
            json!({}),
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    server.stop().await;
}

/// Rotating the master key re-seals broker passwords, and the worker still
/// opens them (it connects; without a broker it at least gets that far).
#[tokio::test]
async fn rotating_the_master_key_reseals_broker_passwords() {
    let mut server = TestServer::start().await;
    let admin = server.setup_admin().await;
    let org = server.create_org(&admin, "Sensors").await;
    let mut body = broker_body(&Topics::new().filter(), false);
    body["username"] = json!("sentinel");
    body["password"] = json!("rotate-me");
    let created = server
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/orgs/{org}/integrations"),
            body.clone(),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let integration = created.json()["id"].as_str().unwrap().to_owned();

    server.shut_down().await;
    let rotation = sentinel::rotation::rotate_master_key(&server.config, &server.clock)
        .await
        .unwrap();
    assert_eq!(
        (rotation.resealed, rotation.already),
        (1, 0),
        "{rotation:?}"
    );
    server.start_again().await;

    let admin = server
        .login("root@example.org", crate::support::PASSWORD)
        .await
        .unwrap();
    body.as_object_mut().unwrap().remove("password");
    body["enabled"] = json!(true);
    let path = format!("/api/v1/orgs/{org}/integrations/{integration}");
    let enabled = server.call(&admin, Method::PUT, &path, body).await;
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    assert_eq!(enabled.json()["has_password"], true);
    let reached = eventually("the worker to connect or fail", || async {
        let now = status(&server, &admin, &org, &integration).await;
        (now["connected"] == true || !now["last_error"].is_null()).then_some(now)
    })
    .await;
    let error = reached["last_error"].as_str().unwrap_or_default();
    assert!(!error.contains("does not open"), "{reached}");
    if broker_available().await {
        assert_eq!(reached["connected"], true, "{reached}");
    }
    server.stop().await;
}
