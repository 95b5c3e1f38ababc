//! API tokens and service accounts: what a token can reach, what it cannot,
//! and how it dies.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{PASSWORD, Resp, Session, TestServer, on_both_engines};

async fn make_token(server: &TestServer, session: &Session, body: Value) -> Resp {
    server
        .call(session, Method::POST, "/api/v1/tokens", body)
        .await
}

/// A token of `session`'s in `org`, with `permissions`, valid for 30 days.
async fn token(server: &TestServer, session: &Session, org: &str, permissions: &[&str]) -> String {
    let resp = make_token(
        server,
        session,
        json!({"name": "script", "org_id": org, "permissions": permissions, "expires_in_days": 30}),
    )
    .await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    resp.json()["token"].as_str().unwrap().to_owned()
}

fn bearer(server: &TestServer, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    server
        .raw(method, path)
        .header("authorization", format!("Bearer {token}"))
}

async fn status(rb: reqwest::RequestBuilder) -> u16 {
    TestServer::send(rb).await.status
}

on_both_engines!(
    a_token_opens_its_organization_for_its_permissions_only,
    |server: TestServer| async move {
        let root = server.setup_admin().await;
        let org = server.create_org(&root, "Fleet").await;
        let other = server.create_org(&root, "Other").await;
        let reader = token(&server, &root, &org, &["devices.read"]).await;
        assert!(reader.starts_with("snt_") && reader.len() == 55, "{reader}");

        let devices = format!("/api/v1/orgs/{org}/devices");
        assert_eq!(
            status(bearer(&server, &reader, Method::GET, &devices)).await,
            200
        );
        // Not a permission it was given, though its owner holds it.
        let tokens = format!("/api/v1/orgs/{org}/enrollment-tokens");
        let write = bearer(&server, &reader, Method::POST, &tokens).json(&json!({}));
        assert_eq!(status(write).await, 403);
        // Another organization of the same owner.
        let elsewhere = format!("/api/v1/orgs/{other}/devices");
        assert_eq!(
            status(bearer(&server, &reader, Method::GET, &elsewhere)).await,
            403
        );
        // Nothing outside organization routes: not the account, not tokens,
        // not administration.
        for (method, path) in [
            (Method::GET, "/api/v1/me"),
            (Method::GET, "/api/v1/tokens"),
            (Method::GET, "/api/v1/users"),
            (Method::GET, "/api/v1/audit"),
            (Method::POST, "/api/v1/orgs"),
        ] {
            let rb = bearer(&server, &reader, method.clone(), path).json(&json!({"name": "X"}));
            assert_eq!(status(rb).await, 403, "{method} {path}");
        }
        let again = json!({"name": "x", "org_id": org, "permissions": ["devices.read"], "expires_in_days": 1});
        let mint = bearer(&server, &reader, Method::POST, "/api/v1/tokens").json(&again);
        assert_eq!(status(mint).await, 403);

        // A writer needs no CSRF token and no Origin.
        let writer = token(&server, &root, &org, &["devices.write", "devices.read"]).await;
        let write = bearer(&server, &writer, Method::POST, &tokens).json(&json!({"max_uses": 1}));
        assert_eq!(status(write).await, 201);

        // With a bearer token, the session cookie is ignored: the token's
        // narrower grant applies, not the owner's session.
        let mixed = bearer(&server, &reader, Method::POST, &tokens)
            .header("cookie", &root.cookie)
            .header("x-csrf-token", &root.csrf)
            .header("origin", &server.origin)
            .json(&json!({}));
        assert_eq!(status(mixed).await, 403);
        // Pages never take bearer tokens.
        let page = bearer(
            &server,
            &writer,
            Method::GET,
            &format!("/orgs/{org}/devices"),
        );
        let page = TestServer::send(page).await;
        assert_eq!(page.status, 303, "{}", page.text);
        server
    }
);

