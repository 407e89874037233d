//! Recurring jobs: named cron schedules stored in `queue.db`, fired by [`Scheduler::tick`].
//!
//! Each fire is enqueued with the idempotency key `schedule:<name>:<fire time in ms>` and
//! `run_at` = the fire time, and the schedule moves to its next fire in the same transaction,
//! compare-and-set on the fire it expected: ticking twice, or from two processes, enqueues a
//! fire once.
//!
//! Missed fires (the server was down across several): by default only the latest due fire is
//! enqueued, the earlier ones are skipped — a maintenance job that missed five runs needs one
//! run now, not five in a row. A schedule with `catch_up` enqueues every missed fire, at most
//! the latest [`MAX_CATCH_UP`]. Times are evaluated in UTC.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use croner::Cron;

use super::QueueError;
use super::job::{Enqueued, JobDefaults, JobSpec, NewJob};
use super::store::JobStore;

/// Most missed fires a catch-up schedule enqueues at once.
pub const MAX_CATCH_UP: usize = 100;

/// A checked cron expression: 5 fields (minute hour day-of-month month day-of-week), or 6
/// with seconds first. Evaluated in UTC.
#[derive(Clone)]
pub struct CronExpr {
    text: String,
    cron: Cron,
}

impl CronExpr {
    pub fn parse(text: &str) -> Result<Self, QueueError> {
        let cron = Cron::from_str(text)
            .map_err(|e| QueueError::Invalid(format!("invalid cron expression {text:?}: {e}")))?;
        // An expression that can never fire (31 February) parses; refuse it here rather than
        // store a schedule that never runs.
        let probe = DateTime::<Utc>::UNIX_EPOCH;
        if cron.find_next_occurrence(&probe, false).is_err() {
            return Err(QueueError::Invalid(format!(
                "cron expression {text:?} never fires"
            )));
        }
        Ok(Self {
            text: text.trim().to_owned(),
            cron,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first fire strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&t, false).ok()
    }

    /// The last fire at or before `t`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_previous_occurrence(&t, true).ok()
    }

    /// The last fire strictly before `t`.
    fn previous_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_previous_occurrence(&t, false).ok()
    }
}

impl fmt::Debug for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronExpr").field(&self.text).finish()
    }
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl FromStr for CronExpr {
    type Err = QueueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A schedule to create or update (by name).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    /// Unique; also part of every fire's idempotency key.
    pub name: String,
    pub cron: CronExpr,
    pub kind: String,
    /// `None` for platform schedules (maintenance).
    pub tenant: Option<String>,
    /// JSON text.
    pub payload: String,
    pub priority: i32,
    /// Enqueue every missed fire instead of only the latest.
    pub catch_up: bool,
}

impl ScheduleSpec {
    /// A platform schedule with an empty payload, priority 0 and no catch-up.
    pub fn new(name: impl Into<String>, cron: CronExpr, kind: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            cron,
            kind: kind.into(),
            tenant: None,
            payload: "{}".to_owned(),
            priority: 0,
            catch_up: false,
        }
    }

    pub(crate) fn check(&self, defaults: &JobDefaults) -> Result<(), QueueError> {
        if self.name.is_empty() || self.name.len() > 128 {
            return Err(QueueError::Invalid(
                "schedule name must be 1 to 128 bytes long".into(),
            ));
        }
        // The job each fire makes must be valid too.
        self.job_at(DateTime::<Utc>::UNIX_EPOCH, defaults)
            .map(|_| ())
    }

    fn job_at(&self, fire: DateTime<Utc>, defaults: &JobDefaults) -> Result<NewJob, QueueError> {
        let mut spec = JobSpec::new(self.kind.clone())
            .payload_json(self.payload.clone())
            .priority(self.priority)
            .run_at(fire)
            .idempotency_key(format!(
                "schedule:{}:{}",
                self.name,
                fire.timestamp_millis()
            ));
        if let Some(tenant) = &self.tenant {
            spec = spec.tenant(tenant.clone());
        }
        spec.resolve(fire, defaults)
    }
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub spec: ScheduleSpec,
    pub next_fire_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Fires due schedules. Blocking, like the store: async callers run [`Scheduler::tick`]
/// through `spawn_blocking` (the worker pool does, every `schedule_interval`).
#[derive(Clone)]
pub struct Scheduler {
    store: Arc<dyn JobStore>,
    defaults: JobDefaults,
}

