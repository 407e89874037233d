//! Jobs: their identity, states, the spec callers enqueue and the stored record.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

use super::QueueError;

/// Longest accepted job kind, tenant, idempotency or concurrency key, in bytes.
const MAX_NAME_LEN: usize = 128;
const MAX_KEY_LEN: usize = 256;
/// Payloads are for parameters, not data: large data belongs in the tenant store.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
const MAX_ATTEMPTS_LIMIT: u32 = 1000;

/// A job's id: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(Uuid);

impl JobId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    pub(crate) fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_hyphenated().fmt(f)
    }
}

impl FromStr for JobId {
    type Err = QueueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| QueueError::Invalid(format!("not a job id: {s:?}")))
    }
}

/// Where a job is in its life. `queued` and `running` are live; the others are final until an
/// admin retries a `dead`, `failed` or `cancelled` job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    /// The handler reported a permanent failure ([`JobFailure::permanent`]): not retried.
    ///
    /// [`JobFailure::permanent`]: super::JobFailure::permanent
    Failed,
    /// Every attempt failed (or its lease expired): not retried.
    Dead,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Dead,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn is_live(self) -> bool {
        matches!(self, JobState::Queued | JobState::Running)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = QueueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| QueueError::Invalid(format!("not a job state: {s:?}")))
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    /// `None` for platform jobs.
    pub tenant: Option<String>,
    /// JSON text, parsed by the handler ([`Job::payload_as`]).
    pub payload: String,
    /// Higher runs first.
    pub priority: i32,
    pub state: JobState,
    /// Not claimed before this time.
    pub run_at: DateTime<Utc>,
    /// Attempts started so far, this one included while running.
    pub attempts: u32,
    pub max_attempts: u32,
    #[serde(rename = "timeout_ms", serialize_with = "duration_ms")]
    pub timeout: Duration,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
    pub concurrency_key: Option<String>,
    pub concurrency_limit: u32,
    pub last_error: Option<String>,
    pub cancel_requested: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Job {
    /// The payload as `T`.
    pub fn payload_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.payload)
    }
}

fn duration_ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// When a job becomes due.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Due {
    Now,
    At(DateTime<Utc>),
    After(Duration),
}

/// What to enqueue: a builder. Everything but the kind has a default (no tenant, `{}` payload,
/// priority 0, due now, the queue's default attempts and timeout, no keys).
///
/// ```
/// # use agenthq::queue::JobSpec;
/// let spec = JobSpec::new("agent.run")
///     .tenant("acme")
///     .payload(serde_json::json!({"agent": "a1"}))
///     .priority(10)
///     .idempotency_key("run:a1:42")
///     .concurrency_key("agent:a1");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    kind: String,
    tenant: Option<String>,
    payload: String,
    priority: i32,
    due: Due,
    max_attempts: Option<u32>,
    timeout: Option<Duration>,
    idempotency_key: Option<String>,
    concurrency: Option<(String, u32)>,
}

impl JobSpec {
    pub fn new(kind: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            tenant: None,
            payload: "{}".to_owned(),
            priority: 0,
            due: Due::Now,
            max_attempts: None,
            timeout: None,
            idempotency_key: None,
            concurrency: None,
        }
    }

    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = payload.to_string();
        self
    }

    /// A payload that is already JSON text (checked at enqueue).
    pub fn payload_json(mut self, json: impl Into<String>) -> Self {
        self.payload = json.into();
        self
    }

    /// Higher runs first; the default is 0 and negative values are allowed.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Not claimed before `at`.
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.due = Due::At(at);
        self
    }

    /// Not claimed before `delay` after the enqueue (measured on the queue's clock).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.due = Due::After(delay);
        self
    }

    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// How long one attempt may run before it is failed (and its token cancelled).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// While a job of the same tenant with this key is queued or running, enqueueing returns
    /// that job ([`Enqueued::Existing`]) instead of adding another.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// At most one job of the same tenant with this key runs at a time.
    pub fn concurrency_key(self, key: impl Into<String>) -> Self {
        self.concurrency(key, 1)
    }

    /// At most `limit` jobs of the same tenant with this key run at a time. Jobs sharing a key
    /// should agree on the limit: each job is checked against its own.
    pub fn concurrency(mut self, key: impl Into<String>, limit: u32) -> Self {
        self.concurrency = Some((key.into(), limit));
        self
    }

    pub fn kind_name(&self) -> &str {
        &self.kind
    }

    /// Checks the spec and fixes every default: the job as the store inserts it.
    pub(crate) fn resolve(
        self,
        now: DateTime<Utc>,
        defaults: &JobDefaults,
    ) -> Result<NewJob, QueueError> {
        check_name("kind", &self.kind, MAX_NAME_LEN)?;
        if !self
            .kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        {
            return Err(QueueError::Invalid(format!(
                "job kind {:?} may only contain letters, digits, '_', '-', '.' and ':'",
                self.kind
            )));
        }
        if let Some(tenant) = &self.tenant {
            check_name("tenant", tenant, MAX_NAME_LEN)?;
        }
        if self.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(QueueError::Invalid(format!(
                "payload is {} bytes; the limit is {MAX_PAYLOAD_BYTES}",
                self.payload.len()
            )));
        }
        serde_json::from_str::<serde::de::IgnoredAny>(&self.payload)
            .map_err(|e| QueueError::Invalid(format!("payload is not JSON: {e}")))?;
        if let Some(key) = &self.idempotency_key {
            check_name("idempotency key", key, MAX_KEY_LEN)?;
        }
        let (concurrency_key, concurrency_limit) = match self.concurrency {
            Some((key, limit)) => {
                check_name("concurrency key", &key, MAX_KEY_LEN)?;
                if limit == 0 {
                    return Err(QueueError::Invalid(
                        "concurrency limit must be at least 1".into(),
                    ));
                }
                (Some(key), limit)
            }
            None => (None, 1),
        };
        let max_attempts = self.max_attempts.unwrap_or(defaults.max_attempts);
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&max_attempts) {
            return Err(QueueError::Invalid(format!(
                "max_attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}"
            )));
        }
        let timeout = self.timeout.unwrap_or(defaults.timeout);
        if timeout.is_zero() {
            return Err(QueueError::Invalid("timeout must be positive".into()));
        }
        let run_at = match self.due {
            Due::Now => now,
            Due::At(at) => at,
            Due::After(delay) => chrono::Duration::from_std(delay)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .ok_or_else(|| QueueError::Invalid("delay is out of range".into()))?,
        };
        Ok(NewJob {
            id: JobId::generate(),
            kind: self.kind,
            tenant: self.tenant,
            payload: self.payload,
            priority: self.priority,
            run_at,
            max_attempts,
            timeout,
            idempotency_key: self.idempotency_key,
            concurrency_key,
            concurrency_limit,
        })
    }
}

