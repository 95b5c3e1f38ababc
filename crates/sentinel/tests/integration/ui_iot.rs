//! The IoT pages of the web UI through the real server: device profiles
//! (trying a decoder before saving it, creating, editing, deleting), a
//! device's DevEUI, profile and stored uplinks, and broker connections with
//! their workers' status, all through the HTML forms. And the attacks: a
//! missing or forged CSRF token, readonly and analyst members, another
//! organization's ids, hostile strings, malformed samples, and a broker
//! password that no page ever holds.

use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::iot::{
    TEMPERATURE_DECODER, Topics, broker_available, next_event, publish, publish_until_stored,
    uplink,
};
use crate::support::{Resp, Session, TestServer, eventually, on_both_engines, post_form};

/// A decoder that throws.
const THROWING_DECODER: &str = "function decodeUplink(input) { throw new Error('bad sensor'); }";

/// What askama makes of `text` in a page.
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A profile form: name, decoder, and a sample for "Test decoder".
fn profile_form<'a>(
    name: &'a str,
    decoder: &'a str,
    sample: &'a str,
    encoding: &'a str,
    f_port: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("decoder", decoder),
        ("sample", sample),
        ("encoding", encoding),
        ("f_port", f_port),
    ]
}

/// A broker connection form, `extra` fields replacing or adding to the
/// defaults (disabled unless `extra` says `enabled`).
fn broker_form<'a>(
    name: &'a str,
    host: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("name", name),
        ("host", host),
        ("port", "1883"),
        ("ca_pem", ""),
        ("username", ""),
        ("password", ""),
        ("topic", "sentinel-ui-test/#"),
        ("format", "chirpstack_v4"),
    ];
    for (key, value) in extra {
        match fields.iter_mut().find(|(k, _)| k == key) {
            Some(field) => field.1 = value,
            None => fields.push((key, value)),
        }
    }
    fields
}

async fn api(server: &TestServer, session: &Session, path: &str) -> Value {
    let resp = server.get(session, path).await;
    assert_eq!(resp.status, 200, "{path}: {}", resp.text);
    resp.json()
}

/// Where a 303 answer sends the browser.
fn location(resp: &Resp) -> String {
    assert_eq!(resp.status, 303, "{}", resp.text);
    resp.header("location").unwrap().to_owned()
}

/// The id that ends the path of `location` (`…/{id}?notice=…`).
fn id_in(location: &str) -> String {
    let path = location.split(['?', '#']).next().unwrap();
    path.rsplit('/').next().unwrap().to_owned()
}

/// Everything the IoT pages can change in `org`, as the API shows it.
async fn snapshot(server: &TestServer, root: &Session, org: &str, device: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for path in [
        format!("/api/v1/orgs/{org}/device-profiles"),
        format!("/api/v1/orgs/{org}/integrations"),
        format!("/api/v1/orgs/{org}/devices/{device}/lorawan"),
    ] {
        let resp = server.get(root, &path).await;
        assert_eq!(resp.status, 200, "{path}: {}", resp.text);
        seen.push(resp.text);
    }
    seen
}

/// An organization with a device (DevEUI 0011223344556677 and a profile) and
/// a disabled broker connection: (org, device, profile, integration).
async fn iot_org(
    server: &TestServer,
    root: &Session,
    name: &str,
) -> (String, String, String, String) {
    let org = server.create_org(root, name).await;
    let device = server
        .enroll(root, &org, &format!("{name}-gateway"))
        .await
        .device_id;
    let profile = server
        .call(
            root,
            Method::POST,
            &format!("/api/v1/orgs/{org}/device-profiles"),
            json!({"name": format!("{name} sensor"), "decoder": TEMPERATURE_DECODER}),
        )
        .await;
    assert_eq!(profile.status, 201, "{}", profile.text);
    let profile = profile.json()["id"].as_str().unwrap().to_owned();
    let set = server
        .call(
            root,
            Method::PUT,
            &format!("/api/v1/orgs/{org}/devices/{device}/lorawan"),
            json!({"dev_eui": "0011223344556677", "profile_id": profile}),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    let mut body = crate::iot::broker_body("sentinel-ui-test/#", false);
    body["name"] = json!(format!("{name} broker"));
    let integration = server
        .call(
            root,
            Method::POST,
            &format!("/api/v1/orgs/{org}/integrations"),
            body,
        )
        .await;
    assert_eq!(integration.status, 201, "{}", integration.text);
    let integration = integration.json()["id"].as_str().unwrap().to_owned();
    (org, device, profile, integration)
}

/// Every state-changing IoT form of `org`, each with fields that would
/// succeed: (path, fields).
fn every_form(
    org: &str,
    device: &str,
    profile: &str,
    integration: &str,
) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    let profiles = format!("/orgs/{org}/device-profiles");
    let integrations = format!("/orgs/{org}/integrations");
    let sample = profile_form("Taken over", TEMPERATURE_DECODER, "09c464", "hex", "2");
    vec![
        (profiles.clone(), sample.clone()),
        (format!("{profiles}/test-decoder"), sample.clone()),
        (format!("{profiles}/{profile}"), sample.clone()),
        (format!("{profiles}/{profile}/test-decoder"), sample),
        (
            format!("{profiles}/{profile}/delete"),
            vec![("confirm", "yes")],
        ),
        (
            format!("/orgs/{org}/devices/{device}/lorawan"),
            vec![("dev_eui", "8899aabbccddeeff"), ("profile_id", "")],
        ),
        (
            format!("/orgs/{org}/devices/{device}/lorawan/remove"),
            vec![],
        ),
        (
            integrations.clone(),
            broker_form("Taken over", "127.0.0.1", &[]),
        ),
        (
            format!("{integrations}/{integration}"),
            broker_form("Taken over", "127.0.0.1", &[("password", "hijacked")]),
        ),
        (
            format!("{integrations}/{integration}/delete"),
            vec![("confirm", "yes")],
        ),
    ]
}

