//! How much one decode may use. Every bound is enforced by the sandbox, none by
//! the script's good manners; a zero turns a limit into "nothing is allowed", never
//! into "unlimited" (QuickJS itself reads a zero memory or stack limit as none).

use std::time::Duration;

/// The most bytes an uplink payload may have under any configuration: LoRaWAN's
/// own maximum is about 250, so 4 KiB leaves room for other uplink transports.
pub const PAYLOAD_CEILING_BYTES: usize = 4 * 1024;

/// Resource limits for one decode (or one [`check`](crate::check)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time for the whole decode: engine start, compiling and running
    /// the script's top level, the `decodeUplink` call, its promise jobs and the
    /// serialization of its result. Enforced by the engine's interrupt handler,
    /// which also interrupts regular-expression backtracking.
    pub time: Duration,
    /// Bytes the JavaScript heap may allocate (`JS_SetMemoryLimit`).
    pub memory_bytes: usize,
    /// Bytes of native stack the interpreter may use (`JS_SetMaxStackSize`); keep
    /// it well below the thread's own stack (see [`DecoderPool`](crate::DecoderPool)).
    pub stack_bytes: usize,
    /// Bytes of the decoder's result once serialized as JSON.
    pub max_output_bytes: usize,
    /// Bytes of uplink payload accepted; values above [`PAYLOAD_CEILING_BYTES`]
    /// are treated as that ceiling.
    pub max_payload_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            time: Duration::from_millis(100),
            memory_bytes: 16 * 1024 * 1024,
            stack_bytes: 256 * 1024,
            max_output_bytes: 64 * 1024,
            max_payload_bytes: PAYLOAD_CEILING_BYTES,
        }
    }
}

impl Limits {
    /// The memory limit handed to QuickJS, for which 0 would mean unlimited.
    pub(crate) fn engine_memory_limit(&self) -> usize {
        self.memory_bytes.max(1)
    }

    /// The stack limit handed to QuickJS, for which 0 would mean unchecked.
    pub(crate) fn engine_stack_limit(&self) -> usize {
        self.stack_bytes.max(1)
    }

    /// The payload bound actually applied: never above the ceiling.
    pub(crate) fn payload_limit(&self) -> usize {
        self.max_payload_bytes.min(PAYLOAD_CEILING_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let limits = Limits::default();
        assert_eq!(limits.time, Duration::from_millis(100));
        assert_eq!(limits.memory_bytes, 16 << 20);
        assert_eq!(limits.stack_bytes, 256 << 10);
        assert_eq!(limits.max_output_bytes, 64 << 10);
        assert_eq!(limits.max_payload_bytes, 4096);
    }

    #[test]
    fn zero_never_means_unlimited() {
        let limits = Limits {
            memory_bytes: 0,
            stack_bytes: 0,
            max_payload_bytes: usize::MAX,
            ..Limits::default()
        };
        assert_eq!(limits.engine_memory_limit(), 1);
        assert_eq!(limits.engine_stack_limit(), 1);
        assert_eq!(limits.payload_limit(), PAYLOAD_CEILING_BYTES);
    }
}
