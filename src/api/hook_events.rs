//! `hook_events` routes: handlers only (parse, call `services::hook_events`, shape the
//! response). Agent runtimes (members' tokens) post hook events, one or a batch; everyone in
//! the tenant reads them back. See `docs/claude-code-hooks.md`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::ApiError;
use super::extract::Deferred;
use super::json;
use super::openapi::{ErrorBody, TenantErrors};
use super::principal::TenantMember;
use super::routes::{Access, Endpoint, endpoint};
use super::service::{run, run_json};
use crate::auth::policy::TenantAction;
use crate::domain::hook_event::{
    BatchError, BatchLimits, HookEvent, HookEventFilter, HookEventPage, HookEventsReceived,
    parse_batch,
};
use crate::services::hook_events::{self, Association};
use crate::startup::AppState;

/// This module's routes (merged into the route table).
pub fn endpoints() -> Vec<Endpoint> {
    use actix_web::http::Method as M;
    vec![
        endpoint(M::POST, "/api/events", Access::Tenant, |r| r.to(receive)),
        endpoint(M::GET, "/api/events", Access::Tenant, |r| r.to(list)),
    ]
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(receive, list),
    components(schemas(
        HookEvent,
        HookEventPage,
        HookEventsReceived,
        HookEventBody,
        HookEventPayload
    ))
)]
pub struct Doc;

/// The body of `POST /api/events` as documented: one event or a batch. (The handler reads
/// the body as plain JSON and checks it itself, to name the bad event of a batch.)
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum HookEventBody {
    One(HookEventPayload),
    Batch(Vec<HookEventPayload>),
}

/// A hook event as a runtime sends it: any JSON object with a string `hook_event_name`;
/// every other field is kept as it is.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct HookEventPayload {
    /// E.g. `PreToolUse`, `PostToolUse`, `Stop`.
    pub hook_event_name: String,
    pub session_id: Option<String>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub rest: serde_json::Map<String, Value>,
}

/// `POST /api/events` query parameters: what the events are about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReceiveQuery {
    /// The agent (id or name) the events come from; it must exist.
    pub agent_id: Option<String>,
    /// The task the events belong to; it must exist.
    pub task_id: Option<String>,
}

/// Stores agent hook events: one JSON object, or an array of them (a batch, at most
/// `hook_events.max_batch`). Each object is kept whole and must have a string
/// `hook_event_name` (Claude Code hook payloads do); `session_id`, when present, must be a
/// string. A batch is stored all or nothing.
#[utoipa::path(
    post,
    path = "/api/events",
    tag = "records",
    params(ReceiveQuery),
    request_body(
        content = HookEventBody,
        description = "A hook event (an object with a string `hook_event_name`, e.g. a Claude \
                       Code hook payload) or an array of them"
    ),
    responses(
        TenantErrors,
        (status = 201, description = "The events were stored; their ids in the order posted", body = HookEventsReceived),
        (status = 400, description = "An event is invalid (`details.fields` names it, e.g. `body[3].hook_event_name`), or `agent_id`/`task_id` names nothing", body = ErrorBody),
        (status = 403, description = "Viewers cannot post events", body = ErrorBody),
    )
)]
pub async fn receive(
    member: TenantMember,
    state: web::Data<AppState>,
    query: Deferred<web::Query<ReceiveQuery>>,
    body: Deferred<web::Json<Value>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let query = query.get()?.into_inner();
    let body = body.get()?.into_inner();
    let settings = &state.settings.hook_events;
    let limits = BatchLimits {
        max_batch: settings.max_batch,
        max_event_bytes: settings.max_event_bytes,
    };
    let events = parse_batch(body, limits).map_err(batch_error)?;
    let about = Association {
        agent: query.agent_id,
        task: query.task_id,
    };
    let received = run(member.scope(&state), move |s| {
        hook_events::receive(s, events, about)
    })
    .await?;
    json::created(&received)
}

fn batch_error(e: BatchError) -> ApiError {
    let message = e.to_string();
    match e {
        BatchError::Invalid(invalid) => invalid.into(),
        BatchError::TooMany { max, got } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", message)
                .with_details(json!({ "max_batch": max, "received": got }))
        }
        BatchError::EventTooLarge { field, size, max } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", message)
                .with_details(json!({ "field": field, "size_bytes": size, "limit_bytes": max }))
        }
    }
}

/// `GET /api/events` query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only events of this session (the payload's `session_id`).
    pub session_id: Option<String>,
    /// Only events of this kind (the payload's `hook_event_name`, e.g. `PreToolUse`).
    pub event_type: Option<String>,
    /// Only events posted for this agent id.
    pub agent_id: Option<String>,
    /// Only events posted for this task id.
    pub task_id: Option<String>,
    /// Events per page, 1 – 100 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Hook events, newest first.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "records",
    params(ListQuery),
    responses(
        TenantErrors,
        (status = 200, description = "A page of hook events, newest first", body = HookEventPage),
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
    let filter = HookEventFilter::parse(
        q.session_id,
        q.event_type,
        q.agent_id,
        q.task_id,
        q.limit,
        q.cursor.as_deref(),
    )?;
    let page = run_json(member.scope(&state), move |s| {
        hook_events::list(s, filter).map(HookEventPage::from)
    })
    .await?;
    Ok(json::ok_body(page))
}
