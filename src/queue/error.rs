//! Queue errors, in terms the HTTP layer can map once: not found (404), conflict (409),
//! invalid input (400), storage (503 when busy or unavailable, 500 otherwise).

use crate::store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    /// No job (or schedule) with that id (or name).
    #[error("not found")]
    NotFound,
    /// The change is illegal in the current state (e.g. retrying a running job) or would break
    /// a uniqueness rule (retrying a job whose idempotency key is live again).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request itself is wrong: a bad kind, payload, cron expression, limit…
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("queue storage: {0}")]
    Storage(StoreError),
}

impl From<StoreError> for QueueError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => QueueError::NotFound,
            StoreError::Conflict(detail) => QueueError::Conflict(detail),
            other => QueueError::Storage(other),
        }
    }
}

impl From<rusqlite::Error> for QueueError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::from(e).into()
    }
}
