//! Reads for the API and the metrics: one job, filtered pages, counts.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use super::rows::{self, JOB_COLUMNS, key, state_at, tenant_col};
use crate::queue::QueueError;
use crate::queue::job::{Job, JobId};
use crate::queue::list::{JobCount, JobFilter, JobPage, MAX_PAGE_SIZE, PageRequest, TenantFilter};

pub(super) fn get(conn: &Connection, id: JobId) -> Result<Job, QueueError> {
    conn.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?
        .query_row([key(id)], rows::job)
        .optional()?
        .ok_or(QueueError::NotFound)
}

pub(super) fn list(
    conn: &Connection,
    filter: &JobFilter,
    page: &PageRequest,
) -> Result<JobPage, QueueError> {
    if !(1..=MAX_PAGE_SIZE).contains(&page.limit) {
        return Err(QueueError::Invalid(format!(
            "page size must be between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    // Only the filters given become terms, so each combination gets its own plan: by tenant
    // through `jobs_by_tenant`, by state (and kind) through `jobs_by_state`, else the key.
    let mut terms = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if let Some(tenant) = &filter.tenant {
        let tenant = match tenant {
            TenantFilter::Platform => None,
            TenantFilter::Tenant(t) => Some(t.as_str()),
        };
        values.push(Value::Text(tenant_col(tenant).to_owned()));
        terms.push(format!("tenant = ?{}", values.len()));
    }
    if let Some(state) = filter.state {
        values.push(Value::Text(state.as_str().to_owned()));
        terms.push(format!("state = ?{}", values.len()));
    }
    if let Some(kind) = &filter.kind {
        values.push(Value::Text(kind.clone()));
        terms.push(format!("kind = ?{}", values.len()));
    }
    if let Some(after) = page.after {
        values.push(Value::Blob(key(after).to_vec()));
        terms.push(format!("id < ?{}", values.len()));
    }
    let where_clause = if terms.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", terms.join(" AND "))
    };
    // One extra row tells whether another page follows.
    values.push(Value::Integer(
        i64::try_from(page.limit + 1).unwrap_or(i64::MAX),
    ));
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs {where_clause} ORDER BY id DESC LIMIT ?{}",
        values.len()
    );
    let mut jobs: Vec<Job> = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(values), rows::job)?
        .collect::<Result<_, _>>()?;
    let next_cursor = if jobs.len() > page.limit {
        jobs.truncate(page.limit);
        jobs.last().map(|job| job.id)
    } else {
        None
    };
    Ok(JobPage { jobs, next_cursor })
}

pub(super) fn counts(conn: &Connection) -> Result<Vec<JobCount>, QueueError> {
    let counts = conn
        .prepare_cached("SELECT state, kind, COUNT(*) FROM jobs GROUP BY state, kind")?
        .query_map([], |row| {
            Ok(JobCount {
                state: state_at(row, 0)?,
                kind: row.get(1)?,
                count: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(counts)
}
