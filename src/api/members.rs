//! `/api/members`: who belongs to the tenant, with which role.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use super::ApiError;
use super::audit::record;
use super::extract::Deferred;
use super::json;
use super::openapi::{ErrorBody, TenantErrors};
use super::principal::TenantMember;
use crate::audit::Target;
use crate::auth::policy::TenantAction;
use crate::auth::{Email, Role, UserId};
use crate::domain::TenantId;
use crate::startup::AppState;
use crate::store::StoreError;

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(list, add, change, remove))]
pub struct Doc;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// An existing user's email.
    email: String,
    /// `owner`, `admin`, `member` or `viewer`.
    role: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    role: String,
}

#[derive(Serialize, ToSchema)]
pub struct MemberPage {
    items: Vec<crate::store::Member>,
    /// Always null: a tenant's members come in one page.
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberRole {
    #[schema(value_type = String, format = Uuid)]
    user_id: UserId,
    #[schema(value_type = String, format = Email)]
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<Email>,
    role: Role,
}

fn parse_role(s: &str) -> Result<Role, ApiError> {
    s.parse().map_err(|e| ApiError::validation("role", e))
}

fn parse_user_id(s: &str) -> Result<UserId, ApiError> {
    UserId::parse(s).map_err(|_| ApiError::not_found("no such member"))
}

fn member_not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found("no such member"),
        other => other.into(),
    }
}

/// Granting, changing or removing the owner role is for owners only.
fn require_for_role_change(
    member: &TenantMember,
    from: Option<Role>,
    to: Option<Role>,
) -> Result<(), ApiError> {
    member.require(TenantAction::Administer)?;
    if from == Some(Role::Owner) || to == Some(Role::Owner) {
        member.require(TenantAction::ManageOwners)?;
    }
    Ok(())
}

/// The role a user has in the tenant now; 404 when they are not a member.
async fn current_role(
    state: &web::Data<AppState>,
    tenant: TenantId,
    user: UserId,
) -> Result<Role, ApiError> {
    let s = state.clone();
    web::block(move || s.storage.registry.membership_role(tenant, user))
        .await
        .map_err(ApiError::internal)??
        .ok_or_else(|| ApiError::not_found("no such member"))
}

/// The tenant's members and their roles.
#[utoipa::path(get, path = "/api/members", tag = "people and access",
    responses((status = 200, description = "Members", body = MemberPage), TenantErrors))]
pub async fn list(
    member: TenantMember,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let tenant = member.ctx.tenant.id;
    let items = web::block(move || state.storage.registry.list_members(tenant))
        .await
        .map_err(ApiError::internal)??;
    json::ok(&MemberPage {
        items,
        next_cursor: None,
    })
}

/// Adds an existing user by email with a role (admins; owners to grant `owner`).
#[utoipa::path(post, path = "/api/members", tag = "people and access", request_body = AddMember,
    responses(
        (status = 201, description = "The new membership", body = MemberRole),
        (status = 409, description = "Already a member", body = ErrorBody),
        TenantErrors,
    ))]
pub async fn add(
    member: TenantMember,
    state: web::Data<AppState>,
    body: Deferred<web::Json<AddMember>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Administer)?;
    let body = body.get()?;
    let email = Email::parse(&body.email).map_err(|e| ApiError::validation("email", e))?;
    let role = parse_role(&body.role)?;
    require_for_role_change(&member, None, Some(role))?;
    let tenant = member.ctx.tenant.id;
    let added = web::block(move || -> Result<_, ApiError> {
        let registry = &state.storage.registry;
        let (user, _) = registry
            .user_by_email(&email)?
            .ok_or_else(|| ApiError::not_found(format!("no user with email '{email}'")))?;
        if registry.membership_role(tenant, user.id)?.is_some() {
            return Err(ApiError::conflict(format!("{email} is already a member")));
        }
        registry.upsert_membership(tenant, user.id, role)?;
        Ok((
            user.id,
            MemberRole {
                user_id: user.id,
                email: Some(user.email),
                role,
            },
        ))
    })
    .await
    .map_err(ApiError::internal)??;
    let (user_id, added) = added;
    let entry = member.audit("member.added", Target::new("user", user_id));
    record(&member, entry.with_details(json!({ "role": role }))).await?;
    json::created(&added)
}

/// Changes a member's role; the last owner cannot be demoted.
#[utoipa::path(patch, path = "/api/members/{user_id}", tag = "people and access",
    params(("user_id" = String, Path)), request_body = ChangeRole,
    responses(
        (status = 200, description = "The new role", body = MemberRole),
        (status = 409, description = "It would leave the tenant without an owner", body = ErrorBody),
        TenantErrors,
    ))]
pub async fn change(
    member: TenantMember,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Deferred<web::Json<ChangeRole>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Administer)?;
    let user = parse_user_id(&path)?;
    let role = parse_role(&body.get()?.role)?;
    let tenant = member.ctx.tenant.id;
    let current = current_role(&state, tenant, user).await?;
    require_for_role_change(&member, Some(current), Some(role))?;
    let s = state.clone();
    web::block(move || {
        s.storage
            .registry
            .change_membership(tenant, user, Some(role))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(member_not_found)?;
    state.tokens.invalidate();
    let entry = member.audit("member.role_changed", Target::new("user", user));
    record(
        &member,
        entry.with_details(json!({ "from": current, "to": role })),
    )
    .await?;
    json::ok(&MemberRole {
        user_id: user,
        email: None,
        role,
    })
}

/// Removes a member; the last owner cannot be removed.
#[utoipa::path(delete, path = "/api/members/{user_id}", tag = "people and access",
    params(("user_id" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 409, description = "It would leave the tenant without an owner", body = ErrorBody),
        TenantErrors,
    ))]
pub async fn remove(
    member: TenantMember,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = parse_user_id(&path)?;
    let tenant = member.ctx.tenant.id;
    let current = current_role(&state, tenant, user).await?;
    require_for_role_change(&member, Some(current), None)?;
    let s = state.clone();
    web::block(move || s.storage.registry.change_membership(tenant, user, None))
        .await
        .map_err(ApiError::internal)?
        .map_err(member_not_found)?;
    state.tokens.invalidate();
    state.hub.close_member(tenant, user);
    let entry = member.audit("member.removed", Target::new("user", user));
    record(&member, entry.with_details(json!({ "role": current }))).await?;
    Ok(HttpResponse::NoContent().finish())
}
