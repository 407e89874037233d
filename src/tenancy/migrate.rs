//! Migrating every tenant database: a bounded-parallel fan-out with progress.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::domain::{Tenant, TenantStatus};
use crate::store::{MigrationOutcome, StoreError, TenantDatabases};

/// The result of migrating many tenants.
#[derive(Debug, Default)]
pub struct FanOutSummary {
    pub migrated: usize,
    pub already_current: usize,
    pub failed: Vec<(String, StoreError)>,
    pub elapsed: Duration,
}

/// Tenants whose databases exist and must be migrated: every tenant that keeps data.
pub fn tenants_with_data(tenants: Vec<Tenant>) -> Vec<Tenant> {
    tenants
        .into_iter()
        .filter(|t| {
            matches!(
                t.status,
                TenantStatus::Active | TenantStatus::Suspended | TenantStatus::Deleted
            )
        })
        .collect()
}

/// Migrates each tenant's database with at most `jobs` at a time; `on_done` is called after
/// each one (progress). A failure does not stop the others; every failure is reported.
pub fn migrate_all(
    databases: &dyn TenantDatabases,
    tenants: &[Tenant],
    jobs: usize,
    on_done: &(dyn Fn() + Sync),
) -> FanOutSummary {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let migrated = AtomicUsize::new(0);
    let current = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(tenants.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(t) = tenants.get(i) else { break };
                    match databases.migrate(t.id) {
                        Ok(MigrationOutcome::Applied { .. }) => {
                            migrated.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(MigrationOutcome::AlreadyCurrent) => {
                            current.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failed
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((t.slug.to_string(), e)),
                    }
                    on_done();
                }
            });
        }
    });
    FanOutSummary {
        migrated: migrated.into_inner(),
        already_current: current.into_inner(),
        failed: failed.into_inner().unwrap_or_else(|p| p.into_inner()),
        elapsed: started.elapsed(),
    }
}
