//! Commands through the real binary and the stub server: what runs, what is refused and
//! why (with marker files proving nothing ran), replay across a restart, package
//! managers, concurrency, and the in-agent actions.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use sentinel_agent::replay::ReplayRecord;
use sentinel_protocol::command::{CommandAction, CommandStatus};
use sentinel_protocol::signing::{CommandSigner, Rejection, SignedCommand};
use uuid::Uuid;

use crate::mode;
use crate::stub::{RunningAgent, Stub, quick_settings};

/// A stub, and the binary enrolled with it and running (with `bin` first in its PATH).
async fn running(bin: Option<&Path>) -> (Stub, tempfile::TempDir, RunningAgent) {
    let stub = Stub::start(quick_settings()).await;
    let parent = tempfile::tempdir().unwrap();
    let state_dir = parent.path().join("state");
    let output = stub.enroll(&state_dir).await;
    assert!(output.status.success());
    let agent = RunningAgent::start(&state_dir, bin);
    (stub, parent, agent)
}

#[tokio::test]
async fn a_script_runs_and_its_output_and_exit_code_are_reported() {
    let (stub, parent, agent) = running(None).await;
    let failing = stub.script("echo out; echo err >&2; exit 3", 10);
    let succeeding = stub.script(
        "printf '%s' \"$LANG\"; ls \"$(dirname \"$0\")\" | wc -l",
        10,
    );
    stub.push([stub.sign(&failing), stub.sign(&succeeding)]);

    let report = stub.final_report(failing.id).await;
    assert_eq!(report.status, CommandStatus::Failed);
    assert_eq!(report.exit_code, Some(3));
    assert_eq!(
        (report.stdout.as_str(), report.stderr.as_str()),
        ("out\n", "err\n")
    );
    assert!(!report.output_truncated);
    let (started, finished) = (report.started_at.unwrap(), report.finished_at.unwrap());
    assert!(started <= finished && finished - started < 10);
    let reports = stub.record().reports_on(failing.id).len();
    assert_eq!(reports, 2);
    assert_eq!(
        stub.record().reports_on(failing.id)[0].status,
        CommandStatus::Running,
        "running is reported first"
    );

    let report = stub.final_report(succeeding.id).await;
    assert_eq!(report.status, CommandStatus::Succeeded);
    assert_eq!(report.exit_code, Some(0));
    assert!(report.stdout.starts_with("C.UTF-8"), "{}", report.stdout);

    assert!(agent.stop().await.success());
    let scripts = parent.path().join("state/scripts");
    assert_eq!(mode(&scripts), 0o700);
    assert_eq!(
        std::fs::read_dir(scripts).unwrap().count(),
        0,
        "script files are removed"
    );
}

#[tokio::test]
async fn a_timed_out_script_is_reported_and_its_background_child_killed() {
    let (stub, parent, agent) = running(None).await;
    let pid_file = parent.path().join("pid");
    let command = stub.script(
        &format!("sleep 1000 & echo $! > {}; sleep 1000", pid_file.display()),
        1,
    );
    stub.push([stub.sign(&command)]);
    let report = stub.final_report(command.id).await;
    assert_eq!(report.status, CommandStatus::TimedOut);
    assert_eq!(report.exit_code, None);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
    assert!(
        stat.is_err() || stat.unwrap().contains(") Z"),
        "the background sleep {pid} survived"
    );
    assert!(agent.stop().await.success());
}

#[tokio::test]
async fn commands_run_concurrently() {
    let (stub, _parent, agent) = running(None).await;
    let slow = stub.script("sleep 3; echo slow", 10);
    let quick = stub.script("echo quick", 10);
    stub.push([stub.sign(&slow), stub.sign(&quick)]);
    let report = stub.final_report(quick.id).await;
    assert_eq!(report.stdout, "quick\n");
    {
        let record = stub.record();
        assert_eq!(
            record.reports_on(slow.id).len(),
            1,
            "the slow one is still running"
        );
        assert_eq!(record.reports_on(slow.id)[0].status, CommandStatus::Running);
    }
    assert_eq!(stub.final_report(slow.id).await.stdout, "slow\n");
    assert!(agent.stop().await.success());
}