impl Scheduler {
    pub fn new(store: Arc<dyn JobStore>, defaults: JobDefaults) -> Self {
        Self { store, defaults }
    }

    /// Enqueues the fires due at `now`; returns how many new jobs that made. A schedule whose
    /// stored expression no longer parses is skipped (and logged), never fired.
    pub fn tick(&self, now: DateTime<Utc>) -> Result<usize, QueueError> {
        let mut enqueued = 0;
        for schedule in self.store.due_schedules(now)? {
            let name = schedule.spec.name.clone();
            let fires = due_fires(&schedule, now);
            let Some(next) = schedule.spec.cron.next_after(now) else {
                tracing::warn!(schedule = %name, "schedule has no future fire; left as is");
                continue;
            };
            let jobs = fires
                .into_iter()
                .map(|fire| schedule.spec.job_at(fire, &self.defaults))
                .collect::<Result<Vec<_>, _>>();
            let jobs = match jobs {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(schedule = %name, error = %e, "schedule makes invalid jobs; skipped");
                    continue;
                }
            };
            if let Some(results) =
                self.store
                    .fire_schedule(&name, schedule.next_fire_at, next, jobs, now)?
            {
                enqueued += results.iter().filter(|r| Enqueued::is_new(**r)).count();
            }
        }
        Ok(enqueued)
    }
}

/// The fires of `schedule` to enqueue at `now`, oldest first.
fn due_fires(schedule: &Schedule, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let cron = &schedule.spec.cron;
    let Some(latest) = cron.latest_at_or_before(now) else {
        return Vec::new();
    };
    // The stored next fire is a fire of the expression, unless the expression changed under
    // it; either way nothing before it is due.
    if latest < schedule.next_fire_at {
        return Vec::new();
    }
    if !schedule.spec.catch_up {
        return vec![latest];
    }
    // Walk back from the latest so a long outage costs at most MAX_CATCH_UP steps.
    let mut fires = vec![latest];
    while fires.len() < MAX_CATCH_UP {
        match fires.last().and_then(|f| cron.previous_before(*f)) {
            Some(earlier) if earlier >= schedule.next_fire_at => fires.push(earlier),
            _ => break,
        }
    }
    fires.reverse();
    fires
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn every_minute(catch_up: bool, next: &str) -> Schedule {
        let mut spec = ScheduleSpec::new("s", CronExpr::parse("* * * * *").unwrap(), "noop");
        spec.catch_up = catch_up;
        Schedule {
            spec,
            next_fire_at: at(next),
            created_at: at(next),
            updated_at: at(next),
        }
    }

    #[test]
    fn cron_expressions_are_checked() {
        assert!(CronExpr::parse("*/5 * * * *").is_ok());
        assert!(CronExpr::parse("0 */10 * * * *").is_ok());
        assert!(CronExpr::parse("not cron").is_err());
        assert!(CronExpr::parse("0 0 31 2 *").is_err());
    }

    #[test]
    fn next_fire_is_strictly_after() {
        let cron = CronExpr::parse("*/5 * * * *").unwrap();
        assert_eq!(
            cron.next_after(at("2030-01-01T00:00:00Z")),
            Some(at("2030-01-01T00:05:00Z"))
        );
    }

    #[test]
    fn only_the_latest_missed_fire_is_due_by_default() {
        let fires = due_fires(
            &every_minute(false, "2030-01-01T00:01:00Z"),
            at("2030-01-01T00:05:30Z"),
        );
        assert_eq!(fires, [at("2030-01-01T00:05:00Z")]);
    }

    #[test]
    fn catch_up_returns_every_missed_fire_up_to_the_cap() {
        let s = every_minute(true, "2030-01-01T00:01:00Z");
        let fires = due_fires(&s, at("2030-01-01T00:05:30Z"));
        assert_eq!(fires.len(), 5);
        assert_eq!(fires[0], at("2030-01-01T00:01:00Z"));
        let fires = due_fires(&s, at("2030-01-02T00:00:00Z"));
        assert_eq!(fires.len(), MAX_CATCH_UP);
        assert_eq!(fires.last(), Some(&at("2030-01-02T00:00:00Z")));
    }

    #[test]
    fn nothing_is_due_before_the_next_fire() {
        let fires = due_fires(
            &every_minute(true, "2030-01-01T00:01:00Z"),
            at("2030-01-01T00:00:59Z"),
        );
        assert!(fires.is_empty());
    }
}
