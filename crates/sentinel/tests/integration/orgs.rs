//! Organizations, members and users: the rules, and attempts to break tenancy.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Engine, PASSWORD, TestServer, on_both_engines};

fn emails_and_roles(members: &Value) -> Vec<(String, String)> {
    members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

on_both_engines!(
    a_member_of_one_organization_cannot_reach_another,
    |server: TestServer| async move {
        let admin = server.setup_admin().await;
        let org_a = server.create_org(&admin, "Alpha School").await;
        let org_b = server.create_org(&admin, "Beta Corp").await;
        let alice = server
            .member(&admin, &org_a, "alice@example.org", "owner")
            .await;
        server.create_user(&admin, "bob@example.org").await;
        let bob_id = server.get(&admin, "/api/v1/users").await.json()["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == "bob@example.org")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        server
            .add_member(&admin, &org_b, "bob@example.org", "readonly")
            .await;
        let before = server
            .get(&admin, &format!("/api/v1/orgs/{org_b}/members"))
            .await
            .text;

        let reads = [
            format!("/api/v1/orgs/{org_b}"),
            format!("/api/v1/orgs/{org_b}/members"),
        ];
        for path in &reads {
            let resp = server.get(&alice, path).await;
            assert_eq!(resp.status, 404, "{path}");
            assert!(
                !resp.text.contains("Beta") && !resp.text.contains("bob@"),
                "{path} leaked: {}",
                resp.text
            );
        }
        let attempts = [
            (
                Method::POST,
                format!("/api/v1/orgs/{org_b}/members"),
                json!({"email": "alice@example.org", "role": "owner"}),
            ),
            (
                Method::PATCH,
                format!("/api/v1/orgs/{org_b}/members/{bob_id}"),
                json!({"role": "owner"}),
            ),
            (
                Method::DELETE,
                format!("/api/v1/orgs/{org_b}/members/{bob_id}"),
                json!({}),
            ),
            (
                Method::PATCH,
                format!("/api/v1/orgs/{org_b}"),
                json!({"name": "Pwned"}),
            ),
            (Method::DELETE, format!("/api/v1/orgs/{org_b}"), json!({})),
            // B's member id through A's path: the member is not in A.
            (
                Method::PATCH,
                format!("/api/v1/orgs/{org_a}/members/{bob_id}"),
                json!({"role": "admin"}),
            ),
            (
                Method::DELETE,
                format!("/api/v1/orgs/{org_a}/members/{bob_id}"),
                json!({}),
            ),
        ];
        for (method, path, body) in attempts {
            let resp = server.call(&alice, method.clone(), &path, body).await;
            assert!(
                matches!(resp.status, 403 | 404),
                "{method} {path}: {} {}",
                resp.status,
                resp.text
            );
        }
        let ui = server.get(&alice, &format!("/orgs/{org_b}/members")).await;
        assert_eq!(ui.status, 404);
        assert!(!ui.text.contains("bob@"));
        assert_eq!(
            server
                .get(&admin, &format!("/api/v1/orgs/{org_b}/members"))
                .await
                .text,
            before,
            "B is unchanged"
        );
        let listed = server.get(&alice, "/api/v1/orgs").await.json();
        let names: Vec<&str> = listed["organizations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Alpha School"]);
        server
    }
);

#[tokio::test]
async fn organization_creation_is_for_platform_admins_unless_self_service_is_on() {
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    server.create_user(&admin, "carol@example.org").await;
    let carol = server.login("carol@example.org", PASSWORD).await.unwrap();
    let denied = server
        .call(
            &carol,
            Method::POST,
            "/api/v1/orgs",
            json!({"name": "Mine"}),
        )
        .await;
    assert_eq!(denied.status, 403);
    server.stop().await;

    let open = TestServer::start_on(Engine::Sqlite, |s| s.allow_org_self_service = Some(true))
        .await
        .unwrap();
    let admin = open.setup_admin().await;
    open.create_user(&admin, "carol@example.org").await;
    let carol = open.login("carol@example.org", PASSWORD).await.unwrap();
    let created = open
        .call(
            &carol,
            Method::POST,
            "/api/v1/orgs",
            json!({"name": "Mine"}),
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.json()["role"], "owner");
    assert_eq!(created.json()["slug"], "mine");
    open.stop().await;
}

on_both_engines!(
    members_are_managed_by_the_rules,
    |server: TestServer| async move {
        let admin = server.setup_admin().await;
        let org = server.create_org(&admin, "Acme").await;
        let manager = server
            .member(&admin, &org, "manager@example.org", "admin")
            .await;
        let members = format!("/api/v1/orgs/{org}/members");
        for email in ["dave@example.org", "erin@example.org"] {
            server.create_user(&admin, email).await;
        }

        let bad_email = server
            .call(
                &manager,
                Method::POST,
                &members,
                json!({"email": "not-an-address", "role": "readonly"}),
            )
            .await;
        assert_eq!(bad_email.status, 422);
        let unknown = server
            .call(
                &manager,
                Method::POST,
                &members,
                json!({"email": "ghost@example.org", "role": "readonly"}),
            )
            .await;
        assert_eq!(unknown.status, 404);
        let both = server
            .call(
                &manager,
                Method::POST,
                &members,
                json!({"email": "dave@example.org", "user_id": admin.user_id, "role": "readonly"}),
            )
            .await;
        assert_eq!(both.status, 400);
        let bad_role = server
            .call(
                &manager,
                Method::POST,
                &members,
                json!({"email": "dave@example.org", "role": "root"}),
            )
            .await;
        assert_eq!(bad_role.status, 400);

        let owner_grant = server
            .call(
                &manager,
                Method::POST,
                &members,
                json!({"email": "dave@example.org", "role": "owner"}),
            )
            .await;
        assert_eq!(owner_grant.status, 403, "an admin cannot make owners");
        let added = server
            .call(
                &manager,
                Method::POST,
                &members,
                json!({"email": "dave@example.org", "role": "analyst"}),
            )
            .await;
        assert_eq!(added.status, 201);
        let dave = added.json()["user_id"].as_str().unwrap().to_owned();
        let twice = server
            .call(
                &manager,
                Method::POST,
                &members,
                json!({"email": "dave@example.org", "role": "analyst"}),
            )
            .await;
        assert_eq!(twice.status, 409);
        let by_id = server
            .call(
                &manager,
                Method::POST,
                &members,
                json!({"user_id": dave, "role": "readonly"}),
            )
            .await;
        assert_eq!(by_id.status, 409);

        let promoted = server
            .call(
                &manager,
                Method::PATCH,
                &format!("{members}/{dave}"),
                json!({"role": "admin"}),
            )
            .await;
        assert_eq!(promoted.status, 200);
        assert_eq!(promoted.json()["role"], "admin");
        let root = &admin.user_id;
        let demote_owner = server
            .call(
                &manager,
                Method::PATCH,
                &format!("{members}/{root}"),
                json!({"role": "readonly"}),
            )
            .await;
        assert_eq!(demote_owner.status, 403, "an admin cannot touch an owner");
        let remove_owner = server
            .call(
                &manager,
                Method::DELETE,
                &format!("{members}/{root}"),
                json!({}),
            )
            .await;
        assert_eq!(remove_owner.status, 403);

        let last = server
            .call(
                &admin,
                Method::PATCH,
                &format!("{members}/{root}"),
                json!({"role": "admin"}),
            )
            .await;
        assert_eq!(
            last.status, 409,
            "the last owner cannot step down: {}",
            last.text
        );
        let last = server
            .call(
                &admin,
                Method::DELETE,
                &format!("{members}/{root}"),
                json!({}),
            )
            .await;
        assert_eq!(last.status, 409);
        let ghost = server
            .call(
                &admin,
                Method::PATCH,
                &format!("{members}/00000000-0000-4000-8000-000000000000"),
                json!({"role": "admin"}),
            )
            .await;
        assert_eq!(ghost.status, 404);

        let handover = server
            .call(
                &admin,
                Method::PATCH,
                &format!("{members}/{dave}"),
                json!({"role": "owner"}),
            )
            .await;
        assert_eq!(handover.status, 200);
        let step_down = server
            .call(
                &admin,
                Method::PATCH,
                &format!("{members}/{root}"),
                json!({"role": "readonly"}),
            )
            .await;
        assert_eq!(step_down.status, 200, "another owner exists now");
        let removed = server
            .call(
                &manager,
                Method::DELETE,
                &format!("{members}/{root}"),
                json!({}),
            )
            .await;
        assert_eq!(removed.status, 204);

        let dave_session = server.login("dave@example.org", PASSWORD).await.unwrap();
        let list = server.get(&dave_session, &members).await.json();
        assert_eq!(
            emails_and_roles(&list),
            [
                ("dave@example.org".to_owned(), "owner".to_owned()),
                ("manager@example.org".to_owned(), "admin".to_owned()),
            ]
        );
        server
    }
);

#[tokio::test]
async fn platform_admins_manage_organizations_but_see_no_tenant_data() {
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    let other_admin_id = server.create_user(&admin, "ops@example.org").await;
    let promoted = server
        .call(
            &admin,
            Method::PATCH,
            &format!("/api/v1/users/{other_admin_id}"),
            json!({"platform_admin": true}),
        )
        .await;
    assert_eq!(promoted.status, 200);
    let ops = server.login("ops@example.org", PASSWORD).await.unwrap();
    let org = server.create_org(&admin, "Tenant").await;

    let all = server.get(&ops, "/api/v1/orgs").await.json();
    let row = &all["organizations"][0];
    assert_eq!(row["name"], "Tenant");
    assert!(row.get("role").is_none(), "not a member");
    assert_eq!(
        server
            .get(&ops, &format!("/api/v1/orgs/{org}/members"))
            .await
            .status,
        404
    );
    assert_eq!(
        server
            .get(&ops, &format!("/api/v1/orgs/{org}"))
            .await
            .status,
        404
    );

    let deleted = server
        .call(
            &ops,
            Method::DELETE,
            &format!("/api/v1/orgs/{org}"),
            json!({}),
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        server
            .get(&admin, &format!("/api/v1/orgs/{org}"))
            .await
            .status,
        404
    );
    assert_eq!(
        server
            .call(
                &ops,
                Method::DELETE,
                &format!("/api/v1/orgs/{org}"),
                json!({})
            )
            .await
            .status,
        404
    );
    let tenant_file = server
        .config
        .data_dir
        .join("orgs")
        .join(format!("{org}.db"));
    assert!(!tenant_file.exists(), "the tenant database is gone");
    server.stop().await;
}

#[tokio::test]
async fn user_administration_keeps_its_invariants() {
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    let users = "/api/v1/users";
    let weak = server
        .call(
            &admin,
            Method::POST,
            users,
            json!({"email": "x@example.org", "name": "X", "password": "x@example.org1"}),
        )
        .await;
    assert_eq!(weak.status, 422);
    let unknown_field = server
        .call(
            &admin,
            Method::POST,
            users,
            json!({"email": "x@example.org", "name": "X", "password": PASSWORD, "role": "god"}),
        )
        .await;
    assert_eq!(unknown_field.status, 400);
    let id = server.create_user(&admin, "frank@example.org").await;
    let dup = server
        .call(
            &admin,
            Method::POST,
            users,
            json!({"email": "FRANK@example.org", "name": "F", "password": PASSWORD}),
        )
        .await;
    assert_eq!(dup.status, 409);
    let me = &admin.user_id;
    assert_eq!(
        server
            .call(&admin, Method::DELETE, &format!("{users}/{me}"), json!({}))
            .await
            .status,
        409
    );
    let demote = server
        .call(
            &admin,
            Method::PATCH,
            &format!("{users}/{me}"),
            json!({"platform_admin": false}),
        )
        .await;
    assert_eq!(demote.status, 409, "the last platform admin stays");

    let org = server.create_org(&admin, "Frank's").await;
    server
        .add_member(&admin, &org, "frank@example.org", "owner")
        .await;
    let members = format!("/api/v1/orgs/{org}/members/{me}");
    assert_eq!(
        server
            .call(&admin, Method::DELETE, &members, json!({}))
            .await
            .status,
        204
    );
    let last_owner = server
        .call(&admin, Method::DELETE, &format!("{users}/{id}"), json!({}))
        .await;
    assert_eq!(
        last_owner.status, 409,
        "frank is the last owner of an organization"
    );

    let frank = server.login("frank@example.org", PASSWORD).await.unwrap();
    assert_eq!(
        server.get(&frank, users).await.status,
        403,
        "not a platform admin"
    );
    let escalate = server
        .call(
            &frank,
            Method::PATCH,
            &format!("{users}/{id}"),
            json!({"platform_admin": true}),
        )
        .await;
    assert_eq!(escalate.status, 403);
    server.stop().await;
}

#[tokio::test]
async fn deleting_a_user_ends_their_sessions() {
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    let id = server.create_user(&admin, "gone@example.org").await;
    let gone = server.login("gone@example.org", PASSWORD).await.unwrap();
    assert_eq!(server.get(&gone, "/api/v1/me").await.status, 200);
    assert_eq!(
        server
            .call(
                &admin,
                Method::DELETE,
                &format!("/api/v1/users/{id}"),
                json!({})
            )
            .await
            .status,
        204
    );
    assert_eq!(server.get(&gone, "/api/v1/me").await.status, 401);
    assert_eq!(
        server.try_login("gone@example.org", PASSWORD).await.status,
        401
    );
    server.stop().await;
}

#[tokio::test]
async fn hostile_names_are_stored_as_text_and_escaped_in_pages() {
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    let org = server
        .create_org(&admin, "<script>alert('x')</script>")
        .await;
    let page = server.get(&admin, &format!("/orgs/{org}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.text.contains("<script>alert"), "{}", page.text);
    assert!(
        page.text
            .contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;")
            || page.text.contains("&#60;script&#62;")
    );
    let api = server
        .get(&admin, &format!("/api/v1/orgs/{org}"))
        .await
        .json();
    assert_eq!(api["name"], "<script>alert('x')</script>");
    let control = server
        .call(
            &admin,
            Method::POST,
            "/api/v1/orgs",
            json!({"name": "Acme\n[INFO] forged"}),
        )
        .await;
    assert_eq!(control.status, 422);
    let long = server
        .call(
            &admin,
            Method::POST,
            "/api/v1/orgs",
            json!({"name": "x".repeat(101)}),
        )
        .await;
    assert_eq!(long.status, 422);
    server.stop().await;
}
