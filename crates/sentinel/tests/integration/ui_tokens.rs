//! The API token pages of the web UI through the real server: a token made on
//! the profile page is shown once, works as a Bearer token and dies when
//! revoked; service accounts and their tokens made, revoked and deleted through
//! the organization's page; what a readonly member may not do; hostile input.

use reqwest::Method;
use serde_json::Value;

use crate::support::{Resp, Session, TestServer, post_form};

/// The secret a page shows in its "shown once" box.
fn shown_secret(page: &Resp) -> String {
    let start = page
        .text
        .find("<pre id=\"token-secret\">")
        .unwrap_or_else(|| panic!("no secret on the page: {}", page.text))
        + "<pre id=\"token-secret\">".len();
    let end = start + page.text[start..].find("</pre>").unwrap();
    let secret = page.text[start..end].to_owned();
    assert!(secret.starts_with("snt_") && secret.len() == 55, "{secret}");
    secret
}

/// The status of `GET /api/v1/orgs/{org}/devices` with `token` as Bearer.
async fn devices_with(server: &TestServer, token: &str, org: &str) -> u16 {
    TestServer::send(
        server
            .raw(Method::GET, &format!("/api/v1/orgs/{org}/devices"))
            .header("authorization", format!("Bearer {token}")),
    )
    .await
    .status
}

/// The caller's tokens, as the API lists them.
async fn api_tokens(server: &TestServer, session: &Session) -> Vec<Value> {
    let resp = server.get(session, "/api/v1/tokens").await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json()["tokens"].as_array().unwrap().clone()
}

