//! `hook_events` routes: handlers only (parse, call `services::hook_events`, shape the response).

use super::routes::Endpoint;

/// This module's routes (merged into the route table).
pub fn endpoints() -> Vec<Endpoint> {
    vec![]
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Doc;
