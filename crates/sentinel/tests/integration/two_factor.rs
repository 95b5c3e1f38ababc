//! Two-factor authentication through the real server: enrolment, the two-step
//! login and its attacks (wrong, replayed, stale and raced codes; expired,
//! exhausted and misused pending logins), recovery codes, the secret at rest,
//! the organization policy in the access guard, switching off and admin reset,
//! malformed bodies, and the two-page UI login.

use std::time::Duration;

use reqwest::Method;
use sentinel_core::TotpSecret;
use sentinel_core::totp::{base32_decode, step_at};
use serde_json::{Value, json};

use crate::support::{PASSWORD, Resp, Session, TestServer, on_both_engines, session_from};

/// A user's authenticator: the secret the server showed at enrolment, and the
/// recovery codes it gave.
pub struct Authenticator {
    pub secret_base32: String,
    pub recovery_codes: Vec<String>,
    secret: TotpSecret,
}

impl Authenticator {
    /// The code of the step `offset` steps from the server's current time.
    pub fn code(&self, server: &TestServer, offset: i64) -> String {
        self.secret
            .code_at_step(step_at(sentinel_core::Clock::now(&server.clock)) + offset)
    }
}

/// Moves the server's clock to the next time step, so that a fresh code exists.
pub fn next_step(server: &TestServer) {
    server.clock.advance(Duration::from_secs(30));
}

