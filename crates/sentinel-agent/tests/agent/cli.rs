//! The command line and enrollment, through the real binary against the stub server:
//! where the token may come from, exit codes, and what enrollment leaves on disk.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use clap::Parser;
use sentinel_agent::cli::Cli;
use sentinel_agent::state::StateDir;
use tokio::io::AsyncWriteExt;

use crate::mode;
use crate::stub::{ENROLLMENT_TOKEN, RunningAgent, Stub, agent_command, quick_settings};

#[test]
fn the_token_cannot_be_given_as_an_argument() {
    for flag in ["--token", "--enrollment-token", "--token-value"] {
        let parsed = Cli::try_parse_from([
            "sentinel-agent",
            "enroll",
            "--server",
            "https://sentinel.example.org",
            "--state-dir",
            "/tmp/x",
            flag,
            "set_abc",
        ]);
        assert!(parsed.is_err(), "{flag} was accepted");
    }
    let help = Cli::try_parse_from(["sentinel-agent", "enroll", "--help"])
        .unwrap_err()
        .to_string();
    assert!(help.contains("--token-file"), "{help}");
}

#[test]
fn inventory_sources_are_exclusive() {
    let run = |extra: &[&str]| {
        let mut args = vec!["sentinel-agent", "run", "--state-dir", "/tmp/x"];
        args.extend(extra);
        Cli::try_parse_from(args)
    };
    assert!(run(&["--dpkg-status", "a"]).is_ok());
    assert!(run(&["--dpkg-status", "a", "--apk-installed", "b"]).is_err());
    assert!(run(&["--rpm-query-output", "a", "--apk-installed", "b"]).is_err());
}

#[test]
fn the_transport_is_https_unless_mqtt_is_asked_for() {
    use sentinel_agent::cli::CliCommand;
    use sentinel_agent::transport::Protocol;
    use sentinel_agent::transport::mqtt::Address;

    let protocol = |extra: &[&str]| {
        let mut args = vec!["sentinel-agent", "run", "--state-dir", "/tmp/x"];
        args.extend(extra);
        match Cli::try_parse_from(args).map(|cli| cli.command) {
            Ok(CliCommand::Run(run)) => run.protocol(),
            Ok(other) => panic!("{other:?}"),
            Err(error) => Err(error.to_string()),
        }
    };
    assert_eq!(protocol(&[]), Ok(Protocol::Https));
    assert_eq!(protocol(&["--transport", "https"]), Ok(Protocol::Https));
    assert_eq!(protocol(&["--transport", "mqtt"]), Ok(Protocol::Mqtt(None)));
    assert_eq!(
        protocol(&[
            "--transport",
            "mqtt",
            "--mqtt-address",
            "gw.example.org:8884"
        ]),
        Ok(Protocol::Mqtt(Some(Address {
            host: "gw.example.org".into(),
            port: 8884
        })))
    );
    // An address the HTTPS transport would silently ignore is a mistake.
    assert!(protocol(&["--mqtt-address", "gw.example.org:8883"]).is_err());
    for bad in [
        "gw.example.org",
        "gw.example.org:0",
        ":8883",
        "[::1]:8883",
        "gw:x",
    ] {
        assert!(
            protocol(&["--transport", "mqtt", "--mqtt-address", bad]).is_err(),
            "{bad}"
        );
    }
    assert!(protocol(&["--transport", "carrier-pigeon"]).is_err());
    // Without an address, the server's host on the gateway's port.
    assert_eq!(
        Address::of_server("https://sentinel.example.org:8443").unwrap(),
        Address {
            host: "sentinel.example.org".into(),
            port: 8883
        }
    );
}

#[tokio::test]
async fn version_and_usage_errors() {
    let version = agent_command().arg("--version").output().await.unwrap();
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8(version.stdout).unwrap().trim(),
        format!("sentinel-agent {}", env!("CARGO_PKG_VERSION"))
    );
    let dir = tempfile::tempdir().unwrap();
    let with_token = agent_command()
        .args([
            "enroll",
            "--server",
            "https://127.0.0.1:1",
            "--token",
            ENROLLMENT_TOKEN,
        ])
        .arg("--state-dir")
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert_eq!(with_token.status.code(), Some(2));
}

