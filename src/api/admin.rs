//! The platform admin API: `/api/admin/tenants`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::ApiError;
use super::audit::record_platform;
use super::extract::Deferred;
use super::json;
use super::openapi::AdminErrors;
use super::principal::PlatformAdmin;
use crate::audit::Target;
use crate::domain::{Plan, Tenant, TenantSlug};
use crate::startup::AppState;
use crate::tenancy::{NewTenant, TenancyError};

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(create, list, get, suspend, resume, delete))]
pub struct Doc;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// `^[a-z][a-z0-9-]{1,62}$`, not a reserved name.
    slug: String,
    name: Option<String>,
    /// `free` (default), `team` or `enterprise`.
    plan: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 – 100, default 50.
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Remove the data for good (default: soft delete, restorable).
    #[serde(default)]
    purge: bool,
}

#[derive(Serialize, ToSchema)]
pub struct TenantPage<'a> {
    items: Vec<&'a Tenant>,
    next_cursor: Option<String>,
}

/// Runs a lifecycle operation off the async workers, then makes the server see its effect.
async fn lifecycle<T: Send + 'static>(
    state: &web::Data<AppState>,
    op: impl FnOnce(&AppState) -> Result<T, TenancyError> + Send + 'static,
) -> Result<T, ApiError> {
    let s = state.clone();
    web::block(move || {
        let out = op(&s)?;
        s.sync_directory_now()?;
        Ok::<_, TenancyError>(out)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::from)
}

#[utoipa::path(post, path = "/api/admin/tenants", tag = "platform admin",
    request_body = CreateTenant,
    responses(
        (status = 201, description = "The new tenant", body = Tenant),
        (status = 409, description = "The slug is taken", body = super::openapi::ErrorBody),
        AdminErrors,
    ))]
pub async fn create(
    admin: PlatformAdmin,
    state: web::Data<AppState>,
    body: Deferred<web::Json<CreateTenant>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.get()?.into_inner();
    let slug =
        TenantSlug::parse(&body.slug).map_err(|e| ApiError::validation("slug", e.to_string()))?;
    let plan = match body.plan.as_deref() {
        Some(p) => p
            .parse::<Plan>()
            .map_err(|e| ApiError::validation("plan", e))?,
        None => Plan::Free,
    };
    let name = body.name;
    let tenant = lifecycle(&state, move |s| {
        s.lifecycle.create(NewTenant { slug, name, plan })
    })
    .await?;
    let entry = admin.audit("tenant.created", Target::new("tenant", tenant.id));
    let details = json!({ "slug": tenant.slug, "plan": tenant.plan });
    record_platform(&state, entry.with_details(details)).await?;
    json::created(&tenant)
}

#[utoipa::path(get, path = "/api/admin/tenants", tag = "platform admin", params(ListQuery),
    responses((status = 200, description = "Tenants in creation order", body = TenantPage), AdminErrors))]
pub async fn list(
    _admin: PlatformAdmin,
    state: web::Data<AppState>,
    query: Deferred<web::Query<ListQuery>>,
) -> Result<HttpResponse, ApiError> {
    let query = query.get()?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation("limit", "must be between 1 and 100"));
    }
    let cursor = query.cursor.clone();
    let tenants: Vec<Tenant> = lifecycle(&state, |s| s.lifecycle.list()).await?;
    // Tenants are in creation order and ids are time-ordered UUIDv7: the cursor is the last id.
    let start = match &cursor {
        Some(c) => tenants
            .iter()
            .position(|t| t.id.to_string() == *c)
            .map(|i| i + 1)
            .ok_or_else(|| ApiError::validation("cursor", "unknown cursor"))?,
        None => 0,
    };
    let page: Vec<&Tenant> = tenants.iter().skip(start).take(limit).collect();
    let next = (start + page.len() < tenants.len())
        .then(|| page.last().map(|t| t.id.to_string()))
        .flatten();
    json::ok(&TenantPage {
        items: page,
        next_cursor: next,
    })
}

#[utoipa::path(get, path = "/api/admin/tenants/{slug}", tag = "platform admin",
    params(("slug" = String, Path)),
    responses((status = 200, description = "The tenant", body = Tenant), AdminErrors))]
pub async fn get(
    _admin: PlatformAdmin,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = slug.into_inner();
    let tenant = lifecycle(&state, move |s| s.lifecycle.get(&slug)).await?;
    json::ok(&tenant)
}

#[utoipa::path(post, path = "/api/admin/tenants/{slug}/suspend", tag = "platform admin",
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "The suspended tenant", body = Tenant),
        (status = 409, description = "The tenant is not active", body = super::openapi::ErrorBody),
        AdminErrors,
    ))]
pub async fn suspend(
    admin: PlatformAdmin,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = slug.into_inner();
    let tenant = lifecycle(&state, move |s| s.lifecycle.suspend(&slug)).await?;
    let entry = admin.audit("tenant.suspended", Target::new("tenant", tenant.id));
    record_platform(&state, entry.with_details(json!({ "slug": tenant.slug }))).await?;
    json::ok(&tenant)
}

#[utoipa::path(post, path = "/api/admin/tenants/{slug}/resume", tag = "platform admin",
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "The active tenant", body = Tenant),
        (status = 409, description = "The tenant is not suspended", body = super::openapi::ErrorBody),
        AdminErrors,
    ))]
pub async fn resume(
    admin: PlatformAdmin,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = slug.into_inner();
    let tenant = lifecycle(&state, move |s| s.lifecycle.resume(&slug)).await?;
    let entry = admin.audit("tenant.resumed", Target::new("tenant", tenant.id));
    record_platform(&state, entry.with_details(json!({ "slug": tenant.slug }))).await?;
    json::ok(&tenant)
}

/// Soft delete; `?purge=true` also removes the data for good (deleting first if needed).
#[utoipa::path(delete, path = "/api/admin/tenants/{slug}", tag = "platform admin",
    params(("slug" = String, Path), DeleteQuery),
    responses(
        (status = 204, description = "Deleted (or purged)"),
        (status = 409, description = "Already deleted (without `purge`)", body = super::openapi::ErrorBody),
        AdminErrors,
    ))]
pub async fn delete(
    admin: PlatformAdmin,
    state: web::Data<AppState>,
    slug: web::Path<String>,
    query: Deferred<web::Query<DeleteQuery>>,
) -> Result<HttpResponse, ApiError> {
    let query = query.get()?;
    let slug = slug.into_inner();
    let purge = query.purge;
    let id = lifecycle(&state, move |s| {
        let current = s.lifecycle.get(&slug)?;
        if current.status != crate::domain::TenantStatus::Deleted {
            s.lifecycle.delete(&slug)?;
        } else if !purge {
            return Err(TenancyError::Conflict(format!(
                "tenant '{slug}' is already deleted"
            )));
        }
        if purge {
            s.lifecycle.purge(&slug)?;
        }
        Ok(current.id)
    })
    .await?;
    if purge {
        state.secrets.forget(id);
    }
    let action = if purge {
        "tenant.purged"
    } else {
        "tenant.deleted"
    };
    record_platform(&state, admin.audit(action, Target::new("tenant", id))).await?;
    Ok(HttpResponse::NoContent().finish())
}