/// Turns two-factor authentication on for `session`'s user over the API, then
/// moves to the next time step.
pub async fn enrol(server: &TestServer, session: &Session) -> Authenticator {
    let started = server
        .call(
            session,
            Method::POST,
            "/api/v1/me/two-factor/enrolment",
            json!(null),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.text);
    let body = started.json();
    let secret_base32 = body["secret"].as_str().unwrap().to_owned();
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Sentinel:"), "{uri}");
    assert!(uri.contains(&format!("secret={secret_base32}&issuer=Sentinel")));
    assert!(body["qr_svg"].as_str().unwrap().starts_with("<svg "));
    let secret = TotpSecret::from_bytes(&base32_decode(&secret_base32).unwrap()).unwrap();
    let mut authenticator = Authenticator {
        secret_base32,
        recovery_codes: Vec::new(),
        secret,
    };
    let confirmed = server
        .call(
            session,
            Method::POST,
            "/api/v1/me/two-factor/enrolment/confirm",
            json!({"code": authenticator.code(server, 0)}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    authenticator.recovery_codes = confirmed.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(authenticator.recovery_codes.len(), 10);
    next_step(server);
    authenticator
}

/// Logs in with the password and expects to be asked for a second factor;
/// returns the pending token.
pub async fn mfa_token(server: &TestServer, email: &str) -> String {
    let resp = server.try_login(email, PASSWORD).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert!(resp.header("set-cookie").is_none(), "no session yet");
    let body = resp.json();
    assert_eq!(body["mfa_required"], true, "{}", resp.text);
    assert!(body.get("csrf_token").is_none());
    body["mfa_token"].as_str().unwrap().to_owned()
}

pub async fn second_step(server: &TestServer, token: &str, code: &str) -> Resp {
    TestServer::send(
        server
            .raw(Method::POST, "/api/v1/auth/login/mfa")
            .json(&json!({"mfa_token": token, "code": code})),
    )
    .await
}

/// The newest entries of the platform log, newest first.
async fn platform_actions(server: &TestServer, root: &Session, n: usize) -> Vec<String> {
    let page = server
        .get(root, &format!("/api/v1/audit?limit={n}"))
        .await
        .json();
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn two_factor_status(server: &TestServer, session: &Session) -> Value {
    let resp = server.get(session, "/api/v1/me/two-factor").await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json()
}

on_both_engines!(
    enrolment_over_the_api_makes_login_need_a_code,
    |server: TestServer| async move {
        let root = server.setup_admin().await;
        let status = two_factor_status(&server, &root).await;
        assert_eq!(status["enabled"], false);
        let authenticator = enrol(&server, &root).await;
        let status = two_factor_status(&server, &root).await;
        assert_eq!(status["enabled"], true);
        assert_eq!(status["recovery_codes_left"], 10);
        // Enrolling again while on is refused.
        let again = server
            .call(
                &root,
                Method::POST,
                "/api/v1/me/two-factor/enrolment",
                json!(null),
            )
            .await;
        assert_eq!(again.status, 409, "{}", again.text);

        let token = mfa_token(&server, "root@example.org").await;
        let resp = second_step(&server, &token, &authenticator.code(&server, 0)).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let session = session_from(&resp);
        let me = server.get(&session, "/api/v1/me").await;
        assert_eq!(me.status, 200);
        assert_eq!(me.json()["user"]["email"], "root@example.org");
        assert_eq!(
            platform_actions(&server, &session, 3).await,
            [
                "auth.login",
                "auth.2fa_enabled",
                "auth.2fa_enrolment_started"
            ]
        );
        // The token completed one login; it does not complete another.
        next_step(&server);
        let reused = second_step(&server, &token, &authenticator.code(&server, 0)).await;
        assert_eq!(reused.status, 401, "{}", reused.text);
        server
    }
);

#[tokio::test]
async fn wrong_replayed_and_stale_codes_are_refused() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let authenticator = enrol(&server, &root).await;
    let token = mfa_token(&server, "root@example.org").await;
    let right = authenticator.code(&server, 0);
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    let resp = second_step(&server, &token, wrong).await;
    assert_eq!(resp.status, 401, "{}", resp.text);
    assert!(resp.header("set-cookie").is_none());
    assert_eq!(
        resp.json()["type"],
        "urn:sentinel:problem:second-factor-failed"
    );
    let failed = server.get(&root, "/api/v1/audit?limit=1").await.json();
    let entry = &failed["entries"][0];
    assert_eq!(entry["action"], "auth.login_failed");
    assert_eq!(entry["outcome"], "failure");
    assert_eq!(entry["actor_id"], root.user_id.as_str());
    assert_eq!(entry["detail"]["reason"], "wrong two-factor code");
    // A code from two steps ago (a minute old) is too old.
    let stale = authenticator.code(&server, -2);
    if stale != right && stale != authenticator.code(&server, -1) {
        let resp = second_step(&server, &token, &stale).await;
        assert_eq!(resp.status, 401, "{}", resp.text);
    }
    // The right code works, once: the same code cannot log in again, even
    // with a fresh pending login within its window.
    let resp = second_step(&server, &token, &right).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let token = mfa_token(&server, "root@example.org").await;
    let replay = second_step(&server, &token, &right).await;
    assert_eq!(replay.status, 401, "{}", replay.text);
    // Nor can the previous step's code (accepting step t retires t-1 too).
    let previous = authenticator.code(&server, -1);
    let resp = second_step(&server, &token, &previous).await;
    assert_eq!(resp.status, 401, "{}", resp.text);
    next_step(&server);
    let resp = second_step(&server, &token, &authenticator.code(&server, 0)).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    server.stop().await;
}

#[tokio::test]
async fn two_simultaneous_uses_of_one_code_cannot_both_log_in() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let authenticator = enrol(&server, &root).await;
    let first = mfa_token(&server, "root@example.org").await;
    let second = mfa_token(&server, "root@example.org").await;
    let code = authenticator.code(&server, 0);
    let (a, b) = tokio::join!(
        second_step(&server, &first, &code),
        second_step(&server, &second, &code)
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 401], "{} / {}", a.text, b.text);
    server.stop().await;
}

