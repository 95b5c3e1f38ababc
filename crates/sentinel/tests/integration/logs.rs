//! The log stream of the real binary through setup, logins, organization and
//! member management: JSON lines with request ids, and not one secret.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{PASSWORD, cookie_pair, cookie_value, https_client};

const MEMBER_PASSWORD: &str = "harbor tulip quantum ember";
const WRONG_PASSWORD: &str = "not-the-password-but-still-secret";

struct Process {
    child: std::process::Child,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Process {
    fn start(data: &std::path::Path) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sentinel"))
            .args([
                "serve",
                "--data-dir",
                data.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--mqtt-listen",
                "off",
                "--log-format",
                "json",
            ])
            .env_remove("SENTINEL_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                lines.lock().unwrap().push(line.unwrap_or_default());
            }
        });
        let stdout = Arc::new(Mutex::new(String::new()));
        let out = stdout.clone();
        let mut pipe = child.stdout.take().unwrap();
        let stdout_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            out.lock().unwrap().push_str(&text);
        });
        Process {
            child,
            stderr,
            stdout,
            readers: vec![stderr_reader, stdout_reader],
        }
    }

    /// The address from the "serving" log line.
    async fn address(&self) -> std::net::SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let found = self.stderr.lock().unwrap().iter().find_map(|line| {
                let v: Value = serde_json::from_str(line).ok()?;
                (v["message"] == "serving").then(|| v["address"].as_str().unwrap().parse().unwrap())
            });
            if let Some(addr) = found {
                return addr;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the server did not start: {:?}",
            self.stderr.lock().unwrap()
        );
    }

    /// Stops the server with SIGTERM and returns everything it wrote.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(
            exit.success(),
            "the server did not shut down cleanly on SIGTERM: {exit}"
        );
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        let stderr = self.stderr.lock().unwrap().join("\n");
        let stdout = self.stdout.lock().unwrap().clone();
        format!("{stdout}\n{stderr}")
    }
}

#[tokio::test]
async fn no_secret_reaches_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let process = Process::start(&data);
    let addr = process.address().await;
    let ca = std::fs::read_to_string(data.join("tls/ca.pem")).unwrap();
    let client = https_client(&ca, addr);
    let origin = format!("https://localhost:{}", addr.port());
    let url = |path: &str| format!("{origin}{path}");
    let setup_link = std::fs::read_to_string(data.join("setup-url.txt")).unwrap();
    let setup_token = setup_link.trim().split("token=").nth(1).unwrap().to_owned();
    let mut secrets = vec![
        PASSWORD.to_owned(),
        MEMBER_PASSWORD.to_owned(),
        WRONG_PASSWORD.to_owned(),
        setup_token.clone(),
    ];

    // Setup through the page (the link itself is requested), then through the form.
    let page = client.get(setup_link.trim()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let form = [
        ("token", setup_token.as_str()),
        ("name", "Root Admin"),
        ("email", "root@example.org"),
        ("password", PASSWORD),
        ("password_confirm", PASSWORD),
    ];
    let done = client
        .post(url("/setup"))
        .header("origin", &origin)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    secrets.push(cookie_value(done.headers()));

    let failed = client
        .post(url("/api/v1/auth/login"))
        .json(&json!({"email": "root@example.org", "password": WRONG_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);
    let login = client
        .post(url("/api/v1/auth/login"))
        .json(&json!({"email": "root@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = cookie_pair(login.headers());
    secrets.push(cookie_value(login.headers()));
    let body: Value = login.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    secrets.push(csrf.clone());

    let call = |method: Method, path: &str, body: Value| {
        client
            .request(method, url(path))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("origin", &origin)
            .json(&body)
            .send()
    };
    // A bearer token that does not authenticate is refused, and not logged.
    let refused = client
        .get(url("/api/v1/me"))
        .header("authorization", "Bearer should-never-be-logged-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    secrets.push(String::from("should-never-be-logged-token"));
    let org: Value = call(Method::POST, "/api/v1/orgs", json!({"name": "Logged Org"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org_id = org["id"].as_str().unwrap();
    let user = call(
        Method::POST,
        "/api/v1/users",
        json!({"email": "member@example.org", "name": "Member", "password": MEMBER_PASSWORD}),
    )
    .await
    .unwrap();
    assert_eq!(user.status(), 201);
    let added = call(
        Method::POST,
        &format!("/api/v1/orgs/{org_id}/members"),
        json!({"email": "member@example.org", "role": "analyst"}),
    )
    .await
    .unwrap();
    assert_eq!(added.status(), 201);
    let changed = call(
        Method::PUT,
        "/api/v1/me/password",
        json!({"current_password": PASSWORD, "new_password": "granite meadow cobalt whistle"}),
    )
    .await
    .unwrap();
    assert_eq!(changed.status(), 200);
    secrets.push(String::from("granite meadow cobalt whistle"));
    // The change replaced the session: its new cookie and CSRF token are secrets too.
    let renewed_cookie = cookie_pair(changed.headers());
    secrets.push(cookie_value(changed.headers()));
    let renewed: Value = changed.json().await.unwrap();
    let renewed_csrf = renewed["csrf_token"].as_str().unwrap().to_owned();
    secrets.push(renewed_csrf.clone());
    let member = client
        .post(url("/login"))
        .header("origin", &origin)
        .form(&[
            ("email", "member@example.org"),
            ("password", MEMBER_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(member.status(), 303);
    secrets.push(cookie_value(member.headers()));
    let stale = call(Method::POST, "/api/v1/auth/logout", json!({}))
        .await
        .unwrap();
    assert_eq!(
        stale.status(),
        401,
        "the session before the password change is gone"
    );
    let logout = client
        .post(url("/api/v1/auth/logout"))
        .header("cookie", &renewed_cookie)
        .header("x-csrf-token", &renewed_csrf)
        .header("origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);

    let output = process.stop();
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.len() >= 10,
        "too few log lines to prove anything: {output}"
    );
    let mut request_ids = 0;
    for line in &lines {
        let entry: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON line: {line}"));
        if entry["message"] == "request" {
            assert!(
                entry["span"]["request_id"]
                    .as_str()
                    .is_some_and(|id| id.len() == 36),
                "{line}"
            );
            request_ids += 1;
        }
    }
    assert!(
        request_ids >= 8,
        "requests are logged with their ids: {output}"
    );
    assert!(
        output.contains("\"/api/v1/auth/login\""),
        "the login requests are logged: {output}"
    );
    assert!(
        output.contains("login failed"),
        "the failed login is logged: {output}"
    );
    for secret in &secrets {
        assert!(
            !output.contains(secret.as_str()),
            "the log stream contains a secret ({} characters): {output}",
            secret.len()
        );
    }
    for forbidden in ["cookie", "x-csrf-token", "authorization", "token="] {
        assert!(
            !output.to_lowercase().contains(forbidden),
            "the log stream mentions {forbidden}: {output}"
        );
    }
}