async fn service_accounts(server: &TestServer, session: &Session, org: &str) -> Vec<Value> {
    let resp = server
        .get(session, &format!("/api/v1/orgs/{org}/service-accounts"))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json()["service_accounts"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_profile_token_is_shown_once_works_and_dies_when_revoked() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let profile = server.get(&root, "/profile").await;
    assert!(profile.text.contains("href=\"/profile/tokens\""));

    let empty = server.get(&root, "/profile/tokens").await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert!(empty.text.contains("No API tokens."));
    assert!(empty.text.contains(&format!("<option value=\"{org}\"")));
    assert!(empty.text.contains("value=\"devices.read\""));
    assert!(empty.text.contains("name=\"expires_in_days\" value=\"90\""));

    let created = post_form(
        &server,
        &root,
        "/profile/tokens",
        &[
            ("name", "ci <script>alert(1)</script>"),
            ("org_id", &org),
            ("permissions", "devices.read"),
            ("permissions", "org.read"),
            ("expires_in_days", "30"),
        ],
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    assert!(created.text.contains("copy it now"));
    assert!(created.text.contains("It will not be shown again"));
    let secret = shown_secret(&created);
    // The hostile name is text, not markup.
    assert!(!created.text.contains("<script>alert"));
    assert!(
        created
            .text
            .contains("ci &#60;script&#62;alert(1)&#60;/script&#62;")
    );

    assert_eq!(devices_with(&server, &secret, &org).await, 200);

    // The list never shows the secret again; it shows the use.
    let list = server.get(&root, "/profile/tokens").await;
    assert_eq!(list.status, 200);
    assert!(!list.text.contains(&secret));
    assert!(!list.text.contains(&secret[..20]));
    assert!(!list.text.contains("id=\"token-secret\""));
    assert!(
        list.text.contains("org.read, devices.read"),
        "{}",
        list.text
    );
    assert!(list.text.contains("from 127.0.0.1"), "{}", list.text);
    assert!(list.text.contains("<td class=\"token-state\">live</td>"));
    assert!(!list.text.contains("<script>alert"));

    let tokens = api_tokens(&server, &root).await;
    assert_eq!(tokens.len(), 1);
    let id = tokens[0]["id"].as_str().unwrap();
    assert!(list.text.contains(&format!("/profile/tokens/{id}/revoke")));
    let revoked = post_form(&server, &root, &format!("/profile/tokens/{id}/revoke"), &[]).await;
    assert_eq!(revoked.status, 303, "{}", revoked.text);
    assert_eq!(
        revoked.header("location"),
        Some("/profile/tokens?notice=api-token-revoked")
    );
    assert_eq!(devices_with(&server, &secret, &org).await, 401);
    let after = server
        .get(&root, "/profile/tokens?notice=api-token-revoked")
        .await;
    assert!(after.text.contains("API token revoked."));
    assert!(
        after
            .text
            .contains("<td class=\"token-state\">revoked</td>")
    );
    assert!(!after.text.contains(&format!("/profile/tokens/{id}/revoke")));

    // Someone else's token is not found by a member who does not manage
    // members, and stays live.
    let other = server
        .member(&root, &org, "other@example.org", "analyst")
        .await;
    let again = post_form(
        &server,
        &root,
        "/profile/tokens",
        &[
            ("name", "again"),
            ("org_id", &org),
            ("permissions", "devices.read"),
            ("expires_in_days", "1"),
        ],
    )
    .await;
    let live = shown_secret(&again);
    let live_id = api_tokens(&server, &root)
        .await
        .iter()
        .find(|t| t["name"] == "again")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = post_form(
        &server,
        &other,
        &format!("/profile/tokens/{live_id}/revoke"),
        &[],
    )
    .await;
    assert_eq!(refused.status, 404, "{}", refused.text);
    assert!(refused.text.contains("token not found"));
    assert_eq!(devices_with(&server, &live, &org).await, 200);
    server.stop().await;
}

#[tokio::test]
async fn bad_token_forms_are_shown_again_with_the_error_and_create_nothing() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let reader = server
        .member(&root, &org, "reader@example.org", "readonly")
        .await;
    let cases: [(&Session, &str, &str, u16, &str); 5] = [
        (&root, "root.all", "30", 422, "unknown permission"),
        (&root, "devices.read", "0", 422, "expires_in_days"),
        (&root, "devices.read", "soon", 422, "expires_in_days"),
        (&root, "devices.read", "366", 422, "expires_in_days"),
        // More than the creator holds: a refusal, with its reason.
        (
            &reader,
            "devices.write",
            "30",
            403,
            "permissions that you do not hold",
        ),
    ];
    for (session, permission, days, status, message) in cases {
        let resp = post_form(
            &server,
            session,
            "/profile/tokens",
            &[
                ("name", "kept <b>name</b>"),
                ("org_id", &org),
                ("permissions", permission),
                ("expires_in_days", days),
            ],
        )
        .await;
        assert_eq!(resp.status, status, "{permission} {days}: {}", resp.text);
        assert!(resp.text.contains("id=\"form-error\""), "{}", resp.text);
        assert!(resp.text.contains(message), "{message}: {}", resp.text);
        assert!(!resp.text.contains("id=\"token-secret\""));
        // The entered values are kept, escaped.
        assert!(
            resp.text
                .contains("value=\"kept &#60;b&#62;name&#60;/b&#62;\"")
        );
        assert!(resp.text.contains(&format!("value=\"{days}\"")));
        assert!(
            resp.text
                .contains(&format!("<option value=\"{org}\" selected>"))
        );
    }
    // A known permission stays ticked when the form comes back.
    let resp = post_form(
        &server,
        &root,
        "/profile/tokens",
        &[
            ("name", "x"),
            ("org_id", &org),
            ("permissions", "audit.read"),
            ("expires_in_days", "0"),
        ],
    )
    .await;
    assert!(resp.text.contains("value=\"audit.read\" checked"));
    assert!(!resp.text.contains("value=\"devices.read\" checked"));
    // No organization, or one the caller is not in.
    let other = server.create_org(&root, "Other").await;
    let resp = post_form(
        &server,
        &reader,
        "/profile/tokens",
        &[
            ("name", "x"),
            ("org_id", &other),
            ("permissions", "org.read"),
            ("expires_in_days", "1"),
        ],
    )
    .await;
    assert_eq!(resp.status, 404, "{}", resp.text);
    let resp = post_form(
        &server,
        &reader,
        "/profile/tokens",
        &[
            ("name", "x"),
            ("permissions", "org.read"),
            ("expires_in_days", "1"),
        ],
    )
    .await;
    assert_eq!(resp.status, 422, "{}", resp.text);
    assert!(api_tokens(&server, &root).await.is_empty());
    assert!(api_tokens(&server, &reader).await.is_empty());

    // The refusal was audited like any other (in the platform log: the route
    // names no organization); the invalid forms were not refusals.
    let log = server.get(&root, "/api/v1/audit?limit=50").await.json();
    let denied: Vec<&Value> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "api_token.created")
        .collect();
    assert!(
        denied
            .iter()
            .all(|e| e["outcome"] == "denied" && e["actor_id"] == reader.user_id.as_str()),
        "{denied:?}"
    );
    assert_eq!(denied.len(), 1, "{log}");
    server.stop().await;
}

