//! Worker pool tests on a real `queue.db` and the system clock. They wait on what handlers
//! and the observer report (channels), never on sleeps; the timeouts only bound a failure.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::sync::mpsc;

use crate::queue::{
    AttemptOutcome, Backoff, HandlerRegistry, JobContext, JobFailure, JobFilter, JobSpec, JobState,
    PageRequest, Queue, QueueObserver, QueueSettings, handler_fn,
};

/// Bounds every wait: reaching it means the test failed, not that it was slow.
const PATIENCE: Duration = Duration::from_secs(20);

fn settings() -> QueueSettings {
    QueueSettings {
        poll_interval: Duration::from_millis(50),
        backoff: Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
        },
        schedule_interval: None,
        reap_interval: Duration::from_secs(3600),
        shutdown_grace: Duration::from_secs(5),
        ..QueueSettings::default()
    }
}

fn open(settings: QueueSettings) -> (TempDir, Queue) {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(&dir.path().join("queue.db"), settings).unwrap();
    (dir, queue)
}

/// Forwards what the pool reports.
struct Recorder(mpsc::UnboundedSender<(String, AttemptOutcome)>);

impl QueueObserver for Recorder {
    fn finished(&self, kind: &str, outcome: AttemptOutcome, _duration: Duration) {
        let _ = self.0.send((kind.to_owned(), outcome));
    }
}

fn recorder() -> (
    Arc<Recorder>,
    mpsc::UnboundedReceiver<(String, AttemptOutcome)>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Arc::new(Recorder(tx)), rx)
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("timed out waiting for the pool")
        .expect("channel closed")
}

