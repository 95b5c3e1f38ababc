//! One decode from start to end: a fresh QuickJS runtime and context with the
//! limits applied, the uplink turned into `input`, the script compiled and run,
//! `decodeUplink` called, its promise jobs drained and its result read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rquickjs::context::{EvalOptions, intrinsic};
use rquickjs::{Array, Constructor, Context, Ctx, Function, Object, Runtime, Value};
use time::OffsetDateTime;

use crate::exception::{Phase, classify};
use crate::{DecodeError, Decoded, Limits, output};

/// The built-in objects a decoder gets on top of QuickJS's base objects (Object,
/// Function, Array, Error, Number, String, Boolean, Symbol, Math, Reflect, BigInt,
/// eval and friends). Proxy, WeakRef, FinalizationRegistry, performance and
/// DOMException are left out as decoders have no use for them. `Promise` stays
/// so that `import()` fails with a rejected promise rather than not at all.
type Intrinsics = (
    intrinsic::Date,
    intrinsic::Eval,
    intrinsic::RegExpCompiler,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::MapSet,
    intrinsic::TypedArrays,
    intrinsic::Promise,
);

/// Looks up `decodeUplink` however the script bound it (a function declaration,
/// `var`, `let`/`const` at top level, or a property of `globalThis`).
const FIND_DECODE_UPLINK: &str = "typeof decodeUplink === 'function' ? decodeUplink : undefined";

/// One uplink as the decoder sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uplink<'a> {
    /// The application payload (`input.bytes`, an array of numbers 0..=255).
    pub bytes: &'a [u8],
    /// The LoRaWAN FPort (`input.fPort`).
    pub f_port: u8,
    /// When the network server received the uplink (`input.recvTime`, a `Date`,
    /// millisecond precision, as ChirpStack and The Things Stack pass it).
    pub recv_time: OffsetDateTime,
}

/// Runs `code`'s `decodeUplink(input)` on `uplink` in a fresh sandbox.
///
/// Blocks the calling thread for up to [`Limits::time`]; from async code use
/// [`DecoderPool`](crate::DecoderPool).
pub fn decode(code: &str, uplink: &Uplink<'_>, limits: &Limits) -> Result<Decoded, DecodeError> {
    if uplink.bytes.len() > limits.payload_limit() {
        return Err(DecodeError::PayloadTooLarge);
    }
    run(limits, |ctx, deadline| {
        // Everything the host needs is built before the script can tamper with
        // the globals it would come from (Date, JSON).
        let input = input(ctx, uplink).map_err(|error| classify(ctx, error, Phase::Call))?;
        let serializer = output::serializer(ctx)?;
        let decode_uplink = load(ctx, code)?;
        let result: Value = decode_uplink
            .call((input,))
            .map_err(|error| classify(ctx, error, Phase::Call))?;
        drain_jobs(ctx, deadline)?;
        output::read(ctx, result, &serializer, limits.max_output_bytes)
    })
}

/// Compiles `code`, runs its top level and checks that it defines a function
/// `decodeUplink`, under the same limits as a decode; for validating a decoder
/// when it is saved.
pub fn check(code: &str, limits: &Limits) -> Result<(), DecodeError> {
    run(limits, |ctx, _| load(ctx, code).map(drop))
}

/// A point in time after which the script is interrupted; `None` when the time
/// limit is too large to be represented, which is no limit in practice.
type Deadline = Option<Instant>;

fn past(deadline: Deadline) -> bool {
    deadline.is_some_and(|deadline| Instant::now() >= deadline)
}

/// Creates a runtime and context with the limits applied, runs `body` in it and
/// tears both down. A fresh runtime per call is the isolation: nothing a script
/// leaves behind (globals, prototypes, pending jobs, heap) outlives its decode.
fn run<R>(
    limits: &Limits,
    body: impl FnOnce(&Ctx<'_>, Deadline) -> Result<R, DecodeError>,
) -> Result<R, DecodeError> {
    let deadline = Instant::now().checked_add(limits.time);
    let timed_out = Arc::new(AtomicBool::new(false));

    let runtime = Runtime::new().map_err(|_| DecodeError::OutOfMemory)?;
    runtime.set_memory_limit(limits.engine_memory_limit());
    runtime.set_max_stack_size(limits.engine_stack_limit());
    let interrupted = Arc::clone(&timed_out);
    // Once past the deadline this keeps answering true, so a `catch` or `finally`
    // that tries to carry on is interrupted again straight away (the engine also
    // makes the interrupt error uncatchable).
    runtime.set_interrupt_handler(Some(Box::new(move || {
        let stop = past(deadline);
        if stop {
            interrupted.store(true, Ordering::Relaxed);
        }
        stop
    })));
    let context = Context::custom::<Intrinsics>(&runtime).map_err(|_| DecodeError::OutOfMemory)?;

    let outcome = context.with(|ctx| body(&ctx, deadline));
    // Whatever the script made of it, a decode that was interrupted timed out.
    if timed_out.load(Ordering::Relaxed) {
        return Err(DecodeError::TimedOut);
    }
    outcome
}

/// Builds `{ bytes, fPort, recvTime, variables }`.
fn input<'js>(ctx: &Ctx<'js>, uplink: &Uplink<'_>) -> rquickjs::Result<Object<'js>> {
    let bytes = Array::new(ctx.clone())?;
    for (index, byte) in uplink.bytes.iter().enumerate() {
        bytes.set(index, i32::from(*byte))?;
    }
    let date: Constructor = ctx.globals().get("Date")?;
    // OffsetDateTime spans ±9999 years, whose milliseconds always fit an i64.
    let millis =
        i64::try_from(uplink.recv_time.unix_timestamp_nanos() / 1_000_000).unwrap_or_default();
    let recv_time: Value = date.construct((millis,))?;

    let input = Object::new(ctx.clone())?;
    input.set("bytes", bytes)?;
    input.set("fPort", i32::from(uplink.f_port))?;
    input.set("recvTime", recv_time)?;
    input.set("variables", Object::new(ctx.clone())?)?;
    Ok(input)
}

/// Compiles and runs the script's top level (sloppy mode, as ChirpStack and most
/// decoders written for browsers expect) and finds `decodeUplink`.
fn load<'js>(ctx: &Ctx<'js>, code: &str) -> Result<Function<'js>, DecodeError> {
    let mut options = EvalOptions::default();
    options.strict = false;
    ctx.eval_with_options::<Value, _>(code, options)
        .map_err(|error| classify(ctx, error, Phase::Load))?;
    let found: Value = ctx
        .eval(FIND_DECODE_UPLINK)
        .map_err(|error| classify(ctx, error, Phase::Load))?;
    found.into_function().ok_or(DecodeError::MissingFunction)
}

/// Runs the promise jobs the call queued (the microtask checkpoint a browser
/// would run), so that `.then` callbacks have filled in the result before it is
/// read. Each job runs under the interrupt handler; the loop itself also stops
/// at the deadline in case jobs keep queueing jobs.
fn drain_jobs(ctx: &Ctx<'_>, deadline: Deadline) -> Result<(), DecodeError> {
    while ctx.execute_pending_job() {
        if past(deadline) {
            return Err(DecodeError::TimedOut);
        }
    }
    Ok(())
}
