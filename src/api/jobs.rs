//! `jobs` routes: a tenant's jobs (`GET /api/jobs`), and for platform admins every job with
//! retry and cancel (`/api/admin/jobs`). Handlers only: the queue holds the rules.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::ApiError;
use super::audit::record_platform;
use super::extract::Deferred;
use super::json;
use super::openapi::{AdminErrors, ErrorBody, TenantErrors};
use super::principal::{PlatformAdmin, TenantMember};
use super::routes::{Access, Endpoint, endpoint};
use crate::audit::Target;
use crate::auth::policy::TenantAction;
use crate::domain::{TenantId, TenantSlug};
use crate::queue::{
    CancelOutcome, Job, JobFilter, JobId, JobPage, JobState, PageRequest, QueueError, TenantFilter,
};
use crate::startup::AppState;
use crate::tenancy::TenantDirectory;

/// This module's routes (merged into the route table).
pub fn endpoints() -> Vec<Endpoint> {
    use actix_web::http::Method as M;
    vec![
        endpoint(M::GET, "/api/jobs", Access::Tenant, |r| r.to(list)),
        endpoint(M::GET, "/api/admin/jobs", Access::PlatformAdmin, |r| {
            r.to(admin_list)
        }),
        endpoint(
            M::POST,
            "/api/admin/jobs/{id}/retry",
            Access::PlatformAdmin,
            |r| r.to(admin_retry),
        ),
        endpoint(
            M::POST,
            "/api/admin/jobs/{id}/cancel",
            Access::PlatformAdmin,
            |r| r.to(admin_cancel),
        ),
    ]
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(list, admin_list, admin_retry, admin_cancel),
    components(schemas(JobView, JobViewPage, Cancelled))
)]
pub struct Doc;

/// A job as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct JobView {
    id: String,
    /// What runs it, e.g. `run_task`, `maintenance.prune_jobs`.
    kind: String,
    /// The tenant's slug; `null` for platform jobs (maintenance).
    tenant: Option<String>,
    /// The job's parameters.
    payload: Value,
    /// Higher runs first.
    priority: i32,
    /// `queued`, `running`, `succeeded`, `failed`, `dead` or `cancelled`.
    state: String,
    /// Not started before this time.
    run_at: String,
    /// Attempts started so far (the running one included).
    attempts: u32,
    max_attempts: u32,
    timeout_ms: u64,
    /// The error of the last failed attempt.
    last_error: Option<String>,
    /// A cancel was asked for while it ran.
    cancel_requested: bool,
    created_at: String,
    updated_at: String,
    finished_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct JobViewPage {
    items: Vec<JobView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Cancelled {
    /// `cancelled` (it was queued: done) or `requested` (it runs: its handler is told to stop,
    /// and the job ends `cancelled` unless it finishes first).
    outcome: &'static str,
    job: JobView,
}

/// `GET /api/jobs` query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs in this state: `queued`, `running`, `succeeded`, `failed`, `dead`, `cancelled`.
    pub state: Option<String>,
    /// Only jobs of this kind.
    pub kind: Option<String>,
    /// Jobs per page, 1 – 100 (default 50).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /api/admin/jobs` query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminListQuery {
    /// Only this tenant's jobs (its slug), or `platform` for jobs of no tenant.
    pub tenant: Option<String>,
    pub state: Option<String>,
    pub kind: Option<String>,
    /// Jobs per page, 1 – 100 (default 50).
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::NotFound => ApiError::not_found("no such job"),
            QueueError::Conflict(message) => ApiError::conflict(message),
            QueueError::Invalid(message) => ApiError::validation("job", message),
            QueueError::Storage(e) => e.into(),
        }
    }
}

/// The filter and page of a list request, checked.
fn filter_of(
    tenant: Option<TenantFilter>,
    state: Option<&str>,
    kind: Option<String>,
    limit: Option<usize>,
    cursor: Option<&str>,
) -> Result<(JobFilter, PageRequest), ApiError> {
    let state = state
        .map(|s| s.parse::<JobState>())
        .transpose()
        .map_err(|_| {
            ApiError::validation(
                "state",
                "one of queued, running, succeeded, failed, dead, cancelled",
            )
        })?;
    let limit = limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation("limit", "must be between 1 and 100"));
    }
    let after = cursor
        .map(|c| c.parse::<JobId>())
        .transpose()
        .map_err(|_| ApiError::validation("cursor", "not a cursor of this list"))?;
    Ok((
        JobFilter {
            tenant,
            state,
            kind,
        },
        PageRequest { after, limit },
    ))
}

/// The slug of the tenant a job names by id (the id itself when the tenant is gone).
fn slug_of(directory: &TenantDirectory, id: String) -> String {
    TenantId::parse(&id)
        .ok()
        .and_then(|t| directory.get_by_id(t))
        .map_or(id, |t| t.slug.as_str().to_owned())
}

