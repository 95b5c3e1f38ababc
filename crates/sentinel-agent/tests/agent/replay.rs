//! The replay record: ids kept until their command expires, saved and loaded.

use sentinel_agent::replay::ReplayRecord;
use uuid::Uuid;

use crate::mode;

#[test]
fn ids_are_kept_until_their_command_expires() {
    let (early, late, third) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut record = ReplayRecord::default();
    record.insert(early, 1_000, 500);
    record.insert(late, 5_000, 600);
    assert!(record.contains(early) && record.contains(late));
    // At 1_000 the first command has expired (the verifier refuses it from then on).
    record.insert(third, 6_000, 1_000);
    assert!(!record.contains(early));
    assert!(record.contains(late) && record.contains(third));
    assert_eq!(record.len(), 2);
}

#[test]
fn the_record_survives_a_restart_and_a_bad_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replay.json");
    assert!(ReplayRecord::load(&path).unwrap().is_empty());
    let id = Uuid::new_v4();
    let mut record = ReplayRecord::default();
    record.insert(id, 2_000, 1_000);
    record.save(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    let loaded = ReplayRecord::load(&path).unwrap();
    assert!(loaded.contains(id));
    assert_eq!(loaded, record);

    std::fs::write(&path, "{not json").unwrap();
    assert!(
        ReplayRecord::load(&path).is_err(),
        "an unreadable record must not pass for an empty one"
    );
}
