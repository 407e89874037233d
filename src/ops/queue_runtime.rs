//! The job queue inside the server: opening `queue.db`, the per-plan tenant caps, the handlers
//! of every kind, the built-in schedules and the gauges read at scrape time.

use std::sync::Arc;

use actix_web::web;

use crate::agents::StoredProviders;
use crate::agents::dispatch::RUN_TASK;
use crate::agents::runner::Runtime;
use crate::agents::sweep::SWEEP;
use crate::config::PlanConcurrency;
use crate::domain::TenantId;
use crate::queue::{
    CronExpr, HandlerRegistry, JobSpec, Queue, ScheduleSpec, TenantLimits, WorkerPool, handler_fn,
};
use crate::startup::AppState;
use crate::tenancy::TenantDirectory;

/// Per-tenant running caps by plan, answered from the in-memory directory. Jobs name their
/// tenant by id; an id the directory does not know (a tenant deleted since) gets the smallest
/// cap, so its leftovers cannot crowd anyone out.
pub struct PlanLimits {
    directory: Arc<TenantDirectory>,
    caps: PlanConcurrency,
}

impl PlanLimits {
    pub fn new(directory: Arc<TenantDirectory>, caps: PlanConcurrency) -> Self {
        Self { directory, caps }
    }
}

impl TenantLimits for PlanLimits {
    fn max_running(&self, tenant: &str) -> u32 {
        TenantId::parse(tenant)
            .ok()
            .and_then(|id| self.directory.get_by_id(id))
            .map_or(self.caps.free, |t| self.caps.of(t.plan))
    }
}

/// The handlers of every job kind the server runs.
pub fn handlers(state: &web::Data<AppState>) -> HandlerRegistry {
    // With the `noop` kind (benchmarks) built in.
    let mut handlers = HandlerRegistry::new();
    super::maintenance::register(&mut handlers, state);
    let runtime = Arc::new(Runtime {
        tenants: state.storage.tenants.clone(),
        directory: state.directory.clone(),
        events: state.events.clone(),
        runs: state.runs.clone(),
        providers: Arc::new(StoredProviders(state.secrets.clone())),
        http: state.llm_http.clone(),
        config: state.settings.agents.clone(),
        metrics: state.metrics.runs.clone(),
        gates: Arc::default(),
    });
    handlers.register(RUN_TASK, handler_fn(move |ctx| runtime.clone().handle(ctx)));
    let s = state.clone();
    handlers.register(SWEEP, handler_fn(move |ctx| sweep_runs(s.clone(), ctx)));
    handlers
}

/// Queues a run for every task of an active tenant that should have one (see
/// [`crate::agents::sweep`]).
async fn sweep_runs(
    state: web::Data<AppState>,
    ctx: crate::queue::JobContext,
) -> Result<(), crate::queue::JobFailure> {
    let tenants = state.directory.active_ids();
    let cancel = ctx.cancel.clone();
    let handed = crate::store::blocking(move || {
        Ok(crate::agents::sweep::sweep(
            &*state.storage.tenants,
            &tenants,
            state.runs.as_ref(),
            || cancel.is_cancelled(),
        ))
    })
    .await
    .map_err(|e| crate::queue::JobFailure::retry(format!("agent run sweep: {e}")))?;
    tracing::debug!(handed, "agent run sweep done");
    Ok(())
}

/// Registers the built-in schedules, then starts the worker pool.
pub async fn start(state: &web::Data<AppState>) -> anyhow::Result<WorkerPool> {
    for spec in super::maintenance::schedules(state)? {
        state.queue.upsert_schedule(spec).await?;
    }
    state
        .queue
        .upsert_schedule(ScheduleSpec::new(
            SWEEP,
            CronExpr::parse(&state.settings.agents.sweep_schedule)?,
            SWEEP,
        ))
        .await?;
    // Work a crash left behind runs now, not at the first scheduled sweep.
    state
        .queue
        .enqueue(JobSpec::new(SWEEP).idempotency_key("agents.sweep.start"))
        .await?;
    let pool = state
        .queue
        .workers(handlers(state))
        .tenant_limits(Arc::new(PlanLimits::new(
            state.directory.clone(),
            state.settings.queue.tenant_concurrency.clone(),
        )))
        .observer(state.metrics.queue.clone())
        .start();
    Ok(pool)
}

/// Opens `queue.db` in the data dir (blocking).
pub fn open(settings: &crate::config::Settings) -> anyhow::Result<Queue> {
    let queue_settings = settings
        .queue
        .settings()
        .map_err(|e| anyhow::anyhow!("invalid [queue] settings: {e}"))?;
    let path = settings.data_dir.join("queue.db");
    Queue::open(&path, queue_settings)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))
}
