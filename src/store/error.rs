use rusqlite::ErrorCode;

/// Storage failures, in terms services and the HTTP layer can act on. The mapping from SQLite
/// result codes is explicit so that, e.g., a lock timeout becomes "busy, retry" and a constraint
/// violation becomes a conflict, never a generic 500.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database stayed locked longer than the busy timeout.
    #[error("storage is busy; retry")]
    Busy,
    /// A tenant's database file is gone.
    #[error("database file is missing: {0}")]
    Missing(String),
    /// A database file is damaged or not one of ours.
    #[error("database is damaged or unreadable: {0}")]
    Corrupt(String),
    /// A database was written by a newer AgentHQ than this one.
    #[error(
        "database schema version {found} is newer than this build supports ({supported}); upgrade agenthq"
    )]
    TooNew { found: i64, supported: i64 },
    /// The storage cannot be used at all (disk full, read-only, cannot open).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("internal storage error: {0}")]
    Internal(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
            rusqlite::Error::SqliteFailure(err, msg) => {
                let detail = msg.clone().unwrap_or_else(|| err.to_string());
                match err.code {
                    ErrorCode::ConstraintViolation => StoreError::Conflict(detail),
                    ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Busy,
                    ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                        StoreError::Corrupt(detail)
                    }
                    ErrorCode::CannotOpen => StoreError::Missing(detail),
                    ErrorCode::ReadOnly
                    | ErrorCode::DiskFull
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::PermissionDenied => StoreError::Unavailable(detail),
                    _ => StoreError::Internal(e.to_string()),
                }
            }
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    /// r2d2 only fails a checkout when no connection could be had within its timeout: either
    /// every connection is in use (busy) or connecting keeps failing; its message says which.
    fn from(e: r2d2::Error) -> Self {
        let text = e.to_string();
        if text.contains("timed out") && !text.contains("error") {
            StoreError::Busy
        } else {
            StoreError::Unavailable(text)
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::Missing(e.to_string()),
            _ => StoreError::Unavailable(e.to_string()),
        }
    }
}
