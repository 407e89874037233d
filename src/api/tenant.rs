//! Routes about the resolved tenant itself.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use serde::Serialize;

use super::ApiError;
use super::principal::{Principal, TenantMember};
use crate::auth::Role;
use crate::domain::Tenant;
use crate::tenancy::TenantContext;

#[derive(Serialize)]
struct MemberView<'a> {
    #[serde(flatten)]
    tenant: &'a Tenant,
    role: Role,
}

/// `GET /api/tenant`: the tenant this request resolved to. Without credentials it is the
/// tenant's public card (what its subdomain already reveals); with them it is a member request
/// — 401/403 for bad credentials or non-members, counted against the tenant's rate limit — and
/// the answer adds the caller's `role`.
pub async fn current(req: HttpRequest, ctx: TenantContext) -> Result<HttpResponse, ApiError> {
    if !Principal::presented(&req) {
        return Ok(HttpResponse::Ok().json(&*ctx.tenant));
    }
    let principal = Principal::from_request(&req, &mut Payload::None).await?;
    let member = TenantMember::of(&req, principal, ctx).await?;
    Ok(HttpResponse::Ok().json(MemberView {
        tenant: &member.ctx.tenant,
        role: member.role,
    }))
}
