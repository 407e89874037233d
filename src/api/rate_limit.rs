//! Rate limits at the HTTP edge: which requests count against which quota, and the
//! `RateLimit-*` headers that tell clients where they stand.
//!
//! A check records the caller's [`Usage`] in the request; [`super::middleware::observe`] turns
//! it into headers on the response, whether the request succeeded or was refused. The headers
//! follow the IETF draft "RateLimit header fields for HTTP": `RateLimit-Limit` (the burst),
//! `RateLimit-Remaining`, `RateLimit-Reset` (seconds until the burst is whole again) and, when
//! the quota is used up, `RateLimit-Policy` (`<burst>;w=<seconds to refill it>`).

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpMessage, HttpRequest};

use super::ApiError;
use crate::domain::Tenant;
use crate::domain::time::ceil_secs;
use crate::ops::rate_limit::{RateLimited, Usage};
use crate::startup::AppState;

const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// The quota a request was counted against, in request extensions.
#[derive(Debug, Clone, Copy)]
struct Counted(Usage);

/// `n` as a header value, formatted on the stack and copied once. (`HeaderValue::from(n)`
/// grows a `BytesMut` to format into: a second allocation, three times on every counted
/// response; `benches/auth_instructions.sh` shows the difference.)
fn number(n: impl itoa::Integer) -> HeaderValue {
    let mut buf = itoa::Buffer::new();
    HeaderValue::from_str(buf.format(n)).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// Where the request stands against the quota it was counted against, if any.
pub fn counted(req: &HttpRequest) -> Option<Usage> {
    req.extensions().get::<Counted>().map(|c| c.0)
}

/// Writes the `RateLimit-*` headers for `usage`: limit, remaining and reset on every counted
/// response, and the policy as well once the quota is used up (it only restates the quota).
pub fn write_headers(usage: Usage, headers: &mut HeaderMap) {
    headers.insert(LIMIT, number(usage.limit));
    headers.insert(REMAINING, number(usage.remaining));
    headers.insert(RESET, number(ceil_secs(usage.reset_after)));
    if usage.remaining > 0 {
        return;
    }
    let policy = format!("{};w={}", usage.limit, ceil_secs(usage.window).max(1));
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(POLICY, value);
    }
}

/// Records a decision in the request (for the headers) and, for a refusal, in the metrics;
/// `what` names what was limited, for the error message.
fn record(
    req: &HttpRequest,
    state: &AppState,
    limit: &'static str,
    what: impl FnOnce() -> String,
    decision: Result<Usage, RateLimited>,
) -> Result<(), ApiError> {
    match decision {
        Ok(usage) => {
            req.extensions_mut().insert(Counted(usage));
            Ok(())
        }
        Err(refused) => {
            req.extensions_mut().insert(Counted(refused.usage));
            state.metrics.count_rate_limited(limit);
            Err(ApiError::rate_limited(&what(), refused.retry_after))
        }
    }
}

/// Counts an authenticated request against its tenant's plan quota.
pub fn check_tenant(req: &HttpRequest, state: &AppState, tenant: &Tenant) -> Result<(), ApiError> {
    let decision = state.rate_limits.tenant_request(tenant.id, tenant.plan);
    record(
        req,
        state,
        "tenant",
        || format!("requests for tenant '{}' on its plan", tenant.slug),
        decision,
    )
}

/// Counts a sign-in (or setup) attempt against the client's address.
pub fn check_login(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    // A request without a peer address (not over TCP) has no key; it cannot come from outside.
    let Some(ip) = super::client_ip(req) else {
        return Ok(());
    };
    let decision = state.rate_limits.login_attempt(ip);
    record(
        req,
        state,
        "login",
        || "sign-in attempts from this address".to_owned(),
        decision,
    )
}
