//! The telemetry spool: samples waiting to be sent while the server is unreachable,
//! bounded (the oldest are dropped first) and sent oldest first in batches.

use std::collections::VecDeque;

use sentinel_protocol::telemetry::{MAX_BATCH_SAMPLES, TimedSample};

/// How many samples the agent keeps while it cannot send them: a day at 30-second
/// intervals.
pub const MAX_SPOOLED_SAMPLES: usize = 2880;

/// Samples not yet acknowledged by the server, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Spool {
    /// Each sample with its sequence number, which only grows.
    samples: VecDeque<(u64, TimedSample)>,
    next_sequence: u64,
}

/// The oldest spooled samples, as one batch, and how to acknowledge them.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// At most [`MAX_BATCH_SAMPLES`], oldest first.
    pub samples: Vec<TimedSample>,
    /// The sequence number of the batch's newest sample.
    pub last: u64,
}

impl Spool {
    /// Adds the newest sample; drops the oldest and says so if the spool was full.
    pub fn push(&mut self, sample: TimedSample) -> bool {
        let full = self.samples.len() >= MAX_SPOOLED_SAMPLES;
        if full {
            self.samples.pop_front();
        }
        self.samples.push_back((self.next_sequence, sample));
        self.next_sequence += 1;
        full
    }

    /// The oldest samples, at most [`MAX_BATCH_SAMPLES`]; `None` when there are none.
    pub fn next_batch(&self) -> Option<Batch> {
        let count = self.samples.len().min(MAX_BATCH_SAMPLES);
        let (last, _) = self.samples.get(count.checked_sub(1)?)?;
        Some(Batch {
            samples: self
                .samples
                .range(..count)
                .map(|(_, sample)| sample.clone())
                .collect(),
            last: *last,
        })
    }

    /// Removes the samples of a batch the server acknowledged (those already dropped
    /// meanwhile are gone anyway).
    pub fn acknowledge(&mut self, batch: &Batch) {
        while self
            .samples
            .front()
            .is_some_and(|(sequence, _)| *sequence <= batch.last)
        {
            self.samples.pop_front();
        }
    }

    /// How many samples are waiting.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is waiting.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}
