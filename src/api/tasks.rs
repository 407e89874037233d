//! Task routes: the task list and board, one task, its state changes (PATCH status, cancel,
//! retry) and event log, and an agent's tasks. Handlers only: parse, call `services::tasks`,
//! shape the response. Read: any member (viewers included); change: members and up.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::ApiError;
use super::extract::Deferred;
use super::json;
use super::openapi::{ErrorBody, TenantErrors};
use super::principal::TenantMember;
use super::routes::{Access, Endpoint, endpoint};
use super::service::{run, run_json, run_written};
use crate::auth::policy::TenantAction;
use crate::domain::Page;
use crate::domain::task::{
    Board, BoardColumnItems, ListedTask, NewTask, Task, TaskEvent, TaskPatch,
};
use crate::services::tasks::{self, BoardQuery, PageQuery, TaskQuery};
use crate::startup::AppState;

/// This module's routes (merged into the route table).
pub fn endpoints() -> Vec<Endpoint> {
    use Access::Tenant;
    use actix_web::http::Method as M;
    vec![
        endpoint(M::GET, "/api/tasks", Tenant, |r| r.to(list)),
        endpoint(M::POST, "/api/tasks", Tenant, |r| r.to(create)),
        // Before `/api/tasks/{id}`, which would otherwise take `board` for an id.
        endpoint(M::GET, "/api/tasks/board", Tenant, |r| r.to(board)),
        endpoint(M::GET, "/api/tasks/{id}", Tenant, |r| r.to(get)),
        endpoint(M::PATCH, "/api/tasks/{id}", Tenant, |r| r.to(update)),
        endpoint(M::DELETE, "/api/tasks/{id}", Tenant, |r| r.to(delete)),
        endpoint(M::POST, "/api/tasks/{id}/cancel", Tenant, |r| r.to(cancel)),
        endpoint(M::POST, "/api/tasks/{id}/retry", Tenant, |r| r.to(retry)),
        endpoint(M::GET, "/api/tasks/{id}/events", Tenant, |r| r.to(events)),
        endpoint(M::GET, "/api/agents/{id}/tasks", Tenant, |r| {
            r.to(agent_tasks)
        }),
    ]
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        list,
        create,
        board,
        get,
        update,
        delete,
        cancel,
        retry,
        events,
        agent_tasks
    ),
    components(schemas(TaskPage, TaskEventPage, Board, BoardColumnItems))
)]
pub struct Doc;

/// A page of tasks: what [`write_page`] writes (documentation only).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TaskPage {
    pub items: Vec<Task>,
    pub next_cursor: Option<String>,
}

/// A page of tasks as its JSON body (the tasks are JSON already: `ListedTask`).
fn write_page(page: &Page<ListedTask>, out: &mut Vec<u8>) -> Result<(), ApiError> {
    out.extend_from_slice(b"{\"items\":");
    json::write_array(out, page.items.iter().map(ListedTask::json));
    out.extend_from_slice(b",\"next_cursor\":");
    serde_json::to_writer(&mut *out, &page.next_cursor).map_err(ApiError::internal)?;
    out.push(b'}');
    Ok(())
}

/// The board as its JSON body: each column's count and tasks.
fn write_board(board: &Board, out: &mut Vec<u8>) -> Result<(), ApiError> {
    let columns = [
        ("backlog", &board.backlog),
        ("in_progress", &board.in_progress),
        ("review", &board.review),
        ("done", &board.done),
    ];
    for (i, (name, column)) in columns.into_iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"{\"" } else { b",\"" });
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":{\"count\":");
        out.extend_from_slice(itoa::Buffer::new().format(column.count).as_bytes());
        out.extend_from_slice(b",\"items\":");
        json::write_array(out, column.items.iter().map(ListedTask::json));
        out.push(b'}');
    }
    out.push(b'}');
    Ok(())
}