#[tokio::test]
async fn refused_commands_are_reported_with_their_reason_and_never_run() {
    let (stub, parent, agent) = running(None).await;
    let marker = parent.path().join("marker");
    let touch = format!("touch {}", marker.display());

    let mut for_another_device = stub.script(&touch, 10);
    for_another_device.device_id = Uuid::new_v4();
    let mut expired = stub.script(&touch, 10);
    expired.expires_at = sentinel_agent::clock::unix_now() - 1;
    let foreign_key = CommandSigner::generate().unwrap().0;
    let foreign = stub.script(&touch, 10);
    let genuine = stub.script("true", 10);
    let altered = {
        // The genuine signature over another payload under the same id.
        let mut swapped = stub.script(&touch, 10);
        swapped.id = genuine.id;
        SignedCommand {
            payload: stub.sign(&swapped).payload,
            ..stub.sign(&genuine)
        }
    };
    let bad_package = stub.command(CommandAction::InstallPackage {
        name: "-oAPT::Update::Pre-Invoke=touch".into(),
    });
    let cases = [
        (
            stub.sign(&for_another_device),
            Rejection::WrongDevice.to_string(),
        ),
        (stub.sign(&expired), Rejection::Expired.to_string()),
        (
            foreign_key.sign(&foreign).unwrap(),
            Rejection::BadSignature.to_string(),
        ),
        (altered, Rejection::BadSignature.to_string()),
        (
            stub.sign(&bad_package),
            "the command is invalid: ".to_owned(),
        ),
    ];
    let ids: Vec<Uuid> = cases.iter().map(|(signed, _)| signed.id).collect();
    stub.push(cases.iter().map(|(signed, _)| signed.clone()));
    for (signed, reason) in &cases {
        let report = stub.final_report(signed.id).await;
        assert_eq!(report.status, CommandStatus::Rejected);
        assert!(
            report
                .reason
                .as_deref()
                .unwrap()
                .starts_with(reason.as_str()),
            "{report:?} is not {reason}"
        );
        assert_eq!(
            stub.record().reports_on(signed.id).len(),
            1,
            "reported once"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!marker.exists(), "a refused command ran");

    // The same marker script, properly signed, does run: the test would have seen it.
    let valid = stub.script(&touch, 10);
    stub.push([stub.sign(&valid)]);
    assert_eq!(
        stub.final_report(valid.id).await.status,
        CommandStatus::Succeeded
    );
    assert!(marker.exists());
    assert!(agent.stop().await.success());
    let replay = ReplayRecord::load(&parent.path().join("state/replay.json")).unwrap();
    assert!(
        ids.iter().all(|id| !replay.contains(*id)),
        "refused ids are not recorded"
    );
}

#[tokio::test]
async fn a_replayed_command_is_refused_and_runs_once_even_across_a_restart() {
    let (stub, parent, agent) = running(None).await;
    let state_dir = parent.path().join("state");
    let marker = parent.path().join("runs");
    let command = stub.script(&format!("echo ran >> {}", marker.display()), 10);
    let signed = stub.sign(&command);
    stub.push([signed.clone()]);
    assert_eq!(
        stub.final_report(command.id).await.status,
        CommandStatus::Succeeded
    );

    // Handed out again (the server may do so): refused, not run.
    stub.push([signed.clone()]);
    let replayed = stub
        .wait_for("the replay's rejection", |record| {
            record
                .reports_on(command.id)
                .into_iter()
                .find(|report| report.status == CommandStatus::Rejected)
                .cloned()
        })
        .await;
    assert_eq!(replayed.reason, Some(Rejection::Replayed.to_string()));
    assert!(agent.stop().await.success());
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");

    // The record is on disk, private, and holds the id.
    let replay_file = state_dir.join("replay.json");
    assert_eq!(mode(&replay_file), 0o600);
    assert!(
        ReplayRecord::load(&replay_file)
            .unwrap()
            .contains(command.id)
    );

    // After a restart, still refused.
    let agent = RunningAgent::start(&state_dir, None);
    stub.push([signed]);
    stub.wait_for("the second replay's rejection", |record| {
        let rejected = record
            .reports_on(command.id)
            .into_iter()
            .filter(|report| report.status == CommandStatus::Rejected)
            .count();
        (rejected == 2).then_some(())
    })
    .await;
    assert!(agent.stop().await.success());
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "ran\n",
        "ran once"
    );
}

