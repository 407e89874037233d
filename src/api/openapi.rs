//! `GET /api/openapi.json`: the OpenAPI 3 document of the whole API, generated from the code
//! (utoipa). Each API module describes its own routes (`Doc`); this merges them. A test checks
//! that every route of the route table is in the document.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{
    admin, agents, audit, auth, board, chat, hook_events, jobs, mcp_servers, members, ops,
    providers, settings, setup, tasks, tenant, tokens, usage, ws,
};

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

/// Builds an error response set: each `(status, description)` answers an [`ErrorBody`].
fn error_responses(
    list: &[(&str, &str)],
) -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    list.iter()
        .map(|(status, description)| {
            let response = ResponseBuilder::new()
                .description(*description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build();
            ((*status).to_owned(), response.into())
        })
        .collect()
}

/// The errors every tenant route can answer, whatever it does: add them to a path's
/// `responses(...)` next to its own.
pub struct TenantErrors;

impl utoipa::IntoResponses for TenantErrors {
    fn responses()
    -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        error_responses(&[
            (
                "400",
                "Invalid input (`VALIDATION_FAILED` naming the fields, `MALFORMED_JSON`) or no \
                 tenant named (`TENANT_REQUIRED`)",
            ),
            ("401", "No or bad credentials (`UNAUTHENTICATED`)"),
            (
                "403",
                "Not a member, the role does not allow it, a missing CSRF token, a token of \
                 another tenant (`FORBIDDEN`, `TENANT_MISMATCH`) or a suspended tenant \
                 (`TENANT_SUSPENDED`)",
            ),
            (
                "404",
                "No such thing in this tenant, or no such tenant (`NOT_FOUND`, `TENANT_NOT_FOUND`)",
            ),
            ("410", "The tenant is deleted (`TENANT_DELETED`)"),
            (
                "413",
                "The body is over the size limit (`PAYLOAD_TOO_LARGE`)",
            ),
            (
                "415",
                "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`)",
            ),
            (
                "429",
                "The tenant's rate limit is used up (`RATE_LIMITED`, with `Retry-After`)",
            ),
            ("503", "The tenant's storage is busy or unavailable"),
        ])
    }
}

/// The errors every platform admin route can answer.
pub struct AdminErrors;

impl utoipa::IntoResponses for AdminErrors {
    fn responses()
    -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        error_responses(&[
            (
                "400",
                "Invalid input (`VALIDATION_FAILED`, `MALFORMED_JSON`)",
            ),
            ("401", "Not signed in (`UNAUTHENTICATED`)"),
            (
                "403",
                "Not a platform admin, or a missing CSRF token (`FORBIDDEN`)",
            ),
            ("404", "No such tenant (`TENANT_NOT_FOUND`)"),
            (
                "413",
                "The body is over the size limit (`PAYLOAD_TOO_LARGE`)",
            ),
            (
                "415",
                "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`)",
            ),
            ("503", "Storage is busy or unavailable"),
        ])
    }
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
            Spec::openapi(),
            ops::Doc::openapi(),
            setup::Doc::openapi(),
            auth::Doc::openapi(),
            tenant::Doc::openapi(),
            admin::Doc::openapi(),
            audit::Doc::openapi(),
            members::Doc::openapi(),
            tokens::Doc::openapi(),
            agents::Doc::openapi(),
            tasks::Doc::openapi(),
            chat::Doc::openapi(),
            board::Doc::openapi(),
            settings::Doc::openapi(),
            mcp_servers::Doc::openapi(),
            providers::Doc::openapi(),
            hook_events::Doc::openapi(),
            jobs::Doc::openapi(),
            usage::Doc::openapi(),
            ws::Doc::openapi(),
        ] {
            doc.merge(part);
        }
        doc
    })
}

#[derive(OpenApi)]
#[openapi(paths(document))]
struct Spec;

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "The OpenAPI 3 document of the whole API", body = Object)))]
pub async fn document() -> Result<HttpResponse, super::ApiError> {
    super::json::ok(&spec())
}
