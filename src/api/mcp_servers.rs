//! `mcp_servers` routes: handlers only (parse, call `services::mcp_servers`, shape the
//! response). Everyone in the tenant reads the configurations; admins and owners change and
//! ping them.

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
use crate::domain::mcp_server::{
    McpProtocol, McpServer, McpServerPage, McpServerPatch, McpStatus, NewMcpServer,
};
use crate::services::mcp_servers;
use crate::startup::AppState;

/// This module's routes (merged into the route table).
pub fn endpoints() -> Vec<Endpoint> {
    use actix_web::http::Method as M;
    vec![
        endpoint(M::GET, "/api/mcp-servers", Access::Tenant, |r| r.to(list)),
        endpoint(M::POST, "/api/mcp-servers", Access::Tenant, |r| {
            r.to(create)
        }),
        endpoint(M::GET, "/api/mcp-servers/{id}", Access::Tenant, |r| {
            r.to(get)
        }),
        endpoint(M::PATCH, "/api/mcp-servers/{id}", Access::Tenant, |r| {
            r.to(update)
        }),
        endpoint(M::DELETE, "/api/mcp-servers/{id}", Access::Tenant, |r| {
            r.to(delete)
        }),
        endpoint(M::POST, "/api/mcp-servers/{id}/ping", Access::Tenant, |r| {
            r.to(ping)
        }),
    ]
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(list, create, get, update, delete, ping),
    components(schemas(
        McpServer,
        McpServerPage,
        NewMcpServer,
        McpServerPatch,
        McpProtocol,
        McpStatus
    ))
)]
pub struct Doc;

/// `GET /api/mcp-servers` query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Servers per page, 1 – 100 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The tenant's MCP servers, by name.
#[utoipa::path(
    get,
    path = "/api/mcp-servers",
    tag = "settings",
    params(ListQuery),
    responses(
        TenantErrors,
        (status = 200, description = "A page of MCP servers, by name", body = McpServerPage),
        (status = 400, description = "A query parameter is invalid", body = ErrorBody),
    )
)]
pub async fn list(
    member: TenantMember,
    state: web::Data<AppState>,
    query: Deferred<web::Query<ListQuery>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let q = query.get()?.into_inner();
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let page = run_json(member.scope(&state), move |s| {
        mcp_servers::list(s, page).map(McpServerPage::from)
    })
    .await?;
    Ok(json::ok_body(page))
}

/// One MCP server.
#[utoipa::path(
    get,
    path = "/api/mcp-servers/{id}",
    tag = "settings",
    params(("id" = String, Path, description = "The server's id")),
    responses(
        TenantErrors,
        (status = 200, description = "The server", body = McpServer),
        (status = 404, description = "No such server", body = ErrorBody),
    )
)]
pub async fn get(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let id = id.into_inner();
    let server = run(member.scope(&state), move |s| mcp_servers::get(s, &id)).await?;
    json::ok(&server)
}

/// Adds an MCP server (admins and owners). An `http`/`sse` uri must reach a public address
/// (the SSRF guard); `stdio` servers only where the instance allows them (`mcp.allow_stdio`).
#[utoipa::path(
    post,
    path = "/api/mcp-servers",
    tag = "settings",
    request_body = NewMcpServer,
    responses(
        TenantErrors,
        (status = 201, description = "The new server (not pinged yet)", body = McpServer),
        (status = 400, description = "A field is invalid, e.g. a uri the SSRF guard refuses (`details.fields.uri`)", body = ErrorBody),
        (status = 403, description = "The role does not allow changing settings", body = ErrorBody),
        (status = 409, description = "A server with this name exists", body = ErrorBody),
    )
)]
pub async fn create(
    member: TenantMember,
    state: web::Data<AppState>,
    body: Deferred<web::Json<NewMcpServer>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Administer)?;
    let new = body.get()?.into_inner();
    let settings = state.settings.mcp.clone();
    let server = run(member.scope(&state), move |s| {
        mcp_servers::create(s, new, &settings)
    })
    .await?;
    json::created(&server)
}

/// Changes an MCP server (admins and owners). A new protocol or uri is checked again and
/// resets the ping results.
#[utoipa::path(
    patch,
    path = "/api/mcp-servers/{id}",
    tag = "settings",
    params(("id" = String, Path, description = "The server's id")),
    request_body = McpServerPatch,
    responses(
        TenantErrors,
        (status = 200, description = "The updated server", body = McpServer),
        (status = 400, description = "A field is invalid, e.g. a uri the SSRF guard refuses (`details.fields.uri`)", body = ErrorBody),
        (status = 403, description = "The role does not allow changing settings", body = ErrorBody),
        (status = 404, description = "No such server", body = ErrorBody),
        (status = 409, description = "Another server has this name", body = ErrorBody),
    )
)]
pub async fn update(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Deferred<web::Json<McpServerPatch>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Administer)?;
    let patch = body.get()?.into_inner();
    let id = id.into_inner();
    let settings = state.settings.mcp.clone();
    let server = run(member.scope(&state), move |s| {
        mcp_servers::update(s, &id, patch, &settings)
    })
    .await?;
    json::ok(&server)
}

/// Removes an MCP server (admins and owners).
#[utoipa::path(
    delete,
    path = "/api/mcp-servers/{id}",
    tag = "settings",
    params(("id" = String, Path, description = "The server's id")),
    responses(
        TenantErrors,
        (status = 204, description = "Removed"),
        (status = 403, description = "The role does not allow changing settings", body = ErrorBody),
        (status = 404, description = "No such server", body = ErrorBody),
    )
)]
pub async fn delete(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Administer)?;
    let id = id.into_inner();
    run(member.scope(&state), move |s| mcp_servers::delete(s, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Pings an MCP server now (admins and owners): connects, runs the MCP handshake and lists
/// its tools. The answer is the server with what the ping found: a server that cannot be
/// reached is still a 200, with `status: error`, the reason in `error_message` and
/// `consecutive_failures` counted up (reset by the next successful ping).
#[utoipa::path(
    post,
    path = "/api/mcp-servers/{id}/ping",
    tag = "settings",
    params(("id" = String, Path, description = "The server's id")),
    responses(
        TenantErrors,
        (status = 200, description = "The server with the ping's result recorded", body = McpServer),
        (status = 403, description = "The role does not allow pinging servers", body = ErrorBody),
        (status = 404, description = "No such server", body = ErrorBody),
    )
)]
pub async fn ping(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Administer)?;
    let server = mcp_servers::ping(
        member.scope(&state),
        id.into_inner(),
        state.settings.mcp.clone(),
    )
    .await?;
    json::ok(&server)
}
