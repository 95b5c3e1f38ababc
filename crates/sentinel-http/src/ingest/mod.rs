//! Ingestion of IoT uplinks from external MQTT brokers (network servers such as
//! ChirpStack): one worker task per enabled broker connection ("integration")
//! of every organization, started at boot and restarted or stopped when the
//! connection is created, changed or deleted, each with a status members can
//! read.
//!
//! - [`chirpstack`]: the payload format, parsed.
//! - [`broker`]: the MQTT client options (persistent session, manual acks,
//!   TLS with rustls and ring).
//! - [`worker`]: one connection's life: connect, subscribe, store or drop
//!   each uplink, then acknowledge it; reconnect with back-off.

pub mod broker;
pub mod chirpstack;
pub mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sentinel_core::{OrgId, Timestamp};
use serde::Serialize;
use tokio::task::JoinHandle;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::state::AppState;

/// The running workers, by integration id.
#[derive(Debug, Default)]
pub struct Ingest {
    workers: Mutex<HashMap<Uuid, Worker>>,
}

#[derive(Debug)]
struct Worker {
    org: OrgId,
    task: JoinHandle<()>,
    status: Arc<Status>,
}

/// What a worker has done since it started; shared between it and readers.
#[derive(Debug, Default)]
pub struct Status {
    connected: AtomicBool,
    last_error: Mutex<Option<String>>,
    last_message_at: Mutex<Option<Timestamp>>,
    received: AtomicU64,
    stored: AtomicU64,
    duplicates: AtomicU64,
    unknown_dev_eui: AtomicU64,
    malformed: AtomicU64,
    decode_errors: AtomicU64,
}

/// A counter of [`Status`].
#[derive(Debug, Clone, Copy)]
pub enum Count {
    /// A message arrived.
    Received,
    /// An uplink was stored.
    Stored,
    /// An uplink was already stored (a redelivery), so not stored again.
    Duplicate,
    /// An uplink named a DevEUI no device of the organization has: dropped.
    UnknownDevEui,
    /// A message was not a valid event: dropped.
    Malformed,
    /// The device's decoder failed: stored raw with the error.
    DecodeError,
}

impl Status {
    pub fn count(&self, what: Count) {
        let counter = match what {
            Count::Received => &self.received,
            Count::Stored => &self.stored,
            Count::Duplicate => &self.duplicates,
            Count::UnknownDevEui => &self.unknown_dev_eui,
            Count::Malformed => &self.malformed,
            Count::DecodeError => &self.decode_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connected(&self) {
        self.connected.store(true, Ordering::Relaxed);
        *lock(&self.last_error) = None;
    }

    pub fn disconnected(&self, error: String) {
        self.connected.store(false, Ordering::Relaxed);
        *lock(&self.last_error) = Some(error);
    }

    pub fn message_at(&self, at: Timestamp) {
        *lock(&self.last_message_at) = Some(at);
    }

    fn view(&self, running: bool) -> IngestStatus {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        IngestStatus {
            running,
            connected: running && self.connected.load(Ordering::Relaxed),
            last_error: lock(&self.last_error).clone(),
            last_message_at: *lock(&self.last_message_at),
            received: get(&self.received),
            stored: get(&self.stored),
            duplicates: get(&self.duplicates),
            unknown_dev_eui: get(&self.unknown_dev_eui),
            malformed: get(&self.malformed),
            decode_errors: get(&self.decode_errors),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A broker connection's worker as the API shows it; counters are since the
/// worker last started (at boot or when the connection was changed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct IngestStatus {
    /// A worker runs for this connection (it is enabled).
    pub running: bool,
    /// The worker is connected and subscribed (or subscribing).
    pub connected: bool,
    /// Why the last connection attempt or session ended.
    pub last_error: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_message_at: Option<Timestamp>,
    pub received: u64,
    pub stored: u64,
    /// Redeliveries of uplinks already stored.
    pub duplicates: u64,
    /// Uplinks for a DevEUI no device of the organization has (not stored).
    pub unknown_dev_eui: u64,
    /// Messages that were not valid events (not stored).
    pub malformed: u64,
    /// Uplinks whose decoder failed (stored raw, with the error).
    pub decode_errors: u64,
}

impl Ingest {
    /// Starts a worker for every enabled connection of every organization.
    pub async fn start_all(&self, state: &AppState) -> Result<(), sentinel_store::StoreError> {
        for (org, id) in state.stores.enabled_integrations().await? {
            self.restart(state, org, id, true);
        }
        Ok(())
    }

    /// (Re)starts the worker of `id` when `enabled`, stops it otherwise; for
    /// after a change, so the worker reads the new settings.
    pub fn restart(&self, state: &AppState, org: OrgId, id: Uuid, enabled: bool) {
        let mut workers = lock(&self.workers);
        if let Some(old) = workers.remove(&id) {
            old.task.abort();
        }
        if enabled {
            let status = Arc::new(Status::default());
            let task = tokio::spawn(worker::run(state.clone(), org, id, status.clone()));
            workers.insert(id, Worker { org, task, status });
        }
    }

    /// The status of `org`'s connection `id` (not running if it has no worker).
    pub fn status(&self, org: OrgId, id: Uuid) -> IngestStatus {
        match lock(&self.workers).get(&id) {
            Some(worker) if worker.org == org => worker.status.view(!worker.task.is_finished()),
            _ => IngestStatus::default(),
        }
    }

    /// Stops the workers of `org` (deleted).
    pub async fn stop_org(&self, org: OrgId) {
        self.stop_where(|worker| worker.org == org).await;
    }

    /// Stops every worker (at shutdown, before the stores close). A message a
    /// worker was handling is not acknowledged: the broker delivers it again.
    pub async fn stop_all(&self) {
        self.stop_where(|_| true).await;
    }

    async fn stop_where(&self, stop: impl Fn(&Worker) -> bool) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut workers = lock(&self.workers);
            let ids: Vec<Uuid> = workers
                .iter()
                .filter(|(_, worker)| stop(worker))
                .map(|(id, _)| *id)
                .collect();
            ids.iter()
                .filter_map(|id| workers.remove(id))
                .map(|worker| worker.task)
                .collect()
        };
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }
}