#[tokio::test]
async fn a_readonly_member_sees_service_accounts_but_cannot_create_one() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let reader = server
        .member(&root, &org, "reader@example.org", "readonly")
        .await;
    let overview = server.get(&reader, &format!("/orgs/{org}")).await;
    assert!(
        overview
            .text
            .contains(&format!("href=\"/orgs/{org}/service-accounts\""))
    );
    let page = server
        .get(&reader, &format!("/orgs/{org}/service-accounts"))
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("No service accounts."));
    assert!(!page.text.contains("id=\"create-service-account\""));

    let resp = post_form(
        &server,
        &reader,
        &format!("/orgs/{org}/service-accounts"),
        &[("name", "robot"), ("role", "analyst")],
    )
    .await;
    assert_eq!(resp.status, 403, "{}", resp.text);
    assert!(service_accounts(&server, &root, &org).await.is_empty());

    // Nor make a token for one, or delete one, that root made.
    let made = post_form(
        &server,
        &root,
        &format!("/orgs/{org}/service-accounts"),
        &[("name", "robot"), ("role", "analyst")],
    )
    .await;
    assert_eq!(made.status, 303, "{}", made.text);
    let id = service_accounts(&server, &root, &org).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = format!("/orgs/{org}/service-accounts/{id}");
    let token = post_form(
        &server,
        &reader,
        &format!("{base}/tokens"),
        &[
            ("name", "t"),
            ("permissions", "org.read"),
            ("expires_in_days", "1"),
        ],
    )
    .await;
    assert_eq!(token.status, 403);
    let delete = post_form(
        &server,
        &reader,
        &format!("{base}/delete"),
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(delete.status, 403);
    let accounts = service_accounts(&server, &root, &org).await;
    assert_eq!(accounts.len(), 1);
    assert!(accounts[0]["tokens"].as_array().unwrap().is_empty());
    let page = server
        .get(&reader, &format!("/orgs/{org}/service-accounts"))
        .await;
    assert!(page.text.contains("robot") && page.text.contains("analyst"));
    assert!(!page.text.contains(&format!("{base}/delete")));
    server.stop().await;
}

