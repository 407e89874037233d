//! Agent routes: `/api/agents` (read: any member; change: members and up), the org chart
//! `/api/org`, and an agent's tool permissions (read: any member; change: admins). In paths,
//! `{id}` is the agent's id or its name.

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
use crate::domain::agent::{
    Agent, AgentFilter, AgentPage, AgentPatch, AgentStatus, Level, NewAgent, OrgChart,
};
use crate::domain::text::{self, MAX_SHORT_CHARS};
use crate::domain::tool_permission::{AgentToolPermissions, ToolOverridesPatch};
use crate::services::agents;
use crate::startup::AppState;

/// This module's routes (merged into the route table).
pub fn endpoints() -> Vec<Endpoint> {
    use actix_web::http::Method as M;
    vec![
        endpoint(M::GET, "/api/agents", Access::Tenant, |r| r.to(list)),
        endpoint(M::POST, "/api/agents", Access::Tenant, |r| r.to(create)),
        endpoint(M::GET, "/api/agents/{id}", Access::Tenant, |r| r.to(get)),
        endpoint(M::PATCH, "/api/agents/{id}", Access::Tenant, |r| {
            r.to(update)
        }),
        endpoint(M::DELETE, "/api/agents/{id}", Access::Tenant, |r| {
            r.to(delete)
        }),
        endpoint(
            M::GET,
            "/api/agents/{id}/tool-permissions",
            Access::Tenant,
            |r| r.to(tool_permissions),
        ),
        endpoint(
            M::PATCH,
            "/api/agents/{id}/tool-permissions",
            Access::Tenant,
            |r| r.to(update_tool_permissions),
        ),
        endpoint(M::GET, "/api/org", Access::Tenant, |r| r.to(org)),
    ]
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    list,
    create,
    get,
    update,
    delete,
    tool_permissions,
    update_tool_permissions,
    org
))]
pub struct Doc;

/// `GET /api/agents` query: paging and optional filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only agents of this department (exact match).
    department: Option<String>,
    #[param(value_type = Option<Level>)]
    level: Option<String>,
    #[param(value_type = Option<AgentStatus>)]
    status: Option<String>,
}

impl ListQuery {
    fn parse(self) -> Result<(AgentFilter, PageRequest), ApiError> {
        let page = PageRequest::parse(self.limit, self.cursor.as_deref())?;
        let filter = AgentFilter {
            department: self
                .department
                .as_deref()
                .map(|d| text::short("department", d, MAX_SHORT_CHARS))
                .transpose()?,
            level: self
                .level
                .as_deref()
                .map(|l| Level::parse("level", l))
                .transpose()?,
            status: self
                .status
                .as_deref()
                .map(|s| AgentStatus::parse("status", s))
                .transpose()?,
        };
        Ok((filter, page))
    }
}

/// A page of agents, in creation order.
#[utoipa::path(
    get,
    path = "/api/agents",
    tag = "agents",
    params(ListQuery),
    responses(
        TenantErrors,
        (status = 200, description = "A page of agents", body = AgentPage),
        (status = 400, description = "A bad filter, limit or cursor (`details.fields` names it)", body = ErrorBody),
    )
)]
pub async fn list(
    member: TenantMember,
    state: web::Data<AppState>,
    query: Deferred<web::Query<ListQuery>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let (filter, page) = query.get()?.into_inner().parse()?;
    let page = run_json(member.scope(&state), move |s| {
        agents::list(s, &filter, &page).map(AgentPage::from)
    })
    .await?;
    Ok(json::ok_body(page))
}

/// Creates an agent (members and up).
#[utoipa::path(
    post,
    path = "/api/agents",
    tag = "agents",
    request_body = NewAgent,
    responses(
        TenantErrors,
        (status = 201, description = "The new agent", body = Agent),
        (status = 400, description = "A field is invalid or names nothing (`details.fields` names it)", body = ErrorBody),
        (status = 403, description = "The role does not allow creating agents", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    )
)]
pub async fn create(
    member: TenantMember,
    state: web::Data<AppState>,
    body: Deferred<web::Json<NewAgent>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let new = body.get()?.into_inner();
    let agent = run(member.scope(&state), move |s| agents::create(s, new)).await?;
    json::created(&agent)
}

/// One agent, by id or name.
#[utoipa::path(
    get,
    path = "/api/agents/{id}",
    tag = "agents",
    params(("id" = String, Path, description = "The agent's id or name")),
    responses(
        TenantErrors,
        (status = 200, description = "The agent", body = Agent),
        (status = 404, description = "No such agent", body = ErrorBody),
    )
)]
pub async fn get(
    member: TenantMember,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let id = path.into_inner();
    let agent = run(member.scope(&state), move |s| agents::get(s, &id)).await?;
    json::ok(&agent)
}