on_both_engines!(
    profiles_are_tested_created_edited_and_deleted_through_the_forms,
    |server: TestServer| async move {
        let root = server.setup_admin().await;
        let org = server.create_org(&root, "Sensors").await;
        let overview = server.get(&root, &format!("/orgs/{org}")).await;
        for link in ["device-profiles", "integrations"] {
            assert!(
                overview
                    .text
                    .contains(&format!("href=\"/orgs/{org}/{link}\"")),
                "no link to {link}"
            );
        }
        let profiles = format!("/orgs/{org}/device-profiles");
        let api_profiles = format!("/api/v1/orgs/{org}/device-profiles");
        let list = server.get(&root, &profiles).await;
        assert_eq!(list.status, 200, "{}", list.text);
        assert!(
            list.text.contains("No device profiles.") && list.text.contains("id=\"profile-form\"")
        );

        // "Test decoder" on the new-profile form: the result, the form as
        // typed, and nothing stored. Browsers send a textarea's lines as CRLF.
        let typed = TEMPERATURE_DECODER.replace('\n', "\r\n");
        let tested = post_form(
            &server,
            &root,
            &format!("{profiles}/test-decoder"),
            &profile_form("TH sensor", &typed, "09C464", "hex", "2"),
        )
        .await;
        assert_eq!(tested.status, 200, "{}", tested.text);
        assert!(
            tested.text.contains("<pre id=\"decoded-data\">"),
            "{}",
            tested.text
        );
        assert!(
            tested.text.contains("&#34;temperature&#34;: 25"),
            "{}",
            tested.text
        );
        assert!(tested.text.contains("&#34;humidity&#34;: 50"));
        assert!(
            tested.text.contains(&escaped(&typed)),
            "the unsaved code is kept"
        );
        assert!(
            tested.text.contains("value=\"TH sensor\"") && tested.text.contains("value=\"09C464\"")
        );
        assert_eq!(
            api(&server, &root, &api_profiles).await["profiles"],
            json!([])
        );
        // The same sample as base64; the fPort reaches the decoder.
        let tested = post_form(
            &server,
            &root,
            &format!("{profiles}/test-decoder"),
            &profile_form("TH sensor", &typed, "CcRk", "base64", "2"),
        )
        .await;
        assert!(
            tested.text.contains("&#34;temperature&#34;: 25"),
            "{}",
            tested.text
        );
        assert!(tested.text.contains("<option value=\"base64\" selected>"));
        let port_decoder = "function decodeUplink(input) { return { data: { port: input.fPort, n: input.bytes.length } }; }";
        let tested = post_form(
            &server,
            &root,
            &format!("{profiles}/test-decoder"),
            &profile_form("", port_decoder, "010203", "hex", "77"),
        )
        .await;
        assert_eq!(tested.status, 200, "{}", tested.text);
        assert!(
            tested.text.contains("&#34;port&#34;: 77") && tested.text.contains("&#34;n&#34;: 3")
        );
        // What the decoder reports, and how it fails, is shown.
        let reporting = "function decodeUplink(input) { return { data: {}, warnings: ['low battery'], errors: ['bad crc'] }; }";
        let tested = post_form(
            &server,
            &root,
            &format!("{profiles}/test-decoder"),
            &profile_form("", reporting, "00", "hex", "1"),
        )
        .await;
        assert!(
            tested
                .text
                .contains("<ul id=\"decoder-warnings\"><li>low battery</li></ul>"),
            "{}",
            tested.text
        );
        assert!(tested.text.contains("<li>bad crc</li>"));
        for (code, failure) in [
            (THROWING_DECODER, "decoder threw: Error: bad sensor"),
            (
                "function decodeUplink(input) { while (true) {} }",
                "decoder ran out of time",
            ),
            (
                "function decodeUplink(input) { var a = []; while (true) { a.push(new Array(1000000).fill(7)); } }",
                "decoder ran out of memory",
            ),
            (
                "function decodeUplink(input) {",
                "decoder script does not compile",
            ),
        ] {
            let tested = post_form(
                &server,
                &root,
                &format!("{profiles}/test-decoder"),
                &profile_form("", code, "00", "hex", "1"),
            )
            .await;
            assert_eq!(tested.status, 200, "{code}: {}", tested.text);
            let shown = tested
                .text
                .split("<p class=\"error\" id=\"decoder-failure\">")
                .nth(1);
            assert!(
                shown.is_some_and(|rest| rest.starts_with(&escaped(failure))),
                "{code}: {}",
                tested.text
            );
            assert!(
                tested.text.contains(&escaped(code)),
                "{code}: the code is kept"
            );
        }
        assert_eq!(
            api(&server, &root, &api_profiles).await["profiles"],
            json!([])
        );

        // Create: the decoder is stored as the API would store it (LF line
        // ends), and its SHA-256 is shown.
        let created = post_form(
            &server,
            &root,
            &profiles,
            &profile_form("TH sensor", &typed, "", "hex", "1"),
        )
        .await;
        let page_path = location(&created);
        assert!(
            page_path.starts_with(&format!("{profiles}/")),
            "{page_path}"
        );
        assert!(page_path.contains("notice=device-profile-created"));
        let id = id_in(&page_path);
        let api_profile = format!("{api_profiles}/{id}");
        assert_eq!(
            api(&server, &root, &api_profile).await["decoder"],
            TEMPERATURE_DECODER
        );
        let page = server.get(&root, &page_path).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert!(page.text.contains("Device profile created."));
        let hash = sha256_hex(TEMPERATURE_DECODER);
        assert!(
            page.text.contains(&format!(
                "<code class=\"hash\" id=\"code-hash\">{hash}</code>"
            )),
            "{}",
            page.text
        );
        assert!(
            page.text.contains(&escaped(TEMPERATURE_DECODER)),
            "the saved code is in the form"
        );
        let list = server.get(&root, &profiles).await;
        assert!(
            list.text
                .contains(&format!("href=\"{profiles}/{id}\">TH sensor</a>"))
                && list.text.contains(&hash)
        );

        // "Test decoder" on the saved profile's form: the unsaved code is
        // kept and run; the profile is unchanged.
        let saved = server.get(&root, &api_profile).await.text;
        let tested = post_form(
            &server,
            &root,
            &format!("{profiles}/{id}/test-decoder"),
            &profile_form("Renamed but unsaved", THROWING_DECODER, "01", "hex", "1"),
        )
        .await;
        assert_eq!(tested.status, 200, "{}", tested.text);
        assert!(
            tested.text.contains("bad sensor") && tested.text.contains(&escaped(THROWING_DECODER))
        );
        assert!(tested.text.contains("value=\"Renamed but unsaved\""));
        assert!(
            tested.text.contains(&hash),
            "the page still names the saved decoder"
        );
        assert_eq!(
            server.get(&root, &api_profile).await.text,
            saved,
            "testing changed the profile"
        );

        // A decoder that does not compile is not saved; the form keeps it.
        let broken = "function decodeUplink(input) { return {";
        let refused = post_form(
            &server,
            &root,
            &format!("{profiles}/{id}"),
            &profile_form("TH sensor v2", broken, "", "hex", "1"),
        )
        .await;
        assert_eq!(refused.status, 422, "{}", refused.text);
        assert!(
            refused.text.contains("id=\"form-error\"") && refused.text.contains(&escaped(broken))
        );
        assert_eq!(server.get(&root, &api_profile).await.text, saved);

        // Edit: name and decoder saved, audited with both hashes.
        let edited = "function decodeUplink(input) { return { data: { first: input.bytes[0] } }; }";
        let saved_edit = post_form(
            &server,
            &root,
            &format!("{profiles}/{id}"),
            &profile_form("TH sensor v2", edited, "", "hex", "1"),
        )
        .await;
        assert!(location(&saved_edit).contains("notice=device-profile-saved"));
        let now = api(&server, &root, &api_profile).await;
        assert_eq!(
            (now["name"].as_str(), now["decoder"].as_str()),
            (Some("TH sensor v2"), Some(edited))
        );
        let page = server.get(&root, &format!("{profiles}/{id}")).await;
        assert!(page.text.contains(&sha256_hex(edited)) && !page.text.contains(&hash));
        let audit = api(
            &server,
            &root,
            &format!("/api/v1/orgs/{org}/audit?action=device_profile.updated"),
        )
        .await;
        let entry = &audit["entries"][0];
        assert_eq!(
            entry["detail"]["old_decoder_hash"],
            hash.as_str(),
            "{audit}"
        );
        assert_eq!(
            entry["detail"]["decoder_hash"],
            sha256_hex(edited).as_str(),
            "{audit}"
        );
        // An empty decoder box means no decoder.
        let cleared = post_form(
            &server,
            &root,
            &format!("{profiles}/{id}"),
            &profile_form("TH sensor v2", "\r\n", "", "hex", "1"),
        )
        .await;
        location(&cleared);
        assert_eq!(
            api(&server, &root, &api_profile).await["decoder"],
            Value::Null
        );
        let restored = post_form(
            &server,
            &root,
            &format!("{profiles}/{id}"),
            &profile_form("TH sensor v2", edited, "", "hex", "1"),
        )
        .await;
        location(&restored);

        // Delete: only when confirmed, and only when no device uses it.
        let device = server.enroll(&root, &org, "gateway-1").await.device_id;
        let lorawan = format!("/api/v1/orgs/{org}/devices/{device}/lorawan");
        let set = server
            .call(
                &root,
                Method::PUT,
                &lorawan,
                json!({"dev_eui": "70b3d57ed0000001", "profile_id": id}),
            )
            .await;
        assert_eq!(set.status, 200, "{}", set.text);
        let saved = server.get(&root, &api_profile).await.text;
        let unconfirmed = post_form(&server, &root, &format!("{profiles}/{id}/delete"), &[]).await;
        assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.text);
        assert!(unconfirmed.text.contains("tick the box"));
        let in_use = post_form(
            &server,
            &root,
            &format!("{profiles}/{id}/delete"),
            &[("confirm", "yes")],
        )
        .await;
        assert_eq!(in_use.status, 409, "{}", in_use.text);
        assert!(in_use.text.contains("id=\"form-error\""), "{}", in_use.text);
        assert_eq!(server.get(&root, &api_profile).await.text, saved);
        let cleared = server
            .call(&root, Method::PUT, &lorawan, json!({"dev_eui": null}))
            .await;
        assert_eq!(cleared.status, 200, "{}", cleared.text);
        let deleted = post_form(
            &server,
            &root,
            &format!("{profiles}/{id}/delete"),
            &[("confirm", "yes")],
        )
        .await;
        assert_eq!(
            location(&deleted),
            format!("{profiles}?notice=device-profile-deleted")
        );
        assert_eq!(server.get(&root, &api_profile).await.status, 404);
        let list = server
            .get(&root, &format!("{profiles}?notice=device-profile-deleted"))
            .await;
        assert!(
            list.text.contains("Device profile deleted.")
                && list.text.contains("No device profiles.")
        );
        server
    }
);

