//! Enqueue, finish, retry, reap, renew, cancel, release.

use std::time::Duration;

use super::*;

#[test]
fn an_idempotency_key_deduplicates_while_its_job_is_live() {
    let f = fixture();
    let first = f.enqueue_one(JobSpec::new("noop").tenant("acme").idempotency_key("k"));
    let again = f.enqueue(vec![
        JobSpec::new("noop").tenant("acme").idempotency_key("k"),
        JobSpec::new("noop").tenant("acme").idempotency_key("k2"),
        JobSpec::new("noop").tenant("acme").idempotency_key("k2"),
    ]);
    assert_eq!(again[0], Enqueued::Existing(first));
    assert!(again[1].is_new());
    assert_eq!(again[2], Enqueued::Existing(again[1].id()));
    // Another tenant has its own keys.
    assert!(
        f.enqueue(vec![
            JobSpec::new("noop").tenant("other").idempotency_key("k")
        ])[0]
            .is_new()
    );

    // Still deduplicated while running; free again once finished.
    let running = f.claim(10);
    assert!(running.iter().any(|j| j.id == first));
    assert_eq!(
        f.enqueue(vec![
            JobSpec::new("noop").tenant("acme").idempotency_key("k")
        ])[0],
        Enqueued::Existing(first)
    );
    assert_eq!(
        f.finish(first, FinishOutcome::Succeeded),
        Some(JobState::Succeeded)
    );
    let after = f.enqueue(vec![
        JobSpec::new("noop").tenant("acme").idempotency_key("k"),
    ])[0];
    assert!(after.is_new());
    assert_ne!(after.id(), first);
}

#[test]
fn a_failed_attempt_is_retried_after_its_backoff_then_dead_with_the_error_kept() {
    let f = fixture();
    let id = f.enqueue_one(JobSpec::new("noop").max_attempts(2));
    f.claim(1);
    assert_eq!(
        f.fail(id, "boom 1", Duration::from_secs(5)),
        Some(JobState::Queued)
    );
    let job = f.get(id);
    assert_eq!(job.last_error.as_deref(), Some("boom 1"));
    assert_eq!(job.run_at, f.now() + chrono::Duration::seconds(5));
    assert_eq!(job.lease_owner, None);
    assert!(f.claim(1).is_empty(), "claimed before its backoff");

    f.clock.advance(Duration::from_secs(5));
    assert_eq!(f.claim(1)[0].attempts, 2);
    assert_eq!(
        f.fail(id, "boom 2", Duration::from_secs(5)),
        Some(JobState::Dead)
    );
    let job = f.get(id);
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(job.last_error.as_deref(), Some("boom 2"));
    assert_eq!(job.finished_at, Some(f.now()));
    f.clock.advance(Duration::from_secs(60));
    assert!(f.claim(1).is_empty());
}

#[test]
fn a_permanent_failure_is_not_retried() {
    let f = fixture();
    let id = f.enqueue_one(JobSpec::new("noop").max_attempts(5));
    f.claim(1);
    let state = f.finish(
        id,
        FinishOutcome::FailedPermanently {
            error: "bad input".into(),
        },
    );
    assert_eq!(state, Some(JobState::Failed));
    assert_eq!(f.get(id).last_error.as_deref(), Some("bad input"));
}

#[test]
fn only_the_lease_owner_can_finish_a_job() {
    let f = fixture();
    let id = f.enqueue_one(JobSpec::new("noop"));
    f.claim(1);
    let results = f
        .store
        .finish(
            "someone-else",
            &[Finish {
                id,
                outcome: FinishOutcome::Succeeded,
            }],
            f.now(),
        )
        .unwrap();
    assert_eq!(results, [None]);
    assert_eq!(f.get(id).state, JobState::Running);
}

#[test]
fn the_reaper_takes_back_expired_leases_and_counts_the_attempt() {
    let f = fixture();
    let id = f.enqueue_one(JobSpec::new("noop").max_attempts(2));
    let kept = f.enqueue_one(JobSpec::new("noop"));
    f.claim(10);
    f.clock.advance(Duration::from_secs(20));
    f.store.renew(OWNER, &[kept], f.now(), LEASE).unwrap();
    f.clock.advance(Duration::from_secs(11));

    let expired = f.store.reap(f.now()).unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!((expired[0].id, expired[0].state), (id, JobState::Queued));
    assert_eq!(f.get(kept).state, JobState::Running);
    let job = f.get(id);
    assert_eq!(job.attempts, 1);
    assert_eq!(job.last_error.as_deref(), Some("lease expired"));

    // The second attempt also expires: no attempts left.
    assert_eq!(ids(&f.claim(10)), [id]);
    f.clock.advance(Duration::from_secs(31));
    let expired = f.store.reap(f.now()).unwrap();
    let dead = expired.iter().find(|e| e.id == id).unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(f.get(id).last_error.as_deref(), Some("lease expired"));
}

