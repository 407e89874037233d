//! Mapping between rows and queue types: times as milliseconds, the platform tenant as ''.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Row;
use rusqlite::types::Type;

use crate::queue::job::{Job, JobId, JobState};

/// The columns [`job`] reads, in its order.
pub(super) const JOB_COLUMNS: &str = "id, kind, tenant, payload, priority, state, run_at, \
     attempts, max_attempts, timeout_ms, lease_owner, lease_expires_at, idempotency_key, \
     concurrency_key, concurrency_limit, last_error, cancel_requested, created_at, \
     updated_at, finished_at";

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn from_ms(value: i64) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(value).ok_or(rusqlite::Error::IntegralValueOutOfRange(0, value))
}

pub(super) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The stored form of a tenant: '' for the platform.
pub(super) fn tenant_col(tenant: Option<&str>) -> &str {
    tenant.unwrap_or("")
}

fn conversion(
    idx: usize,
    ty: Type,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, ty, e.into())
}

pub(super) fn time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    let value: i64 = row.get(idx)?;
    DateTime::from_timestamp_millis(value)
        .ok_or(rusqlite::Error::IntegralValueOutOfRange(idx, value))
}

fn opt_time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<i64>>(idx)? {
        None => Ok(None),
        Some(value) => DateTime::from_timestamp_millis(value)
            .map(Some)
            .ok_or(rusqlite::Error::IntegralValueOutOfRange(idx, value)),
    }
}

fn u32_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<u32> {
    let value: i64 = row.get(idx)?;
    u32::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, value))
}

/// The stored form of a job id: its 16 bytes.
pub(super) fn key(id: JobId) -> [u8; 16] {
    *id.as_uuid().as_bytes()
}

pub(super) fn id_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<JobId> {
    let bytes: [u8; 16] = row.get(idx)?;
    Ok(JobId::from_uuid(uuid::Uuid::from_bytes(bytes)))
}

pub(super) fn state_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<JobState> {
    let text: String = row.get(idx)?;
    JobState::from_str(&text).map_err(|e| conversion(idx, Type::Text, e))
}

pub(super) fn tenant_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<String>> {
    let tenant: String = row.get(idx)?;
    Ok((!tenant.is_empty()).then_some(tenant))
}

/// A job from a row selected with [`JOB_COLUMNS`].
pub(super) fn job(row: &Row<'_>) -> rusqlite::Result<Job> {
    let timeout_ms: i64 = row.get(9)?;
    Ok(Job {
        id: id_at(row, 0)?,
        kind: row.get(1)?,
        tenant: tenant_at(row, 2)?,
        payload: row.get(3)?,
        priority: row.get(4)?,
        state: state_at(row, 5)?,
        run_at: time_at(row, 6)?,
        attempts: u32_at(row, 7)?,
        max_attempts: u32_at(row, 8)?,
        timeout: Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0)),
        lease_owner: row.get(10)?,
        lease_expires_at: opt_time_at(row, 11)?,
        idempotency_key: row.get(12)?,
        concurrency_key: row.get(13)?,
        concurrency_limit: u32_at(row, 14)?,
        last_error: row.get(15)?,
        cancel_requested: row.get(16)?,
        created_at: time_at(row, 17)?,
        updated_at: time_at(row, 18)?,
        finished_at: opt_time_at(row, 19)?,
    })
}