fn view(job: Job, directory: &TenantDirectory) -> JobView {
    let time = crate::domain::time::format_rfc3339;
    JobView {
        payload: serde_json::from_str(&job.payload).unwrap_or(Value::String(job.payload)),
        tenant: job.tenant.map(|id| slug_of(directory, id)),
        id: job.id.to_string(),
        kind: job.kind,
        priority: job.priority,
        state: job.state.as_str().to_owned(),
        run_at: time(&job.run_at),
        attempts: job.attempts,
        max_attempts: job.max_attempts,
        timeout_ms: u64::try_from(job.timeout.as_millis()).unwrap_or(u64::MAX),
        last_error: job.last_error,
        cancel_requested: job.cancel_requested,
        created_at: time(&job.created_at),
        updated_at: time(&job.updated_at),
        finished_at: job.finished_at.as_ref().map(time),
    }
}

fn page_view(page: JobPage, directory: &TenantDirectory) -> JobViewPage {
    JobViewPage {
        items: page.jobs.into_iter().map(|j| view(j, directory)).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }
}

/// The tenant's jobs, newest first.
#[utoipa::path(get, path = "/api/jobs", tag = "jobs", params(ListQuery),
    responses(
        TenantErrors,
        (status = 200, description = "A page of the tenant's jobs, newest first", body = JobViewPage),
        (status = 400, description = "A query parameter is invalid (`details.fields` names it)", body = ErrorBody),
    ))]
pub async fn list(
    member: TenantMember,
    state: web::Data<AppState>,
    query: Deferred<web::Query<ListQuery>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let q = query.get()?.into_inner();
    let tenant = member.ctx.tenant.clone();
    let (filter, page) = filter_of(
        Some(TenantFilter::Tenant(tenant.id.to_string())),
        q.state.as_deref(),
        q.kind,
        q.limit,
        q.cursor.as_deref(),
    )?;
    let page = state.queue.list(filter, page).await?;
    json::ok(&page_view(page, &state.directory))
}

/// Every job (or one tenant's, or the platform's), newest first.
#[utoipa::path(get, path = "/api/admin/jobs", tag = "platform admin", params(AdminListQuery),
    responses(
        (status = 200, description = "A page of jobs, newest first", body = JobViewPage),
        AdminErrors,
    ))]
pub async fn admin_list(
    _admin: PlatformAdmin,
    state: web::Data<AppState>,
    query: Deferred<web::Query<AdminListQuery>>,
) -> Result<HttpResponse, ApiError> {
    let q = query.get()?.into_inner();
    let tenant = match q.tenant.as_deref() {
        None => None,
        Some("platform") => Some(TenantFilter::Platform),
        Some(slug) => {
            let slug = TenantSlug::parse(slug)
                .map_err(|e| ApiError::validation("tenant", e.to_string()))?;
            let id = match state.directory.get(slug.as_str()) {
                Some(t) => t.id.to_string(),
                None => return Err(ApiError::validation("tenant", "no tenant has this slug")),
            };
            Some(TenantFilter::Tenant(id))
        }
    };
    let (filter, page) = filter_of(
        tenant,
        q.state.as_deref(),
        q.kind,
        q.limit,
        q.cursor.as_deref(),
    )?;
    let page = state.queue.list(filter, page).await?;
    json::ok(&page_view(page, &state.directory))
}

fn job_id(raw: &str) -> Result<JobId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("no such job"))
}

/// Queues a `dead`, `failed` or `cancelled` job again, its attempts reset.
#[utoipa::path(post, path = "/api/admin/jobs/{id}/retry", tag = "platform admin",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The job, queued again", body = JobView),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job is queued, running or succeeded", body = ErrorBody),
        AdminErrors,
    ))]
pub async fn admin_retry(
    admin: PlatformAdmin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = job_id(&id)?;
    let job = state.queue.retry(id).await?;
    let entry = admin.audit("job.retried", Target::new("job", job.id));
    record_platform(&state, entry.with_details(json!({ "kind": job.kind }))).await?;
    json::ok(&view(job, &state.directory))
}

/// Cancels a queued job at once, or asks a running one to stop.
#[utoipa::path(post, path = "/api/admin/jobs/{id}/cancel", tag = "platform admin",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Cancelled, or cancellation requested", body = Cancelled),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job already finished", body = ErrorBody),
        AdminErrors,
    ))]
pub async fn admin_cancel(
    admin: PlatformAdmin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = job_id(&id)?;
    let outcome = state.queue.cancel(id).await?;
    let job = state.queue.get(id).await?;
    let outcome = match outcome {
        CancelOutcome::Cancelled => "cancelled",
        CancelOutcome::Requested => "requested",
    };
    let entry = admin.audit("job.cancelled", Target::new("job", job.id));
    record_platform(
        &state,
        entry.with_details(json!({ "kind": job.kind, "outcome": outcome })),
    )
    .await?;
    json::ok(&Cancelled {
        outcome,
        job: view(job, &state.directory),
    })
}
