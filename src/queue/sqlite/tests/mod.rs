//! Store tests on a real `queue.db` and a manual clock.

mod claims;
mod lifecycle;
mod reads;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tempfile::TempDir;

use super::super::*;
use crate::queue::clock::{Clock, ManualClock};
use crate::queue::job::{JobDefaults, JobSpec};
use crate::queue::limits::{FixedTenantLimits, TenantLimits};
use crate::queue::list::TenantFilter;
use crate::queue::store::FinishOutcome;

pub(super) const OWNER: &str = "worker-a";
pub(super) const LEASE: Duration = Duration::from_secs(30);
pub(super) const DEFAULTS: JobDefaults = JobDefaults {
    max_attempts: 3,
    timeout: Duration::from_secs(60),
};

pub(super) struct Fixture {
    pub(super) _dir: TempDir,
    pub(super) path: std::path::PathBuf,
    pub(super) store: Arc<SqliteJobStore>,
    pub(super) clock: ManualClock,
}

pub(super) fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub(super) fn options() -> SqliteOptions {
    SqliteOptions {
        synchronous: Synchronous::Normal,
        busy_timeout: Duration::from_secs(5),
    }
}

pub(super) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let store = Arc::new(SqliteJobStore::open(&path, options()).unwrap());
    Fixture {
        _dir: dir,
        path,
        store,
        clock: ManualClock::new(start()),
    }
}

impl Fixture {
    pub(super) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(super) fn enqueue(&self, specs: Vec<JobSpec>) -> Vec<Enqueued> {
        let now = self.now();
        let jobs = specs
            .into_iter()
            .map(|s| s.resolve(now, &DEFAULTS).unwrap())
            .collect();
        self.store.enqueue(jobs, now).unwrap()
    }

    pub(super) fn enqueue_one(&self, spec: JobSpec) -> JobId {
        self.enqueue(vec![spec])[0].id()
    }

    pub(super) fn claim_with(&self, limit: usize, limits: &dyn TenantLimits) -> Vec<Job> {
        self.store
            .claim(&ClaimRequest {
                owner: OWNER,
                now: self.now(),
                lease: LEASE,
                limit,
                tenant_limits: limits,
            })
            .unwrap()
    }

    pub(super) fn claim(&self, limit: usize) -> Vec<Job> {
        self.claim_with(limit, &FixedTenantLimits::default())
    }

    pub(super) fn finish(&self, id: JobId, outcome: FinishOutcome) -> Option<JobState> {
        self.store
            .finish(OWNER, &[Finish { id, outcome }], self.now())
            .unwrap()[0]
    }

    pub(super) fn fail(&self, id: JobId, error: &str, retry_in: Duration) -> Option<JobState> {
        let retry_at = self.now() + chrono::Duration::from_std(retry_in).unwrap();
        self.finish(
            id,
            FinishOutcome::Failed {
                error: error.into(),
                retry_at,
            },
        )
    }

    pub(super) fn get(&self, id: JobId) -> Job {
        self.store.get(id).unwrap()
    }
}

pub(super) fn ids(jobs: &[Job]) -> Vec<JobId> {
    jobs.iter().map(|j| j.id).collect()
}

/// Store-only throughput: `cargo test --release --lib store_throughput -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark"]
fn store_throughput() {
    use std::time::Instant;
    const JOBS: usize = 100_000;
    let f = fixture();
    let t = Instant::now();
    for chunk in 0..JOBS / 1000 {
        f.enqueue(
            (0..1000)
                .map(|i| JobSpec::new("noop").tenant(format!("t{}", (chunk * 1000 + i) % 10)))
                .collect(),
        );
    }
    let enqueue = t.elapsed();
    let (mut claim, mut finish, mut n) = (Duration::ZERO, Duration::ZERO, 0);
    loop {
        let t = Instant::now();
        let jobs = f.claim(256);
        claim += t.elapsed();
        if jobs.is_empty() {
            break;
        }
        n += jobs.len();
        let finishes: Vec<_> = jobs
            .iter()
            .map(|j| Finish {
                id: j.id,
                outcome: FinishOutcome::Succeeded,
            })
            .collect();
        let t = Instant::now();
        f.store.finish(OWNER, &finishes, f.now()).unwrap();
        finish += t.elapsed();
    }
    assert_eq!(n, JOBS);
    let rate = |d: Duration| JOBS as f64 / d.as_secs_f64();
    println!(
        "enqueue {:.0}/s, claim {:.0}/s, finish {:.0}/s, claim+finish {:.0}/s",
        rate(enqueue),
        rate(claim),
        rate(finish),
        rate(claim + finish)
    );
}
