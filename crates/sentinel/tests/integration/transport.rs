//! HTTPS only (TLS 1.2+, ring), operator-provided certificates, and the explicit
//! plain-HTTP mode behind trusted proxies.

use std::sync::Arc;

use reqwest::Method;
use serde_json::json;

use crate::support::{Engine, PASSWORD, TestServer, cookie_pair, https_client};

#[tokio::test]
async fn only_tls_is_spoken_and_the_certificate_chains_to_the_generated_ca() {
    let server = TestServer::start().await;
    let plain = plain_client()
        .get(format!("http://127.0.0.1:{}/healthz", server.addr.port()))
        .send()
        .await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP was answered"
    );

    let untrusting = plain_client();
    assert!(
        untrusting.get(server.url("/healthz")).send().await.is_err(),
        "an unknown CA must not be trusted"
    );

    let h2 = server.raw(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(h2.status(), 200);
    assert_eq!(
        h2.version(),
        reqwest::Version::HTTP_2,
        "h2 is negotiated by ALPN"
    );
    let response = reqwest::Client::builder()
        .tls_backend_preconfigured(tls12_only(&server.ca_pem))
        .resolve("localhost", server.addr)
        .build()
        .unwrap()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "TLS 1.2 clients are served");
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_11,
        "and HTTP/1.1 without ALPN"
    );
    let by_ip = https_client(&server.ca_pem, server.addr)
        .get(format!("https://127.0.0.1:{}/healthz", server.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(by_ip.status(), 200, "the certificate covers 127.0.0.1");
    server.stop().await;
}

#[tokio::test]
async fn an_http1_request_head_over_16_kib_is_refused_with_431() {
    let server = TestServer::start().await;
    let http1 = reqwest::Client::builder()
        .tls_backend_preconfigured(tls12_only(&server.ca_pem))
        .resolve("localhost", server.addr)
        .http1_only()
        .build()
        .unwrap();
    let with_header = |bytes: usize| {
        http1
            .get(server.url("/healthz"))
            .header("x-padding", "a".repeat(bytes))
            .send()
    };
    let fits = with_header(12 * 1024).await.unwrap();
    assert_eq!(fits.status(), 200);
    assert_eq!(fits.version(), reqwest::Version::HTTP_11);
    let refused = with_header(20 * 1024).await.unwrap();
    assert_eq!(refused.status(), 431);
    // Nothing was left behind: the next connection is served.
    assert_eq!(with_header(0).await.unwrap().status(), 200);
    server.stop().await;
}

/// A client for plain-HTTP requests (reqwest still wants a TLS configuration).
fn plain_client() -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

fn tls12_only(ca_pem: &str) -> rustls::ClientConfig {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[tokio::test]
async fn old_tls_versions_are_refused() {
    let Ok(version) = std::process::Command::new("openssl")
        .arg("version")
        .output()
    else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "openssl is required in CI"
        );
        eprintln!("old_tls_versions_are_refused: skipped (openssl is not installed)");
        return;
    };
    assert!(version.status.success());
    let server = TestServer::start().await;
    let port = server.addr.port().to_string();
    let connect = move |flag: &'static str| {
        let port = port.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("openssl")
                .args([
                    "s_client",
                    "-connect",
                    &format!("127.0.0.1:{port}"),
                    flag,
                    "-servername",
                    "localhost",
                ])
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        })
    };
    let tls11 = connect("-tls1_1").await.unwrap();
    let text = String::from_utf8_lossy(&tls11.stdout).to_string()
        + &String::from_utf8_lossy(&tls11.stderr);
    assert!(
        !tls11.status.success(),
        "a TLS 1.1 handshake succeeded: {text}"
    );
    assert!(
        text.contains("Cipher is (NONE)"),
        "a TLS 1.1 cipher was agreed: {text}"
    );
    let tls12 = connect("-tls1_2").await.unwrap();
    let text = String::from_utf8_lossy(&tls12.stdout).to_string();
    assert!(tls12.status.success(), "TLS 1.2 works: {text}");
    assert!(
        text.contains("Protocol  : TLSv1.2") && !text.contains("Cipher is (NONE)"),
        "TLS 1.2 works: {text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn operator_certificates_replace_the_generated_ones() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.is_ca = rcgen::IsCa::NoCa;
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let server = TestServer::start_on(Engine::Sqlite, |s| {
        s.tls_cert = Some(cert_path.clone());
        s.tls_key = Some(key_path.clone());
    })
    .await
    .unwrap();
    assert!(server.running().ca_cert_pem.is_none());
    let client = https_client(&cert.pem(), server.addr);
    let resp = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        !server.config.data_dir.join("tls").exists(),
        "no CA was generated"
    );
    server.stop().await;
}

#[tokio::test]
async fn plain_http_is_served_only_to_trusted_proxies() {
    let trusted = TestServer::start_on(Engine::Sqlite, |s| {
        s.behind_proxy = Some(true);
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.public_url = Some("https://sentinel.example.org".into());
    })
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", trusted.addr.port());
    let setup_url = trusted.running().setup_url.clone().unwrap();
    assert!(
        setup_url.starts_with("https://sentinel.example.org/setup?token="),
        "{setup_url}"
    );
    let client = plain_client();
    let token = setup_url.split("token=").nth(1).unwrap();
    let setup = client
        .post(format!("{base}/api/v1/setup"))
        .header("x-forwarded-for", "203.0.113.50")
        .json(&json!({"token": token, "name": "Root", "email": "root@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(setup.status(), 201);
    let login = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "root@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert!(
        login.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Secure"),
        "the browser side is HTTPS"
    );
    let cookie = cookie_pair(login.headers());
    let csrf = login.json::<serde_json::Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let create = |origin: &'static str| {
        client
            .post(format!("{base}/api/v1/orgs"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("origin", origin)
            .json(&json!({"name": "Proxied"}))
            .send()
    };
    assert_eq!(create("https://evil.example").await.unwrap().status(), 403);
    assert_eq!(
        create("https://sentinel.example.org")
            .await
            .unwrap()
            .status(),
        201,
        "the public origin is ours"
    );
    trusted.stop().await;

    let untrusted = TestServer::start_on(Engine::Sqlite, |s| {
        s.behind_proxy = Some(true);
        s.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
        s.public_url = Some("https://sentinel.example.org".into());
    })
    .await
    .unwrap();
    let refused = client
        .get(format!(
            "http://127.0.0.1:{}/healthz",
            untrusted.addr.port()
        ))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a peer that is not a trusted proxy is not served"
    );
    untrusted.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_until_slots_free_up() {
    let server = TestServer::start_on(Engine::Sqlite, |s| s.max_connections = Some(2))
        .await
        .unwrap();
    // Two clients that connect and then say nothing hold both slots.
    let idle: Vec<std::net::TcpStream> = (0..2)
        .map(|_| std::net::TcpStream::connect(server.addr).unwrap())
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let refused = https_client(&server.ca_pem, server.addr)
        .get(server.url("/healthz"))
        .send()
        .await;
    assert!(refused.is_err(), "a third connection is closed at once");
    drop(idle);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let fresh = https_client(&server.ca_pem, server.addr);
        if let Ok(resp) = fresh.get(server.url("/healthz")).send().await {
            assert_eq!(resp.status(), 200);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slots were not released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.stop().await;
}
