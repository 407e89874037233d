//! Chat routes: threads, their messages, and a human's messages to agents. Handlers only:
//! parse, call `services::chat`, shape the response. Read: any member; write: members and up.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::ApiError;
use super::extract::Deferred;
use super::json;
use super::openapi::{ErrorBody, TenantErrors};
use super::principal::TenantMember;
use super::routes::{Access, Endpoint, endpoint};
use super::service::{run, run_json};
use crate::auth::policy::TenantAction;
use crate::domain::Page;
use crate::domain::chat::{Message, MessagePatch, NewMessage, Thread};
use crate::services::chat;
use crate::services::tasks::PageQuery;
use crate::startup::AppState;

/// This module's routes (merged into the route table).
pub fn endpoints() -> Vec<Endpoint> {
    use Access::Tenant;
    use actix_web::http::Method as M;
    vec![
        endpoint(M::GET, "/api/threads", Tenant, |r| r.to(threads)),
        endpoint(M::GET, "/api/threads/{id}/messages", Tenant, |r| {
            r.to(messages)
        }),
        endpoint(M::POST, "/api/messages", Tenant, |r| r.to(post)),
        endpoint(M::PATCH, "/api/messages/{id}", Tenant, |r| r.to(update)),
        endpoint(M::DELETE, "/api/messages/{id}", Tenant, |r| r.to(delete)),
    ]
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(threads, messages, post, update, delete),
    components(schemas(ThreadPage, MessagePage))
)]
pub struct Doc;

/// A page of threads, most recent first.
#[derive(Serialize, ToSchema)]
pub struct ThreadPage {
    pub items: Vec<Thread>,
    pub next_cursor: Option<String>,
}

/// A page of a thread's messages, newest first.
#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    pub items: Vec<Message>,
    pub next_cursor: Option<String>,
}

impl From<Page<Thread>> for ThreadPage {
    fn from(p: Page<Thread>) -> Self {
        ThreadPage {
            items: p.items,
            next_cursor: p.next_cursor,
        }
    }
}

impl From<Page<Message>> for MessagePage {
    fn from(p: Page<Message>) -> Self {
        MessagePage {
            items: p.items,
            next_cursor: p.next_cursor,
        }
    }
}

/// Chat threads, the one with the most recent message first, each with its participants,
/// a preview of its last message and its count of unread messages to humans.
#[utoipa::path(
    get,
    path = "/api/threads",
    tag = "chat",
    params(PageQuery),
    responses(
        TenantErrors,
        (status = 200, description = "A page of threads", body = ThreadPage),
        (status = 400, description = "`limit` or `cursor` is invalid", body = ErrorBody),
    )
)]
pub async fn threads(
    member: TenantMember,
    state: web::Data<AppState>,
    query: Deferred<web::Query<PageQuery>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let query = query.get()?.into_inner();
    let page = run_json(member.scope(&state), move |s| {
        chat::threads(s, query).map(ThreadPage::from)
    })
    .await?;
    Ok(json::ok_body(page))
}

/// A thread's messages, newest first.
#[utoipa::path(
    get,
    path = "/api/threads/{id}/messages",
    tag = "chat",
    params(("id" = String, Path, description = "The thread's id"), PageQuery),
    responses(
        TenantErrors,
        (status = 200, description = "A page of messages", body = MessagePage),
        (status = 400, description = "`limit` or `cursor` is invalid", body = ErrorBody),
        (status = 404, description = "No such thread", body = ErrorBody),
    )
)]
pub async fn messages(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: Deferred<web::Query<PageQuery>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let query = query.get()?.into_inner();
    let id = id.into_inner();
    let page = run_json(member.scope(&state), move |s| {
        chat::messages(s, &id, query).map(MessagePage::from)
    })
    .await?;
    Ok(json::ok_body(page))
}

/// Sends a message to an agent (in `thread_id`, or a new thread) and asks it to reply: the
/// message's `reply_task_id` is the task created for that.
#[utoipa::path(
    post,
    path = "/api/messages",
    tag = "chat",
    request_body = NewMessage,
    responses(
        TenantErrors,
        (status = 201, description = "The message", body = Message),
        (status = 400, description = "A field is invalid, or `to` names no agent", body = ErrorBody),
        (status = 403, description = "The role does not allow sending messages", body = ErrorBody),
        (status = 404, description = "No such thread", body = ErrorBody),
    )
)]
pub async fn post(
    member: TenantMember,
    state: web::Data<AppState>,
    body: Deferred<web::Json<NewMessage>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let new = body.get()?.into_inner();
    let user = member.principal.user_id().to_string();
    let message = run(member.scope(&state), move |s| chat::post(s, user, new)).await?;
    json::created(&message)
}

/// Marks a message read (`{"read": true}`) or unread, and/or edits the body of a message the
/// caller wrote.
#[utoipa::path(
    patch,
    path = "/api/messages/{id}",
    tag = "chat",
    params(("id" = String, Path, description = "The message's id")),
    request_body = MessagePatch,
    responses(
        TenantErrors,
        (status = 200, description = "The updated message", body = Message),
        (status = 400, description = "A field is invalid", body = ErrorBody),
        (status = 403, description = "The role does not allow it, or the caller did not write the message", body = ErrorBody),
        (status = 404, description = "No such message", body = ErrorBody),
        (status = 409, description = "An agent's or the platform's message cannot be edited", body = ErrorBody),
    )
)]
pub async fn update(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Deferred<web::Json<MessagePatch>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let patch = body.get()?.into_inner();
    let user = member.principal.user_id().to_string();
    let id = id.into_inner();
    let message = run(member.scope(&state), move |s| {
        chat::update(s, &user, &id, patch)
    })
    .await?;
    json::ok(&message)
}

/// Deletes a message.
#[utoipa::path(
    delete,
    path = "/api/messages/{id}",
    tag = "chat",
    params(("id" = String, Path, description = "The message's id")),
    responses(
        TenantErrors,
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role does not allow deleting messages", body = ErrorBody),
        (status = 404, description = "No such message", body = ErrorBody),
    )
)]
pub async fn delete(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let id = id.into_inner();
    run(member.scope(&state), move |s| chat::delete(s, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