async fn job_states(queue: &Queue) -> HashMap<JobState, usize> {
    let mut states = HashMap::new();
    for count in queue.counts().await.unwrap() {
        *states.entry(count.state).or_default() += usize::try_from(count.count).unwrap();
    }
    states
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_jobs_each_run_exactly_once() {
    let (_dir, queue) = open(QueueSettings {
        concurrency: 32,
        batch_size: 64,
        ..settings()
    });
    let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let (all_done_tx, mut all_done) = mpsc::unbounded_channel();
    let handlers = HandlerRegistry::new().with("count", {
        let runs = runs.clone();
        handler_fn(move |ctx: JobContext| {
            let runs = runs.clone();
            let all_done = all_done_tx.clone();
            async move {
                let mut runs = runs.lock().unwrap();
                *runs.entry(ctx.job.id.to_string()).or_default() += 1;
                if runs.len() == 1000 {
                    let _ = all_done.send(());
                }
                Ok(())
            }
        })
    });
    let pool = queue.workers(handlers).start();
    let specs = (0..1000)
        .map(|i| JobSpec::new("count").tenant(format!("t{}", i % 7)))
        .collect();
    let enqueued = queue.enqueue_batch(specs).await.unwrap();
    next(&mut all_done).await;
    assert_eq!(pool.shutdown().await.released, 0);

    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 1000);
    assert!(runs.values().all(|n| *n == 1), "a job ran twice");
    assert!(
        enqueued
            .iter()
            .all(|e| runs.contains_key(&e.id().to_string()))
    );
    assert_eq!(
        job_states(&queue).await,
        HashMap::from([(JobState::Succeeded, 1000)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueue_wakes_idle_workers_at_once() {
    let (_dir, queue) = open(QueueSettings {
        poll_interval: Duration::from_secs(3600),
        ..settings()
    });
    let (tx, mut ran) = mpsc::unbounded_channel();
    let handlers = HandlerRegistry::new().with(
        "ping",
        handler_fn(move |_ctx| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(());
                Ok(())
            }
        }),
    );
    let pool = queue.workers(handlers).start();
    // Let the dispatcher go idle on its (hour-long) poll first.
    tokio::task::yield_now().await;
    let started = Instant::now();
    queue.enqueue(JobSpec::new("ping")).await.unwrap();
    next(&mut ran).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_fails_its_attempt_and_the_pool_keeps_running() {
    let (_dir, queue) = open(QueueSettings {
        concurrency: 1,
        ..settings()
    });
    let (observer, mut events) = recorder();
    let handlers = HandlerRegistry::new()
        .with(
            "explode",
            handler_fn(|_ctx| async move { panic!("kaboom") }),
        )
        .with("fine", handler_fn(|_ctx| async { Ok(()) }));
    let pool = queue.workers(handlers).observer(observer).start();
    let bad = queue
        .enqueue(JobSpec::new("explode").priority(10).max_attempts(2))
        .await
        .unwrap()
        .id();
    queue
        .enqueue_batch((0..5).map(|_| JobSpec::new("fine")).collect())
        .await
        .unwrap();

    let (mut panics, mut fine) = (0, 0);
    while panics < 2 || fine < 5 {
        match next(&mut events).await {
            (_, AttemptOutcome::Panicked) => panics += 1,
            (_, AttemptOutcome::Succeeded) => fine += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    pool.shutdown().await;

    let job = queue.get(bad).await.unwrap();
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(job.attempts, 2);
    assert_eq!(job.last_error.as_deref(), Some("handler panicked: kaboom"));
    assert_eq!(job_states(&queue).await[&JobState::Succeeded], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_fails_the_attempt_and_fires_the_token() {
    let (_dir, queue) = open(settings());
    let (observer, mut events) = recorder();
    let (token_fired_tx, mut token_fired) = mpsc::unbounded_channel();
    let handlers = HandlerRegistry::new().with(
        "slow",
        handler_fn(move |ctx: JobContext| {
            let token_fired = token_fired_tx.clone();
            async move {
                // A task the handler started outlives the dropped future and sees the token.
                tokio::spawn(async move {
                    ctx.cancel.cancelled().await;
                    let _ = token_fired.send(());
                });
                std::future::pending::<()>().await;
                Ok(())
            }
        }),
    );
    let pool = queue.workers(handlers).observer(observer).start();
    let id = queue
        .enqueue(
            JobSpec::new("slow")
                .timeout(Duration::from_millis(100))
                .max_attempts(1),
        )
        .await
        .unwrap()
        .id();

    assert_eq!(next(&mut events).await.1, AttemptOutcome::TimedOut);
    next(&mut token_fired).await;
    pool.shutdown().await;
    let job = queue.get(id).await.unwrap();
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(job.last_error.as_deref(), Some("timed out after 100 ms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_is_retried_until_it_succeeds() {
    let (_dir, queue) = open(settings());
    let (observer, mut events) = recorder();
    let handlers = HandlerRegistry::new().with(
        "flaky",
        handler_fn(|ctx: JobContext| async move {
            if ctx.attempt() < 3 {
                Err(JobFailure::retry(format!(
                    "attempt {} failed",
                    ctx.attempt()
                )))
            } else {
                Ok(())
            }
        }),
    );
    let pool = queue.workers(handlers).observer(observer).start();
    let id = queue.enqueue(JobSpec::new("flaky")).await.unwrap().id();
    assert_eq!(next(&mut events).await.1, AttemptOutcome::Failed);
    assert_eq!(next(&mut events).await.1, AttemptOutcome::Failed);
    assert_eq!(next(&mut events).await.1, AttemptOutcome::Succeeded);
    pool.shutdown().await;
    let job = queue.get(id).await.unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Succeeded, 3));
    assert_eq!(job.last_error.as_deref(), Some("attempt 2 failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_fires_its_token_and_ends_it_cancelled() {
    let (_dir, queue) = open(settings());
    let (observer, mut events) = recorder();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let handlers = HandlerRegistry::new().with(
        "waits",
        handler_fn(move |ctx: JobContext| {
            let started = started_tx.clone();
            async move {
                let _ = started.send(());
                ctx.cancel.cancelled().await;
                Err(JobFailure::retry("stopped on request"))
            }
        }),
    );
    let pool = queue.workers(handlers).observer(observer).start();
    let id = queue.enqueue(JobSpec::new("waits")).await.unwrap().id();
    next(&mut started).await;

    assert_eq!(
        queue.cancel(id).await.unwrap(),
        crate::queue::CancelOutcome::Requested
    );
    assert_eq!(next(&mut events).await.1, AttemptOutcome::Cancelled);
    pool.shutdown().await;
    let job = queue.get(id).await.unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    assert_eq!(job.attempts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_unfinished_jobs_for_the_next_start_without_losing_an_attempt() {
    let (_dir, queue) = open(QueueSettings {
        shutdown_grace: Duration::from_millis(50),
        ..settings()
    });
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let stubborn = HandlerRegistry::new()
        .with(
            "stubborn",
            handler_fn({
                let started = started_tx.clone();
                move |_ctx| {
                    let started = started.clone();
                    async move {
                        let _ = started.send(());
                        // Ignores its token: aborted after the grace period.
                        std::future::pending::<()>().await;
                        Ok(())
                    }
                }
            }),
        )
        .with(
            "polite",
            handler_fn(move |ctx: JobContext| {
                let started = started_tx.clone();
                async move {
                    let _ = started.send(());
                    ctx.cancel.cancelled().await;
                    Err(JobFailure::retry("shutting down"))
                }
            }),
        );
    let pool = queue.workers(stubborn).start();
    let ids = queue
        .enqueue_batch(vec![
            JobSpec::new("stubborn").max_attempts(1),
            JobSpec::new("polite").max_attempts(1),
        ])
        .await
        .unwrap();
    next(&mut started).await;
    next(&mut started).await;
    assert_eq!(pool.shutdown().await.released, 2);
    for enqueued in &ids {
        let job = queue.get(enqueued.id()).await.unwrap();
        assert_eq!((job.state, job.attempts), (JobState::Queued, 0), "{job:?}");
        assert_eq!(job.lease_owner, None);
    }

    // The next start runs them at once (no lease to wait out).
    let (observer, mut events) = recorder();
    let finishing = HandlerRegistry::new()
        .with("stubborn", handler_fn(|_ctx| async { Ok(()) }))
        .with("polite", handler_fn(|_ctx| async { Ok(()) }));
    let pool = queue.workers(finishing).observer(observer).start();
    assert_eq!(next(&mut events).await.1, AttemptOutcome::Succeeded);
    assert_eq!(next(&mut events).await.1, AttemptOutcome::Succeeded);
    pool.shutdown().await;
    assert_eq!(
        job_states(&queue).await,
        HashMap::from([(JobState::Succeeded, 2)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_without_a_handler_fails_permanently() {
    let (_dir, queue) = open(settings());
    let (observer, mut events) = recorder();
    let pool = queue
        .workers(HandlerRegistry::new())
        .observer(observer)
        .start();
    let id = queue.enqueue(JobSpec::new("unknown")).await.unwrap().id();
    assert_eq!(next(&mut events).await.1, AttemptOutcome::Failed);
    pool.shutdown().await;
    let job = queue.get(id).await.unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.attempts, 1);
}

/// End-to-end throughput of no-op jobs: `cargo test --release --lib queue_throughput --
/// --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark"]
async fn queue_throughput() {
    const JOBS: usize = 100_000;
    let (_dir, queue) = open(QueueSettings {
        concurrency: 512,
        batch_size: 256,
        ..settings()
    });
    let (tx, mut done) = mpsc::unbounded_channel();
    struct Counter(std::sync::atomic::AtomicUsize, mpsc::UnboundedSender<()>);
    impl QueueObserver for Counter {
        fn finished(&self, _: &str, _: AttemptOutcome, _: Duration) {
            if self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 == JOBS {
                let _ = self.1.send(());
            }
        }
    }
    let observer = Arc::new(Counter(Default::default(), tx));

    let started = Instant::now();
    for chunk in 0..JOBS / 1000 {
        let specs = (0..1000)
            .map(|i| JobSpec::new("noop").tenant(format!("t{}", (chunk * 1000 + i) % 10)))
            .collect();
        queue.enqueue_batch(specs).await.unwrap();
    }
    let enqueued = started.elapsed();

    let run_started = Instant::now();
    let pool = queue
        .workers(HandlerRegistry::new())
        .observer(observer)
        .start();
    next(&mut done).await;
    pool.shutdown().await;
    let ran = run_started.elapsed();
    let total = started.elapsed();

    let per_sec = |d: Duration| JOBS as f64 / d.as_secs_f64();
    println!(
        "{JOBS} jobs: enqueue {:.0}/s ({enqueued:?}), claim+run+complete {:.0}/s ({ran:?}), \
         end to end {:.0}/s ({total:?})",
        per_sec(enqueued),
        per_sec(ran),
        per_sec(total),
    );
    let page = queue
        .list(
            JobFilter {
                state: Some(JobState::Succeeded),
                ..JobFilter::default()
            },
            PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(page.jobs.len(), 50);
    assert_eq!(job_states(&queue).await[&JobState::Succeeded], JOBS);
}