#[tokio::test]
async fn malformed_samples_get_a_clear_error_and_store_nothing() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let (org, device, profile, _) = iot_org(&server, &root, "Sensors").await;
    let before = snapshot(&server, &root, &org, &device).await;
    let oversized = format!("{TEMPERATURE_DECODER}\n//{}", "x".repeat(64 * 1024));
    let cases = [
        (
            "0g",
            "hex",
            "1",
            TEMPERATURE_DECODER,
            400,
            "the sample payload is not hex",
        ),
        (
            "123",
            "hex",
            "1",
            TEMPERATURE_DECODER,
            400,
            "the sample payload is not hex",
        ),
        (
            "!!!!",
            "base64",
            "1",
            TEMPERATURE_DECODER,
            400,
            "the sample payload is not base64",
        ),
        (
            "00",
            "octal",
            "1",
            TEMPERATURE_DECODER,
            400,
            "choose hex or base64",
        ),
        (
            "00",
            "hex",
            "256",
            TEMPERATURE_DECODER,
            400,
            "fPort must be a whole number from 0 to 255",
        ),
        (
            "00",
            "hex",
            "two",
            TEMPERATURE_DECODER,
            400,
            "fPort must be a whole number from 0 to 255",
        ),
        (
            "00",
            "hex",
            "1",
            oversized.as_str(),
            422,
            "code: at most 65536 bytes",
        ),
    ];
    for path in [
        format!("/orgs/{org}/device-profiles/test-decoder"),
        format!("/orgs/{org}/device-profiles/{profile}/test-decoder"),
    ] {
        for (sample, encoding, f_port, code, status, message) in cases {
            let resp = post_form(
                &server,
                &root,
                &path,
                &profile_form("Kept", code, sample, encoding, f_port),
            )
            .await;
            assert_eq!(
                resp.status, status,
                "{path} {sample} {encoding} {f_port}: {}",
                resp.text
            );
            let error = resp
                .text
                .split("id=\"form-error\">")
                .nth(1)
                .unwrap_or_default();
            assert!(error.starts_with(message), "{path} {sample}: {}", resp.text);
            assert!(!resp.text.contains("id=\"decoder-result\""));
            assert!(
                resp.text.contains("value=\"Kept\""),
                "the form is shown again"
            );
            if code.len() < 1000 {
                assert!(resp.text.contains(&escaped(code)), "the code is kept");
            }
        }
    }
    assert_eq!(
        snapshot(&server, &root, &org, &device).await,
        before,
        "a test stored something"
    );
    server.stop().await;
}

