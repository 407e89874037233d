//! Hooks for metrics: the worker pool reports what happens, the caller turns it into
//! Prometheus series. Every method defaults to doing nothing, and all are called on async
//! threads: they must be quick and never block.

use std::time::Duration;

/// How one attempt ended, as the worker saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    Succeeded,
    /// The handler returned an error.
    Failed,
    Panicked,
    TimedOut,
    /// The handler stopped because its job was cancelled.
    Cancelled,
    /// Cut off by shutdown: the job was released for the next start, not failed.
    Released,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Panicked => "panicked",
            AttemptOutcome::TimedOut => "timed_out",
            AttemptOutcome::Cancelled => "cancelled",
            AttemptOutcome::Released => "released",
        }
    }
}

pub trait QueueObserver: Send + Sync + 'static {
    /// A job started; `latency` is how long after its due time (claim latency).
    fn claimed(&self, _kind: &str, _latency: Duration) {}
    /// An attempt ended after running for `duration`.
    fn finished(&self, _kind: &str, _outcome: AttemptOutcome, _duration: Duration) {}
    /// A failed attempt was queued again for a retry.
    fn retried(&self, _kind: &str) {}
    /// A job ran out of attempts (or failed permanently).
    fn dead(&self, _kind: &str) {}
    /// The reaper found `count` running jobs whose lease had expired.
    fn lease_expired(&self, _count: usize) {}
}

/// Observes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl QueueObserver for NoopObserver {}
