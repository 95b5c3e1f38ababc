//! What a run measures: latencies per endpoint, errors by endpoint and kind, and
//! the counters the rates come from. Every latency is kept (a few million
//! numbers at most), so percentiles are exact.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::client::Failure;

/// The two populations a run keeps apart: well-behaved devices and misbehaving ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Population {
    Clean,
    Faulty,
}

/// Collects measurements from every simulated device.
#[derive(Default)]
pub struct Recorder {
    latencies: Mutex<BTreeMap<(Population, &'static str), Vec<u32>>>,
    errors: Mutex<BTreeMap<(Population, &'static str, Failure), u64>>,
    command_delivery: Mutex<Vec<u32>>,
    pub enrolled: AtomicU64,
    pub telemetry_acknowledged: AtomicU64,
    pub commands_queued: AtomicU64,
    pub commands_received: AtomicU64,
    /// Refusals the misbehaving devices were meant to get (401 for a bad token, 400
    /// for a malformed body, …).
    pub expected_refusals: AtomicU64,
}

impl Recorder {
    /// A successful request to `endpoint` that took `took`.
    pub fn latency(&self, population: Population, endpoint: &'static str, took: Duration) {
        self.latencies(population, endpoint, &[micros(took)]);
    }

    /// Successful requests to `endpoint`, each taking so many microseconds.
    pub fn latencies(&self, population: Population, endpoint: &'static str, each: &[u32]) {
        if let Ok(mut map) = self.latencies.lock() {
            map.entry((population, endpoint))
                .or_default()
                .extend_from_slice(each);
        }
    }

    /// A failed request to `endpoint`.
    pub fn error(&self, population: Population, endpoint: &'static str, failure: Failure) {
        if let Ok(mut map) = self.errors.lock() {
            *map.entry((population, endpoint, failure)).or_default() += 1;
        }
    }

    /// A command reached its device `took` after its queue request was sent.
    pub fn delivered(&self, took: Duration) {
        self.commands_received.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut v) = self.command_delivery.lock() {
            v.push(micros(took));
        }
    }

    /// Forgets latencies and errors so far (the ramp-up), keeping the counters.
    pub fn reset_latencies(&self) {
        if let Ok(mut map) = self.latencies.lock() {
            map.clear();
        }
        if let Ok(mut v) = self.command_delivery.lock() {
            v.clear();
        }
    }

    /// Latency summaries, per population and endpoint.
    pub fn endpoints(&self) -> Vec<EndpointStats> {
        let Ok(map) = self.latencies.lock() else {
            return Vec::new();
        };
        map.iter()
            .map(|((population, endpoint), values)| EndpointStats {
                population: *population,
                endpoint: (*endpoint).to_owned(),
                latency: Summary::of(values),
            })
            .collect()
    }

    /// Errors, per population, endpoint and kind.
    pub fn errors(&self) -> Vec<ErrorCount> {
        let Ok(map) = self.errors.lock() else {
            return Vec::new();
        };
        map.iter()
            .map(|((population, endpoint, failure), count)| ErrorCount {
                population: *population,
                endpoint: (*endpoint).to_owned(),
                kind: failure.to_string(),
                server_error: failure.is_server_error(),
                count: *count,
            })
            .collect()
    }

    /// The command delivery latency summary.
    pub fn delivery(&self) -> Summary {
        self.command_delivery
            .lock()
            .map(|v| Summary::of(&v))
            .unwrap_or_default()
    }
}

/// `took` in whole microseconds, as latencies are kept.
pub fn micros(took: Duration) -> u32 {
    u32::try_from(took.as_micros()).unwrap_or(u32::MAX)
}

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    pub fn of(micros: &[u32]) -> Self {
        if micros.is_empty() {
            return Self::default();
        }
        let mut sorted = micros.to_vec();
        sorted.sort_unstable();
        let at = |p: f64| {
            let rank = ((sorted.len() as f64) * p).ceil() as usize;
            let index = rank.clamp(1, sorted.len()) - 1;
            sorted
                .get(index)
                .copied()
                .map_or(0.0, |v| f64::from(v) / 1000.0)
        };
        Self {
            count: sorted.len() as u64,
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: sorted.last().map_or(0.0, |v| f64::from(*v) / 1000.0),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EndpointStats {
    pub population: Population,
    pub endpoint: String,
    pub latency: Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorCount {
    pub population: Population,
    pub endpoint: String,
    pub kind: String,
    pub server_error: bool,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u32> = (1..=100).map(|v| v * 1000).collect();
        let s = Summary::of(&values);
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p95_ms, 95.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert_eq!(Summary::of(&[]).count, 0);
        assert_eq!(Summary::of(&[7000]).p99_ms, 7.0);
    }
}