#[tokio::test]
async fn a_recovery_code_works_once_and_only_once() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let authenticator = enrol(&server, &root).await;
    let code = &authenticator.recovery_codes[3];
    assert_eq!(code.len(), 14, "grouped: {code}");
    // Typed in capitals without hyphens: still the code.
    let typed = code.to_uppercase().replace('-', " ");
    let token = mfa_token(&server, "root@example.org").await;
    let resp = second_step(&server, &token, &typed).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let session = session_from(&resp);
    assert_eq!(
        platform_actions(&server, &session, 2).await,
        ["auth.login", "auth.recovery_code_used"]
    );
    assert_eq!(
        two_factor_status(&server, &session).await["recovery_codes_left"],
        9
    );
    let token = mfa_token(&server, "root@example.org").await;
    let again = second_step(&server, &token, code).await;
    assert_eq!(again.status, 401, "{}", again.text);
    // Another recovery code still works.
    let resp = second_step(&server, &token, &authenticator.recovery_codes[4]).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    // New codes need a current code, and retire the old ones.
    let refused = server
        .call(
            &session,
            Method::POST,
            "/api/v1/me/two-factor/recovery-codes",
            json!({"code": authenticator.recovery_codes[5]}),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let fresh = server
        .call(
            &session,
            Method::POST,
            "/api/v1/me/two-factor/recovery-codes",
            json!({"code": authenticator.code(&server, 0)}),
        )
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);
    let new_codes = fresh.json()["recovery_codes"].clone();
    assert_eq!(new_codes.as_array().unwrap().len(), 10);
    let token = mfa_token(&server, "root@example.org").await;
    let old = second_step(&server, &token, &authenticator.recovery_codes[6]).await;
    assert_eq!(old.status, 401, "{}", old.text);
    let new = second_step(&server, &token, new_codes[0].as_str().unwrap()).await;
    assert_eq!(new.status, 200, "{}", new.text);
    server.stop().await;
}

#[tokio::test]
async fn the_pending_login_expires_dies_after_five_wrong_codes_and_opens_nothing() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let authenticator = enrol(&server, &root).await;

    // Expiry: five minutes, on the injected clock.
    let token = mfa_token(&server, "root@example.org").await;
    server.clock.advance(Duration::from_secs(5 * 60 + 1));
    let late = second_step(&server, &token, &authenticator.code(&server, 0)).await;
    assert_eq!(late.status, 401, "{}", late.text);

    // Five wrong codes, then even the right one is refused.
    next_step(&server);
    let token = mfa_token(&server, "root@example.org").await;
    let right = authenticator.code(&server, 0);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    for _ in 0..5 {
        let resp = second_step(&server, &token, wrong).await;
        assert_eq!(resp.status, 401, "{}", resp.text);
    }
    // Those five also locked the account for a minute; once that has passed,
    // the spent pending login still refuses a right code.
    server.clock.advance(Duration::from_secs(61));
    let right = authenticator.code(&server, 0);
    let resp = second_step(&server, &token, &right).await;
    assert_eq!(resp.status, 401, "{}", resp.text);
    assert!(resp.header("set-cookie").is_none());

    // The token is not a session: not as the cookie, not as a bearer token.
    let token = mfa_token(&server, "root@example.org").await;
    for path in ["/api/v1/me", "/api/v1/me/two-factor", "/api/v1/orgs"] {
        let as_cookie = TestServer::send(
            server
                .raw(Method::GET, path)
                .header("cookie", format!("__Host-sentinel_session={token}")),
        )
        .await;
        assert_eq!(as_cookie.status, 401, "{path}: {}", as_cookie.text);
        let as_bearer = TestServer::send(
            server
                .raw(Method::GET, path)
                .header("authorization", format!("Bearer {token}")),
        )
        .await;
        assert_eq!(as_bearer.status, 401, "{path}: {}", as_bearer.text);
    }
    // And it still completes its own login afterwards.
    let resp = second_step(&server, &token, &right).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    server.stop().await;
}

