//! How handlers call services: on the blocking pool (services talk to SQLite), with the
//! service's error mapped to the JSON error format once, here.

use actix_web::web;

use super::ApiError;
use crate::services::{Scope, ServiceError};

/// Runs `f` with `scope` on the blocking pool.
pub async fn run<T, F>(scope: Scope, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&Scope) -> Result<T, ServiceError> + Send + 'static,
    T: Send + 'static,
{
    web::block(move || f(&scope))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}
