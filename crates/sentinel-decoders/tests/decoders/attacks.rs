//! Decoders that try to use more time, memory or stack than allowed are stopped
//! with the right error, and the process (and the next decode) carries on.

use std::time::{Duration, Instant};

use sentinel_decoders::{DecodeError, Limits, check, decode};

use crate::{decoded, run};

/// A decoder that just works, run after each attack to show nothing broke.
const NORMAL: &str = "function decodeUplink(input) { return { data: { first: input.bytes[0] } }; }";

fn still_works() {
    let decoded = decoded(NORMAL, &[7], 1);
    assert_eq!(decoded.data.get("first"), Some(&serde_json::json!(7)));
}

/// Runs `code` with `limits`, expects `expected`, checks that the next decode
/// works, and returns how long the first one took.
fn stopped_with(limits: &Limits, code: &str, expected: &DecodeError) -> Duration {
    let start = Instant::now();
    let outcome = decode(code, &crate::uplink(&[1, 2, 3], 1), limits);
    let took = start.elapsed();
    assert_eq!(outcome.as_ref(), Err(expected), "{code}");
    still_works();
    took
}

/// [`stopped_with`] the tests' generous time limit: for memory and stack attacks.
fn stopped(code: &str, expected: &DecodeError) {
    stopped_with(&crate::limits(), code, expected);
}

/// The default 100 ms limit stops `code` in well under a second.
fn times_out_quickly(code: &str) {
    let limits = Limits::default();
    let took = stopped_with(&limits, code, &DecodeError::TimedOut);
    assert!(took < Duration::from_secs(1), "{code} took {took:?}");
    assert!(took >= limits.time, "{code} stopped early: {took:?}");
}

#[test]
fn an_infinite_loop_times_out() {
    times_out_quickly("function decodeUplink(input) { while (true) {} }");
}

#[test]
fn a_loop_that_catches_the_interrupt_still_times_out() {
    times_out_quickly(
        "function decodeUplink(input) { while (true) { try { while (true) {} } catch (e) {} } }",
    );
    times_out_quickly(
        "function decodeUplink(input) { for (;;) { try { for (;;) {} } finally { for (;;) {} } } }",
    );
}

#[test]
fn a_loop_at_top_level_times_out_in_check_too() {
    let code = "for (;;) {} function decodeUplink(input) { return { data: {} }; }";
    let start = Instant::now();
    assert_eq!(check(code, &Limits::default()), Err(DecodeError::TimedOut));
    assert!(start.elapsed() < Duration::from_secs(1));
    times_out_quickly(code);
}

#[test]
fn catastrophic_regex_backtracking_times_out() {
    times_out_quickly(
        "function decodeUplink(input) { return { data: { m: /^(a+)+$/.test('a'.repeat(40) + 'b') } }; }",
    );
}

#[test]
fn endless_promise_jobs_time_out() {
    times_out_quickly(
        "function decodeUplink(input) { function again() { Promise.resolve().then(again); } again(); return { data: {} }; }",
    );
}

#[test]
fn a_loop_in_the_serializer_times_out() {
    times_out_quickly(
        "function decodeUplink(input) { return { data: { toJSON: function () { while (true) {} } } }; }",
    );
}

