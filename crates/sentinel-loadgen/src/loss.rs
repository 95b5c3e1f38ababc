//! The loss check: every device's acknowledged telemetry against what the
//! member API shows stored, for either transport.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::admin::{Admin, StoredSample};
use crate::client::Failure;

/// What one device knows of its own telemetry: the `uptime_seconds` of every
/// sample the server acknowledged (each sample's is one more than the last's,
/// so it names the sample), and how many it sent without a definite answer.
#[derive(Debug, Clone)]
pub struct Ledger {
    pub device: Uuid,
    pub acknowledged: Vec<u64>,
    pub unconfirmed: u64,
}

/// Acknowledged telemetry against what the member API shows stored.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LossCheck {
    pub devices_checked: u64,
    pub acknowledged: u64,
    pub stored: u64,
    pub lost: u64,
    /// Devices whose stored sequence numbers are not contiguous.
    pub sequence_gaps: u64,
    /// Samples sent without a definite answer (they may or may not be stored).
    pub unconfirmed: u64,
    /// Devices the read-back failed for.
    pub unreadable: u64,
}

impl LossCheck {
    pub fn line(&self) -> String {
        format!(
            "acknowledged {}, stored {}, lost {}",
            self.acknowledged, self.stored, self.lost
        )
    }

    pub fn passed(&self) -> bool {
        self.lost == 0 && self.sequence_gaps == 0 && self.unreadable == 0
    }

    fn add(&mut self, one: &Self) {
        self.devices_checked += one.devices_checked;
        self.acknowledged += one.acknowledged;
        self.stored += one.stored;
        self.lost += one.lost;
        self.sequence_gaps += one.sequence_gaps;
        self.unconfirmed += one.unconfirmed;
        self.unreadable += one.unreadable;
    }
}

/// Reads every device's telemetry back through the member API: the stored count
/// (`telemetry_count`) and the newest stored samples (up to 120), whose sequence
/// numbers must be contiguous and whose `uptime_seconds` must be exactly the
/// acknowledged ones.
pub async fn check(admin: &Admin, org: Uuid, ledgers: Vec<Ledger>) -> LossCheck {
    let gate = Arc::new(Semaphore::new(32));
    let mut reads = JoinSet::new();
    for (spread, ledger) in ledgers.into_iter().enumerate() {
        let (admin, gate) = (admin.clone(), gate.clone());
        reads.spawn(async move {
            let _slot = gate.acquire_owned().await.ok();
            let read = async {
                let count = admin
                    .device(org, ledger.device, spread)
                    .await?
                    .telemetry_count;
                let samples = admin.telemetry(org, ledger.device, spread).await?;
                Ok::<_, Failure>((count, samples))
            };
            match read.await {
                Ok((count, samples)) => compare(&ledger, count, &samples),
                Err(_) => unreadable(&ledger),
            }
        });
    }
    let mut total = LossCheck::default();
    while let Some(done) = reads.join_next().await {
        match done {
            Ok(one) => total.add(&one),
            Err(_) => total.unreadable += 1,
        }
    }
    total
}

/// A device whose store could not be read: everything it was told is counted lost.
fn unreadable(ledger: &Ledger) -> LossCheck {
    LossCheck {
        devices_checked: 1,
        acknowledged: ledger.acknowledged.len() as u64,
        lost: ledger.acknowledged.len() as u64,
        unconfirmed: ledger.unconfirmed,
        unreadable: 1,
        ..LossCheck::default()
    }
}

/// One device's ledger against its stored count and newest stored samples
/// (newest first).
fn compare(ledger: &Ledger, count: i64, samples: &[StoredSample]) -> LossCheck {
    let mut check = LossCheck {
        devices_checked: 1,
        acknowledged: ledger.acknowledged.len() as u64,
        stored: u64::try_from(count).unwrap_or(0),
        unconfirmed: ledger.unconfirmed,
        ..LossCheck::default()
    };
    // Newest first: seq count, count-1, … with no gap.
    let contiguous = samples
        .iter()
        .enumerate()
        .all(|(i, s)| s.seq == count - i as i64);
    if !contiguous {
        check.sequence_gaps = 1;
    }
    let listed: HashSet<u64> = samples.iter().map(|s| s.sample.uptime_seconds).collect();
    let oldest_listed = samples.last().map(|s| s.sample.uptime_seconds);
    // Acknowledged samples the listing covers must each be in it; older ones are
    // counted against the samples stored before the listing's window.
    let (covered, older): (Vec<u64>, Vec<u64>) = ledger
        .acknowledged
        .iter()
        .partition(|u| oldest_listed.is_some_and(|oldest| **u >= oldest));
    let missing_listed = covered.iter().filter(|u| !listed.contains(u)).count() as u64;
    let stored_older = check.stored.saturating_sub(samples.len() as u64);
    let missing_older = (older.len() as u64).saturating_sub(stored_older);
    check.lost = missing_listed + missing_older;
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::StoredFields;

    fn ledger(acknowledged: std::ops::RangeInclusive<u64>) -> Ledger {
        Ledger {
            device: Uuid::nil(),
            acknowledged: acknowledged.collect(),
            unconfirmed: 0,
        }
    }

    /// The newest `listed` of `count` stored samples, whose uptimes run from `first`.
    fn stored(count: i64, first: u64, listed: i64) -> Vec<StoredSample> {
        (0..listed.min(count))
            .map(|i| StoredSample {
                seq: count - i,
                sample: StoredFields {
                    uptime_seconds: first + (count - 1 - i) as u64,
                },
            })
            .collect()
    }

    #[test]
    fn everything_acknowledged_and_stored_passes() {
        // 500 stored, the newest 120 listed: the older 380 are covered by the count.
        let check = compare(&ledger(1000..=1499), 500, &stored(500, 1000, 120));
        assert_eq!(
            (check.acknowledged, check.stored, check.lost),
            (500, 500, 0)
        );
        assert!(check.passed(), "{check:?}");
    }

    #[test]
    fn a_missing_listed_sample_and_a_short_count_are_losses() {
        let mut samples = stored(10, 1, 10);
        samples.retain(|s| s.sample.uptime_seconds != 7);
        for s in &mut samples {
            if s.sample.uptime_seconds < 7 {
                s.seq += 1;
            }
        }
        // The server says 10 stored but lists 9 samples, 7 missing among them.
        let check = compare(&ledger(1..=10), 10, &samples);
        assert_eq!(check.lost, 1, "{check:?}");
        // Acknowledged 200, stored 150 with the newest 120 listed: 50 older ones missing.
        let check = compare(&ledger(1..=200), 150, &stored(150, 51, 120));
        assert_eq!(check.lost, 50, "{check:?}");
        assert!(!check.passed());
    }

    #[test]
    fn gaps_in_the_stored_sequence_are_reported() {
        let mut samples = stored(5, 1, 5);
        samples.remove(2);
        let check = compare(&ledger(1..=3), 5, &samples);
        assert_eq!(check.sequence_gaps, 1);
        assert!(!check.passed());
    }

    #[test]
    fn unacknowledged_stored_samples_are_not_losses() {
        // 3 acknowledged, 2 more stored whose PUBACK never came.
        let mut mine = ledger(1..=3);
        mine.unconfirmed = 2;
        let check = compare(&mine, 5, &stored(5, 1, 5));
        assert_eq!((check.lost, check.unconfirmed), (0, 2));
        assert!(check.passed());
        let lost = unreadable(&mine);
        assert_eq!((lost.lost, lost.unreadable), (3, 1));
    }
}
