use crate::store::StoreError;

/// Why a tenant lifecycle operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("invalid {field}: {message}")]
    Validation {
        field: &'static str,
        message: String,
    },
    #[error("no tenant with slug '{0}'")]
    NotFound(String),
    /// The operation does not apply to the tenant's current state (or a duplicate).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TenancyError {
    pub fn from_store(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(msg) => TenancyError::Conflict(msg),
            other => TenancyError::Store(other),
        }
    }
}
