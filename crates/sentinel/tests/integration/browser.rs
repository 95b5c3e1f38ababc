//! End to end in a real browser: Debian's chromium driven over WebDriver by
//! chromedriver, through setup → login → create organization → try a device
//! profile's decoder and save it → create a user → add them as a member →
//! change their role → logout, using only the server's pages and forms (the
//! console shows no CSP violation); and the live feed's one script (our
//! origin's, under the strict CSP) updating the device page and the fleet
//! overview.
//!
//! Outside CI the test is skipped with a notice when chromium or chromedriver is
//! missing; under `CI=true` it must run.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rcgen::PublicKeyData;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{PASSWORD, TestServer};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A minimal W3C WebDriver client: just the commands this test needs.
struct Browser {
    http: reqwest::Client,
    base: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn launch(spki_pin: &str) -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap();
        let driver_url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{driver_url}/status")).send().await;
            if let Ok(resp) = ready {
                let status: Value = resp.json().await.unwrap();
                if status["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            // Trust exactly the test server's key, nothing else.
            format!("--ignore-certificate-errors-spki-list={spki_pin}"),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let created: Value = http
            .post(format!("{driver_url}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        let browser = Browser {
            http,
            base: format!("{driver_url}/session/{session}"),
            driver,
            _profile: profile,
        };
        // Element lookups wait for the next page to arrive.
        browser
            .command(
                reqwest::Method::POST,
                "/timeouts",
                Some(json!({"implicit": 10_000})),
            )
            .await;
        browser
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let value: Value = request.send().await.unwrap().json().await.unwrap();
        if value["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", value["value"]);
        }
        value["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn path(&self) -> String {
        let url = self.command(reqwest::Method::GET, "/url", None).await;
        let url = url.as_str().unwrap();
        let after_host = url.splitn(4, '/').nth(3).unwrap_or("");
        format!("/{after_host}")
    }

    /// Asserts that the browser is on a page whose path starts with `prefix`, and
    /// shows the page when it is not.
    async fn expect_at(&self, prefix: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let path = self.path().await;
            if path.starts_with(prefix) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "expected {prefix}, at {path}: {}",
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn source(&self) -> String {
        self.command(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn find(&self, css: &str) -> String {
        let element = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        element[ELEMENT_KEY].as_str().unwrap().to_owned()
    }

    async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.command(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            None,
        )
        .await
        .as_str()
        .unwrap()
        .to_owned()
    }

    /// Waits up to 10 s for the text of `css` to contain `needle`.
    async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.text(css).await;
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never said {needle:?}; it says {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn select(&self, css: &str, value: &str) {
        self.click(&format!("{css} option[value=\"{value}\"]"))
            .await;
    }

    /// The browser console's errors since the last call (a CSP violation is
    /// one), but for the favicon the server does not have.
    async fn console_errors(&self) -> Vec<Value> {
        let entries = self
            .command(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": "browser"})),
            )
            .await;
        entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .filter(|e| {
                !e["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("/favicon.ico")
            })
            .cloned()
            .collect()
    }

    async fn quit(mut self) {
        let _ = self.http.delete(&self.base).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn browser_available() -> bool {
    let present =
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !present {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true requires chromium and chromium-driver (.ci/run installs them)"
        );
        eprintln!("browser test skipped: install Debian's chromium and chromium-driver to run it");
    }
    present
}

/// The base64 SHA-256 of the server certificate's public key, for Chromium's
/// `--ignore-certificate-errors-spki-list`.
fn spki_pin(server: &TestServer) -> String {
    let key_pem = std::fs::read_to_string(server.config.data_dir.join("tls/server.key")).unwrap();
    let key = rcgen::KeyPair::from_pem(&key_pem).unwrap();
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(key.subject_public_key_info()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_login_create_organization_add_member_logout() {
    if !browser_available() {
        return;
    }
    let server = TestServer::start().await;
    let browser = Browser::launch(&spki_pin(&server)).await;
    let origin = server.origin.clone();

    // Setup: the one-time link, then the first admin is signed in.
    browser
        .goto(server.running().setup_url.as_deref().unwrap())
        .await;
    browser.fill("#name", "Grace Admin").await;
    browser.fill("#email", "grace@example.org").await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#password_confirm", PASSWORD).await;
    browser.click("#create-admin").await;
    browser.expect_at("/orgs").await;

    // Log out and in again through the login page.
    browser.click("#logout").await;
    browser.expect_at("/login?notice=logged-out").await;
    assert!(browser.source().await.contains("You have been signed out."));
    browser.goto(&format!("{origin}/orgs")).await;
    browser.expect_at("/login?next=").await;
    browser.fill("#email", "grace@example.org").await;
    browser.fill("#password", "wrong password entirely").await;
    browser.click("#sign-in").await;
    assert!(
        browser
            .text("#form-error")
            .await
            .contains("invalid e-mail address or password")
    );
    assert!(
        browser
            .source()
            .await
            .contains("value=\"grace@example.org\""),
        "the address is kept"
    );
    browser.fill("#email", "grace@example.org").await;
    browser.fill("#password", PASSWORD).await;
    browser.click("#sign-in").await;
    browser.expect_at("/orgs").await;

    // Create an organization.
    browser.fill("#org-name", "Riverside School").await;
    browser.click("#create-org").await;
    browser.expect_at("/orgs/").await;
    assert_eq!(browser.text("#org-title").await, "Riverside School");
    let org_path = browser.path().await;
    let org_path = org_path.split('?').next().unwrap().to_owned();

    // A device profile: its decoder tried on a sample, then saved; the
    // pages run under the strict CSP without a console error (the wrong
    // password above left one: read and dropped first).
    browser.console_errors().await;
    browser.click("#device-profiles-link").await;
    browser
        .expect_at(&format!("{org_path}/device-profiles"))
        .await;
    browser.fill("#profile-name", "TH sensor").await;
    browser
        .fill(
            "#profile-decoder",
            "function decodeUplink(input) { return { data: { first: input.bytes[0] } }; }",
        )
        .await;
    browser.fill("#sample-payload", "2a").await;
    browser.click("#test-decoder").await;
    assert!(
        browser
            .text("#decoded-data")
            .await
            .contains("\"first\": 42")
    );
    browser.click("#save-profile").await;
    assert_eq!(browser.text("#code-hash").await.len(), 64);
    assert_eq!(browser.console_errors().await, Vec::<Value>::new());

    // Create a user as platform admin, then add them as a member.
    browser.goto(&format!("{origin}/admin/users")).await;
    browser.fill("#new-user-name", "Ada Teacher").await;
    browser.fill("#new-user-email", "ada@example.org").await;
    browser.fill("#new-user-password", PASSWORD).await;
    browser.click("#create-user").await;
    browser.expect_at("/admin/users?notice=user-created").await;
    assert!(browser.source().await.contains("User created."));

    browser.goto(&format!("{origin}{org_path}")).await;
    browser.click("#members-link").await;
    browser.fill("#member-email", "ada@example.org").await;
    browser.select("#member-role", "analyst").await;
    browser.click("#add-member").await;
    browser
        .expect_at(&format!("{org_path}/members?notice=member-added"))
        .await;
    assert!(browser.source().await.contains("Member added."));
    assert_eq!(
        browser
            .text("tr[data-email=\"ada@example.org\"] td.role")
            .await,
        "analyst"
    );

    // Change the new member's role.
    browser
        .select("tr[data-email=\"ada@example.org\"] select", "admin")
        .await;
    browser
        .click("tr[data-email=\"ada@example.org\"] form[action$=\"/role\"] button")
        .await;
    browser
        .expect_at(&format!("{org_path}/members?notice=role-changed"))
        .await;
    assert_eq!(
        browser
            .text("tr[data-email=\"ada@example.org\"] td.role")
            .await,
        "admin"
    );

    // The organization switcher lists it.
    assert!(browser.source().await.contains("Riverside School"));

    // Log out: the session is gone.
    browser.click("#logout").await;
    browser.expect_at("/login?notice=logged-out").await;
    browser.goto(&format!("{origin}{org_path}/members")).await;
    browser.expect_at("/login?next=").await;

    // What the browser did is what the API sees.
    let admin = server.login("grace@example.org", PASSWORD).await.unwrap();
    let org_id = org_path.trim_start_matches("/orgs/");
    let members = server
        .get(&admin, &format!("/api/v1/orgs/{org_id}/members"))
        .await
        .json();
    let ada = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "ada@example.org")
        .unwrap()
        .clone();
    assert_eq!(ada["role"], "admin");

    browser.quit().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_page_and_the_fleet_update_live_under_the_strict_csp() {
    if !browser_available() {
        return;
    }
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Live School").await;
    let device = server.enroll(&root, &org, "lab-pc-01").await;
    let browser = Browser::launch(&spki_pin(&server)).await;
    let origin = server.origin.clone();
    browser.goto(&format!("{origin}/login")).await;
    browser.fill("#email", "root@example.org").await;
    browser.fill("#password", PASSWORD).await;
    browser.click("#sign-in").await;
    browser.expect_at("/orgs").await;

    // The device page: the script (from our origin only) connects, and a
    // report changes the page without a reload.
    browser
        .goto(&format!("{origin}/orgs/{org}/devices/{}", device.device_id))
        .await;
    browser.wait_for_text("#live-status", "Live").await;
    let body = json!({"samples": [{"at": 1_700_000_000, "sample": {
        "uptime_seconds": 5, "load": [0.1, 0.2, 0.3], "cpu_percent": 42.5,
        "memory": {"total_bytes": 200, "available_bytes": 150, "used_bytes": 50},
        "swap": {"total_bytes": 0, "available_bytes": 0, "used_bytes": 0},
        "disks": [], "interfaces": [], "logged_in_users": 1, "warnings": []
    }}]});
    let report = server
        .as_agent(&device, reqwest::Method::POST, "/api/v1/agent/telemetry")
        .json(&body);
    assert_eq!(TestServer::send(report).await.status, 200);
    browser.wait_for_text("#chart-cpu strong", "42.5 %").await;
    browser
        .wait_for_text("#chart-memory strong", "25.0 %")
        .await;
    browser.wait_for_text("#telemetry-count", "1").await;
    browser
        .wait_for_text("#live-activity", "telemetry: 1 sample(s)")
        .await;
    let command = server
        .queue_command(&root, &org, &device.device_id, json!({"type": "reboot"}))
        .await;
    browser
        .wait_for_text("#live-activity", &format!("command {command}: queued"))
        .await;

    // The fleet overview: a new enrollment is announced, escaped as text.
    browser.goto(&format!("{origin}/orgs/{org}/devices")).await;
    browser.wait_for_text("#live-status", "Live").await;
    server.enroll(&root, &org, "<b>new</b>-host").await;
    let notice = browser
        .wait_for_text("#live-enrolled", "1 new device(s)")
        .await;
    assert!(notice.contains("<b>new</b>-host"), "{notice}");

    browser.quit().await;
    server.stop().await;
}
