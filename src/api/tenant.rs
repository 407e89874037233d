//! Routes about the resolved tenant itself.

use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::ApiError;
use super::json;
use super::openapi::TenantErrors;
use super::principal::{Principal, TenantMember};
use crate::auth::Role;
use chrono::{DateTime, Utc};

use crate::domain::{Plan, Tenant, TenantId, TenantSlug, TenantStatus};
use crate::tenancy::TenantContext;

/// The tenant card plus the caller's role. The fields are listed rather than
/// `#[serde(flatten)]`ed: flattening goes through a map serializer that cost more than the
/// rest of this route (measured); a test keeps the two in step.
#[derive(Serialize, ToSchema)]
pub struct MemberView<'a> {
    #[schema(value_type = String, format = Uuid)]
    id: TenantId,
    #[schema(value_type = String)]
    slug: &'a TenantSlug,
    name: &'a str,
    status: TenantStatus,
    plan: Plan,
    #[serde(serialize_with = "crate::domain::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: DateTime<Utc>,
    /// The caller's role; only when the request carried credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(current))]
pub struct Doc;

impl<'a> MemberView<'a> {
    fn new(t: &'a Tenant, role: Option<Role>) -> Self {
        MemberView {
            id: t.id,
            slug: &t.slug,
            name: &t.name,
            status: t.status,
            plan: t.plan,
            created_at: t.created_at,
            updated_at: t.updated_at,
            role,
        }
    }
}

/// `GET /api/tenant`: the tenant this request resolved to. Without credentials it is the
/// tenant's public card (what its subdomain already reveals); with them it is a member request
/// — 401/403 for bad credentials or non-members, counted against the tenant's rate limit — and
/// the answer adds the caller's `role`.
#[utoipa::path(get, path = "/api/tenant", tag = "tenant", security((), ("api_token" = []), ("session" = [])),
    responses(
        (status = 200, description = "The tenant's public card; with credentials, plus the caller's `role`", body = MemberView),
        TenantErrors,
    ))]
pub async fn current(req: HttpRequest, ctx: TenantContext) -> Result<HttpResponse, ApiError> {
    if !Principal::presented(&req) {
        return json::ok(&MemberView::new(&ctx.tenant, None));
    }
    let principal = Principal::of(&req).await?;
    let member = TenantMember::of(&req, principal, ctx).await?;
    json::ok(&MemberView::new(&member.ctx.tenant, Some(member.role)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_view_is_the_tenant_card_plus_the_role() {
        let now = crate::domain::now();
        let tenant = Tenant {
            id: TenantId::new(),
            slug: TenantSlug::parse("acme").unwrap(),
            name: "Acme \"Inc\"".into(),
            status: TenantStatus::Active,
            plan: Plan::Team,
            created_at: now,
            updated_at: now,
        };
        let mut expected = serde_json::to_value(&tenant).unwrap();
        expected["role"] = "admin".into();
        let view = serde_json::to_value(MemberView::new(&tenant, Some(Role::Admin))).unwrap();
        assert_eq!(view, expected);
        let card = serde_json::to_value(MemberView::new(&tenant, None)).unwrap();
        assert_eq!(
            card,
            serde_json::to_value(&tenant).unwrap(),
            "anonymous: the card"
        );
    }
}
