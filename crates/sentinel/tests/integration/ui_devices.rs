//! The device pages of the web UI through the real server: the list and a
//! device's page (facts, SVG charts, inventory, commands), queueing a command
//! only after its confirmation page, revoking a device only when confirmed,
//! enrollment tokens shown once, and what a readonly member may not do.

use reqwest::Method;
use sentinel_protocol::inventory::{Inventory, Package};
use serde_json::{Value, json};

use crate::support::{Agent, Session, TestServer, post_form};

fn sample(cpu: f64, used: u64) -> Value {
    json!({
        "uptime_seconds": 5, "load": [0.1, 0.2, 0.3], "cpu_percent": cpu,
        "memory": {"total_bytes": 1000, "available_bytes": 1000 - used, "used_bytes": used},
        "swap": {"total_bytes": 0, "available_bytes": 0, "used_bytes": 0},
        "disks": [], "interfaces": [], "logged_in_users": 1, "warnings": []
    })
}

async fn report(server: &TestServer, agent: &Agent, path: &str, body: Value) {
    let resp = TestServer::send(server.as_agent(agent, Method::POST, path).json(&body)).await;
    assert!(matches!(resp.status, 200 | 204), "{path}: {}", resp.text);
}

/// The device's commands, as the API shows them.
async fn commands(server: &TestServer, root: &Session, org: &str, device: &str) -> Vec<Value> {
    let resp = server
        .get(
            root,
            &format!("/api/v1/orgs/{org}/devices/{device}/commands"),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json()["commands"].as_array().unwrap().clone()
}

async fn device_json(server: &TestServer, root: &Session, org: &str, device: &str) -> Value {
    server
        .get(root, &format!("/api/v1/orgs/{org}/devices/{device}"))
        .await
        .json()
}

#[tokio::test]
async fn device_pages_show_facts_charts_inventory_and_escape_hostile_text() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let agent = server.enroll(&root, &org, "web-01").await;
    let hostile = server
        .enroll(&root, &org, "<script>alert(1)</script>")
        .await;
    // The organization page links to the devices.
    let overview = server.get(&root, &format!("/orgs/{org}")).await;
    assert!(
        overview
            .text
            .contains(&format!("href=\"/orgs/{org}/devices\""))
    );

    let list = server.get(&root, &format!("/orgs/{org}/devices")).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert!(list.text.contains(&format!(
        "href=\"/orgs/{org}/devices/{}\">web-01</a>",
        agent.device_id
    )));
    assert!(list.text.contains("status-online"), "{}", list.text);
    assert!(list.text.contains("Debian GNU/Linux 12 (bookworm)"));
    assert!(list.text.contains("0.1.0"));
    assert!(!list.text.contains("<script>alert"));
    assert!(
        list.text
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
    );
    // The search form narrows the list.
    let found = server
        .get(&root, &format!("/orgs/{org}/devices?q=web&tag="))
        .await;
    assert_eq!(found.status, 200);
    assert!(found.text.contains("web-01"));
    assert!(!found.text.contains(&hostile.device_id));
    let none = server
        .get(&root, &format!("/orgs/{org}/devices?tag=nosuchtag"))
        .await;
    assert!(!none.text.contains("web-01") && none.text.contains("No devices match."));

    // Telemetry becomes two charts; an inventory becomes a table.
    let samples: Vec<Value> = [(10.0, 250), (50.0, 500), (90.0, 750)]
        .iter()
        .enumerate()
        .map(|(i, (cpu, used))| json!({"at": 100 + i as i64 * 30, "sample": sample(*cpu, *used)}))
        .collect();
    report(
        &server,
        &agent,
        "/api/v1/agent/telemetry",
        json!({"samples": samples}),
    )
    .await;
    let packages: Vec<Package> = serde_json::from_value(json!([
        {"manager": "dpkg", "name": "bash", "version": "5.2", "arch": "amd64", "source_name": null, "source_version": null},
        {"manager": "dpkg", "name": "openssl", "version": "3.0.11", "arch": "amd64", "source_name": "openssl", "source_version": "3.0.11-1"},
        {"manager": "dpkg", "name": "evil<b>pkg", "version": "1", "arch": null, "source_name": null, "source_version": null}
    ]))
    .unwrap();
    let digest = Inventory::new(packages.clone()).digest();
    report(
        &server,
        &agent,
        "/api/v1/agent/inventory",
        json!({"digest": digest, "packages": packages}),
    )
    .await;

    let path = format!("/orgs/{org}/devices/{}", agent.device_id);
    let page = server.get(&root, &path).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let html = &page.text;
    assert!(html.contains("<h1 id=\"device-title\">web-01"));
    assert!(html.contains("6.1.0-18-amd64") && html.contains("x86_64"));
    assert!(html.contains("id=\"chart-cpu\"") && html.contains("id=\"chart-memory\""));
    // CPU 10, 50, 90 % over a 600 × 120 box; memory 25, 50, 75 %.
    assert!(
        html.contains("d=\"M0.0 108.0 L300.0 60.0 L600.0 12.0\""),
        "{html}"
    );
    assert!(html.contains("d=\"M0.0 90.0 L300.0 60.0 L600.0 30.0\""));
    assert!(html.contains("90.0 %") && html.contains("(3 samples)"));
    assert!(html.contains("<td>openssl</td>") && html.contains("openssl 3.0.11-1"));
    assert!(html.contains("evil&#60;b&#62;pkg") && !html.contains("evil<b>"));
    // Root may act: the command form and the revoke form are there.
    assert!(html.contains("id=\"command-form\"") && html.contains("id=\"revoke-device\""));
    // The inventory search box.
    let searched = server
        .get(&root, &format!("{path}?inventory_q=openssl"))
        .await;
    assert!(searched.text.contains("<td>openssl</td>"));
    assert!(!searched.text.contains("<td>bash</td>"));

    // The hostile device's own page escapes its name too.
    let hostile_page = server
        .get(&root, &format!("/orgs/{org}/devices/{}", hostile.device_id))
        .await;
    assert_eq!(hostile_page.status, 200);
    assert!(!hostile_page.text.contains("<script>alert"));
    assert!(hostile_page.text.contains("&#60;script&#62;"));

    // Another organization's device is not found; a bad id is a bad request.
    let other = server.create_org(&root, "Elsewhere").await;
    let elsewhere = server
        .get(&root, &format!("/orgs/{other}/devices/{}", agent.device_id))
        .await;
    assert_eq!(elsewhere.status, 404, "{}", elsewhere.text);
    assert!(!elsewhere.text.contains("web-01"));
    let bad = server
        .get(&root, &format!("/orgs/{org}/devices/not-a-uuid"))
        .await;
    assert_eq!(bad.status, 400);
    server.stop().await;
}

