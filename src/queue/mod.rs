//! The durable job queue: jobs in `queue.db` (SQLite, no Redis), run by a worker pool inside
//! the binary, with retries, leases, fair sharing across tenants, cron schedules and metrics
//! hooks.
//!
//! # Using it
//!
//! Open a [`Queue`] (a cheap, clone-able handle) on the data dir's `queue.db`, start a
//! [`WorkerPool`] with the handlers of every job kind, enqueue [`JobSpec`]s, and call
//! [`WorkerPool::shutdown`] at exit:
//!
//! ```no_run
//! # async fn demo(path: &std::path::Path) -> Result<(), agenthq::queue::QueueError> {
//! use agenthq::queue::{HandlerRegistry, JobSpec, Queue, QueueSettings, handler_fn};
//! let queue = Queue::open(path, QueueSettings::default())?;
//! let handlers = HandlerRegistry::new().with(
//!     "email.send",
//!     handler_fn(|ctx| async move {
//!         let to: String = ctx.payload()?;
//!         // …send, using ctx.job.id as the provider's idempotency key…
//!         Ok(())
//!     }),
//! );
//! let pool = queue.workers(handlers).start();
//! queue
//!     .enqueue(JobSpec::new("email.send").tenant("acme").payload("bob@example.com".into()))
//!     .await?;
//! // …
//! pool.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # The contract for handler authors
//!
//! **Execution is at least once.** A job runs until one attempt is recorded as finished. An
//! attempt can be repeated after it did its work: the process may crash before recording the
//! result, a lease may expire while the handler still runs (a hung worker, a long pause), and
//! shutdown releases unfinished jobs so the next start runs them again. So:
//!
//! * **Handlers must be idempotent.** Running a job twice must leave the same result as running
//!   it once. Check before acting ("is this message already posted?"), write with upserts
//!   keyed by the job, or pass `ctx.job.id` (stable across attempts) as the idempotency key of
//!   the external API you call.
//! * **Idempotency keys deduplicate enqueues, not executions.** [`JobSpec::idempotency_key`]
//!   makes a second enqueue of the same key (per tenant) return the existing job
//!   ([`Enqueued::Existing`]) while that job is queued or running; once it finished, the key
//!   can be enqueued again. Use it to make "enqueue if not already pending" race-free, e.g.
//!   `wake:<agent id>`.
//! * **Honour the cancellation token.** [`JobContext::cancel`] fires when someone cancels the
//!   job, when the attempt's timeout passes, and when shutdown's grace period ends. Check it
//!   between steps and `select!` on `cancel.cancelled()` around long waits; a handler that
//!   ignores it is dropped at its next `.await` (timeout) or aborted (shutdown). Returning an
//!   error after a cancel request ends the job `cancelled`; after shutdown's token it is
//!   released and runs again at the next start, without losing an attempt.
//! * **Failures.** Return [`JobFailure::retry`] (or any `anyhow::Error`) for a transient
//!   failure: the job is retried after an exponential, jittered backoff until `max_attempts`,
//!   then ends `dead` with the last error kept. Return [`JobFailure::permanent`] when no retry
//!   can help: the job ends `failed` at once. A panic or a timeout fails the attempt like a
//!   retryable error; the worker itself keeps running.
//! * **Concurrency keys** ([`JobSpec::concurrency_key`]) keep jobs of one tenant with the same
//!   key from running at the same time (e.g. `agent:<id>` for one run per agent).
//!
//! # Fairness and limits
//!
//! A claim gives every tenant with due jobs its best job before any tenant a second one, so a
//! tenant with a deep backlog cannot starve the others; [`TenantLimits`] caps how many jobs of
//! one tenant run at once (across every worker sharing the file).
//!
//! # Time
//!
//! Every time the queue reads or stores comes from its [`Clock`]; tests use a
//! [`ManualClock`]. Intervals of the worker pool (polling, lease renewal, reaping, timeouts,
//! shutdown grace) are tokio timers.

mod backoff;
mod clock;
mod error;
mod handler;
mod job;
mod limits;
mod list;
mod observer;
mod schedule;
mod settings;
mod sqlite;
mod store;
mod worker;

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Notify;

