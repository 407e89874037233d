//! `GET /api/ws`: a tenant's events, live, over a WebSocket (see docs/realtime.md).
//!
//! The handler authenticates like any tenant route (session cookie, or an API token in the
//! `Authorization` header or the `token` query parameter), fixes the tenant and the member's
//! credential for the socket's whole life, registers it with the hub (the connection cap) and
//! hands it to [`socket::run`]. Nothing a client sends later can change its tenant.

mod socket;
mod test_events;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use super::ApiError;
use super::extract::Deferred;
use super::openapi::{ErrorBody, TenantErrors};
use super::principal::{Principal, TenantMember};
use super::routes::{Access, Endpoint, endpoint};
use crate::auth::token::TokenSecret;
use crate::realtime::{Credential, Refused};
use crate::startup::AppState;

pub const PATH: &str = "/api/ws";

/// `Retry-After` of a refused connection.
const RETRY_AFTER_FULL_SECS: u64 = 5;

/// This module's routes (merged into the route table).
pub fn endpoints() -> Vec<Endpoint> {
    use actix_web::http::Method as M;
    vec![
        endpoint(M::GET, PATH, Access::Tenant, |r| r.to(connect)),
        endpoint(M::POST, test_events::PATH, Access::PlatformAdmin, |r| {
            r.to(test_events::publish)
        }),
    ]
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(connect, test_events::publish))]
pub struct Doc;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// Resume: replay the events after this sequence number (the `seq` of the last event the
    /// client saw), or get a `resync` message when they are no longer kept.
    pub since: Option<u64>,
    /// An API token, for clients that cannot send an `Authorization` header (browsers).
    #[allow(
        dead_code,
        reason = "read by the authentication middleware; declared for the docs"
    )]
    pub token: Option<String>,
}

/// What the socket was opened with, kept to check it again while the socket lives.
pub(crate) enum Secret {
    Token(TokenSecret),
    Session(crate::auth::session::SessionSecret),
}

/// Opens the tenant's event stream (WebSocket upgrade). Server messages are
/// `{type, tenant, data, at, seq}`; see docs/realtime.md for the client messages, topics,
/// resuming and close codes.
#[utoipa::path(get, path = "/api/ws", tag = "realtime", params(WsQuery),
    responses(
        TenantErrors,
        (status = 101, description = "Switching protocols: the socket carries the tenant's events"),
        (status = 400, description = "Not a WebSocket upgrade, or `since` is not a number", body = ErrorBody),
        (status = 403, description = "Cookie sign-in from another site's page (`Origin` not allowed)", body = ErrorBody),
        (status = 503, description = "The connection cap is reached, or the server is stopping (`Retry-After`)", body = ErrorBody),
    )
)]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    member: TenantMember,
    state: web::Data<AppState>,
    query: Deferred<web::Query<WsQuery>>,
) -> Result<HttpResponse, ApiError> {
    let since = query.get()?.since;
    let (credential, secret) = match &member.principal {
        Principal::Token(token) => {
            let secret = super::middleware::presented_api_token(&req)
                .flatten()
                .ok_or_else(|| ApiError::internal("authenticated token not presented"))?;
            (Credential::Token(token.id.clone()), Secret::Token(secret))
        }
        Principal::User(_) => {
            check_origin(&req, &state)?;
            let secret = super::auth::presented_secret(&req)
                .ok_or_else(|| ApiError::internal("authenticated session not presented"))?;
            (
                Credential::Session(secret.id_hash()),
                Secret::Session(secret),
            )
        }
    };
    // Not an upgrade: refused before the socket counts against the cap.
    let (response, session, stream) =
        actix_ws::handle(&req, body).map_err(|e| ApiError::validation("upgrade", e.to_string()))?;
    let tenant = member.ctx.tenant.clone();
    let registration = state
        .hub
        .register(
            tenant.id,
            tenant.slug.as_str().into(),
            member.principal.user_id(),
            credential,
        )
        .map_err(|refused| match refused {
            Refused::Full => {
                ApiError::unavailable("too many open WebSocket connections; retry later")
                    .with_retry_after(RETRY_AFTER_FULL_SECS)
            }
            Refused::ShuttingDown => {
                ApiError::unavailable("the server is shutting down; retry later")
                    .with_retry_after(RETRY_AFTER_FULL_SECS)
            }
        })?;
    let subscription = state.events.resume(tenant.id, since);
    let connection = socket::Socket {
        state: state.clone(),
        scope: member.scope(&state),
        secret,
        registration,
        session,
        stream: stream.max_frame_size(socket::MAX_CLIENT_MESSAGE),
    };
    actix_web::rt::spawn(connection.run(subscription));
    Ok(response)
}

/// Refuses a cookie-authenticated upgrade from a page of another site: browsers send cookies
/// with cross-site WebSocket handshakes, and unlike `fetch` nothing else stops such a page
/// from reading the stream. Allowed: no `Origin` (not a browser), the server's own origin, or
/// a configured CORS origin.
fn check_origin(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let host = req.connection_info().host().to_owned();
    let same_host = url::Url::parse(origin)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            })
        })
        .is_some_and(|o| o.eq_ignore_ascii_case(&host));
    let configured = state
        .settings
        .http
        .cors_allowed_origins
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(origin));
    if same_host || configured {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this page's origin may not open the event stream with a session cookie",
        ))
    }
}