on_both_engines!(
    expired_revoked_and_forged_tokens_are_refused_at_once,
    |server: TestServer| async move {
        let root = server.setup_admin().await;
        let org = server.create_org(&root, "Fleet").await;
        let path = format!("/api/v1/orgs/{org}");
        let short = make_token(
            &server,
            &root,
            json!({"name": "short", "org_id": org, "permissions": ["org.read"], "expires_in_days": 1}),
        )
        .await
        .json();
        let short_token = short["token"].as_str().unwrap().to_owned();
        assert_eq!(
            status(bearer(&server, &short_token, Method::GET, &path)).await,
            200
        );
        server.clock.advance(Duration::from_secs(86_400 + 1));
        assert_eq!(
            status(bearer(&server, &short_token, Method::GET, &path)).await,
            401
        );
        // A day later the session has ended too.
        let root = server.login("root@example.org", PASSWORD).await.unwrap();

        let live = make_token(
            &server,
            &root,
            json!({"name": "live", "org_id": org, "permissions": ["org.read"], "expires_in_days": 365}),
        )
        .await
        .json();
        let live_token = live["token"].as_str().unwrap().to_owned();
        assert_eq!(
            status(bearer(&server, &live_token, Method::GET, &path)).await,
            200
        );
        // Last use is recorded, with the address.
        let listed = server.get(&root, "/api/v1/tokens").await.json();
        let entry = listed["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == live["id"])
            .unwrap()
            .clone();
        assert_eq!(entry["last_used_ip"], "127.0.0.1", "{entry}");
        assert!(entry["last_used_at"].is_string());
        assert!(
            !listed.to_string().contains(&live_token[4..47]),
            "secrets are never listed"
        );

        let revoke = format!("/api/v1/tokens/{}", live["id"].as_str().unwrap());
        assert_eq!(
            server
                .call(&root, Method::DELETE, &revoke, json!({}))
                .await
                .status,
            204
        );
        assert_eq!(
            status(bearer(&server, &live_token, Method::GET, &path)).await,
            401
        );
        // Revoking again changes nothing; an unknown id is a 404.
        assert_eq!(
            server
                .call(&root, Method::DELETE, &revoke, json!({}))
                .await
                .status,
            204
        );
        let unknown = format!("/api/v1/tokens/{}", uuid::Uuid::new_v4());
        assert_eq!(
            server
                .call(&root, Method::DELETE, &unknown, json!({}))
                .await
                .status,
            404
        );

        // A typo fails the checksum; other kinds of bearer are refused, and
        // none falls back to a cookie.
        let mut typo = live_token.clone().into_bytes();
        typo[10] = if typo[10] == b'A' { b'B' } else { b'A' };
        let typo = String::from_utf8(typo).unwrap();
        for forged in [
            typo.as_str(),
            "snt_",
            "sdt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "' OR 1=1 --",
        ] {
            let rb = bearer(&server, forged, Method::GET, &path).header("cookie", &root.cookie);
            assert_eq!(status(rb).await, 401, "{forged}");
        }
        server
    }
);

#[tokio::test]
async fn a_token_cannot_exceed_its_creator_and_shrinks_when_they_are_demoted() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let analyst = server
        .member(&root, &org, "ana@example.org", "analyst")
        .await;
    let over = make_token(
        &server,
        &analyst,
        json!({"name": "greedy", "org_id": org, "permissions": ["devices.read", "commands.run"], "expires_in_days": 30}),
    )
    .await;
    assert_eq!(over.status, 403, "{}", over.text);
    let mine = server.get(&analyst, "/api/v1/tokens").await.json();
    assert_eq!(
        mine["tokens"].as_array().map(Vec::len),
        Some(0),
        "nothing was made"
    );

    let admin = server
        .member(&root, &org, "adam@example.org", "admin")
        .await;
    let writer = token(&server, &admin, &org, &["devices.read", "devices.write"]).await;
    let tokens = format!("/api/v1/orgs/{org}/enrollment-tokens");
    let write = || bearer(&server, &writer, Method::POST, &tokens).json(&json!({}));
    assert_eq!(status(write()).await, 201);
    let members = server
        .get(&root, &format!("/api/v1/orgs/{org}/members"))
        .await
        .json();
    let adam = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "adam@example.org")
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let demote = server
        .call(
            &root,
            Method::PATCH,
            &format!("/api/v1/orgs/{org}/members/{adam}"),
            json!({"role": "readonly"}),
        )
        .await;
    assert_eq!(demote.status, 200, "{}", demote.text);
    assert_eq!(status(write()).await, 403);
    let read = bearer(
        &server,
        &writer,
        Method::GET,
        &format!("/api/v1/orgs/{org}/devices"),
    );
    assert_eq!(
        status(read).await,
        200,
        "what the demoted creator still holds remains"
    );
    // Removed from the organization: nothing at all.
    let remove = server
        .call(
            &root,
            Method::DELETE,
            &format!("/api/v1/orgs/{org}/members/{adam}"),
            json!({}),
        )
        .await;
    assert_eq!(remove.status, 204, "{}", remove.text);
    let read = bearer(
        &server,
        &writer,
        Method::GET,
        &format!("/api/v1/orgs/{org}/devices"),
    );
    assert_eq!(status(read).await, 404);
    server.stop().await;
}

