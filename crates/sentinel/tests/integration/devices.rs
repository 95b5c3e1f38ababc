//! Devices end to end: the real `sentinel-agent` binary against the real
//! server, and the attacks — another device's commands, used-up, expired and
//! revoked tokens, revoked devices, malformed reports, crossed credentials.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Agent, Session, TestServer, eventually, on_both_engines};

/// The agent binary `cargo test --workspace` built beside this test binary.
pub(crate) fn agent_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let agent = dir.join("sentinel-agent");
    assert!(
        agent.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p sentinel-agent`) first",
        agent.display()
    );
    agent
}

pub(crate) const DPKG_STATUS: &str = "Package: openssl
Status: install ok installed
Architecture: amd64
Version: 3.0.11-1~deb12u2

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.11-1~deb12u2

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b2
";

/// A real agent's directory (state, CA, a dpkg status file), enrolled with
/// `token` by the real `sentinel-agent enroll`.
pub(crate) struct EnrolledAgent {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) state: std::path::PathBuf,
    pub(crate) status: std::path::PathBuf,
}

pub(crate) async fn enroll_real_agent(server: &TestServer, token: &str) -> EnrolledAgent {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let status = dir.path().join("status");
    std::fs::write(&status, DPKG_STATUS).unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token).unwrap();
    let url = format!("https://127.0.0.1:{}", server.addr.port());

    // Off the test's runtime thread, which also serves the requests.
    let mut enroll = std::process::Command::new(agent_binary());
    enroll
        .args(["enroll", "--server", &url, "--token-file"])
        .arg(&token_file)
        .arg("--state-dir")
        .arg(&state)
        .arg("--ca-cert")
        .arg(&ca);
    let enroll = tokio::task::spawn_blocking(move || enroll.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        enroll.status.success(),
        "{}",
        String::from_utf8_lossy(&enroll.stderr)
    );
    EnrolledAgent { dir, state, status }
}

/// Stops the agent however the test ends.
pub(crate) struct KillOnDrop(pub(crate) std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_real_agent_enrolls_reports_and_runs_a_signed_script() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let token = server
        .enrollment_token(&root, &org, json!({"tags": ["lab"]}))
        .await;
    let EnrolledAgent {
        dir: _dir,
        state,
        status,
    } = enroll_real_agent(&server, &token).await;
    // The same token again: it allowed one device.
    let again = server.try_enroll(&token, "clone").await;
    assert_eq!(again.status, 403, "{}", again.text);

    let agent = std::process::Command::new(agent_binary())
        .args(["run", "--state-dir"])
        .arg(&state)
        .arg("--dpkg-status")
        .arg(&status)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _agent = KillOnDrop(agent);

    let devices_path = format!("/api/v1/orgs/{org}/devices");
    let device: Value = eventually("the device", || async {
        let list = server.get(&root, &devices_path).await.json();
        list["devices"].as_array()?.first().cloned()
    })
    .await;
    let device_id = device["id"].as_str().unwrap().to_owned();
    assert_eq!(device["tags"], json!(["lab"]));
    assert_eq!(device["online"], true);
    assert_eq!(device["agent_version"], env!("CARGO_PKG_VERSION"));
    assert!(device["machine_id"].is_string() || device["machine_id"].is_null());

    // Telemetry arrives and is chained.
    let telemetry_path = format!("/api/v1/orgs/{org}/devices/{device_id}/telemetry");
    let samples: Value = eventually("telemetry", || async {
        let page = server.get(&root, &telemetry_path).await.json();
        let samples = page["samples"].as_array()?;
        (!samples.is_empty()).then(|| page["samples"].clone())
    })
    .await;
    let first = &samples[0];
    assert!(first["sample"]["memory"]["total_bytes"].as_u64().unwrap() > 0);
    assert_eq!(first["hash"].as_str().unwrap().len(), 64);

    // The inventory from the fixture, with the source package.
    let inventory_path = format!("/api/v1/orgs/{org}/devices/{device_id}/inventory");
    let packages: Value = eventually("the inventory", || async {
        let page = server.get(&root, &inventory_path).await.json();
        (page["packages"].as_array()?.len() == 3).then(|| page["packages"].clone())
    })
    .await;
    let libssl = packages
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "libssl3")
        .unwrap();
    assert_eq!(libssl["source_name"], "openssl");
    assert_eq!(libssl["version"], "3.0.11-1~deb12u2");

    // A script, signed by the organization, runs and its output is stored.
    let command = server
        .queue_command(
            &root,
            &org,
            &device_id,
            json!({"type": "run_script", "params": {"interpreter": "sh", "script": "echo hello from $(uname -s); echo oops >&2; exit 3"}}),
        )
        .await;
    let command_path = format!("/api/v1/orgs/{org}/commands/{command}");
    let done: Value = eventually("the command's result", || async {
        let record = server.get(&root, &command_path).await.json();
        (record["status"] == "failed").then_some(record)
    })
    .await;
    assert_eq!(done["exit_code"], 3);
    assert_eq!(done["stdout"], "hello from Linux\n");
    assert_eq!(done["stderr"], "oops\n");
    assert!(done["delivered_at"].is_string() && done["started_at"].is_string());

    // Revoked: the agent's next request is refused.
    let revoke = server
        .call(
            &root,
            Method::DELETE,
            &format!("/api/v1/orgs/{org}/devices/{device_id}"),
            json!({}),
        )
        .await;
    assert_eq!(revoke.status, 200, "{}", revoke.text);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("state.json")).unwrap()).unwrap();
    let stolen = Agent {
        device_id: device_id.clone(),
        token: saved["device_token"].as_str().unwrap().to_owned(),
    };
    let refused =
        TestServer::send(server.as_agent(&stolen, Method::GET, "/api/v1/agent/commands")).await;
    assert_eq!(refused.status, 401);

    server.stop().await;
}

/// A valid telemetry sample with these network interfaces.
fn sample(interfaces: Value) -> Value {
    json!({
        "uptime_seconds": 5, "load": [0.1, 0.2, 0.3], "cpu_percent": 12.5,
        "memory": {"total_bytes": 100, "available_bytes": 50, "used_bytes": 50},
        "swap": {"total_bytes": 0, "available_bytes": 0, "used_bytes": 0},
        "disks": [], "interfaces": interfaces, "logged_in_users": 1, "warnings": []
    })
}

/// Two devices in one organization, one in another.
async fn fleet(server: &TestServer, root: &Session) -> (String, Agent, Agent, String, Agent) {
    let org = server.create_org(root, "Fleet").await;
    let a = server.enroll(root, &org, "alpha").await;
    let b = server.enroll(root, &org, "beta").await;
    let other = server.create_org(root, "Other").await;
    let c = server.enroll(root, &other, "gamma").await;
    (org, a, b, other, c)
}

#[tokio::test]
async fn a_device_reaches_only_its_own_commands() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let (org, a, b, other, c) = fleet(&server, &root).await;
    let for_b = server
        .queue_command(&root, &org, &b.device_id, json!({"type": "reboot"}))
        .await;
    // A polls: nothing of B's.
    let polled = TestServer::send(server.as_agent(&a, Method::GET, "/api/v1/agent/commands")).await;
    assert_eq!(polled.status, 200);
    assert_eq!(polled.json()["commands"], json!([]));
    // A reports on B's command: refused, and the command is untouched.
    let forged = TestServer::send(
        server
            .as_agent(
                &a,
                Method::POST,
                &format!("/api/v1/agent/commands/{for_b}/result"),
            )
            .json(&json!({"status": "succeeded", "exit_code": 0, "stdout": "pwned"})),
    )
    .await;
    assert_eq!(forged.status, 404, "{}", forged.text);
    // C, in another organization, neither.
    let crossed = TestServer::send(
        server
            .as_agent(
                &c,
                Method::POST,
                &format!("/api/v1/agent/commands/{for_b}/result"),
            )
            .json(&json!({"status": "failed"})),
    )
    .await;
    assert_eq!(crossed.status, 404);
    let record = server
        .get(&root, &format!("/api/v1/orgs/{org}/commands/{for_b}"))
        .await
        .json();
    assert_eq!(record["status"], "queued");
    assert_eq!(record["stdout"], "");
    // B gets it, signed; a report closes it once and only once.
    let polled = TestServer::send(server.as_agent(&b, Method::GET, "/api/v1/agent/commands")).await;
    let commands = polled.json()["commands"].clone();
    assert_eq!(commands.as_array().unwrap().len(), 1);
    assert_eq!(commands[0]["id"], for_b.as_str());
    assert!(commands[0]["signature"].is_string());
    let report = |status: &str| {
        server
            .as_agent(
                &b,
                Method::POST,
                &format!("/api/v1/agent/commands/{for_b}/result"),
            )
            .json(&json!({"status": status, "exit_code": 0}))
    };
    assert_eq!(TestServer::send(report("succeeded")).await.status, 204);
    assert_eq!(TestServer::send(report("failed")).await.status, 409);
    // Members of the other organization see none of it.
    let other_view = server
        .get(&root, &format!("/api/v1/orgs/{other}/commands/{for_b}"))
        .await;
    assert_eq!(other_view.status, 404);
    let other_device = server
        .get(
            &root,
            &format!("/api/v1/orgs/{other}/devices/{}", a.device_id),
        )
        .await;
    assert_eq!(other_device.status, 404);
    // Nor can they act on it through their own organization's routes.
    let crossed = [
        (
            Method::DELETE,
            format!("/api/v1/orgs/{other}/devices/{}", a.device_id),
            json!({}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/orgs/{other}/commands/{for_b}"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{other}/devices/{}/commands", a.device_id),
            json!({"type": "reboot"}),
        ),
    ];
    for (method, path, body) in crossed {
        let resp = server.call(&root, method, &path, body).await;
        assert_eq!(resp.status, 404, "{path}: {}", resp.text);
    }
    let polled = TestServer::send(server.as_agent(&a, Method::GET, "/api/v1/agent/commands")).await;
    assert_eq!(
        polled.status, 200,
        "the device was not revoked through another organization"
    );
    assert_eq!(polled.json()["commands"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn enrollment_tokens_are_refused_once_used_up_expired_or_revoked() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let twice = server
        .enrollment_token(&root, &org, json!({"max_uses": 2}))
        .await;
    assert_eq!(server.try_enroll(&twice, "one").await.status, 201);
    assert_eq!(server.try_enroll(&twice, "two").await.status, 201);
    let third = server.try_enroll(&twice, "three").await;
    assert_eq!(third.status, 403);

    let expiring = server
        .enrollment_token(&root, &org, json!({"expires_in_hours": 1}))
        .await;
    server.clock.advance(Duration::from_secs(3601));
    let root = server
        .login("root@example.org", crate::support::PASSWORD)
        .await
        .unwrap();
    assert_eq!(server.try_enroll(&expiring, "late").await.status, 403);

    let revoked = server.enrollment_token(&root, &org, json!({})).await;
    let tokens = server
        .get(&root, &format!("/api/v1/orgs/{org}/enrollment-tokens"))
        .await
        .json();
    let id = tokens["tokens"][0]["id"].as_str().unwrap();
    assert!(
        tokens.to_string().find(&revoked[4..]).is_none(),
        "secrets are never listed"
    );
    let resp = server
        .call(
            &root,
            Method::DELETE,
            &format!("/api/v1/orgs/{org}/enrollment-tokens/{id}"),
            json!({}),
        )
        .await;
    assert_eq!(resp.status, 204);
    assert_eq!(server.try_enroll(&revoked, "gone").await.status, 403);
    // Forged and malformed tokens get the same answer.
    for forged in [
        "set_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "nonsense",
        "",
    ] {
        assert_eq!(server.try_enroll(forged, "x").await.status, 403, "{forged}");
    }
    let devices = server
        .get(&root, &format!("/api/v1/orgs/{org}/devices"))
        .await
        .json();
    assert_eq!(devices["devices"].as_array().unwrap().len(), 2);
    // Bad token requests are refused without storing anything.
    for body in [
        json!({"expires_in_hours": 0}),
        json!({"expires_in_hours": 721}),
        json!({"max_uses": 0}),
        json!({"tags": ["Bad Tag"]}),
        json!({"tags": "lab"}),
        json!({"admin": true}),
    ] {
        let resp = server
            .call(
                &root,
                Method::POST,
                &format!("/api/v1/orgs/{org}/enrollment-tokens"),
                body.clone(),
            )
            .await;
        assert_eq!(resp.status, 400, "{body}: {}", resp.text);
    }
    server.stop().await;
}

#[tokio::test]
async fn credentials_do_not_cross_between_users_and_devices() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let agent = server.enroll(&root, &org, "alpha").await;
    // A session cookie on an agent route, a device token on a member route.
    let with_cookie = server.as_user(&root, Method::GET, "/api/v1/agent/commands");
    assert_eq!(TestServer::send(with_cookie).await.status, 401);
    let with_token = server.as_agent(&agent, Method::GET, &format!("/api/v1/orgs/{org}/devices"));
    assert_eq!(TestServer::send(with_token).await.status, 401);
    for bad in [
        "Bearer ",
        "Bearer sdt_short",
        "Basic abc",
        &format!("Bearer {}x", agent.token),
    ] {
        let resp = TestServer::send(
            server
                .raw(Method::GET, "/api/v1/agent/commands")
                .header("authorization", bad),
        )
        .await;
        assert_eq!(resp.status, 401, "{bad}");
    }
    // A readonly member cannot queue commands or make tokens.
    let viewer = server
        .member(&root, &org, "viewer@example.org", "readonly")
        .await;
    let queued = server
        .call(
            &viewer,
            Method::POST,
            &format!("/api/v1/orgs/{org}/devices/{}/commands", agent.device_id),
            json!({"type": "reboot"}),
        )
        .await;
    assert_eq!(queued.status, 403);
    let listed = server
        .get(&viewer, &format!("/api/v1/orgs/{org}/devices"))
        .await;
    assert_eq!(listed.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn malformed_reports_are_refused_and_store_nothing() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let agent = server.enroll(&root, &org, "alpha").await;
    let post = |path: &str, body: Value| {
        TestServer::send(server.as_agent(&agent, Method::POST, path).json(&body))
    };
    let sample = sample(json!([]));
    let mut bad_cpu = sample.clone();
    bad_cpu["cpu_percent"] = json!(250.0);
    let mut bad_load = sample.clone();
    bad_load["load"] = json!([-1.0, 0.0, 0.0]);
    for body in [
        json!({"samples": [{"at": 1, "sample": bad_cpu}]}),
        json!({"samples": [{"at": 1, "sample": bad_load}]}),
        json!({"samples": [{"at": 1, "sample": sample.clone(), "extra": 1}]}),
        json!({"samples": "many"}),
        json!({"samples": (0..501).map(|_| json!({"at": 1, "sample": sample.clone()})).collect::<Vec<_>>()}),
        json!({"samples": [], "facts": {"hostname": ""}}),
    ] {
        let resp = post("/api/v1/agent/telemetry", body.clone()).await;
        assert_eq!(resp.status, 400, "{}", resp.text);
    }
    let malformed = TestServer::send(
        server
            .as_agent(&agent, Method::POST, "/api/v1/agent/telemetry")
            .header("content-type", "application/json")
            .body("{\"samples\": ["),
    )
    .await;
    assert_eq!(malformed.status, 400);
    let package = json!({"manager": "dpkg", "name": "bash", "version": "5.2", "arch": null, "source_name": null, "source_version": null});
    for body in [
        json!({"digest": "nothex"}),
        json!({"digest": "0".repeat(64), "packages": [package.clone()]}),
        json!({"digest": "0".repeat(64), "packages": [{"manager": "pip", "name": "x", "version": "1"}]}),
    ] {
        let resp = post("/api/v1/agent/inventory", body.clone()).await;
        assert_eq!(resp.status, 400, "{body}: {}", resp.text);
    }
    let device = server
        .get(
            &root,
            &format!("/api/v1/orgs/{org}/devices/{}", agent.device_id),
        )
        .await
        .json();
    assert_eq!(device["telemetry_count"], 0);
    assert!(device["inventory_digest"].is_null());
    // The good ones go through, and the digest is then known.
    assert_eq!(
        post(
            "/api/v1/agent/telemetry",
            json!({"samples": [{"at": 1, "sample": sample}]})
        )
        .await
        .status,
        200
    );
    let unknown = post("/api/v1/agent/inventory", json!({"digest": "a".repeat(64)})).await;
    assert_eq!(unknown.json()["status"], "send_full");
    // Commands: hostile parameters are refused before anything is signed.
    for body in [
        json!({"type": "install_package", "params": {"name": "-oAPT::Update::Pre-Invoke::=sh"}}),
        json!({"type": "run_script", "params": {"interpreter": "perl", "script": "1"}}),
        json!({"type": "run_script", "params": {"interpreter": "sh", "script": "x", "timeout_seconds": 7200}}),
        json!({"type": "format_disk"}),
        json!({"type": "reboot", "expires_in_seconds": 0}),
    ] {
        let resp = server
            .call(
                &root,
                Method::POST,
                &format!("/api/v1/orgs/{org}/devices/{}/commands", agent.device_id),
                body.clone(),
            )
            .await;
        assert_eq!(resp.status, 400, "{body}: {}", resp.text);
    }
    let commands = server
        .get(
            &root,
            &format!("/api/v1/orgs/{org}/devices/{}/commands", agent.device_id),
        )
        .await
        .json();
    assert_eq!(commands["commands"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn a_waiting_poll_gets_a_new_command_at_once_and_tokens_rotate() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let agent = server.enroll(&root, &org, "alpha").await;
    let started = Instant::now();
    // The answer's head comes at once, its body when a command is queued: a
    // parked poll holds only its body on the server.
    let head = server
        .as_agent(&agent, Method::GET, "/api/v1/agent/commands?wait=20")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the head waited for a command"
    );
    let poll = async { serde_json::from_str::<Value>(&head.text().await.unwrap()).unwrap() };
    let queue = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        server
            .queue_command(
                &root,
                &org,
                &agent.device_id,
                json!({"type": "refresh_inventory"}),
            )
            .await
    };
    let (polled, id) = tokio::join!(poll, queue);
    assert_eq!(polled["commands"][0]["id"], id.as_str());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the poll was not woken"
    );

    // Rotation: the old token works until the new one is used, then never again.
    let rotated =
        TestServer::send(server.as_agent(&agent, Method::POST, "/api/v1/agent/token")).await;
    assert_eq!(rotated.status, 200);
    let fresh = Agent {
        device_id: agent.device_id.clone(),
        token: rotated.json()["device_token"].as_str().unwrap().to_owned(),
    };
    let get =
        |a: &Agent| TestServer::send(server.as_agent(a, Method::GET, "/api/v1/agent/commands"));
    assert_eq!(get(&agent).await.status, 200);
    assert_eq!(get(&fresh).await.status, 200);
    assert_eq!(get(&agent).await.status, 401);
    assert_eq!(get(&fresh).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_poll_waits_to_the_millisecond_and_refuses_a_wait_that_is_not_a_duration() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let agent = server.enroll(&root, &org, "alpha").await;
    let poll = |query: &str| {
        let path = format!("/api/v1/agent/commands{query}");
        TestServer::send(server.as_agent(&agent, Method::GET, &path))
    };
    // What the agent sends to end a poll just before its next report.
    let started = Instant::now();
    let polled = poll("?wait=0.400").await;
    let waited = started.elapsed();
    assert_eq!(polled.status, 200, "{}", polled.text);
    assert_eq!(polled.json()["commands"], json!([]));
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
    for query in [
        "?wait=-1",
        "?wait=NaN",
        "?wait=inf",
        "?wait=1e999",
        "?wait=soon",
        "?wait=",
    ] {
        let refused = poll(query).await;
        assert_eq!(refused.status, 400, "{query}: {}", refused.text);
    }
    // A command queued after the refusals is still there: they took nothing.
    let id = server
        .queue_command(
            &root,
            &org,
            &agent.device_id,
            json!({"type": "refresh_inventory"}),
        )
        .await;
    assert_eq!(
        poll("?wait=0").await.json()["commands"][0]["id"],
        id.as_str()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_command_for_a_tag_reaches_every_tagged_device_and_no_other() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let lab = server
        .enrollment_token(&root, &org, json!({"max_uses": 2, "tags": ["lab"]}))
        .await;
    let mut tagged = Vec::new();
    for host in ["lab1", "lab2"] {
        let resp = server.try_enroll(&lab, host).await;
        tagged.push(resp.json()["device_id"].as_str().unwrap().to_owned());
    }
    let office = server.enroll(&root, &org, "office").await;
    let other = server.create_org(&root, "Other").await;
    let elsewhere = server
        .enrollment_token(&root, &other, json!({"tags": ["lab"]}))
        .await;
    assert_eq!(server.try_enroll(&elsewhere, "lab3").await.status, 201);

    let resp = server
        .call(
            &root,
            Method::POST,
            &format!("/api/v1/orgs/{org}/commands"),
            json!({"tag": "lab", "type": "lock_sessions"}),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    let mut targets: Vec<String> = resp.json()["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["device_id"].as_str().unwrap().to_owned())
        .collect();
    targets.sort();
    tagged.sort();
    assert_eq!(targets, tagged);
    let office_commands = server
        .get(
            &root,
            &format!("/api/v1/orgs/{org}/devices/{}/commands", office.device_id),
        )
        .await
        .json();
    assert_eq!(office_commands["commands"], json!([]));
    let none = server
        .call(
            &root,
            Method::POST,
            &format!("/api/v1/orgs/{org}/commands"),
            json!({"tag": "nobody", "type": "reboot"}),
        )
        .await;
    assert_eq!(none.status, 404);
    server.stop().await;
}

/// `sentinel ARGS…` off the test's runtime thread: exit code and output.
async fn sentinel_cli(args: Vec<String>) -> (i32, String) {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sentinel"))
            .args(args)
            .env_remove("SENTINEL_DATABASE_URL")
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn evidence_exports_a_signed_chain_that_catches_any_edit() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let agent = server.enroll(&root, &org, "stolen-laptop").await;
    let sample = sample(
        json!([{"name": "wlan0", "addresses": ["203.0.113.7"], "rx_bytes": 1, "tx_bytes": 2}]),
    );
    for batch in [vec![100, 130], vec![160]] {
        let samples: Vec<Value> = batch
            .into_iter()
            .map(|at| json!({"at": at, "sample": sample}))
            .collect();
        let resp = TestServer::send(
            server
                .as_agent(&agent, Method::POST, "/api/v1/agent/telemetry")
                .json(&json!({"samples": samples})),
        )
        .await;
        assert_eq!(resp.status, 200, "{}", resp.text);
    }
    let data = server.config.data_dir.clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("evidence.ndjson");
    let (code, text) = sentinel_cli(vec![
        "evidence".into(),
        "export".into(),
        "--data-dir".into(),
        data.display().to_string(),
        "--org".into(),
        org.clone(),
        "--device".into(),
        agent.device_id.clone(),
        "--out".into(),
        file.display().to_string(),
    ])
    .await;
    assert_eq!(code, 0, "{text}");
    let key = sentinel::audit::signing_key(&sentinel::data_dir::DataDir::open(&data).unwrap())
        .unwrap()
        .verifying_key()
        .to_hex();
    let verify = |path: PathBuf, key: String| {
        sentinel_cli(vec![
            "evidence".into(),
            "verify".into(),
            path.display().to_string(),
            "--public-key".into(),
            key,
        ])
    };
    let (code, text) = verify(file.clone(), key.clone()).await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("intact") && text.contains("3 telemetry links"),
        "{text}"
    );

    let original = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    let tampered = |name: &str, lines: Vec<String>| {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    };
    let own = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    let mut edited = own(&lines);
    edited[2] = edited[2].replace("203.0.113.7", "198.51.100.1");
    let mut deleted = own(&lines);
    deleted.remove(2);
    let mut truncated = own(&lines);
    truncated.remove(3);
    let mut renamed = own(&lines);
    renamed[0] = renamed[0].replace("stolen-laptop", "someone-else");
    let cases = [
        (
            "edited",
            edited,
            "link 2: its content does not match its hash",
        ),
        ("deleted", deleted, "link 2: missing"),
        ("truncated", truncated, "different number of links"),
        ("renamed", renamed, "signature does not verify"),
    ];
    for (name, lines, expected) in cases {
        let (code, text) = verify(tampered(name, lines), key.clone()).await;
        assert_eq!(code, 1, "{name}: {text}");
        assert!(text.contains(expected), "{name}: {text}");
    }
    let other_key = sentinel_core::audit::checkpoint::SigningKey::from_seed(&[9; 32])
        .unwrap()
        .verifying_key()
        .to_hex();
    let (code, text) = verify(file, other_key).await;
    assert_eq!(code, 1, "{text}");
    server.stop().await;
}

#[tokio::test]
async fn commands_expire_unless_delivered_in_time_and_can_be_cancelled_before() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let agent = server.enroll(&root, &org, "alpha").await;
    let soon = server
        .queue_command(
            &root,
            &org,
            &agent.device_id,
            json!({"type": "reboot", "expires_in_seconds": 60}),
        )
        .await;
    let cancelled = server
        .queue_command(
            &root,
            &org,
            &agent.device_id,
            json!({"type": "lock_sessions"}),
        )
        .await;
    let cancel = server
        .call(
            &root,
            Method::DELETE,
            &format!("/api/v1/orgs/{org}/commands/{cancelled}"),
            json!({}),
        )
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.text);
    assert_eq!(cancel.json()["status"], "cancelled");
    server.clock.advance(Duration::from_secs(61));
    let polled =
        TestServer::send(server.as_agent(&agent, Method::GET, "/api/v1/agent/commands")).await;
    assert_eq!(polled.json()["commands"], json!([]));
    let record = server
        .get(&root, &format!("/api/v1/orgs/{org}/commands/{soon}"))
        .await
        .json();
    assert_eq!(record["status"], "expired");
    // Unheard from for longer than three 30 s telemetry intervals.
    server.clock.advance(Duration::from_secs(91));
    let device = server
        .get(
            &root,
            &format!("/api/v1/orgs/{org}/devices/{}", agent.device_id),
        )
        .await
        .json();
    assert_eq!(device["online"], false);
    // Over is over: no report, no second cancellation.
    let late = TestServer::send(
        server
            .as_agent(
                &agent,
                Method::POST,
                &format!("/api/v1/agent/commands/{soon}/result"),
            )
            .json(&json!({"status": "succeeded", "exit_code": 0})),
    )
    .await;
    assert_eq!(late.status, 409);
    let again = server
        .call(
            &root,
            Method::DELETE,
            &format!("/api/v1/orgs/{org}/commands/{cancelled}"),
            json!({}),
        )
        .await;
    assert_eq!(again.status, 409);
    server.stop().await;
}

#[tokio::test]
async fn the_command_signing_key_is_stored_sealed_under_the_master_key() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let token = server.enrollment_token(&root, &org, json!({})).await;
    let enrolled = server.try_enroll(&token, "alpha").await.json();
    let public_key = enrolled["command_key"].as_str().unwrap().to_owned();

    let data = sentinel::data_dir::DataDir::open(&server.config.data_dir).unwrap();
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        data.path().join("orgs").join(format!("{org}.db")).display()
    ))
    .await
    .unwrap();
    let (stored_public, sealed): (String, Vec<u8>) = sqlx::query_as(
        "SELECT public_key, sealed_private_key FROM org_keys WHERE purpose = 'command_signing'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(stored_public, public_key);
    // Only the master key, for this organization, opens it; what it opens is
    // the key agents were given.
    let master =
        sentinel::data_dir::load_or_create_key(&data.master_key_file(), "master key").unwrap();
    let sealing = sentinel_core::sealing::SealingKey::new(&master).unwrap();
    let context = format!("org:{org}/command-key");
    let seed = sealing.open(&sealed, &context).unwrap();
    let signer = sentinel_protocol::signing::CommandSigner::from_seed(&seed).unwrap();
    assert_eq!(signer.public_key_hex(), public_key);
    assert!(!sealed.windows(seed.len()).any(|w| w == seed.as_slice()));
    assert!(
        sealing
            .open(&sealed, "org:someone-else/command-key")
            .is_err()
    );
    let other = sentinel_core::sealing::SealingKey::new(&[7; 32]).unwrap();
    assert!(other.open(&sealed, &context).is_err());
    server.stop().await;
}

#[tokio::test]
async fn a_delivered_command_is_handed_over_again_only_after_a_minute_without_a_report() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let agent = server.enroll(&root, &org, "alpha").await;
    let id = server
        .queue_command(
            &root,
            &org,
            &agent.device_id,
            json!({"type": "refresh_inventory"}),
        )
        .await;
    let poll = || async {
        let resp =
            TestServer::send(server.as_agent(&agent, Method::GET, "/api/v1/agent/commands")).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        resp.json()["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(poll().await, vec![id.clone()]);
    // The delivered mark is written just after the answer.
    let status = format!("/api/v1/orgs/{org}/commands/{id}");
    for _ in 0..100 {
        if server.get(&root, &status).await.json()["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        server.get(&root, &status).await.json()["status"],
        "delivered"
    );
    // The agent holds it: polls are not answered with it again at once…
    assert!(poll().await.is_empty());
    // …but if no report came within a minute, the answer may have been lost.
    server.clock.advance(Duration::from_secs(61));
    assert_eq!(poll().await, vec![id.clone()]);
    // Handed over again, it waits another minute.
    let mut again = vec![id.clone()];
    for _ in 0..100 {
        again = poll().await;
        if again.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_empty(), "handed over on every poll");
    // Once reported running, it is never handed over again.
    let running = TestServer::send(
        server
            .as_agent(
                &agent,
                Method::POST,
                &format!("/api/v1/agent/commands/{id}/result"),
            )
            .json(&json!({"status": "running"})),
    )
    .await;
    assert!(running.status < 300, "{}", running.text);
    server.clock.advance(Duration::from_secs(120));
    assert!(poll().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn polls_refresh_last_seen_only_after_two_telemetry_intervals_without_a_report() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let agent = server.enroll(&root, &org, "alpha").await;
    let device = format!("/api/v1/orgs/{org}/devices/{}", agent.device_id);
    let last_seen = || async { server.get(&root, &device).await.json()["last_seen_at"].clone() };
    let poll = || async {
        let resp =
            TestServer::send(server.as_agent(&agent, Method::GET, "/api/v1/agent/commands")).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
    };
    let enrolled = last_seen().await;
    // Within two telemetry intervals (30 s by default) a poll is a read: a fleet
    // of long-polling agents does not flush the disk on every poll.
    server.clock.advance(Duration::from_secs(45));
    poll().await;
    assert_eq!(last_seen().await, enrolled);
    // A telemetry report always records when the device was heard from…
    let report = TestServer::send(
        server
            .as_agent(&agent, Method::POST, "/api/v1/agent/telemetry")
            .json(&json!({"samples": []})),
    )
    .await;
    assert_eq!(report.status, 200, "{}", report.text);
    let reported = last_seen().await;
    assert_ne!(reported, enrolled);
    // …and a device that only polls is refreshed once two intervals passed, so it
    // stays online (heard from within three intervals).
    server.clock.advance(Duration::from_secs(59));
    poll().await;
    assert_eq!(last_seen().await, reported);
    server.clock.advance(Duration::from_secs(2));
    poll().await;
    assert_ne!(last_seen().await, reported);
    assert_eq!(server.get(&root, &device).await.json()["online"], true);
    server.stop().await;
}

on_both_engines!(
    the_tag_filter_matches_whole_tags_in_the_database,
    |server: TestServer| async move {
        let root = server.setup_admin().await;
        let org = server.create_org(&root, "Fleet").await;
        for (tags, host) in [
            (json!(["lab", "room-3"]), "lab1"),
            (json!(["lab"]), "lab2"),
            (json!(["lab-2"]), "other"),
            (json!(["xlab"]), "other2"),
        ] {
            let token = server
                .enrollment_token(&root, &org, json!({"tags": tags}))
                .await;
            assert_eq!(server.try_enroll(&token, host).await.status, 201);
        }
        let hosts = |tag: &str| {
            let server = &server;
            let root = root.clone();
            let path = format!("/api/v1/orgs/{org}/devices?tag={tag}");
            async move {
                let list = server.get(&root, &path).await.json();
                let mut names: Vec<String> = list["devices"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["hostname"].as_str().unwrap().to_owned())
                    .collect();
                names.sort();
                names
            }
        };
        assert_eq!(hosts("lab").await, vec!["lab1", "lab2"]);
        assert_eq!(hosts("room-3").await, vec!["lab1"]);
        assert!(hosts("la_").await.is_empty(), "_ is no wildcard");
        assert!(hosts("la%25").await.is_empty(), "% is no wildcard");
        assert!(hosts("LAB").await.is_empty(), "tags are exact");
        server
    }
);
