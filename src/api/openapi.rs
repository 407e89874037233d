//! `GET /api/openapi.json`: the OpenAPI 3 document of the whole API, generated from the code
//! (utoipa). Each API module describes its own routes (`Doc`); this merges them. A test checks
//! that every route of the route table is in the document.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{agents, board, chat, hook_events, mcp_servers, settings, tasks};

/// Every error response: `{"error": {"code", "message", "details"}}` (CONTRACT.md).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorFields,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorFields {
    /// E.g. `VALIDATION_FAILED`, `NOT_FOUND`, `CONFLICT`, `RATE_LIMITED`.
    pub code: String,
    pub message: String,
    /// Code-specific facts, e.g. `{"fields": {"name": "must not be empty"}}`; may be null.
    #[schema(value_type = Object, nullable)]
    pub details: serde_json::Value,
}

/// The two ways to authenticate: an API token (`Authorization: Bearer ahq_…`) or the session
/// cookie of a signed-in browser (with `X-CSRF-Token` on unsafe methods).
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("agenthq_session"))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    modifiers(&Security),
    security(("api_token" = []), ("session" = [])),
    components(schemas(ErrorBody, ErrorFields)),
    info(
    title = "AgentHQ API",
    description = "The REST API of AgentHQ: a self-hosted platform for running AI-agent \
                   organisations. Errors are always `{\"error\": {\"code\", \"message\", \
                   \"details\"}}`; lists are `{\"items\", \"next_cursor\"}`."
    )
)]
struct Root;

/// The whole document, built once.
pub fn spec() -> &'static utoipa::openapi::OpenApi {
    static SPEC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    SPEC.get_or_init(|| {
        let mut doc = Root::openapi();
        doc.info.version = crate::VERSION.to_owned();
        for part in [
            agents::Doc::openapi(),
            tasks::Doc::openapi(),
            chat::Doc::openapi(),
            board::Doc::openapi(),
            settings::Doc::openapi(),
            mcp_servers::Doc::openapi(),
            hook_events::Doc::openapi(),
        ] {
            doc.merge(part);
        }
        doc
    })
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(spec())
}