#[tokio::test]
async fn malformed_token_requests_get_4xx_and_make_nothing() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let stranger_org = {
        server.create_user(&root, "eve@example.org").await;
        let eve = server.login("eve@example.org", PASSWORD).await.unwrap();
        let _ = eve;
        uuid::Uuid::new_v4().to_string()
    };
    let base =
        json!({"name": "x", "org_id": org, "permissions": ["org.read"], "expires_in_days": 30});
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let cases = [
        (with("expires_in_days", json!(0)), 422),
        (with("expires_in_days", json!(366)), 422),
        (with("expires_in_days", json!(-1)), 400),
        (with("expires_in_days", json!("30")), 400),
        (with("permissions", json!([])), 422),
        (with("permissions", json!(["devices.read", "root"])), 422),
        (with("permissions", json!("org.read")), 400),
        (with("name", json!("")), 422),
        (with("name", json!("x".repeat(101))), 422),
        (with("name", json!("bad\u{1b}[31m")), 422),
        (with("org_id", json!("not-an-id")), 400),
        (with("org_id", json!(stranger_org)), 404),
        (with("unexpected", json!(true)), 400),
        (
            json!({"name": "x", "org_id": org, "permissions": ["org.read"]}),
            400,
        ),
    ];
    for (body, expected) in cases {
        let resp = make_token(&server, &root, body.clone()).await;
        assert_eq!(resp.status, expected, "{body}: {}", resp.text);
    }
    let resp = TestServer::send(
        server
            .as_user(&root, Method::POST, "/api/v1/tokens")
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(resp.status, 400);
    let mine = server.get(&root, "/api/v1/tokens").await.json();
    assert_eq!(mine["tokens"].as_array().map(Vec::len), Some(0), "{mine}");
    server.stop().await;
}

#[tokio::test]
async fn tokens_are_stored_only_as_hashes() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let secret = token(&server, &root, &org, &["org.read"]).await;
    let data = server.config.data_dir.clone();
    let mut haystack = Vec::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains(".db") {
            haystack.extend(std::fs::read(&path).unwrap());
        }
    }
    server.stop().await;
    assert!(!haystack.is_empty());
    let body = &secret.as_bytes()[4..47];
    assert!(
        !haystack.windows(body.len()).any(|w| w == body),
        "the token's secret is in the database"
    );
}