#[tokio::test]
async fn hostile_strings_are_escaped_on_every_iot_page() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Sensors").await;
    let device = server.enroll(&root, &org, "gateway-1").await.device_id;
    let reader = server
        .member(&root, &org, "reader@example.org", "readonly")
        .await;
    let name = "<b>Evil</b> \"profile\"";
    let decoder = "// </textarea><script>alert(1)</script>\nfunction decodeUplink(input) { return { data: { note: '<img src=x onerror=alert(1)>' } }; }";
    let created = post_form(
        &server,
        &root,
        &format!("/orgs/{org}/device-profiles"),
        &profile_form(name, decoder, "", "hex", "1"),
    )
    .await;
    let page_path = location(&created);
    let id = id_in(&page_path);
    let tested = post_form(
        &server,
        &root,
        &format!("/orgs/{org}/device-profiles/{id}/test-decoder"),
        &profile_form(name, decoder, "00", "hex", "1"),
    )
    .await;
    assert_eq!(tested.status, 200, "{}", tested.text);
    assert!(
        tested
            .text
            .contains("&#34;note&#34;: &#34;&#60;img src=x onerror=alert(1)&#62;&#34;"),
        "{}",
        tested.text
    );
    let integration = post_form(
        &server,
        &root,
        &format!("/orgs/{org}/integrations"),
        &broker_form(
            "<script>alert(2)</script>",
            "127.0.0.1",
            &[("username", "<i>user</i>")],
        ),
    )
    .await;
    let integration = id_in(&location(&integration));
    let assigned = post_form(
        &server,
        &root,
        &format!("/orgs/{org}/devices/{device}/lorawan"),
        &[("dev_eui", "70b3d57ed0000001"), ("profile_id", id.as_str())],
    )
    .await;
    location(&assigned);

    let mut pages = vec![tested];
    for (session, path) in [
        (&root, format!("/orgs/{org}/device-profiles")),
        (&root, page_path.clone()),
        (&reader, page_path.clone()),
        (&root, format!("/orgs/{org}/integrations")),
        (&root, format!("/orgs/{org}/integrations/{integration}")),
        (&reader, format!("/orgs/{org}/integrations/{integration}")),
        (&root, format!("/orgs/{org}/devices/{device}")),
    ] {
        let page = server.get(session, &path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text);
        pages.push(page);
    }
    for page in &pages {
        for raw in [
            "<script>alert",
            "</textarea><script>",
            "<img src=x",
            "<b>Evil</b>",
            "<i>user</i>",
        ] {
            assert!(!page.text.contains(raw), "{raw} unescaped: {}", page.text);
        }
    }
    let escaped_name = escaped(name);
    assert!(
        pages[1].text.contains(&escaped_name),
        "the list names the profile"
    );
    assert!(
        pages[2].text.contains(&escaped(decoder)),
        "the form holds the code"
    );
    assert!(
        pages[3].text.contains(&format!(
            "<pre id=\"decoder-code\">{}</pre>",
            escaped(decoder)
        )),
        "{}",
        pages[3].text
    );
    assert!(
        pages[4]
            .text
            .contains("&#60;script&#62;alert(2)&#60;/script&#62;")
    );
    assert!(pages[6].text.contains("&#60;i&#62;user&#60;/i&#62;"));
    assert!(
        pages[7].text.contains(&format!(">{escaped_name}</option>")),
        "{}",
        pages[7].text
    );
    assert!(
        pages[7]
            .text
            .contains(&format!("id=\"device-profile\">{escaped_name}</a>"))
    );
    server.stop().await;
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let (org, device, profile, integration) = iot_org(&server, &root, "Sensors").await;
    let other = server
        .login("root@example.org", crate::support::PASSWORD)
        .await
        .unwrap();
    assert_ne!(other.csrf, root.csrf);
    let before = snapshot(&server, &root, &org, &device).await;
    let forged = "A".repeat(43);
    for (path, fields) in every_form(&org, &device, &profile, &integration) {
        // No token at all, a made-up one, and another session's.
        for token in [None, Some(forged.as_str()), Some(other.csrf.as_str())] {
            let mut all = fields.clone();
            if let Some(token) = token {
                all.push(("csrf_token", token));
            }
            let resp = TestServer::send(
                server
                    .raw(Method::POST, &path)
                    .header("cookie", &root.cookie)
                    .header("origin", &server.origin)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(serde_urlencoded::to_string(&all).unwrap()),
            )
            .await;
            assert_eq!(resp.status, 403, "{path} with {token:?}: {}", resp.text);
            assert!(resp.text.contains("CSRF"), "{path}: {}", resp.text);
        }
    }
    assert_eq!(
        snapshot(&server, &root, &org, &device).await,
        before,
        "a refused form changed something"
    );
    // The same forms with the token do what they say (so the refusals above
    // were the token's doing): here, the first one creates a profile.
    let (path, fields) = &every_form(&org, &device, &profile, &integration)[0];
    location(&post_form(&server, &root, path, fields).await);
    assert_ne!(snapshot(&server, &root, &org, &device).await, before);
    server.stop().await;
}