#[tokio::test]
async fn a_service_account_token_made_in_the_ui_works_until_the_account_is_deleted() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Fleet").await;
    let page_path = format!("/orgs/{org}/service-accounts");

    let page = server.get(&root, &page_path).await;
    assert!(page.text.contains("id=\"create-service-account\""));
    // The role select never offers owner; asking for it anyway is refused.
    assert!(!page.text.contains("<option value=\"owner\""));
    let owner = post_form(
        &server,
        &root,
        &page_path,
        &[("name", "boss"), ("role", "owner")],
    )
    .await;
    assert_eq!(owner.status, 409, "{}", owner.text);
    assert!(owner.text.contains("cannot be an owner"));
    assert!(owner.text.contains("value=\"boss\""));

    let made = post_form(
        &server,
        &root,
        &page_path,
        &[("name", "deploy <bot>"), ("role", "analyst")],
    )
    .await;
    assert_eq!(made.status, 303, "{}", made.text);
    assert_eq!(
        made.header("location"),
        Some(format!("{page_path}?notice=service-account-created").as_str())
    );
    let account = service_accounts(&server, &root, &org).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = format!("{page_path}/{account}");
    let page = server.get(&root, &page_path).await;
    assert!(page.text.contains("deploy &#60;bot&#62;") && !page.text.contains("<bot>"));
    assert!(page.text.contains(&format!("action=\"{base}/tokens\"")));

    // Beyond the account's role: shown again with the error.
    let too_much = post_form(
        &server,
        &root,
        &format!("{base}/tokens"),
        &[
            ("name", "admin-ish"),
            ("permissions", "members.manage"),
            ("expires_in_days", "7"),
        ],
    )
    .await;
    assert_eq!(too_much.status, 422, "{}", too_much.text);
    assert!(too_much.text.contains("does not grant them all"));
    assert!(too_much.text.contains("value=\"admin-ish\""));

    let created = post_form(
        &server,
        &root,
        &format!("{base}/tokens"),
        &[
            ("name", "pipeline"),
            ("permissions", "devices.read"),
            ("expires_in_days", "7"),
        ],
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert!(created.text.contains("It will not be shown again"));
    let secret = shown_secret(&created);
    assert_eq!(devices_with(&server, &secret, &org).await, 200);
    let page = server.get(&root, &page_path).await;
    assert!(!page.text.contains(&secret));
    assert!(page.text.contains("pipeline") && page.text.contains("from 127.0.0.1"));
    // The creator sees it on their profile page too, as the account's.
    let profile = server.get(&root, "/profile/tokens").await;
    assert!(
        profile
            .text
            .contains("for service account deploy &#60;bot&#62;")
    );

    // A second token, revoked through the account's page.
    let second = post_form(
        &server,
        &root,
        &format!("{base}/tokens"),
        &[
            ("name", "spare"),
            ("permissions", "org.read"),
            ("expires_in_days", "1"),
        ],
    )
    .await;
    let spare = shown_secret(&second);
    let tokens = service_accounts(&server, &root, &org).await[0]["tokens"].clone();
    let spare_id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "spare")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Only through its own account's path: root's own token is not there.
    let own = post_form(
        &server,
        &root,
        "/profile/tokens",
        &[
            ("name", "mine"),
            ("org_id", &org),
            ("permissions", "org.read"),
            ("expires_in_days", "1"),
        ],
    )
    .await;
    let mine = shown_secret(&own);
    let mine_id = api_tokens(&server, &root)
        .await
        .iter()
        .find(|t| t["name"] == "mine")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = post_form(
        &server,
        &root,
        &format!("{base}/tokens/{mine_id}/revoke"),
        &[],
    )
    .await;
    assert_eq!(wrong.status, 404, "{}", wrong.text);
    assert_eq!(devices_with(&server, &mine, &org).await, 403);
    let revoked = post_form(
        &server,
        &root,
        &format!("{base}/tokens/{spare_id}/revoke"),
        &[],
    )
    .await;
    assert_eq!(revoked.status, 303, "{}", revoked.text);
    assert_eq!(devices_with(&server, &spare, &org).await, 401);
    assert_eq!(devices_with(&server, &secret, &org).await, 200);

    // Deleting needs the box ticked; then the account and its tokens are gone.
    let unconfirmed = post_form(&server, &root, &format!("{base}/delete"), &[]).await;
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.text);
    assert_eq!(devices_with(&server, &secret, &org).await, 200);
    let deleted = post_form(
        &server,
        &root,
        &format!("{base}/delete"),
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(deleted.status, 303, "{}", deleted.text);
    assert_eq!(
        deleted.header("location"),
        Some(format!("{page_path}?notice=service-account-deleted").as_str())
    );
    assert_eq!(devices_with(&server, &secret, &org).await, 401);
    assert!(service_accounts(&server, &root, &org).await.is_empty());
    let page = server
        .get(
            &root,
            &format!("{page_path}?notice=service-account-deleted"),
        )
        .await;
    assert!(page.text.contains("Service account deleted"));
    assert!(page.text.contains("No service accounts."));
    server.stop().await;
}
