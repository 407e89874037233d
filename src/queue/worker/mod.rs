//! The worker pool: claims due jobs while it has free slots, runs each as a tokio task,
//! records the results in batches, and keeps its leases alive.
//!
//! Tasks of a pool, all stopped and awaited by [`WorkerPool::shutdown`]:
//!
//! * the **dispatcher** claims (one transaction per batch) whenever slots are free and jobs
//!   may be due: woken at once by an enqueue in this process, by a finished flush (a tenant
//!   cap or concurrency key may have freed up), else every `poll_interval`;
//! * one task per **running job** (see `attempt`);
//! * the **completer** records finished attempts, many per transaction: at high throughput
//!   one commit per job would cost more than the jobs;
//! * the **renewer** extends the leases of running jobs every third of the lease and fires the
//!   tokens of jobs that were cancelled or lost meanwhile;
//! * the **reaper** and the **scheduler**.
//!
//! Every store call goes through `spawn_blocking`; no SQLite call runs on an async thread.

mod attempt;
mod background;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::handler::HandlerRegistry;
use super::job::{Job, JobId};
use super::limits::{FixedTenantLimits, TenantLimits};
use super::observer::{NoopObserver, QueueObserver};
use super::store::ClaimRequest;
use super::{Queue, QueueError, run_blocking};
use attempt::Done;

/// Finished attempts waiting for the completer. Bounded: when the store falls behind, job
/// tasks wait to report (holding their slot), so the dispatcher stops claiming.
const DONE_CAPACITY: usize = 4096;
/// How long, after shutdown's grace, handlers get to react to their cancelled token before
/// they are aborted.
const KILL_WAIT: Duration = Duration::from_secs(1);

/// Cancellation tokens of running jobs, by id.
#[derive(Default)]
pub(crate) struct Tokens(Mutex<HashMap<JobId, CancellationToken>>);

impl Tokens {
    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, CancellationToken>> {
        // The map stays consistent whatever panicked while it was held.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, id: JobId, token: CancellationToken) {
        self.lock().insert(id, token);
    }

    fn remove(&self, id: JobId) {
        self.lock().remove(&id);
    }

    pub(crate) fn fire(&self, id: JobId) {
        if let Some(token) = self.lock().get(&id) {
            token.cancel();
        }
    }

    fn ids(&self) -> Vec<JobId> {
        self.lock().keys().copied().collect()
    }
}

/// Configures and starts a [`WorkerPool`]; from [`Queue::workers`].
pub struct WorkerPoolBuilder {
    queue: Queue,
    handlers: HandlerRegistry,
    limits: Arc<dyn TenantLimits>,
    observer: Arc<dyn QueueObserver>,
    owner: Option<String>,
}

impl WorkerPoolBuilder {
    pub(crate) fn new(queue: Queue, handlers: HandlerRegistry) -> Self {
        Self {
            queue,
            handlers,
            limits: Arc::new(FixedTenantLimits::default()),
            observer: Arc::new(NoopObserver),
            owner: None,
        }
    }

    /// Per-tenant caps on running jobs (default: none).
    pub fn tenant_limits(mut self, limits: Arc<dyn TenantLimits>) -> Self {
        self.limits = limits;
        self
    }

    pub fn observer(mut self, observer: Arc<dyn QueueObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// The lease owner name; unique per pool (default: `worker-<random>`).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Starts the pool's tasks. Must be called inside a tokio runtime.
    pub fn start(self) -> WorkerPool {
        let settings = self.queue.settings().clone();
        let shared = Arc::new(Shared {
            owner: self
                .owner
                .unwrap_or_else(|| format!("worker-{}", uuid::Uuid::new_v4().simple())),
            queue: self.queue,
            handlers: self.handlers,
            limits: self.limits,
            observer: self.observer,
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            slot_freed: Notify::new(),
            running: Tokens::default(),
            kill: CancellationToken::new(),
        });
        let stop = CancellationToken::new();
        let stop_renewing = CancellationToken::new();
        let (done_tx, done_rx) = mpsc::channel(DONE_CAPACITY);
        let mut background = vec![tokio::spawn(background::reap(shared.clone(), stop.clone()))];
        if let Some(every) = settings.schedule_interval {
            background.push(tokio::spawn(background::schedule(
                shared.clone(),
                stop.clone(),
                every,
            )));
        }
        WorkerPool {
            dispatcher: tokio::spawn(dispatch(shared.clone(), stop.clone(), done_tx)),
            completer: tokio::spawn(background::complete(shared.clone(), done_rx)),
            renewer: tokio::spawn(background::renew(shared.clone(), stop_renewing.clone())),
            background,
            shared,
            stop,
            stop_renewing,
        }
    }
}

/// What the pool and its tasks share.
struct Shared {
    queue: Queue,
    owner: String,
    handlers: HandlerRegistry,
    limits: Arc<dyn TenantLimits>,
    observer: Arc<dyn QueueObserver>,
    /// One permit per job slot (the pool's concurrency).
    slots: Arc<Semaphore>,
    slot_freed: Notify,
    /// Jobs this pool holds a lease on and has not reported finished.
    running: Tokens,
    /// Parent of every job's token: fired when shutdown's grace period ends.
    kill: CancellationToken,
}

impl Shared {
    fn track(&self, id: JobId, token: &CancellationToken) {
        self.running.insert(id, token.clone());
        self.queue.inner.running.insert(id, token.clone());
    }

