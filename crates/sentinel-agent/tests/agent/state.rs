//! The state directory: private modes, atomic writes, and refusal of exposed state.

use std::os::unix::fs::PermissionsExt;

use sentinel_agent::secret::Secret;
use sentinel_agent::state::{State, StateDir, StateError, write_private};
use sentinel_protocol::enroll::AgentSettings;
use uuid::Uuid;

use crate::mode;

fn state() -> State {
    State {
        server_url: "https://sentinel.example.org".into(),
        device_id: Uuid::new_v4(),
        org_id: Uuid::new_v4(),
        device_token: Secret::new("sdt_secret-token-value"),
        command_key: "00".repeat(32),
        ca_pinned: true,
        settings: AgentSettings::default(),
        enrolled_at: 1_700_000_000,
        token_rotated_at: 1_700_000_000,
    }
}

fn chmod(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn the_directory_is_created_or_tightened_to_0700_and_the_state_saved_0600() {
    let parent = tempfile::tempdir().unwrap();
    let path = parent.path().join("a/b/state");
    let dir = StateDir::create_private(&path).unwrap();
    assert_eq!(mode(&path), 0o700);

    let loose = parent.path().join("loose");
    std::fs::create_dir(&loose).unwrap();
    chmod(&loose, 0o755);
    StateDir::create_private(&loose).unwrap();
    assert_eq!(mode(&loose), 0o700, "an existing directory is tightened");

    assert!(!dir.is_enrolled());
    let saved = state();
    dir.save(&saved).unwrap();
    assert_eq!(mode(&dir.state_file()), 0o600);
    assert_eq!(dir.load().unwrap(), saved);
    // Saving again replaces it whole, leaving no temporary file.
    let mut changed = saved.clone();
    changed.device_token = Secret::new("sdt_rotated");
    dir.save(&changed).unwrap();
    assert_eq!(dir.load().unwrap().device_token.expose(), "sdt_rotated");
    let names: Vec<_> = std::fs::read_dir(&path)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["state.json"]);
}

#[test]
fn exposed_state_is_refused_with_the_reason() {
    let parent = tempfile::tempdir().unwrap();
    let dir = StateDir::create_private(parent.path()).unwrap();
    dir.save(&state()).unwrap();
    chmod(&dir.state_file(), 0o644);
    let error = dir.load().unwrap_err();
    assert!(
        matches!(error, StateError::Exposed { mode: 0o644, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("accessible by group or others"));
    assert!(error.to_string().contains("chmod 600"));

    chmod(&dir.state_file(), 0o600);
    chmod(parent.path(), 0o750);
    let error = StateDir::open_private(parent.path()).unwrap_err();
    assert!(error.to_string().contains("chmod 700"), "{error}");
    chmod(parent.path(), 0o700);
    assert!(
        StateDir::open_private(parent.path())
            .unwrap()
            .load()
            .is_ok()
    );
}

#[test]
fn a_missing_enrollment_says_to_enroll() {
    let parent = tempfile::tempdir().unwrap();
    let dir = StateDir::create_private(parent.path()).unwrap();
    let error = dir.load().unwrap_err();
    assert!(matches!(error, StateError::NotEnrolled { .. }));
    assert!(error.to_string().contains("sentinel-agent enroll"));
}

#[test]
fn private_writes_replace_even_a_loose_file_and_leave_it_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("file");
    std::fs::write(&path, "old").unwrap();
    chmod(&path, 0o666);
    write_private(&path, b"new").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new");
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn tokens_never_show_in_debug_output() {
    let state = state();
    let debug = format!("{state:?}");
    assert!(!debug.contains("secret-token-value"), "{debug}");
    assert!(debug.contains("redacted"));
}
