//! `POST /api/admin/realtime/test-events`: a platform admin publishes test events to tenants'
//! streams, to check a deployment's realtime path end to end (proxy, TLS, client) without
//! changing any data, and to load the hub alone in benchmarks (benches/ws.sh).
//!
//! The events are `realtime.test` events, numbered and kept for resuming like any other. They
//! change nothing stored, so they are not audited.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::api::extract::Deferred;
use crate::api::openapi::AdminErrors;
use crate::api::principal::PlatformAdmin;
use crate::api::{ApiError, json};
use crate::domain::TenantStatus;
use crate::startup::AppState;

pub const PATH: &str = "/api/admin/realtime/test-events";

/// The event type clients see.
pub const KIND: &str = "realtime.test";

/// Most events one request may publish.
pub const MAX_EVENTS: usize = 1000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestEvents {
    /// 1 – 1,000 events, published in this order.
    events: Vec<TestEvent>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestEvent {
    /// The tenant's slug; it must be active.
    tenant: String,
    /// Any JSON value, sent as the event's `data`.
    #[serde(default)]
    data: Value,
}

#[derive(Serialize, ToSchema)]
pub struct Published {
    /// How many events were published.
    published: usize,
}

/// Publishes `realtime.test` events to the named tenants' streams.
#[utoipa::path(post, path = "/api/admin/realtime/test-events", tag = "platform admin",
    request_body = TestEvents,
    responses(
        (status = 202, description = "Published (sockets receive them as `realtime.test`)", body = Published),
        AdminErrors,
    ))]
pub async fn publish(
    _admin: PlatformAdmin,
    state: web::Data<AppState>,
    body: Deferred<web::Json<TestEvents>>,
) -> Result<HttpResponse, ApiError> {
    let events = body.get()?.into_inner().events;
    if events.is_empty() || events.len() > MAX_EVENTS {
        return Err(ApiError::validation(
            "events",
            format!("give between 1 and {MAX_EVENTS} events"),
        ));
    }
    // Every tenant is checked before anything is published: a bad request publishes nothing.
    let mut targets = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        match state.directory.get(&event.tenant) {
            Some(t) if t.status == TenantStatus::Active => targets.push(t),
            _ => {
                return Err(ApiError::validation(
                    &format!("events[{i}].tenant"),
                    "no active tenant has this slug",
                ));
            }
        }
    }
    let published = events.len();
    for (event, tenant) in events.into_iter().zip(targets) {
        state
            .events
            .publish(tenant.id, tenant.slug.as_str(), KIND, event.data);
    }
    json::respond(
        actix_web::http::StatusCode::ACCEPTED,
        &Published { published },
    )
}
