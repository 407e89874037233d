//! Tunables of the queue, its store and its workers.

use std::time::Duration;

use super::backoff::Backoff;
use super::job::JobDefaults;

/// How hard SQLite syncs `queue.db` to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Durable except for the last transactions before a power loss (never corruption): a lost
    /// enqueue or completion then means a job is enqueued again by its caller or runs again,
    /// which at-least-once handlers tolerate.
    #[default]
    Normal,
    /// Every commit reaches the disk before it returns.
    Full,
}

impl Synchronous {
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueSettings {
    /// How long a claim holds a job without renewal. Workers renew every third of it; a worker
    /// that dies loses its jobs to the reaper after at most this long.
    pub lease: Duration,
    /// How often idle workers look for due jobs when no enqueue woke them (delayed jobs,
    /// retries, jobs enqueued by another process).
    pub poll_interval: Duration,
    /// Jobs one worker pool runs at once.
    pub concurrency: usize,
    /// Most jobs one claim takes (one transaction).
    pub batch_size: usize,
    /// Retry delays.
    pub backoff: Backoff,
    pub default_max_attempts: u32,
    pub default_timeout: Duration,
    /// How long shutdown waits for running jobs before it cancels them and releases their
    /// leases.
    pub shutdown_grace: Duration,
    /// How often the reaper returns jobs whose lease expired.
    pub reap_interval: Duration,
    /// How often the scheduler looks for due cron fires; `None` runs no scheduler in the pool.
    pub schedule_interval: Option<Duration>,
    pub synchronous: Synchronous,
    /// How long a store call waits for a lock held by another connection or process.
    pub busy_timeout: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            concurrency: 64,
            batch_size: 128,
            backoff: Backoff::default(),
            default_max_attempts: 5,
            default_timeout: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(10),
            reap_interval: Duration::from_secs(10),
            schedule_interval: Some(Duration::from_secs(1)),
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl QueueSettings {
    pub fn job_defaults(&self) -> JobDefaults {
        JobDefaults {
            max_attempts: self.default_max_attempts,
            timeout: self.default_timeout,
        }
    }
}
