//! The audit trail through the real server: every mutating route of the route
//! table records exactly one entry on success and one when an authenticated
//! caller is refused; the read API and its attacks; and `sentinel audit verify`
//! catching tampering done directly in the database files.

use reqwest::Method;
use sentinel_http::access::Access;
use sentinel_http::route_table;
use serde_json::{Value, json};

use crate::support::{Engine, PASSWORD, Session, TestServer};
use crate::two_factor;

/// The newest entry of a log, as the API shows it.
async fn head(server: &TestServer, root: &Session, log: &str) -> Option<Value> {
    let resp = server.get(root, &format!("{log}?limit=1")).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json()["entries"].get(0).cloned()
}

fn seq(entry: &Option<Value>) -> i64 {
    entry.as_ref().map_or(0, |e| e["seq"].as_i64().unwrap())
}

/// What one request did to the platform log and to one organization's log.
struct Observed {
    status: u16,
    new_entries: Vec<Value>,
}

impl Observed {
    /// The one entry the request must have added.
    fn only_entry(&self, case: &impl std::fmt::Debug, action: &str, outcome: &str) -> &Value {
        assert_eq!(
            self.new_entries.len(),
            1,
            "{case:?}: {:?}",
            self.new_entries
        );
        let entry = &self.new_entries[0];
        assert_eq!(entry["action"], action, "{case:?}");
        assert_eq!(entry["outcome"], outcome, "{case:?}");
        entry
    }
}

async fn observe(
    server: &TestServer,
    root: &Session,
    org: &str,
    request: reqwest::RequestBuilder,
) -> Observed {
    let logs = [
        String::from("/api/v1/audit"),
        format!("/api/v1/orgs/{org}/audit"),
    ];
    let mut before = Vec::new();
    for log in &logs {
        before.push(seq(&head(server, root, log).await));
    }
    let status = TestServer::send(request).await.status;
    let mut new_entries = Vec::new();
    for (log, seen) in logs.iter().zip(before) {
        let page = server.get(root, &format!("{log}?limit=50")).await.json();
        for entry in page["entries"].as_array().unwrap() {
            if entry["seq"].as_i64().unwrap() > seen {
                new_entries.push(entry.clone());
            }
        }
    }
    Observed {
        status,
        new_entries,
    }
}