#[tokio::test]
async fn commands_are_queued_only_after_the_confirmation_page() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let agent = server.enroll(&root, &org, "db-01").await;
    let device = format!("/orgs/{org}/devices/{}", agent.device_id);

    // The confirmation page shows exactly what will run, and queues nothing.
    let query = serde_urlencoded::to_string([
        ("type", "run_script"),
        ("interpreter", "bash"),
        ("script", "echo '<hi>' && uptime"),
        ("timeout_seconds", "60"),
        ("name", ""),
    ])
    .unwrap();
    let confirm = post_form(
        &server,
        &root,
        &format!("{device}/commands/confirm"),
        &serde_urlencoded::from_str::<Vec<(String, String)>>(&query)
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    assert!(confirm.text.contains("<code>run_script</code>"));
    assert!(confirm.text.contains("<code>bash</code>") && confirm.text.contains("60 s"));
    assert!(
        confirm
            .text
            .contains("echo &#39;&#60;hi&#62;&#39; &#38;&#38; uptime"),
        "{}",
        confirm.text
    );
    assert!(confirm.text.contains("name=\"confirm\" value=\"yes\""));
    assert!(
        commands(&server, &root, &org, &agent.device_id)
            .await
            .is_empty()
    );

    // Bad input: a 4xx page, nothing queued, on both steps.
    let long_script = "x".repeat(64 * 1024 + 1);
    let bad_inputs: [&[(&str, &str)]; 4] = [
        &[("type", "format_disk")],
        &[
            ("type", "install_package"),
            ("name", "-oAPT::Update::Pre-Invoke::=sh"),
        ],
        &[
            ("type", "run_script"),
            ("interpreter", "sh"),
            ("script", &long_script),
        ],
        &[
            ("type", "run_script"),
            ("interpreter", "perl"),
            ("script", "1"),
        ],
    ];
    for fields in bad_inputs {
        let resp = post_form(
            &server,
            &root,
            &format!("{device}/commands/confirm"),
            fields,
        )
        .await;
        // 400, or 413 for a script larger than a form body may be.
        assert!(
            matches!(resp.status, 400 | 413),
            "{fields:?}: {}",
            resp.status
        );
        let mut confirmed = fields.to_vec();
        confirmed.push(("confirm", "yes"));
        let resp = post_form(&server, &root, &format!("{device}/commands"), &confirmed).await;
        // 400, or 413 for a script larger than a form body may be.
        assert!(
            matches!(resp.status, 400 | 413),
            "{fields:?}: {}",
            resp.status
        );
    }
    // Without the confirmation, nothing is queued either.
    let unconfirmed = post_form(
        &server,
        &root,
        &format!("{device}/commands"),
        &[("type", "reboot")],
    )
    .await;
    assert_eq!(unconfirmed.status, 400);
    assert!(
        commands(&server, &root, &org, &agent.device_id)
            .await
            .is_empty()
    );

    // Confirmed: exactly one command, then back to the device page.
    let queued = post_form(
        &server,
        &root,
        &format!("{device}/commands"),
        &[
            ("type", "run_script"),
            ("interpreter", "bash"),
            ("script", "echo '<hi>' && uptime"),
            ("timeout_seconds", "60"),
            ("name", ""),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(queued.status, 303, "{}", queued.text);
    assert!(
        queued
            .header("location")
            .unwrap()
            .starts_with(&format!("{device}?notice=command-queued"))
    );
    let listed = commands(&server, &root, &org, &agent.device_id).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["type"], "run_script");
    assert_eq!(listed[0]["params"]["script"], "echo '<hi>' && uptime");
    assert_eq!(listed[0]["params"]["interpreter"], "bash");
    assert_eq!(listed[0]["params"]["timeout_seconds"], 60);
    let id = listed[0]["id"].as_str().unwrap();

    // The agent reports the result; the page shows status, exit code and output.
    report(
        &server,
        &agent,
        &format!("/api/v1/agent/commands/{id}/result"),
        json!({"status": "failed", "exit_code": 3, "stdout": "<b>up 5 days</b>", "stderr": "oops & more"}),
    )
    .await;
    let page = server
        .get(&root, &format!("{device}?notice=command-queued"))
        .await;
    assert!(page.text.contains("Command queued."));
    assert!(
        page.text
            .contains("<pre class=\"stdout\">&#60;b&#62;up 5 days&#60;/b&#62;</pre>"),
        "{}",
        page.text
    );
    assert!(
        page.text
            .contains("<pre class=\"stderr\">oops &#38; more</pre>")
    );
    assert!(page.text.contains("<td class=\"exit-code\">3</td>") && page.text.contains(">failed"));

    // A package command: the name is shown on the confirmation page.
    let confirm = post_form(
        &server,
        &root,
        &format!("{device}/commands/confirm"),
        &[
            ("type", "install_package"),
            ("name", "nginx"),
            ("expires_in_hours", "168"),
        ],
    )
    .await;
    assert_eq!(confirm.status, 200);
    assert!(
        confirm.text.contains("<code>168 h</code>"),
        "{}",
        confirm.text
    );
    assert!(
        confirm
            .text
            .contains("name=\"expires_in_hours\" value=\"168\"")
    );
    assert!(confirm.text.contains("<code>nginx</code>"));
    assert_eq!(
        commands(&server, &root, &org, &agent.device_id).await.len(),
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn enrollment_tokens_are_shown_once_and_can_be_revoked() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let tokens = format!("/orgs/{org}/enrollment-tokens");

    let created = post_form(
        &server,
        &root,
        &tokens,
        &[
            ("expires_in_hours", "2"),
            ("max_uses", "3"),
            ("tags", "lab, web"),
        ],
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let start =
        created.text.find("<pre id=\"token-secret\">").unwrap() + "<pre id=\"token-secret\">".len();
    let secret = &created.text[start..start + created.text[start..].find("</pre>").unwrap()];
    assert!(secret.starts_with("set_"), "{secret}");
    assert_eq!(
        created.text.matches(secret).count(),
        1,
        "shown once on the page"
    );
    assert!(
        created
            .text
            .contains("sentinel-agent enroll --server https://")
    );
    assert!(created.text.contains("0 / 3") && created.text.contains("lab, web"));

    // The list never shows it again; the token works.
    let list = server.get(&root, &tokens).await;
    assert_eq!(list.status, 200);
    assert!(!list.text.contains(secret));
    assert!(list.text.contains("usable"));
    assert_eq!(server.try_enroll(secret, "new-host").await.status, 201);
    assert!(server.get(&root, &tokens).await.text.contains("1 / 3"));

    // Bad input: a 4xx page with the form, nothing created.
    for fields in [
        [("max_uses", "0"), ("tags", "")],
        [("max_uses", "many"), ("tags", "")],
        [("max_uses", "1"), ("tags", "Not Valid!")],
    ] {
        let resp = post_form(&server, &root, &tokens, &fields).await;
        assert_eq!(resp.status, 400, "{fields:?}: {}", resp.text);
        assert!(resp.text.contains("id=\"form-error\""));
    }
    let api = server
        .get(&root, &format!("/api/v1/orgs/{org}/enrollment-tokens"))
        .await
        .json();
    let all = api["tokens"].as_array().unwrap();
    assert_eq!(all.len(), 1);
    let id = all[0]["id"].as_str().unwrap().to_owned();

    // Another organization cannot revoke it; its owner can.
    let other = server.create_org(&root, "Elsewhere").await;
    let elsewhere = post_form(
        &server,
        &root,
        &format!("/orgs/{other}/enrollment-tokens/{id}/revoke"),
        &[],
    )
    .await;
    assert_eq!(elsewhere.status, 404);
    let revoked = post_form(&server, &root, &format!("{tokens}/{id}/revoke"), &[]).await;
    assert_eq!(revoked.status, 303, "{}", revoked.text);
    let page = server
        .get(&root, &format!("{tokens}?notice=token-revoked"))
        .await;
    assert!(page.text.contains("Enrollment token revoked.") && page.text.contains(">revoked<"));
    let api = server
        .get(&root, &format!("/api/v1/orgs/{org}/enrollment-tokens"))
        .await
        .json();
    assert!(!api["tokens"][0]["revoked_at"].is_null());
    assert_eq!(server.try_enroll(secret, "late-host").await.status / 100, 4);
    server.stop().await;
}

#[tokio::test]
async fn revoking_a_device_needs_the_box_ticked() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let agent = server.enroll(&root, &org, "laptop-7").await;
    let path = format!("/orgs/{org}/devices/{}/revoke", agent.device_id);

    for fields in [&[][..], &[("confirm", "")][..], &[("confirm", "no")][..]] {
        let resp = post_form(&server, &root, &path, fields).await;
        assert_eq!(resp.status, 400, "{fields:?}");
        assert!(device_json(&server, &root, &org, &agent.device_id).await["revoked_at"].is_null());
    }
    let resp = post_form(&server, &root, &path, &[("confirm", "yes")]).await;
    assert_eq!(resp.status, 303, "{}", resp.text);
    assert!(!device_json(&server, &root, &org, &agent.device_id).await["revoked_at"].is_null());
    let page = server
        .get(
            &root,
            &format!(
                "/orgs/{org}/devices/{}?notice=device-revoked",
                agent.device_id
            ),
        )
        .await;
    assert!(page.text.contains("Device revoked.") && page.text.contains("status-revoked"));
    assert!(
        !page.text.contains("id=\"revoke-device\"") && !page.text.contains("id=\"command-form\"")
    );
    // A revoked device's token no longer works.
    let refused = TestServer::send(
        server
            .as_agent(&agent, Method::POST, "/api/v1/agent/telemetry")
            .json(&json!({"samples": []})),
    )
    .await;
    assert_eq!(refused.status, 401);
    server.stop().await;
}

#[tokio::test]
async fn a_readonly_member_sees_the_pages_but_cannot_act() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let agent = server.enroll(&root, &org, "kiosk-2").await;
    let readonly = server
        .member(&root, &org, "reader@example.org", "readonly")
        .await;
    let device = format!("/orgs/{org}/devices/{}", agent.device_id);
    let tokens = format!("/orgs/{org}/enrollment-tokens");

    for path in [
        format!("/orgs/{org}/devices"),
        device.clone(),
        tokens.clone(),
    ] {
        let page = server.get(&readonly, &path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text);
        assert!(page.text.contains("kiosk-2") || path == tokens, "{path}");
        for form in [
            "method=\"post\" action=\"/orgs",
            "id=\"command-form\"",
            "commands/confirm",
        ] {
            assert!(!page.text.contains(form), "{path} shows {form}");
        }
    }
    let confirm = post_form(
        &server,
        &readonly,
        &format!("{device}/commands/confirm"),
        &[("type", "reboot")],
    )
    .await;
    assert_eq!(confirm.status, 403);
    let token_id = {
        server.enrollment_token(&root, &org, json!({})).await;
        let api = server
            .get(&root, &format!("/api/v1/orgs/{org}/enrollment-tokens"))
            .await
            .json();
        api["tokens"][0]["id"].as_str().unwrap().to_owned()
    };
    let posts: [(String, &[(&str, &str)]); 4] = [
        (
            format!("{device}/commands"),
            &[("type", "reboot"), ("confirm", "yes")],
        ),
        (format!("{device}/revoke"), &[("confirm", "yes")]),
        (tokens.clone(), &[("max_uses", "1")]),
        (format!("{tokens}/{token_id}/revoke"), &[]),
    ];
    for (path, fields) in posts {
        let resp = post_form(&server, &readonly, &path, fields).await;
        assert_eq!(resp.status, 403, "{path}");
    }
    assert!(
        commands(&server, &root, &org, &agent.device_id)
            .await
            .is_empty()
    );
    assert!(device_json(&server, &root, &org, &agent.device_id).await["revoked_at"].is_null());
    let api = server
        .get(&root, &format!("/api/v1/orgs/{org}/enrollment-tokens"))
        .await
        .json();
    assert_eq!(api["tokens"].as_array().unwrap().len(), 2);
    assert!(
        api["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["revoked_at"].is_null())
    );
    server.stop().await;
}

#[tokio::test]
async fn the_full_size_script_expiry_cancel_and_revoked_devices_work_in_the_ui() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let agent = server.enroll(&root, &org, "db-01").await;
    let device = format!("/orgs/{org}/devices/{}", agent.device_id);

    // A script of the full 64 KiB, with characters forms must escape, goes
    // through the confirmation page and is queued with the chosen expiry.
    let body = "echo \"a&b=c%\" # ".repeat(64 * 1024 / 17);
    let script = format!("{body}{}", "#".repeat(64 * 1024 - body.len()));
    assert_eq!(script.len(), 64 * 1024);
    let fields = [
        ("type", "run_script"),
        ("interpreter", "sh"),
        ("script", script.as_str()),
        ("expires_in_hours", "1"),
    ];
    let confirm = post_form(
        &server,
        &root,
        &format!("{device}/commands/confirm"),
        &fields,
    )
    .await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    assert!(
        commands(&server, &root, &org, &agent.device_id)
            .await
            .is_empty()
    );
    let mut confirmed = fields.to_vec();
    confirmed.push(("confirm", "yes"));
    let queued = post_form(&server, &root, &format!("{device}/commands"), &confirmed).await;
    assert_eq!(queued.status, 303, "{}", queued.text);
    let listed = commands(&server, &root, &org, &agent.device_id).await;
    assert_eq!(listed.len(), 1);
    let issued = listed[0]["issued_at"].as_str().unwrap().to_owned();
    let expires = listed[0]["expires_at"].as_str().unwrap().to_owned();
    let parse = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
    };
    let waits = (parse(&expires) - parse(&issued)).as_seconds_f64();
    assert!((3599.0..=3601.0).contains(&waits), "{waits}");
    // Over the limit by one byte: refused, nothing queued.
    let over = format!("{script}#");
    let resp = post_form(
        &server,
        &root,
        &format!("{device}/commands"),
        &[
            ("type", "run_script"),
            ("script", over.as_str()),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(resp.status, 400, "{}", resp.text);
    let bad_expiry = post_form(
        &server,
        &root,
        &format!("{device}/commands/confirm"),
        &[("type", "reboot"), ("expires_in_hours", "soon")],
    )
    .await;
    assert_eq!(bad_expiry.status, 400);

    // A waiting command can be cancelled from the device page.
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let page = server.get(&root, &device).await;
    assert!(
        page.text.contains(&format!("/commands/{id}/cancel")),
        "no cancel button"
    );
    let cancel = post_form(
        &server,
        &root,
        &format!("/orgs/{org}/commands/{id}/cancel"),
        &[],
    )
    .await;
    assert_eq!(cancel.status, 303, "{}", cancel.text);
    let listed = commands(&server, &root, &org, &agent.device_id).await;
    assert_eq!(listed[0]["status"], "cancelled");
    let page = server.get(&root, &device).await;
    assert!(!page.text.contains(&format!("/commands/{id}/cancel")));

    // Revoked devices are listed on request only.
    let revoke = post_form(
        &server,
        &root,
        &format!("{device}/revoke"),
        &[("confirm", "yes")],
    )
    .await;
    assert!(revoke.status < 400, "{}", revoke.text);
    let list = server.get(&root, &format!("/orgs/{org}/devices")).await;
    assert!(!list.text.contains("db-01"), "{}", list.text);
    let list = server
        .get(&root, &format!("/orgs/{org}/devices?revoked=on"))
        .await;
    assert!(
        list.text.contains("db-01") && list.text.contains("revoked"),
        "{}",
        list.text
    );
    server.stop().await;
}

#[tokio::test]
async fn a_full_size_script_fits_the_api_too() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let agent = server.enroll(&root, &org, "db-01").await;
    // Quotes and backslashes double under JSON escaping.
    let script = "\"\\".repeat(32 * 1024);
    let resp = server
        .call(
            &root,
            Method::POST,
            &format!("/api/v1/orgs/{org}/devices/{}/commands", agent.device_id),
            json!({"type": "run_script", "params": {"interpreter": "sh", "script": script}}),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    server.stop().await;
}
