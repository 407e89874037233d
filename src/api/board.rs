//! `board` routes: handlers only (parse, call `services::board`, shape the response).
//! Everyone in the tenant reads the board; members and up post, change and archive items.

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
use crate::domain::board::{BoardFilter, BoardItem, BoardItemPage, BoardItemPatch, NewBoardItem};
use crate::services::board;
use crate::startup::AppState;

/// This module's routes (merged into the route table).
pub fn endpoints() -> Vec<Endpoint> {
    use actix_web::http::Method as M;
    vec![
        endpoint(M::GET, "/api/board-items", Access::Tenant, |r| r.to(list)),
        endpoint(M::POST, "/api/board-items", Access::Tenant, |r| {
            r.to(create)
        }),
        endpoint(M::PATCH, "/api/board-items/{id}", Access::Tenant, |r| {
            r.to(update)
        }),
        endpoint(
            M::POST,
            "/api/board-items/{id}/archive",
            Access::Tenant,
            |r| r.to(archive),
        ),
    ]
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(list, create, update, archive),
    components(schemas(BoardItem, BoardItemPage, NewBoardItem, BoardItemPatch))
)]
pub struct Doc;

/// `GET /api/board-items` query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only items of this type: `status_update`, `blocker`, `finding` or `request`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub item_type: Option<String>,
    /// Only items created at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Include archived items (default false).
    pub include_archived: Option<bool>,
    /// Items per page, 1 – 100 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The board, newest first (archived items only when asked for).
#[utoipa::path(
    get,
    path = "/api/board-items",
    tag = "board",
    params(ListQuery),
    responses(
        TenantErrors,
        (status = 200, description = "A page of board items, newest first", body = BoardItemPage),
        (status = 400, description = "A query parameter is invalid (`details.fields` names it)", body = ErrorBody),
    )
)]
pub async fn list(
    member: TenantMember,
    state: web::Data<AppState>,
    query: Deferred<web::Query<ListQuery>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let q = query.get()?.into_inner();
    let filter = BoardFilter::parse(
        q.item_type.as_deref(),
        q.since.as_deref(),
        q.include_archived,
        q.limit,
        q.cursor.as_deref(),
    )?;
    let page = run_json(member.scope(&state), move |s| {
        board::list(s, filter).map(BoardItemPage::from)
    })
    .await?;
    Ok(json::ok_body(page))
}

/// Posts an item, as the caller or (with `author_agent`) as one of the tenant's agents.
#[utoipa::path(
    post,
    path = "/api/board-items",
    tag = "board",
    request_body = NewBoardItem,
    responses(
        TenantErrors,
        (status = 201, description = "The new item", body = BoardItem),
        (status = 400, description = "A field is invalid or `author_agent` names no agent", body = ErrorBody),
        (status = 403, description = "Viewers cannot post", body = ErrorBody),
    )
)]
pub async fn create(
    member: TenantMember,
    state: web::Data<AppState>,
    body: Deferred<web::Json<NewBoardItem>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let new = body.get()?.into_inner();
    let caller = member.principal.user_id().to_string();
    let item = run(member.scope(&state), move |s| board::create(s, new, caller)).await?;
    json::created(&item)
}

/// Changes an item's type or content. Fields left out stay.
#[utoipa::path(
    patch,
    path = "/api/board-items/{id}",
    tag = "board",
    params(("id" = String, Path, description = "The item's id")),
    request_body = BoardItemPatch,
    responses(
        TenantErrors,
        (status = 200, description = "The updated item", body = BoardItem),
        (status = 400, description = "A field is invalid (`details.fields` names it)", body = ErrorBody),
        (status = 403, description = "Viewers cannot change items", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody),
    )
)]
pub async fn update(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Deferred<web::Json<BoardItemPatch>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let patch = body.get()?.into_inner();
    let id = id.into_inner();
    let item = run(member.scope(&state), move |s| board::update(s, &id, patch)).await?;
    json::ok(&item)
}

/// Archives an item: it leaves the board (listed again with `include_archived=true`).
#[utoipa::path(
    post,
    path = "/api/board-items/{id}/archive",
    tag = "board",
    params(("id" = String, Path, description = "The item's id")),
    responses(
        TenantErrors,
        (status = 200, description = "The archived item", body = BoardItem),
        (status = 403, description = "Viewers cannot archive items", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody),
        (status = 409, description = "The item is already archived", body = ErrorBody),
    )
)]
pub async fn archive(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let id = id.into_inner();
    let item = run(member.scope(&state), move |s| board::archive(s, &id)).await?;
    json::ok(&item)
}