pub use backoff::Backoff;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::QueueError;
pub use handler::{
    HandlerRegistry, JobContext, JobFailure, JobHandler, NOOP_KIND, NoopHandler, handler_fn,
};
pub use job::{
    CancelOutcome, Enqueued, Job, JobDefaults, JobId, JobSpec, JobState, MAX_PAYLOAD_BYTES, NewJob,
};
pub use limits::{FixedTenantLimits, TenantLimits};
pub use list::{JobCount, JobFilter, JobPage, MAX_PAGE_SIZE, PageRequest, TenantFilter};
pub use observer::{AttemptOutcome, NoopObserver, QueueObserver};
pub use schedule::{CronExpr, MAX_CATCH_UP, Schedule, ScheduleSpec, Scheduler};
pub use settings::{QueueSettings, Synchronous};
pub use sqlite::{SqliteJobStore, SqliteOptions, migrations};
pub use store::{
    ClaimRequest, ExpiredLease, Finish, FinishOutcome, JobStore, PruneBefore, Renewal,
};
pub use worker::{ShutdownReport, WorkerPool, WorkerPoolBuilder};

use crate::store::StoreError;
use worker::Tokens;

/// A handle on the queue: enqueue, inspect, cancel, retry, schedule. Clone it freely; every
/// clone shares the store, the clock and the wake-up of this process's workers.
///
/// Every method runs its store call on tokio's blocking pool, never on the async thread.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn JobStore>,
    clock: Arc<dyn Clock>,
    settings: QueueSettings,
    /// Wakes the worker pool at once when there is new work (instead of at its next poll).
    wake: Notify,
    /// Tokens of the jobs running in this process, so a cancel fires at once.
    running: Tokens,
}

impl Queue {
    /// Opens (creating and migrating) the SQLite queue at `path`, on the system clock.
    /// Blocking: call it at startup or through `spawn_blocking`.
    pub fn open(path: &Path, settings: QueueSettings) -> Result<Self, QueueError> {
        let store = SqliteJobStore::open(path, SqliteOptions::from(&settings))?;
        Ok(Self::new(Arc::new(store), Arc::new(SystemClock), settings))
    }

