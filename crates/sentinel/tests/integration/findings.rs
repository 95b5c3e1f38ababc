//! Vulnerability detection end to end: feeds imported through the API and the
//! real `sentinel feeds import`, devices' inventories matched into findings
//! (with the false positives other tools are known for), findings read,
//! grouped, filtered and exported, signed reports checked by the real
//! `sentinel report verify`, and the attacks.

use std::process::Command;

use reqwest::Method;
use sentinel_protocol::inventory::{Inventory, Package, PackageManager};
use serde_json::{Value, json};

use crate::support::{Agent, Resp, Session, TestServer, eventually, on_both_engines};

/// An OSV record for Debian `package`, one entry per `(release, events)`.
fn osv(id: &str, modified: &str, package: &str, entries: &[(&str, Value)]) -> Value {
    json!({
        "id": id,
        "modified": modified,
        "upstream": [id.trim_start_matches("DEBIAN-")],
        "summary": format!("{package} is vulnerable"),
        "affected": entries.iter().map(|(release, events)| json!({
            "package": {"ecosystem": release, "name": package},
            "ranges": [{"type": "ECOSYSTEM", "events": events}],
            "ecosystem_specific": {"urgency": "high"},
        })).collect::<Vec<_>>(),
    })
}

fn fixed_in(version: &str) -> Value {
    json!([{"introduced": "0"}, {"fixed": version}])
}

fn unfixed() -> Value {
    json!([{"introduced": "0"}])
}

/// The feed every test starts from, as an OSV JSON array.
fn feed() -> Value {
    Value::Array(vec![
        // The binary packages openssh-server and openssh-client come from openssh.
        osv(
            "DEBIAN-CVE-2024-6387",
            "2024-07-01T00:00:00Z",
            "openssh",
            &[("Debian:12", fixed_in("1:9.2p1-2+deb12u3"))],
        ),
        // bsdutils has epoch 1 and a binNMU; its source util-linux is 2.38.1-5.
        osv(
            "DEBIAN-CVE-2024-28085",
            "2024-04-01T00:00:00Z",
            "util-linux",
            &[("Debian:12", fixed_in("2.38.1-5+deb12u1"))],
        ),
        // Fixed in Debian 12 below what is installed, unfixed in Debian 11.
        osv(
            "DEBIAN-CVE-2023-0001",
            "2024-01-01T00:00:00Z",
            "bash",
            &[
                ("Debian:11", unfixed()),
                ("Debian:12", fixed_in("5.2.15-2")),
            ],
        ),
        // The installed ~deb12u2 backport is the fix.
        osv(
            "DEBIAN-CVE-2023-5678",
            "2024-01-01T00:00:00Z",
            "openssl",
            &[("Debian:12", fixed_in("3.0.11-1~deb12u2"))],
        ),
        // An epoch makes 1:1.0 newer than 2.0.
        osv(
            "DEBIAN-CVE-2023-0002",
            "2024-01-01T00:00:00Z",
            "tzdata",
            &[("Debian:12", fixed_in("2.0-1"))],
        ),
        // Withdrawn: never reported.
        {
            let mut record = osv(
                "DEBIAN-CVE-2023-0003",
                "2024-01-01T00:00:00Z",
                "bash",
                &[("Debian:12", unfixed())],
            );
            record["withdrawn"] = json!("2024-01-02T00:00:00Z");
            record
        },
        // Unfixed: reported without a fixed version; "unimportant" is low.
        {
            let mut record = osv(
                "DEBIAN-CVE-2024-0004",
                "2024-01-01T00:00:00Z",
                "zlib",
                &[("Debian:12", unfixed())],
            );
            record["affected"][0]["ecosystem_specific"]["urgency"] = json!("unimportant");
            record
        },
    ])
}

