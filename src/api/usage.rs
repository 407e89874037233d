//! `GET /api/usage`: what the organisation's model calls used and cost.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::ApiError;
use super::extract::Deferred;
use super::json;
use super::openapi::{ErrorBody, TenantErrors};
use super::principal::TenantMember;
use super::routes::{Access, Endpoint, endpoint};
use super::service::run_json;
use crate::auth::policy::TenantAction;
use crate::services::usage::{self, UsageQuery, UsageReport};
use crate::startup::AppState;
use crate::store::runs::{UsageBucket, UsageGroup};

pub fn endpoints() -> Vec<Endpoint> {
    use actix_web::http::Method as M;
    vec![endpoint(M::GET, "/api/usage", Access::Tenant, |r| {
        r.to(report)
    })]
}

#[derive(OpenApi)]
#[openapi(
    paths(report),
    components(schemas(UsageReport, UsageBucket, UsageGroup))
)]
pub struct Doc;

/// Model calls grouped by day, agent or model: calls, tokens (cache included) and cost.
#[utoipa::path(
    get,
    path = "/api/usage",
    tag = "records",
    params(UsageQuery),
    responses(
        TenantErrors,
        (status = 200, description = "Usage per group, with the total", body = UsageReport),
        (status = 400, description = "A query parameter is invalid (`details.fields` names it)", body = ErrorBody),
    )
)]
pub async fn report(
    member: TenantMember,
    state: web::Data<AppState>,
    query: Deferred<web::Query<UsageQuery>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let q = query.get()?.into_inner();
    let report = run_json(member.scope(&state), move |s| usage::report(s, q)).await?;
    Ok(json::ok_body(report))
}
