//! The storage boundary of the queue: one trait, one implementation per backend. SQLite
//! ([`SqliteJobStore`](super::SqliteJobStore)) is the default; a PostgreSQL one can claim with
//! `FOR UPDATE SKIP LOCKED` behind the same interface.
//!
//! Every method is blocking: async code calls them through `tokio::task::spawn_blocking` (the
//! [`Queue`](super::Queue) handle and the worker pool do), never on an async thread.
//!
//! Methods that act on jobs a worker holds (`renew`, `finish`, `release`) take the worker's
//! lease owner and change only jobs that are still `running` under that owner: a worker whose
//! lease expired (and whose job was reaped, maybe claimed by another worker) changes nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::QueueError;
use super::job::{CancelOutcome, Enqueued, Job, JobId, JobState, NewJob};
use super::limits::TenantLimits;
use super::list::{JobCount, JobFilter, JobPage, PageRequest};
use super::schedule::{Schedule, ScheduleSpec};

/// What one claim asks for.
pub struct ClaimRequest<'a> {
    /// The lease owner: a worker pool's unique id.
    pub owner: &'a str,
    pub now: DateTime<Utc>,
    /// The claimed jobs' leases end at `now + lease`.
    pub lease: Duration,
    /// Most jobs to claim: the caller's free slots, capped by its batch size.
    pub limit: usize,
    pub tenant_limits: &'a dyn TenantLimits,
}

/// How a worker ended one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum FinishOutcome {
    Succeeded,
    /// Retry at `retry_at` if attempts remain, else the job is `dead` (the error is kept).
    Failed {
        error: String,
        retry_at: DateTime<Utc>,
    },
    /// No retry: the job ends `failed`.
    FailedPermanently {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub id: JobId,
    pub outcome: FinishOutcome,
}

/// The result of a lease renewal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renewal {
    /// Still held, but someone asked to cancel them: fire their tokens.
    pub cancel_requested: Vec<JobId>,
    /// No longer held by this owner (reaped, maybe running elsewhere): stop them.
    pub lost: Vec<JobId>,
}

/// A job the reaper took back from a worker whose lease expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredLease {
    pub id: JobId,
    pub kind: String,
    /// `Queued` (will run again), `Dead` (no attempts left) or `Cancelled` (cancel requested).
    pub state: JobState,
}

/// How long finished jobs are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneBefore {
    /// `succeeded` and `cancelled` jobs that finished before this are deleted.
    pub done: DateTime<Utc>,
    /// `dead` and `failed` jobs (kept longer, for inspection) that finished before this are
    /// deleted.
    pub dead: DateTime<Utc>,
}

pub trait JobStore: Send + Sync + 'static {
    /// Inserts jobs in one transaction, in order. A job whose idempotency key is live in its
    /// tenant (or earlier in the same batch) is not inserted: its result is that job's id.
    fn enqueue(&self, jobs: Vec<NewJob>, now: DateTime<Utc>) -> Result<Vec<Enqueued>, QueueError>;

    /// Claims up to `limit` due jobs in one transaction, fairly across tenants: each tenant
    /// with due jobs gets its best job considered before any tenant gets a second one, within
    /// its running cap and its concurrency keys' limits. Among tenants, and within one,
    /// higher priority then older `run_at` goes first. Claimed jobs are `running`, leased to
    /// `owner`, with `attempts` counting this attempt.
    fn claim(&self, request: &ClaimRequest<'_>) -> Result<Vec<Job>, QueueError>;

    /// Extends the leases of `ids` held by `owner` to `now + lease`.
    fn renew(
        &self,
        owner: &str,
        ids: &[JobId],
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Renewal, QueueError>;

    /// Records the end of attempts, in one transaction. The result is aligned with `results`:
    /// the job's new state, or `None` when `owner` no longer held it (nothing changed). A job
    /// with a cancel request ends `cancelled` unless it succeeded.
    fn finish(
        &self,
        owner: &str,
        results: &[Finish],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<JobState>>, QueueError>;

    /// Cancels a queued job at once, or asks a running one to stop. A finished job is a
    /// [`QueueError::Conflict`].
    fn cancel(&self, id: JobId, now: DateTime<Utc>) -> Result<CancelOutcome, QueueError>;

    /// Gives back jobs `owner` holds but will not finish (shutdown): they are due at once and
    /// the attempt they were on is not counted, since they did not fail. Returns how many.
    fn release(&self, owner: &str, ids: &[JobId], now: DateTime<Utc>) -> Result<usize, QueueError>;

    /// Takes back running jobs whose lease expired before `now` (their worker died or hung).
    /// The attempt counts: a job out of attempts is `dead` with the error "lease expired".
    fn reap(&self, now: DateTime<Utc>) -> Result<Vec<ExpiredLease>, QueueError>;

    /// Queues a `dead`, `failed` or `cancelled` job again with its attempts reset (admins).
    fn retry(&self, id: JobId, now: DateTime<Utc>) -> Result<Job, QueueError>;

    fn get(&self, id: JobId) -> Result<Job, QueueError>;

    /// Jobs matching `filter`, newest first, one page at a time.
    fn list(&self, filter: &JobFilter, page: &PageRequest) -> Result<JobPage, QueueError>;

    /// Number of jobs per state and kind (only pairs with at least one job).
    fn counts(&self) -> Result<Vec<JobCount>, QueueError>;

    /// Deletes finished jobs older than the policy; returns how many.
    fn prune(&self, before: &PruneBefore) -> Result<u64, QueueError>;

    /// Creates or updates the schedule named `spec.name`. `next_fire_at` is used when the
    /// schedule is new or its cron expression changed; otherwise its next fire stays.
    fn upsert_schedule(
        &self,
        spec: &ScheduleSpec,
        next_fire_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), QueueError>;

    /// Deletes a schedule; `false` when there was none of that name.
    fn delete_schedule(&self, name: &str) -> Result<bool, QueueError>;

    fn list_schedules(&self) -> Result<Vec<Schedule>, QueueError>;

    /// Schedules whose next fire is at or before `now`.
    fn due_schedules(&self, now: DateTime<Utc>) -> Result<Vec<Schedule>, QueueError>;

    /// In one transaction: moves schedule `name` from `expected_next` to `next_fire_at` and
    /// enqueues `fires`. When the stored next fire is no longer `expected_next` (another
    /// process fired it), nothing happens and the result is `None`.
    fn fire_schedule(
        &self,
        name: &str,
        expected_next: DateTime<Utc>,
        next_fire_at: DateTime<Utc>,
        fires: Vec<NewJob>,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<Enqueued>>, QueueError>;

    /// A passive checkpoint of the write-ahead log (maintenance): never waits for readers.
    fn checkpoint(&self) -> Result<(), QueueError>;

    /// Flushes to disk: called once at shutdown.
    fn close(&self);
}
