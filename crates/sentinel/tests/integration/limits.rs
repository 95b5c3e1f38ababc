//! Rate limits and CORS: who is counted against which limit, what an
//! over-the-limit caller gets, and which origins may call the API.

use reqwest::Method;
use serde_json::json;

use crate::support::{Engine, PASSWORD, TestServer, on_both_engines};

fn assert_limited(resp: &crate::support::Resp) {
    assert_eq!(resp.status, 429, "{}", resp.text);
    let wait: u64 = resp.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    assert_eq!(resp.json()["type"], "urn:sentinel:problem:rate-limited");
}

async fn login_from(
    server: &TestServer,
    forwarded_for: &str,
    email: &str,
    password: &str,
) -> crate::support::Resp {
    TestServer::send(
        server
            .raw(Method::POST, "/api/v1/auth/login")
            .header("x-forwarded-for", forwarded_for)
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

#[tokio::test]
async fn logins_are_limited_per_address_and_a_forged_forwarded_for_changes_nothing() {
    let server = TestServer::start_on(Engine::Sqlite, |s| s.rate_limit_login = Some(10))
        .await
        .unwrap();
    server.setup_admin().await; // one login
    for i in 0..9 {
        // Each attempt claims another address and another account: the peer is
        // not a trusted proxy, so neither changes the key.
        let resp = login_from(
            &server,
            &format!("198.51.100.{i}"),
            &format!("u{i}@example.org"),
            "wrong password!!",
        )
        .await;
        assert_eq!(resp.status, 401, "{}", resp.text);
    }
    let resp = login_from(&server, "203.0.113.50", "root@example.org", PASSWORD).await;
    assert_limited(&resp);
    assert!(
        resp.header("set-cookie").is_none(),
        "the right password gets no session while limited"
    );
    server.stop().await;
}

#[tokio::test]
async fn logins_are_limited_per_account_across_addresses_behind_a_trusted_proxy() {
    let server = TestServer::start_on(Engine::Sqlite, |s| {
        s.rate_limit_login = Some(10);
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await
    .unwrap();
    server.setup_admin().await;
    // Ten tries at one account from ten addresses: the account's limit is spent.
    for i in 0..9 {
        let resp = login_from(
            &server,
            &format!("198.51.100.{i}"),
            "Root@Example.org",
            "wrong password!!",
        )
        .await;
        assert_eq!(resp.status, 401, "{}", resp.text);
    }
    assert_limited(&login_from(&server, "198.51.100.200", "root@example.org", PASSWORD).await);
    // Another account from a fresh address is untouched: behind a trusted
    // proxy the forwarded address is the key.
    let other = login_from(
        &server,
        "203.0.113.9",
        "someone@example.org",
        "wrong password!!",
    )
    .await;
    assert_eq!(other.status, 401, "{}", other.text);
    server.stop().await;
}

#[tokio::test]
async fn requests_are_limited_per_user_not_per_address() {
    let server = TestServer::start_on(Engine::Sqlite, |s| s.rate_limit_requests = Some(20))
        .await
        .unwrap();
    let root = server.setup_admin().await;
    server.create_user(&root, "alice@example.org").await;
    let alice = server.login("alice@example.org", PASSWORD).await.unwrap();
    for _ in 0..19 {
        assert_eq!(server.get(&root, "/api/v1/me").await.status, 200);
    }
    assert_limited(&server.get(&root, "/api/v1/me").await);
    // Same address, another user: not affected.
    assert_eq!(server.get(&alice, "/api/v1/me").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn anonymous_requests_are_limited_per_address() {
    let server = TestServer::start_on(Engine::Sqlite, |s| s.rate_limit_requests = Some(5))
        .await
        .unwrap();
    for _ in 0..5 {
        let resp = TestServer::send(server.raw(Method::GET, "/api/v1/me")).await;
        assert_eq!(resp.status, 401);
    }
    assert_limited(&TestServer::send(server.raw(Method::GET, "/api/v1/me")).await);
    // A device token that does not authenticate is anonymous too.
    let resp = TestServer::send(server.raw(Method::GET, "/api/v1/agent/commands").header(
        "authorization",
        "Bearer sdt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ))
    .await;
    assert_limited(&resp);
    server.stop().await;
}

#[tokio::test]
async fn agents_are_limited_per_device_and_enrollment_per_address() {
    let server = TestServer::start_on(Engine::Sqlite, |s| {
        s.rate_limit_agent = Some(5);
        s.rate_limit_enrollment = Some(3);
    })
    .await
    .unwrap();
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "School").await;
    let a = server.enroll(&root, &org, "lab-01").await;
    let b = server.enroll(&root, &org, "lab-02").await;
    let token = server.enrollment_token(&root, &org, json!({})).await;
    assert_eq!(server.try_enroll(&token, "lab-03").await.status, 201);
    assert_limited(&server.try_enroll(&token, "lab-04").await);

    let heartbeat = |agent| {
        TestServer::send(
            server
                .as_agent(agent, Method::POST, "/api/v1/agent/telemetry")
                .json(&json!({"samples": []})),
        )
    };
    for _ in 0..5 {
        assert_eq!(heartbeat(&a).await.status, 200);
    }
    assert_limited(&heartbeat(&a).await);
    // Device B sits behind the same address (a school's NAT): not affected.
    assert_eq!(heartbeat(&b).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn organization_creation_is_limited_and_refusals_are_counted() {
    let server = TestServer::start_on(Engine::Sqlite, |s| s.rate_limit_org_creation = Some(2))
        .await
        .unwrap();
    let root = server.setup_admin().await;
    server.create_org(&root, "One").await;
    server.create_org(&root, "Two").await;
    let resp = server
        .call(
            &root,
            Method::POST,
            "/api/v1/orgs",
            json!({"name": "Three"}),
        )
        .await;
    assert_limited(&resp);
    let orgs = server.get(&root, "/api/v1/orgs").await.json();
    assert_eq!(
        orgs["organizations"].as_array().map(Vec::len),
        Some(2),
        "{orgs}"
    );
    let metrics = server.get(&root, "/api/v1/metrics").await.text;
    assert!(
        metrics.contains("sentinel_rate_limited_total 1"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn cors_allows_only_configured_origins_and_never_credentials() {
    let portal = "https://portal.example.org";
    let server = TestServer::start_on(Engine::Sqlite, |s| {
        s.cors_allowed_origins = vec![portal.to_owned()];
    })
    .await
    .unwrap();
    let root = server.setup_admin().await;
    let preflight = |origin: &str| {
        TestServer::send(
            server
                .raw(Method::OPTIONS, "/api/v1/me")
                .header("origin", origin)
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "authorization"),
        )
    };
    let allowed = preflight(portal).await;
    assert_eq!(allowed.status, 204, "{}", allowed.text);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(portal));
    assert!(allowed.header("access-control-allow-credentials").is_none());
    assert!(
        allowed
            .header("access-control-allow-headers")
            .unwrap()
            .contains("authorization")
    );
    let refused = preflight("https://evil.example.net").await;
    assert!(refused.header("access-control-allow-origin").is_none());

    let get = |origin: &str| {
        TestServer::send(
            server
                .raw(Method::GET, "/api/v1/openapi.json")
                .header("origin", origin),
        )
    };
    let answer = get(portal).await;
    assert_eq!(answer.header("access-control-allow-origin"), Some(portal));
    assert!(
        answer
            .header("vary")
            .unwrap()
            .to_ascii_lowercase()
            .contains("origin")
    );
    assert!(
        get("https://evil.example.net")
            .await
            .header("access-control-allow-origin")
            .is_none()
    );
    assert!(
        get("null")
            .await
            .header("access-control-allow-origin")
            .is_none()
    );

    // An allowed origin still cannot ride on a user's session: cookie requests
    // must come from Sentinel's own origin.
    let resp = TestServer::send(
        server
            .raw(Method::POST, "/api/v1/orgs")
            .header("cookie", &root.cookie)
            .header("x-csrf-token", &root.csrf)
            .header("origin", portal)
            .json(&json!({"name": "Planted"})),
    )
    .await;
    assert_eq!(resp.status, 403, "{}", resp.text);
    server.stop().await;

    // None are allowed by default.
    let server = TestServer::start().await;
    let resp = TestServer::send(
        server
            .raw(Method::GET, "/api/v1/openapi.json")
            .header("origin", portal),
    )
    .await;
    assert!(resp.header("access-control-allow-origin").is_none());
    server.stop().await;
}

#[test]
fn a_wildcard_cors_origin_is_refused_by_configuration() {
    for origin in [
        "*",
        "https://*.example.org",
        "https://portal.example.org/app",
        "ftp://x.example.org",
    ] {
        let settings = sentinel::config::Settings {
            cors_allowed_origins: vec![origin.to_owned()],
            ..Default::default()
        };
        let error = sentinel::config::Config::from_settings(settings).unwrap_err();
        assert!(
            error.to_string().contains("cors_allowed_origins"),
            "{origin}: {error}"
        );
    }
}

#[tokio::test]
async fn brute_force_reaches_lockout_then_429_and_the_right_password_fails_meanwhile() {
    // Behind a trusted proxy, each try from its own address: only the
    // account's own limit is in play.
    let server = TestServer::start_on(Engine::Sqlite, |s| {
        s.rate_limit_login = Some(10);
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await
    .unwrap();
    let root = server.setup_admin().await;
    server.create_user(&root, "alice@example.org").await;
    let wrong = |n: usize| format!("wrong password number {n}");
    let address = |n: usize| format!("198.51.100.{n}");
    let alice = "alice@example.org";
    let mut answers = Vec::new();
    for n in 0..5 {
        answers.push(login_from(&server, &address(n), alice, &wrong(n)).await);
    }
    // Locked now: the right password fails exactly like a wrong one, and like
    // an account that does not exist.
    let right = login_from(&server, &address(5), alice, PASSWORD).await;
    let unknown = login_from(&server, &address(99), "nobody@example.org", &wrong(9)).await;
    for resp in answers.iter().chain([&right, &unknown]) {
        assert_eq!(resp.status, 401, "{}", resp.text);
        assert_eq!(resp.text, right.text);
        assert!(resp.header("set-cookie").is_none());
    }
    for n in 6..10 {
        let resp = login_from(&server, &address(n), alice, &wrong(n)).await;
        assert_eq!(resp.status, 401, "{}", resp.text);
    }
    // The eleventh try at this account within the minute is refused outright.
    assert_limited(&login_from(&server, &address(10), alice, PASSWORD).await);

    let audit = server
        .get(&root, "/api/v1/audit?action=auth.account_locked")
        .await
        .json();
    assert_eq!(
        audit["entries"].as_array().map(Vec::len),
        Some(1),
        "{audit}"
    );
    let failures = server
        .get(
            &root,
            "/api/v1/audit?action=auth.login_failed&q=account%20locked",
        )
        .await
        .json();
    assert_eq!(
        failures["entries"].as_array().map(Vec::len),
        Some(5),
        "{failures}"
    );
    server.stop().await;
}

on_both_engines!(
    a_lock_lifts_with_time_doubles_on_the_next_failure_and_an_admin_can_lift_it,
    |server: TestServer| async move {
        let root = server.setup_admin().await;
        let alice = server.create_user(&root, "alice@example.org").await;
        let locked_until = |users: serde_json::Value| {
            users["users"]
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["id"] == alice.as_str())
                .map(|u| u["locked_until"].clone())
                .unwrap()
        };
        for _ in 0..5 {
            server
                .try_login("alice@example.org", "not her password")
                .await;
        }
        assert!(locked_until(server.get(&root, "/api/v1/users").await.json()).is_string());
        assert_eq!(
            server.try_login("alice@example.org", PASSWORD).await.status,
            401
        );

        // A failure during the lock does not lengthen it.
        server
            .try_login("alice@example.org", "not her password")
            .await;
        server.clock.advance(std::time::Duration::from_secs(61));
        assert!(locked_until(server.get(&root, "/api/v1/users").await.json()).is_null());

        // After the lock, one more failure locks again, for twice as long.
        server
            .try_login("alice@example.org", "not her password")
            .await;
        server.clock.advance(std::time::Duration::from_secs(90));
        assert_eq!(
            server.try_login("alice@example.org", PASSWORD).await.status,
            401
        );
        server.clock.advance(std::time::Duration::from_secs(31));
        assert_eq!(
            server.try_login("alice@example.org", PASSWORD).await.status,
            200
        );

        // Success forgets the failures: four more do not lock.
        for _ in 0..4 {
            server
                .try_login("alice@example.org", "not her password")
                .await;
        }
        assert_eq!(
            server.try_login("alice@example.org", PASSWORD).await.status,
            200
        );

        // A platform admin lifts a lock at once; nobody else can.
        for _ in 0..5 {
            server
                .try_login("alice@example.org", "not her password")
                .await;
        }
        let bob = {
            server.create_user(&root, "bob@example.org").await;
            server.login("bob@example.org", PASSWORD).await.unwrap()
        };
        let unlock = format!("/api/v1/users/{alice}/unlock");
        assert_eq!(
            server
                .call(&bob, Method::POST, &unlock, json!({}))
                .await
                .status,
            403
        );
        assert_eq!(
            server.try_login("alice@example.org", PASSWORD).await.status,
            401
        );
        let resp = server.call(&root, Method::POST, &unlock, json!({})).await;
        assert_eq!(resp.status, 204, "{}", resp.text);
        assert_eq!(
            server.try_login("alice@example.org", PASSWORD).await.status,
            200
        );
        let unknown = format!("/api/v1/users/{}/unlock", uuid::Uuid::new_v4());
        assert_eq!(
            server
                .call(&root, Method::POST, &unknown, json!({}))
                .await
                .status,
            404
        );
        server
    }
);

#[tokio::test]
async fn two_factor_codes_are_limited_per_account_even_across_pending_logins() {
    let server = TestServer::start_on(Engine::Sqlite, |s| s.rate_limit_two_factor = Some(5))
        .await
        .unwrap();
    let root = server.setup_admin().await;
    let authenticator = crate::two_factor::enrol(&server, &root).await; // one code check
    let right = authenticator.code(&server, 0);
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    // Four more checks, spread over fresh pending logins so that no single
    // login's attempt limit is reached first.
    for _ in 0..2 {
        let token = crate::two_factor::mfa_token(&server, "root@example.org").await;
        for _ in 0..2 {
            let resp = crate::two_factor::second_step(&server, &token, wrong).await;
            assert_eq!(resp.status, 401, "{}", resp.text);
        }
    }
    // The sixth check within the minute is refused before the code is read:
    // even the right code.
    let token = crate::two_factor::mfa_token(&server, "root@example.org").await;
    let resp = crate::two_factor::second_step(&server, &token, &right).await;
    assert_limited(&resp);
    assert!(resp.header("set-cookie").is_none());
    server.stop().await;
}

#[tokio::test]
async fn wrong_two_factor_codes_lock_the_account_like_wrong_passwords() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let authenticator = crate::two_factor::enrol(&server, &root).await;
    let right = authenticator.code(&server, 0);
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    // Five wrong codes, over several pending logins (each allows five).
    for _ in 0..5 {
        let token = crate::two_factor::mfa_token(&server, "root@example.org").await;
        let resp = crate::two_factor::second_step(&server, &token, wrong).await;
        assert_eq!(resp.status, 401, "{}", resp.text);
    }
    // Locked: the right password no longer even reaches the second step.
    let resp = server.try_login("root@example.org", PASSWORD).await;
    assert_eq!(resp.status, 401, "{}", resp.text);
    server.clock.advance(std::time::Duration::from_secs(61));
    let token = crate::two_factor::mfa_token(&server, "root@example.org").await;
    let resp =
        crate::two_factor::second_step(&server, &token, &authenticator.code(&server, 0)).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    server.stop().await;
}
