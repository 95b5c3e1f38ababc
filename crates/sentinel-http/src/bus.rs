//! Wake-ups for long-polling agents: queueing a command for a device wakes that
//! device's waiting poll at once. [`CommandBus`] is the seam; [`LocalBus`] is
//! the in-process implementation (one server). A cross-node implementation
//! (PostgreSQL LISTEN/NOTIFY, NATS) can replace it without touching callers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

/// Delivers "something is waiting for device X" to whoever waits on X.
pub trait CommandBus: Send + Sync + std::fmt::Debug {
    /// Wakes the waiters of `device`.
    fn notify(&self, device: Uuid);

    /// A waiter for `device`'s next notification. Create it *before* checking
    /// for work, then await [`Waiter::wait`]: a notification in between is not
    /// lost.
    fn waiter(&self, device: Uuid) -> Waiter;
}

/// One pending wait for a device.
pub struct Waiter {
    notify: Arc<Notify>,
}

impl Waiter {
    /// Waits for a notification or until `timeout`; true when notified.
    pub async fn wait(self, timeout: Duration) -> bool {
        let notified = self.notify.notified();
        tokio::time::timeout(timeout, notified).await.is_ok()
    }
}

/// The in-process bus: a `Notify` per device with waiters.
#[derive(Debug, Default)]
pub struct LocalBus {
    devices: Mutex<HashMap<Uuid, Arc<Notify>>>,
}

impl LocalBus {
    fn entry(&self, device: Uuid) -> Arc<Notify> {
        let mut devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        // Drop entries nobody holds any more, so the map stays bounded by the
        // devices actually waiting.
        if devices.len() > 1024 {
            devices.retain(|_, notify| Arc::strong_count(notify) > 1);
        }
        devices.entry(device).or_default().clone()
    }
}

impl CommandBus for LocalBus {
    fn notify(&self, device: Uuid) {
        let notify = {
            let devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
            devices.get(&device).cloned()
        };
        if let Some(notify) = notify {
            // Stores a permit if no waiter is parked yet (a waiter created
            // before the check picks it up).
            notify.notify_waiters();
            notify.notify_one();
        }
    }

    fn waiter(&self, device: Uuid) -> Waiter {
        Waiter {
            notify: self.entry(device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_notification_wakes_the_device_waiter_only() {
        let bus = LocalBus::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let waiter_a = bus.waiter(a);
        let waiter_b = bus.waiter(b);
        bus.notify(a);
        assert!(waiter_a.wait(Duration::from_secs(5)).await);
        assert!(!waiter_b.wait(Duration::from_millis(50)).await);
    }
}