/// A request for `method path` that succeeds, built on fresh targets.
async fn succeeding(
    server: &TestServer,
    root: &Session,
    org: &str,
    method: &Method,
    path: &str,
    n: usize,
) -> Option<reqwest::RequestBuilder> {
    let email = format!("case{n}@example.org");
    let form = |rb: reqwest::RequestBuilder, fields: &[(&str, &str)]| -> reqwest::RequestBuilder {
        rb.header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap())
    };
    let user_id = server.create_user(root, &email).await;
    let member = |p: &str| p.replace("{org_id}", org).replace("{user_id}", &user_id);
    let fresh_org = || async {
        let resp = server
            .call(
                root,
                Method::POST,
                "/api/v1/orgs",
                json!({"name": format!("Org {n}")}),
            )
            .await;
        let body = resp.json();
        (
            body["id"].as_str().unwrap().to_owned(),
            body["slug"].as_str().unwrap().to_owned(),
        )
    };
    let needs_member = path.contains("/members/");
    if needs_member {
        server.add_member(root, org, &email, "analyst").await;
    }
    let as_root = |m: Method, p: &str| server.as_user(root, m, p);
    Some(match (method.as_str(), path) {
        ("POST", "/api/v1/auth/login") => server
            .raw(Method::POST, path)
            .json(&json!({"email": email, "password": PASSWORD})),
        ("POST", "/login") => form(
            server
                .raw(Method::POST, path)
                .header("origin", &server.origin),
            &[("email", &email), ("password", PASSWORD)],
        ),
        ("POST", "/api/v1/auth/logout" | "/logout") => {
            let session = server.login(&email, PASSWORD).await.unwrap();
            server.as_user(&session, Method::POST, path)
        }
        ("PUT", "/api/v1/me/password") => {
            let session = server.login(&email, PASSWORD).await.unwrap();
            server.as_user(&session, Method::PUT, path).json(
                &json!({"current_password": PASSWORD, "new_password": "copper meadow signal drift"}),
            )
        }
        ("POST", "/profile/password") => {
            let session = server.login(&email, PASSWORD).await.unwrap();
            form(
                server.as_user(&session, Method::POST, path),
                &[
                    ("current_password", PASSWORD),
                    ("new_password", "copper meadow signal drift"),
                    ("new_password_confirm", "copper meadow signal drift"),
                ],
            )
        }
        ("POST", "/api/v1/orgs") => {
            as_root(Method::POST, path).json(&json!({"name": format!("New {n}")}))
        }
        ("POST", "/orgs") => form(
            as_root(Method::POST, path),
            &[("name", &format!("New {n}"))],
        ),
        ("PATCH", "/api/v1/orgs/{org_id}") => {
            as_root(Method::PATCH, &member(path)).json(&json!({"name": format!("Renamed {n}")}))
        }
        ("POST", "/orgs/{org_id}/rename") => form(
            as_root(Method::POST, &member(path)),
            &[("name", &format!("Renamed {n}"))],
        ),
        ("DELETE", "/api/v1/orgs/{org_id}") => {
            let (id, _) = fresh_org().await;
            as_root(Method::DELETE, &path.replace("{org_id}", &id))
        }
        ("POST", "/orgs/{org_id}/delete") => {
            let (id, slug) = fresh_org().await;
            form(
                as_root(Method::POST, &path.replace("{org_id}", &id)),
                &[("confirm", &slug)],
            )
        }
        ("POST", "/api/v1/orgs/{org_id}/members") => {
            as_root(Method::POST, &member(path)).json(&json!({"email": email, "role": "readonly"}))
        }
        ("POST", "/orgs/{org_id}/members") => form(
            as_root(Method::POST, &member(path)),
            &[("email", &email), ("role", "readonly")],
        ),
        ("PATCH", "/api/v1/orgs/{org_id}/members/{user_id}") => {
            as_root(Method::PATCH, &member(path)).json(&json!({"role": "admin"}))
        }
        ("POST", "/orgs/{org_id}/members/{user_id}/role") => {
            form(as_root(Method::POST, &member(path)), &[("role", "admin")])
        }
        ("DELETE", "/api/v1/orgs/{org_id}/members/{user_id}") => {
            as_root(Method::DELETE, &member(path))
        }
        ("POST", "/orgs/{org_id}/members/{user_id}/remove") => as_root(Method::POST, &member(path)),
        ("POST", "/api/v1/users") => as_root(Method::POST, path).json(
            &json!({"email": format!("new{n}@example.org"), "name": "New", "password": PASSWORD}),
        ),
        ("POST", "/admin/users") => form(
            as_root(Method::POST, path),
            &[
                ("email", &format!("new{n}@example.org")),
                ("name", "New"),
                ("password", PASSWORD),
            ],
        ),
        ("PATCH", "/api/v1/users/{user_id}") => {
            as_root(Method::PATCH, &member(path)).json(&json!({"platform_admin": true}))
        }
        ("POST", "/admin/users/{user_id}/platform-admin") => form(
            as_root(Method::POST, &member(path)),
            &[("platform_admin", "true")],
        ),
        ("DELETE", "/api/v1/users/{user_id}") => as_root(Method::DELETE, &member(path)),
        ("POST", "/admin/users/{user_id}/delete") => as_root(Method::POST, &member(path)),
        ("POST", "/api/v1/users/{user_id}/unlock") => as_root(Method::POST, &member(path)),
        ("DELETE", "/api/v1/users/{user_id}/sessions") => as_root(Method::DELETE, &member(path)),
        ("POST", "/admin/users/{user_id}/sessions/end") => as_root(Method::POST, &member(path)),
        ("DELETE", "/api/v1/me/sessions/{session_id}")
        | ("POST", "/profile/sessions/{session_id}/revoke") => {
            // Another session of root's, not the one the test drives with.
            server.login("root@example.org", PASSWORD).await.unwrap();
            let sessions = server.get(root, "/api/v1/me/sessions").await.json();
            let other = sessions["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["current"] == false)
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned();
            as_root(method.clone(), &path.replace("{session_id}", &other))
        }
        ("POST", "/api/v1/tokens") => as_root(Method::POST, path).json(&json!({
            "name": "ci", "org_id": org, "permissions": ["devices.read"], "expires_in_days": 30
        })),
        ("DELETE", "/api/v1/tokens/{token_id}") => {
            let body = json!({"name": "old", "org_id": org, "permissions": ["org.read"], "expires_in_days": 1});
            let made = server
                .call(root, Method::POST, "/api/v1/tokens", body)
                .await
                .json();
            let id = made["id"].as_str().unwrap().to_owned();
            as_root(Method::DELETE, &path.replace("{token_id}", &id))
        }
        ("POST", "/api/v1/orgs/{org_id}/service-accounts") => {
            as_root(Method::POST, &member(path)).json(&json!({"name": "robot", "role": "analyst"}))
        }
        ("DELETE", "/api/v1/orgs/{org_id}/service-accounts/{user_id}") => {
            let made = server
                .call(
                    root,
                    Method::POST,
                    &format!("/api/v1/orgs/{org}/service-accounts"),
                    json!({"name": "old robot", "role": "readonly"}),
                )
                .await
                .json();
            let id = made["id"].as_str().unwrap().to_owned();
            as_root(
                Method::DELETE,
                &path.replace("{org_id}", org).replace("{user_id}", &id),
            )
        }
        ("POST", "/admin/users/{user_id}/unlock") => as_root(Method::POST, &member(path)),
        ("POST", "/api/v1/orgs/{org_id}/enrollment-tokens") => {
            as_root(Method::POST, &member(path)).json(&json!({"max_uses": 2, "tags": ["lab"]}))
        }
        ("DELETE", "/api/v1/orgs/{org_id}/enrollment-tokens/{token_id}") => {
            server.enrollment_token(root, org, json!({})).await;
            let tokens = server
                .get(root, &format!("/api/v1/orgs/{org}/enrollment-tokens"))
                .await
                .json();
            let id = tokens["tokens"][0]["id"].as_str().unwrap().to_owned();
            as_root(Method::DELETE, &member(path).replace("{token_id}", &id))
        }
        ("POST", "/api/v1/agent/enroll") => {
            let token = server.enrollment_token(root, org, json!({})).await;
            server.raw(Method::POST, path).json(&json!({
                "token": token,
                "facts": crate::support::facts(&format!("host{n}")),
                "agent_version": "0.1.0",
            }))
        }
        ("DELETE", "/api/v1/orgs/{org_id}/devices/{device_id}") => {
            let agent = server.enroll(root, org, &format!("host{n}")).await;
            as_root(
                Method::DELETE,
                &member(path).replace("{device_id}", &agent.device_id),
            )
        }
        ("POST", "/api/v1/orgs/{org_id}/devices/{device_id}/commands") => {
            let agent = server.enroll(root, org, &format!("host{n}")).await;
            as_root(
                Method::POST,
                &member(path).replace("{device_id}", &agent.device_id),
            )
            .json(&json!({"type": "refresh_inventory"}))
        }
        ("POST", "/api/v1/orgs/{org_id}/commands") => {
            let tag = format!("only{n}");
            let token = server
                .enrollment_token(root, org, json!({"tags": [tag]}))
                .await;
            assert_eq!(
                server.try_enroll(&token, &format!("host{n}")).await.status,
                201
            );
            as_root(Method::POST, &member(path)).json(&json!({"tag": tag, "type": "reboot"}))
        }
        ("DELETE", "/api/v1/orgs/{org_id}/commands/{command_id}") => {
            let agent = server.enroll(root, org, &format!("host{n}")).await;
            let command = server
                .queue_command(root, org, &agent.device_id, json!({"type": "reboot"}))
                .await;
            as_root(
                Method::DELETE,
                &member(path).replace("{command_id}", &command),
            )
        }
        ("POST", "/api/v1/agent/commands/{command_id}/result") => {
            let agent = server.enroll(root, org, &format!("host{n}")).await;
            let command = server
                .queue_command(root, org, &agent.device_id, json!({"type": "reboot"}))
                .await;
            server
                .as_agent(
                    &agent,
                    Method::POST,
                    &path.replace("{command_id}", &command),
                )
                .json(&json!({"status": "succeeded", "exit_code": 0}))
        }
        ("POST", "/api/v1/agent/token") => {
            let agent = server.enroll(root, org, &format!("host{n}")).await;
            server.as_agent(&agent, Method::POST, path)
        }
        ("POST", "/orgs/{org_id}/enrollment-tokens") => form(
            as_root(Method::POST, &member(path)),
            &[("max_uses", "2"), ("tags", "lab")],
        ),
        ("POST", "/orgs/{org_id}/enrollment-tokens/{token_id}/revoke") => {
            server.enrollment_token(root, org, json!({})).await;
            let tokens = server
                .get(root, &format!("/api/v1/orgs/{org}/enrollment-tokens"))
                .await
                .json();
            let id = tokens["tokens"][0]["id"].as_str().unwrap().to_owned();
            as_root(Method::POST, &member(path).replace("{token_id}", &id))
        }
        ("POST", "/profile/tokens") => form(
            as_root(Method::POST, path),
            &[
                ("name", "ci"),
                ("org_id", org),
                ("permissions", "devices.read"),
                ("expires_in_days", "30"),
            ],
        ),
        ("POST", "/profile/tokens/{token_id}/revoke") => {
            let body = json!({"name": "old", "org_id": org, "permissions": ["org.read"], "expires_in_days": 1});
            let made = server
                .call(root, Method::POST, "/api/v1/tokens", body)
                .await
                .json();
            let id = made["id"].as_str().unwrap().to_owned();
            as_root(Method::POST, &path.replace("{token_id}", &id))
        }
        ("POST", "/orgs/{org_id}/service-accounts") => form(
            as_root(Method::POST, &member(path)),
            &[("name", "robot"), ("role", "analyst")],
        ),
        (
            "POST",
            "/orgs/{org_id}/service-accounts/{user_id}/delete"
            | "/orgs/{org_id}/service-accounts/{user_id}/tokens"
            | "/orgs/{org_id}/service-accounts/{user_id}/tokens/{token_id}/revoke",
        ) => {
            let made = server
                .call(
                    root,
                    Method::POST,
                    &format!("/api/v1/orgs/{org}/service-accounts"),
                    json!({"name": format!("robot {n}"), "role": "analyst"}),
                )
                .await
                .json();
            let id = made["id"].as_str().unwrap().to_owned();
            let target = path.replace("{org_id}", org).replace("{user_id}", &id);
            if path.ends_with("/delete") {
                form(as_root(Method::POST, &target), &[("confirm", "yes")])
            } else if path.ends_with("/tokens") {
                form(
                    as_root(Method::POST, &target),
                    &[
                        ("name", "pipeline"),
                        ("permissions", "devices.read"),
                        ("expires_in_days", "7"),
                    ],
                )
            } else {
                let body = json!({"name": "old", "org_id": org, "permissions": ["org.read"],
                    "expires_in_days": 1, "service_account_id": id});
                let token = server
                    .call(root, Method::POST, "/api/v1/tokens", body)
                    .await
                    .json();
                let token = token["id"].as_str().unwrap().to_owned();
                as_root(Method::POST, &target.replace("{token_id}", &token))
            }
        }
        ("POST", "/orgs/{org_id}/devices/{device_id}/revoke") => {
            let agent = server.enroll(root, org, &format!("host{n}")).await;
            form(
                as_root(
                    Method::POST,
                    &member(path).replace("{device_id}", &agent.device_id),
                ),
                &[("confirm", "yes")],
            )
        }
        ("POST", "/orgs/{org_id}/devices/{device_id}/commands/confirm") => {
            let agent = server.enroll(root, org, &format!("host{n}")).await;
            form(
                as_root(
                    Method::POST,
                    &member(path).replace("{device_id}", &agent.device_id),
                ),
                &[("type", "reboot")],
            )
        }
        ("POST", "/orgs/{org_id}/commands/{command_id}/cancel") => {
            let agent = server.enroll(root, org, &format!("host{n}")).await;
            let id = server
                .queue_command(root, org, &agent.device_id, json!({"type": "reboot"}))
                .await;
            form(
                as_root(Method::POST, &member(path).replace("{command_id}", &id)),
                &[],
            )
        }
        ("POST", "/orgs/{org_id}/devices/{device_id}/commands") => {
            let agent = server.enroll(root, org, &format!("host{n}")).await;
            form(
                as_root(
                    Method::POST,
                    &member(path).replace("{device_id}", &agent.device_id),
                ),
                &[("type", "refresh_inventory"), ("confirm", "yes")],
            )
        }
        // Two-factor authentication: the case user enrols first where needed.
        ("POST", "/api/v1/auth/login/mfa" | "/login/mfa") => {
            let session = server.login(&email, PASSWORD).await.unwrap();
            let authenticator = two_factor::enrol(server, &session).await;
            let token = two_factor::mfa_token(server, &email).await;
            let code = authenticator.code(server, 0);
            if path == "/login/mfa" {
                form(
                    server
                        .raw(Method::POST, path)
                        .header("origin", &server.origin),
                    &[("mfa_token", &token), ("code", &code)],
                )
            } else {
                server
                    .raw(Method::POST, path)
                    .json(&json!({"mfa_token": token, "code": code}))
            }
        }
        ("POST", "/api/v1/me/two-factor/enrolment" | "/profile/two-factor/enrolment") => {
            let session = server.login(&email, PASSWORD).await.unwrap();
            form(server.as_user(&session, Method::POST, path), &[])
        }
        ("POST", "/api/v1/me/two-factor/enrolment/confirm" | "/profile/two-factor/confirm") => {
            let session = server.login(&email, PASSWORD).await.unwrap();
            let started = server
                .call(
                    &session,
                    Method::POST,
                    "/api/v1/me/two-factor/enrolment",
                    json!(null),
                )
                .await;
            let secret = started.json()["secret"].as_str().unwrap().to_owned();
            let secret = sentinel_core::TotpSecret::from_bytes(
                &sentinel_core::totp::base32_decode(&secret).unwrap(),
            )
            .unwrap();
            let code = secret.code_at(sentinel_core::Clock::now(&server.clock));
            let rb = server.as_user(&session, Method::POST, path);
            if path.starts_with("/api/") {
                rb.json(&json!({"code": code}))
            } else {
                form(rb, &[("code", &code)])
            }
        }
        ("POST", "/api/v1/me/two-factor/recovery-codes" | "/profile/two-factor/recovery-codes") => {
            let session = server.login(&email, PASSWORD).await.unwrap();
            let code = two_factor::enrol(server, &session).await.code(server, 0);
            let rb = server.as_user(&session, Method::POST, path);
            if path.starts_with("/api/") {
                rb.json(&json!({"code": code}))
            } else {
                form(rb, &[("code", &code)])
            }
        }
        ("POST", "/api/v1/me/two-factor/disable" | "/profile/two-factor/disable") => {
            let session = server.login(&email, PASSWORD).await.unwrap();
            let code = two_factor::enrol(server, &session).await.code(server, 0);
            let rb = server.as_user(&session, Method::POST, path);
            if path.starts_with("/api/") {
                rb.json(&json!({"password": PASSWORD, "code": code}))
            } else {
                form(rb, &[("password", PASSWORD), ("code", &code)])
            }
        }
        ("PUT", "/api/v1/orgs/{org_id}/two-factor-policy") => {
            as_root(Method::PUT, &member(path)).json(&json!({"policy": "none"}))
        }
        ("POST", "/orgs/{org_id}/two-factor-policy") => {
            form(as_root(Method::POST, &member(path)), &[("policy", "none")])
        }
        ("DELETE", "/api/v1/users/{user_id}/two-factor")
        | ("POST", "/admin/users/{user_id}/two-factor/reset") => {
            let session = server.login(&email, PASSWORD).await.unwrap();
            two_factor::enrol(server, &session).await;
            as_root(method.clone(), &member(path))
        }
        ("POST", "/orgs/{org_id}/reports") => form(
            as_root(Method::POST, &member(path)),
            &[("kind", "kev_remediation"), ("format", "html")],
        ),
        ("POST", "/admin/feeds") => {
            let boundary = "sentinelcaseboundary";
            let record = json!({"id": format!("UI-CASE-{n}"), "modified": "2024-01-01T00:00:00Z"});
            let body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"feed\"; filename=\"case{n}.json\"\r\nContent-Type: application/json\r\n\r\n{record}\r\n--{boundary}--\r\n",
                root.csrf
            );
            as_root(Method::POST, path)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body)
        }
        ("POST", "/api/v1/orgs/{org_id}/reports") => as_root(Method::POST, &member(path))
            .json(&json!({"kind": "vulnerability_summary", "format": "json"})),
        ("POST", "/api/v1/feeds") => as_root(Method::POST, &format!("{path}?name=case{n}.json"))
            .header("content-type", "application/json")
            .body(
                json!({"id": format!("CASE-{n}"), "modified": "2024-01-01T00:00:00Z"}).to_string(),
            ),
        // IoT: device profiles, DevEUIs and broker connections (disabled, so
        // no worker connects anywhere).
        ("POST", "/api/v1/orgs/{org_id}/device-profiles") => as_root(Method::POST, &member(path))
            .json(&json!({"name": format!("Profile {n}"),
                "decoder": "function decodeUplink(input) { return { data: {} }; }"})),
        ("POST", "/api/v1/orgs/{org_id}/device-profiles/test-decoder") => {
            as_root(Method::POST, &member(path)).json(&json!({
                "code": "function decodeUplink(input) { return { data: { b: input.bytes[0] } }; }",
                "payload_hex": "2a", "f_port": 1}))
        }
        ("PUT" | "DELETE", "/api/v1/orgs/{org_id}/device-profiles/{profile_id}") => {
            let made = server
                .call(
                    root,
                    Method::POST,
                    &format!("/api/v1/orgs/{org}/device-profiles"),
                    json!({"name": format!("Profile {n}")}),
                )
                .await
                .json();
            let target = member(path).replace("{profile_id}", made["id"].as_str().unwrap());
            as_root(method.clone(), &target).json(&json!({"name": format!("Renamed {n}")}))
        }
        ("PUT", "/api/v1/orgs/{org_id}/devices/{device_id}/lorawan") => {
            let agent = server.enroll(root, org, &format!("host{n}")).await;
            as_root(
                Method::PUT,
                &member(path).replace("{device_id}", &agent.device_id),
            )
            .json(&json!({"dev_eui": format!("{n:016x}")}))
        }
        ("POST", "/api/v1/orgs/{org_id}/integrations") => as_root(Method::POST, &member(path))
            .json(&crate::iot::broker_body(&format!("case{n}/#"), false)),
        ("PUT" | "DELETE", "/api/v1/orgs/{org_id}/integrations/{integration_id}") => {
            let made = server
                .call(
                    root,
                    Method::POST,
                    &format!("/api/v1/orgs/{org}/integrations"),
                    crate::iot::broker_body(&format!("case{n}/#"), false),
                )
                .await
                .json();
            let target = member(path).replace("{integration_id}", made["id"].as_str().unwrap());
            as_root(method.clone(), &target)
                .json(&crate::iot::broker_body(&format!("case{n}/+"), false))
        }
        // IoT in the UI: the same operations through HTML forms.
        ("POST", "/orgs/{org_id}/device-profiles") => form(
            as_root(Method::POST, &member(path)),
            &[
                ("name", &format!("UI profile {n}")),
                (
                    "decoder",
                    "function decodeUplink(input) { return { data: {} }; }",
                ),
            ],
        ),
        ("POST", "/orgs/{org_id}/device-profiles/test-decoder") => form(
            as_root(Method::POST, &member(path)),
            &[
                ("name", ""),
                (
                    "decoder",
                    "function decodeUplink(input) { return { data: { b: input.bytes[0] } }; }",
                ),
                ("sample", "2a"),
                ("encoding", "hex"),
                ("f_port", "1"),
            ],
        ),
        (
            "POST",
            "/orgs/{org_id}/device-profiles/{profile_id}"
            | "/orgs/{org_id}/device-profiles/{profile_id}/test-decoder"
            | "/orgs/{org_id}/device-profiles/{profile_id}/delete",
        ) => {
            let made = server
                .call(
                    root,
                    Method::POST,
                    &format!("/api/v1/orgs/{org}/device-profiles"),
                    json!({"name": format!("Profile {n}")}),
                )
                .await
                .json();
            let target = member(path).replace("{profile_id}", made["id"].as_str().unwrap());
            form(
                as_root(Method::POST, &target),
                &[
                    ("name", &format!("Renamed {n}")),
                    (
                        "decoder",
                        "function decodeUplink(input) { return { data: {} }; }",
                    ),
                    ("sample", "AQ=="),
                    ("encoding", "base64"),
                    ("f_port", "2"),
                    ("confirm", "yes"),
                ],
            )
        }
        (
            "POST",
            "/orgs/{org_id}/devices/{device_id}/lorawan"
            | "/orgs/{org_id}/devices/{device_id}/lorawan/remove",
        ) => {
            let agent = server.enroll(root, org, &format!("host{n}")).await;
            let set = server
                .call(
                    root,
                    Method::PUT,
                    &format!("/api/v1/orgs/{org}/devices/{}/lorawan", agent.device_id),
                    json!({"dev_eui": format!("{n:016x}")}),
                )
                .await;
            assert_eq!(set.status, 200, "{}", set.text);
            form(
                as_root(
                    Method::POST,
                    &member(path).replace("{device_id}", &agent.device_id),
                ),
                &[
                    ("dev_eui", &format!("{:016x}", n + 1_000_000)),
                    ("profile_id", ""),
                ],
            )
        }
        ("POST", "/orgs/{org_id}/integrations") => form(
            as_root(Method::POST, &member(path)),
            &[
                ("name", &format!("UI broker {n}")),
                ("host", "127.0.0.1"),
                ("port", "1883"),
                ("topic", &format!("case{n}/#")),
                ("format", "chirpstack_v4"),
            ],
        ),
        (
            "POST",
            "/orgs/{org_id}/integrations/{integration_id}"
            | "/orgs/{org_id}/integrations/{integration_id}/delete",
        ) => {
            let made = server
                .call(
                    root,
                    Method::POST,
                    &format!("/api/v1/orgs/{org}/integrations"),
                    crate::iot::broker_body(&format!("case{n}/#"), false),
                )
                .await
                .json();
            let target = member(path).replace("{integration_id}", made["id"].as_str().unwrap());
            form(
                as_root(Method::POST, &target),
                &[
                    ("name", &format!("UI broker {n}")),
                    ("host", "127.0.0.1"),
                    ("port", "1883"),
                    ("topic", &format!("case{n}/+")),
                    ("format", "chirpstack_v4"),
                    ("confirm", "yes"),
                ],
            )
        }
        // Setup succeeds once per server: covered by `setup_is_audited_once`.
        ("POST", "/api/v1/setup" | "/setup") => return None,
        _ => panic!("no audit coverage case for {method} {path}: add one to audit.rs"),
    })
}

