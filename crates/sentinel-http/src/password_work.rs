//! Password work off the async executor. An Argon2id hash or verification takes
//! 19 MiB and tens of milliseconds of CPU, and the strength estimate is not free
//! either; run on the async worker threads, a handful of concurrent logins would
//! stall every other request (health checks and TLS handshakes included). Here it
//! runs on the blocking pool, at most `permits` at a time; a caller that cannot
//! get a permit within [`WAIT`] gets a 503 asking it to retry, instead of queueing
//! without bound.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::AppError;

/// How long a request waits for a free hashing slot before giving up.
const WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct PasswordWork {
    permits: Arc<Semaphore>,
}

impl PasswordWork {
    pub fn new(permits: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
        }
    }

    /// One slot per CPU core.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Runs `work` on the blocking pool once a slot is free.
    pub async fn run<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = tokio::time::timeout(WAIT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| AppError::Busy)?
            .map_err(|_| AppError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| AppError::Internal(format!("password work failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_beyond_the_slots_is_refused_instead_of_queued_forever() {
        let work = PasswordWork::new(1);
        let held = work.permits.clone().acquire_owned().await.unwrap();
        let refused = work.run(|| 1).await;
        assert!(matches!(refused, Err(AppError::Busy)), "{refused:?}");
        drop(held);
        assert_eq!(work.run(|| 2).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn work_runs_off_the_async_worker() {
        // A current-thread runtime: async code runs on this very thread.
        let here = std::thread::current().id();
        let there = PasswordWork::new(2)
            .run(|| std::thread::current().id())
            .await
            .unwrap();
        assert_ne!(here, there);
    }
}