fn kev_catalog(version: &str, released: &str, cves: &[(&str, &str)]) -> Value {
    json!({
        "title": "CISA Catalog of Known Exploited Vulnerabilities",
        "catalogVersion": version,
        "dateReleased": released,
        "count": cves.len(),
        "vulnerabilities": cves.iter().map(|(cve, due)| json!({
            "cveID": cve, "vendorProject": "OpenBSD", "product": "OpenSSH",
            "vulnerabilityName": "regreSSHion", "dateAdded": "2024-07-01",
            "shortDescription": "A signal handler race.", "requiredAction": "Apply updates.",
            "dueDate": due, "knownRansomwareCampaignUse": "Unknown", "notes": ""
        })).collect::<Vec<_>>(),
    })
}

fn package(name: &str, version: &str, source: Option<(&str, &str)>) -> Package {
    Package {
        manager: PackageManager::Dpkg,
        name: name.into(),
        version: version.into(),
        arch: Some("amd64".into()),
        source_name: source.map(|(n, _)| n.into()),
        source_version: source.map(|(_, v)| v.into()),
    }
}

fn inventory(openssh: &str) -> Vec<Package> {
    vec![
        package("openssh-server", openssh, Some(("openssh", openssh))),
        package("openssh-client", openssh, Some(("openssh", openssh))),
        package(
            "bsdutils",
            "1:2.38.1-5+b1",
            Some(("util-linux", "2.38.1-5")),
        ),
        package("bash", "5.2.15-2+b2", Some(("bash", "5.2.15-2"))),
        package(
            "openssl",
            "3.0.11-1~deb12u2",
            Some(("openssl", "3.0.11-1~deb12u2")),
        ),
        package("tzdata", "1:1.0-1", Some(("tzdata", "1:1.0-1"))),
        package(
            "zlib1g",
            "1:1.2.13.dfsg-1",
            Some(("zlib", "1:1.2.13.dfsg-1")),
        ),
    ]
}

