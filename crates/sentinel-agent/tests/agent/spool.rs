//! The telemetry spool: bounded, oldest dropped first, drained oldest first in batches.

use sentinel_agent::spool::{MAX_SPOOLED_SAMPLES, Spool};
use sentinel_protocol::telemetry::{MAX_BATCH_SAMPLES, MemoryUsage, TelemetrySample, TimedSample};

fn sample(at: i64) -> TimedSample {
    TimedSample {
        at,
        sample: TelemetrySample {
            uptime_seconds: at as u64,
            load: [0.0; 3],
            cpu_percent: None,
            memory: MemoryUsage::default(),
            swap: MemoryUsage::default(),
            disks: Vec::new(),
            interfaces: Vec::new(),
            logged_in_users: 0,
            warnings: Vec::new(),
        },
    }
}

fn times(samples: &[TimedSample]) -> Vec<i64> {
    samples.iter().map(|sample| sample.at).collect()
}

#[test]
fn an_outage_keeps_the_newest_samples_and_drains_oldest_first() {
    let mut spool = Spool::default();
    assert!(spool.next_batch().is_none());
    let pushed = MAX_SPOOLED_SAMPLES as i64 + 120;
    let dropped: Vec<bool> = (0..pushed).map(|at| spool.push(sample(at))).collect();
    assert_eq!(spool.len(), MAX_SPOOLED_SAMPLES, "bounded");
    assert_eq!(dropped.iter().filter(|d| **d).count(), 120);
    assert!(dropped[MAX_SPOOLED_SAMPLES] && !dropped[MAX_SPOOLED_SAMPLES - 1]);

    let mut sent = Vec::new();
    while let Some(batch) = spool.next_batch() {
        assert!(batch.samples.len() <= MAX_BATCH_SAMPLES);
        sent.extend(times(&batch.samples));
        spool.acknowledge(&batch);
    }
    assert!(spool.is_empty());
    let expected: Vec<i64> = (120..pushed).collect();
    assert_eq!(sent, expected, "the oldest 120 dropped, the rest in order");
}

#[test]
fn a_failed_batch_is_sent_again_and_new_samples_wait_behind_it() {
    let mut spool = Spool::default();
    for at in 0..600 {
        spool.push(sample(at));
    }
    let first = spool.next_batch().unwrap();
    assert_eq!(first.samples.len(), MAX_BATCH_SAMPLES);
    assert_eq!(times(&first.samples)[..3], [0, 1, 2]);
    // Not acknowledged (the send failed): the same batch again.
    assert_eq!(spool.next_batch().unwrap(), first);
    // A sample taken while the batch was in flight is not acknowledged with it.
    spool.push(sample(600));
    spool.acknowledge(&first);
    let rest = spool.next_batch().unwrap();
    assert_eq!(times(&rest.samples), (500..=600).collect::<Vec<_>>());
}

#[test]
fn acknowledging_samples_already_dropped_is_harmless() {
    let mut spool = Spool::default();
    for at in 0..MAX_SPOOLED_SAMPLES as i64 {
        spool.push(sample(at));
    }
    let batch = spool.next_batch().unwrap();
    // While it is in flight the spool overflows past the whole batch.
    for at in 0..(MAX_BATCH_SAMPLES as i64 + 10) {
        spool.push(sample(10_000 + at));
    }
    spool.acknowledge(&batch);
    assert_eq!(spool.len(), MAX_SPOOLED_SAMPLES);
    assert_eq!(
        spool.next_batch().unwrap().samples[0].at,
        MAX_BATCH_SAMPLES as i64 + 10
    );
}
