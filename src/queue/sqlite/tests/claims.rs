//! Which jobs a claim takes: order, due times, fairness, caps, keys.

use std::time::Duration;

use super::*;
use crate::queue::sqlite::claim;

#[test]
fn a_claim_takes_higher_priorities_first_then_older_jobs() {
    let f = fixture();
    let low = f.enqueue_one(JobSpec::new("noop").priority(0));
    f.clock.advance(Duration::from_millis(1));
    let high = f.enqueue_one(JobSpec::new("noop").priority(10));
    let mid_old = f.enqueue_one(JobSpec::new("noop").priority(5));
    f.clock.advance(Duration::from_millis(1));
    let mid_new = f.enqueue_one(JobSpec::new("noop").priority(5));

    assert_eq!(ids(&f.claim(1)), [high]);
    assert_eq!(ids(&f.claim(10)), [mid_old, mid_new, low]);
}

#[test]
fn a_claimed_job_is_running_with_a_lease_and_a_counted_attempt() {
    let f = fixture();
    let id = f.enqueue_one(JobSpec::new("noop").tenant("acme"));
    let job = f.claim(1).remove(0);
    assert_eq!(job.id, id);
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.attempts, 1);
    assert_eq!(job.tenant.as_deref(), Some("acme"));
    assert_eq!(job.lease_owner.as_deref(), Some(OWNER));
    assert_eq!(
        job.lease_expires_at,
        Some(f.now() + chrono::Duration::seconds(30))
    );
    assert!(f.claim(1).is_empty());
}

#[test]
fn a_delayed_job_is_never_claimed_early() {
    let f = fixture();
    let id = f.enqueue_one(JobSpec::new("noop").delay(Duration::from_secs(10)));
    assert!(f.claim(10).is_empty());
    f.clock.advance(Duration::from_millis(9_999));
    assert!(f.claim(10).is_empty());
    f.clock.advance(Duration::from_millis(1));
    assert_eq!(ids(&f.claim(10)), [id]);
}

#[test]
fn a_delayed_high_priority_job_does_not_hide_a_due_low_priority_one() {
    let f = fixture();
    f.enqueue(
        (0..50)
            .map(|_| {
                JobSpec::new("noop")
                    .priority(9)
                    .delay(Duration::from_secs(60))
            })
            .collect(),
    );
    let due = f.enqueue_one(JobSpec::new("noop").priority(1));
    assert_eq!(ids(&f.claim(10)), [due]);
}

#[test]
fn one_tenants_backlog_does_not_delay_another_tenants_job() {
    let f = fixture();
    f.enqueue(
        (0..10_000)
            .map(|_| JobSpec::new("noop").tenant("big"))
            .collect(),
    );
    f.clock.advance(Duration::from_secs(1));
    let small = f.enqueue_one(JobSpec::new("noop").tenant("small"));
    let platform = f.enqueue_one(JobSpec::new("noop"));

    let batch = f.claim(4);
    assert_eq!(batch.len(), 4);
    assert!(
        batch.iter().any(|j| j.id == small),
        "small tenant's job waited"
    );
    assert!(
        batch.iter().any(|j| j.id == platform),
        "platform job waited"
    );
    assert_eq!(
        batch
            .iter()
            .filter(|j| j.tenant.as_deref() == Some("big"))
            .count(),
        2
    );
}

#[test]
fn the_claim_queries_seek_through_indexes_instead_of_scanning() {
    let f = fixture();
    for (sql, params) in [
        (claim::PLATFORM_QUEUED, vec![]),
        (claim::NEXT_TENANT, vec!["a"]),
        (claim::NEXT_PRIORITY, vec!["a", "5"]),
        (
            claim::DUE_IN_LEVEL,
            vec!["a", "5", "1000", "900", "agent:1"],
        ),
    ] {
        let plan = f.store.query_plan(sql, rusqlite::params_from_iter(params));
        assert!(
            plan.iter()
                .any(|step| step.starts_with("SEARCH jobs USING")),
            "{sql}: {plan:?}"
        );
        assert!(
            !plan
                .iter()
                .any(|step| step.starts_with("SCAN jobs") || step.contains("TEMP B-TREE")),
            "{sql}: {plan:?}"
        );
    }
}

#[test]
fn a_tenant_never_runs_more_than_its_cap() {
    let f = fixture();
    f.enqueue(
        (0..5)
            .map(|_| JobSpec::new("noop").tenant("capped"))
            .collect(),
    );
    f.enqueue(
        (0..5)
            .map(|_| JobSpec::new("noop").tenant("free"))
            .collect(),
    );
    let limits = FixedTenantLimits::new(100).with("capped", 2);

    let batch = f.claim_with(100, &limits);
    let capped: Vec<_> = batch
        .iter()
        .filter(|j| j.tenant.as_deref() == Some("capped"))
        .collect();
    assert_eq!(capped.len(), 2);
    assert_eq!(batch.len(), 7);
    assert!(f.claim_with(100, &limits).is_empty());

    // A finished job frees one place.
    f.finish(capped[0].id, FinishOutcome::Succeeded);
    assert_eq!(f.claim_with(100, &limits).len(), 1);
}

#[test]
fn a_concurrency_key_runs_one_job_at_a_time_per_tenant() {
    let f = fixture();
    let first = f.enqueue_one(JobSpec::new("noop").tenant("t").concurrency_key("agent:1"));
    let second = f.enqueue_one(JobSpec::new("noop").tenant("t").concurrency_key("agent:1"));
    let other_key = f.enqueue_one(JobSpec::new("noop").tenant("t").concurrency_key("agent:2"));
    let other_tenant = f.enqueue_one(JobSpec::new("noop").tenant("u").concurrency_key("agent:1"));
    let two_at_once = f.enqueue(
        (0..3)
            .map(|_| JobSpec::new("noop").tenant("t").concurrency("pair", 2))
            .collect(),
    );

    let mut claimed = ids(&f.claim(100));
    claimed.sort();
    let mut expected = vec![
        first,
        other_key,
        other_tenant,
        two_at_once[0].id(),
        two_at_once[1].id(),
    ];
    expected.sort();
    assert_eq!(claimed, expected);
    assert!(f.claim(100).is_empty());

    f.finish(first, FinishOutcome::Succeeded);
    assert_eq!(ids(&f.claim(100)), [second]);
}

#[test]
fn busy_keys_with_deep_batches_do_not_hide_the_keys_behind_them() {
    // 400 agents' tasks queued at once (a provider was just set): every job is due at the
    // same time, so the claim index holds each key's jobs together, 20 per key. One job per
    // key runs; a claim must still find every key with room, however many jobs of busy keys
    // come first.
    let f = fixture();
    let keys: Vec<String> = (0..400).map(|k| format!("agent:{k:03}")).collect();
    f.enqueue(
        keys.iter()
            .flat_map(|key| {
                (0..20).map(move |_| JobSpec::new("noop").tenant("t").concurrency_key(key))
            })
            .collect(),
    );
    let first = f.claim(200);
    assert_eq!(first.len(), 200);
    let second = f.claim(200);
    assert_eq!(
        second.len(),
        200,
        "the keys behind 200 busy ones were not reached"
    );
    let mut keys_claimed: Vec<String> = first
        .iter()
        .chain(&second)
        .filter_map(|j| j.concurrency_key.clone())
        .collect();
    keys_claimed.sort();
    assert_eq!(keys_claimed, keys, "one job of every key, none twice");
    assert!(f.claim(1000).is_empty());
}
