//! Which tenant a request is for, and the extractor that hands handlers the tenant and its store.
//!
//! Sources, in order: the subdomain of the base domain (`acme.agenthq.example.com`), the
//! `X-Tenant` header, then the tenant bound to the credential (API token) — set by the
//! authentication layer as a [`CredentialTenant`] request extension. Every source present must
//! name the same tenant; a request that names two is refused, never silently resolved to one.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::{HOST, HeaderMap};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::TenantDirectory;
use crate::api::ApiError;
use crate::domain::{Tenant, TenantStatus};
use crate::store::{StoreError, TenantDatabases, TenantStore, blocking};

pub const TENANT_HEADER: &str = "x-tenant";

/// The tenant an authenticated credential is bound to (inserted by the auth layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialTenant(pub Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("this request needs a tenant: use the tenant's subdomain or the X-Tenant header")]
    Required,
    #[error(
        "the request names two tenants: '{first}' ({first_source}) and '{second}' ({second_source})"
    )]
    Mismatch {
        first: String,
        first_source: &'static str,
        second: String,
        second_source: &'static str,
    },
    #[error("no tenant '{0}'")]
    NotFound(String),
    #[error("tenant '{0}' is suspended")]
    Suspended(String),
    #[error("tenant '{0}' has been deleted")]
    Deleted(String),
}

/// Resolves requests to tenants.
pub struct TenantResolver {
    base_domain: Option<String>,
    directory: Arc<TenantDirectory>,
    databases: Arc<dyn TenantDatabases>,
}

impl TenantResolver {
    pub fn new(
        base_domain: Option<String>,
        directory: Arc<TenantDirectory>,
        databases: Arc<dyn TenantDatabases>,
    ) -> Self {
        Self {
            base_domain,
            directory,
            databases,
        }
    }

    /// The subdomain label of `host` under the base domain, if any.
    fn subdomain<'h>(&self, host: &'h str) -> Option<&'h str> {
        let base = self.base_domain.as_deref()?;
        let host = strip_port(host);
        let label = host
            .len()
            .checked_sub(base.len() + 1)
            .filter(|&cut| {
                host[cut + 1..].eq_ignore_ascii_case(base) && host.as_bytes()[cut] == b'.'
            })
            .map(|cut| &host[..cut])?;
        Some(label)
    }

    /// The slug a request names, from its host, its headers and its credential.
    pub fn requested_slug<'a>(
        &self,
        host: Option<&'a str>,
        headers: &'a HeaderMap,
        credential: Option<&'a CredentialTenant>,
    ) -> Result<Cow<'a, str>, ResolveError> {
        let mut named: Option<(Cow<'a, str>, &'static str)> = None;
        let mut consider = |slug: Cow<'a, str>, source: &'static str| -> Result<(), ResolveError> {
            match &named {
                Some((first, first_source)) if *first != slug => Err(ResolveError::Mismatch {
                    first: first.to_string(),
                    first_source,
                    second: slug.into_owned(),
                    second_source: source,
                }),
                Some(_) => Ok(()),
                None => {
                    named = Some((slug, source));
                    Ok(())
                }
            }
        };
        if let Some(label) = host.and_then(|h| self.subdomain(h)) {
            consider(lowercase(label), "subdomain")?;
        }
        if let Some(value) = headers.get(TENANT_HEADER) {
            let value = value
                .to_str()
                .map_err(|_| ResolveError::NotFound("<non-ASCII X-Tenant header>".into()))?
                .trim();
            if !value.is_empty() {
                consider(lowercase(value), "X-Tenant header")?;
            }
        }
        if let Some(CredentialTenant(slug)) = credential {
            consider(Cow::Borrowed(&**slug), "credential")?;
        }
        named.map(|(slug, _)| slug).ok_or(ResolveError::Required)
    }

    /// The tenant of a slug, if it may be served.
    pub fn tenant(&self, slug: &str) -> Result<Arc<Tenant>, ResolveError> {
        let tenant = self
            .directory
            .get(slug)
            .ok_or_else(|| ResolveError::NotFound(truncate(slug)))?;
        match tenant.status {
            TenantStatus::Active => Ok(tenant),
            TenantStatus::Suspended => Err(ResolveError::Suspended(slug.to_owned())),
            TenantStatus::Deleted => Err(ResolveError::Deleted(slug.to_owned())),
            TenantStatus::Provisioning | TenantStatus::Purging => {
                Err(ResolveError::NotFound(slug.to_owned()))
            }
        }
    }

    /// Resolves a request to its tenant and an open handle to the tenant's store.
    pub async fn resolve(&self, req: &HttpRequest) -> Result<TenantContext, ApiError> {
        let host = req
            .uri()
            .host()
            .or_else(|| req.headers().get(HOST).and_then(|h| h.to_str().ok()));
        let tenant = {
            let extensions = req.extensions();
            let slug =
                self.requested_slug(host, req.headers(), extensions.get::<CredentialTenant>())?;
            self.tenant(&slug)?
        };
        let id = tenant.id;
        let store = match self.databases.open_if_cached(id) {
            Ok(Some(store)) => store,
            Ok(None) => {
                let databases = self.databases.clone();
                blocking(move || databases.open(id)).await
            }
            .map_err(|e| unavailable(&tenant, e))?,
            Err(e) => return Err(unavailable(&tenant, e)),
        };
        Ok(TenantContext { tenant, store })
    }
}