async fn send_inventory(server: &TestServer, agent: &Agent, packages: Vec<Package>) {
    let inventory = Inventory::new(packages);
    let resp = TestServer::send(
        server
            .as_agent(agent, Method::POST, "/api/v1/agent/inventory")
            .json(&json!({"digest": inventory.digest(), "packages": inventory.packages()})),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
}

async fn upload(server: &TestServer, session: &Session, name: &str, body: Vec<u8>) -> Resp {
    TestServer::send(
        server
            .as_user(session, Method::POST, &format!("/api/v1/feeds?name={name}"))
            .header("content-type", "application/octet-stream")
            .body(body),
    )
    .await
}

/// The (advisory, package) pairs of a device's findings, sorted.
async fn pairs(
    server: &TestServer,
    session: &Session,
    org: &str,
    device: &str,
) -> Vec<(String, String)> {
    let resp = server
        .get(
            session,
            &format!("/api/v1/orgs/{org}/devices/{device}/findings"),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let mut pairs: Vec<(String, String)> = resp.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["advisory_id"].as_str().unwrap().to_owned(),
                f["package"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

fn expected(openssh_fixed: bool) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("DEBIAN-CVE-2024-0004", "zlib"),
        ("DEBIAN-CVE-2024-28085", "util-linux"),
    ];
    if !openssh_fixed {
        pairs.push(("DEBIAN-CVE-2024-6387", "openssh"));
    }
    let mut pairs: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(a, p)| (a.to_owned(), p.to_owned()))
        .collect();
    pairs.sort();
    pairs
}

on_both_engines!(
    inventories_are_matched_without_the_usual_false_positives,
    |server: TestServer| async move {
        let root = server.setup_admin().await;
        let org = server.create_org(&root, "Acme").await;
        let agent = server.enroll(&root, &org, "web-1").await;
        send_inventory(&server, &agent, inventory("1:9.2p1-2+deb12u2")).await;

        let resp = upload(
            &server,
            &root,
            "debian.json",
            serde_json::to_vec(&feed()).unwrap(),
        )
        .await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let body = resp.json();
        assert_eq!(body["outcome"], "imported");
        assert_eq!(body["import"]["added"], 6, "{body}");
        assert_eq!(body["import"]["withdrawn"], 1, "{body}");
        let kev = kev_catalog(
            "2024.07.02",
            "2024-07-02T12:00:00.000Z",
            &[("CVE-2024-6387", "2024-07-22")],
        );
        let resp = upload(
            &server,
            &root,
            "kev.json",
            serde_json::to_vec(&kev).unwrap(),
        )
        .await;
        assert_eq!(resp.status, 200, "{}", resp.text);

        let device = agent.device_id.clone();
        let device_findings = format!("/api/v1/orgs/{org}/devices/{device}/findings");
        // Matched against both imports: the KEV flag is there too.
        eventually("the findings", || async {
            let kev: Vec<Value> = server.get(&root, &device_findings).await.json()["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["kev"] == true)
                .cloned()
                .collect();
            (pairs(&server, &root, &org, &device).await == expected(false) && kev.len() == 1)
                .then_some(())
        })
        .await;

        // What a finding says: the source package, the binaries built from
        // it, the fix, the CVE, the severity, and the KEV dates.
        let all = server
            .get(
                &root,
                &format!("/api/v1/orgs/{org}/devices/{device}/findings"),
            )
            .await
            .json();
        let openssh = all["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["package"] == "openssh")
            .unwrap()
            .clone();
        assert_eq!(
            openssh["binaries"],
            json!(["openssh-client", "openssh-server"])
        );
        assert_eq!(openssh["installed_version"], "1:9.2p1-2+deb12u2");
        assert_eq!(openssh["fixed_version"], "1:9.2p1-2+deb12u3");
        assert_eq!(openssh["aliases"][0], "CVE-2024-6387");
        assert_eq!(openssh["severity"], "high");
        assert_eq!(openssh["release"], "Debian:12");
        assert_eq!(openssh["hostname"], "web-1");
        assert_eq!(openssh["kev"], true);
        assert_eq!(openssh["kev_due_date"], "2024-07-22");
        let zlib = all["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["package"] == "zlib")
            .unwrap()
            .clone();
        assert!(zlib["fixed_version"].is_null());
        assert_eq!(zlib["kev"], false);

        // The KEV view: overdue by CISA's due date.
        let kev_view = server
            .get(&root, &format!("/api/v1/orgs/{org}/findings/kev"))
            .await;
        assert_eq!(kev_view.status, 200, "{}", kev_view.text);
        let kev_view = kev_view.json();
        assert_eq!(kev_view["vulnerabilities"].as_array().unwrap().len(), 1);
        assert_eq!(
            kev_view["vulnerabilities"][0]["advisory_id"],
            "DEBIAN-CVE-2024-6387"
        );
        assert_eq!(kev_view["vulnerabilities"][0]["overdue"], true);
        assert_eq!(kev_view["vulnerabilities"][0]["devices"], 1);

        // A fixed inventory is matched again: the openssh finding goes.
        send_inventory(&server, &agent, inventory("1:9.2p1-2+deb12u3")).await;
        eventually("the re-match after the upgrade", || async {
            (pairs(&server, &root, &org, &device).await == expected(true)).then_some(())
        })
        .await;

        // A feed change is matched again: withdrawing the zlib advisory removes it.
        let mut withdrawn = osv(
            "DEBIAN-CVE-2024-0004",
            "2024-02-01T00:00:00Z",
            "zlib",
            &[("Debian:12", unfixed())],
        );
        withdrawn["withdrawn"] = json!("2024-02-01T00:00:00Z");
        let resp = upload(
            &server,
            &root,
            "withdrawal.json",
            serde_json::to_vec(&withdrawn).unwrap(),
        )
        .await;
        assert_eq!(resp.json()["import"]["withdrawn"], 1, "{}", resp.text);
        eventually("the re-match after the withdrawal", || async {
            let found = pairs(&server, &root, &org, &device).await;
            (found == vec![("DEBIAN-CVE-2024-28085".to_owned(), "util-linux".to_owned())])
                .then_some(())
        })
        .await;
        server
    }
);

#[tokio::test]
async fn findings_are_filtered_grouped_exported_and_kept_to_their_organization() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Acme").await;
    let other_org = server.create_org(&root, "Other").await;
    let web = server.enroll(&root, &org, "web-1").await;
    let db = server.enroll(&root, &org, "db-1").await;
    let stranger = server.enroll(&root, &other_org, "elsewhere").await;
    for agent in [&web, &db, &stranger] {
        send_inventory(&server, agent, inventory("1:9.2p1-2+deb12u2")).await;
    }
    let resp = upload(
        &server,
        &root,
        "debian.json",
        serde_json::to_vec(&feed()).unwrap(),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let kev = kev_catalog(
        "2024.07.02",
        "2024-07-02T12:00:00Z",
        &[("CVE-2024-6387", "2024-07-22")],
    );
    upload(
        &server,
        &root,
        "kev.json",
        serde_json::to_vec(&kev).unwrap(),
    )
    .await;
    let list = format!("/api/v1/orgs/{org}/findings");
    eventually("both devices' findings, KEV flags included", || async {
        let page = server.get(&root, &list).await.json();
        let findings = page["findings"].as_array().cloned().unwrap_or_default();
        let kev = findings.iter().filter(|f| f["kev"] == true).count();
        (findings.len() == 6 && kev == 2).then_some(())
    })
    .await;

    // Grouped by advisory, with affected-device counts.
    let groups = server
        .get(&root, &format!("{list}/advisories"))
        .await
        .json();
    let openssh = groups["advisories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["advisory_id"] == "DEBIAN-CVE-2024-6387")
        .unwrap()
        .clone();
    assert_eq!(openssh["devices"], 2);
    assert_eq!(openssh["kev"], true);
    let packages = server.get(&root, &format!("{list}/packages")).await.json();
    assert_eq!(packages["packages"].as_array().unwrap().len(), 3);

    // Filters and paging.
    let count = |query: &str| {
        let path = format!("{list}?{query}");
        let query = query.to_owned();
        let server = &server;
        let root = &root;
        async move {
            let resp = server.get(root, &path).await;
            assert_eq!(resp.status, 200, "{query}: {}", resp.text);
            resp.json()["findings"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("kev=true").await, 2);
    assert_eq!(count("kev=false").await, 4);
    assert_eq!(count(&format!("device_id={}", web.device_id)).await, 3);
    assert_eq!(count("q=cve-2024-28085").await, 2);
    assert_eq!(count("q=DB-1").await, 3);
    assert_eq!(count("severity=high").await, 4);
    assert_eq!(count("severity=low").await, 2);
    assert_eq!(count("severity=critical").await, 0);
    let first = server.get(&root, &format!("{list}?limit=4")).await.json();
    assert_eq!(first["findings"].as_array().unwrap().len(), 4);
    let next = first["next"].as_str().unwrap();
    let second = server
        .get(&root, &format!("{list}?limit=4&after={next}"))
        .await
        .json();
    assert_eq!(second["findings"].as_array().unwrap().len(), 2);
    assert!(second["next"].is_null());

    // Bad queries are refused, with nothing listed.
    for query in [
        "kev=maybe",
        "severity=severe",
        "device_id=not-a-uuid",
        "limit=0",
        "limit=100000",
        "after=garbage",
        "nonsense=1",
    ] {
        let resp = server.get(&root, &format!("{list}?{query}")).await;
        assert_eq!(resp.status, 400, "{query}: {}", resp.text);
    }
    let long = "x".repeat(201);
    assert_eq!(
        server.get(&root, &format!("{list}?q={long}")).await.status,
        400
    );

    // Another organization's device is not found through this one, and the
    // other organization's findings never show here.
    let resp = server
        .get(
            &root,
            &format!("/api/v1/orgs/{org}/devices/{}/findings", stranger.device_id),
        )
        .await;
    assert_eq!(resp.status, 404);
    assert_eq!(count(&format!("device_id={}", stranger.device_id)).await, 0);
    assert_eq!(count("q=elsewhere").await, 0);
    let outsider = server
        .member(&root, &other_org, "outsider@example.org", "admin")
        .await;
    assert_eq!(server.get(&outsider, &list).await.status, 404);

    // Exports: CSV with formulas defused, NDJSON, both audited.
    let csv = server
        .get(&root, &format!("{list}/export?format=csv&kev=true"))
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.text.starts_with("device_id,hostname,advisory_id"));
    assert_eq!(csv.text.lines().count(), 3, "{}", csv.text);
    let ndjson = server.get(&root, &format!("{list}/export")).await;
    assert_eq!(ndjson.text.lines().count(), 6);
    assert_eq!(
        server
            .get(&root, &format!("{list}/export?format=xml"))
            .await
            .status,
        400
    );
    let audit = server
        .get(
            &root,
            &format!("/api/v1/orgs/{org}/audit?action=findings.exported"),
        )
        .await
        .json();
    assert_eq!(audit["entries"].as_array().unwrap().len(), 2, "{audit}");

    // Readonly members see findings but make no reports; only platform
    // admins import feeds.
    let reader = server
        .member(&root, &org, "reader@example.org", "readonly")
        .await;
    assert_eq!(server.get(&reader, &list).await.status, 200);
    let resp = server
        .call(
            &reader,
            Method::POST,
            &format!("/api/v1/orgs/{org}/reports"),
            json!({"kind": "kev_remediation", "format": "json"}),
        )
        .await;
    assert_eq!(resp.status, 403);
    let resp = upload(&server, &reader, "x.json", b"[]".to_vec()).await;
    assert_eq!(resp.status, 403);
    assert_eq!(server.get(&reader, "/api/v1/feeds").await.status, 403);
    server.stop().await;
}

#[tokio::test]
async fn feed_files_are_checked_whole_and_importing_twice_changes_nothing() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let body = serde_json::to_vec(&feed()).unwrap();
    let first = upload(&server, &root, "debian.json", body.clone()).await;
    assert_eq!(first.json()["outcome"], "imported");
    let again = upload(&server, &root, "renamed.json", body).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["outcome"], "already_imported");
    let feeds = server.get(&root, "/api/v1/feeds").await.json();
    assert_eq!(feeds["imports"].as_array().unwrap().len(), 1, "{feeds}");
    let generation = feeds["generation"].clone();

    // A newer record replaces the older; an older copy changes nothing.
    let newer = osv(
        "DEBIAN-CVE-2024-0004",
        "2024-03-01T00:00:00Z",
        "zlib",
        &[("Debian:12", unfixed())],
    );
    let resp = upload(
        &server,
        &root,
        "newer.json",
        serde_json::to_vec(&newer).unwrap(),
    )
    .await;
    assert_eq!(resp.json()["import"]["updated"], 1, "{}", resp.text);
    let older = osv(
        "DEBIAN-CVE-2024-0004",
        "2023-03-01T00:00:00Z",
        "zlib",
        &[("Debian:12", fixed_in("1"))],
    );
    let resp = upload(
        &server,
        &root,
        "older.json",
        serde_json::to_vec(&older).unwrap(),
    )
    .await;
    assert_eq!(resp.json()["import"]["unchanged"], 1, "{}", resp.text);
    assert_eq!(resp.json()["import"]["updated"], 0, "{}", resp.text);

    // Malformed records are reported and skipped; the rest are imported.
    let mixed = json!([
        osv("DEBIAN-CVE-2024-0005", "2024-01-01T00:00:00Z", "curl", &[("Debian:12", unfixed())]),
        {"id": "NO-MODIFIED"},
        {"id": "BAD-TIME", "modified": "yesterday"},
        "not a record",
    ]);
    let resp = upload(
        &server,
        &root,
        "mixed.json",
        serde_json::to_vec(&mixed).unwrap(),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let body = resp.json();
    assert_eq!(body["import"]["added"], 1, "{body}");
    assert_eq!(body["import"]["malformed"], 3, "{body}");
    assert_eq!(body["malformed"].as_array().unwrap().len(), 3);

    // What is no feed at all is refused and recorded nowhere.
    for (name, bytes) in [
        ("x.json", b"{not json".to_vec()),
        ("x.json", b"42".to_vec()),
        ("x.zip", b"PK\x03\x04broken".to_vec()),
    ] {
        let resp = upload(&server, &root, name, bytes).await;
        assert_eq!(resp.status, 400, "{}", resp.text);
    }
    // An older KEV catalog than the one held changes nothing.
    let kev = kev_catalog(
        "2024.07.02",
        "2024-07-02T12:00:00Z",
        &[("CVE-2024-6387", "2024-07-22")],
    );
    upload(
        &server,
        &root,
        "kev.json",
        serde_json::to_vec(&kev).unwrap(),
    )
    .await;
    let old_kev = kev_catalog("2024.01.01", "2024-01-01T12:00:00Z", &[]);
    let resp = upload(
        &server,
        &root,
        "old-kev.json",
        serde_json::to_vec(&old_kev).unwrap(),
    )
    .await;
    assert_eq!(resp.json()["outcome"], "older_catalog", "{}", resp.text);

    let feeds = server.get(&root, "/api/v1/feeds").await.json();
    assert_eq!(feeds["imports"].as_array().unwrap().len(), 5, "{feeds}");
    assert_ne!(feeds["generation"], generation);
    let audit = server
        .get(&root, "/api/v1/audit?action=feed.imported")
        .await
        .json();
    assert_eq!(audit["entries"].as_array().unwrap().len(), 5, "{audit}");
    server.stop().await;
}

fn sentinel(args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sentinel"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("SENTINEL_")) {
        command.env_remove(key);
    }
    command.args(args).output().unwrap()
}

#[tokio::test]
async fn the_cli_imports_feeds_into_a_running_server_and_verifies_signed_reports() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Acme <b>Corp</b>").await;
    let agent = server.enroll(&root, &org, "web-1").await;
    send_inventory(&server, &agent, inventory("1:9.2p1-2+deb12u2")).await;

    // `sentinel feeds import` on the running server's data directory: a
    // directory of records and the KEV catalog.
    let files = tempfile::tempdir().unwrap();
    let records = files.path().join("osv");
    std::fs::create_dir_all(records.join("nested")).unwrap();
    for (n, record) in feed().as_array().unwrap().iter().enumerate() {
        std::fs::write(
            records.join("nested").join(format!("{n}.json")),
            serde_json::to_vec(record).unwrap(),
        )
        .unwrap();
    }
    std::fs::write(records.join("broken.json"), b"{\"id\": 1}").unwrap();
    let kev_file = files.path().join("known_exploited_vulnerabilities.json");
    let kev = kev_catalog(
        "2024.07.02",
        "2024-07-02T12:00:00Z",
        &[("CVE-2024-6387", "2024-07-22")],
    );
    std::fs::write(&kev_file, serde_json::to_vec(&kev).unwrap()).unwrap();
    let data_dir = server.config.data_dir.display().to_string();
    let out = sentinel(&[
        "feeds",
        "import",
        "--data-dir",
        &data_dir,
        records.to_str().unwrap(),
        kev_file.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("6 added, 0 updated, 1 withdrawn, 0 unchanged, 1 malformed"),
        "{stdout}"
    );
    assert!(stderr.contains("broken.json"), "{stderr}");
    let again = sentinel(&[
        "feeds",
        "import",
        "--data-dir",
        &data_dir,
        kev_file.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already imported"));
    let missing = sentinel(&[
        "feeds",
        "import",
        "--data-dir",
        &data_dir,
        "/nonexistent/feed.json",
    ]);
    assert_eq!(missing.status.code(), Some(1));

    // The running server picks the import up by itself.
    let device = agent.device_id.clone();
    let kev_path = format!("/api/v1/orgs/{org}/findings?kev=true");
    eventually("the findings from the CLI's import", || async {
        let kev = server.get(&root, &kev_path).await.json()["findings"]
            .as_array()
            .map(Vec::len);
        (pairs(&server, &root, &org, &device).await == expected(false) && kev == Some(1))
            .then_some(())
    })
    .await;

    // Signed reports, checked by the real binary.
    let key = sentinel(&["audit", "public-key", "--data-dir", &data_dir]);
    let key = String::from_utf8_lossy(&key.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    for (kind, format) in [
        ("kev_remediation", "json"),
        ("kev_remediation", "html"),
        ("vulnerability_summary", "json"),
        ("vulnerability_summary", "html"),
    ] {
        let resp = server
            .call(
                &root,
                Method::POST,
                &format!("/api/v1/orgs/{org}/reports"),
                json!({"kind": kind, "format": format}),
            )
            .await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        if format == "html" {
            assert!(resp.text.contains("Acme &lt;b&gt;Corp&lt;/b&gt;"));
            assert!(!resp.text.contains("<b>Corp"));
        } else {
            let report = &resp.json()["report"];
            assert_eq!(report["kind"], kind);
            if kind == "kev_remediation" {
                assert_eq!(report["body"]["totals"]["overdue"], 1);
                assert_eq!(
                    report["body"]["vulnerabilities"][0]["devices"][0]["hostname"],
                    "web-1"
                );
            } else {
                assert_eq!(report["body"]["totals"]["findings"], 3);
            }
        }
        let file = files.path().join(format!("{kind}.{format}"));
        std::fs::write(&file, &resp.text).unwrap();
        let verified = sentinel(&[
            "report",
            "verify",
            file.to_str().unwrap(),
            "--public-key",
            &key,
        ]);
        assert!(
            verified.status.success(),
            "{}",
            String::from_utf8_lossy(&verified.stdout)
        );
        let by_data_dir = sentinel(&[
            "report",
            "verify",
            file.to_str().unwrap(),
            "--data-dir",
            &data_dir,
        ]);
        assert!(by_data_dir.status.success());

        let tampered = resp.text.replacen("openssh", "openssl", 1);
        assert_ne!(tampered, resp.text, "{kind} {format} names the package");
        std::fs::write(&file, tampered).unwrap();
        let refused = sentinel(&[
            "report",
            "verify",
            file.to_str().unwrap(),
            "--public-key",
            &key,
        ]);
        assert_eq!(refused.status.code(), Some(1), "{kind} {format}");
        let other_key = "ab".repeat(32);
        std::fs::write(&file, &resp.text).unwrap();
        let wrong_key = sentinel(&[
            "report",
            "verify",
            file.to_str().unwrap(),
            "--public-key",
            &other_key,
        ]);
        assert_ne!(wrong_key.status.code(), Some(0));
    }
    let audit = server
        .get(
            &root,
            &format!("/api/v1/orgs/{org}/audit?action=report.created"),
        )
        .await
        .json();
    assert_eq!(audit["entries"].as_array().unwrap().len(), 4);
    // Bad report requests change nothing.
    for body in [
        json!({"kind": "everything", "format": "json"}),
        json!({"kind": "kev_remediation", "format": "pdf"}),
        json!({"kind": "kev_remediation"}),
        json!({"kind": "kev_remediation", "format": "json", "extra": 1}),
    ] {
        let resp = server
            .call(
                &root,
                Method::POST,
                &format!("/api/v1/orgs/{org}/reports"),
                body,
            )
            .await;
        assert!(resp.status == 400 || resp.status == 422, "{}", resp.text);
    }
    let audit = server
        .get(
            &root,
            &format!("/api/v1/orgs/{org}/audit?action=report.created"),
        )
        .await
        .json();
    assert_eq!(audit["entries"].as_array().unwrap().len(), 4);
    server.stop().await;
}

/// A multipart upload as the feeds page's form sends it: the CSRF token as a
/// field before the file, no header.
fn multipart(csrf: &str, file_name: &str, file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----sentinelformboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"feed\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn the_pages_upload_feeds_and_show_findings_by_advisory_package_kev_and_device() {
    let server = TestServer::start().await;
    let root = server.setup_admin().await;
    let org = server.create_org(&root, "Acme").await;
    let agent = server.enroll(&root, &org, "web-1").await;
    send_inventory(&server, &agent, inventory("1:9.2p1-2+deb12u2")).await;

    let browser_upload = |csrf: String, name: &'static str, file: Vec<u8>| {
        let (content_type, body) = multipart(&csrf, name, &file);
        TestServer::send(
            server
                .raw(Method::POST, "/admin/feeds")
                .header("cookie", &root.cookie)
                .header("origin", &server.origin)
                .header("content-type", content_type)
                .body(body),
        )
    };
    // A forged form (wrong token) imports nothing.
    let forged = browser_upload(
        "forged".into(),
        "debian.json",
        serde_json::to_vec(&feed()).unwrap(),
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.text);
    let feeds = server.get(&root, "/api/v1/feeds").await.json();
    assert!(feeds["imports"].as_array().unwrap().is_empty());

    let page = browser_upload(
        root.csrf.clone(),
        "debian.json",
        serde_json::to_vec(&feed()).unwrap(),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("6 added"), "{}", page.text);
    let kev = kev_catalog(
        "2024.07.02",
        "2024-07-02T12:00:00Z",
        &[("CVE-2024-6387", "2024-07-22")],
    );
    let page = browser_upload(
        root.csrf.clone(),
        "kev.json",
        serde_json::to_vec(&kev).unwrap(),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.text);
    let junk = browser_upload(root.csrf.clone(), "junk.json", b"{not json".to_vec()).await;
    assert_eq!(junk.status, 400);
    assert!(junk.text.contains("not JSON"), "{}", junk.text);

    let kev_path = format!("/api/v1/orgs/{org}/findings?kev=true");
    eventually("the findings", || async {
        let kev = server.get(&root, &kev_path).await.json()["findings"]
            .as_array()
            .map(Vec::len);
        (kev == Some(1)).then_some(())
    })
    .await;
    let feeds_page = server.get(&root, "/admin/feeds").await;
    assert!(feeds_page.text.contains("kev.json") && feeds_page.text.contains("debian.json"));

    let base = format!("/orgs/{org}/findings");
    let advisories = server.get(&root, &base).await;
    assert_eq!(advisories.status, 200);
    assert!(
        advisories
            .text
            .contains("data-advisory=\"DEBIAN-CVE-2024-6387\"")
    );
    let packages = server.get(&root, &format!("{base}?view=packages")).await;
    assert!(packages.text.contains("data-package=\"util-linux\""));
    let kev_page = server.get(&root, &format!("{base}?view=kev")).await;
    assert!(kev_page.text.contains("overdue by"), "{}", kev_page.text);
    let list = server
        .get(&root, &format!("{base}?view=list&severity=low"))
        .await;
    assert!(list.text.contains("zlib") && !list.text.contains("openssh-server"));
    assert_eq!(
        server
            .get(&root, &format!("{base}?view=bogus"))
            .await
            .status,
        400
    );
    assert_eq!(
        server
            .get(&root, &format!("{base}?view=list&kev=perhaps"))
            .await
            .status,
        400
    );
    let device = server
        .get(&root, &format!("/orgs/{org}/devices/{}", agent.device_id))
        .await;
    assert!(device.text.contains("id=\"device-findings\""));
    assert!(
        device
            .text
            .contains("data-advisory=\"DEBIAN-CVE-2024-28085\"")
    );

    // The report form downloads a signed report.
    let report = crate::support::post_form(
        &server,
        &root,
        &format!("/orgs/{org}/reports"),
        &[("kind", "kev_remediation"), ("format", "html")],
    )
    .await;
    assert_eq!(report.status, 201, "{}", report.text);
    assert!(report.text.contains("sentinel-report-signature"));
    assert!(
        report
            .header("content-disposition")
            .unwrap()
            .contains("kev_remediation")
    );
    server.stop().await;
}
