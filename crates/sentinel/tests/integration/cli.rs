//! The real `sentinel` binary: configuration precedence and errors, refusal to
//! run with exposed secrets, and `sentinel admin create-user`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use sentinel::config::{Config, Settings};

use crate::support::PASSWORD;

fn sentinel(args: &[&str], envs: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sentinel"));
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("SENTINEL_")) {
        command.env_remove(key);
    }
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn flags_beat_environment_beat_file_and_secrets_are_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sentinel.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:7001\"\nsession_idle_timeout = \"10m\"\nhostnames = [\"sentinel.example.org\"]\n").unwrap();
    let data = dir.path().join("data");
    let config = file.to_str().unwrap();
    let db = (
        "SENTINEL_DATABASE_URL",
        "postgres://sentinel:topsecretpw@db.internal/sentinel",
    );
    let env_listen = ("SENTINEL_LISTEN", "127.0.0.1:7002");
    let data_env = ("SENTINEL_DATA_DIR", data.to_str().unwrap());

    let from_file = sentinel(
        &["serve", "--config", config, "--print-config"],
        &[data_env],
        None,
    );
    assert!(from_file.status.success(), "{}", text(&from_file.stderr));
    let printed = text(&from_file.stdout);
    assert!(printed.contains("listen = \"127.0.0.1:7001\""), "{printed}");
    assert!(
        printed.contains("session_idle_timeout = \"10m\""),
        "{printed}"
    );
    assert!(printed.contains("sentinel.example.org"), "{printed}");
    assert!(
        printed.contains("session_lifetime = \"1d\""),
        "defaults are filled in: {printed}"
    );

    let from_env = sentinel(
        &["serve", "--config", config, "--print-config"],
        &[data_env, env_listen, db],
        None,
    );
    let printed = text(&from_env.stdout);
    assert!(printed.contains("listen = \"127.0.0.1:7002\""), "{printed}");
    assert!(
        printed.contains("postgres://sentinel:***@db.internal/sentinel"),
        "{printed}"
    );

    let from_flag = sentinel(
        &[
            "serve",
            "--config",
            config,
            "--listen",
            "127.0.0.1:7003",
            "--print-config",
        ],
        &[data_env, env_listen, db],
        None,
    );
    let printed = text(&from_flag.stdout);
    assert!(printed.contains("listen = \"127.0.0.1:7003\""), "{printed}");
    for output in [&from_file, &from_env, &from_flag] {
        assert!(
            !text(&output.stdout).contains("topsecretpw")
                && !text(&output.stderr).contains("topsecretpw")
        );
    }
    assert!(!data.exists(), "printing the configuration starts nothing");
}

#[test]
fn invalid_configuration_names_the_setting_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let bad_file = dir.path().join("bad.toml");
    std::fs::write(&bad_file, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--listen", "nonsense"], "--listen"),
        (vec!["--config", bad_file.to_str().unwrap()], "lisen"),
        (vec!["--config", "/nonexistent/sentinel.toml"], "config"),
        (
            vec!["--session-idle-timeout", "2h", "--session-lifetime", "1h"],
            "session_lifetime",
        ),
        (
            vec!["--session-idle-timeout", "30"],
            "--session-idle-timeout",
        ),
        (vec!["--behind-proxy"], "trusted_proxies"),
        (
            vec!["--behind-proxy", "--trusted-proxy", "10.0.0.1"],
            "public_url",
        ),
        (vec!["--max-connections", "0"], "max_connections"),
        (vec!["--tls-cert", "/x/cert.pem"], "tls_key"),
        (vec!["--database-url", "mysql://db/x"], "database_url"),
        (
            vec!["--public-url", "http://sentinel.example.org"],
            "public_url",
        ),
        (vec!["--trusted-proxy", "not-a-network"], "--trusted-proxy"),
        (vec!["--log-level", "info,=["], "log_level"),
    ];
    for (flags, setting) in cases {
        let mut args = vec!["serve", "--data-dir", data_arg, "--listen", "127.0.0.1:0"];
        args.extend(flags.iter().copied());
        let out = sentinel(&args, &[], None);
        assert!(!out.status.success(), "{flags:?} was accepted");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(setting),
            "{flags:?}: the error does not name {setting}: {stderr}"
        );
        assert!(!data.exists(), "{flags:?}: something started");
    }
}

#[test]
fn the_server_refuses_an_exposed_master_key_or_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let key = data.join("master.key");
    std::fs::write(&key, "c2VudGluZWwtbWFzdGVyLWtleS1mb3ItdGVzdHMtMDAwMDA=\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let args = [
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    let out = sentinel(&args, &[], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("readable by group or others"),
        "{}",
        text(&out.stderr)
    );
    assert!(!data.join("control.db").exists(), "no store was opened");

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = sentinel(&args, &[], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("chmod 700"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn admin_create_user_reads_the_password_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let create = |email: &str, password: &str| {
        sentinel(
            &[
                "admin",
                "create-user",
                "--data-dir",
                data_arg,
                "--email",
                email,
                "--name",
                "Ops Person",
                "--platform-admin",
            ],
            &[],
            Some(&format!("{password}\n")),
        )
    };
    let weak = create("ops@example.org", "password1234");
    assert!(!weak.status.success());
    assert!(
        text(&weak.stderr).contains("password"),
        "{}",
        text(&weak.stderr)
    );
    let empty = create("ops@example.org", "");
    assert!(!empty.status.success());

    let ok = create("Ops@Example.org", PASSWORD);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("created user"),
        "{}",
        text(&ok.stdout)
    );
    assert!(text(&ok.stdout).contains("ops@example.org"));
    assert!(!text(&ok.stdout).contains(PASSWORD) && !text(&ok.stderr).contains(PASSWORD));
    let again = create("ops@example.org", PASSWORD);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );

    let settings = Settings {
        data_dir: Some(data.clone()),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        mqtt_listen: Some(sentinel::config::MqttListen::Off),
        ..Settings::default()
    };
    let config = Config::from_settings(settings).unwrap();
    let clock = sentinel_core::ManualClock::starting_at(sentinel_core::Clock::now(
        &sentinel_core::SystemClock,
    ));
    let server = sentinel::start(&config, std::sync::Arc::new(clock))
        .await
        .unwrap();
    assert!(
        server.setup_url.is_none(),
        "a user exists, so no setup link"
    );
    let client =
        crate::support::https_client(server.ca_cert_pem.as_deref().unwrap(), server.local_addr);
    let resp = client
        .post(format!(
            "https://localhost:{}/api/v1/auth/login",
            server.local_addr.port()
        ))
        .json(&serde_json::json!({"email": "ops@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["platform_admin"], true);
    server.shutdown().await;
}

#[test]
fn admin_rotate_master_key_needs_a_key_and_reports_the_switch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let rotate = || {
        sentinel(
            &["admin", "rotate-master-key", "--data-dir", data_arg],
            &[],
            None,
        )
    };
    let created = sentinel(
        &[
            "admin",
            "create-user",
            "--data-dir",
            data_arg,
            "--email",
            "ops@example.org",
            "--name",
            "Ops",
        ],
        &[],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let missing = rotate();
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("no key to rotate"),
        "{}",
        text(&missing.stderr)
    );

    let key = data.join("master.key");
    std::fs::write(&key, "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let rotated = rotate();
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    assert!(
        text(&rotated.stdout).contains("master key rotated"),
        "{}",
        text(&rotated.stdout)
    );
    let new = std::fs::read_to_string(&key).unwrap();
    assert_ne!(new.trim(), "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !text(&rotated.stdout).contains(new.trim()) && !text(&rotated.stderr).contains(new.trim())
    );
}