#[tokio::test]
async fn every_mutating_route_records_one_entry_on_success_and_one_on_refusal() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Coverage").await;
    let readonly = server
        .member(&root, &org, "readonly@example.org", "readonly")
        .await;
    let mut n = 0;
    for route in route_table().into_iter().filter(|r| r.mutates()) {
        if route.device_report {
            // Kept in the device's own records; covered in devices.rs.
            assert_eq!(route.access, Access::Device, "{route:?}");
            assert!(route.action.is_none(), "{route:?}");
            continue;
        }
        if route.preview {
            // Renders a page from its form and changes nothing: nothing is
            // recorded, whether it answers or refuses.
            assert!(route.action.is_none(), "{route:?}");
            n += 1;
            let request = succeeding(&server, &root, &org, &route.method, route.path, n)
                .await
                .unwrap_or_else(|| panic!("{route:?} has no success case"));
            let seen = observe(&server, &root, &org, request).await;
            assert_eq!(seen.status, 200, "{route:?}");
            assert!(
                seen.new_entries.is_empty(),
                "{route:?}: {:?}",
                seen.new_entries
            );
            continue;
        }
        let action = route
            .action
            .unwrap_or_else(|| panic!("{route:?} changes state but declares no audited action"))
            .as_str();
        n += 1;
        if let Some(request) = succeeding(&server, &root, &org, &route.method, route.path, n).await
        {
            let seen = observe(&server, &root, &org, request).await;
            assert!(seen.status < 400, "{route:?} failed with {}", seen.status);
            seen.only_entry(&route, action, "success");
        }
        // Refused: a readonly member (no permission), or a caller without the
        // CSRF token on routes any user may call.
        let nil = "00000000-0000-0000-0000-000000000000";
        let path = route
            .path
            .replace("{org_id}", &org)
            .replace("{user_id}", &root.user_id)
            .replace("{token_id}", nil)
            .replace("{device_id}", nil)
            .replace("{command_id}", nil)
            .replace("{profile_id}", nil)
            .replace("{integration_id}", nil);
        let refused = match route.access {
            // A session means nothing on agent routes: 401, counted, not audited.
            Access::Public | Access::Device => continue,
            Access::User => server
                .raw(route.method.clone(), &path)
                .header("cookie", &readonly.cookie)
                .header("origin", &server.origin),
            _ => server.as_user(&readonly, route.method.clone(), &path),
        };
        let seen = observe(&server, &root, &org, refused.json(&json!({}))).await;
        assert_eq!(seen.status, 403, "{route:?}");
        let entry = seen.only_entry(&route, action, "denied");
        assert_eq!(entry["actor_id"], readonly.user_id.as_str(), "{route:?}");
    }
    // A non-member learns nothing (404); the probe is recorded in the platform
    // log, against the organization.
    server.create_user(&root, "outsider@example.org").await;
    let outsider = server
        .login("outsider@example.org", PASSWORD)
        .await
        .unwrap();
    let probe = server
        .as_user(
            &outsider,
            Method::POST,
            &format!("/api/v1/orgs/{org}/members"),
        )
        .json(&json!({"email": "outsider@example.org", "role": "owner"}));
    let seen = observe(&server, &root, &org, probe).await;
    assert_eq!(seen.status, 404);
    let entry = seen.only_entry(&"non-member", "member.added", "denied");
    assert_eq!(entry["entity_type"], "organization");
    assert_eq!(entry["entity_id"], org.as_str());
    assert_eq!(entry["actor_id"], outsider.user_id.as_str());
    let platform_head = head(&server, &root, "/api/v1/audit").await.unwrap();
    assert_eq!(platform_head["event_id"], entry["event_id"]);
    server.stop().await;
}