#[tokio::test]
async fn a_password_change_kills_the_pending_login() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let authenticator = enrol(&server, &root).await;
    let token = mfa_token(&server, "root@example.org").await;
    let changed = server
        .call(
            &root,
            Method::PUT,
            "/api/v1/me/password",
            json!({"current_password": PASSWORD, "new_password": "copper meadow signal drift"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let resp = second_step(&server, &token, &authenticator.code(&server, 0)).await;
    assert_eq!(resp.status, 401, "{}", resp.text);
    assert!(resp.header("set-cookie").is_none());
    server.stop().await;
}

#[tokio::test]
async fn the_totp_secret_is_not_in_the_sqlite_file() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let authenticator = enrol(&server, &root).await;
    // Also a pending (unconfirmed) secret of another user.
    server.create_user(&root, "pending@example.org").await;
    let pending = server.login("pending@example.org", PASSWORD).await.unwrap();
    let started = server
        .call(
            &pending,
            Method::POST,
            "/api/v1/me/two-factor/enrolment",
            json!(null),
        )
        .await;
    let pending_secret = started.json()["secret"].as_str().unwrap().to_owned();
    // The database file and its write-ahead log, as a thief would copy them.
    let data_dir = server.config.data_dir.clone();
    let mut bytes = Vec::new();
    for file in ["control.db", "control.db-wal"] {
        if let Ok(content) = std::fs::read(data_dir.join(file)) {
            bytes.extend(content);
        }
    }
    assert!(bytes.len() > 10_000, "the database was read");
    for secret in [&authenticator.secret_base32, &pending_secret] {
        let raw = base32_decode(secret).unwrap();
        assert!(
            !bytes.windows(raw.len()).any(|w| w == raw.as_slice()),
            "raw secret found"
        );
        for text in [secret.clone(), secret.to_lowercase()] {
            assert!(
                !bytes.windows(text.len()).any(|w| w == text.as_bytes()),
                "base32 secret found"
            );
        }
    }
    // Nor any recovery code.
    for code in &authenticator.recovery_codes {
        let compact = code.replace('-', "");
        assert!(
            !bytes
                .windows(compact.len())
                .any(|w| w == compact.as_bytes())
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn the_org_policy_blocks_non_compliant_members_until_they_enrol() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Strict").await;
    let admin = server
        .member(&root, &org, "admin@example.org", "admin")
        .await;
    let analyst = server
        .member(&root, &org, "analyst@example.org", "analyst")
        .await;
    let policy_path = format!("/api/v1/orgs/{org}/two-factor-policy");
    let org_path = format!("/api/v1/orgs/{org}");

    // The owner cannot lock themselves out: 409 until they have 2FA themselves.
    let refused = server
        .call(
            &root,
            Method::PUT,
            &policy_path,
            json!({"policy": "admins"}),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("two-factor")
    );
    enrol(&server, &root).await;
    let set = server
        .call(
            &root,
            Method::PUT,
            &policy_path,
            json!({"policy": "admins"}),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(set.json()["previous"], "none");
    let log = server
        .get(&root, &format!("/api/v1/orgs/{org}/audit?limit=1"))
        .await
        .json();
    assert_eq!(log["entries"][0]["action"], "org.2fa_policy_changed");
    assert_eq!(log["entries"][0]["detail"]["to"], "admins");

    // The admin without 2FA: 403 on the organization's routes, reads and writes.
    let blocked = server.get(&admin, &org_path).await;
    assert_eq!(blocked.status, 403, "{}", blocked.text);
    assert_eq!(
        blocked.json()["type"],
        "urn:sentinel:problem:two-factor-required"
    );
    assert!(
        blocked.json()["detail"]
            .as_str()
            .unwrap()
            .contains("requires two-factor authentication")
    );
    let write = server
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/orgs/{org}/enrollment-tokens"),
            json!({}),
        )
        .await;
    assert_eq!(write.status, 403, "{}", write.text);
    let denied = server
        .get(&root, &format!("/api/v1/orgs/{org}/audit?limit=1"))
        .await
        .json();
    assert_eq!(denied["entries"][0]["outcome"], "denied");
    assert_eq!(denied["entries"][0]["actor_id"], admin.user_id.as_str());
    // In the UI: sent to the enrolment page.
    let page = server.get(&admin, &format!("/orgs/{org}")).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.header("location"),
        Some("/profile/two-factor?notice=two-factor-required")
    );
    // Their own account, 2FA enrolment and logout stay open.
    assert_eq!(server.get(&admin, "/api/v1/me").await.status, 200);
    assert_eq!(server.get(&admin, "/profile/two-factor").await.status, 200);
    // The analyst is not covered by `admins`.
    assert_eq!(server.get(&analyst, &org_path).await.status, 200);

    // Once enrolled, the admin gets in.
    enrol(&server, &admin).await;
    assert_eq!(server.get(&admin, &org_path).await.status, 200);

    // `all` covers the analyst too; other organizations are unaffected.
    let set = server
        .call(&root, Method::PUT, &policy_path, json!({"policy": "all"}))
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(server.get(&analyst, &org_path).await.status, 403);
    let other = server.create_org(&root, "Relaxed").await;
    server
        .add_member(&root, &other, "analyst@example.org", "analyst")
        .await;
    assert_eq!(
        server
            .get(&analyst, &format!("/api/v1/orgs/{other}"))
            .await
            .status,
        200
    );
    let logout = server
        .call(&analyst, Method::POST, "/api/v1/auth/logout", json!(null))
        .await;
    assert_eq!(logout.status, 204, "{}", logout.text);
    server.stop().await;
}

#[tokio::test]
async fn disabling_needs_password_and_code_and_ends_other_sessions() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let authenticator = enrol(&server, &root).await;
    let token = mfa_token(&server, "root@example.org").await;
    let other = session_from(&second_step(&server, &token, &authenticator.code(&server, 0)).await);
    next_step(&server);
    let disable = |password: &str, code: String| {
        server.call(
            &root,
            Method::POST,
            "/api/v1/me/two-factor/disable",
            json!({"password": password, "code": code}),
        )
    };
    let wrong_password = disable("not my password at all", authenticator.code(&server, 0)).await;
    assert_eq!(wrong_password.status, 403, "{}", wrong_password.text);
    let wrong = if authenticator.code(&server, 0) == "000000" {
        "000001"
    } else {
        "000000"
    };
    let wrong_code = disable(PASSWORD, wrong.to_owned()).await;
    assert_eq!(wrong_code.status, 403, "{}", wrong_code.text);
    assert_eq!(
        platform_actions(&server, &root, 1).await,
        ["auth.2fa_disabled"],
        "the refusal is audited"
    );
    let no_code = server
        .call(
            &root,
            Method::POST,
            "/api/v1/me/two-factor/disable",
            json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(no_code.status, 400, "{}", no_code.text);
    assert_eq!(two_factor_status(&server, &root).await["enabled"], true);
    assert_eq!(server.get(&other, "/api/v1/me").await.status, 200);

    let done = disable(PASSWORD, authenticator.code(&server, 0)).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.json()["sessions_ended"], 1);
    assert_eq!(server.get(&other, "/api/v1/me").await.status, 401);
    assert_eq!(server.get(&root, "/api/v1/me").await.status, 200);
    assert_eq!(two_factor_status(&server, &root).await["enabled"], false);
    let entry = server.get(&root, "/api/v1/audit?limit=1").await.json();
    assert_eq!(entry["entries"][0]["action"], "auth.2fa_disabled");
    assert_eq!(entry["entries"][0]["outcome"], "success");
    // A password alone logs in again.
    server.login("root@example.org", PASSWORD).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_platform_admin_resets_a_lost_device_and_ends_the_users_sessions() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let user_id = server.create_user(&root, "lost@example.org").await;
    let lost = server.login("lost@example.org", PASSWORD).await.unwrap();
    enrol(&server, &lost).await;
    mfa_token(&server, "lost@example.org").await;
    let path = format!("/api/v1/users/{user_id}/two-factor");
    // Not by the user themselves (no platform admin), not on one's own account.
    let own = server.call(&lost, Method::DELETE, &path, json!(null)).await;
    assert_eq!(own.status, 403, "{}", own.text);
    let self_reset = server
        .call(
            &root,
            Method::DELETE,
            &format!("/api/v1/users/{}/two-factor", root.user_id),
            json!(null),
        )
        .await;
    assert_eq!(self_reset.status, 409, "{}", self_reset.text);
    let reset = server.call(&root, Method::DELETE, &path, json!(null)).await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    assert_eq!(reset.json()["sessions_ended"], 1);
    assert_eq!(server.get(&lost, "/api/v1/me").await.status, 401);
    let entry = server.get(&root, "/api/v1/audit?limit=1").await.json();
    assert_eq!(entry["entries"][0]["action"], "auth.2fa_reset");
    assert_eq!(entry["entries"][0]["entity_id"], user_id.as_str());
    server.login("lost@example.org", PASSWORD).await.unwrap();
    let again = server.call(&root, Method::DELETE, &path, json!(null)).await;
    assert_eq!(again.status, 404, "{}", again.text);
    server.stop().await;
}

#[tokio::test]
async fn malformed_two_factor_bodies_get_4xx_and_change_nothing() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Bodies").await;
    let authenticator = enrol(&server, &root).await;
    let token = mfa_token(&server, "root@example.org").await;
    let huge = "9".repeat(60_000);
    let bodies = [
        json!({"mfa_token": token, "code": 123456}),
        json!({"mfa_token": token, "code": null}),
        json!({"mfa_token": token}),
        json!({"mfa_token": token, "code": "123456", "admin": true}),
        json!({"mfa_token": token, "code": huge}),
        json!({"mfa_token": token, "code": "12345x"}),
        json!({"mfa_token": token, "code": "１２３４５６"}),
        json!({"mfa_token": token, "code": "12345"}),
        json!({"mfa_token": token, "code": "' OR 1=1 --"}),
        json!({"mfa_token": [token], "code": "123456"}),
        json!("123456"),
    ];
    for body in &bodies {
        let resp = TestServer::send(
            server
                .raw(Method::POST, "/api/v1/auth/login/mfa")
                .json(body),
        )
        .await;
        assert!(
            (400..500).contains(&resp.status) && resp.status != 401,
            "{body:.80}: {} {}",
            resp.status,
            resp.text
        );
    }
    // None of them took an attempt: five wrong codes are still allowed, and
    // then the right one would have been refused — so four, then the right one.
    let right = authenticator.code(&server, 0);
    let wrong = if right == "111111" {
        "222222"
    } else {
        "111111"
    };
    for _ in 0..4 {
        assert_eq!(second_step(&server, &token, wrong).await.status, 401);
    }
    let resp = second_step(&server, &token, &right).await;
    assert_eq!(resp.status, 200, "{}", resp.text);

    // The caller's own routes and the policy route, likewise.
    let cases = [
        (
            "/api/v1/me/two-factor/enrolment/confirm",
            json!({"code": 123456}),
        ),
        (
            "/api/v1/me/two-factor/recovery-codes",
            json!({"code": huge}),
        ),
        (
            "/api/v1/me/two-factor/recovery-codes",
            json!({"code": "abcdef"}),
        ),
        (
            "/api/v1/me/two-factor/recovery-codes",
            json!({"code": "123456", "x": 1}),
        ),
        (
            "/api/v1/me/two-factor/disable",
            json!({"password": PASSWORD, "code": ["1"]}),
        ),
        (
            "/api/v1/me/two-factor/disable",
            json!({"password": PASSWORD, "code": huge}),
        ),
        (
            "/api/v1/me/two-factor/disable",
            json!({"password": PASSWORD, "code": "1234567"}),
        ),
    ];
    for (path, body) in &cases {
        let resp = server.call(&root, Method::POST, path, body.clone()).await;
        assert!(
            (400..500).contains(&resp.status),
            "{path} {body:.80}: {} {}",
            resp.status,
            resp.text
        );
    }
    for body in [
        json!({"policy": "everyone"}),
        json!({"policy": "ALL"}),
        json!({"policy": 1}),
        json!({"policy": "none", "extra": true}),
        json!({}),
    ] {
        let resp = server
            .call(
                &root,
                Method::PUT,
                &format!("/api/v1/orgs/{org}/two-factor-policy"),
                body.clone(),
            )
            .await;
        assert_eq!(resp.status, 400, "{body}: {}", resp.text);
    }
    let status = two_factor_status(&server, &root).await;
    assert_eq!(status["enabled"], true);
    assert_eq!(status["recovery_codes_left"], 10);
    let org_view = server.get(&root, &format!("/orgs/{org}")).await;
    assert!(
        org_view.text.contains("required of nobody"),
        "{}",
        org_view.text
    );
    server.stop().await;
}

