//! The hash chain of a log and the check that walks it.
//!
//! `hash = SHA-256(prev_hash ‖ encoding)`, where the encoding is a domain tag,
//! then every field of the entry in a fixed order, numbers as big-endian
//! integers and text as length-prefixed UTF-8, so no two different entries
//! encode alike. The first entry of a log follows [`genesis`], a hash of the
//! log's own name, so one log's chain cannot be passed off as another's.
//!
//! [`ChainCheck`] recomputes a log entry by entry, in one pass and constant
//! memory, and stops at the first entry that is missing, out of order, altered
//! or in conflict with a signed checkpoint.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::checkpoint::{Checkpoint, VerifyingKey};
use super::{AuditAction, LogId, StoredEntry};

const ENTRY_TAG: &[u8] = b"sentinel-audit-entry/v1";
const GENESIS_TAG: &[u8] = b"sentinel-audit-genesis/v1";

/// The `prev_hash` of a log's first entry.
pub fn genesis(log: &LogId) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(GENESIS_TAG);
    put_text(&mut hasher, &log.to_string());
    hasher.finalize().into()
}

/// The hash of `entry`, from its `prev_hash` and its other fields (not its
/// stored `hash`).
pub fn entry_hash(entry: &StoredEntry) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(ENTRY_TAG);
    put_bytes(&mut h, &entry.prev_hash);
    h.update(entry.seq.to_be_bytes());
    h.update(entry.event_id.as_bytes());
    h.update(entry.at.unix_micros().to_be_bytes());
    for text in [
        &entry.actor_kind,
        &entry.actor_id,
        &entry.actor_name,
        &entry.action,
        &entry.entity_type,
        &entry.entity_id,
        &entry.detail,
        &entry.client_ip,
        &entry.user_agent,
        &entry.request_id,
        &entry.outcome,
    ] {
        put_text(&mut h, text);
    }
    h.finalize().into()
}

fn put_text(h: &mut Sha256, text: &str) {
    put_bytes(h, text.as_bytes());
}

fn put_bytes(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// Where and why a log stopped being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{log}: {}{reason}", .seq.map(|s| format!("entry {s}: ")).unwrap_or_default())]
pub struct Break {
    pub log: String,
    /// The first entry (or checkpoint) that fails, when one can be named.
    pub seq: Option<i64>,
    pub reason: String,
}

impl Break {
    pub fn new(log: &LogId, seq: Option<i64>, reason: impl Into<String>) -> Break {
        Break {
            log: log.to_string(),
            seq,
            reason: reason.into(),
        }
    }
}

/// What a successful check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub checkpoints: usize,
    /// The newest checkpoint: entries after it are chained but not yet signed.
    pub last_checkpoint: Option<i64>,
}

/// A streaming check of one log. Feed every remaining entry in `seq` order, then
/// call [`ChainCheck::finish`].
#[derive(Debug)]
pub struct ChainCheck {
    log: LogId,
    checkpoints: BTreeMap<i64, Checkpoint>,
    pruned_through: i64,
    expected_seq: i64,
    expected_prev: Vec<u8>,
    entries: u64,
    first_seq: Option<i64>,
    /// `through_seq` of the newest `audit.pruned` entry seen.
    last_prune_record: Option<i64>,
}

impl ChainCheck {
    /// Starts a check of `log`, whose entries up to `pruned_through` (0: none)
    /// were removed by retention. Every checkpoint must carry a valid signature
    /// by `key`, and a pruned log must resume from a checkpoint.
    pub fn start(
        log: LogId,
        pruned_through: i64,
        checkpoints: Vec<Checkpoint>,
        key: &VerifyingKey,
    ) -> Result<ChainCheck, Break> {
        let mut by_seq = BTreeMap::new();
        for checkpoint in checkpoints {
            if !key.verifies(&log, &checkpoint) {
                return Err(Break::new(
                    &log,
                    Some(checkpoint.seq),
                    "the checkpoint signature does not verify with this server's audit key",
                ));
            }
            by_seq.insert(checkpoint.seq, checkpoint);
        }
        let expected_prev = if pruned_through == 0 {
            genesis(&log).to_vec()
        } else {
            match by_seq.get(&pruned_through) {
                Some(checkpoint) => checkpoint.hash.clone(),
                None => {
                    return Err(Break::new(
                        &log,
                        None,
                        format!(
                            "entries up to {pruned_through} are marked pruned, but no signed checkpoint \
                             exists at {pruned_through}"
                        ),
                    ));
                }
            }
        };
        Ok(ChainCheck {
            log,
            checkpoints: by_seq,
            pruned_through,
            expected_seq: pruned_through + 1,
            expected_prev,
            entries: 0,
            first_seq: None,
            last_prune_record: None,
        })
    }

