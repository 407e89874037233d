//! Settings routes: `GET/PATCH /api/workspace` (read: any member; change: admins) and the
//! tool permissions of the workspace.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::ApiError;
use super::extract::Deferred;
use super::openapi::{ErrorBody, TenantErrors};
use super::principal::TenantMember;
use super::routes::{Access, Endpoint, endpoint};
use super::service::run;
use crate::auth::policy::TenantAction;
use crate::domain::workspace::{Workspace, WorkspacePatch};
use crate::services::settings;
use crate::startup::AppState;

/// This module's routes (merged into the route table).
pub fn endpoints() -> Vec<Endpoint> {
    use actix_web::http::Method as M;
    vec![
        endpoint(M::GET, "/api/workspace", Access::Tenant, |r| {
            r.to(get_workspace)
        }),
        endpoint(M::PATCH, "/api/workspace", Access::Tenant, |r| {
            r.to(patch_workspace)
        }),
    ]
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(get_workspace, patch_workspace))]
pub struct Doc;

/// The workspace settings.
#[utoipa::path(
    get,
    path = "/api/workspace",
    tag = "settings",
    responses(
        (status = 200, description = "The workspace settings", body = Workspace),
        TenantErrors,
    )
)]
pub async fn get_workspace(
    member: TenantMember,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let workspace = run(member.scope(&state), settings::workspace).await?;
    Ok(HttpResponse::Ok().json(workspace))
}

/// Changes workspace settings (admins and owners). Fields left out stay; `null` clears.
#[utoipa::path(
    patch,
    path = "/api/workspace",
    tag = "settings",
    request_body = WorkspacePatch,
    responses(
        (status = 200, description = "The updated settings", body = Workspace),
        (status = 400, description = "A field is invalid (`details.fields` names it)", body = ErrorBody),
        TenantErrors,
    )
)]
pub async fn patch_workspace(
    member: TenantMember,
    state: web::Data<AppState>,
    body: Deferred<web::Json<WorkspacePatch>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Administer)?;
    let patch = body.get()?.into_inner();
    let workspace = run(member.scope(&state), move |s| {
        settings::update_workspace(s, patch)
    })
    .await?;
    Ok(HttpResponse::Ok().json(workspace))
}
