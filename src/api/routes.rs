//! The route table: every endpoint of the server, once. The router is built from it, and the
//! isolation tests walk it, so a route added here is registered and tested alike.

use actix_web::http::Method;
use actix_web::{Route, web};

use super::{
    admin, agents, audit, auth, board, chat, hook_events, jobs, mcp_servers, members, openapi, ops,
    providers, settings, setup, tasks, tenant, tokens, usage, ws,
};

/// Who may call an endpoint (the handler's extractors enforce it; this says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health, sign-in, the resolved tenant's public card.
    Public,
    /// A signed-in user (no tenant needed).
    SignedIn,
    /// Platform admins only.
    PlatformAdmin,
    /// A member of the resolved tenant (role checked per action).
    Tenant,
}

pub struct Endpoint {
    pub method: Method,
    /// The actix path template, e.g. `/api/members/{user_id}`.
    pub path: &'static str,
    pub access: Access,
    handler: fn(Route) -> Route,
}

pub(super) fn endpoint(
    method: Method,
    path: &'static str,
    access: Access,
    handler: fn(Route) -> Route,
) -> Endpoint {
    Endpoint {
        method,
        path,
        access,
        handler,
    }
}

/// Every endpoint, in matching order: the platform's own, then each domain area's (each
/// module lists its routes next to its handlers).
pub fn endpoints() -> Vec<Endpoint> {
    let mut all = platform_endpoints();
    for area in [
        agents::endpoints,
        tasks::endpoints,
        chat::endpoints,
        board::endpoints,
        settings::endpoints,
        mcp_servers::endpoints,
        providers::endpoints,
        hook_events::endpoints,
        jobs::endpoints,
        usage::endpoints,
        ws::endpoints,
    ] {
        all.extend(area());
    }
    all
}

/// Health, identity, platform admin, members, tokens, audit.
fn platform_endpoints() -> Vec<Endpoint> {
    use Access::*;
    use Method as M;
    vec![
        endpoint(M::GET, "/healthz", Public, |r| r.to(ops::healthz)),
        endpoint(M::GET, "/readyz", Public, |r| r.to(ops::readyz)),
        endpoint(M::GET, "/version", Public, |r| r.to(ops::version)),
        // Guarded by its own bearer token or loopback.
        endpoint(M::GET, "/metrics", Public, |r| r.to(ops::metrics)),
        endpoint(M::GET, "/api/openapi.json", Public, |r| {
            r.to(openapi::document)
        }),
        endpoint(M::GET, "/api/tenant", Public, |r| r.to(tenant::current)),
        endpoint(M::GET, "/api/setup", Public, |r| r.to(setup::status)),
        endpoint(M::POST, "/api/setup", Public, |r| r.to(setup::complete)),
        endpoint(M::POST, "/api/auth/login", Public, |r| r.to(auth::login)),
        endpoint(M::POST, "/api/auth/logout", SignedIn, |r| {
            r.to(auth::logout)
        }),
        endpoint(M::GET, "/api/auth/me", SignedIn, |r| r.to(auth::me)),
        endpoint(M::GET, "/api/admin/tenants", PlatformAdmin, |r| {
            r.to(admin::list)
        }),
        endpoint(M::POST, "/api/admin/tenants", PlatformAdmin, |r| {
            r.to(admin::create)
        }),
        endpoint(M::GET, "/api/admin/tenants/{slug}", PlatformAdmin, |r| {
            r.to(admin::get)
        }),
        endpoint(M::DELETE, "/api/admin/tenants/{slug}", PlatformAdmin, |r| {
            r.to(admin::delete)
        }),
        endpoint(
            M::POST,
            "/api/admin/tenants/{slug}/suspend",
            PlatformAdmin,
            |r| r.to(admin::suspend),
        ),
        endpoint(
            M::POST,
            "/api/admin/tenants/{slug}/resume",
            PlatformAdmin,
            |r| r.to(admin::resume),
        ),
        endpoint(M::GET, "/api/admin/audit", PlatformAdmin, |r| {
            r.to(audit::platform_log)
        }),
        endpoint(M::GET, "/api/members", Tenant, |r| r.to(members::list)),
        endpoint(M::POST, "/api/members", Tenant, |r| r.to(members::add)),
        endpoint(M::PATCH, "/api/members/{user_id}", Tenant, |r| {
            r.to(members::change)
        }),
        endpoint(M::DELETE, "/api/members/{user_id}", Tenant, |r| {
            r.to(members::remove)
        }),
        endpoint(M::GET, "/api/tokens", Tenant, |r| r.to(tokens::list)),
        endpoint(M::POST, "/api/tokens", Tenant, |r| r.to(tokens::create)),
        endpoint(M::DELETE, "/api/tokens/{id}", Tenant, |r| {
            r.to(tokens::revoke)
        }),
        endpoint(M::GET, "/api/audit", Tenant, |r| r.to(audit::tenant_log)),
    ]
}

/// Registers every endpoint: one resource per path, so a known path with the wrong method is a
/// 405 (with `Allow`), not a 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let endpoints = endpoints();
    let mut paths: Vec<&'static str> = Vec::new();
    for e in &endpoints {
        if !paths.contains(&e.path) {
            paths.push(e.path);
        }
    }
    // Static paths first (a stable sort keeps the table's order otherwise). The router tries
    // resources in order, and testing a request against a path with a `{param}` runs a regex
    // (measured: ~20,000 instructions per request on `/api/tasks` behind the dynamic paths
    // listed before it); static paths compare as strings. No path template here matches a
    // static path of another resource except on purpose (`/api/tasks/board` before
    // `/api/tasks/{id}`), which this order keeps.
    paths.sort_by_key(|p| p.contains('{'));
    for path in paths {
        let resource = endpoints
            .iter()
            .filter(|e| e.path == path)
            .fold(web::resource(path), |resource, e| {
                resource.route((e.handler)(web::method(e.method.clone())))
            });
        cfg.service(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_endpoint_is_listed_twice() {
        let endpoints = endpoints();
        for (i, a) in endpoints.iter().enumerate() {
            for b in &endpoints[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
    }
}