#[test]
fn a_renewal_reports_cancel_requests_and_lost_leases() {
    let f = fixture();
    let a = f.enqueue_one(JobSpec::new("noop"));
    let b = f.enqueue_one(JobSpec::new("noop"));
    f.claim(10);
    assert_eq!(
        f.store.cancel(a, f.now()).unwrap(),
        CancelOutcome::Requested
    );
    let renewal = f.store.renew("worker-b", &[b], f.now(), LEASE).unwrap();
    assert_eq!(renewal.lost, [b]);
    let renewal = f.store.renew(OWNER, &[a, b], f.now(), LEASE).unwrap();
    assert_eq!(renewal.cancel_requested, [a]);
    assert!(renewal.lost.is_empty());
}

#[test]
fn cancelling_a_queued_job_is_immediate() {
    let f = fixture();
    let id = f.enqueue_one(JobSpec::new("noop"));
    assert_eq!(
        f.store.cancel(id, f.now()).unwrap(),
        CancelOutcome::Cancelled
    );
    let job = f.get(id);
    assert_eq!(job.state, JobState::Cancelled);
    assert_eq!(job.finished_at, Some(f.now()));
    assert!(f.claim(10).is_empty());
    assert!(matches!(
        f.store.cancel(id, f.now()),
        Err(QueueError::Conflict(_))
    ));
    assert!(matches!(
        f.store.cancel(JobId::generate(), f.now()),
        Err(QueueError::NotFound)
    ));
}

#[test]
fn a_running_job_with_a_cancel_request_ends_cancelled_unless_it_succeeds() {
    let f = fixture();
    let failing = f.enqueue_one(JobSpec::new("noop"));
    let succeeding = f.enqueue_one(JobSpec::new("noop"));
    f.claim(10);
    for id in [failing, succeeding] {
        assert_eq!(
            f.store.cancel(id, f.now()).unwrap(),
            CancelOutcome::Requested
        );
        assert!(f.get(id).cancel_requested);
    }
    assert_eq!(
        f.fail(failing, "stopped", Duration::from_secs(1)),
        Some(JobState::Cancelled)
    );
    assert_eq!(
        f.finish(succeeding, FinishOutcome::Succeeded),
        Some(JobState::Succeeded)
    );
}

#[test]
fn a_dead_job_can_be_retried_but_a_live_one_cannot() {
    let f = fixture();
    let id = f.enqueue_one(JobSpec::new("noop").max_attempts(1).idempotency_key("once"));
    let job = f.claim(1).remove(0);
    assert!(matches!(
        f.store.retry(job.id, f.now()),
        Err(QueueError::Conflict(_))
    ));
    f.fail(id, "boom", Duration::ZERO);
    assert_eq!(f.get(id).state, JobState::Dead);

    let retried = f.store.retry(id, f.now()).unwrap();
    assert_eq!(retried.state, JobState::Queued);
    assert_eq!(retried.attempts, 0);
    assert_eq!(retried.last_error.as_deref(), Some("boom"));
    assert_eq!(ids(&f.claim(1)), [id]);

    // Retrying while a new job holds the same key would make two live jobs with one key.
    f.fail(id, "boom", Duration::ZERO);
    f.enqueue_one(JobSpec::new("noop").idempotency_key("once"));
    assert!(matches!(
        f.store.retry(id, f.now()),
        Err(QueueError::Conflict(_))
    ));
    assert!(matches!(
        f.store.retry(JobId::generate(), f.now()),
        Err(QueueError::NotFound)
    ));
}

#[test]
fn a_released_job_is_claimable_at_once_without_losing_an_attempt() {
    let f = fixture();
    let id = f.enqueue_one(JobSpec::new("noop").max_attempts(1));
    f.clock.advance(Duration::from_secs(3));
    f.claim(1);
    assert_eq!(f.store.release("someone-else", &[id], f.now()).unwrap(), 0);
    assert_eq!(f.store.release(OWNER, &[id], f.now()).unwrap(), 1);
    let job = f.get(id);
    assert_eq!((job.state, job.attempts), (JobState::Queued, 0));
    assert_eq!(job.lease_owner, None);
    let again = f.claim(1);
    assert_eq!(ids(&again), [id]);
    assert_eq!(again[0].attempts, 1);
}
