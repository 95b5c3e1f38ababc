//! `sentinel-agent run` against the stub server: telemetry (with an outage), facts,
//! settings, inventory, token rotation, a revoked device, and a clean stop.

use std::time::{Duration, Instant};

use sentinel_agent::state::StateDir;
use sentinel_protocol::enroll::AgentSettings;

use crate::stub::{RunningAgent, Stub, quick_settings};

/// A stub, and the binary enrolled with it in a fresh state directory.
async fn enrolled() -> (Stub, tempfile::TempDir, std::path::PathBuf) {
    let stub = Stub::start(quick_settings()).await;
    let parent = tempfile::tempdir().unwrap();
    let state_dir = parent.path().join("state");
    let output = stub.enroll(&state_dir).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (stub, parent, state_dir)
}

#[tokio::test]
async fn over_http1_each_long_poll_ends_before_the_next_report() {
    let stub = Stub::start(AgentSettings {
        telemetry_interval_seconds: 2,
        long_poll_seconds: 25,
        ..quick_settings()
    })
    .await;
    let parent = tempfile::tempdir().unwrap();
    let state_dir = parent.path().join("state");
    assert!(stub.enroll(&state_dir).await.status.success());
    let agent = RunningAgent::start(&state_dir, None);
    stub.wait_for("four reports", |record| {
        (record.telemetry_attempts.len() >= 4).then_some(())
    })
    .await;
    assert!(agent.stop().await.success());
    let record = stub.record();
    assert!(
        record
            .versions
            .iter()
            .all(|version| *version == axum::http::Version::HTTP_11),
        "{:?}",
        record.versions
    );
    // The polls went on between the reports, each ending before the next one
    // (a 25 s poll would have held the connection over several).
    assert_eq!(record.telemetry_during_poll, 0, "{:?}", record.poll_waits);
    assert!(record.poll_waits.len() >= 3, "{:?}", record.poll_waits);
    assert!(
        record
            .poll_waits
            .iter()
            .all(|wait| *wait < Duration::from_secs(2)),
        "{:?}",
        record.poll_waits
    );
    // And the reports kept their interval.
    for pair in record.telemetry_attempts.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap < Duration::from_millis(2_500), "{gap:?}");
    }
}

#[tokio::test]
async fn telemetry_survives_an_outage_and_arrives_oldest_first_with_facts_once() {
    let (stub, _parent, state_dir) = enrolled().await;
    {
        // Three failures, over at least 2.5 s of one-second samples (back-off
        // with full jitter may retry at once).
        let mut record = stub.record();
        record.telemetry_outage = 3;
        record.telemetry_outage_at_least = Some(Duration::from_millis(2500));
    }
    let agent = RunningAgent::start(&state_dir, None);

    // After three failures, the spooled samples arrive together, in order.
    let first = stub
        .wait_for("telemetry after the outage", |record| {
            record.telemetry.first().cloned()
        })
        .await;
    assert!(stub.record().telemetry_attempts.len() >= 4);
    assert!(
        first.samples.len() >= 2,
        "spooled while down: {}",
        first.samples.len()
    );
    let times: Vec<i64> = first.samples.iter().map(|s| s.at).collect();
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{times:?}");
    let facts = first.facts.expect("facts with the first batch");
    assert_eq!(facts, stub.record().enrollments[0].facts);

    // Later batches carry no facts (they did not change), one sample a second.
    stub.wait_for("two more batches", |record| {
        (record.telemetry.len() >= 3).then_some(())
    })
    .await;
    {
        let record = stub.record();
        assert!(
            record.telemetry[1..]
                .iter()
                .all(|batch| batch.facts.is_none())
        );
        let all: Vec<i64> = record
            .telemetry
            .iter()
            .flat_map(|batch| batch.samples.iter().map(|s| s.at))
            .collect();
        assert!(all.windows(2).all(|pair| pair[0] <= pair[1]), "{all:?}");
    }
    assert!(agent.stop().await.success());
}

