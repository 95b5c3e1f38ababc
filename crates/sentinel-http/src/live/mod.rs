//! The live feed: what happens in an organization — enrollments, telemetry,
//! inventories, commands, revocations, IoT uplinks — fanned out in-process to
//! the dashboards watching that organization, and only to them. Publishing
//! costs nothing while nobody watches. [`socket`] serves one watcher over a
//! WebSocket.

pub mod socket;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use sentinel_core::{OrgId, Timestamp, UserId};
use sentinel_protocol::telemetry::TimedSample;
use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::error::AppError;

/// Events an organization's channel holds for a watcher that has not read
/// them yet; a watcher further behind is told how many it missed.
const CHANNEL_CAPACITY: usize = 256;
/// Live feeds one user may hold open at once (browser tabs).
pub const MAX_PER_USER: usize = 16;
/// Live feeds one server holds open at once.
pub const MAX_WATCHERS: usize = 4096;
/// Decoded uplink data larger than this (as JSON) is left out of the event;
/// the device page shows it from the store.
const MAX_UPLINK_DATA_BYTES: usize = 4096;

/// One thing that happened in an organization, as its watchers receive it
/// (JSON with a `type`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A device enrolled.
    DeviceEnrolled { device_id: Uuid, hostname: String },
    /// A device was revoked.
    DeviceRevoked { device_id: Uuid },
    /// A device reported telemetry (it is online); the newest sample's
    /// percentages, for the charts' latest values.
    Telemetry {
        device_id: Uuid,
        at: Timestamp,
        samples: u32,
        cpu_percent: Option<f64>,
        memory_percent: Option<f64>,
    },
    /// A device's full inventory was stored.
    Inventory { device_id: Uuid, packages: usize },
    /// A command changed status (queued, delivered, succeeded, failed, …).
    Command {
        device_id: Uuid,
        command_id: Uuid,
        status: String,
        exit_code: Option<i32>,
    },
    /// An IoT uplink was stored: its decoded data (when small enough) or the
    /// decoder's error.
    Uplink {
        device_id: Uuid,
        received_at: Timestamp,
        f_port: i32,
        data: Option<serde_json::Value>,
        error: Option<String>,
    },
}

impl LiveEvent {
    /// A telemetry event for a batch of `samples` stored at `now`, with the
    /// newest sample's percentages (none for a heartbeat).
    pub fn telemetry(
        device_id: Uuid,
        now: Timestamp,
        samples: u32,
        newest: Option<&TimedSample>,
    ) -> LiveEvent {
        let finite = |v: f64| v.is_finite().then_some(v);
        let cpu_percent = newest.and_then(|s| s.sample.cpu_percent).and_then(finite);
        let memory_percent = newest.and_then(|s| {
            let memory = &s.sample.memory;
            (memory.total_bytes > 0)
                .then(|| memory.used_bytes as f64 / memory.total_bytes as f64 * 100.0)
        });
        LiveEvent::Telemetry {
            device_id,
            at: newest.map_or(now, |s| Timestamp::from_unix_seconds(s.at)),
            samples,
            cpu_percent,
            memory_percent,
        }
    }

    /// An uplink event; decoded data too large for the feed is left out.
    pub fn uplink(
        device_id: Uuid,
        received_at: Timestamp,
        f_port: i32,
        data: Option<&serde_json::Value>,
        error: Option<String>,
    ) -> LiveEvent {
        let data = data
            .filter(|d| serde_json::to_vec(d).is_ok_and(|json| json.len() <= MAX_UPLINK_DATA_BYTES))
            .cloned();
        LiveEvent::Uplink {
            device_id,
            received_at,
            f_port,
            data,
            error,
        }
    }
}

/// The organizations being watched, and who watches how many feeds.
#[derive(Debug, Default)]
pub struct LiveFeed {
    hub: Mutex<Hub>,
}

#[derive(Debug, Default)]
struct Hub {
    channels: HashMap<OrgId, broadcast::Sender<Utf8Bytes>>,
    per_user: HashMap<UserId, usize>,
    watchers: usize,
}

impl LiveFeed {
    fn hub(&self) -> std::sync::MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `event` to the watchers of `org`, if there are any.
    pub fn publish(&self, org: OrgId, event: LiveEvent) {
        let Some(sender) = self.hub().channels.get(&org).cloned() else {
            return;
        };
        match serde_json::to_string(&event) {
            // No receiver left between the lookup and now is not an error.
            Ok(json) => drop(sender.send(Utf8Bytes::from(json))),
            Err(e) => tracing::warn!(error = %e, "could not encode a live event"),
        }
    }

    /// A new watcher of `org` for `user`, within the per-user and per-server
    /// limits. Events published from now on reach it.
    pub fn watch(self: &Arc<Self>, org: OrgId, user: UserId) -> Result<Watch, AppError> {
        let mut hub = self.hub();
        if hub.watchers >= MAX_WATCHERS {
            return Err(AppError::Busy);
        }
        let held = hub.per_user.entry(user).or_default();
        if *held >= MAX_PER_USER {
            return Err(AppError::TooManyRequests(std::time::Duration::from_secs(
                10,
            )));
        }
        *held += 1;
        hub.watchers += 1;
        let events = hub
            .channels
            .entry(org)
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe();
        Ok(Watch {
            feed: Arc::clone(self),
            org,
            user,
            events,
        })
    }
}

