//! Tenant write queues: the requests that change a tenant run one after another on a thread
//! of that tenant's, which commits them together.
//!
//! On the blocking pool, every changing request took a pool thread, queued on the tenant's
//! writer and then slept until a commit carried its write: 3.2 context switches per task
//! creation under load (0.57 here), and on this kind of virtual machine a switch costs
//! microseconds (`benches/RESULTS.md`). Here the queue's thread takes every
//! request that is waiting, runs each inside [`defer_commits`] and [`defer_effects`] (its
//! writes join one open transaction, its events and runtime hand-offs are held back), commits
//! once, then runs the effects and answers each request in arrival order. A lone request
//! commits at once; a burst shares one commit without anyone lingering for it.
//!
//! A request is answered only after the commit that holds its writes succeeded; if that commit
//! fails, every request it held gets the error and none of their effects happen. A write that
//! fails (or panics) is undone alone, rolled back to its savepoint; the rest of the batch
//! stands. A request that panics is answered with an internal error.
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use serde_json::json;

    use super::*;
    use crate::audit::{Actor, Origin};
    use crate::config::{Overrides, Settings};
    use crate::domain::task::{Task, TaskStatus};
    use crate::domain::{Plan, TenantSlug};
    use crate::realtime::EventBus;
    use crate::services::{NoRuntime, tasks};
    use crate::store::Storage;
    use crate::tenancy::{NewTenant, TenantLifecycle};

    /// A scope of a new tenant, as a request that writes gets it.
    fn tenant_scope(dir: &std::path::Path) -> Scope {
        let settings = Settings::load(Overrides {
            data_dir: Some(dir.to_owned()),
            ..Overrides::default()
        })
        .unwrap();
        let storage = Storage::open(&settings).unwrap();
        let tenant = TenantLifecycle::new(storage.clone())
            .create(NewTenant {
                slug: TenantSlug::parse("acme").unwrap(),
                name: None,
                plan: Plan::Free,
            })
            .unwrap();
        let store = storage.tenants.open(tenant.id).unwrap();
        Scope {
            tenant: tenant.id,
            slug: "acme".into(),
            write_intent: Some(Arc::new(store.intend_write())),
            store,
            events: Arc::new(EventBus::default()),
            actor: Actor::cli(),
            origin: Origin::default(),
            runs: Arc::new(NoRuntime),
        }
    }

    fn queues(idle: Duration) -> &'static WriteQueues {
        Box::leak(Box::new(WriteQueues::new(idle)))
    }

    type Answer<T> = oneshot::Receiver<Result<T, ApiError>>;

    fn submit<T: Send + 'static>(
        queues: &'static WriteQueues,
        scope: &Scope,
        f: impl FnOnce(&Scope) -> Result<T, ServiceError> + Send + 'static,
    ) -> Answer<T> {
        let (job, answer) = job(scope.clone(), move |s| f(s).map_err(ApiError::from));
        queues.submit(scope.tenant, job).unwrap();
        answer
    }

    /// Keeps the tenant's queue thread busy until the returned sender is dropped: what is
    /// submitted meanwhile runs in one batch after it.
    fn occupy(queues: &'static WriteQueues, scope: &Scope) -> (mpsc::Sender<()>, Answer<()>) {
        let (release, gate) = mpsc::channel::<()>();
        let answer = submit(queues, scope, move |_| {
            let _ = gate.recv();
            Ok(())
        });
        (release, answer)
    }

    fn status(scope: &Scope, task: &Task) -> TaskStatus {
        scope.store.task(&task.id).unwrap().status
    }

    #[tokio::test]
    async fn requests_of_one_batch_see_each_others_writes_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let scope = tenant_scope(dir.path());
        let new = |prompt: &str| serde_json::from_value(json!({ "prompt": prompt })).unwrap();
        let task = tasks::create(&scope, new("first")).unwrap();
        let queues = queues(IDLE);

        let (release, occupied) = occupy(queues, &scope);
        let id = task.id.clone();
        let block = submit(queues, &scope, move |s| {
            tasks::update(
                s,
                &id,
                serde_json::from_value(json!({ "status": "blocked" })).unwrap(),
            )
        });
        let id = task.id.clone();
        // Legal only once the previous request's change is seen.
        let unblock = submit(queues, &scope, move |s| {
            tasks::update(
                s,
                &id,
                serde_json::from_value(json!({ "status": "pending" })).unwrap(),
            )
        });
        let unknown_assignee = submit(queues, &scope, |s| {
            let bad = serde_json::from_value(json!({ "prompt": "x", "assignee": "nobody" }));
            tasks::create(s, bad.unwrap())
        });
        let panics = submit(queues, &scope, |_| -> Result<(), ServiceError> {
            panic!("a bug in a service")
        });
        let created = submit(queues, &scope, move |s| tasks::create(s, new("second")));
        drop(release);

        occupied.await.unwrap().unwrap();
        assert_eq!(block.await.unwrap().unwrap().status, TaskStatus::Blocked);
        assert_eq!(unblock.await.unwrap().unwrap().status, TaskStatus::Pending);
        let refused = unknown_assignee.await.unwrap().unwrap_err();
        assert_eq!(refused.code(), "VALIDATION_FAILED");
        assert_eq!(panics.await.unwrap().unwrap_err().code(), "INTERNAL");
        let second = created.await.unwrap().unwrap();

        // Committed (read through the pool, outside any batch).
        assert_eq!(status(&scope, &task), TaskStatus::Pending);
        assert_eq!(status(&scope, &second), TaskStatus::Pending);
        let events = scope
            .store
            .task_events(&task.id, &crate::domain::page::PageRequest::first(100))
            .unwrap();
        assert_eq!(events.items.len(), 3, "created, blocked, unblocked");
    }

    #[tokio::test]
    async fn effects_wait_for_the_commit_and_precede_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        let scope = tenant_scope(dir.path());
        let queues = queues(IDLE);
        let mut heard_inside = scope.events.subscribe(scope.tenant);
        let mut heard_after = scope.events.subscribe(scope.tenant);

        let created = submit(queues, &scope, move |s| {
            let task = tasks::create(s, serde_json::from_value(json!({ "prompt": "p" })).unwrap())?;
            let published_before_commit = heard_inside.try_recv().is_ok();
            Ok((task, published_before_commit))
        });
        let (task, published_before_commit) = created.await.unwrap().unwrap();
        assert!(
            !published_before_commit,
            "the event went out before the commit"
        );
        assert_eq!(
            status(&scope, &task),
            TaskStatus::Pending,
            "committed when answered"
        );
        let frame = heard_after
            .try_recv()
            .expect("published by the time of the answer");
        assert_eq!(frame.kind, "task.created");
    }

    #[tokio::test]
    async fn an_idle_queue_thread_ends_and_a_later_request_starts_another() {
        let dir = tempfile::tempdir().unwrap();
        let scope = tenant_scope(dir.path());
        let queues = queues(Duration::from_millis(20));
        let write = |prompt: &'static str| {
            submit(queues, &scope, move |s| {
                tasks::create(
                    s,
                    serde_json::from_value(json!({ "prompt": prompt })).unwrap(),
                )
            })
        };

        write("one").await.unwrap().unwrap();
        let started = Instant::now();
        while queues.lock().by_tenant.contains_key(&scope.tenant) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the thread never ended"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        write("two").await.unwrap().unwrap();
        assert_eq!(
            queues.lock().started,
            2,
            "a second thread served the later request"
        );
    }
}
