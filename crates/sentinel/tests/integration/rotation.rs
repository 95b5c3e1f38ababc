//! Rotating the master key: every sealed secret moves to the new key and
//! keeps working; the old key opens nothing afterwards.

use reqwest::Method;
use serde_json::json;

use crate::support::{TestServer, on_both_engines};
use crate::two_factor::{enrol, mfa_token, second_step};

on_both_engines!(
    rotating_the_master_key_reseals_every_secret_and_keeps_them_working,
    |mut server: TestServer| async move {
        let root = server.setup_admin().await;
        let org = server.create_org(&root, "Fleet").await;
        let token = server.enrollment_token(&root, &org, json!({})).await;
        let enrolled = server.try_enroll(&token, "host").await.json();
        let device = enrolled["device_id"].as_str().unwrap().to_owned();
        let command_key = enrolled["command_key"].as_str().unwrap().to_owned();
        let authenticator = enrol(&server, &root).await;
        let data = server.config.data_dir.clone();
        let old_key = std::fs::read(data.join("master.key")).unwrap();

        server.shut_down().await;
        let rotation = sentinel::rotation::rotate_master_key(&server.config, &server.clock)
            .await
            .unwrap();
        // The TOTP secret and the organization's command-signing key.
        assert_eq!(
            (rotation.resealed, rotation.already),
            (2, 0),
            "{rotation:?}"
        );
        assert_ne!(rotation.old_key_id, rotation.new_key_id);
        assert_ne!(std::fs::read(data.join("master.key")).unwrap(), old_key);
        assert!(!data.join("master.key.next").exists());
        assert!(!data.join("master.key.previous").exists());
        server.start_again().await;

        // Two-factor login still works: the secret opens under the new key.
        let pending = mfa_token(&server, "root@example.org").await;
        let resp = second_step(&server, &pending, &authenticator.code(&server, 0)).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let root = crate::support::session_from(&resp);
        // Commands are still signed with the same key the agent pinned.
        let queued = server
            .call(
                &root,
                Method::POST,
                &format!("/api/v1/orgs/{org}/devices/{device}/commands"),
                json!({"type": "refresh_inventory"}),
            )
            .await;
        assert_eq!(queued.status, 201, "{}", queued.text);
        let token = server.enrollment_token(&root, &org, json!({})).await;
        let again = server.try_enroll(&token, "host-2").await.json();
        assert_eq!(again["command_key"].as_str(), Some(command_key.as_str()));
        let log = server
            .get(&root, "/api/v1/audit?action=platform.master_key_rotated")
            .await
            .json();
        assert_eq!(log["entries"][0]["detail"]["resealed"], 2, "{log}");

        // A second rotation moves everything again, from the key the first
        // one made.
        server.shut_down().await;
        let second = sentinel::rotation::rotate_master_key(&server.config, &server.clock)
            .await
            .unwrap();
        assert_eq!((second.resealed, second.already), (2, 0));
        assert_eq!(second.old_key_id, rotation.new_key_id);
        server.start_again().await;
        server
    }
);

#[tokio::test]
async fn an_interrupted_rotation_leaves_every_secret_readable_and_finishes_when_run_again() {
    let mut server = TestServer::start().await;
    let root = server.setup_admin().await;
    let authenticator = enrol(&server, &root).await;
    let data = server.config.data_dir.clone();
    server.shut_down().await;
    // A run that died after writing its new key: the server starts with both.
    std::fs::copy(data.join("master.key"), data.join("master.key.keep")).unwrap();
    let first = sentinel::rotation::rotate_master_key(&server.config, &server.clock)
        .await
        .unwrap();
    // Put the old key back as current, the new one as "next": the state of a
    // crash between re-sealing and switching.
    std::fs::rename(data.join("master.key"), data.join("master.key.next")).unwrap();
    std::fs::rename(data.join("master.key.keep"), data.join("master.key")).unwrap();
    server.start_again().await;
    let pending = mfa_token(&server, "root@example.org").await;
    let resp = second_step(&server, &pending, &authenticator.code(&server, 0)).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    server.shut_down().await;
    let finished = sentinel::rotation::rotate_master_key(&server.config, &server.clock)
        .await
        .unwrap();
    assert_eq!((finished.resealed, finished.already), (0, 1));
    assert_eq!(finished.new_key_id, first.new_key_id);
    assert!(!data.join("master.key.next").exists());
    server.start_again().await;
    server.stop().await;
}

#[tokio::test]
async fn the_master_key_is_not_rotated_under_a_running_server() {
    let server = TestServer::start().await;
    server.setup_admin().await;
    let key = std::fs::read(server.config.data_dir.join("master.key")).unwrap();
    let refused = sentinel::rotation::rotate_master_key(&server.config, &server.clock).await;
    let error = refused.unwrap_err().to_string();
    assert!(error.contains("in use"), "{error}");
    assert_eq!(
        std::fs::read(server.config.data_dir.join("master.key")).unwrap(),
        key
    );
    assert!(!server.config.data_dir.join("master.key.next").exists());
    server.stop().await;
}
