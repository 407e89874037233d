//! One attempt of one job: run the handler under its timeout, catch its panics, decide the
//! outcome, report it to the completer.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::queue::handler::{JobContext, JobFailure};
use crate::queue::job::{Job, JobId};
use crate::queue::observer::AttemptOutcome;
use crate::queue::store::FinishOutcome;

/// A finished attempt on its way to the store.
pub(super) struct Done {
    pub id: JobId,
    pub kind: String,
    pub outcome: FinishOutcome,
}

/// How the handler ended.
enum Ended {
    Ok,
    Failed(JobFailure),
    Panicked(String),
    TimedOut,
}

pub(super) async fn run(
    shared: Arc<Shared>,
    job: Job,
    token: CancellationToken,
    permit: OwnedSemaphorePermit,
    done: mpsc::Sender<Done>,
) {
    let clock = shared.queue.clock().clone();
    let started = clock.now();
    shared
        .observer
        .claimed(&job.kind, elapsed(job.run_at, started));
    let job = Arc::new(job);
    let ended = match shared.handlers.get(&job.kind) {
        None => Ended::Failed(JobFailure::permanent(format!(
            "no handler for job kind {:?}",
            job.kind
        ))),
        Some(handler) => {
            let ctx = JobContext {
                job: job.clone(),
                cancel: token.clone(),
            };
            execute(handler.as_ref(), ctx, job.timeout).await
        }
    };
    if matches!(ended, Ended::TimedOut) {
        // The handler's future is gone; tasks it spawned learn through the token.
        token.cancel();
    }
    let finished = clock.now();
    let shutting_down = shared.kill.is_cancelled();
    let (outcome, finish) = match ended {
        Ended::Ok => (AttemptOutcome::Succeeded, Some(FinishOutcome::Succeeded)),
        // Cut off by shutdown: not a failure. The job stays tracked, and shutdown releases it.
        _ if shutting_down => (AttemptOutcome::Released, None),
        Ended::Failed(failure) => {
            let outcome = if token.is_cancelled() {
                AttemptOutcome::Cancelled
            } else {
                AttemptOutcome::Failed
            };
            let finish = if failure.permanent {
                FinishOutcome::FailedPermanently {
                    error: failure.message,
                }
            } else {
                retry(&shared, &job, failure.message, finished)
            };
            (outcome, Some(finish))
        }
        Ended::Panicked(message) => (
            AttemptOutcome::Panicked,
            Some(retry(
                &shared,
                &job,
                format!("handler panicked: {message}"),
                finished,
            )),
        ),
        Ended::TimedOut => (
            AttemptOutcome::TimedOut,
            Some(retry(
                &shared,
                &job,
                format!("timed out after {} ms", job.timeout.as_millis()),
                finished,
            )),
        ),
    };
    shared
        .observer
        .finished(&job.kind, outcome, elapsed(started, finished));
    if let Some(outcome) = finish {
        shared.untrack(job.id);
        let report = Done {
            id: job.id,
            kind: job.kind.clone(),
            outcome,
        };
        // Holding the slot while the completer is backed up keeps the dispatcher from
        // claiming more than the store can record.
        if done.send(report).await.is_err() {
            tracing::error!(job = %job.id, "job result dropped: the completer has stopped");
        }
    }
    drop(permit);
    shared.slot_freed.notify_one();
}

/// Runs the handler; a panic, whether building the future or polling it, is an outcome.
async fn execute(
    handler: &dyn crate::queue::handler::JobHandler,
    ctx: JobContext,
    timeout: Duration,
) -> Ended {
    let future = match std::panic::catch_unwind(AssertUnwindSafe(|| handler.run(ctx))) {
        Ok(future) => future,
        Err(panic) => return Ended::Panicked(panic_message(panic.as_ref())),
    };
    match tokio::time::timeout(timeout, AssertUnwindSafe(future).catch_unwind()).await {
        Err(_elapsed) => Ended::TimedOut,
        Ok(Err(panic)) => Ended::Panicked(panic_message(panic.as_ref())),
        Ok(Ok(Ok(()))) => Ended::Ok,
        Ok(Ok(Err(failure))) => Ended::Failed(failure),
    }
}

/// A retryable failure, due again after the backoff of this attempt. The store makes it
/// `dead` instead when it was the last attempt.
fn retry(shared: &Shared, job: &Job, error: String, now: DateTime<Utc>) -> FinishOutcome {
    let delay = shared
        .queue
        .settings()
        .backoff
        .delay(job.attempts, &mut rand::rng());
    let retry_at = chrono::Duration::from_std(delay)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(now);
    FinishOutcome::Failed { error, retry_at }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

fn elapsed(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or_default()
}
