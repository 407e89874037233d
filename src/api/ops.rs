//! Operational routes: liveness, readiness, version, metrics.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::ApiError;
use crate::startup::AppState;
use crate::store::blocking;

/// Liveness: the process serves HTTP. Deliberately independent of storage, so one broken
/// tenant (or a slow disk) never gets a healthy process restarted.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: the registry accepts writes.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let registry = state.storage.registry.clone();
    match blocking(move || registry.probe_writable()).await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({
            "status": "ready",
            "checks": { "registry": "ok" },
        }))),
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed: registry not writable");
            Err(ApiError::unavailable("the registry does not accept writes")
                .with_details(json!({ "checks": { "registry": "failed" } })))
        }
    }
}

pub async fn version() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "name": "agenthq", "version": crate::VERSION }))
}

/// Prometheus metrics. With `AGENTHQ_METRICS_TOKEN` set, the bearer token is required;
/// without it, only loopback clients may scrape.
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    match &state.settings.metrics_token {
        Some(token) => {
            let presented = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if !constant_time_eq(presented.as_bytes(), token.expose().as_bytes()) {
                return Err(ApiError::unauthenticated(
                    "metrics need Authorization: Bearer <AGENTHQ_METRICS_TOKEN>",
                ));
            }
        }
        None => {
            let loopback = req.peer_addr().is_some_and(|a| is_loopback(a.ip()));
            if !loopback {
                return Err(ApiError::forbidden(
                    "metrics are served to loopback clients only; set AGENTHQ_METRICS_TOKEN \
                     to scrape from elsewhere",
                ));
            }
        }
    }
    state.refresh_gauges();
    let text = state.metrics.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Compares without an early exit, so the time taken does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn mapped_ipv4_loopback_counts_as_loopback() {
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_loopback("10.0.0.1".parse().unwrap()));
    }
}
