//! [`DecoderPool`]: decodes for async callers, on a few dedicated threads.

use std::io;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::{DecodeError, Decoded, Limits, Uplink, decode};

/// Jobs that may wait in the queue for each worker before callers wait for room.
const QUEUE_PER_WORKER: usize = 16;

/// Native stack given to a worker on top of [`Limits::stack_bytes`], for the Rust
/// and C frames around the interpreter and the engine's own slack.
const STACK_MARGIN_BYTES: usize = 1024 * 1024;

/// Runs decodes off the async executor on a fixed set of dedicated threads.
///
/// Each worker is a plain `std::thread` that takes one job at a time from a
/// bounded queue and runs the blocking [`decode`] with the pool's [`Limits`]. Why
/// not `spawn_blocking` behind a semaphore:
///
/// - The worker's stack size is chosen here, [`Limits::stack_bytes`] plus 1 MiB.
///   QuickJS's stack limit only protects the process if the thread's real stack is
///   larger; tokio's blocking threads get whatever the application configured.
/// - At most `workers` QuickJS runtimes exist at once, so decoders can use at most
///   `workers × memory_bytes` of heap and `workers` cores, and a hostile decoder
///   holds one worker for at most [`Limits::time`].
/// - The queue is bounded: when it is full, [`DecoderPool::decode`] waits
///   (asynchronously) for room, which is the backpressure.
///
/// Dropping the pool closes the queue; each worker finishes the job it has and
/// exits (the threads are not joined, so dropping never blocks).
#[derive(Debug)]
pub struct DecoderPool {
    jobs: mpsc::Sender<Job>,
    limits: Limits,
}

struct Job {
    code: Arc<str>,
    bytes: Vec<u8>,
    f_port: u8,
    recv_time: OffsetDateTime,
    reply: oneshot::Sender<Result<Decoded, DecodeError>>,
}

impl DecoderPool {
    /// Starts `workers` decoder threads that apply `limits` to every decode.
    pub fn new(workers: NonZeroUsize, limits: Limits) -> io::Result<Self> {
        let (jobs, queue) = mpsc::channel(workers.get().saturating_mul(QUEUE_PER_WORKER));
        let queue = Arc::new(Mutex::new(queue));
        let stack_size = limits.stack_bytes.saturating_add(STACK_MARGIN_BYTES);
        for index in 0..workers.get() {
            let queue = Arc::clone(&queue);
            thread::Builder::new()
                .name(format!("decoder-{index}"))
                .stack_size(stack_size)
                .spawn(move || work(&queue, &limits))?;
        }
        Ok(Self { jobs, limits })
    }

    /// The limits every decode of this pool runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decodes one uplink on a worker thread; see [`decode`](crate::decode).
    ///
    /// If the returned future is dropped, the decode still runs to completion
    /// (at most [`Limits::time`]) and its result is discarded.
    pub async fn decode(
        &self,
        code: Arc<str>,
        bytes: Vec<u8>,
        f_port: u8,
        recv_time: OffsetDateTime,
    ) -> Result<Decoded, DecodeError> {
        if bytes.len() > self.limits.payload_limit() {
            return Err(DecodeError::PayloadTooLarge);
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            code,
            bytes,
            f_port,
            recv_time,
            reply,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| DecodeError::Unavailable)?;
        answer.await.map_err(|_| DecodeError::Unavailable)?
    }
}

/// A worker's life: take a job, decode, answer, until the queue closes.
fn work(queue: &Mutex<mpsc::Receiver<Job>>, limits: &Limits) {
    loop {
        // The lock is held while waiting, so idle workers queue up on the mutex
        // and exactly one of them waits on the channel.
        let next = queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .blocking_recv();
        let Some(job) = next else {
            return;
        };
        let uplink = Uplink {
            bytes: &job.bytes,
            f_port: job.f_port,
            recv_time: job.recv_time,
        };
        let outcome = decode(&job.code, &uplink, limits);
        // The caller may have stopped waiting; then the result has no one to go to.
        let _ = job.reply.send(outcome);
    }
}
