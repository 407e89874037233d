//! The outermost middleware: request ids, the body size guard, access logs and HTTP metrics.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError, web};
use tracing::Instrument;

use super::ApiError;
use crate::auth::token::{self, TokenSecret};
use crate::startup::AppState;
use crate::tenancy::CredentialTenant;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, in request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Keeps a caller's request id when it is a sane token (so ids can be traced across a proxy),
/// otherwise makes a new one.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map_or_else(new_request_id, str::to_owned)
}

/// A UUIDv7 (time-ordered, so ids sort like the log) from a per-thread generator.
///
/// NOTE: `Uuid::now_v7()` serialises every call through a global mutex (its monotonic
/// counter); ids only need to be unique, so each worker thread uses its own random state.
fn new_request_id() -> String {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new(seed());
    }
    fn seed() -> u64 {
        // One OS-random value per thread; `| 1` keeps the xorshift state non-zero.
        (uuid::Uuid::new_v4().as_u128() as u64) | 1
    }
    let random = STATE.with(|state| {
        // xorshift64*: fast and good enough for uniqueness (not for secrets).
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    });
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut bytes = [0u8; 10];
    bytes[..8].copy_from_slice(&random.to_le_bytes());
    bytes[8..].copy_from_slice(&process_id_bits().to_le_bytes());
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// The low bits of the process id, read once: `std::process::id()` is a `getpid` system call
/// each time (seen once per request in `strace -c` of a server under load).
fn process_id_bits() -> u16 {
    static PID: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *PID.get_or_init(|| std::process::id() as u16)
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let id = request_id(&req);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.path(),
    );
    req.extensions_mut().insert(RequestId(id.clone()));

    // Refuse declared oversized bodies before any handler reads them, whatever the route.
    // NOTE: the state is borrowed here and again from the response below, never cloned:
    // a clone bumps a reference count that every worker thread shares, on every request.
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map_or(crate::config::DEFAULT_MAX_BODY_BYTES, |s| {
            s.settings.http.max_body_bytes
        });
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut res = if declared.is_some_and(|len| len > limit as u64) {
        let res = ApiError::payload_too_large(limit).error_response();
        req.into_response(res).map_into_right_body()
    } else {
        next.call(req)
            .instrument(span.clone())
            .await?
            .map_into_left_body()
    };

    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    if let Some(usage) = super::rate_limit::counted(res.request()) {
        super::rate_limit::write_headers(usage, res.headers_mut());
    }
    let elapsed = started.elapsed();
    let status = res.status();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "<unmatched>".to_owned());
    if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
        state.metrics.observe_request(
            res.request().method().as_str(),
            &route,
            status.as_u16(),
            elapsed,
        );
    }
    let _entered = span.enter();
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::error!(
            status = status.as_u16(),
            route,
            latency_ms,
            "request failed"
        );
    } else {
        tracing::info!(status = status.as_u16(), route, latency_ms, "request");
    }
    Ok(res)
}

/// The API token a request presents: `Some(None)` for an `ahq_` value that is not a well-formed
/// token. Taken from `Authorization: Bearer`, or, on `GET /api/ws` only (browsers cannot set
/// headers on a WebSocket), from the `token` query parameter. Request logs never include query
/// strings.
pub fn presented_api_token(req: &actix_web::HttpRequest) -> Option<Option<TokenSecret>> {
    let in_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .map(<[u8]>::trim_ascii)
        .filter(|v| v.starts_with(token::PREFIX.as_bytes()))
        .map(TokenSecret::presented);
    if in_header.is_some() || req.path() != super::ws::PATH {
        return in_header;
    }
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(key, _)| key == "token")
        .map(|(_, value)| TokenSecret::presented(value.trim().as_bytes()))
}

/// Authenticates API tokens (`Authorization: Bearer ahq_…`): a usable token binds the request
/// to its tenant (a [`CredentialTenant`]) and becomes its principal; any other `ahq_` bearer is
/// refused with 401. Requests without one pass through (session cookies are checked by the
/// routes that need them; `/metrics` has its own bearer token).
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let Some(secret) = presented_api_token(req.request()) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let refuse = |req: ServiceRequest, e: ApiError| {
        Ok(req.into_response(e.error_response()).map_into_right_body())
    };
    let Some(secret) = secret else {
        return refuse(req, ApiError::unauthenticated("malformed API token"));
    };
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return refuse(req, ApiError::internal("application state missing"));
    };
    // A token seen recently needs no database round trip (see `auth::token_cache`). The
    // state is only borrowed on that path: cloning it would bump a reference count that
    // every worker shares.
    let found = match state.tokens.cached(&secret) {
        Some(token) => Ok(Ok(Some(token))),
        None => {
            let state = state.clone();
            web::block(move || state.tokens.authenticate(&secret)).await
        }
    };
    match found {
        Ok(Ok(Some(token))) => {
            req.extensions_mut()
                .insert(CredentialTenant(token.tenant.clone()));
            req.extensions_mut().insert(token);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Ok(Ok(None)) => refuse(
            req,
            ApiError::unauthenticated("the API token is invalid, expired or revoked"),
        ),
        Ok(Err(e)) => refuse(req, e.into()),
        Err(e) => refuse(req, ApiError::internal(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_version_7_uuids() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(10) {
            assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
        }
    }
}