/// One open feed: the organization's events from when it opened. Closing it
/// (dropping) gives back its place in the limits, and the organization's
/// channel when it was the last watcher.
#[derive(Debug)]
pub struct Watch {
    feed: Arc<LiveFeed>,
    org: OrgId,
    user: UserId,
    events: broadcast::Receiver<Utf8Bytes>,
}

impl Watch {
    /// The next event, or how many were missed because this watcher fell
    /// behind.
    pub async fn next(&mut self) -> Result<Utf8Bytes, u64> {
        loop {
            match self.events.recv().await {
                Ok(event) => return Ok(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => return Err(missed),
                // The channel lives while this receiver does: cannot happen,
                // but waiting forever is the right answer if it did.
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut hub = self.feed.hub();
        hub.watchers = hub.watchers.saturating_sub(1);
        if let Some(held) = hub.per_user.get_mut(&self.user) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                hub.per_user.remove(&self.user);
            }
        }
        // This watcher's receiver is dropped after this body: it is the last
        // when the count is one.
        let last = hub
            .channels
            .get(&self.org)
            .is_some_and(|sender| sender.receiver_count() <= 1);
        if last {
            hub.channels.remove(&self.org);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Open feeds, and organizations watched.
    fn counts(feed: &LiveFeed) -> (usize, usize) {
        let hub = feed.hub();
        (hub.watchers, hub.channels.len())
    }

    fn telemetry(device_id: Uuid) -> LiveEvent {
        LiveEvent::Telemetry {
            device_id,
            at: Timestamp::from_unix_seconds(1_700_000_000),
            samples: 1,
            cpu_percent: Some(12.5),
            memory_percent: None,
        }
    }

    #[tokio::test]
    async fn a_watcher_receives_only_its_own_organizations_events() {
        let feed = Arc::new(LiveFeed::default());
        let (a, b) = (OrgId::random(), OrgId::random());
        let user = UserId::random();
        let mut watch_a = feed.watch(a, user).unwrap();
        let mut watch_b = feed.watch(b, user).unwrap();
        let (device_a, device_b) = (Uuid::new_v4(), Uuid::new_v4());
        feed.publish(b, telemetry(device_b));
        feed.publish(a, telemetry(device_a));
        let first = watch_a.next().await.unwrap();
        assert!(first.as_str().contains(&device_a.to_string()));
        assert!(!first.as_str().contains(&device_b.to_string()));
        assert!(first.as_str().contains(r#""type":"telemetry""#));
        let other = watch_b.next().await.unwrap();
        assert!(other.as_str().contains(&device_b.to_string()));
        // Nothing else is waiting for either.
        assert!(watch_a.events.is_empty());
        assert!(watch_b.events.is_empty());
    }

    #[test]
    fn publishing_to_an_unwatched_organization_keeps_nothing() {
        let feed = Arc::new(LiveFeed::default());
        feed.publish(OrgId::random(), telemetry(Uuid::new_v4()));
        assert_eq!(counts(&feed), (0, 0));
    }

    #[test]
    fn closing_the_last_watcher_gives_back_the_channel_and_the_places() {
        let feed = Arc::new(LiveFeed::default());
        let org = OrgId::random();
        let user = UserId::random();
        let first = feed.watch(org, user).unwrap();
        let second = feed.watch(org, UserId::random()).unwrap();
        assert_eq!(counts(&feed), (2, 1));
        drop(first);
        assert_eq!(counts(&feed), (1, 1));
        drop(second);
        assert_eq!(counts(&feed), (0, 0));
        assert!(feed.hub().per_user.is_empty());
    }

    #[test]
    fn one_user_holds_at_most_a_bounded_number_of_feeds() {
        let feed = Arc::new(LiveFeed::default());
        let user = UserId::random();
        let held: Vec<Watch> = (0..MAX_PER_USER)
            .map(|_| feed.watch(OrgId::random(), user).unwrap())
            .collect();
        let refused = feed.watch(OrgId::random(), user).unwrap_err();
        assert!(matches!(refused, AppError::TooManyRequests(_)));
        // Another user is not held back by it.
        assert!(feed.watch(OrgId::random(), UserId::random()).is_ok());
        drop(held);
        assert!(feed.watch(OrgId::random(), user).is_ok());
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_is_told_how_many_it_missed() {
        let feed = Arc::new(LiveFeed::default());
        let org = OrgId::random();
        let mut watch = feed.watch(org, UserId::random()).unwrap();
        for _ in 0..CHANNEL_CAPACITY + 10 {
            feed.publish(org, telemetry(Uuid::new_v4()));
        }
        assert_eq!(watch.next().await.unwrap_err(), 10);
        assert!(watch.next().await.is_ok());
    }

    #[test]
    fn large_uplink_data_is_left_out_of_the_event() {
        let small = serde_json::json!({"temperature": 21.5});
        let large = serde_json::json!({"blob": "x".repeat(MAX_UPLINK_DATA_BYTES)});
        let at = Timestamp::from_unix_seconds(0);
        let LiveEvent::Uplink { data, .. } =
            LiveEvent::uplink(Uuid::nil(), at, 1, Some(&small), None)
        else {
            unreachable!()
        };
        assert_eq!(data, Some(small));
        let LiveEvent::Uplink { data, .. } =
            LiveEvent::uplink(Uuid::nil(), at, 1, Some(&large), None)
        else {
            unreachable!()
        };
        assert_eq!(data, None);
    }
}