    fn broken(&self, seq: Option<i64>, reason: impl Into<String>) -> Break {
        Break::new(&self.log, seq, reason)
    }

    /// Checks the next entry.
    pub fn feed(&mut self, entry: &StoredEntry) -> Result<(), Break> {
        if entry.seq != self.expected_seq {
            let reason = if entry.seq > self.expected_seq {
                format!(
                    "entries {}..{} are missing (deleted?)",
                    self.expected_seq,
                    entry.seq - 1
                )
            } else {
                format!("out of order: expected entry {}", self.expected_seq)
            };
            return Err(self.broken(Some(self.expected_seq.min(entry.seq)), reason));
        }
        if entry.prev_hash != self.expected_prev {
            return Err(self.broken(
                Some(entry.seq),
                "does not follow the previous entry (prev_hash differs: reordered, replaced or \
                 the previous entry was altered)",
            ));
        }
        let hash = entry_hash(entry);
        if entry.hash != hash {
            return Err(self.broken(
                Some(entry.seq),
                "its content does not match its hash (altered)",
            ));
        }
        if let Some(checkpoint) = self.checkpoints.get(&entry.seq)
            && checkpoint.hash != hash
        {
            return Err(self.broken(
                Some(entry.seq),
                "differs from the signed checkpoint at this entry (rewritten)",
            ));
        }
        if entry.action == AuditAction::AuditPruned.as_str() {
            self.last_prune_record = serde_json::from_str::<serde_json::Value>(&entry.detail)
                .ok()
                .and_then(|d| d.get("through_seq").and_then(|v| v.as_i64()));
        }
        self.first_seq.get_or_insert(entry.seq);
        self.entries += 1;
        self.expected_seq += 1;
        self.expected_prev = entry.hash.clone();
        Ok(())
    }