#[tokio::test]
async fn setup_is_audited_once_and_unauthenticated_noise_only_counted() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let page = server.get(&root, "/api/v1/audit").await.json();
    let actions: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["auth.login", "setup.completed"]);
    // Without a session: refused, nothing written, counted.
    for _ in 0..3 {
        let resp = TestServer::send(
            server
                .raw(Method::POST, "/api/v1/orgs")
                .json(&json!({"name": "x"})),
        )
        .await;
        assert_eq!(resp.status, 401);
    }
    let after = server.get(&root, "/api/v1/audit").await.json();
    assert_eq!(after["entries"].as_array().unwrap().len(), 2);
    let metrics = server.get(&root, "/api/v1/metrics").await.text;
    assert!(
        metrics.contains("sentinel_unauthenticated_refusals_total 3"),
        "{metrics}"
    );
    // A failed login is recorded with who it claimed to be and where from.
    server
        .try_login("root@example.org", "wrong password entirely")
        .await;
    let failed = head(&server, &root, "/api/v1/audit").await.unwrap();
    assert_eq!(failed["action"], "auth.login_failed");
    assert_eq!(failed["outcome"], "failure");
    assert_eq!(failed["client_ip"], "127.0.0.1");
    server.stop().await;
}

#[tokio::test]
async fn audit_logs_are_readable_only_by_whom_they_belong_to() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Acme").await;
    let other = server.create_org(&root, "Other").await;
    let analyst = server
        .member(&root, &org, "analyst@example.org", "analyst")
        .await;
    let readonly = server
        .member(&root, &org, "ro@example.org", "readonly")
        .await;
    let log = format!("/api/v1/orgs/{org}/audit");
    let page = server.get(&analyst, &log).await;
    assert_eq!(page.status, 200);
    assert!(page.json()["entries"].as_array().unwrap().len() >= 2);
    assert_eq!(server.get(&readonly, &log).await.status, 403);
    assert_eq!(
        server
            .get(&analyst, &format!("/api/v1/orgs/{other}/audit"))
            .await
            .status,
        404
    );
    assert_eq!(server.get(&analyst, "/api/v1/audit").await.status, 403);
    for bad in [
        "?action=org.nuked",
        "?outcome=maybe",
        "?since=yesterday",
        "?after=abc",
        "?limit=0",
        "?limit=1000000",
        "?unknown=1",
        "/export?format=xml",
    ] {
        let resp = server.get(&analyst, &format!("{log}{bad}")).await;
        assert_eq!(resp.status, 400, "{bad}: {}", resp.text);
    }
    // Pagination: pages do not overlap and end.
    let first = server.get(&analyst, &format!("{log}?limit=1")).await.json();
    let next = first["next"].as_str().unwrap();
    let second = server
        .get(&analyst, &format!("{log}?limit=1&after={next}"))
        .await
        .json();
    assert!(second["entries"][0]["seq"].as_i64() < first["entries"][0]["seq"].as_i64());
    // Filters combine; free text is case-insensitive.
    let filtered = server
        .get(&analyst, &format!("{log}?action=member.added&q=ANALYST"))
        .await
        .json();
    let filtered = filtered["entries"].as_array().unwrap();
    assert_eq!(filtered.len(), 1, "{filtered:?}");
    assert_eq!(filtered[0]["detail"]["role"], "analyst");
    // Exports: NDJSON and CSV, each audited.
    let ndjson = server.get(&analyst, &format!("{log}/export")).await;
    assert_eq!(ndjson.status, 200);
    assert_eq!(ndjson.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = ndjson
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["action"], "audit.exported");
    let csv = server
        .get(
            &analyst,
            &format!("{log}/export?format=csv&action=member.added"),
        )
        .await;
    assert!(csv.text.starts_with("seq,at,actor_kind"), "{}", csv.text);
    assert_eq!(csv.text.lines().count(), 3, "{}", csv.text);
    let newest = head(&server, &analyst, &log).await.unwrap();
    assert_eq!(newest["action"], "audit.exported");
    assert_eq!(newest["detail"]["format"], "csv");
    // The UI page renders the same log, escaped.
    let html = server.get(&analyst, &format!("/orgs/{org}/audit")).await;
    assert_eq!(html.status, 200);
    assert!(html.text.contains("member.added"));
    server.stop().await;
}