#[tokio::test]
async fn enrollment_reads_the_token_from_stdin_and_leaves_private_state() {
    let stub = Stub::start(quick_settings()).await;
    let parent = tempfile::tempdir().unwrap();
    let state_dir = parent.path().join("state");
    std::fs::create_dir(&state_dir).unwrap();
    std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut child = agent_command()
        .args([
            "enroll",
            "--server",
            &stub.url,
            "--token-file",
            "-",
            "--state-dir",
        ])
        .arg(&state_dir)
        .arg("--ca-cert")
        .arg(stub.ca_file())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("  {ENROLLMENT_TOKEN}\n\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let device_id = stub.record().device_id;
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        device_id.to_string()
    );

    let record = stub.record();
    let request = &record.enrollments[0];
    assert_eq!(request.token, ENROLLMENT_TOKEN, "trimmed");
    assert_eq!(request.agent_version, env!("CARGO_PKG_VERSION"));
    assert!(request.facts.problem().is_none());
    let device_token = record.issued_tokens[0].clone();
    drop(record);
    assert!(
        !stderr.contains(&device_token),
        "the token was logged: {stderr}"
    );

    assert_eq!(
        mode(&state_dir),
        0o700,
        "the existing directory was tightened"
    );
    let dir = StateDir::open_private(&state_dir).unwrap();
    assert_eq!(mode(&dir.state_file()), 0o600);
    assert_eq!(mode(&dir.ca_file()), 0o600);
    assert_eq!(std::fs::read_to_string(dir.ca_file()).unwrap(), stub.ca_pem);
    let state = dir.load().unwrap();
    assert_eq!(state.device_id, device_id);
    assert_eq!(state.server_url, stub.url);
    assert_eq!(state.device_token.expose(), device_token);
    assert_eq!(state.command_key, stub.signer.public_key_hex());
    assert!(state.ca_pinned);
    assert_eq!(state.settings, quick_settings());
}

#[tokio::test]
async fn an_existing_enrollment_is_replaced_only_when_asked() {
    let stub = Stub::start(quick_settings()).await;
    let parent = tempfile::tempdir().unwrap();
    let state_dir = parent.path().join("state");
    assert!(stub.enroll(&state_dir).await.status.success());
    let first = StateDir::open_private(&state_dir).unwrap().load().unwrap();

    let again = stub.enroll(&state_dir).await;
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--re-enroll"));
    assert_eq!(stub.record().enrollments.len(), 1, "nothing was sent");

    let replaced = agent_command()
        .args([
            "enroll",
            "--re-enroll",
            "--server",
            &stub.url,
            "--token-file",
        ])
        .arg(stub.token_file())
        .arg("--state-dir")
        .arg(&state_dir)
        .arg("--ca-cert")
        .arg(stub.ca_file())
        .output()
        .await
        .unwrap();
    assert!(replaced.status.success());
    let second = StateDir::open_private(&state_dir).unwrap().load().unwrap();
    assert_ne!(first.device_token, second.device_token);
}

#[tokio::test]
async fn refusals_and_bad_arguments_have_their_exit_codes() {
    let stub = Stub::start(quick_settings()).await;
    let parent = tempfile::tempdir().unwrap();
    let state_dir = parent.path().join("state");
    let enroll = |server: String, token: &'static str, ca: bool| {
        let token_file = parent.path().join("token");
        std::fs::write(&token_file, token).unwrap();
        let mut command = agent_command();
        command
            .args(["enroll", "--server", &server, "--token-file"])
            .arg(&token_file)
            .arg("--state-dir")
            .arg(&state_dir);
        if ca {
            command.arg("--ca-cert").arg(stub.ca_file());
        }
        command.output()
    };
    // The server refuses a wrong token: 1, and nothing is saved.
    let refused = enroll(stub.url.clone(), "set_wrong", true).await.unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("403"));
    assert!(!state_dir.join("state.json").exists());
    // Plain HTTP, or something that is not an enrollment token: 2, nothing sent.
    let http = stub.url.replace("https://", "http://");
    assert_eq!(
        enroll(http, ENROLLMENT_TOKEN, true)
            .await
            .unwrap()
            .status
            .code(),
        Some(2)
    );
    let not_a_token = enroll(stub.url.clone(), "sdt_device-token", true)
        .await
        .unwrap();
    assert_eq!(not_a_token.status.code(), Some(2));
    // Without the pinned CA the stub's certificate is not trusted: 2.
    let untrusted = enroll(stub.url.clone(), ENROLLMENT_TOKEN, false)
        .await
        .unwrap();
    assert_eq!(untrusted.status.code(), Some(2));
    assert!(stub.record().enrollments.is_empty());
}

#[tokio::test]
async fn run_refuses_a_state_file_others_can_read() {
    let stub = Stub::start(quick_settings()).await;
    let parent = tempfile::tempdir().unwrap();
    let state_dir = parent.path().join("state");
    assert!(stub.enroll(&state_dir).await.status.success());
    let state_file = state_dir.join("state.json");
    std::fs::set_permissions(&state_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let agent = RunningAgent::start(&state_dir, None);
    let log = agent.log_path().to_owned();
    let status = agent.wait().await;
    assert_eq!(status.code(), Some(2));
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("accessible by group or others"), "{log}");
    assert!(stub.record().tokens_used.is_empty(), "nothing was sent");
}

#[tokio::test]
async fn run_refuses_a_pinned_server_without_its_ca() {
    let stub = Stub::start(quick_settings()).await;
    let parent = tempfile::tempdir().unwrap();
    let state_dir = parent.path().join("state");
    assert!(stub.enroll(&state_dir).await.status.success());
    std::fs::remove_file(state_dir.join("ca.pem")).unwrap();
    let agent = RunningAgent::start(&state_dir, None);
    let log = agent.log_path().to_owned();
    assert_eq!(agent.wait().await.code(), Some(2));
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("pinned"), "{log}");
    assert!(
        stub.record().tokens_used.is_empty(),
        "no fallback to the public roots"
    );
}
