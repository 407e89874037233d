//! The claim: which due jobs a worker takes, fairly across tenants, in one transaction.
//!
//! 1. Count running jobs per tenant and per (tenant, concurrency key): the running index has
//!    one entry per running job, so this is as cheap as the pool is small.
//! 2. Find the tenants with queued jobs by skipping through the claim index (one seek per
//!    tenant, however many jobs each has) and drop those at their running cap.
//! 3. For each tenant, walk its priority levels highest first (one seek per level) and, in
//!    each, its due jobs oldest first (a range of the covering index), passing the jobs whose
//!    concurrency key is at its limit (one seek past a key's jobs due at the same time),
//!    until it has its share.
//! 4. Round-robin: every tenant's best job before any tenant's second, each round ordered by
//!    priority then due time. A tenant with 100,000 due jobs thus delays another tenant's
//!    single job by no claim at all: both are in the first round.
//!
//! Nothing here scans the jobs of one tenant beyond what it takes (plus a bounded number
//! skipped for their concurrency key), so a deep queue costs a claim nothing.

use std::collections::{HashMap, VecDeque};

use rusqlite::{OptionalExtension, Transaction, params};

use super::rows::{self, JOB_COLUMNS, duration_ms, from_ms, ms};
use crate::queue::QueueError;
use crate::queue::job::{Job, JobState};
use crate::queue::store::ClaimRequest;

/// Seeks a tenant's scan may spend passing jobs whose concurrency key is at its limit, beyond
/// four per job wanted. One seek passes every job of a key due at the same time (a batch
/// enqueued at once: the tasks of an agent whose provider was just set), so a deep queue of a
/// few busy keys costs a claim a few seeks. NOTE: bounds the cost of a tenant whose due jobs
/// alternate between busy keys; jobs behind more of those than this wait until they drain.
const SKIP_BUDGET: usize = 256;

// The claim's queries. `INDEXED BY` makes a schema change that breaks their index an error
// instead of a silent full scan.
pub(super) const RUNNING_COUNTS: &str =
    "SELECT tenant, concurrency_key, COUNT(*) FROM jobs INDEXED BY jobs_running
     WHERE state = 'running' GROUP BY tenant, concurrency_key";
pub(super) const PLATFORM_QUEUED: &str = "SELECT EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_queued
     WHERE state = 'queued' AND tenant = '')";
pub(super) const NEXT_TENANT: &str = "SELECT tenant FROM jobs INDEXED BY jobs_queued
     WHERE state = 'queued' AND tenant > ?1 ORDER BY tenant LIMIT 1";
pub(super) const NEXT_PRIORITY: &str = "SELECT priority FROM jobs INDEXED BY jobs_queued
     WHERE state = 'queued' AND tenant = ?1 AND priority < ?2
     ORDER BY priority DESC LIMIT 1";
/// A level's due jobs from a point on: `(?4, ?5)` is `(i64::MIN, '')` for the whole level, or
/// the due time and key of a busy key's jobs to pass (the index keeps them together, so one
/// seek passes all of them).
pub(super) const DUE_IN_LEVEL: &str =
    "SELECT id, run_at, concurrency_key, concurrency_limit FROM jobs INDEXED BY jobs_queued
     WHERE state = 'queued' AND tenant = ?1 AND priority = ?2 AND run_at <= ?3
       AND (run_at, concurrency_key) > (?4, ?5)
     ORDER BY run_at, concurrency_key";

pub(super) fn claim(
    tx: &Transaction<'_>,
    request: &ClaimRequest<'_>,
) -> Result<Vec<Job>, QueueError> {
    let now = ms(request.now);
    let running = RunningCounts::load(tx)?;
    let open: Vec<(String, usize)> = tenants_with_queued_jobs(tx)?
        .into_iter()
        .filter_map(|tenant| {
            let cap = if tenant.is_empty() {
                usize::MAX
            } else {
                usize::try_from(request.tenant_limits.max_running(&tenant)).unwrap_or(usize::MAX)
            };
            let left = cap.saturating_sub(running.of_tenant(&tenant));
            (left > 0).then_some((tenant, left))
        })
        .collect();
    if open.is_empty() {
        return Ok(Vec::new());
    }
    // With many tenants, each fetches about twice its even share: enough for the rounds to
    // fill the batch when some tenants have few due jobs, without reading `limit` rows from
    // every tenant. A short batch is topped up by the worker's next claim.
    let share = request.limit.div_ceil(open.len()).saturating_mul(2).max(4);
    let mut queues = Vec::with_capacity(open.len());
    for (tenant, left) in &open {
        let want = (*left).min(request.limit).min(share);
        let due = due_jobs_of_tenant(tx, tenant, now, want, &running)?;
        if !due.is_empty() {
            queues.push(due);
        }
    }
    let chosen = round_robin(queues, request.limit);

    // Read, then update, rather than `UPDATE … RETURNING`: see `jobs::finish`.
    let mut read = tx.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?;
    let mut start = tx.prepare_cached(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?2,
             lease_expires_at = ?3, updated_at = ?4
         WHERE id = ?1",
    )?;
    let expires = now.saturating_add(duration_ms(request.lease));
    let (expires_at, started_at) = (from_ms(expires)?, from_ms(now)?);
    let mut jobs = Vec::with_capacity(chosen.len());
    for candidate in chosen {
        let mut job = read.query_row([candidate.id], rows::job)?;
        start.execute(params![candidate.id, request.owner, expires, now])?;
        job.state = JobState::Running;
        job.attempts += 1;
        job.lease_owner = Some(request.owner.to_owned());
        job.lease_expires_at = Some(expires_at);
        job.updated_at = started_at;
        jobs.push(job);
    }
    Ok(jobs)
}

