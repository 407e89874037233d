//! Tenant write queues: the requests that change a tenant run one after another on a thread
//! of that tenant's, which commits them together.
//!
//! On the blocking pool, every changing request took a pool thread, queued on the tenant's
//! writer and then slept until a commit carried its write: about five context switches per
//! request, a quarter of the server's CPU under load. Here the queue's thread takes every
//! request that is waiting, runs each inside [`defer_commits`] and [`defer_effects`] (its
//! writes join one open transaction, its events and runtime hand-offs are held back), commits
//! once, then runs the effects and answers each request in arrival order. A lone request
//! commits at once; a burst shares one commit without anyone lingering for it.
//!
//! A request is answered only after the commit that holds its writes succeeded; if that commit
//! fails, every request it held gets the error and none of their effects happen. A request that
//! fails (or panics) alone is undone alone: its writes are rolled back to their savepoint.
//!
//! Threads start with a tenant's first change and end after [`IDLE`] without one, so idle
//! tenants cost nothing. Only requests that stay in the process go here: a service call that
//! waits on the network (pinging an MCP server, testing a provider) is async and runs its
//! blocking parts on the blocking pool, never on a queue.

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use super::ApiError;
use crate::domain::TenantId;
use crate::services::{Scope, ServiceError, defer_effects};
use crate::store::defer_commits;

/// How long a queue's thread waits for more work before it ends.
const IDLE: Duration = Duration::from_secs(30);

/// The most requests one commit carries: a steady stream still commits regularly, and a
/// request waits for at most this many others.
const MAX_BATCH: usize = 64;

/// A request's work, run on the queue's thread: returns what answers it once the batch is
/// committed.
type Job = Box<dyn FnOnce() -> Answer + Send>;

/// Commits (if no one did yet), runs the held-back effects and answers the request.
type Answer = Box<dyn FnOnce()>;

/// Runs `f` with `scope` on the queue of `scope`'s tenant and returns its result once its
/// writes are committed.
pub async fn run<T, F>(scope: Scope, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&Scope) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    static QUEUES: OnceLock<WriteQueues> = OnceLock::new();
    let queues = QUEUES.get_or_init(|| WriteQueues::new(IDLE));
    let tenant = scope.tenant;
    let (job, answer) = job(scope, f);
    queues.submit(tenant, job)?;
    answer
        .await
        .map_err(|_| ApiError::internal("the write queue dropped the request"))?
}

/// `f`'s job, and where its answer arrives.
fn job<T, F>(scope: Scope, f: F) -> (Job, oneshot::Receiver<Result<T, ApiError>>)
where
    F: FnOnce(&Scope) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let job: Job = Box::new(move || {
        let ((result, effects), writes) =
            defer_commits(|| defer_effects(|| panic::catch_unwind(AssertUnwindSafe(|| f(&scope)))));
        Box::new(move || {
            let result = match (writes.commit(), result) {
                (Err(e), _) => Err(ApiError::from(ServiceError::from(e))),
                (Ok(()), result) => {
                    effects.run();
                    result.unwrap_or_else(|_| Err(ApiError::internal("the request panicked")))
                }
            };
            // The scope (and the write it announced) ends with the answer.
            drop(scope);
            // The client may have gone: the change stands all the same.
            let _ = reply.send(result);
        })
    });
    (job, answer)
}

/// The write queues of a process, by tenant.
struct WriteQueues {
    queues: Mutex<Queues>,
    /// How long a thread waits for work before it ends ([`IDLE`]; shorter in tests).
    idle: Duration,
}

#[derive(Default)]
struct Queues {
    by_tenant: HashMap<TenantId, Queue>,
    /// The number of the next thread.
    started: u64,
}

/// A tenant's queue: where to send its jobs, and which of the tenant's successive threads
/// reads them (so that a thread that ends removes its own entry, never a successor's).
struct Queue {
    thread: u64,
    jobs: mpsc::Sender<Job>,
}

impl WriteQueues {
    fn new(idle: Duration) -> Self {
        WriteQueues {
            queues: Mutex::default(),
            idle,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `job` to `tenant`'s queue, starting its thread if it has none.
    fn submit(&'static self, tenant: TenantId, mut job: Job) -> Result<(), ApiError> {
        // Twice at most: a sender taken just before its thread ended fails, and the second
        // one belongs to a thread started for it.
        for _ in 0..2 {
            let (thread, sender) = self.sender(tenant).map_err(ApiError::internal)?;
            match sender.send(job) {
                Ok(()) => return Ok(()),
                Err(mpsc::SendError(returned)) => {
                    self.lock().forget(tenant, thread);
                    job = returned;
                }
            }
        }
        Err(ApiError::internal(
            "the tenant's write queue is not running",
        ))
    }

    /// The sender of `tenant`'s queue and the number of its thread, started if need be.
    fn sender(&'static self, tenant: TenantId) -> std::io::Result<(u64, mpsc::Sender<Job>)> {
        let mut queues = self.lock();
        if let Some(queue) = queues.by_tenant.get(&tenant) {
            return Ok((queue.thread, queue.jobs.clone()));
        }
        let (jobs, receiver) = mpsc::channel();
        let thread = queues.started;
        std::thread::Builder::new()
            .name("tenant-writes".into())
            .spawn(move || self.serve(tenant, thread, &receiver))?;
        queues.started += 1;
        let queue = Queue {
            thread,
            jobs: jobs.clone(),
        };
        queues.by_tenant.insert(tenant, queue);
        Ok((thread, jobs))
    }

    /// A queue's thread: runs batches until `idle` passes without work.
    fn serve(&self, tenant: TenantId, thread: u64, jobs: &mpsc::Receiver<Job>) {
        loop {
            let first = match jobs.recv_timeout(self.idle) {
                Ok(job) => job,
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    // Leaving the map under its lock, so that no job is sent after the last
                    // look.
                    let mut queues = self.lock();
                    match jobs.try_recv() {
                        Ok(job) => job,
                        Err(_) => {
                            queues.forget(tenant, thread);
                            return;
                        }
                    }
                }
            };
            let mut answers = vec![first()];
            while answers.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => answers.push(job()),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            // The first answer commits for the whole batch; the others find it done.
            for answer in answers {
                if panic::catch_unwind(AssertUnwindSafe(answer)).is_err() {
                    tracing::error!(%tenant, "an effect of a committed change panicked");
                }
            }
        }
    }
}

impl Queues {
    /// Forgets `tenant`'s queue if it is still the one read by `thread`.
    fn forget(&mut self, tenant: TenantId, thread: u64) {
        if self
            .by_tenant
            .get(&tenant)
            .is_some_and(|q| q.thread == thread)
        {
            self.by_tenant.remove(&tenant);
        }
    }
}
