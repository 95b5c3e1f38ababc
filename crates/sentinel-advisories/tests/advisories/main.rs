//! Integration tests of the advisory matcher, in one test binary: scenarios named
//! after the false positives other scanners are known for, and property tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod false_positives;
mod properties;