    pub fn new(store: Arc<dyn JobStore>, clock: Arc<dyn Clock>, settings: QueueSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                settings,
                wake: Notify::new(),
                running: Tokens::default(),
            }),
        }
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.inner.settings
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The store, for blocking callers (maintenance jobs, the CLI).
    pub fn store(&self) -> &Arc<dyn JobStore> {
        &self.inner.store
    }

    /// A builder for the worker pool that runs this queue's jobs.
    pub fn workers(&self, handlers: HandlerRegistry) -> WorkerPoolBuilder {
        WorkerPoolBuilder::new(self.clone(), handlers)
    }

    /// A scheduler firing this queue's schedules (the worker pool runs one; this is for
    /// callers that tick by hand).
    pub fn scheduler(&self) -> Scheduler {
        Scheduler::new(self.inner.store.clone(), self.inner.settings.job_defaults())
    }

    /// Enqueues one job. An idempotency key that is live returns [`Enqueued::Existing`].
    pub async fn enqueue(&self, spec: JobSpec) -> Result<Enqueued, QueueError> {
        let mut results = self.enqueue_batch(vec![spec]).await?;
        results.pop().ok_or_else(|| {
            QueueError::Storage(StoreError::Internal("enqueue lost its result".into()))
        })
    }

    /// [`Queue::enqueue_batch`] for callers already on a blocking thread (services, which
    /// run on the blocking pool): the store is called on this thread.
    pub fn enqueue_batch_blocking(&self, specs: Vec<JobSpec>) -> Result<Vec<Enqueued>, QueueError> {
        let now = self.inner.clock.now();
        let defaults = self.inner.settings.job_defaults();
        let jobs = specs
            .into_iter()
            .map(|spec| spec.resolve(now, &defaults))
            .collect::<Result<Vec<_>, _>>()?;
        let results = self.inner.store.enqueue(jobs, now)?;
        if results.iter().any(|r| r.is_new()) {
            self.wake_workers();
        }
        Ok(results)
    }

    /// Enqueues jobs in one transaction: all or none. Results are in the order of `specs`.
    pub async fn enqueue_batch(&self, specs: Vec<JobSpec>) -> Result<Vec<Enqueued>, QueueError> {
        let now = self.inner.clock.now();
        let defaults = self.inner.settings.job_defaults();
        let jobs = specs
            .into_iter()
            .map(|spec| spec.resolve(now, &defaults))
            .collect::<Result<Vec<_>, _>>()?;
        let results = self.blocking(move |store| store.enqueue(jobs, now)).await?;
        if results.iter().any(|r| r.is_new()) {
            self.wake_workers();
        }
        Ok(results)
    }

    /// Cancels a queued job, or asks a running one to stop (its token fires at once when it
    /// runs in this process, at the next lease renewal otherwise).
    pub async fn cancel(&self, id: JobId) -> Result<CancelOutcome, QueueError> {
        let now = self.inner.clock.now();
        let outcome = self.blocking(move |store| store.cancel(id, now)).await?;
        if outcome == CancelOutcome::Requested {
            self.inner.running.fire(id);
        }
        Ok(outcome)
    }

    /// Queues a `dead`, `failed` or `cancelled` job again, attempts reset. Any other state is
    /// a [`QueueError::Conflict`].
    pub async fn retry(&self, id: JobId) -> Result<Job, QueueError> {
        let now = self.inner.clock.now();
        let job = self.blocking(move |store| store.retry(id, now)).await?;
        self.wake_workers();
        Ok(job)
    }

    pub async fn get(&self, id: JobId) -> Result<Job, QueueError> {
        self.blocking(move |store| store.get(id)).await
    }

    /// Jobs matching `filter`, newest first; pass the page's `next_cursor` as the next
    /// request's `after`.
    pub async fn list(&self, filter: JobFilter, page: PageRequest) -> Result<JobPage, QueueError> {
        self.blocking(move |store| store.list(&filter, &page)).await
    }

    /// Jobs per state and kind, for gauges.
    pub async fn counts(&self) -> Result<Vec<JobCount>, QueueError> {
        self.blocking(|store| store.counts()).await
    }

    /// Deletes finished jobs older than `before`; returns how many.
    pub async fn prune(&self, before: PruneBefore) -> Result<u64, QueueError> {
        self.blocking(move |store| store.prune(&before)).await
    }

    /// Creates or updates a schedule by name. Safe to call at every start: an unchanged
    /// expression keeps its next fire; a new or changed one first fires after now.
    pub async fn upsert_schedule(&self, spec: ScheduleSpec) -> Result<(), QueueError> {
        spec.check(&self.inner.settings.job_defaults())?;
        let now = self.inner.clock.now();
        let next = spec
            .cron
            .next_after(now)
            .ok_or_else(|| QueueError::Invalid("the cron expression never fires again".into()))?;
        self.blocking(move |store| store.upsert_schedule(&spec, next, now))
            .await
    }

    /// Deletes a schedule; `false` when there was none of that name.
    pub async fn delete_schedule(&self, name: &str) -> Result<bool, QueueError> {
        let name = name.to_owned();
        self.blocking(move |store| store.delete_schedule(&name))
            .await
    }

    pub async fn list_schedules(&self) -> Result<Vec<Schedule>, QueueError> {
        self.blocking(|store| store.list_schedules()).await
    }

    /// A passive checkpoint of the store's write-ahead log (maintenance).
    pub async fn checkpoint(&self) -> Result<(), QueueError> {
        self.blocking(|store| store.checkpoint()).await
    }

    /// Flushes the store to disk: call once at shutdown, after the worker pool stopped.
    pub async fn close(&self) -> Result<(), QueueError> {
        self.blocking(|store| {
            store.close();
            Ok(())
        })
        .await
    }

    fn wake_workers(&self) {
        self.inner.wake.notify_one();
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, QueueError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn JobStore) -> Result<T, QueueError> + Send + 'static,
    {
        let store = self.inner.store.clone();
        run_blocking(move || f(&*store)).await
    }
}

/// Runs a store call on tokio's blocking pool.
async fn run_blocking<T, F>(f: F) -> Result<T, QueueError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, QueueError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        QueueError::Storage(StoreError::Internal(format!(
            "queue storage task failed: {e}"
        )))
    })?
}

#[cfg(test)]
mod tests;