fn unavailable(tenant: &Tenant, e: StoreError) -> ApiError {
    tracing::error!(tenant = %tenant.slug, error = %e, "tenant store unavailable");
    ApiError::tenant_unavailable(tenant.slug.as_str(), &e)
}

/// `s` in lower case, copied only when it is not already.
fn lowercase(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host; // IPv6 literal: never a subdomain of the base domain
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// What a tenant-scoped handler works with: the resolved tenant and its store. Obtaining it is
/// the only way a handler reaches tenant data, so a handler can only reach the data of the
/// tenant the request resolved to.
#[derive(Clone)]
pub struct TenantContext {
    pub tenant: Arc<Tenant>,
    pub store: Arc<dyn TenantStore>,
}

impl FromRequest for TenantContext {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let resolver = req
                .app_data::<web::Data<TenantResolver>>()
                .ok_or_else(|| ApiError::internal("tenant resolver is not configured"))?;
            resolver.resolve(&req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    struct NoDatabases;
    impl TenantDatabases for NoDatabases {
        fn claim(
            &self,
            _: crate::domain::TenantId,
        ) -> Result<Option<crate::store::ProvisioningClaim>, StoreError> {
            unreachable!()
        }
        fn create(
            &self,
            _: &crate::store::ProvisioningClaim,
            _: &Tenant,
        ) -> Result<(), StoreError> {
            unreachable!()
        }
        fn remove(&self, _: crate::domain::TenantId) -> Result<(), StoreError> {
            unreachable!()
        }
        fn open(&self, _: crate::domain::TenantId) -> Result<Arc<dyn TenantStore>, StoreError> {
            unreachable!()
        }
        fn open_if_cached(
            &self,
            _: crate::domain::TenantId,
        ) -> Result<Option<Arc<dyn TenantStore>>, StoreError> {
            unreachable!()
        }
        fn close(&self, _: crate::domain::TenantId) {}
        fn migrate(
            &self,
            _: crate::domain::TenantId,
        ) -> Result<crate::store::MigrationOutcome, StoreError> {
            unreachable!()
        }
        fn sweep_abandoned(&self, _: &[crate::domain::TenantId]) -> Result<usize, StoreError> {
            unreachable!()
        }
        fn open_count(&self) -> usize {
            0
        }
        fn close_all(&self) {}
        fn checkpoint_open(&self) -> usize {
            0
        }
    }

    fn resolver(base: Option<&str>) -> TenantResolver {
        TenantResolver::new(
            base.map(str::to_owned),
            Arc::new(TenantDirectory::new()),
            Arc::new(NoDatabases),
        )
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn requested(
        r: &TenantResolver,
        host: Option<&str>,
        headers: &HeaderMap,
        credential: Option<&CredentialTenant>,
    ) -> Result<String, ResolveError> {
        r.requested_slug(host, headers, credential)
            .map(Cow::into_owned)
    }

    #[test]
    fn the_subdomain_of_the_base_domain_names_the_tenant() {
        let r = resolver(Some("agenthq.test"));
        let slug = requested(&r, Some("acme.agenthq.test:8080"), &HeaderMap::new(), None).unwrap();
        assert_eq!(slug, "acme");
        let slug = requested(&r, Some("ACME.AgentHQ.test"), &HeaderMap::new(), None).unwrap();
        assert_eq!(slug, "acme");
    }

    #[test]
    fn hosts_outside_the_base_domain_name_no_tenant() {
        let r = resolver(Some("agenthq.test"));
        for host in [
            "agenthq.test",
            "acme.other.test",
            "xagenthq.test",
            "[::1]:8080",
        ] {
            assert_eq!(
                requested(&r, Some(host), &HeaderMap::new(), None),
                Err(ResolveError::Required),
                "{host}"
            );
        }
        let r = resolver(None);
        assert_eq!(
            requested(&r, Some("acme.agenthq.test"), &HeaderMap::new(), None),
            Err(ResolveError::Required)
        );
    }

    #[test]
    fn the_header_names_the_tenant_when_there_is_no_subdomain() {
        let r = resolver(Some("agenthq.test"));
        let slug = requested(
            &r,
            Some("localhost"),
            &headers(&[("x-tenant", " Acme ")]),
            None,
        )
        .unwrap();
        assert_eq!(slug, "acme");
    }

    #[test]
    fn agreeing_sources_resolve_and_conflicting_ones_are_a_mismatch() {
        let r = resolver(Some("agenthq.test"));
        let same = requested(
            &r,
            Some("acme.agenthq.test"),
            &headers(&[("x-tenant", "acme")]),
            Some(&CredentialTenant("acme".into())),
        );
        assert_eq!(same.as_deref(), Ok("acme"));

        let err = requested(
            &r,
            Some("acme.agenthq.test"),
            &headers(&[("x-tenant", "globex")]),
            None,
        )
        .unwrap_err();
        assert!(matches!(err, ResolveError::Mismatch { .. }), "{err:?}");

        let err = requested(
            &r,
            None,
            &headers(&[("x-tenant", "acme")]),
            Some(&CredentialTenant("globex".into())),
        )
        .unwrap_err();
        assert!(matches!(err, ResolveError::Mismatch { .. }), "{err:?}");
    }

    #[test]
    fn a_credential_alone_names_its_tenant() {
        let r = resolver(None);
        let slug = requested(
            &r,
            None,
            &HeaderMap::new(),
            Some(&CredentialTenant("acme".into())),
        )
        .unwrap();
        assert_eq!(slug, "acme");
    }
}
