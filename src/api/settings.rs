//! Settings routes: `GET/PATCH /api/workspace` and the workspace's tool permissions
//! (`/api/tool-permissions`, `{id}` being a permission's id or name). Read: any member;
//! change: admins.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use super::ApiError;
use super::extract::Deferred;
use super::json;
use super::openapi::{ErrorBody, TenantErrors};
use super::principal::TenantMember;
use super::routes::{Access, Endpoint, endpoint};
use super::service::{run, run_json};
use crate::auth::policy::TenantAction;
use crate::domain::PageRequest;
use crate::domain::tool_permission::{
    NewToolPermission, ToolPermission, ToolPermissionPage, ToolPermissionPatch,
};
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
        endpoint(M::GET, "/api/tool-permissions", Access::Tenant, |r| {
            r.to(list_tool_permissions)
        }),
        endpoint(M::POST, "/api/tool-permissions", Access::Tenant, |r| {
            r.to(create_tool_permission)
        }),
        endpoint(M::GET, "/api/tool-permissions/{id}", Access::Tenant, |r| {
            r.to(get_tool_permission)
        }),
        endpoint(
            M::PATCH,
            "/api/tool-permissions/{id}",
            Access::Tenant,
            |r| r.to(update_tool_permission),
        ),
        endpoint(
            M::DELETE,
            "/api/tool-permissions/{id}",
            Access::Tenant,
            |r| r.to(delete_tool_permission),
        ),
    ]
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    get_workspace,
    patch_workspace,
    list_tool_permissions,
    create_tool_permission,
    get_tool_permission,
    update_tool_permission,
    delete_tool_permission
))]
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
    json::ok(&workspace)
}

/// Changes workspace settings (admins and owners). Fields left out stay; `null` clears.
#[utoipa::path(
    patch,
    path = "/api/workspace",
    tag = "settings",
    request_body = WorkspacePatch,
    responses(
        (status = 200, description = "The updated settings", body = Workspace),
        (status = 400, description = "A field is invalid, or names an agent or provider that does not exist (`details.fields` names it)", body = ErrorBody),
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
    json::ok(&workspace)
}

/// `GET /api/tool-permissions` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ToolPermissionQuery {
    /// Page size, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The workspace's tool permissions (the defaults for every agent), by name.
#[utoipa::path(
    get,
    path = "/api/tool-permissions",
    tag = "settings",
    params(ToolPermissionQuery),
    responses(
        TenantErrors,
        (status = 200, description = "A page of tool permissions", body = ToolPermissionPage),
        (status = 400, description = "A bad limit or cursor (`details.fields` names it)", body = ErrorBody),
    )
)]
pub async fn list_tool_permissions(
    member: TenantMember,
    state: web::Data<AppState>,
    query: Deferred<web::Query<ToolPermissionQuery>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let query = query.get()?.into_inner();
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let page = run_json(member.scope(&state), move |s| {
        settings::tool_permissions(s, &page).map(ToolPermissionPage::from)
    })
    .await?;
    Ok(json::ok_body(page))
}

/// Adds a tool permission to the workspace (admins and owners).
#[utoipa::path(
    post,
    path = "/api/tool-permissions",
    tag = "settings",
    request_body = NewToolPermission,
    responses(
        TenantErrors,
        (status = 201, description = "The new tool permission", body = ToolPermission),
        (status = 400, description = "A field is invalid (`details.fields` names it)", body = ErrorBody),
        (status = 403, description = "The role does not allow changing settings", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    )
)]
pub async fn create_tool_permission(
    member: TenantMember,
    state: web::Data<AppState>,
    body: Deferred<web::Json<NewToolPermission>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Administer)?;
    let new = body.get()?.into_inner();
    let permission = run(member.scope(&state), move |s| {
        settings::create_tool_permission(s, new)
    })
    .await?;
    json::created(&permission)
}

/// One tool permission, by id or name.
#[utoipa::path(
    get,
    path = "/api/tool-permissions/{id}",
    tag = "settings",
    params(("id" = String, Path, description = "The tool permission's id or name")),
    responses(
        TenantErrors,
        (status = 200, description = "The tool permission", body = ToolPermission),
        (status = 404, description = "No such tool permission", body = ErrorBody),
    )
)]
pub async fn get_tool_permission(
    member: TenantMember,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let id = path.into_inner();
    let permission = run(member.scope(&state), move |s| {
        settings::tool_permission(s, &id)
    })
    .await?;
    json::ok(&permission)
}

/// Changes a tool permission (admins and owners). Fields left out stay; `null` clears the icon.
#[utoipa::path(
    patch,
    path = "/api/tool-permissions/{id}",
    tag = "settings",
    params(("id" = String, Path, description = "The tool permission's id or name")),
    request_body = ToolPermissionPatch,
    responses(
        TenantErrors,
        (status = 200, description = "The updated tool permission", body = ToolPermission),
        (status = 400, description = "A field is invalid (`details.fields` names it)", body = ErrorBody),
        (status = 403, description = "The role does not allow changing settings", body = ErrorBody),
        (status = 404, description = "No such tool permission", body = ErrorBody),
        (status = 409, description = "The new name is taken", body = ErrorBody),
    )
)]
pub async fn update_tool_permission(
    member: TenantMember,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Deferred<web::Json<ToolPermissionPatch>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Administer)?;
    let patch = body.get()?.into_inner();
    let id = path.into_inner();
    let permission = run(member.scope(&state), move |s| {
        settings::update_tool_permission(s, &id, patch)
    })
    .await?;
    json::ok(&permission)
}

/// Removes a tool permission and every agent's override of it (admins and owners).
#[utoipa::path(
    delete,
    path = "/api/tool-permissions/{id}",
    tag = "settings",
    params(("id" = String, Path, description = "The tool permission's id or name")),
    responses(
        TenantErrors,
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role does not allow changing settings", body = ErrorBody),
        (status = 404, description = "No such tool permission", body = ErrorBody),
    )
)]
pub async fn delete_tool_permission(
    member: TenantMember,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Administer)?;
    let id = path.into_inner();
    run(member.scope(&state), move |s| {
        settings::delete_tool_permission(s, &id)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_settings_route_is_in_the_openapi_document() {
        super::super::agents::tests::assert_documented(&super::endpoints());
    }
}
