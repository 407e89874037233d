//! `providers` routes: handlers only (parse, call `services::providers`, shape the response).
//! Everyone in the tenant reads the providers (never their keys); admins and owners change
//! and test them.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use super::ApiError;
use super::extract::Deferred;
use super::json;
use super::openapi::{ErrorBody, TenantErrors};
use super::principal::TenantMember;
use super::routes::{Access, Endpoint, endpoint};
use super::service::{run, run_json};
use crate::auth::policy::TenantAction;
use crate::domain::PageRequest;
use crate::domain::provider::{
    ModelPrice, NewProvider, Provider, ProviderKind, ProviderPage, ProviderPatch,
};
use crate::services::providers::{self, TestError, TestResult};
use crate::startup::AppState;

/// This module's routes (merged into the route table).
pub fn endpoints() -> Vec<Endpoint> {
    use actix_web::http::Method as M;
    vec![
        endpoint(M::GET, "/api/providers", Access::Tenant, |r| r.to(list)),
        endpoint(M::POST, "/api/providers", Access::Tenant, |r| r.to(create)),
        endpoint(M::GET, "/api/providers/{id}", Access::Tenant, |r| r.to(get)),
        endpoint(M::PATCH, "/api/providers/{id}", Access::Tenant, |r| {
            r.to(update)
        }),
        endpoint(M::DELETE, "/api/providers/{id}", Access::Tenant, |r| {
            r.to(delete)
        }),
        endpoint(M::POST, "/api/providers/{id}/test", Access::Tenant, |r| {
            r.to(test)
        }),
    ]
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(list, create, get, update, delete, test),
    components(schemas(
        Provider,
        ProviderPage,
        NewProvider,
        ProviderPatch,
        ProviderKind,
        ModelPrice,
        TestResult,
        TestError
    ))
)]
pub struct Doc;

/// `GET /api/providers` query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Providers per page, 1 – 100 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The tenant's LLM providers, by name (keys never shown).
#[utoipa::path(
    get,
    path = "/api/providers",
    tag = "settings",
    params(ListQuery),
    responses(
        TenantErrors,
        (status = 200, description = "A page of providers, by name", body = ProviderPage),
        (status = 400, description = "A query parameter is invalid", body = ErrorBody),
    )
)]
pub async fn list(
    member: TenantMember,
    state: web::Data<AppState>,
    query: Deferred<web::Query<ListQuery>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let q = query.get()?.into_inner();
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let page = run_json(member.scope(&state), move |s| {
        providers::list(s, page).map(ProviderPage::from)
    })
    .await?;
    Ok(json::ok_body(page))
}

/// One provider (its key never shown).
#[utoipa::path(
    get,
    path = "/api/providers/{id}",
    tag = "settings",
    params(("id" = String, Path, description = "The provider's id")),
    responses(
        TenantErrors,
        (status = 200, description = "The provider", body = Provider),
        (status = 404, description = "No such provider", body = ErrorBody),
    )
)]
pub async fn get(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Read)?;
    let id = id.into_inner();
    let provider = run(member.scope(&state), move |s| providers::get(s, &id)).await?;
    json::ok(&provider)
}

/// Adds a provider (admins and owners). The API key is write-only: stored encrypted, shown
/// afterwards only as `api_key_set` and `api_key_last4`. Loopback and private base URLs are
/// allowed (local models).
#[utoipa::path(
    post,
    path = "/api/providers",
    tag = "settings",
    request_body = NewProvider,
    responses(
        TenantErrors,
        (status = 201, description = "The new provider", body = Provider),
        (status = 400, description = "A field is invalid (`details.fields`)", body = ErrorBody),
        (status = 403, description = "The role does not allow changing settings", body = ErrorBody),
        (status = 409, description = "A provider with this name exists", body = ErrorBody),
    )
)]
pub async fn create(
    member: TenantMember,
    state: web::Data<AppState>,
    body: Deferred<web::Json<NewProvider>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Administer)?;
    let new = body.get()?.into_inner();
    let keys = state.secrets.clone();
    let provider = run(member.scope(&state), move |s| {
        providers::create(s, &keys, new)
    })
    .await?;
    json::created(&provider)
}

/// Changes a provider (admins and owners); `api_key: null` removes the key.
#[utoipa::path(
    patch,
    path = "/api/providers/{id}",
    tag = "settings",
    params(("id" = String, Path, description = "The provider's id")),
    request_body = ProviderPatch,
    responses(
        TenantErrors,
        (status = 200, description = "The updated provider", body = Provider),
        (status = 400, description = "A field is invalid (`details.fields`)", body = ErrorBody),
        (status = 403, description = "The role does not allow changing settings", body = ErrorBody),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 409, description = "Another provider has this name", body = ErrorBody),
    )
)]
pub async fn update(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Deferred<web::Json<ProviderPatch>>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Administer)?;
    let patch = body.get()?.into_inner();
    let id = id.into_inner();
    let keys = state.secrets.clone();
    let provider = run(member.scope(&state), move |s| {
        providers::update(s, &keys, &id, patch)
    })
    .await?;
    json::ok(&provider)
}

/// Removes a provider (admins and owners): agents using it and the workspace default are left
/// without one.
#[utoipa::path(
    delete,
    path = "/api/providers/{id}",
    tag = "settings",
    params(("id" = String, Path, description = "The provider's id")),
    responses(
        TenantErrors,
        (status = 204, description = "Removed"),
        (status = 403, description = "The role does not allow changing settings", body = ErrorBody),
        (status = 404, description = "No such provider", body = ErrorBody),
    )
)]
pub async fn delete(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Administer)?;
    let id = id.into_inner();
    run(member.scope(&state), move |s| providers::delete(s, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Tests a provider (admins and owners): sends "Reply with the word OK." (16 tokens at most,
/// no tools) to its default model, within its `timeout_secs` (default 30). A provider that
/// fails or cannot be reached is still a 200, with `ok: false` and the error's kind.
#[utoipa::path(
    post,
    path = "/api/providers/{id}/test",
    tag = "settings",
    params(("id" = String, Path, description = "The provider's id")),
    responses(
        TenantErrors,
        (status = 200, description = "What the provider answered", body = TestResult),
        (status = 403, description = "The role does not allow testing providers", body = ErrorBody),
        (status = 404, description = "No such provider", body = ErrorBody),
    )
)]
pub async fn test(
    member: TenantMember,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    member.require(TenantAction::Administer)?;
    let result = providers::test(
        member.scope(&state),
        state.secrets.clone(),
        state.llm_http.clone(),
        id.into_inner(),
    )
    .await?;
    json::ok(&result)
}
