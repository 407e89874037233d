//! `GET /api/setup` (is a setup link pending?) and `POST /api/setup` (use it: create the first
//! platform admin). See `auth::setup`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::ApiError;
use super::extract::Deferred;
use super::json;
use super::openapi::ErrorBody;
use crate::audit::{Actor, ActorKind, AuditEntry, Target};
use crate::auth::setup::SetupError;
use crate::auth::users::UserError;
use crate::auth::{Email, Password, User};
use crate::startup::AppState;

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(status, complete))]
pub struct Doc;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteSetup {
    /// The token of the one-time setup link the server printed.
    token: String,
    email: String,
    #[schema(format = Password)]
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SetupStatus {
    /// Whether a setup link is pending (no platform admin exists yet).
    required: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SetupDone {
    user: User,
}

#[utoipa::path(get, path = "/api/setup", tag = "identity", security(()),
    responses((status = 200, description = "Whether first-run setup is pending", body = SetupStatus)))]
pub async fn status(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    json::ok(&SetupStatus {
        required: state.setup.is_pending(),
    })
}

/// Uses the one-time setup link: creates the first platform admin.
#[utoipa::path(post, path = "/api/setup", tag = "identity", security(()),
    request_body = CompleteSetup,
    responses(
        (status = 201, description = "The first platform admin", body = SetupDone),
        (status = 400, description = "Invalid email or password", body = ErrorBody),
        (status = 403, description = "Setup is complete, or the link is wrong", body = ErrorBody),
        (status = 409, description = "The email is taken", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
    ))]

pub async fn complete(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Deferred<web::Json<CompleteSetup>>,
) -> Result<HttpResponse, ApiError> {
    if !state.setup.is_pending() {
        return Err(ApiError::forbidden("set-up is complete; sign in instead"));
    }
    // Each attempt costs a password hash: limited like sign-in.
    super::rate_limit::check_login(&req, &state)?;
    let CompleteSetup {
        token,
        email,
        password,
    } = body.get()?.into_inner();
    let email = Email::parse(&email).map_err(|e| ApiError::validation("email", e))?;
    let password = Password::parse(password).map_err(|e| ApiError::validation("password", e))?;
    let s = state.clone();
    let user = web::block(move || s.setup.complete(&token, &s.users, email, &password))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            SetupError::InvalidLink => ApiError::forbidden(e.to_string()),
            SetupError::User(UserError::Conflict(msg)) => ApiError::conflict(msg),
            SetupError::User(UserError::Store(e)) => e.into(),
            SetupError::User(e) => ApiError::internal(e),
        })?;
    tracing::info!(user_id = %user.id, "first platform admin created through the setup link");
    let actor = Actor {
        kind: ActorKind::User,
        id: Some(user.id.to_string()),
    };
    let entry = AuditEntry::new(
        &actor,
        &super::audit::origin(&req),
        "setup.completed",
        Target::new("user", user.id),
    );
    super::audit::record_platform(&state, entry).await?;
    json::created(&SetupDone { user })
}