#[derive(Debug)]
struct Candidate {
    id: [u8; 16],
    priority: i32,
    run_at: i64,
}

#[derive(Default)]
struct RunningCounts {
    tenants: HashMap<String, usize>,
    keys: HashMap<String, HashMap<String, u32>>,
}

impl RunningCounts {
    fn load(tx: &Transaction<'_>) -> Result<Self, QueueError> {
        let mut stmt = tx.prepare_cached(RUNNING_COUNTS)?;
        let mut rows = stmt.query([])?;
        let mut counts = Self::default();
        while let Some(row) = rows.next()? {
            let tenant: String = row.get(0)?;
            let key: Option<String> = row.get(1)?;
            let n: i64 = row.get(2)?;
            *counts.tenants.entry(tenant.clone()).or_default() += usize::try_from(n).unwrap_or(0);
            if let Some(key) = key {
                counts
                    .keys
                    .entry(tenant)
                    .or_default()
                    .insert(key, u32::try_from(n).unwrap_or(u32::MAX));
            }
        }
        Ok(counts)
    }

    fn of_tenant(&self, tenant: &str) -> usize {
        self.tenants.get(tenant).copied().unwrap_or(0)
    }

    fn of_key(&self, tenant: &str, key: &str) -> u32 {
        self.keys
            .get(tenant)
            .and_then(|keys| keys.get(key))
            .copied()
            .unwrap_or(0)
    }
}

/// Tenants with at least one queued job ('' is the platform), by skipping from one tenant to
/// the next in the claim index.
fn tenants_with_queued_jobs(tx: &Transaction<'_>) -> Result<Vec<String>, QueueError> {
    let mut tenants = Vec::new();
    let platform: bool = tx
        .prepare_cached(PLATFORM_QUEUED)?
        .query_row([], |row| row.get(0))?;
    if platform {
        tenants.push(String::new());
    }
    let mut next = tx.prepare_cached(NEXT_TENANT)?;
    let mut after = String::new();
    while let Some(tenant) = next
        .query_row([&after], |row| row.get::<_, String>(0))
        .optional()?
    {
        tenants.push(tenant.clone());
        after = tenant;
    }
    Ok(tenants)
}

/// Up to `want` due jobs of one tenant, best first, that its concurrency keys allow.
fn due_jobs_of_tenant(
    tx: &Transaction<'_>,
    tenant: &str,
    now: i64,
    want: usize,
    running: &RunningCounts,
) -> Result<VecDeque<Candidate>, QueueError> {
    let mut next_level = tx.prepare_cached(NEXT_PRIORITY)?;
    let mut due_in_level = tx.prepare_cached(DUE_IN_LEVEL)?;
    let mut picked = VecDeque::with_capacity(want);
    let mut picked_per_key: HashMap<String, u32> = HashMap::new();
    let mut skip_budget = SKIP_BUDGET.saturating_add(want.saturating_mul(4));
    // Walking levels down from above the highest possible priority.
    let mut below = i64::from(i32::MAX) + 1;
    'levels: while picked.len() < want {
        let Some(priority) = next_level
            .query_row(params![tenant, below], |row| row.get::<_, i32>(0))
            .optional()?
        else {
            break;
        };
        below = i64::from(priority);
        // Where the scan of this level goes on from: its start, then past a busy key's jobs.
        let mut after: (i64, String) = (i64::MIN, String::new());
        'seeks: loop {
            let mut rows = due_in_level.query(params![tenant, priority, now, after.0, after.1])?;
            while let Some(row) = rows.next()? {
                let run_at: i64 = row.get(1)?;
                if let Some(key) = row.get::<_, Option<String>>(2)? {
                    let limit: u32 = row.get(3)?;
                    let taken = picked_per_key.get(&key).copied().unwrap_or(0);
                    if running.of_key(tenant, &key).saturating_add(taken) >= limit {
                        skip_budget = skip_budget.saturating_sub(1);
                        if skip_budget == 0 {
                            break 'levels;
                        }
                        after = (run_at, key);
                        continue 'seeks;
                    }
                    *picked_per_key.entry(key).or_default() += 1;
                }
                picked.push_back(Candidate {
                    id: row.get(0)?,
                    priority,
                    run_at,
                });
                if picked.len() >= want {
                    break 'levels;
                }
            }
            break;
        }
    }
    Ok(picked)
}

/// Every tenant's next job per round, each round best first, until `limit`.
fn round_robin(mut queues: Vec<VecDeque<Candidate>>, limit: usize) -> Vec<Candidate> {
    let mut chosen = Vec::with_capacity(limit);
    while chosen.len() < limit {
        let mut round: Vec<Candidate> = queues.iter_mut().filter_map(VecDeque::pop_front).collect();
        if round.is_empty() {
            break;
        }
        round.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.run_at.cmp(&b.run_at)));
        round.truncate(limit - chosen.len());
        chosen.extend(round);
    }
    chosen
}
