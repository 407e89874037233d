//! Prometheus series of the job queue: depth by state and kind, claim latency, run time,
//! attempt outcomes, retries, dead jobs and lease expiries. The worker pool reports through
//! [`QueueObserver`]; the depth is read from the store when metrics are scraped.

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts};

use crate::queue::{AttemptOutcome, JobCount, QueueObserver};

pub struct QueueMetrics {
    depth: IntGaugeVec,
    claim_latency: HistogramVec,
    run_seconds: HistogramVec,
    attempts: IntCounterVec,
    retries: IntCounterVec,
    dead: IntCounterVec,
    lease_expiries: IntCounter,
}

impl QueueMetrics {
    pub fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let depth = IntGaugeVec::new(
            Opts::new("queue_jobs", "Jobs in queue.db by state and kind"),
            &["state", "kind"],
        )?;
        let claim_latency = HistogramVec::new(
            HistogramOpts::new(
                "queue_claim_latency_seconds",
                "Time from a job's due time to its start, by kind",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
            ]),
            &["kind"],
        )?;
        let run_seconds = HistogramVec::new(
            HistogramOpts::new("queue_run_seconds", "Run time of job attempts, by kind").buckets(
                vec![
                    0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0,
                ],
            ),
            &["kind"],
        )?;
        let attempts = IntCounterVec::new(
            Opts::new(
                "queue_attempts_total",
                "Finished job attempts by kind and outcome (succeeded, failed, panicked, timed_out, cancelled, released)",
            ),
            &["kind", "outcome"],
        )?;
        let retries = IntCounterVec::new(
            Opts::new(
                "queue_retries_total",
                "Failed attempts queued again, by kind",
            ),
            &["kind"],
        )?;
        let dead = IntCounterVec::new(
            Opts::new(
                "queue_dead_total",
                "Jobs that ran out of attempts or failed for good, by kind",
            ),
            &["kind"],
        )?;
        let lease_expiries = IntCounter::new(
            "queue_lease_expiries_total",
            "Running jobs whose lease expired (their worker died or hung) and were taken back",
        )?;
        registry.register(Box::new(depth.clone()))?;
        registry.register(Box::new(claim_latency.clone()))?;
        registry.register(Box::new(run_seconds.clone()))?;
        registry.register(Box::new(attempts.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(dead.clone()))?;
        registry.register(Box::new(lease_expiries.clone()))?;
        Ok(Self {
            depth,
            claim_latency,
            run_seconds,
            attempts,
            retries,
            dead,
            lease_expiries,
        })
    }

    /// Sets the depth gauges to `counts` (states with no jobs of a kind read 0).
    pub fn set_depth(&self, counts: &[JobCount]) {
        self.depth.reset();
        for c in counts {
            self.depth
                .with_label_values(&[c.state.as_str(), &c.kind])
                .set(i64::try_from(c.count).unwrap_or(i64::MAX));
        }
    }
}

impl QueueObserver for QueueMetrics {
    fn claimed(&self, kind: &str, latency: Duration) {
        self.claim_latency
            .with_label_values(&[kind])
            .observe(latency.as_secs_f64());
    }

    fn finished(&self, kind: &str, outcome: AttemptOutcome, duration: Duration) {
        self.run_seconds
            .with_label_values(&[kind])
            .observe(duration.as_secs_f64());
        self.attempts
            .with_label_values(&[kind, outcome.as_str()])
            .inc();
    }

    fn retried(&self, kind: &str) {
        self.retries.with_label_values(&[kind]).inc();
    }

    fn dead(&self, kind: &str) {
        self.dead.with_label_values(&[kind]).inc();
    }

    fn lease_expired(&self, count: usize) {
        self.lease_expiries.inc_by(count as u64);
    }
}