fn check_name(what: &str, value: &str, max: usize) -> Result<(), QueueError> {
    if value.is_empty() || value.len() > max {
        return Err(QueueError::Invalid(format!(
            "{what} must be 1 to {max} bytes long"
        )));
    }
    Ok(())
}

/// Defaults a [`JobSpec`] takes for what it leaves unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobDefaults {
    pub max_attempts: u32,
    pub timeout: Duration,
}

/// A checked job with every default fixed: what [`JobStore::enqueue`] inserts.
///
/// [`JobStore::enqueue`]: super::JobStore::enqueue
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub id: JobId,
    pub kind: String,
    pub tenant: Option<String>,
    pub payload: String,
    pub priority: i32,
    pub run_at: DateTime<Utc>,
    pub max_attempts: u32,
    pub timeout: Duration,
    pub idempotency_key: Option<String>,
    pub concurrency_key: Option<String>,
    pub concurrency_limit: u32,
}

/// The result of enqueueing one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "id", rename_all = "snake_case")]
pub enum Enqueued {
    /// A new job was added.
    New(JobId),
    /// A live job with the same idempotency key (and tenant) already exists: nothing added.
    Existing(JobId),
}

impl Enqueued {
    pub fn id(self) -> JobId {
        match self {
            Enqueued::New(id) | Enqueued::Existing(id) => id,
        }
    }

    pub fn is_new(self) -> bool {
        matches!(self, Enqueued::New(_))
    }
}

/// What a cancel request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// The job was queued: it is cancelled now.
    Cancelled,
    /// The job is running: its handler's token fires (at once in this process, within a lease
    /// renewal in another) and the job ends `cancelled` unless it still succeeds.
    Requested,
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: JobDefaults = JobDefaults {
        max_attempts: 3,
        timeout: Duration::from_secs(60),
    };

    #[test]
    fn a_spec_takes_the_defaults_it_leaves_unset() {
        let now = Utc::now();
        let job = JobSpec::new("noop").resolve(now, &DEFAULTS).unwrap();
        assert_eq!(job.max_attempts, 3);
        assert_eq!(job.timeout, Duration::from_secs(60));
        assert_eq!(job.run_at, now);
        assert_eq!(job.payload, "{}");
        assert_eq!(job.tenant, None);
    }

    #[test]
    fn a_delay_is_measured_from_the_enqueue_time() {
        let now = Utc::now();
        let job = JobSpec::new("noop")
            .delay(Duration::from_secs(5))
            .resolve(now, &DEFAULTS)
            .unwrap();
        assert_eq!(job.run_at, now + chrono::Duration::seconds(5));
    }

    #[test]
    fn invalid_specs_are_refused() {
        let now = Utc::now();
        for spec in [
            JobSpec::new(""),
            JobSpec::new("has space"),
            JobSpec::new("noop").tenant(""),
            JobSpec::new("noop").payload_json("{not json"),
            JobSpec::new("noop").max_attempts(0),
            JobSpec::new("noop").timeout(Duration::ZERO),
            JobSpec::new("noop").concurrency("k", 0),
            JobSpec::new("noop").idempotency_key(""),
        ] {
            assert!(
                matches!(
                    spec.clone().resolve(now, &DEFAULTS),
                    Err(QueueError::Invalid(_))
                ),
                "{spec:?} was accepted"
            );
        }
    }

    #[test]
    fn ids_and_states_round_trip_through_text() {
        let id = JobId::generate();
        assert_eq!(id.to_string().parse::<JobId>().unwrap(), id);
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>().unwrap(), state);
        }
        assert!("nope".parse::<JobState>().is_err());
        assert!("nope".parse::<JobId>().is_err());
    }
}
