//! Who is making a request: an API token (set by the authentication middleware) or a signed-in
//! user (session cookie). Cookie-authenticated requests that change something must carry the
//! session's CSRF token.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::ApiError;
use crate::audit::{Actor, ActorKind, AuditEntry, Origin, Target};
use crate::auth::token::ApiToken;
use crate::auth::{User, UserId};
use crate::startup::AppState;

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

#[derive(Debug, Clone)]
pub enum Principal {
    Token(Arc<ApiToken>),
    User(User),
}

impl Principal {
    pub fn is_platform_admin(&self) -> bool {
        matches!(self, Principal::User(u) if u.is_platform_admin)
    }

    /// The user acting: the signed-in user, or the user who created the token.
    pub fn user_id(&self) -> UserId {
        match self {
            Principal::Token(token) => token.user_id,
            Principal::User(user) => user.id,
        }
    }

    /// Whether the request carries a credential at all (an API token the middleware accepted,
    /// or a session cookie), valid or not.
    pub fn presented(req: &HttpRequest) -> bool {
        req.extensions().get::<Arc<ApiToken>>().is_some()
            // Checked first: parsing cookies stores them in the request, a cost anonymous
            // requests need not pay.
            || (req.headers().contains_key(actix_web::http::header::COOKIE)
                && super::auth::presented_secret(req).is_some())
    }

    /// How the audit log names this principal.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Token(token) => Actor {
                kind: ActorKind::Token,
                id: Some(token.id.clone()),
            },
            Principal::User(user) => Actor {
                kind: ActorKind::User,
                id: Some(user.id.to_string()),
            },
        }
    }

    /// Who is making `req`: its API token (checked by the middleware), else the user of its
    /// session cookie (CSRF-checked for unsafe methods); 401 without either.
    pub async fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        if let Some(token) = req.extensions().get::<Arc<ApiToken>>().cloned() {
            return Ok(Principal::Token(token));
        }
        let secret = super::auth::presented_secret(req).ok_or_else(|| {
            ApiError::unauthenticated("sign in, or send Authorization: Bearer <API token>")
        })?;
        if is_unsafe(req.method()) {
            super::auth::require_csrf(req, &secret)?;
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
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Principal::of(&req).await })
    }
}

/// A principal that is a platform admin (only signed-in users can be).
pub struct PlatformAdmin {
    pub user: User,
    pub origin: Origin,
}

impl PlatformAdmin {
    /// An audit entry for something this admin did now.
    pub fn audit(&self, action: &str, target: Target) -> AuditEntry {
        let actor = Actor {
            kind: ActorKind::User,
            id: Some(self.user.id.to_string()),
        };
        AuditEntry::new(&actor, &self.origin, action, target)
    }
}

impl FromRequest for PlatformAdmin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let principal = Principal::from_request(req, payload);
        let origin = super::audit::origin(req);
        Box::pin(async move {
            match principal.await? {
                Principal::User(user) if user.is_platform_admin => {
                    Ok(PlatformAdmin { user, origin })
                }
                _ => Err(ApiError::forbidden("only platform admins manage tenants")),
            }
        })
    }
}

/// A request by a member of the resolved tenant: the tenant, its store, who is asking and their
/// role there. The only way a tenant route learns the caller's role.
pub struct TenantMember {
    pub ctx: crate::tenancy::TenantContext,
    pub principal: Principal,
    pub role: crate::auth::Role,
    /// The request, for the audit facts (address, user agent, request id) of a mutation;
    /// read only when something is audited, so reads pay nothing for them.
    request: HttpRequest,
    /// Announced for requests that may change something, as soon as the member is known
    /// (see [`crate::store::WriteIntent`]); the scopes made for the request share it.
    write_intent: Option<Arc<crate::store::WriteIntent>>,
}

impl TenantMember {
    /// An audit entry for something this member did now (to be stored in the tenant's log).
    pub fn audit(&self, action: &str, target: Target) -> AuditEntry {
        let origin = super::audit::origin(&self.request);
        AuditEntry::new(&self.principal.actor(), &origin, action, target)
    }

    /// The scope services act in for this member: the tenant, its store, the event bus and
    /// what the audit log records of the caller and the request.
    pub fn scope(&self, state: &AppState) -> crate::services::Scope {
        crate::services::Scope {
            tenant: self.ctx.tenant.id,
            slug: self.ctx.tenant.slug.as_str().into(),
            store: self.ctx.store.clone(),
            events: state.events.clone(),
            actor: self.principal.actor(),
            origin: super::audit::origin(&self.request),
            runs: state.runs.clone(),
            write_intent: self.write_intent.clone(),
        }
    }

    /// Whether the member may do `action` (for handlers that shape a response by role).
    pub fn may(&self, action: crate::auth::policy::TenantAction) -> bool {
        crate::auth::policy::allows(self.role, action)
    }

    /// Refuses with 403 unless the member's role allows `action` (see `auth::policy`).
    pub fn require(&self, action: crate::auth::policy::TenantAction) -> Result<(), ApiError> {
        if self.may(action) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "your role in tenant '{}' ({}) does not allow this; it needs {} or higher",
                self.ctx.tenant.slug,
                self.role,
                action.minimum_role()
            )))
        }
    }

    /// The member behind `principal` in the resolved tenant `ctx`: 403 when they are not one,
    /// 429 when the tenant's quota is used up.
    pub async fn of(
        req: &HttpRequest,
        principal: Principal,
        ctx: crate::tenancy::TenantContext,
    ) -> Result<Self, ApiError> {
        // Borrowed, not cloned: see `middleware::authenticate`.
        let state = req
            .app_data::<web::Data<AppState>>()
            .ok_or_else(|| ApiError::internal("application state missing"))?;
        let role = match &principal {
            // The middleware bound the request to the token's tenant (TENANT_MISMATCH
            // otherwise), so the token's role is its role here.
            Principal::Token(token) => Some(token.role),
            Principal::User(user) => {
                let (tenant, user) = (ctx.tenant.id, user.id);
                let s = state.clone();
                web::block(move || s.storage.registry.membership_role(tenant, user))
                    .await
                    .map_err(ApiError::internal)??
            }
        };
        let role = role.ok_or_else(|| {
            ApiError::forbidden(format!(
                "you are not a member of tenant '{}'",
                ctx.tenant.slug
            ))
        })?;
        // Counted once the caller is known to act for the tenant: outsiders cannot use up a
        // tenant's quota.
        super::rate_limit::check_tenant(req, state, &ctx.tenant)?;
        let write_intent = (!req.method().is_safe()).then(|| Arc::new(ctx.store.intend_write()));
        Ok(TenantMember {
            ctx,
            principal,
            role,
            request: req.clone(),
            write_intent,
        })
    }
}

impl FromRequest for TenantMember {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let principal = Principal::from_request(req, payload);
        let ctx = crate::tenancy::TenantContext::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let principal = principal.await?;
            let ctx = ctx.await?;
            TenantMember::of(&req, principal, ctx).await
        })
    }
}