/// A page of a task's events, oldest first.
#[derive(Serialize, ToSchema)]
pub struct TaskEventPage {
    pub items: Vec<TaskEvent>,
    pub next_cursor: Option<String>,
}

impl From<Page<TaskEvent>> for TaskEventPage {
    fn from(p: Page<TaskEvent>) -> Self {
        TaskEventPage {
            items: p.items,
            next_cursor: p.next_cursor,
        }
    }
}

/// Tasks, newest first, filtered.
#[utoipa::path(
    get,
    path = "/api/tasks",
    tag = "tasks",
    params(TaskQuery),
    responses(
        TenantErrors,
        (status = 200, description = "A page of tasks, newest first", body = TaskPage),
        (status = 400, description = "A filter is invalid (`details.fields` names it)", body = ErrorBody),
    )
)]
pub async fn list(
    member: TenantMember,
    state: web::Data<AppState>,
    query: Deferred<web::Query<TaskQuery>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let query = query.get()?.into_inner();
    let page = run_written(
        member.scope(&state),
        move |s| tasks::list(s, query),
        write_page,
    )
    .await?;
    Ok(json::ok_body(page))
}

/// Creates a task (members and up).
#[utoipa::path(
    post,
    path = "/api/tasks",
    tag = "tasks",
    request_body = NewTask,
    responses(
        TenantErrors,
        (status = 201, description = "The new task", body = Task),
        (status = 400, description = "A field is invalid, or `assignee`/`parent_id` names nothing", body = ErrorBody),
        (status = 403, description = "The role does not allow creating tasks", body = ErrorBody),
    )
)]
pub async fn create(
    member: TenantMember,
    state: web::Data<AppState>,
    body: Deferred<web::Json<NewTask>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let new = body.get()?.into_inner();
    let task = run(member.scope(&state), move |s| tasks::create(s, new)).await?;
    json::created(&task)
}

/// The kanban board: backlog (pending, blocked), in_progress (running), review, done
/// (completed, failed, cancelled), each with its count and newest tasks.
#[utoipa::path(
    get,
    path = "/api/tasks/board",
    tag = "tasks",
    params(BoardQuery),
    responses(
        TenantErrors,
        (status = 200, description = "The board", body = Board),
        (status = 400, description = "`limit` is invalid", body = ErrorBody),
    )
)]
pub async fn board(
    member: TenantMember,
    state: web::Data<AppState>,
    query: Deferred<web::Query<BoardQuery>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let query = query.get()?.into_inner();
    let board = run_written(
        member.scope(&state),
        move |s| tasks::board(s, query),
        write_board,
    )
    .await?;
    Ok(json::ok_body(board))
}

/// One task.
#[utoipa::path(
    get,
    path = "/api/tasks/{id}",
    tag = "tasks",
    params(("id" = String, Path, description = "The task's id")),
    responses(
        TenantErrors,
        (status = 200, description = "The task", body = Task),
        (status = 404, description = "No such task", body = ErrorBody),
    )
)]
pub async fn get(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let id = id.into_inner();
    let task = run(member.scope(&state), move |s| tasks::get(s, &id)).await?;
    json::ok(&task)
}

/// Edits a task and/or moves it: `status` may go pending ↔ blocked, pending/blocked → review,
/// review → completed | failed | pending. Only the runtime starts a task (`running`); the
/// prompt, context and assignee of a running task cannot change.
#[utoipa::path(
    patch,
    path = "/api/tasks/{id}",
    tag = "tasks",
    params(("id" = String, Path, description = "The task's id")),
    request_body = TaskPatch,
    responses(
        TenantErrors,
        (status = 200, description = "The updated task", body = Task),
        (status = 400, description = "A field is invalid (`details.fields` names it)", body = ErrorBody),
        (status = 403, description = "The role does not allow changing tasks", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "Not allowed in the task's status (`details.status`, `details.allowed`)", body = ErrorBody),
    )
)]
pub async fn update(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Deferred<web::Json<TaskPatch>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let patch = body.get()?.into_inner();
    let id = id.into_inner();
    let task = run(member.scope(&state), move |s| tasks::update(s, &id, patch)).await?;
    json::ok(&task)
}

