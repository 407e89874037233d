//! Who is making a request: an API token (set by the authentication middleware) or a signed-in
//! user (session cookie). Cookie-authenticated requests that change something must carry the
//! session's CSRF token.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::ApiError;
use crate::auth::User;
use crate::auth::session::{self, SessionSecret};
use crate::auth::token::ApiToken;
use crate::startup::AppState;

#[derive(Debug, Clone)]
pub enum Principal {
    Token(ApiToken),
    User(User),
}

impl Principal {
    pub fn is_platform_admin(&self) -> bool {
        matches!(self, Principal::User(u) if u.is_platform_admin)
    }
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if let Some(token) = req.extensions().get::<ApiToken>().cloned() {
                return Ok(Principal::Token(token));
            }
            let secret = req
                .cookie(session::COOKIE)
                .and_then(|c| SessionSecret::presented(c.value()))
                .ok_or_else(|| {
                    ApiError::unauthenticated("sign in, or send Authorization: Bearer <API token>")
                })?;
            if is_unsafe(req.method()) {
                let presented = req
                    .headers()
                    .get(super::auth::CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !session::constant_time_eq(presented.as_bytes(), secret.csrf_token().as_bytes())
                {
                    return Err(ApiError::forbidden(
                        "a signed-in request that changes something needs the X-CSRF-Token header",
                    ));
                }
            }
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| ApiError::internal("application state missing"))?;
            let signed_in = web::block(move || state.sessions.authenticate(&secret))
                .await
                .map_err(ApiError::internal)??
                .ok_or_else(|| ApiError::unauthenticated("the session has ended; sign in again"))?;
            Ok(Principal::User(signed_in.user))
        })
    }
}

/// A principal that is a platform admin (only signed-in users can be).
pub struct PlatformAdmin(pub User);

impl FromRequest for PlatformAdmin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let principal = Principal::from_request(req, payload);
        Box::pin(async move {
            match principal.await? {
                Principal::User(user) if user.is_platform_admin => Ok(PlatformAdmin(user)),
                _ => Err(ApiError::forbidden("only platform admins manage tenants")),
            }
        })
    }
}
