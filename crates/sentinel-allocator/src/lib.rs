//! The server's allocator: mimalloc, with freed pages given back to the OS at once.
//!
//! mimalloc rather than glibc's malloc: under a fleet's load glibc's arenas
//! fragmented, kept the server's memory after a peak and spent a tenth of its
//! CPU searching free lists (docs/benchmarks.md, the faults scenario).
//!
//! mimalloc v3 keeps a freed page for a second (its purge delay) before giving
//! it back. At 10,000 connected devices that second held ~40 MiB more than a
//! delay of zero (docs/benchmarks.md, the connected fleet), so the server sets
//! the delay's default to zero. `MIMALLOC_PURGE_DELAY` in the environment still
//! wins, for an operator who wants to trade memory for fewer system calls.

pub use mimalloc::MiMalloc;

use std::ffi::c_long;

use libmimalloc_sys::{mi_option_get, mi_option_set_default, mi_option_t};

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e`; libmimalloc-sys
/// names only some of the options, and not this one.
const PURGE_DELAY: mi_option_t = 15;

/// Makes zero the default purge delay, unless `MIMALLOC_PURGE_DELAY` is set.
///
/// Call it first in `main`, before any other thread starts: mimalloc's options
/// are not synchronised.
pub fn give_freed_pages_back_at_once() {
    #[allow(unsafe_code)]
    // SAFETY: `PURGE_DELAY` is a valid option index (mimalloc also bounds-checks
    // it), the call takes no pointers, and the caller runs it before any other
    // thread exists, so nothing reads the option while it is written.
    unsafe {
        mi_option_set_default(PURGE_DELAY, 0);
    }
}

/// The purge delay mimalloc uses now, in milliseconds.
pub fn purge_delay_ms() -> c_long {
    #[allow(unsafe_code)]
    // SAFETY: a valid option index and no pointers; reading an option only
    // races with a write, and the one write happens before threads start.
    unsafe {
        mi_option_get(PURGE_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_is_zero_after_the_call_unless_the_environment_sets_it() {
        match std::env::var("MIMALLOC_PURGE_DELAY") {
            Err(_) => {
                // mimalloc v3's own default: proves PURGE_DELAY names the
                // purge delay and not a neighbouring option.
                assert_eq!(purge_delay_ms(), 1000);
                give_freed_pages_back_at_once();
                assert_eq!(purge_delay_ms(), 0);
            }
            Ok(set) => {
                // The operator's setting wins over the call.
                give_freed_pages_back_at_once();
                if let Ok(set) = set.parse::<c_long>() {
                    assert_eq!(purge_delay_ms(), set);
                }
            }
        }
    }
}