/// Deletes a task that is not running (cancel it first), with its events.
#[utoipa::path(
    delete,
    path = "/api/tasks/{id}",
    tag = "tasks",
    params(("id" = String, Path, description = "The task's id")),
    responses(
        TenantErrors,
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role does not allow deleting tasks", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The task is running", body = ErrorBody),
    )
)]
pub async fn delete(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let id = id.into_inner();
    run(member.scope(&state), move |s| tasks::delete(s, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Cancels a pending, blocked or review task at once (200); a running task is asked to stop
/// (202: `cancel_requested` is set and it stays `running` until the runtime stops it).
#[utoipa::path(
    post,
    path = "/api/tasks/{id}/cancel",
    tag = "tasks",
    params(("id" = String, Path, description = "The task's id")),
    responses(
        TenantErrors,
        (status = 200, description = "The task, now cancelled", body = Task),
        (status = 202, description = "The task, still running, with `cancel_requested`", body = Task),
        (status = 403, description = "The role does not allow changing tasks", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The task is already finished", body = ErrorBody),
    )
)]
pub async fn cancel(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let id = id.into_inner();
    let outcome = run(member.scope(&state), move |s| tasks::cancel(s, &id)).await?;
    let status = if outcome.requested {
        actix_web::http::StatusCode::ACCEPTED
    } else {
        actix_web::http::StatusCode::OK
    };
    json::respond(status, &outcome.task)
}

/// Puts a failed or cancelled task back to pending (its result and cancel flag cleared).
#[utoipa::path(
    post,
    path = "/api/tasks/{id}/retry",
    tag = "tasks",
    params(("id" = String, Path, description = "The task's id")),
    responses(
        TenantErrors,
        (status = 200, description = "The task, pending again", body = Task),
        (status = 403, description = "The role does not allow changing tasks", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The task is neither failed nor cancelled", body = ErrorBody),
    )
)]
pub async fn retry(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let id = id.into_inner();
    let task = run(member.scope(&state), move |s| tasks::retry(s, &id)).await?;
    json::ok(&task)
}

/// A task's history (created, updated, status changes, assignments, cancels, retries), oldest
/// first.
#[utoipa::path(
    get,
    path = "/api/tasks/{id}/events",
    tag = "tasks",
    params(("id" = String, Path, description = "The task's id"), PageQuery),
    responses(
        TenantErrors,
        (status = 200, description = "A page of the task's events", body = TaskEventPage),
        (status = 400, description = "`limit` or `cursor` is invalid", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
    )
)]
pub async fn events(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: Deferred<web::Query<PageQuery>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let query = query.get()?.into_inner();
    let id = id.into_inner();
    let page = run_json(member.scope(&state), move |s| {
        tasks::events(s, &id, query).map(TaskEventPage::from)
    })
    .await?;
    Ok(json::ok_body(page))
}

/// The tasks assigned to an agent, newest first (same filters as `GET /api/tasks`).
#[utoipa::path(
    get,
    path = "/api/agents/{id}/tasks",
    tag = "tasks",
    params(("id" = String, Path, description = "The agent's id or name"), TaskQuery),
    responses(
        TenantErrors,
        (status = 200, description = "A page of the agent's tasks", body = TaskPage),
        (status = 400, description = "A filter is invalid", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
    )
)]
pub async fn agent_tasks(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: Deferred<web::Query<TaskQuery>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let query = query.get()?.into_inner();
    let agent = id.into_inner();
    let page = run_written(
        member.scope(&state),
        move |s| tasks::agent_tasks(s, &agent, query),
        write_page,
    )
    .await?;
    Ok(json::ok_body(page))
}
