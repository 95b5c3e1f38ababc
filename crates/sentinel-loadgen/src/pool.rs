//! A device's HTTP/1.1 connections, kept as the agent's HTTP client keeps them: a
//! request takes the idle connection or opens a new one, and gives it back when it
//! is answered; one connection at most is kept idle (the one used last), and for
//! [`IDLE`] at most. With
//! the long-poll scheduled around telemetry (`sentinel_protocol::polling`) a
//! device holds one connection, and a second one only while it reports on a
//! command during a poll.

use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::client::{Answer, Call, Failure, Http1, Target};

/// How long an unused connection is kept open (the agent's `POOL_IDLE`).
pub const IDLE: Duration = Duration::from_secs(5);

/// The connections of one device, connecting from `source`.
pub struct Pool {
    source: Option<IpAddr>,
    idle: Mutex<Option<(Http1, Instant)>>,
}

impl Pool {
    pub fn new(source: Option<IpAddr>) -> Self {
        Self {
            source,
            idle: Mutex::new(None),
        }
    }

    /// Sends `call` on the idle connection, or on a new one, which is then kept.
    pub async fn send(
        &self,
        target: &Target,
        call: Call<'_>,
        bearer: Option<&str>,
    ) -> Result<Answer, Failure> {
        let mut connection = match self.take() {
            Some(connection) => connection,
            None => target.connect_http1(self.source).await?,
        };
        let answer = connection.send(call, bearer).await;
        // An answer read whole, whatever its status, leaves the connection ready
        // for the next request; a timeout or a broken one does not.
        if matches!(answer, Ok(_) | Err(Failure::Status(_))) {
            self.give_back(connection);
        }
        answer
    }

    /// Closes the idle connection if it has been idle for [`IDLE`]; what the agent's
    /// client does on its own, done here by whoever opened the extra connection.
    pub fn expire(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle
            .as_ref()
            .is_some_and(|(_, since)| since.elapsed() >= IDLE)
        {
            idle.take();
        }
    }

    /// Closes the idle connection (at the end of a run).
    pub fn close(&self) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    fn take(&self) -> Option<Http1> {
        let (connection, since) = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        (connection.is_open() && since.elapsed() < IDLE).then_some(connection)
    }

    fn give_back(&self, connection: Http1) {
        // One idle connection is enough: the one used last is kept, another closed.
        if connection.is_open() {
            *self.idle.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((connection, Instant::now()));
        }
    }
}
