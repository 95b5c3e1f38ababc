//! The one error type of this crate: why a decode produced no [`Decoded`](crate::Decoded).
//!
//! Errors the decoder reports itself (a non-empty `errors` array in its result)
//! are not here: they are data, returned in [`Decoded::errors`](crate::Decoded::errors).

/// Why a script could not be checked or an uplink could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The script does not compile (or contains a NUL character).
    #[error("decoder script does not compile: {0}")]
    Syntax(String),
    /// The script runs but defines no function `decodeUplink`.
    #[error("decoder script defines no function decodeUplink")]
    MissingFunction,
    /// The script threw; the message (and stack) is cut to about 512 bytes.
    #[error("decoder threw: {0}")]
    Exception(String),
    /// The decode ran past its time limit.
    #[error("decoder ran out of time")]
    TimedOut,
    /// The decode ran past its memory limit.
    #[error("decoder ran out of memory")]
    OutOfMemory,
    /// The decode ran past its stack limit (usually unbounded recursion).
    #[error("decoder overflowed its stack")]
    StackOverflow,
    /// `decodeUplink` returned something that is not a valid result.
    #[error("decoder returned a bad result: {0}")]
    BadOutput(String),
    /// The uplink payload is larger than the configured limit.
    #[error("uplink payload is larger than the decoder limit")]
    PayloadTooLarge,
    /// The [`DecoderPool`](crate::DecoderPool) has no worker left to run the decode.
    #[error("no decoder worker is available")]
    Unavailable,
}
