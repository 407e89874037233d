//! Reopening, lists, counts, prune.

use std::time::Duration;

use super::*;

#[test]
fn reopening_a_migrated_queue_keeps_its_jobs() {
    let f = fixture();
    let id = f.enqueue_one(JobSpec::new("noop"));
    drop(f.store);
    let store = SqliteJobStore::open(&f.path, options()).unwrap();
    assert_eq!(store.get(id).unwrap().state, JobState::Queued);
}

#[test]
fn lists_page_newest_first_and_stay_stable_under_inserts() {
    let f = fixture();
    let mut all = Vec::new();
    for i in 0..25 {
        let tenant = if i % 2 == 0 { "even" } else { "odd" };
        all.push(f.enqueue_one(JobSpec::new("noop").tenant(tenant)));
    }
    all.reverse();

    let mut seen = Vec::new();
    let mut page = PageRequest {
        after: None,
        limit: 10,
    };
    loop {
        let result = f.store.list(&JobFilter::default(), &page).unwrap();
        seen.extend(ids(&result.jobs));
        // A job enqueued between pages is newer than the cursor: it never shows up later.
        f.enqueue_one(JobSpec::new("noop").tenant("late"));
        match result.next_cursor {
            Some(cursor) => page.after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen, all);

    let odd = f
        .store
        .list(
            &JobFilter {
                tenant: Some(TenantFilter::Tenant("odd".into())),
                ..JobFilter::default()
            },
            &PageRequest {
                after: None,
                limit: 100,
            },
        )
        .unwrap();
    assert_eq!(odd.jobs.len(), 12);
    assert_eq!(odd.next_cursor, None);
    let platform = f
        .store
        .list(
            &JobFilter {
                tenant: Some(TenantFilter::Platform),
                ..JobFilter::default()
            },
            &PageRequest::default(),
        )
        .unwrap();
    assert!(platform.jobs.is_empty());
    assert!(matches!(
        f.store.list(
            &JobFilter::default(),
            &PageRequest {
                after: None,
                limit: 0
            }
        ),
        Err(QueueError::Invalid(_))
    ));
}

#[test]
fn lists_filter_by_state_and_kind_and_counts_group_them() {
    let f = fixture();
    f.enqueue_one(JobSpec::new("a"));
    f.enqueue_one(JobSpec::new("a"));
    f.enqueue_one(JobSpec::new("b"));
    let running = f.claim(1).remove(0);
    assert_eq!(running.kind, "a");

    let queued_a = f
        .store
        .list(
            &JobFilter {
                state: Some(JobState::Queued),
                kind: Some("a".into()),
                ..JobFilter::default()
            },
            &PageRequest::default(),
        )
        .unwrap();
    assert_eq!(queued_a.jobs.len(), 1);

    let mut counts: Vec<_> = f
        .store
        .counts()
        .unwrap()
        .into_iter()
        .map(|c| (c.state, c.kind, c.count))
        .collect();
    counts.sort_by_key(|(state, kind, _)| (state.as_str(), kind.clone()));
    assert_eq!(
        counts,
        [
            (JobState::Queued, "a".to_owned(), 1),
            (JobState::Queued, "b".to_owned(), 1),
            (JobState::Running, "a".to_owned(), 1),
        ]
    );
}

#[test]
fn prune_deletes_finished_jobs_past_their_retention() {
    let f = fixture();
    let done = f.enqueue_one(JobSpec::new("noop"));
    let dead = f.enqueue_one(JobSpec::new("noop").max_attempts(1));
    let live = f.enqueue_one(JobSpec::new("noop").delay(Duration::from_secs(3600)));
    f.claim(10);
    f.finish(done, FinishOutcome::Succeeded);
    f.fail(dead, "boom", Duration::ZERO);

    f.clock.advance(Duration::from_secs(10));
    let keep_dead = PruneBefore {
        done: f.now(),
        dead: start(),
    };
    assert_eq!(f.store.prune(&keep_dead).unwrap(), 1);
    assert!(matches!(f.store.get(done), Err(QueueError::NotFound)));
    assert_eq!(f.get(dead).state, JobState::Dead);

    let everything = PruneBefore {
        done: f.now(),
        dead: f.now(),
    };
    assert_eq!(f.store.prune(&everything).unwrap(), 1);
    assert_eq!(f.get(live).state, JobState::Queued);
}
