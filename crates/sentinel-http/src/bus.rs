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
    registry: Mutex<Registry>,
}

/// The devices' `Notify`s, and the size at which unheld ones are next swept.
#[derive(Debug, Default)]
struct Registry {
    devices: HashMap<Uuid, Arc<Notify>>,
    sweep_at: usize,
}

/// The smallest map that is swept.
const FIRST_SWEEP: usize = 1024;

impl LocalBus {
    fn entry(&self, device: Uuid) -> Arc<Notify> {
        let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let Registry { devices, sweep_at } = &mut *registry;
        // Drop entries nobody holds any more, so the map stays bounded by the
        // devices actually waiting. Sweeping only once the map has doubled
        // since the last sweep keeps it O(1) a call however many devices wait
        // (sweeping on every call past a fixed size cost 10,000 long-polling
        // devices a full scan per poll: docs/benchmarks.md, the faults run).
        if devices.len() >= *sweep_at {
            devices.retain(|_, notify| Arc::strong_count(notify) > 1);
            *sweep_at = (devices.len() * 2).max(FIRST_SWEEP);
        }
        devices.entry(device).or_default().clone()
    }
}

impl CommandBus for LocalBus {
    fn notify(&self, device: Uuid) {
        let notify = {
            let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
            registry.devices.get(&device).cloned()
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

    #[test]
    fn entries_nobody_waits_on_are_swept_once_the_map_doubles() {
        let bus = LocalBus::default();
        let held: Vec<Waiter> = (0..FIRST_SWEEP)
            .map(|_| bus.waiter(Uuid::new_v4()))
            .collect();
        for _ in 0..3 * FIRST_SWEEP {
            drop(bus.waiter(Uuid::new_v4()));
        }
        let registry = bus.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Every held waiter survives every sweep; the dropped ones do not pile up.
        assert!(
            held.iter()
                .all(|w| registry.devices.values().any(|n| Arc::ptr_eq(n, &w.notify))),
            "a held waiter's entry was swept"
        );
        assert!(
            registry.devices.len() <= 2 * FIRST_SWEEP + 1,
            "{} entries for {FIRST_SWEEP} waiting devices",
            registry.devices.len()
        );
    }
}