#[tokio::test]
async fn rate_limiting_is_honoured() {
    let (stub, _parent, state_dir) = enrolled().await;
    stub.record().telemetry_rate_limited = 1;
    let agent = RunningAgent::start(&state_dir, None);
    stub.wait_for("telemetry after the rate limit", |record| {
        record.telemetry.first().map(drop)
    })
    .await;
    let attempts = stub.record().telemetry_attempts.clone();
    let waited = attempts[1] - attempts[0];
    assert!(
        (Duration::from_millis(1900)..Duration::from_secs(4)).contains(&waited),
        "retried after {waited:?}, not Retry-After: 2"
    );
    assert!(agent.stop().await.success());
}

#[tokio::test]
async fn the_inventory_sends_its_digest_then_the_list_once() {
    let (stub, _parent, state_dir) = enrolled().await;
    let agent = RunningAgent::start(&state_dir, None);
    let reports = stub
        .wait_for("digest and full inventory", |record| {
            (record.inventory.len() >= 2).then(|| record.inventory.clone())
        })
        .await;
    assert!(reports[0].packages.is_none(), "the digest alone first");
    let packages = reports[1].packages.as_ref().unwrap();
    assert_eq!(packages.len(), 7, "the dpkg fixture's installed packages");
    assert_eq!(reports[0].digest, reports[1].digest);
    assert!(agent.stop().await.success());

    // After a restart, the digest alone: the server already holds the list.
    let agent = RunningAgent::start(&state_dir, None);
    stub.wait_for("the digest after the restart", |record| {
        (record.inventory.len() >= 3).then_some(())
    })
    .await;
    assert!(agent.stop().await.success());
    let record = stub.record();
    assert_eq!(record.inventory.len(), 3);
    assert!(record.inventory[2].packages.is_none());
}

#[tokio::test]
async fn new_settings_take_effect_and_the_token_rotates_safely() {
    let (stub, _parent, state_dir) = enrolled().await;
    let agent = RunningAgent::start(&state_dir, None);
    let log_path = agent.log_path().to_owned();
    stub.wait_for("first telemetry", |record| {
        record.telemetry.first().map(drop)
    })
    .await;
    assert_eq!(stub.record().issued_tokens.len(), 1, "not due yet");

    // The server shortens the rotation period; the next acknowledgement carries it.
    stub.record().settings.token_rotation_seconds = 1;
    let rotated = stub
        .wait_for("a request with a rotated token", |record| {
            let newest = record.issued_tokens.last()?;
            (record.issued_tokens.len() >= 2 && record.tokens_used.contains(newest))
                .then(|| newest.clone())
        })
        .await;
    let status = agent.stop().await;
    assert!(status.success());
    let log = std::fs::read_to_string(log_path).unwrap();

    let state = StateDir::open_private(&state_dir).unwrap().load().unwrap();
    assert_eq!(state.settings.token_rotation_seconds, 1, "settings saved");
    let record = stub.record();
    assert!(
        record
            .valid_tokens
            .contains(&state.device_token.expose().to_owned()),
        "the saved token is one the server accepts"
    );
    assert!(record.issued_tokens.contains(&rotated));
    drop(record);
    // A request that raced a rotation is retried with the new token, never taken for a
    // revocation.
    assert!(!log.contains("revoked"), "{log}");
}

#[tokio::test]
async fn a_revoked_device_logs_it_and_does_not_hammer() {
    let (stub, _parent, state_dir) = enrolled().await;
    stub.record().revoked = true;
    let agent = RunningAgent::start(&state_dir, None);
    stub.wait_for("refused requests", |record| {
        (record.unauthorized >= 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // One try from each loop (telemetry, inventory, commands), then at least 30 s each.
    assert!(
        stub.record().unauthorized <= 4,
        "{}",
        stub.record().unauthorized
    );
    assert!(agent.log().contains("revoked"), "{}", agent.log());
    assert!(agent.stop().await.success());
}

#[tokio::test]
async fn sigterm_stops_the_agent_promptly_and_cleanly() {
    let (stub, _parent, state_dir) = enrolled().await;
    let agent = RunningAgent::start(&state_dir, None);
    stub.wait_for("first telemetry", |record| {
        record.telemetry.first().map(drop)
    })
    .await;
    let started = Instant::now();
    let log_path = agent.log_path().to_owned();
    let status = agent.stop().await;
    assert!(status.success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let log = std::fs::read_to_string(log_path).unwrap();
    assert!(log.contains("stopped"), "{log}");
    let token = stub.record().issued_tokens[0].clone();
    assert!(!log.contains(&token), "the token was logged");
}