fn form(rb: reqwest::RequestBuilder, fields: &[(&str, &str)]) -> reqwest::RequestBuilder {
    rb.header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(fields).unwrap())
}

/// The value of the hidden `name` field in a page.
fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_ui_enrols_with_a_qr_code_and_signs_in_on_two_pages() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    // Enrolment through the profile pages.
    let started = TestServer::send(form(
        server.as_user(&root, Method::POST, "/profile/two-factor/enrolment"),
        &[],
    ))
    .await;
    assert_eq!(started.status, 200, "{}", started.text);
    assert!(started.text.contains("<svg "), "QR code drawn inline");
    assert!(!started.text.contains("<script"));
    let secret_start = started.text.find("id=\"totp-secret\">").unwrap() + 17;
    let secret_base32 = started.text[secret_start..].split('<').next().unwrap();
    let secret = TotpSecret::from_bytes(&base32_decode(secret_base32).unwrap()).unwrap();
    let code = |server: &TestServer| secret.code_at(sentinel_core::Clock::now(&server.clock));
    let confirmed = TestServer::send(form(
        server.as_user(&root, Method::POST, "/profile/two-factor/confirm"),
        &[("code", &code(&server))],
    ))
    .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert!(confirmed.text.contains("id=\"recovery-codes\""));
    assert_eq!(confirmed.text.matches("<li><code>").count(), 10);
    next_step(&server);

    // Page one: the password. No cookie yet; the code page carries the token.
    let page = TestServer::send(form(
        server
            .raw(Method::POST, "/login")
            .header("origin", &server.origin),
        &[
            ("email", "root@example.org"),
            ("password", PASSWORD),
            ("next", "/profile"),
        ],
    ))
    .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.header("set-cookie").is_none());
    let token = hidden_field(&page.text, "mfa_token");
    assert_eq!(hidden_field(&page.text, "next"), "/profile");
    // Page two: a wrong code shows the page again with the same token.
    let second = |code: String| {
        let token = token.clone();
        let server = &server;
        async move {
            TestServer::send(form(
                server
                    .raw(Method::POST, "/login/mfa")
                    .header("origin", &server.origin),
                &[("mfa_token", &token), ("code", &code), ("next", "/profile")],
            ))
            .await
        }
    };
    let right = code(&server);
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    let again = second(wrong.to_owned()).await;
    assert_eq!(again.status, 401, "{}", again.text);
    assert_eq!(hidden_field(&again.text, "mfa_token"), token);
    let done = second(right).await;
    assert_eq!(done.status, 303, "{}", done.text);
    assert_eq!(done.header("location"), Some("/profile"));
    assert!(
        done.header("set-cookie")
            .unwrap()
            .starts_with("__Host-sentinel_session=")
    );
    // The spent token sends the browser back to the password page.
    let spent = second(code(&server)).await;
    assert_eq!(spent.status, 303);
    assert_eq!(
        spent.header("location"),
        Some("/login?notice=sign-in-expired")
    );
    server.stop().await;
}
