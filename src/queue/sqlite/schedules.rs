//! The schedules table.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, Transaction, params};

use super::rows::{ms, tenant_at, tenant_col, time_at};
use crate::queue::QueueError;
use crate::queue::schedule::{CronExpr, Schedule, ScheduleSpec};

pub(super) fn upsert(
    tx: &Transaction<'_>,
    spec: &ScheduleSpec,
    next_fire_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), QueueError> {
    // Registering the same schedule at every start must not move its next fire (that would
    // skip or repeat one); a changed expression starts over from `next_fire_at`.
    tx.prepare_cached(
        "INSERT INTO schedules (name, cron, kind, tenant, payload, priority, catch_up,
             next_fire_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
         ON CONFLICT (name) DO UPDATE SET
             next_fire_at = CASE WHEN schedules.cron = excluded.cron
                                 THEN schedules.next_fire_at ELSE excluded.next_fire_at END,
             cron = excluded.cron, kind = excluded.kind, tenant = excluded.tenant,
             payload = excluded.payload, priority = excluded.priority,
             catch_up = excluded.catch_up, updated_at = excluded.updated_at",
    )?
    .execute(params![
        spec.name,
        spec.cron.as_str(),
        spec.kind,
        tenant_col(spec.tenant.as_deref()),
        spec.payload,
        spec.priority,
        spec.catch_up,
        ms(next_fire_at),
        ms(now),
    ])?;
    Ok(())
}

pub(super) fn delete(tx: &Transaction<'_>, name: &str) -> Result<bool, QueueError> {
    Ok(tx.execute("DELETE FROM schedules WHERE name = ?1", [name])? == 1)
}

/// Every schedule, or those due at `due_at`, by next fire. A stored expression this build
/// cannot parse is logged and left out.
pub(super) fn list(
    conn: &Connection,
    due_at: Option<DateTime<Utc>>,
) -> Result<Vec<Schedule>, QueueError> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, cron, kind, tenant, payload, priority, catch_up, next_fire_at,
             created_at, updated_at
         FROM schedules WHERE next_fire_at <= ?1 ORDER BY next_fire_at, name",
    )?;
    let until = due_at.map_or(i64::MAX, ms);
    let rows = stmt.query_map([until], schedule)?;
    let mut schedules = Vec::new();
    for row in rows {
        match row? {
            Ok(schedule) => schedules.push(schedule),
            Err((name, e)) => {
                tracing::warn!(schedule = %name, error = %e, "stored schedule is unusable; skipped");
            }
        }
    }
    Ok(schedules)
}

type Parsed = Result<Schedule, (String, QueueError)>;

fn schedule(row: &Row<'_>) -> rusqlite::Result<Parsed> {
    let name: String = row.get(0)?;
    let cron = match CronExpr::parse(&row.get::<_, String>(1)?) {
        Ok(cron) => cron,
        Err(e) => return Ok(Err((name, e))),
    };
    Ok(Ok(Schedule {
        spec: ScheduleSpec {
            name,
            cron,
            kind: row.get(2)?,
            tenant: tenant_at(row, 3)?,
            payload: row.get(4)?,
            priority: row.get(5)?,
            catch_up: row.get(6)?,
        },
        next_fire_at: time_at(row, 7)?,
        created_at: time_at(row, 8)?,
        updated_at: time_at(row, 9)?,
    }))
}

/// Moves a schedule's next fire, compare-and-set on the one the caller saw.
pub(super) fn advance(
    tx: &Transaction<'_>,
    name: &str,
    expected_next: DateTime<Utc>,
    next_fire_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, QueueError> {
    let moved = tx.execute(
        "UPDATE schedules SET next_fire_at = ?3, updated_at = ?4
         WHERE name = ?1 AND next_fire_at = ?2",
        params![name, ms(expected_next), ms(next_fire_at), ms(now)],
    )?;
    Ok(moved == 1)
}
