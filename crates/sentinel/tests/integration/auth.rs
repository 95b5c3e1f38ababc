//! Login, sessions, CSRF protection and password changes.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::support::{PASSWORD, Session, TestServer, on_both_engines, session_from};

#[tokio::test]
async fn login_sets_a_hardened_session_cookie_and_returns_a_csrf_token() {
    let server = TestServer::start().await;
    server.setup_admin().await;
    let resp = server.try_login("ROOT@example.org ", PASSWORD).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let cookie = resp.header("set-cookie").unwrap();
    assert!(cookie.starts_with("__Host-sentinel_session="), "{cookie}");
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing from {cookie}"
        );
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let secret = cookie.split(';').next().unwrap().split('=').nth(1).unwrap();
    assert_eq!(secret.len(), 43, "256 bits of base64url");
    let body = resp.json();
    assert_eq!(body["user"]["email"], "root@example.org");
    assert!(body["csrf_token"].as_str().unwrap().len() >= 43);
    assert!(
        !resp.text.contains(secret),
        "the body does not repeat the session secret"
    );
    server.stop().await;
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let server = TestServer::start().await;
    server.setup_admin().await;
    let wrong_password = server
        .try_login("root@example.org", "not the password at all")
        .await;
    let unknown = server
        .try_login("nobody@example.org", "not the password at all")
        .await;
    let malformed = server.try_login("not an address", "x").await;
    for resp in [&wrong_password, &unknown, &malformed] {
        assert_eq!(resp.status, 401);
        assert!(resp.header("set-cookie").is_none());
        assert_eq!(
            resp.header("content-type"),
            Some("application/problem+json")
        );
    }
    assert_eq!(wrong_password.text, unknown.text);
    assert_eq!(unknown.text, malformed.text);
    server.stop().await;
}

on_both_engines!(
    logout_revokes_the_session,
    |server: TestServer| async move {
        let admin = server.setup_admin().await;
        assert_eq!(server.get(&admin, "/api/v1/me").await.status, 200);
        let out = server
            .call(&admin, Method::POST, "/api/v1/auth/logout", json!({}))
            .await;
        assert_eq!(out.status, 204);
        assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
        let reused = server.get(&admin, "/api/v1/me").await;
        assert_eq!(reused.status, 401, "a logged-out session id is dead");
        server
    }
);

#[tokio::test]
async fn login_always_issues_a_new_session_and_ends_the_old_one() {
    let server = TestServer::start().await;
    let first = server.setup_admin().await;
    let again = TestServer::send(
        server
            .raw(Method::POST, "/api/v1/auth/login")
            .header("cookie", &first.cookie)
            .json(&json!({"email": "root@example.org", "password": PASSWORD})),
    )
    .await;
    let second = session_from(&again);
    assert_ne!(first.cookie, second.cookie);
    assert_ne!(first.csrf, second.csrf);
    assert_eq!(server.get(&first, "/api/v1/me").await.status, 401);
    assert_eq!(server.get(&second, "/api/v1/me").await.status, 200);
    server.stop().await;
}

on_both_engines!(idle_sessions_expire, |server: TestServer| async move {
    let admin = server.setup_admin().await;
    server.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(
        server.get(&admin, "/api/v1/me").await.status,
        200,
        "used within the idle timeout"
    );
    server.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(
        server.get(&admin, "/api/v1/me").await.status,
        200,
        "the last use counts, not the login"
    );
    server.clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(
        server.get(&admin, "/api/v1/me").await.status,
        401,
        "idle for 31 minutes"
    );
    server
});

#[tokio::test]
async fn active_sessions_end_at_their_absolute_lifetime() {
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    for _ in 0..(23 * 3) {
        server.clock.advance(Duration::from_secs(20 * 60));
        assert_eq!(server.get(&admin, "/api/v1/me").await.status, 200);
    }
    server.clock.advance(Duration::from_secs(61 * 60));
    assert_eq!(
        server.get(&admin, "/api/v1/me").await.status,
        401,
        "24 hours after login, however active"
    );
    server.stop().await;
}

async fn org_count(server: &TestServer, session: &Session) -> usize {
    server.get(session, "/api/v1/orgs").await.json()["organizations"]
        .as_array()
        .unwrap()
        .len()
}

