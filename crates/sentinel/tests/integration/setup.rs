//! First start: the one-time setup link and the first platform admin.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::support::{PASSWORD, TestServer, on_both_engines};

fn setup_body(token: &str, password: &str) -> serde_json::Value {
    json!({"token": token, "name": "Root Admin", "email": "root@example.org", "password": password})
}

#[tokio::test]
async fn first_start_writes_a_private_setup_link_file() {
    let server = TestServer::start().await;
    let url = server.running().setup_url.clone().unwrap();
    assert!(
        url.starts_with(&format!(
            "https://localhost:{}/setup?token=",
            server.addr.port()
        )),
        "{url}"
    );
    let file = server.config.data_dir.join("setup-url.txt");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), url);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    for (name, mode) in [("master.key", 0o600), ("", 0o700)] {
        let meta = std::fs::metadata(server.config.data_dir.join(name)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{name}");
    }
    assert_eq!(
        std::fs::read_to_string(server.config.data_dir.join("master.key"))
            .unwrap()
            .trim()
            .len(),
        44,
        "256-bit key, base64"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_setup_page_needs_the_token() {
    let server = TestServer::start().await;
    let good = TestServer::send(server.raw(
        Method::GET,
        &format!("/setup?token={}", server.setup_token()),
    ))
    .await;
    assert_eq!(good.status, 200);
    assert!(good.text.contains("Create the first platform admin"));
    for bad in [
        "/setup",
        "/setup?token=wrong",
        "/setup?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let resp = TestServer::send(server.raw(Method::GET, bad)).await;
        assert_eq!(resp.status, 404, "{bad}");
        assert!(!resp.text.contains("<form"), "{bad}");
    }
    server.stop().await;
}

on_both_engines!(
    setup_creates_one_platform_admin_once,
    |server: TestServer| async move {
        let token = server.setup_token();
        let post = |body: serde_json::Value| {
            TestServer::send(server.raw(Method::POST, "/api/v1/setup").json(&body))
        };

        let forged = post(setup_body(
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            PASSWORD,
        ))
        .await;
        assert_eq!(forged.status, 403, "{}", forged.text);
        let weak = post(setup_body(&token, "password1234")).await;
        assert_eq!(weak.status, 422);
        assert_eq!(weak.json()["field"], "password");
        assert!(
            server
                .try_login("root@example.org", "password1234")
                .await
                .status
                == 401,
            "nothing was created"
        );

        let done = post(setup_body(&token, PASSWORD)).await;
        assert_eq!(done.status, 201, "{}", done.text);
        assert_eq!(done.json()["platform_admin"], true);
        assert!(done.json().get("password_hash").is_none());

        let replay = post(json!({"token": token, "name": "Mallory", "email": "mallory@example.org", "password": PASSWORD})).await;
        assert_eq!(replay.status, 403);
        assert_eq!(
            server
                .try_login("mallory@example.org", PASSWORD)
                .await
                .status,
            401
        );
        let page =
            TestServer::send(server.raw(Method::GET, &format!("/setup?token={token}"))).await;
        assert_eq!(page.status, 404, "a used link is dead");
        server.login("root@example.org", PASSWORD).await.unwrap();
        server
    }
);

#[tokio::test]
async fn the_setup_token_expires_after_an_hour() {
    let server = TestServer::start().await;
    let token = server.setup_token();
    server.clock.advance(Duration::from_secs(3601));
    let resp = TestServer::send(
        server
            .raw(Method::POST, "/api/v1/setup")
            .json(&setup_body(&token, PASSWORD)),
    )
    .await;
    assert_eq!(resp.status, 403);
    assert_eq!(
        server.try_login("root@example.org", PASSWORD).await.status,
        401
    );
    server.stop().await;
}

#[tokio::test]
async fn a_restart_after_setup_issues_no_link_and_removes_the_file() {
    let mut server = TestServer::start().await;
    server.setup_admin().await;
    server.restart().await;
    assert!(server.running().setup_url.is_none());
    assert!(!server.config.data_dir.join("setup-url.txt").exists());
    server.stop().await;
}

#[tokio::test]
async fn a_restart_before_setup_replaces_the_link() {
    let mut server = TestServer::start().await;
    let first = server.setup_token();
    server.restart().await;
    let second = server.setup_token();
    assert_ne!(first, second);
    let old = TestServer::send(
        server
            .raw(Method::POST, "/api/v1/setup")
            .json(&setup_body(&first, PASSWORD)),
    )
    .await;
    assert_eq!(old.status, 403, "the earlier link died with the restart");
    let new = TestServer::send(
        server
            .raw(Method::POST, "/api/v1/setup")
            .json(&setup_body(&second, PASSWORD)),
    )
    .await;
    assert_eq!(new.status, 201);
    server.stop().await;
}
