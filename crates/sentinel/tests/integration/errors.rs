//! Bad input gets a clear 4xx problem (or error page) and changes nothing; no
//! response ever carries SQL, stack traces or file paths.

use reqwest::Method;
use serde_json::json;

use crate::support::{Resp, TestServer};

fn assert_problem(what: &str, resp: &Resp, status: u16) {
    assert_eq!(resp.status, status, "{what}: {}", resp.text);
    assert_eq!(
        resp.header("content-type"),
        Some("application/problem+json"),
        "{what}"
    );
    let body = resp.json();
    assert_eq!(body["status"], status, "{what}");
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:sentinel:problem:"),
        "{what}"
    );
    assert!(!body["title"].as_str().unwrap().is_empty(), "{what}");
    assert!(!body["detail"].as_str().unwrap().is_empty(), "{what}");
    assert_no_internals(what, resp);
}

fn assert_no_internals(what: &str, resp: &Resp) {
    let text = resp.text.to_lowercase();
    for leak in [
        "select ", "insert ", "sqlx", "sqlite", "postgres", "panicked", "/work/", "/tmp/", ".rs:",
        "stack",
    ] {
        assert!(!text.contains(leak), "{what} leaks {leak:?}: {}", resp.text);
    }
}

#[tokio::test]
async fn malformed_requests_get_problem_documents() {
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    let org = server.create_org(&admin, "Acme").await;
    let raw_post = |path: &str, body: &'static str, content_type: &'static str| {
        server
            .as_user(&admin, Method::POST, path)
            .header("content-type", content_type)
            .body(body)
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, u16)> = vec![
        (
            "malformed JSON",
            raw_post("/api/v1/orgs", "{\"name\": ", "application/json"),
            400,
        ),
        (
            "not an object",
            raw_post("/api/v1/orgs", "[1,2,3]", "application/json"),
            400,
        ),
        (
            "wrong type",
            raw_post("/api/v1/orgs", "{\"name\": 42}", "application/json"),
            400,
        ),
        (
            "unknown field",
            raw_post(
                "/api/v1/orgs",
                "{\"name\": \"A\", \"owner\": \"me\"}",
                "application/json",
            ),
            400,
        ),
        (
            "missing field",
            raw_post("/api/v1/orgs", "{}", "application/json"),
            400,
        ),
        (
            "empty body",
            raw_post("/api/v1/orgs", "", "application/json"),
            400,
        ),
        (
            "not JSON",
            raw_post(
                "/api/v1/orgs",
                "name=A",
                "application/x-www-form-urlencoded",
            ),
            415,
        ),
        (
            "invalid UTF-8 escape",
            raw_post(
                "/api/v1/orgs",
                "{\"name\": \"\\ud800\"}",
                "application/json",
            ),
            400,
        ),
        (
            "bad org id",
            server.as_user(&admin, Method::GET, "/api/v1/orgs/not-a-uuid/members"),
            400,
        ),
        (
            "SQL in the id",
            server.as_user(&admin, Method::GET, "/api/v1/orgs/1'%20OR%201=1--/members"),
            400,
        ),
        (
            "bad user id",
            server.as_user(
                &admin,
                Method::DELETE,
                &format!("/api/v1/orgs/{org}/members/..%2F..%2Fetc"),
            ),
            400,
        ),
        (
            "unknown route",
            server.as_user(&admin, Method::GET, "/api/v1/nothing"),
            404,
        ),
        (
            "wrong method",
            server.as_user(&admin, Method::PUT, "/api/v1/orgs"),
            405,
        ),
        (
            "blank name",
            server
                .as_user(&admin, Method::POST, "/api/v1/orgs")
                .json(&json!({"name": "   "})),
            422,
        ),
    ];
    for (what, request, status) in cases {
        assert_problem(what, &TestServer::send(request).await, status);
    }
    let orgs = server.get(&admin, "/api/v1/orgs").await.json();
    assert_eq!(
        orgs["organizations"].as_array().unwrap().len(),
        1,
        "nothing was created"
    );
    server.stop().await;
}

#[tokio::test]
async fn ui_errors_are_plain_pages() {
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    let missing = server.get(&admin, "/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert!(
        missing
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(missing.text.contains("404 Not Found"));
    let bad_id = server.get(&admin, "/orgs/not-a-uuid").await;
    assert_eq!(bad_id.status, 400);
    assert!(bad_id.text.contains("invalid"));
    assert_no_internals("UI 400", &bad_id);
    let bad_form = TestServer::send(
        server
            .as_user(&admin, Method::POST, "/orgs")
            .form(&[("csrf_token", admin.csrf.as_str()), ("nome", "typo")]),
    )
    .await;
    assert_eq!(bad_form.status, 400);
    assert_no_internals("UI bad form", &bad_form);
    server.stop().await;
}

#[tokio::test]
async fn failed_logins_in_the_ui_say_nothing_specific() {
    let server = TestServer::start().await;
    server.setup_admin().await;
    let attempt = |email: &'static str| {
        TestServer::send(
            server
                .raw(Method::POST, "/login")
                .header("origin", &server.origin)
                .form(&[("email", email), ("password", "wrong wrong wrong")]),
        )
    };
    let known = attempt("root@example.org").await;
    let unknown = attempt("nobody@example.org").await;
    assert_eq!(known.status, 401);
    assert_eq!(unknown.status, 401);
    assert!(known.text.contains("invalid e-mail address or password"));
    assert_eq!(
        known.text.replace("root@example.org", ""),
        unknown.text.replace("nobody@example.org", "")
    );
    server.stop().await;
}