#[tokio::test]
async fn readonly_and_analyst_members_see_the_pages_but_change_nothing() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let (org, device, profile, integration) = iot_org(&server, &root, "Sensors").await;
    let before = snapshot(&server, &root, &org, &device).await;
    for role in ["readonly", "analyst"] {
        let member = server
            .member(&root, &org, &format!("{role}@example.org"), role)
            .await;
        for path in [
            format!("/orgs/{org}/device-profiles"),
            format!("/orgs/{org}/device-profiles/{profile}"),
            format!("/orgs/{org}/integrations"),
            format!("/orgs/{org}/integrations/{integration}"),
            format!("/orgs/{org}/devices/{device}"),
        ] {
            let page = server.get(&member, &path).await;
            assert_eq!(page.status, 200, "{role} {path}: {}", page.text);
            assert!(
                page.text.contains("Sensors sensor") || page.text.contains("Sensors broker"),
                "{role} {path}"
            );
            assert!(
                !page.text.contains("method=\"post\" action=\"/orgs"),
                "{role} {path} offers a form"
            );
        }
        let device_page = server
            .get(&member, &format!("/orgs/{org}/devices/{device}"))
            .await;
        assert!(
            device_page
                .text
                .contains("<code id=\"dev-eui\">0011223344556677</code>")
        );
        for (path, fields) in every_form(&org, &device, &profile, &integration) {
            let resp = post_form(&server, &member, &path, &fields).await;
            assert_eq!(resp.status, 403, "{role} {path}: {}", resp.text);
        }
    }
    assert_eq!(
        snapshot(&server, &root, &org, &device).await,
        before,
        "a member without devices.write changed something"
    );
    server.stop().await;
}