/// Changes an agent (members and up). Fields left out stay; `null` clears. Moving an agent
/// in the org chart is a change of `reports_to`; a move that would create a cycle is refused.
#[utoipa::path(
    patch,
    path = "/api/agents/{id}",
    tag = "agents",
    params(("id" = String, Path, description = "The agent's id or name")),
    request_body = AgentPatch,
    responses(
        TenantErrors,
        (status = 200, description = "The updated agent", body = Agent),
        (status = 400, description = "A field is invalid, names nothing or would create a cycle (`details.fields` names it)", body = ErrorBody),
        (status = 403, description = "The role does not allow changing agents", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "The new name is taken, the status of a running agent was to change, or the chart changed meanwhile", body = ErrorBody),
    )
)]
pub async fn update(
    member: TenantMember,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Deferred<web::Json<AgentPatch>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let patch = body.get()?.into_inner();
    let id = path.into_inner();
    let agent = run(member.scope(&state), move |s| agents::update(s, &id, patch)).await?;
    json::ok(&agent)
}

/// Deletes an agent (members and up). Its reports move up to its manager and its open tasks
/// become unassigned, in the same transaction. A running agent cannot be deleted.
#[utoipa::path(
    delete,
    path = "/api/agents/{id}",
    tag = "agents",
    params(("id" = String, Path, description = "The agent's id or name")),
    responses(
        TenantErrors,
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role does not allow deleting agents", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "The agent is running", body = ErrorBody),
    )
)]
pub async fn delete(
    member: TenantMember,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let id = path.into_inner();
    run(member.scope(&state), move |s| agents::delete(s, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every workspace tool permission as it applies to the agent: its effective `enabled`, the
/// workspace default, and whether the agent overrides it.
#[utoipa::path(
    get,
    path = "/api/agents/{id}/tool-permissions",
    tag = "agents",
    params(("id" = String, Path, description = "The agent's id or name")),
    responses(
        TenantErrors,
        (status = 200, description = "The merged tool permissions, by name", body = AgentToolPermissions),
        (status = 404, description = "No such agent", body = ErrorBody),
    )
)]
pub async fn tool_permissions(
    member: TenantMember,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let id = path.into_inner();
    let view = run(member.scope(&state), move |s| {
        agents::tool_permissions(s, &id)
    })
    .await?;
    json::ok(&view)
}

/// Sets (`true`/`false`) or removes (`null`) the agent's own tool permissions (admins and
/// up); tools left out keep their setting.
#[utoipa::path(
    patch,
    path = "/api/agents/{id}/tool-permissions",
    tag = "agents",
    params(("id" = String, Path, description = "The agent's id or name")),
    request_body = ToolOverridesPatch,
    responses(
        TenantErrors,
        (status = 200, description = "The merged tool permissions, by name", body = AgentToolPermissions),
        (status = 400, description = "A tool is unknown or a value is not true/false/null (`details.fields` names it)", body = ErrorBody),
        (status = 403, description = "The role does not allow changing tool permissions", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "A tool permission was removed meanwhile", body = ErrorBody),
    )
)]
pub async fn update_tool_permissions(
    member: TenantMember,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Deferred<web::Json<ToolOverridesPatch>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Administer)?;
    let patch = body.get()?.into_inner();
    let id = path.into_inner();
    let view = run(member.scope(&state), move |s| {
        agents::update_tool_permissions(s, &id, patch)
    })
    .await?;
    json::ok(&view)
}

/// The org chart: every agent under its manager; agents without one are the roots.
#[utoipa::path(
    get,
    path = "/api/org",
    tag = "agents",
    responses(
        TenantErrors,
        (status = 200, description = "The org chart", body = OrgChart),
    )
)]
pub async fn org(
    member: TenantMember,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let chart = run_json(member.scope(&state), agents::org).await?;
    Ok(json::ok_body(chart))
}

#[cfg(test)]
pub(super) mod tests {
    use actix_web::http::Method;

    use super::super::openapi::spec;
    use super::super::routes::Endpoint;

    /// Asserts that the OpenAPI document describes every one of `endpoints`.
    pub(in crate::api) fn assert_documented(endpoints: &[Endpoint]) {
        let paths = &spec().paths.paths;
        for e in endpoints {
            let item = paths
                .get(e.path)
                .unwrap_or_else(|| panic!("{} is not in the OpenAPI document", e.path));
            let operation = match e.method {
                Method::GET => &item.get,
                Method::POST => &item.post,
                Method::PATCH => &item.patch,
                Method::PUT => &item.put,
                Method::DELETE => &item.delete,
                _ => panic!("unexpected method {}", e.method),
            };
            assert!(
                operation.is_some(),
                "{} {} is not documented",
                e.method,
                e.path
            );
        }
    }

    #[test]
    fn every_agent_route_is_in_the_openapi_document() {
        assert_documented(&super::endpoints());
    }
}