on_both_engines!(
    service_accounts_act_through_tokens_within_their_role,
    |server: TestServer| async move {
        let root = server.setup_admin().await;
        let org = server.create_org(&root, "Fleet").await;
        let accounts = format!("/api/v1/orgs/{org}/service-accounts");
        let made = server
            .call(
                &root,
                Method::POST,
                &accounts,
                json!({"name": "SIEM export", "role": "analyst"}),
            )
            .await;
        assert_eq!(made.status, 201, "{}", made.text);
        let robot = made.json()["id"].as_str().unwrap().to_owned();
        let for_robot = |permissions: Value| {
            json!({"name": "siem", "org_id": org, "permissions": permissions,
                   "expires_in_days": 90, "service_account_id": robot})
        };
        // Beyond the account's role: refused, though the creator holds it.
        let over = make_token(&server, &root, for_robot(json!(["devices.write"]))).await;
        assert_eq!(over.status, 422, "{}", over.text);
        let resp = make_token(&server, &root, for_robot(json!(["audit.read"]))).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        let siem = resp.json()["token"].as_str().unwrap().to_owned();
        let audit = format!("/api/v1/orgs/{org}/audit?action=api_token.created");
        let read = TestServer::send(bearer(&server, &siem, Method::GET, &audit)).await;
        assert_eq!(read.status, 200, "{}", read.text);
        assert_eq!(read.json()["entries"].as_array().map(Vec::len), Some(1));

        // What the token does is recorded against the account, naming the token.
        let tokens = format!("/api/v1/orgs/{org}/enrollment-tokens");
        let writer = token(&server, &root, &org, &["devices.write"]).await;
        let write = bearer(&server, &writer, Method::POST, &tokens).json(&json!({}));
        assert_eq!(status(write).await, 201);
        let log = server
            .get(
                &root,
                &format!("/api/v1/orgs/{org}/audit?action=enrollment_token.created"),
            )
            .await
            .json();
        let actor = log["entries"][0]["actor_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(actor.contains("API token"), "{log}");

        // The account is no member to list, cannot log in, and an analyst
        // cannot make one.
        let members = server
            .get(&root, &format!("/api/v1/orgs/{org}/members"))
            .await
            .text;
        assert!(!members.contains(&robot), "{members}");
        let email = format!("{robot}@service-accounts.invalid");
        assert_eq!(server.try_login(&email, PASSWORD).await.status, 401);
        let analyst = server
            .member(&root, &org, "ana@example.org", "analyst")
            .await;
        let resp = server
            .call(
                &analyst,
                Method::POST,
                &accounts,
                json!({"name": "mine", "role": "readonly"}),
            )
            .await;
        assert_eq!(resp.status, 403);
        let resp = server
            .call(
                &root,
                Method::POST,
                &accounts,
                json!({"name": "boss", "role": "owner"}),
            )
            .await;
        assert_eq!(resp.status, 409, "{}", resp.text);
        let listed = server.get(&analyst, &accounts).await.json();
        assert_eq!(
            listed["service_accounts"].as_array().map(Vec::len),
            Some(1),
            "{listed}"
        );
        assert_eq!(
            listed["service_accounts"][0]["tokens"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );

        // It belongs to this organization only, and is never a platform admin.
        let other = server.create_org(&root, "Other").await;
        let resp = server
            .call(
                &root,
                Method::POST,
                &format!("/api/v1/orgs/{other}/members"),
                json!({"user_id": robot, "role": "readonly"}),
            )
            .await;
        assert_eq!(resp.status, 404, "{}", resp.text);
        let resp = server
            .call(
                &root,
                Method::PATCH,
                &format!("/api/v1/users/{robot}"),
                json!({"platform_admin": true}),
            )
            .await;
        assert_eq!(resp.status, 404, "{}", resp.text);

        // Deleting the account kills its tokens.
        let delete = server
            .call(
                &root,
                Method::DELETE,
                &format!("{accounts}/{robot}"),
                json!({}),
            )
            .await;
        assert_eq!(delete.status, 204, "{}", delete.text);
        assert_eq!(
            status(bearer(&server, &siem, Method::GET, &audit)).await,
            401
        );
        server
    }
);

#[tokio::test]
async fn the_two_factor_policy_binds_token_creators_and_service_accounts_cannot_be_owners() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    crate::two_factor::enrol(&server, &root).await;
    let org = server.create_org(&root, "Fleet").await;
    let adam = server
        .member(&root, &org, "adam@example.org", "admin")
        .await;
    let accounts = format!("/api/v1/orgs/{org}/service-accounts");
    let robot = server
        .call(
            &root,
            Method::POST,
            &accounts,
            json!({"name": "robot", "role": "analyst"}),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let for_robot = |name: &str| {
        json!({"name": name, "org_id": org, "permissions": ["devices.read"],
               "expires_in_days": 30, "service_account_id": robot})
    };
    let by_adam = make_token(&server, &adam, for_robot("adam's")).await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_root = make_token(&server, &root, for_robot("root's")).await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let devices = format!("/api/v1/orgs/{org}/devices");
    assert_eq!(
        status(bearer(&server, &by_adam, Method::GET, &devices)).await,
        200
    );

    // Admins must use two-factor now; Adam does not.
    let policy = server
        .call(
            &root,
            Method::PUT,
            &format!("/api/v1/orgs/{org}/two-factor-policy"),
            json!({"policy": "all"}),
        )
        .await;
    assert_eq!(policy.status, 200, "{}", policy.text);
    // His service-account token stops, and he can make no new token of any kind.
    assert_eq!(
        status(bearer(&server, &by_adam, Method::GET, &devices)).await,
        403
    );
    for body in [
        for_robot("again"),
        json!({"name": "mine", "org_id": org, "permissions": ["devices.read"], "expires_in_days": 30}),
    ] {
        let resp = make_token(&server, &adam, body).await;
        assert_eq!(resp.status, 403, "{}", resp.text);
    }
    // A compliant creator's token for the account still works: service
    // accounts cannot enrol, so the policy binds their tokens' creators.
    assert_eq!(
        status(bearer(&server, &by_root, Method::GET, &devices)).await,
        200
    );

    // And no service account can be made owner.
    let promote = server
        .call(
            &root,
            Method::PATCH,
            &format!("/api/v1/orgs/{org}/members/{robot}"),
            json!({"role": "owner"}),
        )
        .await;
    assert_eq!(promote.status, 409, "{}", promote.text);
    server.stop().await;
}

#[tokio::test]
async fn a_stolen_old_session_cannot_mint_tokens_or_enrol_a_second_factor() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let body =
        json!({"name": "late", "org_id": org, "permissions": ["org.read"], "expires_in_days": 365});
    server.clock.advance(Duration::from_secs(16 * 60));
    let late = make_token(&server, &root, body.clone()).await;
    assert_eq!(late.status, 403, "{}", late.text);
    assert!(late.text.contains("sign in again"), "{}", late.text);
    let enrol = server
        .call(
            &root,
            Method::POST,
            "/api/v1/me/two-factor/enrolment",
            json!(null),
        )
        .await;
    assert_eq!(enrol.status, 403, "{}", enrol.text);
    let mine = server.get(&root, "/api/v1/tokens").await.json();
    assert_eq!(mine["tokens"].as_array().map(Vec::len), Some(0), "{mine}");
    // A fresh login may.
    let fresh = server.login("root@example.org", PASSWORD).await.unwrap();
    assert_eq!(make_token(&server, &fresh, body).await.status, 201);
    server.stop().await;
}

#[tokio::test]
async fn a_removed_member_no_longer_sees_the_service_account_tokens_they_made() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let adam = server
        .member(&root, &org, "adam@example.org", "admin")
        .await;
    let robot = server
        .call(
            &adam,
            Method::POST,
            &format!("/api/v1/orgs/{org}/service-accounts"),
            json!({"name": "robot", "role": "readonly"}),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"name": "siem", "org_id": org, "permissions": ["org.read"],
                      "expires_in_days": 30, "service_account_id": robot});
    assert_eq!(make_token(&server, &adam, body).await.status, 201);
    let listed = |s: &Session| {
        let server = &server;
        let s = s.clone();
        async move {
            server.get(&s, "/api/v1/tokens").await.json()["tokens"]
                .as_array()
                .map(Vec::len)
        }
    };
    assert_eq!(listed(&adam).await, Some(1));
    let adam_id = adam.user_id.clone();
    let removed = server
        .call(
            &root,
            Method::DELETE,
            &format!("/api/v1/orgs/{org}/members/{adam_id}"),
            json!({}),
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    assert_eq!(listed(&adam).await, Some(0));
    server.stop().await;
}

