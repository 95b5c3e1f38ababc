//! Runs user-supplied JavaScript payload decoders for IoT uplinks (LoRaWAN style)
//! in an embedded QuickJS sandbox, following the conventions of ChirpStack v4 and
//! The Things Stack.
//!
//! A decoder is a script that defines `function decodeUplink(input)`, where
//! `input` is `{ bytes, fPort, recvTime, variables }` (`bytes` an array of numbers
//! 0..=255, `recvTime` a `Date`, `variables` an empty object), and that returns
//! `{ data: {...}, warnings: [...], errors: [...] }`. A non-empty `errors` is the
//! decoder reporting a failure; see [`Decoded::is_failure`].
//!
//! # What is sandboxed
//!
//! The script runs in QuickJS-ng through `rquickjs`, built without its module
//! loader and without the QuickJS `std`/`os` modules, so it has no file, network,
//! process, clock-sleeping or module access: `require`, `import()`, `fetch`,
//! `XMLHttpRequest`, `std` and `os` do not exist or fail. It gets the language's
//! own built-ins (including `Date`, `JSON`, `RegExp`, typed arrays, `Map`/`Set`
//! and `Promise`), and nothing of the host. Its result is serialized to JSON inside
//! the sandbox and parsed again in Rust, so nothing but plain data comes out.
//!
//! # Limits
//!
//! Every decode runs under [`Limits`]: wall-clock time (100 ms by default,
//! enforced by the engine's interrupt handler, which also stops regular
//! expressions and `catch`/`finally` blocks that try to carry on), JavaScript heap
//! (16 MiB), native stack for the interpreter (256 KiB), serialized result
//! (64 KiB) and payload (4 KiB at most). Running out of any of them is an error
//! ([`DecodeError::TimedOut`], [`DecodeError::OutOfMemory`],
//! [`DecodeError::StackOverflow`], [`DecodeError::BadOutput`],
//! [`DecodeError::PayloadTooLarge`]), never a crash of the process.
//!
//! # Why a fresh runtime per decode
//!
//! Every call to [`decode`] or [`check`] creates its own QuickJS runtime and
//! context and destroys them afterwards. Decoders are written by tenants and run
//! for many devices: a script that changes `globalThis`, a prototype or a closure
//! variable, or leaves promise jobs or a filled heap behind, must not affect the
//! next device or the next uplink. That isolation is cheap: in a release build a
//! fresh runtime and context with an empty script take about 0.2 ms and a whole
//! small decode about 0.35 ms (`cargo run --release -p sentinel-decoders
//! --example decode_cost`), against a 100 ms time limit.
//!
//! # Use
//!
//! [`check`] validates a decoder when it is saved, [`decode`] runs one blocking
//! decode, and [`DecoderPool`] runs decodes for async code on a few dedicated
//! threads. [`code_hash`] names a script version in audit entries.

mod error;
mod exception;
mod limits;
mod output;
mod pool;
mod sandbox;

pub use error::DecodeError;
pub use limits::{Limits, PAYLOAD_CEILING_BYTES};
pub use output::Decoded;
pub use pool::DecoderPool;
pub use sandbox::{Uplink, check, decode};

use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256 of a decoder's source, to name the exact script version
/// in audit entries.
pub fn code_hash(code: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(code.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_hash_is_hex_sha256() {
        assert_eq!(
            code_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(code_hash("").len(), 64);
    }
}