#[tokio::test]
async fn packages_are_installed_with_the_exact_arguments() {
    let bin = tempfile::tempdir().unwrap();
    let args_file = bin.path().join("args");
    let fake = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" >> {args}\necho \"DEBIAN_FRONTEND=$DEBIAN_FRONTEND\" >> {args}\necho installed\n",
        args = args_file.display()
    );
    let apt_get = bin.path().join("apt-get");
    std::fs::write(&apt_get, fake).unwrap();
    std::fs::set_permissions(&apt_get, std::fs::Permissions::from_mode(0o755)).unwrap();

    let (stub, _parent, agent) = running(Some(bin.path())).await;
    let install = stub.command(CommandAction::InstallPackage {
        name: "openssl".into(),
    });
    stub.push([stub.sign(&install)]);
    let report = stub.final_report(install.id).await;
    assert_eq!(report.status, CommandStatus::Succeeded, "{report:?}");
    assert_eq!(report.stdout, "installed\n");
    let remove = stub.command(CommandAction::RemovePackage { name: "g++".into() });
    stub.push([stub.sign(&remove)]);
    assert_eq!(
        stub.final_report(remove.id).await.status,
        CommandStatus::Succeeded
    );
    assert!(agent.stop().await.success());
    assert_eq!(
        std::fs::read_to_string(&args_file).unwrap(),
        "install\n-y\n--\nopenssl\nDEBIAN_FRONTEND=noninteractive\n\
         remove\n-y\n--\ng++\nDEBIAN_FRONTEND=noninteractive\n"
    );
}

#[tokio::test]
async fn refresh_inventory_and_diagnostics_run_in_the_agent() {
    let (stub, _parent, agent) = running(None).await;
    stub.wait_for("the first inventory", |record| {
        record.inventory_digest.clone()
    })
    .await;
    let refresh = stub.command(CommandAction::RefreshInventory {});
    let diagnostics = stub.command(CommandAction::CollectDiagnostics {});
    stub.push([stub.sign(&refresh), stub.sign(&diagnostics)]);

    let report = stub.final_report(refresh.id).await;
    assert_eq!(report.status, CommandStatus::Succeeded);
    assert_eq!(report.stdout, "inventory unchanged (7 packages)");

    let report = stub.final_report(diagnostics.id).await;
    assert_eq!(report.status, CommandStatus::Succeeded);
    let json: serde_json::Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(json["agent_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(json["inventory"]["packages"], 7);
    assert_eq!(
        json["inventory"]["digest"].as_str(),
        stub.record().inventory_digest.as_deref()
    );
    assert_eq!(
        json["state"]["device_id"],
        stub.record().device_id.to_string()
    );
    assert_eq!(json["state"]["server_url"], stub.url.as_str());
    assert!(json["facts"]["hostname"].is_string());
    assert!(json["telemetry"]["uptime_seconds"].is_u64());
    assert!(json["settings"]["telemetry_interval_seconds"].is_u64());
    assert_eq!(json["replay_record"]["commands"], 2);
    let tokens = stub.record().issued_tokens.clone();
    assert!(
        tokens
            .iter()
            .all(|token| !report.stdout.contains(token.as_str()))
    );
    assert!(!report.stdout.contains("sdt_"));
    assert!(agent.stop().await.success());
}

#[tokio::test]
async fn a_command_running_at_sigterm_finishes_and_is_reported() {
    let (stub, _parent, agent) = running(None).await;
    let command = stub.script("sleep 1; echo finished", 10);
    stub.push([stub.sign(&command)]);
    stub.wait_for("the running report", |record| {
        record.reports_on(command.id).first().map(drop)
    })
    .await;
    assert!(agent.stop().await.success());
    let report = stub.record().final_report(command.id).unwrap();
    assert_eq!(report.status, CommandStatus::Succeeded);
    assert_eq!(report.stdout, "finished\n");
}
