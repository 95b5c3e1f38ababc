//! Behaviour of the decoder sandbox, in one test binary: real ChirpStack and
//! The Things Stack decoders, the ways a decoder can fail, attacks on the limits
//! and on the sandbox, the async pool, and property tests.

// Helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::panic)]

mod ambient;
mod attacks;
mod conventions;
mod failures;
mod pool;
mod properties;

use std::time::Duration;

use sentinel_decoders::{DecodeError, Decoded, Limits, Uplink, decode};
use time::OffsetDateTime;
use time::macros::datetime;

/// The receive time every test uplink carries.
pub const RECV_TIME: OffsetDateTime = datetime!(2024-05-01 12:34:56.789 UTC);

/// An uplink with `bytes` on `f_port`, received at [`RECV_TIME`].
pub fn uplink(bytes: &[u8], f_port: u8) -> Uplink<'_> {
    Uplink {
        bytes,
        f_port,
        recv_time: RECV_TIME,
    }
}

/// The default limits with more time: tests that are not about time must not
/// fail because a busy machine (two cores, other builds) delayed a decode past
/// 100 ms of wall-clock time. Tests about time use [`Limits::default`].
pub fn limits() -> Limits {
    Limits {
        time: Duration::from_secs(5),
        ..Limits::default()
    }
}

/// Decodes with [`limits`].
pub fn run(code: &str, bytes: &[u8], f_port: u8) -> Result<Decoded, DecodeError> {
    decode(code, &uplink(bytes, f_port), &limits())
}

/// Decodes with [`limits`] and expects success.
pub fn decoded(code: &str, bytes: &[u8], f_port: u8) -> Decoded {
    match run(code, bytes, f_port) {
        Ok(decoded) => decoded,
        Err(error) => panic!("decode failed: {error:?}"),
    }
}

/// `decodeUplink` returning `{ data: { value: <expression> } }`.
pub fn returning(expression: &str) -> String {
    format!("function decodeUplink(input) {{ return {{ data: {{ value: {expression} }} }}; }}")
}

/// The `value` a [`returning`] decoder produced.
pub fn value_of(expression: &str) -> serde_json::Value {
    let decoded = decoded(&returning(expression), &[], 1);
    decoded
        .data
        .get("value")
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}