on_both_engines!(
    state_changes_need_the_csrf_token_and_our_origin,
    |server: TestServer| async move {
        let admin = server.setup_admin().await;
        let body = json!({"name": "Forged"});
        let post = || {
            server
                .raw(Method::POST, "/api/v1/orgs")
                .header("cookie", &admin.cookie)
                .json(&body)
        };
        let attempts = [
            ("no token", post().header("origin", &server.origin)),
            (
                "wrong token",
                post()
                    .header("origin", &server.origin)
                    .header("x-csrf-token", "A".repeat(43)),
            ),
            (
                "a well-formed but foreign token",
                post().header("origin", &server.origin).header(
                    "x-csrf-token",
                    "AmAz2x4Ufrh0ZnUxF1Pa8cUdVqL8tb1QtQXm3S3oE7s",
                ),
            ),
            (
                "foreign origin",
                post()
                    .header("origin", "https://evil.example")
                    .header("x-csrf-token", &admin.csrf),
            ),
            (
                "cross-site fetch",
                post()
                    .header("sec-fetch-site", "cross-site")
                    .header("x-csrf-token", &admin.csrf),
            ),
            (
                "same-site but not same-origin",
                post()
                    .header("sec-fetch-site", "same-site")
                    .header("x-csrf-token", &admin.csrf),
            ),
            (
                "no origin evidence",
                post().header("x-csrf-token", &admin.csrf),
            ),
            (
                "null origin",
                post()
                    .header("origin", "null")
                    .header("x-csrf-token", &admin.csrf),
            ),
        ];
        for (what, request) in attempts {
            let resp = TestServer::send(request).await;
            assert_eq!(resp.status, 403, "{what}: {}", resp.text);
        }
        let form = TestServer::send(
            server
                .raw(Method::POST, "/orgs")
                .header("cookie", &admin.cookie)
                .header("origin", &server.origin)
                .form(&[("name", "Forged"), ("csrf_token", "wrong")]),
        )
        .await;
        assert_eq!(form.status, 403, "a form with a wrong token");
        assert_eq!(org_count(&server, &admin).await, 0, "nothing was created");

        let ok = TestServer::send(
            post()
                .header("origin", &server.origin)
                .header("x-csrf-token", &admin.csrf),
        )
        .await;
        assert_eq!(ok.status, 201, "the genuine request works: {}", ok.text);
        let form = TestServer::send(
            server
                .raw(Method::POST, "/orgs")
                .header("cookie", &admin.cookie)
                .header("sec-fetch-site", "same-origin")
                .form(&[("name", "From a form"), ("csrf_token", admin.csrf.as_str())]),
        )
        .await;
        assert_eq!(form.status, 303, "a form with the token: {}", form.text);
        assert_eq!(org_count(&server, &admin).await, 2);
        server
    }
);

/// The session a password change response established.
fn session_from_change(resp: &crate::support::Resp, before: &Session) -> Session {
    let cookie = resp
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = resp.json()["csrf_token"].as_str().unwrap().to_owned();
    Session {
        cookie,
        csrf,
        user_id: before.user_id.clone(),
    }
}

