//! How handlers call services: off the HTTP workers (services talk to SQLite), with the
//! service's error mapped to the JSON error format once, here.
//!
//! A request that changes something (its scope announced a write) runs on its tenant's write
//! queue, which commits it together with the tenant's other changes of the moment
//! ([`super::write_queue`]); any other runs on the blocking pool.

use actix_web::web::{self, Bytes};
use serde::Serialize;

use super::ApiError;
use crate::services::{Scope, ServiceError};

/// Runs `f` with `scope` off the HTTP workers.
pub async fn run<T, F>(scope: Scope, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&Scope) -> Result<T, ServiceError> + Send + 'static,
    T: Send + 'static,
{
    dispatch(scope, move |s| f(s).map_err(ApiError::from)).await
}

/// Runs `f` on the tenant's write queue if `scope` writes, else on the blocking pool.
async fn dispatch<T, F>(scope: Scope, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&Scope) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    if scope.write_intent.is_some() {
        super::write_queue::run(scope, f).await
    } else {
        web::block(move || f(&scope))
            .await
            .map_err(ApiError::internal)?
    }
}

/// Runs `f` with `scope` off the HTTP workers and serialises its result there, as a JSON body.
///
/// For results made of many allocations (pages of tasks): they are freed by the thread that
/// allocated them. Freed on an HTTP worker instead, each allocation went back to its owner
/// thread's heap through a cross-thread free list, which that thread then had to collect
/// (measured on `GET /api/tasks?limit=50`: ~9 % of the server's CPU in the allocator's
/// `_mi_page_free_collect` and free-page search; server CPU per request, median of three
/// alternating pairs, 312 → 270 µs).
pub async fn run_json<T, F>(scope: Scope, f: F) -> Result<Bytes, ApiError>
where
    F: FnOnce(&Scope) -> Result<T, ServiceError> + Send + 'static,
    T: Serialize,
{
    run_written(scope, f, |value, out| {
        serde_json::to_writer(out, value).map_err(ApiError::internal)
    })
    .await
}

/// [`run_json`] for results that `write` writes as JSON themselves (see `super::json::body_with`).
pub async fn run_written<T, F, W>(scope: Scope, f: F, write: W) -> Result<Bytes, ApiError>
where
    F: FnOnce(&Scope) -> Result<T, ServiceError> + Send + 'static,
    W: FnOnce(&T, &mut Vec<u8>) -> Result<(), ApiError> + Send + 'static,
{
    dispatch(scope, move |s| {
        let value = f(s)?;
        super::json::body_with(|out| write(&value, out))
    })
    .await
}
