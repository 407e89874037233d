//! A latency histogram shared by the WebSocket benches (`ws_load.rs`, `ws_floor.rs`):
//! 10 µs buckets up to 10 s, recorded lock-free from any number of tasks.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts of latencies, by 10 µs bucket.
pub struct Histogram {
    buckets: Vec<AtomicU64>,
}

const BUCKET_US: u64 = 10;
const BUCKETS: usize = 1_000_000;

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            buckets: (0..=BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn record(&self, micros: u64) {
        let i = ((micros / BUCKET_US) as usize).min(BUCKETS);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The upper bound of the bucket holding quantile `q`, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return f64::NAN;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return ((i as u64 + 1) * BUCKET_US) as f64 / 1000.0;
            }
        }
        f64::INFINITY
    }
}
