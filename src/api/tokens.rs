//! `/api/tokens`: a tenant's API tokens. Members manage their own; admins see and revoke every
//! token of the tenant. The secret appears once, in the response that creates it.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use super::ApiError;
use super::audit::record;
use super::extract::Deferred;
use super::json;
use super::openapi::TenantErrors;
use super::principal::TenantMember;
use crate::audit::Target;
use crate::auth::Role;
use crate::auth::policy::TenantAction;
use crate::auth::token::ApiToken;
use crate::auth::tokens::Issue;
use crate::domain::now;
use crate::startup::AppState;
use crate::store::StoreError;

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(list, create, revoke))]
pub struct Doc;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: String,
    /// Defaults to the creator's role; never higher.
    role: Option<String>,
    expires_in_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenPage<'a> {
    items: Vec<&'a ApiToken>,
    /// Always null: a tenant's tokens come in one page.
    next_cursor: Option<String>,
}

/// A new token with its secret: shown in this response only.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken<'a> {
    #[serde(flatten)]
    details: &'a ApiToken,
    /// `ahq_…`: send as `Authorization: Bearer <token>`. Shown once.
    token: &'a str,
}

/// Others' tokens are an admin's business; a member only sees and revokes their own.
fn may_manage(member: &TenantMember, token: &ApiToken) -> bool {
    token.user_id == member.principal.user_id() || member.may(TenantAction::Administer)
}

/// The caller's tokens (admins: every token of the tenant), revoked and expired included.
#[utoipa::path(get, path = "/api/tokens", tag = "people and access",
    responses((status = 200, description = "Tokens, newest first", body = TokenPage), TenantErrors))]
pub async fn list(
    member: TenantMember,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let tenant = member.ctx.tenant.id;
    let tokens = web::block(move || state.storage.registry.api_tokens(tenant))
        .await
        .map_err(ApiError::internal)??;
    let items: Vec<&ApiToken> = tokens.iter().filter(|t| may_manage(&member, t)).collect();
    json::ok(&TokenPage {
        items,
        next_cursor: None,
    })
}

/// Creates an API token bound to this tenant, with a role no higher than the caller's.
#[utoipa::path(post, path = "/api/tokens", tag = "people and access", request_body = CreateToken,
    responses((status = 201, description = "The token and, this once, its secret", body = CreatedToken), TenantErrors))]
pub async fn create(
    member: TenantMember,
    state: web::Data<AppState>,
    body: Deferred<web::Json<CreateToken>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let body = body.get()?.into_inner();
    let role = body
        .role
        .as_deref()
        .map(|r| {
            r.parse::<Role>()
                .map_err(|e| ApiError::validation("role", e))
        })
        .transpose()?;
    let issue = Issue {
        tenant_id: member.ctx.tenant.id,
        tenant: member.ctx.tenant.slug.to_string(),
        user_id: member.principal.user_id(),
        // For a token creating a token this is the token's own (effective) role.
        creator_role: member.role,
        name: body.name,
        role,
        expires_in_days: body.expires_in_days,
    };
    let (token, secret) = web::block(move || state.tokens.issue(issue))
        .await
        .map_err(ApiError::internal)??;
    let entry = member.audit("token.created", Target::new("token", &token.id));
    let details = json!({ "name": token.name, "role": token.role, "expires_at": token.expires_at.map(|t| crate::domain::time::format_rfc3339(&t)) });
    record(&member, entry.with_details(details)).await?;
    json::created(&CreatedToken {
        details: &token,
        token: secret.expose(),
    })
}

/// Revokes a token (effective on its next request).
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "people and access",
    params(("id" = String, Path)),
    responses((status = 204, description = "Revoked"), TenantErrors))]
pub async fn revoke(
    member: TenantMember,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Work)?;
    let id = path.into_inner();
    let tenant = member.ctx.tenant.id;
    let s = state.clone();
    let lookup = id.clone();
    let token = web::block(move || s.storage.registry.api_token(tenant, &lookup))
        .await
        .map_err(ApiError::internal)??
        .filter(|t| may_manage(&member, t))
        .ok_or_else(|| ApiError::not_found("no such token"))?;
    let s = state.clone();
    let credential = crate::realtime::Credential::Token(id.clone());
    let revoked = web::block(move || s.storage.registry.revoke_api_token(tenant, &id, now()))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found("no such token"),
            other => other.into(),
        })?;
    state.tokens.invalidate();
    state.hub.close_credential(&credential);
    if token.revoked_at.is_none() {
        let entry = member.audit("token.revoked", Target::new("token", &revoked.id));
        record(&member, entry.with_details(json!({ "name": revoked.name }))).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}