fn verify(data_dir: &std::path::Path) -> (i32, String) {
    verify_with(data_dir, &[])
}

/// `sentinel audit verify --data-dir DATA_DIR ARGS…`: its exit code and output.
fn verify_with(data_dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args(["audit", "verify", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env_remove("SENTINEL_DATABASE_URL")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A copy of the stopped server's data directory, tampered with by `sql`
/// executed directly on its control database.
async fn tampered(original: &std::path::Path, name: &str, sql: &[&str]) -> std::path::PathBuf {
    let copy = original.with_file_name(name);
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(original)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", copy.join("control.db").display()))
            .await
            .unwrap();
    for statement in sql {
        sqlx::query(sqlx::AssertSqlSafe(*statement))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    copy
}

const REARM: &str = "CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries \
                     BEGIN SELECT RAISE(ABORT, 'x'); END";
const REARM_DELETE: &str = "CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries \
                            BEGIN SELECT RAISE(ABORT, 'x'); END";

#[tokio::test]
async fn verify_catches_tampering_done_directly_in_the_database() {
    let mut server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Acme").await;
    server
        .member(&root, &org, "bob@example.org", "analyst")
        .await;
    // Stopping signs every log's head.
    server.server.take().unwrap().shutdown().await;
    let data = server.config.data_dir.clone();

    let (code, text) = verify(&data);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("platform: intact"), "{text}");
    assert!(text.contains(&format!("org:{org}: intact")), "{text}");

    let cases: [(&str, Vec<&str>, &str); 4] = [
        (
            "dropped-trigger",
            vec!["DROP TRIGGER audit_entries_no_delete"],
            "audit_entries_no_delete removed",
        ),
        (
            "edited-detail",
            vec![
                "DROP TRIGGER audit_entries_no_update",
                "UPDATE audit_entries SET detail = '{\"email\":\"mallory@example.org\"}' WHERE seq = 2",
                REARM,
            ],
            "entry 2: its content does not match its hash",
        ),
        (
            "deleted-row",
            vec![
                "DROP TRIGGER audit_entries_no_delete",
                "DELETE FROM audit_entries WHERE seq = 3",
                REARM_DELETE,
            ],
            "entry 3: entries 3..3 are missing",
        ),
        (
            "truncated-tail",
            vec![
                "DROP TRIGGER audit_entries_no_delete",
                "DELETE FROM audit_entries WHERE seq >= (SELECT MAX(seq) - 1 FROM audit_entries)",
                REARM_DELETE,
            ],
            "truncated",
        ),
    ];
    for (name, sql, expected) in cases {
        let copy = tampered(&data, name, &sql).await;
        let (code, text) = verify(&copy);
        assert_eq!(code, 1, "{name}: {text}");
        assert!(text.contains("TAMPERED platform"), "{name}: {text}");
        assert!(text.contains(expected), "{name}: {text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn each_log_is_pruned_after_its_own_retention_and_still_verifies() {
    use sentinel_core::audit::LogId;
    use sentinel_store::AuditFilter;

    let mut server = TestServer::start().await;
    let root = server.setup_admin().await;
    let short = server.create_org(&root, "Short").await;
    let long = server.create_org(&root, "Long").await;
    server
        .member(&root, &short, "bob@example.org", "analyst")
        .await;
    server
        .member(&root, &long, "carol@example.org", "analyst")
        .await;
    // Stopping signs every head. A year and a bit later, maintenance's
    // retention pass removes entries only from the log with a one-year
    // retention.
    server.server.take().unwrap().shutdown().await;
    server
        .clock
        .advance(std::time::Duration::from_secs(400 * 86_400));
    let short_log = LogId::Org(short.parse().unwrap());
    let long_log = LogId::Org(long.parse().unwrap());
    let mut settings = server.config.audit.clone();
    settings.retention_for = vec![sentinel::config::LogRetention {
        log: short_log,
        retention: std::time::Duration::from_secs(365 * 86_400),
    }];
    let data_dir = sentinel::data_dir::DataDir::open(&server.config.data_dir).unwrap();
    let stores =
        sentinel_store::Stores::open(&server.config.store_location(&data_dir), &server.clock)
            .await
            .unwrap();
    let removed = sentinel::audit::prune_all(&stores, &server.clock, &settings)
        .await
        .unwrap();
    assert!(removed > 0);
    let actions = |log: LogId| {
        let stores = &stores;
        async move {
            let page = stores
                .audit_log(log)
                .await
                .unwrap()
                .page(&AuditFilter::default(), 100)
                .await
                .unwrap();
            page.entries
                .into_iter()
                .map(|e| e.action)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(actions(short_log).await, ["audit.pruned"]);
    let kept = actions(long_log).await;
    assert!(kept.contains(&"member.added".to_owned()), "{kept:?}");
    assert!(!kept.contains(&"audit.pruned".to_owned()), "{kept:?}");
    assert!(
        !actions(LogId::Platform)
            .await
            .contains(&"audit.pruned".to_owned())
    );
    stores.close().await;

    let (code, text) = verify(&server.config.data_dir);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("org:{short}: intact")), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn verify_catches_tampering_done_directly_in_postgresql() {
    let Some(mut server) = TestServer::start_on(Engine::Postgres, |_| {}).await else {
        return;
    };
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Acme").await;
    server
        .member(&root, &org, "bob@example.org", "analyst")
        .await;
    server.server.take().unwrap().shutdown().await;
    let data = server.config.data_dir.clone();
    let url = server.config.database_url.clone().unwrap();
    let url = url.expose();
    let verify = |extra: &'static [&'static str]| {
        let mut args = vec!["--database-url", url];
        args.extend_from_slice(extra);
        verify_with(&data, &args)
    };
    let (code, text) = verify(&[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("org:{org}: intact")), "{text}");

    // A superuser can switch the triggers off: verify says so, and names the
    // edited entry once they are back on.
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let entries = format!("sentinel_org_{}.audit_entries", org.replace('-', ""));
    let run = |sql: String| {
        let pool = pool.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    run(format!(
        "ALTER TABLE {entries} DISABLE TRIGGER audit_entries_no_update"
    ))
    .await;
    let (code, text) = verify(&[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("audit_entries_no_update removed"), "{text}");
    run(format!(
        "UPDATE {entries} SET detail = '{{\"role\":\"owner\"}}' WHERE seq = 1"
    ))
    .await;
    run(format!(
        "ALTER TABLE {entries} ENABLE TRIGGER audit_entries_no_update"
    ))
    .await;
    let (code, text) = verify(&[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "TAMPERED org:{org}: entry 1: its content does not match its hash"
        )),
        "{text}"
    );
    // The platform log, truncated after its last checkpoint.
    run(
        "ALTER TABLE sentinel_control.audit_entries DISABLE TRIGGER audit_entries_no_delete".into(),
    )
    .await;
    run("DELETE FROM sentinel_control.audit_entries WHERE seq = (SELECT MAX(seq) FROM sentinel_control.audit_entries)".into()).await;
    run("ALTER TABLE sentinel_control.audit_entries ENABLE TRIGGER audit_entries_no_delete".into())
        .await;
    let (code, text) = verify(&[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("TAMPERED platform"), "{text}");
    assert!(text.contains("truncated"), "{text}");
    pool.close().await;
    server.stop().await;
}