#[tokio::test]
async fn cross_site_logins_are_refused() {
    let server = TestServer::start().await;
    server.setup_admin().await;
    let resp = TestServer::send(
        server
            .raw(Method::POST, "/login")
            .header("origin", "https://evil.example")
            .form(&[("email", "root@example.org"), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(resp.status, 403);
    assert!(resp.header("set-cookie").is_none());
    server.stop().await;
}

on_both_engines!(
    changing_the_password_ends_other_sessions,
    |server: TestServer| async move {
        let admin = server.setup_admin().await;
        let laptop = server.login("root@example.org", PASSWORD).await.unwrap();
        let path = "/api/v1/me/password";
        let wrong = server
        .call(&admin, Method::PUT, path, json!({"current_password": "not it at all", "new_password": "granite meadow cobalt whistle"}))
        .await;
        assert_eq!(wrong.status, 422);
        assert_eq!(wrong.json()["field"], "current_password");
        let weak = server
            .call(
                &admin,
                Method::PUT,
                path,
                json!({"current_password": PASSWORD, "new_password": "rootadmin123"}),
            )
            .await;
        assert_eq!(weak.status, 422);
        assert_eq!(
            server.get(&laptop, "/api/v1/me").await.status,
            200,
            "failed attempts change nothing"
        );

        let ok = server
        .call(&admin, Method::PUT, path, json!({"current_password": PASSWORD, "new_password": "granite meadow cobalt whistle"}))
        .await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        assert_eq!(ok.json()["other_sessions_ended"], 1);
        assert_eq!(
            server.get(&laptop, "/api/v1/me").await.status,
            401,
            "the other session ended"
        );
        assert_eq!(
            server.get(&admin, "/api/v1/me").await.status,
            401,
            "the session that made the change is replaced too (a stolen cookie dies)"
        );
        let renewed = session_from_change(&ok, &admin);
        assert_ne!(renewed.cookie, admin.cookie);
        assert_eq!(
            server.get(&renewed, "/api/v1/me").await.status,
            200,
            "the new session works"
        );
        let create = server
            .call(
                &renewed,
                Method::POST,
                "/api/v1/orgs",
                json!({"name": "After"}),
            )
            .await;
        assert_eq!(create.status, 201, "with its new CSRF token");
        assert_eq!(
            server.try_login("root@example.org", PASSWORD).await.status,
            401
        );
        server
            .login("root@example.org", "granite meadow cobalt whistle")
            .await
            .unwrap();
        server
    }
);

on_both_engines!(
    a_user_sees_their_sessions_and_ends_any_of_them,
    |server: TestServer| async move {
        let root = server.setup_admin().await;
        let laptop = server.login("root@example.org", PASSWORD).await.unwrap();
        let phone = server.login("root@example.org", PASSWORD).await.unwrap();
        let listed = server.get(&laptop, "/api/v1/me/sessions").await.json();
        let sessions = listed["sessions"].as_array().unwrap().clone();
        assert_eq!(sessions.len(), 3, "{listed}");
        assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
        for s in &sessions {
            assert_eq!(s["client_ip"], "127.0.0.1", "{s}");
            assert!(s["created_at"].is_string() && s["last_seen_at"].is_string());
        }
        let current_of = |session: &Session| {
            let server = &server;
            let session = session.clone();
            async move {
                let listed = server.get(&session, "/api/v1/me/sessions").await.json();
                listed["sessions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| s["current"] == true)
                    .unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }
        };
        let phone_id = current_of(&phone).await;
        let page = server.get(&laptop, "/profile/sessions").await;
        assert_eq!(page.status, 200);
        assert!(
            page.text.contains("this session") && page.text.contains(&phone_id),
            "{}",
            page.text
        );
        let resp = server
            .call(
                &laptop,
                Method::DELETE,
                &format!("/api/v1/me/sessions/{phone_id}"),
                json!({}),
            )
            .await;
        assert_eq!(resp.status, 204, "{}", resp.text);
        assert_eq!(server.get(&phone, "/api/v1/me").await.status, 401);
        assert_eq!(server.get(&laptop, "/api/v1/me").await.status, 200);

        // Someone else's session, or none at all: 404, and nothing ends.
        server.create_user(&root, "alice@example.org").await;
        let alice = server.login("alice@example.org", PASSWORD).await.unwrap();
        let root_id = current_of(&root).await;
        for id in [root_id.clone(), uuid::Uuid::new_v4().to_string()] {
            let resp = server
                .call(
                    &alice,
                    Method::DELETE,
                    &format!("/api/v1/me/sessions/{id}"),
                    json!({}),
                )
                .await;
            assert_eq!(resp.status, 404, "{}", resp.text);
        }
        let resp = server
            .call(
                &alice,
                Method::DELETE,
                "/api/v1/me/sessions/not-an-id",
                json!({}),
            )
            .await;
        assert_eq!(resp.status, 400);
        assert_eq!(server.get(&root, "/api/v1/me").await.status, 200);

        // Ending one's own current session signs out.
        let resp = server
            .call(
                &root,
                Method::DELETE,
                &format!("/api/v1/me/sessions/{root_id}"),
                json!({}),
            )
            .await;
        assert_eq!(resp.status, 204);
        assert_eq!(server.get(&root, "/api/v1/me").await.status, 401);
        server
    }
);

#[tokio::test]
async fn a_platform_admin_ends_every_session_of_a_user() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let alice_id = server.create_user(&root, "alice@example.org").await;
    let one = server.login("alice@example.org", PASSWORD).await.unwrap();
    let two = server.login("alice@example.org", PASSWORD).await.unwrap();
    let path = format!("/api/v1/users/{alice_id}/sessions");
    // Not for anyone but platform admins.
    assert_eq!(
        server
            .call(&one, Method::DELETE, &path, json!({}))
            .await
            .status,
        403
    );
    let resp = server.call(&root, Method::DELETE, &path, json!({})).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json()["sessions_ended"], 2);
    for session in [&one, &two] {
        assert_eq!(server.get(session, "/api/v1/me").await.status, 401);
    }
    assert_eq!(server.get(&root, "/api/v1/me").await.status, 200);
    let unknown = format!("/api/v1/users/{}/sessions", uuid::Uuid::new_v4());
    assert_eq!(
        server
            .call(&root, Method::DELETE, &unknown, json!({}))
            .await
            .status,
        404
    );
    let audit = server
        .get(&root, "/api/v1/audit?action=user.sessions_ended")
        .await
        .json();
    assert_eq!(
        audit["entries"][0]["detail"]["sessions_ended"], 2,
        "{audit}"
    );
    server.stop().await;
}