    fn untrack(&self, id: JobId) {
        self.running.remove(id);
        self.queue.inner.running.remove(id);
    }

    async fn claim(self: &Arc<Self>, limit: usize) -> Result<Vec<Job>, QueueError> {
        let shared = self.clone();
        run_blocking(move || {
            let queue = &shared.queue;
            queue.store().claim(&ClaimRequest {
                owner: &shared.owner,
                now: queue.clock().now(),
                lease: queue.settings().lease,
                limit,
                tenant_limits: &*shared.limits,
            })
        })
        .await
    }
}

/// A running pool. Dropping it leaves its tasks running: call [`WorkerPool::shutdown`].
pub struct WorkerPool {
    shared: Arc<Shared>,
    stop: CancellationToken,
    stop_renewing: CancellationToken,
    dispatcher: JoinHandle<JoinSet<()>>,
    completer: JoinHandle<()>,
    renewer: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
}

/// What shutdown did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Jobs still running after the grace period, released for the next start.
    pub released: usize,
}

impl WorkerPool {
    /// The lease owner name of this pool.
    pub fn owner(&self) -> &str {
        &self.shared.owner
    }

    /// Jobs this pool is running now.
    pub fn running(&self) -> usize {
        self.shared.running.lock().len()
    }

    /// Stops claiming, lets running jobs finish within `shutdown_grace`, then cancels the
    /// tokens of the others, records every result, and releases the leases of unfinished jobs
    /// so the next start picks them up at once (without counting the cut-off attempt).
    pub async fn shutdown(self) -> ShutdownReport {
        self.stop.cancel();
        let mut jobs = self.dispatcher.await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "queue dispatcher failed");
            JoinSet::new()
        });
        for task in self.background {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "queue background task failed");
            }
        }
        let grace = self.shared.queue.settings().shutdown_grace;
        if tokio::time::timeout(grace, drain(&mut jobs)).await.is_err() {
            self.shared.kill.cancel();
            if tokio::time::timeout(grace.min(KILL_WAIT), drain(&mut jobs))
                .await
                .is_err()
            {
                jobs.abort_all();
                drain(&mut jobs).await;
            }
        }
        // Every job task has ended and dropped its sender: the completer records what is
        // left in its channel and stops.
        if let Err(e) = self.completer.await {
            tracing::error!(error = %e, "queue completer failed");
        }
        self.stop_renewing.cancel();
        if let Err(e) = self.renewer.await {
            tracing::error!(error = %e, "queue lease renewer failed");
        }
        let unfinished = self.shared.running.ids();
        for id in &unfinished {
            self.shared.untrack(*id);
        }
        let released = if unfinished.is_empty() {
            0
        } else {
            background::release(&self.shared, unfinished).await
        };
        ShutdownReport { released }
    }
}

async fn drain(jobs: &mut JoinSet<()>) {
    while let Some(result) = jobs.join_next().await {
        if let Err(e) = result
            && e.is_panic()
        {
            // Handler panics are caught inside the task; this would be a bug of the pool.
            tracing::error!(error = %e, "queue job task panicked");
        }
    }
}

/// Claims and starts jobs until `stop`; returns the tasks of the jobs still running.
async fn dispatch(
    shared: Arc<Shared>,
    stop: CancellationToken,
    done: mpsc::Sender<Done>,
) -> JoinSet<()> {
    let settings = shared.queue.settings().clone();
    let mut jobs = JoinSet::new();
    loop {
        while jobs.try_join_next().is_some() {}
        if stop.is_cancelled() {
            break;
        }
        let free = shared.slots.available_permits();
        if free == 0 {
            tokio::select! {
                () = shared.slot_freed.notified() => continue,
                () = stop.cancelled() => break,
            }
        }
        let want = free.min(settings.batch_size.max(1));
        let claimed = match shared.claim(want).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "claiming jobs failed; retrying after the poll interval");
                tokio::select! {
                    () = tokio::time::sleep(settings.poll_interval) => continue,
                    () = stop.cancelled() => break,
                }
            }
        };
        let drained = claimed.len() < want;
        for job in claimed {
            // Only this loop takes permits, and it counted them free above: no wait here.
            let Ok(permit) = shared.slots.clone().acquire_owned().await else {
                break;
            };
            let token = shared.kill.child_token();
            shared.track(job.id, &token);
            jobs.spawn(attempt::run(
                shared.clone(),
                job,
                token,
                permit,
                done.clone(),
            ));
        }
        if drained {
            tokio::select! {
                () = shared.queue.inner.wake.notified() => {}
                () = tokio::time::sleep(settings.poll_interval) => {}
                () = stop.cancelled() => break,
            }
        }
    }
    jobs
}

#[cfg(test)]
mod tests;