#[tokio::test]
async fn another_organizations_ids_are_not_found_and_nothing_changes() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let (org, device, profile, integration) = iot_org(&server, &root, "Mine").await;
    let (theirs, their_device, their_profile, _) = iot_org(&server, &root, "Theirs").await;
    let before = (
        snapshot(&server, &root, &org, &device).await,
        snapshot(&server, &root, &theirs, &their_device).await,
    );
    // My ids under their organization's paths: unknown there.
    for path in [
        format!("/orgs/{theirs}/device-profiles/{profile}"),
        format!("/orgs/{theirs}/integrations/{integration}"),
        format!("/orgs/{theirs}/devices/{device}"),
    ] {
        let page = server.get(&root, &path).await;
        assert_eq!(page.status, 404, "{path}: {}", page.text);
        assert!(!page.text.contains("Mine sensor") && !page.text.contains("Mine broker"));
    }
    for (path, fields) in every_form(&theirs, &device, &profile, &integration) {
        if ![&device, &profile, &integration]
            .iter()
            .any(|id| path.contains(id.as_str()))
        {
            continue;
        }
        let resp = post_form(&server, &root, &path, &fields).await;
        assert_eq!(resp.status, 404, "{path}: {}", resp.text);
        assert!(
            !resp.text.contains("Mine sensor") && !resp.text.contains("Mine broker"),
            "{path}"
        );
    }
    // Their profile cannot be given to my device.
    let resp = post_form(
        &server,
        &root,
        &format!("/orgs/{org}/devices/{device}/lorawan"),
        &[
            ("dev_eui", "8899aabbccddeeff"),
            ("profile_id", their_profile.as_str()),
        ],
    )
    .await;
    assert_eq!(resp.status, 404, "{}", resp.text);
    assert!(resp.text.contains("id=\"form-error\"") && !resp.text.contains("Theirs sensor"));
    let after = (
        snapshot(&server, &root, &org, &device).await,
        snapshot(&server, &root, &theirs, &their_device).await,
    );
    assert_eq!(
        after, before,
        "a request across organizations changed something"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_broker_password_never_appears_in_any_page() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Sensors").await;
    let integrations = format!("/orgs/{org}/integrations");
    let passwords = [
        "first-pa55word-never-shown",
        "second-pa55word-never-shown",
        "third-pa55word-never-shown",
        "fourth-pa55word-never-shown",
    ];
    let mut pages: Vec<Resp> = Vec::new();

    // Create: the page after it, the list and the connection's page.
    let created = post_form(
        &server,
        &root,
        &integrations,
        &broker_form(
            "ChirpStack",
            "127.0.0.1",
            &[("username", "sentinel"), ("password", passwords[0])],
        ),
    )
    .await;
    let after_create = location(&created);
    assert!(
        after_create.contains("notice=integration-created"),
        "{after_create}"
    );
    let id = id_in(&after_create);
    let page_path = format!("{integrations}/{id}");
    let api_path = format!("/api/v1/orgs/{org}/integrations/{id}");
    let stored = |resp: Value| {
        (
            resp["has_password"].clone(),
            resp["host"].clone(),
            resp["name"].clone(),
        )
    };
    assert_eq!(
        stored(api(&server, &root, &api_path).await),
        (json!(true), json!("127.0.0.1"), json!("ChirpStack"))
    );
    for path in [
        after_create.clone(),
        integrations.clone(),
        page_path.clone(),
    ] {
        let page = server.get(&root, &path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text);
        pages.push(page);
    }
    assert!(
        pages[0].text.contains("Broker connection added.")
            && pages[0].text.contains("stored (never shown)")
    );
    assert!(
        pages[2]
            .text
            .contains("name=\"password\" id=\"integration-password\" value=\"\"")
    );

    // A refused create and a refused edit show the form again, without the password.
    let refused = post_form(
        &server,
        &root,
        &integrations,
        &broker_form("Second", "evil host", &[("password", passwords[1])]),
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(
        refused.text.contains("value=\"evil host\""),
        "the form is kept"
    );
    pages.push(refused);
    let refused = post_form(
        &server,
        &root,
        &page_path,
        &broker_form(
            "Renamed",
            "127.0.0.1",
            &[("port", "99999"), ("password", passwords[1])],
        ),
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(
        refused.text.contains("value=\"Renamed\"") && refused.text.contains("port: 1 to 65535")
    );
    pages.push(refused);
    let both = post_form(
        &server,
        &root,
        &page_path,
        &broker_form(
            "Renamed",
            "127.0.0.1",
            &[("password", passwords[1]), ("clear_password", "yes")],
        ),
    )
    .await;
    assert_eq!(both.status, 400, "{}", both.text);
    pages.push(both);
    assert_eq!(
        stored(api(&server, &root, &api_path).await),
        (json!(true), json!("127.0.0.1"), json!("ChirpStack"))
    );
    assert_eq!(
        api(&server, &root, &format!("/api/v1/orgs/{org}/integrations")).await["integrations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // An empty password field keeps the stored one; the box removes it; a new one replaces it.
    let kept = post_form(
        &server,
        &root,
        &page_path,
        &broker_form("Renamed", "127.0.0.1", &[]),
    )
    .await;
    assert!(location(&kept).contains("notice=integration-saved"));
    assert_eq!(
        stored(api(&server, &root, &api_path).await),
        (json!(true), json!("127.0.0.1"), json!("Renamed"))
    );
    let removed = post_form(
        &server,
        &root,
        &page_path,
        &broker_form("Renamed", "127.0.0.1", &[("clear_password", "yes")]),
    )
    .await;
    location(&removed);
    assert_eq!(api(&server, &root, &api_path).await["has_password"], false);
    let page = server.get(&root, &page_path).await;
    assert!(
        !page.text.contains("id=\"integration-clear-password\""),
        "nothing to remove"
    );
    pages.push(page);
    let replaced = post_form(
        &server,
        &root,
        &page_path,
        &broker_form("Renamed", "127.0.0.1", &[("password", passwords[2])]),
    )
    .await;
    let saved_page = location(&replaced);
    assert_eq!(api(&server, &root, &api_path).await["has_password"], true);
    for path in [
        saved_page,
        page_path.clone(),
        integrations.clone(),
        format!("/orgs/{org}/audit"),
    ] {
        let page = server.get(&root, &path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text);
        pages.push(page);
    }
    let deleted = post_form(
        &server,
        &root,
        &format!("{page_path}/delete"),
        &[("confirm", "yes")],
    )
    .await;
    location(&deleted);
    for page in &pages {
        for password in passwords {
            assert!(
                !page.text.contains(password),
                "the password leaked: {}",
                page.text
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn broker_connections_are_created_edited_and_deleted_and_show_their_status() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Sensors").await;
    let integrations = format!("/orgs/{org}/integrations");
    let list = server.get(&root, &integrations).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert!(list.text.contains("No broker connections."));
    assert!(
        list.text
            .contains("value=\"application/+/device/+/event/up\""),
        "the default topic"
    );

    // Enabled, at a port where nothing listens: the worker runs, fails, and
    // the status shows why.
    let created = post_form(
        &server,
        &root,
        &integrations,
        &broker_form("Nowhere", "127.0.0.1", &[("port", "1"), ("enabled", "on")]),
    )
    .await;
    let id = id_in(&location(&created));
    let status_path = format!("/api/v1/orgs/{org}/integrations/{id}/status");
    let status = eventually("the worker to fail", || async {
        let status = api(&server, &root, &status_path).await;
        status["last_error"].is_string().then_some(status)
    })
    .await;
    assert_eq!(status["connected"], false, "{status}");
    let list = server.get(&root, &integrations).await;
    let row = list
        .text
        .split(&format!("<tr data-integration=\"{id}\">"))
        .nth(1)
        .unwrap();
    let row = row.split("</tr>").next().unwrap();
    assert!(
        row.contains("<code>127.0.0.1:1</code>") && row.contains("status-connecting"),
        "{row}"
    );
    assert!(row.contains("last error: "), "{row}");
    assert!(row.contains("0 received, 0 stored, 0 duplicates"), "{row}");
    let page = server.get(&root, &format!("{integrations}/{id}")).await;
    assert!(page.text.contains("0 received, 0 stored"), "{}", page.text);
    assert!(
        !page
            .text
            .contains("id=\"integration-last-error\"><span class=\"muted\">none"),
        "{}",
        page.text
    );

    // Edit: disabled, the worker stops.
    let edited = post_form(
        &server,
        &root,
        &format!("{integrations}/{id}"),
        &broker_form(
            "Nowhere (off)",
            "127.0.0.1",
            &[("port", "2"), ("tls", "on")],
        ),
    )
    .await;
    location(&edited);
    let now = api(
        &server,
        &root,
        &format!("/api/v1/orgs/{org}/integrations/{id}"),
    )
    .await;
    assert_eq!(
        (
            now["enabled"].as_bool(),
            now["port"].as_i64(),
            now["tls"].as_bool()
        ),
        (Some(false), Some(2), Some(true))
    );
    assert_eq!(now["status"]["running"], false, "{now}");
    let page = server
        .get(
            &root,
            &format!("{integrations}/{id}?notice=integration-saved"),
        )
        .await;
    assert!(page.text.contains("status-disabled") && page.text.contains("Broker connection saved"));

    // Delete: only when confirmed.
    let unconfirmed = post_form(&server, &root, &format!("{integrations}/{id}/delete"), &[]).await;
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.text);
    assert_eq!(
        api(&server, &root, &format!("/api/v1/orgs/{org}/integrations")).await["integrations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let deleted = post_form(
        &server,
        &root,
        &format!("{integrations}/{id}/delete"),
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(
        location(&deleted),
        format!("{integrations}?notice=integration-deleted")
    );
    assert_eq!(
        api(&server, &root, &format!("/api/v1/orgs/{org}/integrations")).await["integrations"],
        json!([])
    );
    server.stop().await;
}

#[tokio::test]
async fn the_device_page_sets_a_dev_eui_and_shows_the_stored_uplinks() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Sensors").await;
    let device = server.enroll(&root, &org, "gateway-1").await.device_id;
    let neighbour = server.enroll(&root, &org, "gateway-2").await.device_id;
    let device_page = format!("/orgs/{org}/devices/{device}");
    let lorawan = format!("/api/v1/orgs/{org}/devices/{device}/lorawan");
    let decoder = "function decodeUplink(input) { var b = input.bytes; return { data: { temperature: ((b[0] << 8) | b[1]) / 100, label: '<b>hot</b>' } }; }";
    let created = post_form(
        &server,
        &root,
        &format!("/orgs/{org}/device-profiles"),
        &profile_form("TH sensor", decoder, "", "hex", "1"),
    )
    .await;
    let profile = id_in(&location(&created));
    let page = server.get(&root, &device_page).await;
    assert!(page.text.contains("id=\"lorawan-form\"") && page.text.contains("No uplinks stored."));
    assert!(
        page.text
            .contains(&format!("<option value=\"{profile}\">TH sensor</option>"))
    );

    // Refused: not 16 hex digits, or another device's DevEUI. The form keeps
    // what was typed; nothing changes.
    let taken = server
        .call(
            &root,
            Method::PUT,
            &format!("/api/v1/orgs/{org}/devices/{neighbour}/lorawan"),
            json!({"dev_eui": "70b3d57ed0000009"}),
        )
        .await;
    assert_eq!(taken.status, 200, "{}", taken.text);
    for (dev_eui, status) in [
        ("70b3d57ed00000", 422),
        ("70b3d57ed000000z", 422),
        ("70b3d57ed0000009", 409),
    ] {
        let resp = post_form(
            &server,
            &root,
            &format!("{device_page}/lorawan"),
            &[("dev_eui", dev_eui), ("profile_id", profile.as_str())],
        )
        .await;
        assert_eq!(resp.status, status, "{dev_eui}: {}", resp.text);
        assert!(
            resp.text.contains("id=\"form-error\"")
                && resp.text.contains(&format!("value=\"{dev_eui}\"")),
            "{}",
            resp.text
        );
        assert!(
            resp.text.contains("<h1 id=\"device-title\">gateway-1"),
            "the device page again"
        );
        assert_eq!(
            api(&server, &root, &lorawan).await,
            json!({"dev_eui": null, "profile_id": null})
        );
    }

    // Assigned (pasted with spaces around it, in capitals): the page shows it.
    let eui = "70b3d57ed0000001";
    let assigned = post_form(
        &server,
        &root,
        &format!("{device_page}/lorawan"),
        &[
            ("dev_eui", " 70B3D57ED0000001 "),
            ("profile_id", profile.as_str()),
        ],
    )
    .await;
    assert_eq!(
        location(&assigned),
        format!("{device_page}?notice=lorawan-set#lorawan")
    );
    assert_eq!(
        api(&server, &root, &lorawan).await,
        json!({"dev_eui": eui, "profile_id": profile})
    );
    let page = server
        .get(&root, &format!("{device_page}?notice=lorawan-set"))
        .await;
    assert!(
        page.text.contains("DevEUI and profile saved.")
            && page
                .text
                .contains(&format!("<code id=\"dev-eui\">{eui}</code>"))
    );
    assert!(page.text.contains(&format!(
        "<option value=\"{profile}\" selected>TH sensor</option>"
    )));

    // Uplinks through a broker connection made in the UI, shown on the page.
    if broker_available().await {
        let topics = Topics::new();
        let filter = topics.filter();
        let made = post_form(
            &server,
            &root,
            &format!("/orgs/{org}/integrations"),
            &[
                ("name", "Local broker"),
                ("host", "127.0.0.1"),
                ("port", "1883"),
                ("topic", filter.as_str()),
                ("format", "chirpstack_v4"),
                ("enabled", "on"),
            ],
        )
        .await;
        let integration = id_in(&location(&made));
        publish_until_stored(
            &server,
            &root,
            (&org, &device),
            &topics.uplink(eui),
            uplink(eui, "first", &[0x09, 0xc4, 0x64]),
            1,
        )
        .await;
        let page = server.get(&root, &device_page).await;
        let table = page
            .text
            .split("<table id=\"device-events\">")
            .nth(1)
            .unwrap()
            .split("</table>")
            .next()
            .unwrap();
        assert!(
            table.contains("<td>2</td>") && table.contains("<code>09c464</code>"),
            "{table}"
        );
        assert!(
            table.contains("&#34;temperature&#34;: 25")
                && table.contains("&#34;&#60;b&#62;hot&#60;/b&#62;&#34;"),
            "{table}"
        );
        assert!(!table.contains("<b>hot"));
        let list = server
            .get(&root, &format!("/orgs/{org}/integrations"))
            .await;
        let row = list
            .text
            .split(&format!("<tr data-integration=\"{integration}\">"))
            .nth(1)
            .unwrap();
        assert!(row.contains("status-connected"), "{row}");
        // A decoder that fails: the uplink is stored raw, with the error shown.
        let changed = post_form(
            &server,
            &root,
            &format!("/orgs/{org}/device-profiles/{profile}"),
            &profile_form("TH sensor", THROWING_DECODER, "", "hex", "1"),
        )
        .await;
        location(&changed);
        publish(&topics.uplink(eui), uplink(eui, "second", &[1, 2, 3])).await;
        next_event(&server, &root, &org, &device, 1).await;
        let page = server.get(&root, &device_page).await;
        assert!(
            page.text
                .contains("<span class=\"stderr decoder-error\">decoder threw: Error: bad sensor"),
            "{}",
            page.text
        );
        assert!(page.text.contains("<code>010203</code>"));
    }

    // Removed: the device has no DevEUI; its uplinks stay.
    let events_before = api(
        &server,
        &root,
        &format!("/api/v1/orgs/{org}/devices/{device}/events"),
    )
    .await;
    let removed = post_form(
        &server,
        &root,
        &format!("{device_page}/lorawan/remove"),
        &[],
    )
    .await;
    assert_eq!(
        location(&removed),
        format!("{device_page}?notice=lorawan-removed#lorawan")
    );
    assert_eq!(
        api(&server, &root, &lorawan).await,
        json!({"dev_eui": null, "profile_id": null})
    );
    let page = server.get(&root, &device_page).await;
    assert!(!page.text.contains("id=\"dev-eui\"") && !page.text.contains("id=\"lorawan-remove\""));
    assert_eq!(
        api(
            &server,
            &root,
            &format!("/api/v1/orgs/{org}/devices/{device}/events")
        )
        .await,
        events_before
    );
    server.stop().await;
}
