//! The async pool runs decodes concurrently off the executor, and one stuck
//! decoder does not hold up the others.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sentinel_decoders::{DecodeError, DecoderPool, Limits};
use serde_json::json;

use crate::RECV_TIME;

const STUCK: &str = "function decodeUplink(input) { while (true) {} }";
const ECHO: &str = "function decodeUplink(input) { return { data: { port: input.fPort, first: input.bytes[0] } }; }";

fn pool(workers: usize, time: Duration) -> DecoderPool {
    let workers = NonZeroUsize::new(workers).unwrap_or(NonZeroUsize::MIN);
    let limits = Limits {
        time,
        ..Limits::default()
    };
    match DecoderPool::new(workers, limits) {
        Ok(pool) => pool,
        Err(error) => panic!("cannot start the pool: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_decoder_does_not_hold_up_the_others() {
    let pool = Arc::new(pool(2, Duration::from_millis(500)));
    let start = Instant::now();

    // The stuck decode is queued first, so one worker takes it; the other worker
    // must get through all the others while it spins.
    let stuck = {
        let pool = Arc::clone(&pool);
        tokio::spawn(async move {
            let outcome = pool.decode(STUCK.into(), vec![], 1, RECV_TIME).await;
            (outcome, start.elapsed())
        })
    };
    tokio::task::yield_now().await;
    let mut normal = Vec::new();
    for port in 1..=8u8 {
        let pool = Arc::clone(&pool);
        normal.push(tokio::spawn(async move {
            let outcome = pool
                .decode(ECHO.into(), vec![port * 10], port, RECV_TIME)
                .await;
            (port, outcome, start.elapsed())
        }));
    }

    let mut last_normal = Duration::ZERO;
    for handle in normal {
        let (port, outcome, finished) = handle.await.unwrap_or_else(|e| panic!("task: {e}"));
        let decoded = outcome.unwrap_or_else(|e| panic!("port {port}: {e:?}"));
        assert_eq!(
            serde_json::Value::Object(decoded.data),
            json!({ "port": port, "first": port * 10 })
        );
        last_normal = last_normal.max(finished);
    }
    let (outcome, stuck_finished) = stuck.await.unwrap_or_else(|e| panic!("task: {e}"));
    assert_eq!(outcome, Err(DecodeError::TimedOut));
    assert!(stuck_finished >= Duration::from_millis(500));
    assert!(
        stuck_finished < Duration::from_secs(2),
        "{stuck_finished:?}"
    );
    assert!(
        last_normal < stuck_finished,
        "normal decodes finished at {last_normal:?}, the stuck one at {stuck_finished:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_jobs_than_workers_all_complete() {
    let pool = Arc::new(pool(2, Duration::from_millis(300)));
    let code: Arc<str> = ECHO.into();
    let mut handles = Vec::new();
    for n in 0..40u8 {
        let pool = Arc::clone(&pool);
        let code = Arc::clone(&code);
        let stuck = n % 10 == 0;
        handles.push(tokio::spawn(async move {
            let code = if stuck { STUCK.into() } else { code };
            (stuck, n, pool.decode(code, vec![n], 3, RECV_TIME).await)
        }));
    }
    let mut timed_out = 0;
    for handle in handles {
        let (stuck, n, outcome) = handle.await.unwrap_or_else(|e| panic!("task: {e}"));
        if stuck {
            assert_eq!(outcome, Err(DecodeError::TimedOut));
            timed_out += 1;
        } else {
            let decoded = outcome.unwrap_or_else(|e| panic!("job {n}: {e:?}"));
            assert_eq!(decoded.data.get("first"), Some(&json!(n)));
        }
    }
    assert_eq!(timed_out, 4);
}

#[tokio::test]
async fn the_pool_refuses_oversized_payloads_without_queueing() {
    let pool = pool(1, Duration::from_millis(100));
    let outcome = pool.decode(ECHO.into(), vec![0; 5000], 1, RECV_TIME).await;
    assert_eq!(outcome, Err(DecodeError::PayloadTooLarge));
    assert_eq!(pool.limits().time, Duration::from_millis(100));
}

#[tokio::test]
async fn a_pool_worker_survives_out_of_memory_and_stack_overflow() {
    let pool = pool(1, Duration::from_millis(500));
    let oom = "function decodeUplink(i) { var s = 'x'; for (;;) { s = s + s; s.charCodeAt(1); } }";
    let deep = "function decodeUplink(i) { function f(n) { return f(n + 1) + 1; } return f(0); }";
    assert_eq!(
        pool.decode(oom.into(), vec![], 1, RECV_TIME).await,
        Err(DecodeError::OutOfMemory)
    );
    assert_eq!(
        pool.decode(deep.into(), vec![], 1, RECV_TIME).await,
        Err(DecodeError::StackOverflow)
    );
    let decoded = pool.decode(ECHO.into(), vec![9], 2, RECV_TIME).await;
    assert_eq!(
        decoded.map(|d| d.data.get("first").cloned()),
        Ok(Some(json!(9)))
    );
}
