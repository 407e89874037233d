//! `GET /api/audit` (a tenant's log, admins and up) and `GET /api/admin/audit` (the platform
//! log, platform admins), plus where an entry's request facts come from. Append-only: there is
//! no route that edits or deletes an entry.

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::ApiError;
use super::extract::Deferred;
use super::json;
use super::middleware::RequestId;
use super::openapi::{AdminErrors, TenantErrors};
use super::principal::{PlatformAdmin, TenantMember};
use crate::audit::{ActorKind, AuditEntry, AuditFilter, Origin};
use crate::auth::policy::TenantAction;
use crate::domain::time::parse_rfc3339;
use crate::startup::AppState;

/// Longest user agent kept (they are free text chosen by the client).
const MAX_USER_AGENT: usize = 256;

/// The request facts every audit entry of this request shares.
pub fn origin(req: &HttpRequest) -> Origin {
    Origin {
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
        ip: super::client_ip(req).map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
    }
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(tenant_log, platform_log))]
pub struct Doc;

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    items: Vec<AuditEntry>,
    next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    actor_type: Option<String>,
    actor_id: Option<String>,
    action: Option<String>,
    target_type: Option<String>,
    target_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

impl AuditQuery {
    fn filter(self) -> Result<AuditFilter, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::validation("limit", "must be between 1 and 100"));
        }
        let time = |field: &str, value: Option<String>| {
            value
                .map(|v| {
                    parse_rfc3339(&v).map_err(|_| {
                        ApiError::validation(
                            field,
                            "must be an RFC 3339 time, e.g. 2026-11-22T10:00:00Z",
                        )
                    })
                })
                .transpose()
        };
        let actor_type = self
            .actor_type
            .map(|a| {
                ActorKind::parse(&a).ok_or_else(|| {
                    ApiError::validation("actor_type", "must be user, token, agent or system")
                })
            })
            .transpose()?;
        let before_id = self
            .cursor
            .map(|c| {
                uuid::Uuid::parse_str(&c)
                    .map(|u| u.to_string())
                    .map_err(|_| ApiError::validation("cursor", "unknown cursor"))
            })
            .transpose()?;
        Ok(AuditFilter {
            actor_type,
            actor_id: self.actor_id,
            action: self.action,
            target_type: self.target_type,
            target_id: self.target_id,
            since: time("since", self.since)?,
            until: time("until", self.until)?,
            before_id,
            // One more than asked for tells whether there is a next page.
            limit: limit + 1,
        })
    }
}

/// A list response from a page fetched with one extra entry.
fn page_response(
    mut entries: Vec<AuditEntry>,
    filter: &AuditFilter,
) -> Result<HttpResponse, ApiError> {
    let asked = (filter.limit - 1) as usize;
    let next_cursor = (entries.len() > asked).then(|| {
        entries.truncate(asked);
        entries.last().map(|e| e.id.clone())
    });
    json::ok(&AuditPage {
        items: entries,
        next_cursor: next_cursor.flatten(),
    })
}

/// The tenant's audit log, newest first (admins and owners).
#[utoipa::path(get, path = "/api/audit", tag = "records", params(AuditQuery),
    responses((status = 200, description = "Entries, newest first", body = AuditPage), TenantErrors))]
pub async fn tenant_log(
    member: TenantMember,
    query: Deferred<web::Query<AuditQuery>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Administer)?;
    let filter = query.get()?.into_inner().filter()?;
    let store = member.ctx.store.clone();
    let f = filter.clone();
    let entries = web::block(move || store.audit(&f))
        .await
        .map_err(ApiError::internal)??;
    page_response(entries, &filter)
}

/// The platform audit log, newest first (platform admins).
#[utoipa::path(get, path = "/api/admin/audit", tag = "platform admin", params(AuditQuery),
    responses((status = 200, description = "Entries, newest first", body = AuditPage), AdminErrors))]
pub async fn platform_log(
    _admin: PlatformAdmin,
    state: web::Data<AppState>,
    query: Deferred<web::Query<AuditQuery>>,
) -> Result<HttpResponse, ApiError> {
    let filter = query.get()?.into_inner().filter()?;
    let f = filter.clone();
    let entries = web::block(move || state.storage.registry.platform_audit(&f))
        .await
        .map_err(ApiError::internal)??;
    page_response(entries, &filter)
}

/// Appends an entry to a tenant's log, after the change it records succeeded.
///
/// NOTE: member and token changes live in the registry and their entries in the tenant file, so
/// the two writes cannot share a transaction. If the entry cannot be written the request fails
/// (the client learns that something is wrong) and the entry is logged in full, so the record
/// survives in the server log.
pub async fn record(member: &TenantMember, entry: AuditEntry) -> Result<(), ApiError> {
    let store = member.ctx.store.clone();
    web::block(move || {
        store.append_audit(&entry).inspect_err(|e| {
            tracing::error!(error = %e, ?entry, "cannot write a tenant audit entry");
        })
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(())
}

/// Appends an entry to the platform log (see [`record`] for what a failure means).
pub async fn record_platform(
    state: &web::Data<AppState>,
    entry: AuditEntry,
) -> Result<(), ApiError> {
    let state = state.clone();
    web::block(move || {
        state
            .storage
            .registry
            .append_platform_audit(&entry)
            .inspect_err(|e| {
                tracing::error!(error = %e, ?entry, "cannot write a platform audit entry");
            })
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(())
}
