//! Tests of the `Queue` handle and the scheduler over a real `queue.db`, on a manual clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tempfile::TempDir;

use super::*;

struct Fixture {
    _dir: TempDir,
    queue: Queue,
    clock: Arc<ManualClock>,
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn fixture(start: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let settings = QueueSettings::default();
    let store = SqliteJobStore::open(&dir.path().join("queue.db"), (&settings).into()).unwrap();
    let clock = Arc::new(ManualClock::new(at(start)));
    let queue = Queue::new(Arc::new(store), clock.clone(), settings);
    Fixture {
        _dir: dir,
        queue,
        clock,
    }
}

impl Fixture {
    fn tick(&self) -> usize {
        self.queue.scheduler().tick(self.clock.now()).unwrap()
    }

    async fn jobs_of_kind(&self, kind: &str) -> Vec<Job> {
        let mut jobs = self
            .queue
            .list(
                JobFilter {
                    kind: Some(kind.into()),
                    ..JobFilter::default()
                },
                PageRequest {
                    after: None,
                    limit: MAX_PAGE_SIZE,
                },
            )
            .await
            .unwrap()
            .jobs;
        jobs.reverse();
        jobs
    }
}

fn every_minute(name: &str, catch_up: bool) -> ScheduleSpec {
    let mut spec = ScheduleSpec::new(name, CronExpr::parse("* * * * *").unwrap(), "report");
    spec.catch_up = catch_up;
    spec
}

#[tokio::test]
async fn enqueue_reports_new_and_existing_jobs_and_get_reads_them_back() {
    let f = fixture("2030-01-01T00:00:00Z");
    let spec = JobSpec::new("noop").tenant("acme").idempotency_key("k");
    let first = f.queue.enqueue(spec.clone()).await.unwrap();
    assert!(first.is_new());
    assert_eq!(
        f.queue.enqueue(spec).await.unwrap(),
        Enqueued::Existing(first.id())
    );
    let job = f.queue.get(first.id()).await.unwrap();
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(job.created_at, f.clock.now());
    assert!(matches!(
        f.queue.enqueue(JobSpec::new("bad kind")).await,
        Err(QueueError::Invalid(_))
    ));
    assert!(matches!(
        f.queue.get(JobId::generate()).await,
        Err(QueueError::NotFound)
    ));
}

#[tokio::test]
async fn a_cron_schedule_fires_once_per_period() {
    let f = fixture("2030-01-01T00:00:30Z");
    f.queue
        .upsert_schedule(every_minute("minutely", false))
        .await
        .unwrap();
    assert_eq!(f.tick(), 0, "fired before its first period");

    f.clock.set(at("2030-01-01T00:01:00Z"));
    assert_eq!(f.tick(), 1);
    assert_eq!(f.tick(), 0, "a second tick at the same time fired again");
    for _ in 0..2 {
        f.clock.advance(Duration::from_secs(60));
        assert_eq!(f.tick(), 1);
    }

    let jobs = f.jobs_of_kind("report").await;
    let fires: Vec<_> = jobs.iter().map(|j| j.run_at).collect();
    assert_eq!(
        fires,
        [
            at("2030-01-01T00:01:00Z"),
            at("2030-01-01T00:02:00Z"),
            at("2030-01-01T00:03:00Z"),
        ]
    );
    assert_eq!(
        jobs[0].idempotency_key.as_deref(),
        Some(
            format!(
                "schedule:minutely:{}",
                at("2030-01-01T00:01:00Z").timestamp_millis()
            )
            .as_str()
        )
    );
    let schedule = &f.queue.list_schedules().await.unwrap()[0];
    assert_eq!(schedule.next_fire_at, at("2030-01-01T00:04:00Z"));
}

#[tokio::test]
async fn missed_fires_are_skipped_but_the_latest() {
    let f = fixture("2030-01-01T00:00:30Z");
    f.queue
        .upsert_schedule(every_minute("skipping", false))
        .await
        .unwrap();
    f.clock.set(at("2030-01-01T00:05:30Z"));
    assert_eq!(f.tick(), 1);
    let jobs = f.jobs_of_kind("report").await;
    assert_eq!(jobs[0].run_at, at("2030-01-01T00:05:00Z"));
    assert_eq!(
        f.queue.list_schedules().await.unwrap()[0].next_fire_at,
        at("2030-01-01T00:06:00Z")
    );
}

#[tokio::test]
async fn missed_fires_are_caught_up_when_configured() {
    let f = fixture("2030-01-01T00:00:30Z");
    f.queue
        .upsert_schedule(every_minute("catching", true))
        .await
        .unwrap();
    f.clock.set(at("2030-01-01T00:05:30Z"));
    assert_eq!(f.tick(), 5);
    assert_eq!(f.tick(), 0);
    let fires: Vec<_> = f
        .jobs_of_kind("report")
        .await
        .iter()
        .map(|j| j.run_at)
        .collect();
    assert_eq!(fires.len(), 5);
    assert_eq!(fires[0], at("2030-01-01T00:01:00Z"));
    assert_eq!(fires[4], at("2030-01-01T00:05:00Z"));
}

#[tokio::test]
async fn registering_a_schedule_again_keeps_its_next_fire_unless_the_expression_changed() {
    let f = fixture("2030-01-01T00:00:30Z");
    f.queue
        .upsert_schedule(every_minute("s", false))
        .await
        .unwrap();
    f.clock.set(at("2030-01-01T00:00:59Z"));
    let mut same = every_minute("s", false);
    same.payload = r#"{"v":2}"#.into();
    f.queue.upsert_schedule(same).await.unwrap();
    let stored = &f.queue.list_schedules().await.unwrap()[0];
    assert_eq!(stored.next_fire_at, at("2030-01-01T00:01:00Z"));
    assert_eq!(stored.spec.payload, r#"{"v":2}"#);

    let mut hourly = every_minute("s", false);
    hourly.cron = CronExpr::parse("0 * * * *").unwrap();
    f.queue.upsert_schedule(hourly).await.unwrap();
    let stored = &f.queue.list_schedules().await.unwrap()[0];
    assert_eq!(stored.next_fire_at, at("2030-01-01T01:00:00Z"));

    assert!(f.queue.delete_schedule("s").await.unwrap());
    assert!(!f.queue.delete_schedule("s").await.unwrap());
}

#[tokio::test]
async fn a_schedule_for_an_invalid_job_is_refused() {
    let f = fixture("2030-01-01T00:00:00Z");
    let mut spec = every_minute("bad", false);
    spec.payload = "{not json".into();
    assert!(matches!(
        f.queue.upsert_schedule(spec).await,
        Err(QueueError::Invalid(_))
    ));
}
