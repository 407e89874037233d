//! The pool's periodic tasks: recording results, renewing leases, reaping expired leases,
//! firing schedules, and the final release.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::attempt::Done;
use crate::queue::job::{JobId, JobState};
use crate::queue::run_blocking;
use crate::queue::store::Finish;

/// Most results one completer transaction records.
const MAX_FLUSH: usize = 1024;
/// Tries to record a batch before giving up on it (its jobs' leases then expire and the
/// reaper runs them again: at-least-once still holds).
const FLUSH_TRIES: u32 = 5;

/// Records finished attempts in batches until every sender is gone, then returns.
pub(super) async fn complete(shared: Arc<Shared>, mut done: mpsc::Receiver<Done>) {
    let mut batch = Vec::with_capacity(MAX_FLUSH);
    while done.recv_many(&mut batch, MAX_FLUSH).await > 0 {
        flush(&shared, std::mem::take(&mut batch)).await;
        // A finished job may have been what held a tenant cap or a concurrency key.
        shared.queue.wake_workers();
    }
}

async fn flush(shared: &Arc<Shared>, batch: Vec<Done>) {
    let (kinds, finishes): (Vec<String>, Vec<Finish>) = batch
        .into_iter()
        .map(|done| {
            (
                done.kind,
                Finish {
                    id: done.id,
                    outcome: done.outcome,
                },
            )
        })
        .unzip();
    let finishes = Arc::new(finishes);
    let mut pause = Duration::from_millis(50);
    for attempt in 1..=FLUSH_TRIES {
        let (shared2, finishes2) = (shared.clone(), finishes.clone());
        let result = run_blocking(move || {
            let queue = &shared2.queue;
            queue
                .store()
                .finish(&shared2.owner, &finishes2, queue.clock().now())
        })
        .await;
        match result {
            Ok(states) => {
                for (kind, state) in kinds.iter().zip(states) {
                    match state {
                        Some(JobState::Queued) => shared.observer.retried(kind),
                        Some(JobState::Dead | JobState::Failed) => shared.observer.dead(kind),
                        _ => {}
                    }
                }
                return;
            }
            Err(e) if attempt < FLUSH_TRIES => {
                tracing::warn!(error = %e, attempt, "recording job results failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(e) => {
                tracing::error!(
                    error = %e,
                    jobs = finishes.len(),
                    "recording job results failed; their leases will expire and they run again"
                );
            }
        }
    }
}

/// Extends the leases of this pool's running jobs every third of the lease, and fires the
/// tokens of those cancelled meanwhile or no longer held.
pub(super) async fn renew(shared: Arc<Shared>, stop: CancellationToken) {
    let lease = shared.queue.settings().lease;
    let mut tick = tokio::time::interval((lease / 3).max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let ids = shared.running.ids();
        if ids.is_empty() {
            continue;
        }
        let shared2 = shared.clone();
        let renewal = run_blocking(move || {
            let queue = &shared2.queue;
            queue
                .store()
                .renew(&shared2.owner, &ids, queue.clock().now(), lease)
        })
        .await;
        match renewal {
            Ok(renewal) => {
                for id in renewal.cancel_requested.iter().chain(&renewal.lost) {
                    shared.running.fire(*id);
                }
                if !renewal.lost.is_empty() {
                    tracing::warn!(jobs = renewal.lost.len(), "lost the lease of running jobs");
                }
            }
            Err(e) => tracing::warn!(error = %e, "renewing job leases failed"),
        }
    }
}

/// Takes back jobs whose lease expired, every `reap_interval`.
pub(super) async fn reap(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(shared.queue.settings().reap_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let shared2 = shared.clone();
        let reaped = run_blocking(move || {
            let queue = &shared2.queue;
            queue.store().reap(queue.clock().now())
        })
        .await;
        match reaped {
            Ok(expired) if expired.is_empty() => {}
            Ok(expired) => {
                shared.observer.lease_expired(expired.len());
                for lease in &expired {
                    if lease.state == JobState::Dead {
                        shared.observer.dead(&lease.kind);
                    }
                }
                tracing::warn!(jobs = expired.len(), "took back jobs whose lease expired");
                shared.queue.wake_workers();
            }
            Err(e) => tracing::warn!(error = %e, "reaping expired leases failed"),
        }
    }
}

/// Fires due schedules every `every`.
pub(super) async fn schedule(shared: Arc<Shared>, stop: CancellationToken, every: Duration) {
    let scheduler = shared.queue.scheduler();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let (scheduler2, clock) = (scheduler.clone(), shared.queue.clock().clone());
        match run_blocking(move || scheduler2.tick(clock.now())).await {
            Ok(0) => {}
            Ok(_) => shared.queue.wake_workers(),
            Err(e) => tracing::warn!(error = %e, "firing schedules failed"),
        }
    }
}

/// Gives back the leases of jobs this pool will not finish; returns how many were released.
pub(super) async fn release(shared: &Arc<Shared>, ids: Vec<JobId>) -> usize {
    let shared2 = shared.clone();
    let released = run_blocking(move || {
        let queue = &shared2.queue;
        queue
            .store()
            .release(&shared2.owner, &ids, queue.clock().now())
    })
    .await;
    match released {
        Ok(n) => {
            tracing::info!(jobs = n, "released unfinished jobs for the next start");
            n
        }
        Err(e) => {
            tracing::error!(error = %e, "releasing unfinished jobs failed; their leases will expire");
            0
        }
    }
}
