//! Writes of the job life cycle other than the claim: enqueue, lease renewal, finish, cancel,
//! release, reap, retry and prune. Each runs inside the caller's transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};

use super::rows::{self, JOB_COLUMNS, duration_ms, id_at, key, ms, state_at, tenant_col};
use crate::queue::QueueError;
use crate::queue::job::{CancelOutcome, Enqueued, Job, JobId, JobState, NewJob};
use crate::queue::store::{ExpiredLease, Finish, FinishOutcome, Renewal};

/// Rows one prune transaction deletes at most.
pub(super) const PRUNE_CHUNK: usize = 5000;

pub(super) fn enqueue(
    tx: &Transaction<'_>,
    jobs: &[NewJob],
    now: DateTime<Utc>,
) -> Result<Vec<Enqueued>, QueueError> {
    // The same terms as the partial unique index, so the lookup uses it.
    let mut live = tx.prepare_cached(
        "SELECT id FROM jobs
         WHERE tenant = ?1 AND idempotency_key = ?2 AND state IN ('queued', 'running')",
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO jobs (id, kind, tenant, payload, priority, state, run_at, attempts,
             max_attempts, timeout_ms, idempotency_key, concurrency_key, concurrency_limit,
             created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, 0, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
    )?;
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        let tenant = tenant_col(job.tenant.as_deref());
        if let Some(key) = &job.idempotency_key
            && let Some(existing) = live
                .query_row(params![tenant, key], |row| id_at(row, 0))
                .optional()?
        {
            results.push(Enqueued::Existing(existing));
            continue;
        }
        insert.execute(params![
            key(job.id),
            job.kind,
            tenant,
            job.payload,
            job.priority,
            ms(job.run_at),
            job.max_attempts,
            duration_ms(job.timeout),
            job.idempotency_key,
            job.concurrency_key,
            job.concurrency_limit,
            ms(now),
        ])?;
        results.push(Enqueued::New(job.id));
    }
    Ok(results)
}

