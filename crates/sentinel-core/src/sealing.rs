//! Secrets at rest: AES-256-GCM under the master key, tagged with the key's id so
//! that a rotated-out key is recognised instead of producing garbage.
//!
//! A sealed value is `"s1"`, the key id's length and bytes, a random 96-bit nonce,
//! then the ciphertext and its tag. The caller's `context` (e.g. `org:<id>/command-key`)
//! is authenticated too, so a sealed value moved to another row does not open.
//!
//! While the master key is being rotated, a [`SealingKey`] also holds the
//! other key (`also_opening`): values open with whichever key their id names,
//! and new values are always sealed with the current one.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

use crate::secret::random_bytes;

const VERSION: &[u8] = b"s1";

/// The key that seals secrets at rest (derived from the master key).
pub struct SealingKey {
    id: String,
    key: LessSafeKey,
    /// Keys that open values but never seal new ones (during a rotation).
    others: Vec<(String, LessSafeKey)>,
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
        let (id, key) = derive(master)?;
        Ok(Self {
            id,
            key,
            others: Vec::new(),
        })
    }

    /// This key, also opening values sealed under `other` (never sealing with it).
    pub fn also_opening(mut self, other: &[u8; 32]) -> Result<Self, SealError> {
        let (id, key) = derive(other)?;
        if id != self.id && self.others.iter().all(|(known, _)| *known != id) {
            self.others.push((id, key));
        }
        Ok(self)
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
        let key = if id == self.id.as_bytes() {
            &self.key
        } else {
            self.others
                .iter()
                .find(|(other, _)| other.as_bytes() == id)
                .map(|(_, key)| key)
                .ok_or_else(|| SealError::OtherKey(String::from_utf8_lossy(id).into_owned()))?
        };
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Damaged)?;
        let mut body = body.to_vec();
        let plaintext = key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut body)
            .map_err(|_| SealError::Damaged)?;
        Ok(plaintext.to_vec())
    }
}

/// The id of the key that sealed `sealed`.
pub fn sealed_key_id(sealed: &[u8]) -> Result<String, SealError> {
    let rest = sealed.strip_prefix(VERSION).ok_or(SealError::Damaged)?;
    let (&id_len, rest) = rest.split_first().ok_or(SealError::Damaged)?;
    let id = rest.get(..usize::from(id_len)).ok_or(SealError::Damaged)?;
    Ok(String::from_utf8_lossy(id).into_owned())
}

/// A key's public id (a fingerprint) and its AEAD key.
fn derive(master: &[u8; 32]) -> Result<(String, LessSafeKey), SealError> {
    let digest = Sha256::digest(master);
    let id = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let key = UnboundKey::new(&AES_256_GCM, master).map_err(|_| SealError::Damaged)?;
    Ok((id, LessSafeKey::new(key)))
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

    #[test]
    fn during_a_rotation_old_values_open_and_new_ones_use_the_new_key() {
        let old = SealingKey::new(&[1; 32]).unwrap();
        let sealed_old = old.seal(b"seed", "ctx").unwrap();
        let new = SealingKey::new(&[2; 32])
            .unwrap()
            .also_opening(&[1; 32])
            .unwrap();
        assert_eq!(new.open(&sealed_old, "ctx").unwrap(), b"seed");
        let sealed_new = new.seal(b"seed", "ctx").unwrap();
        assert_eq!(sealed_key_id(&sealed_new).unwrap(), new.id());
        assert_eq!(sealed_key_id(&sealed_old).unwrap(), old.id());
        assert!(old.open(&sealed_new, "ctx").is_err());
        assert_eq!(sealed_key_id(b"s"), Err(SealError::Damaged));
        assert_eq!(sealed_key_id(b"s1\x09ab"), Err(SealError::Damaged));
    }
}
