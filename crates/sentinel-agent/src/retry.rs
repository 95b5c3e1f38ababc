//! What a loop does after a failed request: how long it waits, by kind of failure, and
//! what it logs.

use std::time::Duration;

use crate::api::ApiError;
use crate::backoff::{self, Backoff};

/// One loop's retry schedules: one for an unavailable server, one for a refused token.
#[derive(Debug, Clone)]
pub struct Retry {
    unavailable: Backoff,
    unauthorized: Backoff,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            unavailable: Backoff::new(backoff::UNAVAILABLE),
            unauthorized: Backoff::new(backoff::UNAUTHORIZED),
        }
    }
}

impl Retry {
    /// A request went through: the next failure starts the schedules over.
    pub fn succeeded(&mut self) {
        self.unavailable.reset();
        self.unauthorized.reset();
    }

    /// How long to wait after `error` while doing `what`; logs it.
    pub fn delay_after(&mut self, error: &ApiError, what: &str) -> Duration {
        let delay = match error {
            ApiError::Unauthorized => self.unauthorized.next_delay(backoff::random()),
            ApiError::RateLimited {
                retry_after: Some(delay),
            } => *delay,
            ApiError::RateLimited { retry_after: None }
            | ApiError::Refused { .. }
            | ApiError::Unavailable(_) => self.unavailable.next_delay(backoff::random()),
        };
        match error {
            ApiError::Unauthorized => tracing::error!(
                "{what}: {error}; re-enroll it if so (sentinel-agent enroll --re-enroll); \
                 retrying in {}s",
                delay.as_secs()
            ),
            _ => tracing::warn!("{what}: {error}; retrying in {:.1}s", delay.as_secs_f64()),
        }
        delay
    }
}
