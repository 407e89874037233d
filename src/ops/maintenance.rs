//! Built-in maintenance, run as scheduled platform jobs of the queue: hook event retention,
//! pruning finished jobs, and WAL checkpoints. Each is idempotent (running one twice, as
//! at-least-once execution may, only repeats harmless work).

use actix_web::web;

use crate::queue::{
    CronExpr, HandlerRegistry, JobContext, JobFailure, PruneBefore, QueueError, ScheduleSpec,
    handler_fn,
};
use crate::startup::AppState;

pub const HOOK_EVENT_RETENTION: &str = "maintenance.hook_event_retention";
pub const PRUNE_JOBS: &str = "maintenance.prune_jobs";
pub const WAL_CHECKPOINT: &str = "maintenance.wal_checkpoint";

/// Adds the maintenance handlers to `handlers`.
pub fn register(handlers: &mut HandlerRegistry, state: &web::Data<AppState>) {
    let s = state.clone();
    handlers.register(
        HOOK_EVENT_RETENTION,
        handler_fn(move |ctx| hook_event_retention(s.clone(), ctx)),
    );
    let s = state.clone();
    handlers.register(PRUNE_JOBS, handler_fn(move |_ctx| prune_jobs(s.clone())));
    let s = state.clone();
    handlers.register(
        WAL_CHECKPOINT,
        handler_fn(move |_ctx| wal_checkpoint(s.clone())),
    );
}

/// The schedules of the maintenance jobs, from the settings (upserted at every start).
pub fn schedules(state: &AppState) -> Result<Vec<ScheduleSpec>, QueueError> {
    let settings = &state.settings;
    Ok(vec![
        ScheduleSpec::new(
            HOOK_EVENT_RETENTION,
            CronExpr::parse(&settings.hook_events.retention_schedule)?,
            HOOK_EVENT_RETENTION,
        ),
        ScheduleSpec::new(
            PRUNE_JOBS,
            CronExpr::parse(&settings.queue.prune_schedule)?,
            PRUNE_JOBS,
        ),
        ScheduleSpec::new(
            WAL_CHECKPOINT,
            CronExpr::parse(&settings.queue.checkpoint_schedule)?,
            WAL_CHECKPOINT,
        ),
    ])
}

/// Applies `[hook_events]` retention to every active tenant; stops between tenants when the
/// job is cancelled (shutdown), and the next fire goes on.
///
/// NOTE: a pass opens each active tenant's database, which can push busier tenants out of the
/// pool cache for a moment; once an hour (the default) that costs less than keeping track of
/// which tenants received events.
async fn hook_event_retention(
    state: web::Data<AppState>,
    ctx: JobContext,
) -> Result<(), JobFailure> {
    use crate::domain::hook_event::RetentionPolicy;
    let settings = &state.settings.hook_events;
    let policy = RetentionPolicy {
        max_rows: settings.max_rows_per_tenant,
        max_age: chrono::Duration::days(i64::from(settings.max_age_days)),
    };
    let tenants = state.directory.active_ids();
    let cancel = ctx.cancel.clone();
    let deleted = crate::store::blocking(move || {
        Ok(crate::services::hook_events::enforce_retention_for(
            &*state.storage.tenants,
            &tenants,
            policy,
            crate::domain::now(),
            || cancel.is_cancelled(),
        ))
    })
    .await
    .map_err(|e| JobFailure::retry(format!("hook event retention: {e}")))?;
    if deleted > 0 {
        tracing::info!(deleted, "hook event retention deleted old events");
    }
    Ok(())
}

/// Deletes finished jobs past their keep time.
async fn prune_jobs(state: web::Data<AppState>) -> Result<(), JobFailure> {
    let settings = &state.settings.queue;
    let now = state.queue.clock().now();
    // Both are at most ten years (checked with the settings).
    let hours = |h: u64| chrono::Duration::hours(i64::try_from(h).unwrap_or(87_600));
    let before = PruneBefore {
        done: now - hours(settings.keep_succeeded_hours),
        dead: now - hours(settings.keep_dead_days.saturating_mul(24)),
    };
    let pruned = state
        .queue
        .prune(before)
        .await
        .map_err(|e| JobFailure::retry(format!("pruning jobs: {e}")))?;
    if pruned > 0 {
        tracing::info!(pruned, "finished jobs pruned");
    }
    Ok(())
}

/// Passive checkpoints of the registry, the queue and every open tenant database: keeps the
/// WAL files short under steady writes (SQLite's own auto-checkpoint can be starved by
/// readers that never pause).
async fn wal_checkpoint(state: web::Data<AppState>) -> Result<(), JobFailure> {
    state
        .queue
        .checkpoint()
        .await
        .map_err(|e| JobFailure::retry(format!("queue checkpoint: {e}")))?;
    let tenants = crate::store::blocking(move || {
        state.storage.registry.checkpoint()?;
        Ok(state.storage.tenants.checkpoint_open())
    })
    .await
    .map_err(|e| JobFailure::retry(format!("registry checkpoint: {e}")))?;
    tracing::debug!(tenants, "WAL checkpoints done");
    Ok(())
}