#[tokio::test]
async fn another_organizations_service_account_cannot_be_used_or_deleted() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let a = server.create_org(&root, "A").await;
    let b = server.create_org(&root, "B").await;
    let robot = server
        .call(
            &root,
            Method::POST,
            &format!("/api/v1/orgs/{a}/service-accounts"),
            json!({"name": "robot", "role": "readonly"}),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A token in B for A's account: no such account in B.
    let resp = make_token(
        &server,
        &root,
        json!({"name": "x", "org_id": b, "permissions": ["org.read"],
               "expires_in_days": 1, "service_account_id": robot}),
    )
    .await;
    assert_eq!(resp.status, 404, "{}", resp.text);
    // Deleting it through B's route: 404, and it is still in A.
    let resp = server
        .call(
            &root,
            Method::DELETE,
            &format!("/api/v1/orgs/{b}/service-accounts/{robot}"),
            json!({}),
        )
        .await;
    assert_eq!(resp.status, 404, "{}", resp.text);
    let listed = server
        .get(&root, &format!("/api/v1/orgs/{a}/service-accounts"))
        .await
        .json();
    assert_eq!(listed["service_accounts"][0]["id"], robot.as_str());
    // An ordinary member's id is no service account either.
    let member = server.create_user(&root, "m@example.org").await;
    server
        .add_member(&root, &a, "m@example.org", "readonly")
        .await;
    let resp = server
        .call(
            &root,
            Method::DELETE,
            &format!("/api/v1/orgs/{a}/service-accounts/{member}"),
            json!({}),
        )
        .await;
    assert_eq!(resp.status, 404, "{}", resp.text);
    assert!(
        server
            .login("m@example.org", crate::support::PASSWORD)
            .await
            .is_ok()
    );
    server.stop().await;
}