#[test]
fn atomics_wait_cannot_block_the_thread() {
    let code = "function decodeUplink(input) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); return { data: {} }; }";
    let start = Instant::now();
    let outcome = run(code, &[], 1);
    assert!(
        matches!(outcome, Err(DecodeError::Exception(_))),
        "{outcome:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_huge_array_runs_out_of_memory() {
    stopped(
        "function decodeUplink(input) { return { data: { a: new Array(1e9).fill(1) } }; }",
        &DecodeError::OutOfMemory,
    );
    // Many small allocations rather than one big one (in an unoptimized build
    // this takes longer than 100 ms, hence the tests' generous time limit).
    stopped(
        "function decodeUplink(input) { var a = []; while (true) { a.push({ n: a.length }); } }",
        &DecodeError::OutOfMemory,
    );
}

#[test]
fn string_doubling_runs_out_of_memory() {
    stopped(
        "function decodeUplink(input) { var s = 'x'; while (true) { s = s + s; s.charCodeAt(s.length - 1); } }",
        &DecodeError::OutOfMemory,
    );
    stopped(
        "var s = 'x'; while (true) { s += s; s.indexOf('y'); } function decodeUplink(input) {}",
        &DecodeError::OutOfMemory,
    );
}

#[test]
fn catching_out_of_memory_and_retrying_still_fails_cleanly() {
    let code = "function decodeUplink(input) { var keep = []; while (true) { try { keep.push(new ArrayBuffer(1 << 20)); } catch (e) { keep.push('again'); } } }";
    let outcome = run(code, &[], 1);
    assert!(
        matches!(
            outcome,
            Err(DecodeError::OutOfMemory | DecodeError::TimedOut)
        ),
        "{outcome:?}"
    );
    still_works();
}

#[test]
fn deep_recursion_overflows_the_stack() {
    stopped(
        "function decodeUplink(input) { function f(n) { return f(n + 1) + 1; } return { data: { n: f(0) } }; }",
        &DecodeError::StackOverflow,
    );
}

#[test]
fn deeply_nested_source_overflows_the_stack_not_the_process() {
    let depth = 100_000;
    let code = format!(
        "function decodeUplink(input) {{ return {{ data: {{ v: {}1{} }} }}; }}",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    let outcome = run(&code, &[], 1);
    assert_eq!(outcome, Err(DecodeError::StackOverflow));
    still_works();
}

#[test]
fn deeply_nested_output_is_refused() {
    let code = "function decodeUplink(input) { var d = {}; for (var i = 0; i < 5000; i++) { d = { d: d }; } return { data: d }; }";
    let outcome = run(code, &[], 1);
    assert!(
        matches!(
            outcome,
            Err(DecodeError::StackOverflow | DecodeError::BadOutput(_))
        ),
        "{outcome:?}"
    );
    still_works();
}

#[test]
fn a_payload_over_the_limit_is_refused_before_running() {
    let payload = vec![0u8; sentinel_decoders::PAYLOAD_CEILING_BYTES + 1];
    assert_eq!(run(NORMAL, &payload, 1), Err(DecodeError::PayloadTooLarge));
    let max = vec![0u8; sentinel_decoders::PAYLOAD_CEILING_BYTES];
    assert!(run(NORMAL, &max, 1).is_ok());

    let lorawan = Limits {
        max_payload_bytes: 256,
        ..Limits::default()
    };
    let uplink = crate::uplink(&max[..257], 1);
    assert_eq!(
        decode(NORMAL, &uplink, &lorawan),
        Err(DecodeError::PayloadTooLarge)
    );
}

#[test]
fn tighter_limits_are_applied() {
    let tight = Limits {
        time: Duration::from_millis(20),
        memory_bytes: 2 * 1024 * 1024,
        ..Limits::default()
    };
    let uplink = crate::uplink(&[], 1);
    let start = Instant::now();
    let outcome = decode("function decodeUplink(i) { for (;;) {} }", &uplink, &tight);
    assert_eq!(outcome, Err(DecodeError::TimedOut));
    assert!(start.elapsed() < Duration::from_millis(500));

    // 4 MiB fits the default 16 MiB, not the 2 MiB limit.
    let code = "function decodeUplink(i) { var b = new Uint8Array(4 * 1024 * 1024); return { data: { n: b.length } }; }";
    assert!(run(code, &[], 1).is_ok());
    assert_eq!(decode(code, &uplink, &tight), Err(DecodeError::OutOfMemory));
}

#[test]
fn zero_limits_refuse_everything_rather_than_nothing() {
    let zero = Limits {
        memory_bytes: 0,
        ..Limits::default()
    };
    assert_eq!(
        decode(NORMAL, &crate::uplink(&[], 1), &zero),
        Err(DecodeError::OutOfMemory)
    );
    let no_time = Limits {
        time: Duration::ZERO,
        ..Limits::default()
    };
    assert_eq!(
        decode(
            "function decodeUplink(i) { for (;;) {} }",
            &crate::uplink(&[], 1),
            &no_time
        ),
        Err(DecodeError::TimedOut)
    );
}
