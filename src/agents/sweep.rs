//! The recovery sweep: queues a run job for every task that should have one (pending with a
//! runnable assignee, or running when a crash took its job). Enqueueing is idempotent per
//! task attempt, so tasks whose job is alive are untouched. Runs at start and on a schedule.

use crate::domain::TenantId;
use crate::services::RunWaker;
use crate::store::TenantDatabases;

/// The job kind of the sweep.
pub const SWEEP: &str = "agents.sweep";

/// Most tasks looked at per tenant and pass (the next pass takes the rest).
const PER_TENANT: u32 = 5_000;

/// Sweeps `tenants`; stops between tenants when `stop` says so. Returns how many tasks were
/// handed to the queue (already queued ones included).
pub fn sweep(
    databases: &dyn TenantDatabases,
    tenants: &[TenantId],
    waker: &dyn RunWaker,
    stop: impl Fn() -> bool,
) -> usize {
    let mut handed = 0;
    for &tenant in tenants {
        if stop() {
            break;
        }
        let tasks = databases
            .open(tenant)
            .and_then(|store| store.runnable_tasks(PER_TENANT));
        match tasks {
            Ok(tasks) => {
                handed += tasks.len();
                waker.wake(tenant, &tasks);
            }
            Err(e) => tracing::warn!(%tenant, error = %e, "agent run sweep skipped a tenant"),
        }
    }
    handed
}
