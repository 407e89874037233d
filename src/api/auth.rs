//! `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/auth/me`.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::ApiError;
use super::json;
use super::openapi::ErrorBody;
use crate::audit::{Actor, ActorKind, AuditEntry, Target};
use crate::auth::login::{LoginError, SignedIn};
use crate::auth::session::{self, SessionSecret};
use crate::auth::{Role, User};
use crate::startup::AppState;

pub const CSRF_HEADER: &str = "x-csrf-token";

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(login, logout, me))]
pub struct Doc;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    #[schema(format = Password)]
    password: String,
}

/// The signed-in user, their tenants and the CSRF token for unsafe requests.
#[derive(Serialize, ToSchema)]
pub struct SignedInView<'a> {
    user: &'a User,
    tenants: Vec<TenantRole<'a>>,
    /// Send as `X-CSRF-Token` with every POST/PUT/PATCH/DELETE of this session.
    csrf_token: String,
}

#[derive(Serialize, ToSchema)]
pub struct TenantRole<'a> {
    slug: &'a str,
    role: Role,
}

fn signed_in_body<'a>(s: &'a SignedIn, secret: &SessionSecret) -> SignedInView<'a> {
    SignedInView {
        user: &s.user,
        tenants: s
            .tenants
            .iter()
            .map(|(slug, role)| TenantRole { slug, role: *role })
            .collect(),
        csrf_token: secret.csrf_token(),
    }
}

fn session_cookie(state: &AppState, value: String, max_age: CookieDuration) -> Cookie<'static> {
    let secure = state
        .settings
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    Cookie::build(session::COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(max_age)
        .finish()
}

fn user_actor(s: &SignedIn) -> Actor {
    Actor {
        kind: ActorKind::User,
        id: Some(s.user.id.to_string()),
    }
}

/// The session secret in the request's cookie, if it has the shape of one.
pub(super) fn presented_secret(req: &HttpRequest) -> Option<SessionSecret> {
    req.cookie(session::COOKIE)
        .and_then(|c| SessionSecret::presented(c.value()))
}

/// Signs in: sets the HttpOnly `agenthq_session` cookie.
#[utoipa::path(post, path = "/api/auth/login", tag = "identity", security(()),
    request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SignedInView),
        (status = 400, description = "Invalid input (`VALIDATION_FAILED`, `MALFORMED_JSON`)", body = ErrorBody),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address or for this account", body = ErrorBody),
    ))]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    super::rate_limit::check_login(&req, &state)?;
    let LoginBody { email, password } = body.into_inner();
    let previous = presented_secret(&req);
    let s = state.clone();
    let result = web::block(move || {
        // Rotation: a session the browser already had ends when a new one starts.
        if let Some(old) = previous {
            s.sessions.logout(&old)?;
        }
        s.sessions.login(&email, password)
    })
    .await
    .map_err(ApiError::internal)?;
    match result {
        Ok((signed_in, secret)) => {
            let entry = AuditEntry::new(
                &user_actor(&signed_in),
                &super::audit::origin(&req),
                "session.created",
                Target::new("user", signed_in.user.id),
            );
            super::audit::record_platform(&state, entry).await?;
            let max_age = CookieDuration::seconds(session::ABSOLUTE_LIFETIME.num_seconds());
            Ok(HttpResponse::Ok()
                .cookie(session_cookie(&state, secret.expose().to_owned(), max_age))
                .content_type(ContentType::json())
                .body(json::body(&signed_in_body(&signed_in, &secret))?))
        }
        Err(LoginError::InvalidCredentials) => {
            Err(ApiError::unauthenticated("wrong email or password"))
        }
        Err(LoginError::Throttled(wait)) => {
            state.metrics.count_rate_limited("account");
            Err(ApiError::rate_limited(
                "failed sign-ins for this account",
                wait,
            ))
        }
        Err(LoginError::Store(e)) => Err(e.into()),
        Err(e @ LoginError::Random(_)) => Err(ApiError::internal(e)),
    }
}

/// The session of a request and its user, or 401.
async fn require_session(
    req: &HttpRequest,
    state: &web::Data<AppState>,
) -> Result<(SessionSecret, SignedIn), ApiError> {
    let secret = presented_secret(req).ok_or_else(|| ApiError::unauthenticated("not signed in"))?;
    let s = state.clone();
    let lookup = secret.clone();
    let signed_in = web::block(move || s.sessions.authenticate(&lookup))
        .await
        .map_err(ApiError::internal)??
        .ok_or_else(|| ApiError::unauthenticated("the session has ended; sign in again"))?;
    Ok((secret, signed_in))
}

/// Refuses (403) a cookie-authenticated request that does not carry the session's CSRF token.
pub(super) fn require_csrf(req: &HttpRequest, secret: &SessionSecret) -> Result<(), ApiError> {
    let presented = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if session::constant_time_eq(presented.as_bytes(), secret.csrf_token().as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "a signed-in request that changes something needs the X-CSRF-Token header",
        ))
    }
}

/// The signed-in user (session cookie).
#[utoipa::path(get, path = "/api/auth/me", tag = "identity", security(("session" = [])),
    responses(
        (status = 200, description = "The signed-in user", body = SignedInView),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn me(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (secret, signed_in) = require_session(&req, &state).await?;
    json::ok(&signed_in_body(&signed_in, &secret))
}

/// Ends the session (server-side) and clears the cookie.
#[utoipa::path(post, path = "/api/auth/logout", tag = "identity", security(("session" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "The X-CSRF-Token header is missing or wrong", body = ErrorBody),
    ))]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (secret, signed_in) = require_session(&req, &state).await?;
    require_csrf(&req, &secret)?;
    let s = state.clone();
    let credential = crate::realtime::Credential::Session(secret.id_hash());
    web::block(move || s.sessions.logout(&secret))
        .await
        .map_err(ApiError::internal)??;
    state.hub.close_credential(&credential);
    let entry = AuditEntry::new(
        &user_actor(&signed_in),
        &super::audit::origin(&req),
        "session.ended",
        Target::new("user", signed_in.user.id),
    );
    super::audit::record_platform(&state, entry).await?;
    Ok(HttpResponse::NoContent()
        .cookie(session_cookie(&state, String::new(), CookieDuration::ZERO))
        .finish())
}
