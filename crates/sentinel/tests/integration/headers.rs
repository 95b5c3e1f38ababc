//! Security headers on every kind of response, and the limits on requests.

use reqwest::Method;
use serde_json::json;

use crate::support::{Resp, TestServer};

fn assert_security_headers(what: &str, resp: &Resp) {
    let expect = [
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
        (
            "content-security-policy",
            "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'",
        ),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=()",
        ),
    ];
    for (name, value) in expect {
        assert_eq!(resp.header(name), Some(value), "{what}: {name}");
    }
    let csp = resp.header("content-security-policy").unwrap();
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}"
    );
    assert!(
        resp.header("x-request-id").is_some_and(|id| id.len() == 36),
        "{what}: request id"
    );
}

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    let anonymous = [
        ("health", "/healthz"),
        ("login page", "/login"),
        ("redirect", "/"),
        ("static file", "/static/sentinel.css"),
        ("API 404", "/api/v1/nothing"),
        ("UI 404", "/nothing"),
        ("API 401", "/api/v1/me"),
        ("UI redirect to login", "/orgs"),
    ];
    for (what, path) in anonymous {
        let resp = TestServer::send(server.raw(Method::GET, path)).await;
        assert_security_headers(what, &resp);
    }
    let bad_json = TestServer::send(
        server
            .raw(Method::POST, "/api/v1/auth/login")
            .header("content-type", "application/json")
            .body("{"),
    )
    .await;
    assert_security_headers("API 400", &bad_json);
    let me = server.get(&admin, "/api/v1/me").await;
    assert_security_headers("authenticated API", &me);
    let page = server.get(&admin, "/orgs").await;
    assert_security_headers("authenticated page", &page);
    server.stop().await;
}

#[tokio::test]
async fn authenticated_responses_are_never_cached_but_the_stylesheet_is() {
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    for path in ["/api/v1/me", "/orgs", "/profile", "/api/v1/orgs"] {
        assert_eq!(
            server.get(&admin, path).await.header("cache-control"),
            Some("no-store"),
            "{path}"
        );
    }
    let css = TestServer::send(server.raw(Method::GET, "/static/sentinel.css")).await;
    assert_eq!(css.header("cache-control"), Some("public, max-age=3600"));
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    server.stop().await;
}

#[tokio::test]
async fn pages_load_nothing_from_other_origins_and_run_no_inline_script() {
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    let org = server.create_org(&admin, "Acme").await;
    for path in [
        "/login",
        "/orgs",
        &format!("/orgs/{org}"),
        &format!("/orgs/{org}/members"),
        "/profile",
        "/admin/users",
    ] {
        let resp = if path == "/login" {
            TestServer::send(server.raw(Method::GET, path)).await
        } else {
            server.get(&admin, path).await
        };
        assert_eq!(resp.status, 200, "{path}");
        let html = resp.text.to_lowercase();
        assert!(!html.contains("<script"), "{path} has a script");
        assert!(!html.contains(" style="), "{path} has inline style");
        assert!(
            !html.contains(" on") || !html.contains("onclick="),
            "{path} has an event handler"
        );
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{path} links another origin"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    let huge = "x".repeat(200 * 1024);
    let api = server
        .call(&admin, Method::POST, "/api/v1/orgs", json!({"name": huge}))
        .await;
    assert_eq!(api.status, 413, "{}", api.text);
    assert_eq!(api.header("content-type"), Some("application/problem+json"));
    let form = TestServer::send(
        server
            .as_user(&admin, Method::POST, "/orgs")
            .form(&[("name", huge.as_str()), ("csrf_token", admin.csrf.as_str())]),
    )
    .await;
    assert_eq!(form.status, 413);
    let login = TestServer::send(
        server
            .raw(Method::POST, "/api/v1/auth/login")
            .json(&json!({"email": huge, "password": "x"})),
    )
    .await;
    assert_eq!(login.status, 413);
    assert_eq!(
        server.get(&admin, "/api/v1/orgs").await.json()["organizations"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    server.stop().await;
}

#[tokio::test]
async fn a_body_announced_too_large_is_refused_before_it_is_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    let org = server.create_org(&admin, "Acme").await;
    let agent = server.enroll(&admin, &org, "big-mouth").await;
    // A device announces 9 MiB of telemetry (past the route's 8 MiB) and sends
    // only its first bytes: the answer must come without waiting for the rest.
    let mut tls = server.tls_connect(server.addr).await;
    let head = format!(
        "POST /api/v1/agent/telemetry HTTP/1.1\r\nhost: localhost\r\n\
         authorization: Bearer {}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{{\"samples\": [",
        agent.token,
        9 << 20
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), tls.read(&mut answer))
        .await
        .expect("no answer while the body was still owed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // An announced length within the limit is read and judged as usual.
    let resp = TestServer::send(
        server
            .as_agent(&agent, Method::POST, "/api/v1/agent/telemetry")
            .json(&json!({"samples": "lots"})),
    )
    .await;
    assert_eq!(resp.status, 400, "{}", resp.text);
    server.stop().await;
}

#[tokio::test]
async fn readiness_reports_the_stores() {
    let server = TestServer::start().await;
    let ready = TestServer::send(server.raw(Method::GET, "/readyz")).await;
    assert_eq!(
        (ready.status, ready.json()["status"].as_str()),
        (200, Some("ok"))
    );
    std::fs::remove_dir_all(server.config.data_dir.join("orgs")).unwrap();
    let broken = TestServer::send(server.raw(Method::GET, "/readyz")).await;
    assert_eq!(
        (broken.status, broken.json()["status"].as_str()),
        (503, Some("unavailable"))
    );
    let alive = TestServer::send(server.raw(Method::GET, "/healthz")).await;
    assert_eq!(alive.status, 200, "liveness does not depend on the stores");
    server.stop().await;
}