    /// Ends the check: the log must reach its newest checkpoint (else its tail
    /// was truncated), and a pruned log must say in its chain how far it was
    /// pruned.
    pub fn finish(self) -> Result<Verified, Break> {
        let last_seq = self.expected_seq - 1;
        if let Some((&newest, _)) = self.checkpoints.iter().next_back()
            && newest > last_seq
        {
            return Err(self.broken(
                Some(last_seq + 1),
                format!(
                    "the log ends at entry {last_seq} but a signed checkpoint covers entry {newest} \
                     (truncated)"
                ),
            ));
        }
        if self.pruned_through > 0 && self.last_prune_record != Some(self.pruned_through) {
            return Err(self.broken(
                None,
                format!(
                    "entries up to {} were removed without an audit.pruned entry recording it",
                    self.pruned_through
                ),
            ));
        }
        Ok(Verified {
            entries: self.entries,
            first_seq: self.first_seq,
            last_seq: (self.entries > 0).then_some(last_seq),
            checkpoints: self.checkpoints.len(),
            last_checkpoint: self.checkpoints.keys().next_back().copied(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::checkpoint::SigningKey;
    use super::super::*;
    use super::*;
    use crate::Timestamp;

    fn event(n: i64) -> AuditEvent {
        AuditContext::system().success(
            Timestamp::from_unix_seconds(1_700_000_000 + n),
            AuditAction::UserCreated,
            Entity::new(EntityType::User, n),
            serde_json::json!({"n": n}),
        )
    }

    fn chain_of(log: &LogId, n: i64) -> Vec<StoredEntry> {
        let mut prev = genesis(log).to_vec();
        (1..=n)
            .map(|seq| {
                let entry = StoredEntry::chain(seq, &prev, &event(seq));
                prev = entry.hash.clone();
                entry
            })
            .collect()
    }

    fn check(
        log: LogId,
        pruned: i64,
        entries: &[StoredEntry],
        checkpoints: Vec<Checkpoint>,
        key: &SigningKey,
    ) -> Result<Verified, Break> {
        let mut check = ChainCheck::start(log, pruned, checkpoints, &key.verifying_key())?;
        for entry in entries {
            check.feed(entry)?;
        }
        check.finish()
    }

    fn key() -> SigningKey {
        SigningKey::from_seed(&[7; 32]).unwrap()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let log = LogId::Platform;
        let entries = chain_of(&log, 20);
        let cp = key().sign(&log, &entries[9], Timestamp::from_unix_seconds(1));
        let verified = check(log, 0, &entries, vec![cp], &key()).unwrap();
        assert_eq!(verified.entries, 20);
        assert_eq!(verified.last_seq, Some(20));
        assert_eq!(verified.last_checkpoint, Some(10));
    }

    #[test]
    fn every_kind_of_tampering_is_caught_at_the_right_entry() {
        let log = LogId::Org(crate::OrgId::random());
        let entries = chain_of(&log, 10);

        let mut edited = entries.clone();
        edited[4].detail = r#"{"n":999}"#.into();
        assert_eq!(
            check(log, 0, &edited, vec![], &key()).unwrap_err().seq,
            Some(5)
        );

        let mut deleted = entries.clone();
        deleted.remove(6);
        assert_eq!(
            check(log, 0, &deleted, vec![], &key()).unwrap_err().seq,
            Some(7)
        );

        let mut reordered = entries.clone();
        reordered.swap(2, 3);
        assert_eq!(
            check(log, 0, &reordered, vec![], &key()).unwrap_err().seq,
            Some(3)
        );

        // Rewriting an entry and re-hashing everything after it is caught by the
        // signed checkpoint.
        let mut rewritten = entries.clone();
        rewritten[1].actor_name = "someone else".into();
        let mut prev = rewritten[0].hash.clone();
        for entry in rewritten.iter_mut().skip(1) {
            entry.prev_hash = prev.clone();
            entry.hash = entry_hash(entry).to_vec();
            prev = entry.hash.clone();
        }
        let cp = key().sign(&log, &entries[7], Timestamp::from_unix_seconds(1));
        assert!(check(log, 0, &rewritten, vec![], &key()).is_ok());
        assert_eq!(
            check(log, 0, &rewritten, vec![cp.clone()], &key())
                .unwrap_err()
                .seq,
            Some(8)
        );

        // Truncation after a checkpoint.
        let err = check(log, 0, &entries[..6], vec![cp], &key()).unwrap_err();
        assert!(err.reason.contains("truncated"), "{err}");
    }

    #[test]
    fn forged_or_foreign_checkpoints_are_refused() {
        let log = LogId::Platform;
        let entries = chain_of(&log, 3);
        let forged = SigningKey::from_seed(&[9; 32]).unwrap().sign(
            &log,
            &entries[2],
            Timestamp::from_unix_seconds(1),
        );
        assert!(check(log, 0, &entries, vec![forged], &key()).is_err());
        // Signed for another log.
        let other = LogId::Org(crate::OrgId::random());
        let moved = key().sign(&other, &entries[2], Timestamp::from_unix_seconds(1));
        assert!(check(log, 0, &entries, vec![moved], &key()).is_err());
    }

    #[test]
    fn chains_are_bound_to_their_log() {
        let entries = chain_of(&LogId::Platform, 2);
        let other = LogId::Org(crate::OrgId::random());
        assert_eq!(
            check(other, 0, &entries, vec![], &key()).unwrap_err().seq,
            Some(1)
        );
    }

    #[test]
    fn a_pruned_log_resumes_from_its_checkpoint_and_must_record_the_prune() {
        let log = LogId::Platform;
        let mut entries = chain_of(&log, 5);
        let cp = key().sign(&log, &entries[2], Timestamp::from_unix_seconds(1));
        let prune = AuditContext::system().success(
            Timestamp::from_unix_seconds(2),
            AuditAction::AuditPruned,
            Entity::new(EntityType::AuditLog, log),
            serde_json::json!({"through_seq": 3}),
        );
        entries.push(StoredEntry::chain(6, &entries[4].hash, &prune));
        let remaining = &entries[3..];
        assert!(check(log, 3, remaining, vec![cp.clone()], &key()).is_ok());
        // Pruned without a record, or past where a checkpoint is.
        assert!(check(log, 3, &entries[3..5], vec![cp.clone()], &key()).is_err());
        assert!(check(log, 4, &entries[4..], vec![cp], &key()).is_err());
    }
}
