//! Signed checkpoints: the server's Ed25519 audit key signs a log's head
//! (sequence number, hash, time), so that rewriting history before the head, or
//! cutting the log short of it, is caught by anyone holding the public key.

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};

use super::{LogId, StoredEntry, hex, unhex};
use crate::Timestamp;

const MESSAGE_TAG: &[u8] = b"sentinel-audit-checkpoint/v1";

/// A signed statement that `log` had `hash` as its entry number `seq` at `at`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub at: Timestamp,
    /// Which key signed (see [`VerifyingKey::key_id`]).
    pub key_id: String,
    pub signature: Vec<u8>,
}

fn message(log: &LogId, seq: i64, hash: &[u8], at: Timestamp) -> Vec<u8> {
    let log = log.to_string();
    let mut m = Vec::with_capacity(MESSAGE_TAG.len() + log.len() + 64);
    m.extend_from_slice(MESSAGE_TAG);
    m.extend_from_slice(&(log.len() as u64).to_be_bytes());
    m.extend_from_slice(log.as_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&(hash.len() as u64).to_be_bytes());
    m.extend_from_slice(hash);
    m.extend_from_slice(&at.unix_micros().to_be_bytes());
    m
}

fn tagged(tag: &[u8], message: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(tag.len() + 8 + message.len());
    m.extend_from_slice(&(tag.len() as u64).to_be_bytes());
    m.extend_from_slice(tag);
    m.extend_from_slice(message);
    m
}

/// The private audit key (kept in the data directory).
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.verifying_key().key_id())
    }
}

/// Bytes that are not an Ed25519 key.
#[derive(Debug, thiserror::Error)]
#[error("invalid Ed25519 key")]
pub struct InvalidKey;

impl SigningKey {
    /// The key for a 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Result<SigningKey, InvalidKey> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| InvalidKey)?;
        Ok(SigningKey { pair })
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        let mut public = [0u8; 32];
        public.copy_from_slice(self.pair.public_key().as_ref());
        VerifyingKey(public)
    }

    /// Signs `message` for the purpose named by `tag` (e.g. an evidence
    /// export); the tag keeps the signature from passing for any other kind.
    pub fn sign_tagged(&self, tag: &[u8], message: &[u8]) -> Vec<u8> {
        self.pair.sign(&tagged(tag, message)).as_ref().to_vec()
    }

    /// Signs `entry` as the head of `log` at time `at`.
    pub fn sign(&self, log: &LogId, entry: &StoredEntry, at: Timestamp) -> Checkpoint {
        let signature = self.pair.sign(&message(log, entry.seq, &entry.hash, at));
        Checkpoint {
            seq: entry.seq,
            hash: entry.hash.clone(),
            at,
            key_id: self.verifying_key().key_id(),
            signature: signature.as_ref().to_vec(),
        }
    }
}

/// The public audit key: anyone holding it can check checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey(pub [u8; 32]);

impl VerifyingKey {
    /// The first 16 hex digits of the SHA-256 of the public key.
    pub fn key_id(&self) -> String {
        hex(&Sha256::digest(self.0)[..8])
    }

    /// The key from its hex form (as `sentinel audit public-key` prints it).
    pub fn from_hex(text: &str) -> Result<VerifyingKey, InvalidKey> {
        let bytes = unhex(text.trim()).ok_or(InvalidKey)?;
        bytes.try_into().map(VerifyingKey).map_err(|_| InvalidKey)
    }

    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Whether `signature` is this key's [`SigningKey::sign_tagged`] of `message`.
    pub fn verifies_tagged(&self, tag: &[u8], message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, self.0)
            .verify(&tagged(tag, message), signature)
            .is_ok()
    }

    /// Whether `checkpoint` was signed by this key for `log`.
    pub fn verifies(&self, log: &LogId, checkpoint: &Checkpoint) -> bool {
        checkpoint.key_id == self.key_id()
            && UnparsedPublicKey::new(&ED25519, self.0)
                .verify(
                    &message(log, checkpoint.seq, &checkpoint.hash, checkpoint.at),
                    &checkpoint.signature,
                )
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_round_trip_through_hex() {
        let key = SigningKey::from_seed(&[1; 32]).unwrap().verifying_key();
        assert_eq!(VerifyingKey::from_hex(&key.to_hex()).unwrap(), key);
        assert!(VerifyingKey::from_hex("zz").is_err());
        assert!(VerifyingKey::from_hex(&"g".repeat(64)).is_err());
    }
}
