//! `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/auth/me`.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use crate::audit::{Actor, ActorKind, AuditEntry, Target};
use crate::auth::login::{LoginError, SignedIn};
use crate::auth::session::{self, SessionSecret};
use crate::startup::AppState;

pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
}

fn signed_in_body(s: &SignedIn, secret: &SessionSecret) -> serde_json::Value {
    json!({
        "user": s.user,
        "tenants": s.tenants.iter().map(|(slug, role)| json!({"slug": slug, "role": role})).collect::<Vec<_>>(),
        "csrf_token": secret.csrf_token(),
    })
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
                .json(signed_in_body(&signed_in, &secret)))
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

pub async fn me(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (secret, signed_in) = require_session(&req, &state).await?;
    Ok(HttpResponse::Ok().json(signed_in_body(&signed_in, &secret)))
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (secret, signed_in) = require_session(&req, &state).await?;
    require_csrf(&req, &secret)?;
    let s = state.clone();
    web::block(move || s.sessions.logout(&secret))
        .await
        .map_err(ApiError::internal)??;
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
