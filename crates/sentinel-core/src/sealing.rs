//! Secrets at rest: AES-256-GCM under the master key, tagged with the key's id so
//! that a rotated-out key is recognised instead of producing garbage.
//!
//! A sealed value is `"s1"`, the key id's length and bytes, a random 96-bit nonce,
//! then the ciphertext and its tag. The caller's `context` (e.g. `org:<id>/command-key`)
//! is authenticated too, so a sealed value moved to another row does not open.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

use crate::secret::random_bytes;

const VERSION: &[u8] = b"s1";

/// The key that seals secrets at rest (derived from the master key).
pub struct SealingKey {
    id: String,
    key: LessSafeKey,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealingKey({})", self.id)
    }
}

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed with key {0}, not the current master key")]
    OtherKey(String),
    #[error("the sealed value is damaged or belongs elsewhere")]
    Damaged,
    #[error("no randomness for a nonce")]
    Randomness,
}

impl SealingKey {
    /// The sealing key of a 256-bit master key; its id is a public fingerprint.
    pub fn new(master: &[u8; 32]) -> Result<Self, SealError> {
        let digest = Sha256::digest(master);
        let id = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        let key = UnboundKey::new(&AES_256_GCM, master).map_err(|_| SealError::Damaged)?;
        Ok(Self {
            id,
            key: LessSafeKey::new(key),
        })
    }

    /// The key's public fingerprint.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, SealError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>().map_err(|_| SealError::Randomness)?;
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut body,
            )
            .map_err(|_| SealError::Damaged)?;
        let mut sealed =
            Vec::with_capacity(VERSION.len() + 1 + self.id.len() + NONCE_LEN + body.len());
        sealed.extend_from_slice(VERSION);
        sealed.push(self.id.len() as u8);
        sealed.extend_from_slice(self.id.as_bytes());
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, SealError> {
        let rest = sealed.strip_prefix(VERSION).ok_or(SealError::Damaged)?;
        let (&id_len, rest) = rest.split_first().ok_or(SealError::Damaged)?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len + NONCE_LEN {
            return Err(SealError::Damaged);
        }
        let (id, rest) = rest.split_at(id_len);
        if id != self.id.as_bytes() {
            return Err(SealError::OtherKey(
                String::from_utf8_lossy(id).into_owned(),
            ));
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Damaged)?;
        let mut body = body.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut body)
            .map_err(|_| SealError::Damaged)?;
        Ok(plaintext.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let key = SealingKey::new(&[1; 32]).unwrap();
        let sealed = key.seal(b"seed", "org:a/command-key").unwrap();
        assert!(!sealed.windows(4).any(|w| w == b"seed"));
        assert_eq!(key.open(&sealed, "org:a/command-key").unwrap(), b"seed");
        assert_eq!(
            key.open(&sealed, "org:b/command-key"),
            Err(SealError::Damaged)
        );
        let other = SealingKey::new(&[2; 32]).unwrap();
        assert_eq!(
            other.open(&sealed, "org:a/command-key"),
            Err(SealError::OtherKey(key.id().to_owned()))
        );
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            key.open(&flipped, "org:a/command-key"),
            Err(SealError::Damaged)
        );
        assert_eq!(
            key.open(b"s1", "org:a/command-key"),
            Err(SealError::Damaged)
        );
        assert_ne!(
            sealed,
            key.seal(b"seed", "org:a/command-key").unwrap(),
            "nonces differ"
        );
    }
}
