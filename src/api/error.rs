//! The one mapping from errors to HTTP responses: `{"error": {"code", "message", "details"}}`.
//!
//! Every error path ends here, actix's own included (see `extract.rs`). Internal details are
//! logged once, here at the edge, and never sent to the client.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};

use crate::store::StoreError;
use crate::tenancy::{ResolveError, TenancyError};

#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
    retry_after_secs: Option<u64>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Value::Null,
            retry_after_secs: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            StatusCode::BAD_REQUEST,
            "VALIDATION_FAILED",
            format!("invalid {field}: {message}"),
        )
        .with_details(json!({ "fields": { field: message } }))
    }

    pub fn malformed_json(reason: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
            format!("the request body is not valid JSON: {}", reason.into()),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT", message)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
        .with_details(json!({ "limit_bytes": limit }))
    }

    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            format!("the request body must be sent with Content-Type: {expected}"),
        )
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", message).with_retry_after(1)
    }

    /// 429 `RATE_LIMITED`, with `Retry-After` in whole seconds (rounded up, at least 1).
    pub fn rate_limited(what: &str, retry_after: std::time::Duration) -> Self {
        let secs = crate::domain::time::ceil_secs(retry_after).max(1);
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            format!("too many {what}; retry in {secs} s"),
        )
        .with_details(json!({ "retry_after_secs": secs }))
        .with_retry_after(secs)
    }

    /// A failure whose cause must not reach the client: logs it and answers a bare 500.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error; the server log has the details",
        )
    }

    /// A tenant whose store cannot be used: its file is missing or damaged, or storage is busy.
    /// Only that tenant is affected; the message says so without leaking paths.
    pub fn tenant_unavailable(slug: &str, cause: &StoreError) -> Self {
        let (message, retry) = match cause {
            StoreError::Busy => (format!("tenant '{slug}' is busy; retry shortly"), Some(1)),
            StoreError::Missing(_) => (
                format!(
                    "the data of tenant '{slug}' is missing; an operator must restore it from a backup"
                ),
                None,
            ),
            StoreError::Corrupt(_) => (
                format!(
                    "the data of tenant '{slug}' is damaged; an operator must restore it from a backup"
                ),
                None,
            ),
            StoreError::TooNew { .. } => (
                format!(
                    "the data of tenant '{slug}' was written by a newer AgentHQ; upgrade this server"
                ),
                None,
            ),
            _ => (
                format!("the data of tenant '{slug}' is unavailable"),
                Some(5),
            ),
        };
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TENANT_UNAVAILABLE",
            message,
        )
        .with_details(json!({ "tenant": slug }));
        err.retry_after_secs = retry;
        err
    }

    /// The JSON error for a bare status code (used for actix's own errors).
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::not_found("no such route"),
            StatusCode::METHOD_NOT_ALLOWED => Self::new(
                status,
                "METHOD_NOT_ALLOWED",
                "this route does not accept that method",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(status, "PAYLOAD_TOO_LARGE", "the request body is too large")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                Self::new(status, "UNSUPPORTED_MEDIA_TYPE", "unsupported content type")
            }
            s if s.is_server_error() => Self::new(
                s,
                "INTERNAL",
                "internal error; the server log has the details",
            ),
            s => Self::new(
                s,
                "BAD_REQUEST",
                s.canonical_reason().unwrap_or("bad request").to_owned(),
            ),
        }
    }

    /// The response body, fields in reading order: code, message, details.
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: ErrorFields {
                code: self.code,
                message: &self.message,
                details: &self.details,
            },
        }
    }
}

#[derive(serde::Serialize)]
pub struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

#[derive(serde::Serialize)]
struct ErrorFields<'a> {
    code: &'static str,
    message: &'a str,
    details: &'a Value,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after_secs {
            res.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        res.json(self.body())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("not found"),
            StoreError::Conflict(msg) => ApiError::conflict(msg),
            StoreError::Busy => ApiError::unavailable("storage is busy; retry shortly"),
            StoreError::Missing(_)
            | StoreError::Corrupt(_)
            | StoreError::TooNew { .. }
            | StoreError::Unavailable(_) => {
                tracing::error!(error = %e, "storage unavailable");
                ApiError::unavailable("storage is unavailable")
            }
            StoreError::Migration(_) | StoreError::Internal(_) => ApiError::internal(e),
        }
    }
}

impl From<crate::domain::Invalid> for ApiError {
    fn from(e: crate::domain::Invalid) -> Self {
        ApiError::validation(&e.field, e.message)
    }
}

impl From<crate::services::ServiceError> for ApiError {
    fn from(e: crate::services::ServiceError) -> Self {
        use crate::services::ServiceError;
        match e {
            ServiceError::Invalid(invalid) => invalid.into(),
            ServiceError::NotFound(message) => ApiError::not_found(message),
            ServiceError::Conflict { message, details } => {
                ApiError::conflict(message).with_details(details)
            }
            ServiceError::Forbidden(message) => ApiError::forbidden(message),
            ServiceError::Store(e) => e.into(),
        }
    }
}

impl From<ResolveError> for ApiError {
    fn from(e: ResolveError) -> Self {
        let message = e.to_string();
        match e {
            ResolveError::Required => {
                ApiError::new(StatusCode::BAD_REQUEST, "TENANT_REQUIRED", message)
            }
            ResolveError::Mismatch { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "TENANT_MISMATCH", message)
            }
            ResolveError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "TENANT_NOT_FOUND", message)
            }
            ResolveError::Suspended(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "TENANT_SUSPENDED", message)
            }
            ResolveError::Deleted(_) => ApiError::new(StatusCode::GONE, "TENANT_DELETED", message),
        }
    }
}

impl From<TenancyError> for ApiError {
    fn from(e: TenancyError) -> Self {
        match e {
            TenancyError::Validation { field, message } => ApiError::validation(field, message),
            TenancyError::NotFound(slug) => ApiError::new(
                StatusCode::NOT_FOUND,
                "TENANT_NOT_FOUND",
                format!("no tenant '{slug}'"),
            ),
            TenancyError::Conflict(msg) => ApiError::conflict(msg),
            TenancyError::Store(e) => e.into(),
        }
    }
}

impl From<crate::auth::tokens::TokenError> for ApiError {
    fn from(e: crate::auth::tokens::TokenError) -> Self {
        use crate::auth::tokens::TokenError;
        match e {
            TokenError::Invalid { field, message } => ApiError::validation(field, message),
            TokenError::NotFound(msg) => ApiError::not_found(msg),
            TokenError::Forbidden(msg) => ApiError::forbidden(msg),
            TokenError::Random(_) => ApiError::internal(e),
            TokenError::Store(e) => e.into(),
        }
    }
}