pub(super) fn renew(
    tx: &Transaction<'_>,
    owner: &str,
    ids: &[JobId],
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<Renewal, QueueError> {
    let mut renew = tx.prepare_cached(
        "UPDATE jobs SET lease_expires_at = ?3
         WHERE id = ?1 AND state = 'running' AND lease_owner = ?2
         RETURNING cancel_requested",
    )?;
    let expires = ms(now).saturating_add(duration_ms(lease));
    let mut renewal = Renewal::default();
    for id in ids {
        let cancel: Option<bool> = renew
            .query_row(params![key(*id), owner, expires], |row| row.get(0))
            .optional()?;
        match cancel {
            None => renewal.lost.push(*id),
            Some(true) => renewal.cancel_requested.push(*id),
            Some(false) => {}
        }
    }
    Ok(renewal)
}

pub(super) fn finish(
    tx: &Transaction<'_>,
    owner: &str,
    results: &[Finish],
    now: DateTime<Utc>,
) -> Result<Vec<Option<JobState>>, QueueError> {
    // SET expressions all see the row as it was, so `attempts` is the attempt that ended.
    // NOTE: no RETURNING on the hot path: SQLite collects RETURNING rows in a temporary
    // table per execution, which cost more than the update itself (measured: ~15 % of the
    // store's time at 100k jobs).
    let mut succeeded = tx.prepare_cached(
        "UPDATE jobs SET state = 'succeeded', lease_owner = NULL, lease_expires_at = NULL,
             finished_at = ?3, updated_at = ?3
         WHERE id = ?1 AND state = 'running' AND lease_owner = ?2",
    )?;
    let mut failed = tx.prepare_cached(
        "UPDATE jobs SET
             state = CASE WHEN cancel_requested THEN 'cancelled'
                          WHEN attempts >= max_attempts THEN 'dead'
                          ELSE 'queued' END,
             run_at = CASE WHEN cancel_requested OR attempts >= max_attempts THEN run_at
                           ELSE ?4 END,
             finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts THEN ?3 END,
             last_error = ?5, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?3
         WHERE id = ?1 AND state = 'running' AND lease_owner = ?2
         RETURNING state",
    )?;
    let mut permanent = tx.prepare_cached(
        "UPDATE jobs SET
             state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'failed' END,
             finished_at = ?3, last_error = ?4, lease_owner = NULL, lease_expires_at = NULL,
             updated_at = ?3
         WHERE id = ?1 AND state = 'running' AND lease_owner = ?2
         RETURNING state",
    )?;
    let now = ms(now);
    let mut states = Vec::with_capacity(results.len());
    for result in results {
        let id = key(result.id);
        let state = match &result.outcome {
            FinishOutcome::Succeeded => {
                (succeeded.execute(params![id, owner, now])? == 1).then_some(JobState::Succeeded)
            }
            FinishOutcome::Failed { error, retry_at } => failed
                .query_row(params![id, owner, now, ms(*retry_at), error], |row| {
                    state_at(row, 0)
                })
                .optional()?,
            FinishOutcome::FailedPermanently { error } => permanent
                .query_row(params![id, owner, now, error], |row| state_at(row, 0))
                .optional()?,
        };
        states.push(state);
    }
    Ok(states)
}

pub(super) fn cancel(
    tx: &Transaction<'_>,
    id: JobId,
    now: DateTime<Utc>,
) -> Result<CancelOutcome, QueueError> {
    let id = key(id);
    let now = ms(now);
    let cancelled = tx.execute(
        "UPDATE jobs SET state = 'cancelled', finished_at = ?2, updated_at = ?2
         WHERE id = ?1 AND state = 'queued'",
        params![id, now],
    )?;
    if cancelled == 1 {
        return Ok(CancelOutcome::Cancelled);
    }
    let requested = tx.execute(
        "UPDATE jobs SET cancel_requested = 1, updated_at = ?2
         WHERE id = ?1 AND state = 'running'",
        params![id, now],
    )?;
    if requested == 1 {
        return Ok(CancelOutcome::Requested);
    }
    Err(illegal(tx, id, "cancel")?)
}

/// The error for a change the job's state does not allow: a conflict naming the state, or
/// not found.
fn illegal(tx: &Transaction<'_>, id: [u8; 16], action: &str) -> Result<QueueError, QueueError> {
    let state = tx
        .query_row("SELECT state FROM jobs WHERE id = ?1", [id], |row| {
            state_at(row, 0)
        })
        .optional()?;
    Ok(match state {
        None => QueueError::NotFound,
        Some(state) => QueueError::Conflict(format!("cannot {action} a {state} job")),
    })
}

pub(super) fn release(
    tx: &Transaction<'_>,
    owner: &str,
    ids: &[JobId],
    now: DateTime<Utc>,
) -> Result<usize, QueueError> {
    // The attempt that was cut off is given back; `run_at` stays (it is already due), so the
    // job keeps its place in line. A job with a cancel request is cancelled instead.
    let mut release = tx.prepare_cached(
        "UPDATE jobs SET
             state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
             finished_at = CASE WHEN cancel_requested THEN ?3 END,
             run_at = MIN(run_at, ?3), attempts = MAX(attempts - 1, 0),
             lease_owner = NULL, lease_expires_at = NULL, updated_at = ?3
         WHERE id = ?1 AND state = 'running' AND lease_owner = ?2",
    )?;
    let now = ms(now);
    let mut released = 0;
    for id in ids {
        released += release.execute(params![key(*id), owner, now])?;
    }
    Ok(released)
}

pub(super) fn reap(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<ExpiredLease>, QueueError> {
    // The attempt counts (the job may be what killed its worker). `run_at` stays, so the job
    // runs again at once.
    let mut reap = tx.prepare_cached(
        "UPDATE jobs SET
             state = CASE WHEN cancel_requested THEN 'cancelled'
                          WHEN attempts >= max_attempts THEN 'dead'
                          ELSE 'queued' END,
             finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts THEN ?1 END,
             last_error = 'lease expired', lease_owner = NULL, lease_expires_at = NULL,
             updated_at = ?1
         WHERE state = 'running' AND lease_expires_at < ?1
         RETURNING id, kind, state",
    )?;
    let expired = reap
        .query_map([ms(now)], |row| {
            Ok(ExpiredLease {
                id: id_at(row, 0)?,
                kind: row.get(1)?,
                state: state_at(row, 2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(expired)
}

pub(super) fn retry(
    tx: &Transaction<'_>,
    id: JobId,
    now: DateTime<Utc>,
) -> Result<Job, QueueError> {
    let id = key(id);
    let retried = tx
        .query_row(
            &format!(
                "UPDATE jobs SET state = 'queued', attempts = 0, run_at = ?2,
                     cancel_requested = 0, finished_at = NULL, lease_owner = NULL,
                     lease_expires_at = NULL, updated_at = ?2
                 WHERE id = ?1 AND state IN ('dead', 'failed', 'cancelled')
                 RETURNING {JOB_COLUMNS}"
            ),
            params![id, ms(now)],
            rows::job,
        )
        .optional()
        .map_err(|e| match QueueError::from(e) {
            QueueError::Conflict(_) => {
                QueueError::Conflict("a live job with the same idempotency key exists".into())
            }
            other => other,
        })?;
    match retried {
        Some(job) => Ok(job),
        None => Err(illegal(tx, id, "retry")?),
    }
}

/// Deletes one chunk of expired finished jobs; returns how many.
pub(super) fn prune_chunk(
    tx: &Transaction<'_>,
    done_states: bool,
    before: DateTime<Utc>,
) -> Result<usize, QueueError> {
    let states = if done_states {
        "('succeeded', 'cancelled')"
    } else {
        "('dead', 'failed')"
    };
    let deleted = tx.execute(
        &format!(
            "DELETE FROM jobs WHERE id IN (
                 SELECT id FROM jobs INDEXED BY jobs_finished
                 WHERE finished_at < ?1 AND state IN {states}
                 LIMIT {PRUNE_CHUNK})"
        ),
        [ms(before)],
    )?;
    Ok(deleted)
}
