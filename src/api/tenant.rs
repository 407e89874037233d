//! Routes about the resolved tenant itself.

use actix_web::HttpResponse;

use crate::tenancy::TenantContext;

/// `GET /api/tenant`: the tenant this request resolved to.
pub async fn current(ctx: TenantContext) -> HttpResponse {
    HttpResponse::Ok().json(&*ctx.tenant)
}
