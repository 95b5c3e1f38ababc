//! Commands travel signed: the server signs the exact bytes of a [`Command`] with its
//! organization's Ed25519 key, and the agent verifies those bytes before it parses them,
//! so there is no canonical form to disagree on.
//!
//! The signed message is [`MESSAGE_TAG`] followed by the payload, so a signature made
//! for anything else (an audit checkpoint, a report) can never pass for a command's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::command::Command;

/// Prefixes every signed command payload.
pub const MESSAGE_TAG: &[u8] = b"sentinel-command/v1\n";

/// A command as it travels: the JSON bytes of a [`Command`] and their signature, both
/// base64, and the command's id in the clear so that a refusal can be reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCommand {
    pub id: Uuid,
    pub payload: String,
    pub signature: String,
}

/// Why the agent refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the payload or signature is not valid base64 or JSON")]
    Malformed,
    #[error("the signature does not verify with the organization's key")]
    BadSignature,
    #[error("the signed command's id differs from the id it was delivered under")]
    IdMismatch,
    #[error("the command is addressed to another device")]
    WrongDevice,
    #[error("the command expired")]
    Expired,
    #[error("the command was already received")]
    Replayed,
    #[error("the command is invalid: {0}")]
    Invalid(String),
}

/// An organization's private command-signing key.
pub struct CommandSigner {
    pair: Ed25519KeyPair,
}

impl CommandSigner {
    /// A fresh key and its 32-byte seed, which is what gets stored (encrypted).
    pub fn generate() -> Result<(Self, [u8; 32]), SigningError> {
        let mut seed = [0u8; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| SigningError)?;
        Ok((Self::from_seed(&seed)?, seed))
    }

    pub fn from_seed(seed: &[u8]) -> Result<Self, SigningError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| SigningError)?;
        Ok(Self { pair })
    }

    /// The public key, lowercase hex: what agents are given at enrollment.
    pub fn public_key_hex(&self) -> String {
        hex(self.pair.public_key().as_ref())
    }

    pub fn sign(&self, command: &Command) -> Result<SignedCommand, SigningError> {
        let payload = serde_json::to_vec(command).map_err(|_| SigningError)?;
        let signature = self.pair.sign(&message(&payload));
        Ok(SignedCommand {
            id: command.id,
            payload: BASE64.encode(&payload),
            signature: BASE64.encode(signature.as_ref()),
        })
    }
}

/// A key or signature could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("command signing key unusable")]
pub struct SigningError;

/// An organization's public command-signing key, as the agent holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandVerifier {
    public_key: Vec<u8>,
}

impl CommandVerifier {
    /// The key from its lowercase hex form; `None` unless it is 32 bytes of hex.
    pub fn from_hex(hex_key: &str) -> Option<Self> {
        let bytes = unhex(hex_key)?;
        (bytes.len() == 32).then_some(Self { public_key: bytes })
    }

    /// The command inside `signed`, if its signature verifies, it was delivered under
    /// its own id, it is for `device_id`, it has not expired at `now` (Unix seconds)
    /// and its action is valid. Replay is the caller's to check: it alone knows which
    /// ids it has seen.
    pub fn open(
        &self,
        signed: &SignedCommand,
        device_id: Uuid,
        now: i64,
    ) -> Result<Command, Rejection> {
        let payload = BASE64
            .decode(&signed.payload)
            .map_err(|_| Rejection::Malformed)?;
        let signature = BASE64
            .decode(&signed.signature)
            .map_err(|_| Rejection::Malformed)?;
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(&message(&payload), &signature)
            .map_err(|_| Rejection::BadSignature)?;
        let command: Command =
            serde_json::from_slice(&payload).map_err(|_| Rejection::Malformed)?;
        if command.id != signed.id {
            return Err(Rejection::IdMismatch);
        }
        if command.device_id != device_id {
            return Err(Rejection::WrongDevice);
        }
        if now >= command.expires_at {
            return Err(Rejection::Expired);
        }
        if let Some(problem) = command.action.problem() {
            return Err(Rejection::Invalid(problem));
        }
        Ok(command)
    }
}

fn message(payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(MESSAGE_TAG.len() + payload.len());
    m.extend_from_slice(MESSAGE_TAG);
    m.extend_from_slice(payload);
    m
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex digits only (`from_str_radix` alone would also take a sign: `+1`).
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
