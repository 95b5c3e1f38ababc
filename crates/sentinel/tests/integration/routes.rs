//! Walks the whole route table: nothing outside the public allow-list answers an
//! anonymous caller, no mutating organization route admits `readonly`, no
//! organization route admits a non-member, and the OpenAPI document describes
//! exactly the API routes.

use std::collections::BTreeSet;

use reqwest::Method;
use sentinel_core::{Permission, TenantRole};
use sentinel_http::access::Access;
use sentinel_http::{Surface, route_table};
use serde_json::json;

use crate::support::{Session, TestServer};

/// The only routes anyone may call without logging in.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/setup"),
    ("POST", "/api/v1/auth/login"),
    // The second step of a login: useless without the pending token.
    ("POST", "/api/v1/auth/login/mfa"),
    ("POST", "/api/v1/agent/enroll"),
    ("GET", "/"),
    ("GET", "/static/sentinel.css"),
    ("GET", "/static/live.js"),
    ("GET", "/setup"),
    ("POST", "/setup"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/login/mfa"),
];

fn concrete(path: &str, org: &str, user: &str) -> String {
    path.replace("{org_id}", org).replace("{user_id}", user)
}

#[test]
fn the_public_allow_list_is_exactly_what_the_table_declares_public() {
    let declared: BTreeSet<(String, String)> = route_table()
        .iter()
        .filter(|r| r.access == Access::Public)
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    let allowed: BTreeSet<(String, String)> = PUBLIC
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        declared, allowed,
        "a route became public without being added to the allow-list"
    );
}

#[test]
fn no_mutating_organization_route_uses_a_permission_readonly_holds() {
    for route in route_table() {
        if let Access::Org(permission) = route.access
            && route.mutates()
        {
            assert!(!TenantRole::Readonly.grants(permission), "{route:?}");
        }
        if route.path.contains("{org_id}") && !matches!(route.access, Access::Org(_)) {
            assert_eq!(
                route.access,
                Access::PlatformAdmin,
                "{route:?}: an organization path needs a guard"
            );
        }
    }
    assert!(TenantRole::Readonly.grants(Permission::OrgRead));
}

#[tokio::test]
async fn every_non_public_route_refuses_anonymous_callers() {
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    let org = server.create_org(&admin, "Target").await;
    let user = admin.user_id.clone();
    for route in route_table()
        .into_iter()
        .filter(|r| r.access != Access::Public)
    {
        let path = concrete(route.path, &org, &user);
        let request = server
            .raw(route.method.clone(), &path)
            .header("origin", &server.origin)
            .header("content-type", "application/json")
            .body("{}");
        let resp = TestServer::send(request).await;
        match (route.surface, route.method == Method::GET) {
            (Surface::Ui, true) => {
                assert_eq!(resp.status, 303, "{route:?}");
                assert!(
                    resp.header("location").unwrap().starts_with("/login?next="),
                    "{route:?}"
                );
            }
            _ => assert_eq!(resp.status, 401, "{route:?}: {}", resp.text),
        }
        // A forged or stale cookie is no better than none.
        let forged = server
            .raw(route.method.clone(), &path)
            .header(
                "cookie",
                format!("__Host-sentinel_session={}", "A".repeat(43)),
            )
            .header("origin", &server.origin);
        let resp = TestServer::send(forged).await;
        assert!(
            matches!(resp.status, 303 | 401),
            "{route:?} with a forged cookie: {}",
            resp.status
        );
    }
    server.stop().await;
}

async fn snapshot(server: &TestServer, admin: &Session, org: &str) -> (String, String, String) {
    let org_json = server.get(admin, &format!("/api/v1/orgs/{org}")).await.text;
    let members = server
        .get(admin, &format!("/api/v1/orgs/{org}/members"))
        .await
        .text;
    let users = server.get(admin, "/api/v1/users").await.text;
    (org_json, members, users)
}

#[tokio::test]
async fn readonly_members_are_refused_every_mutation() {
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    let org = server.create_org(&admin, "Guarded").await;
    let reader = server
        .member(&admin, &org, "reader@example.org", "readonly")
        .await;
    let victim = server
        .member(&admin, &org, "victim@example.org", "analyst")
        .await;
    let before = snapshot(&server, &admin, &org).await;
    let mut checked = 0;
    for route in route_table() {
        if !route.mutates() || !route.path.contains("{org_id}") {
            continue;
        }
        let path = concrete(route.path, &org, &victim.user_id);
        let body = json!({"name": "Renamed", "role": "owner", "email": "reader@example.org"});
        let resp = match route.surface {
            Surface::Api => {
                server
                    .call(&reader, route.method.clone(), &path, body)
                    .await
            }
            Surface::Ui => {
                let form = [
                    ("csrf_token", reader.csrf.as_str()),
                    ("name", "Renamed"),
                    ("role", "owner"),
                    ("email", "reader@example.org"),
                    ("confirm", "guarded"),
                ];
                TestServer::send(
                    server
                        .raw(route.method.clone(), &path)
                        .header("cookie", &reader.cookie)
                        .header("origin", &server.origin)
                        .form(&form),
                )
                .await
            }
        };
        assert_eq!(resp.status, 403, "{route:?}: {}", resp.text);
        checked += 1;
    }
    assert!(
        checked >= 8,
        "only {checked} mutating organization routes were checked"
    );
    assert_eq!(
        snapshot(&server, &admin, &org).await,
        before,
        "a readonly member changed something"
    );
    server.stop().await;
}

#[tokio::test]
async fn organization_routes_do_not_admit_non_members() {
    let server = TestServer::start().await;
    let admin = server.setup_admin().await;
    let org = server.create_org(&admin, "Private").await;
    server.create_user(&admin, "outsider@example.org").await;
    let outsider = server
        .login("outsider@example.org", crate::support::PASSWORD)
        .await
        .unwrap();
    for route in route_table() {
        let Access::Org(_) = route.access else {
            continue;
        };
        let path = concrete(route.path, &org, &admin.user_id);
        let resp = match route.surface {
            Surface::Api => {
                server
                    .call(&outsider, route.method.clone(), &path, json!({}))
                    .await
            }
            Surface::Ui => {
                TestServer::send(
                    server
                        .as_user(&outsider, route.method.clone(), &path)
                        .form(&[("csrf_token", outsider.csrf.as_str())]),
                )
                .await
            }
        };
        assert_eq!(resp.status, 404, "{route:?}: {}", resp.text);
        assert!(
            !resp.text.contains("Private"),
            "{route:?} leaked the organization's name"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_api_routes() {
    let server = TestServer::start().await;
    let resp = TestServer::send(server.raw(Method::GET, "/api/v1/openapi.json")).await;
    assert_eq!(resp.status, 200);
    let doc = resp.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = route_table()
        .iter()
        .filter(|r| r.surface == Surface::Api)
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, routed);
    assert!(doc["components"]["securitySchemes"]["session"].is_object());
    server.stop().await;
}
