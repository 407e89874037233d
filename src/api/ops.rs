//! Operational routes: liveness, readiness, version, metrics.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use super::ApiError;
use super::json;
use super::openapi::ErrorBody;
use crate::startup::AppState;
use crate::store::blocking;

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(healthz, readyz, version, metrics))]
pub struct Doc;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`.
    status: &'static str,
    checks: ReadinessChecks,
}

#[derive(Serialize, ToSchema)]
pub struct ReadinessChecks {
    /// `ok` or `failed`.
    registry: &'static str,
    /// `ok` or `failed`: `queue.db` answers.
    queue: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct VersionInfo {
    /// `agenthq`.
    name: &'static str,
    version: &'static str,
}

/// Liveness: the process serves HTTP. Deliberately independent of storage, so one broken
/// tenant (or a slow disk) never gets a healthy process restarted.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process serves HTTP", body = Health)))]
pub async fn healthz() -> Result<HttpResponse, ApiError> {
    json::ok(&Health { status: "ok" })
}

/// Readiness: the registry accepts writes.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "Storage accepts writes", body = Readiness),
        (status = 503, description = "Storage does not accept writes", body = ErrorBody),
    ))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let registry = state.storage.registry.clone();
    let registry = match blocking(move || registry.probe_writable()).await {
        Ok(()) => "ok",
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed: registry not writable");
            "failed"
        }
    };
    // A lookup of an id no job has: answered from the index when the store works.
    let queue = match state.queue.get(crate::queue::JobId::generate()).await {
        Ok(_) | Err(crate::queue::QueueError::NotFound) => "ok",
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed: queue unavailable");
            "failed"
        }
    };
    let checks = ReadinessChecks { registry, queue };
    if registry == "ok" && queue == "ok" {
        return json::ok(&Readiness {
            status: "ready",
            checks,
        });
    }
    Err(
        ApiError::unavailable("storage or the job queue is not working")
            .with_details(json!({ "checks": checks })),
    )
}

#[utoipa::path(get, path = "/version", tag = "operations", security(()),
    responses((status = 200, description = "This build", body = VersionInfo)))]
pub async fn version() -> Result<HttpResponse, ApiError> {
    json::ok(&VersionInfo {
        name: "agenthq",
        version: crate::VERSION,
    })
}

/// Prometheus metrics. With `AGENTHQ_METRICS_TOKEN` set, the bearer token is required;
/// without it, only loopback clients may scrape.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "A metrics token is configured and was not sent", body = ErrorBody),
        (status = 403, description = "No metrics token is configured and the client is not on loopback", body = ErrorBody),
    ))]
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    match &state.settings.metrics_token {
        Some(token) => {
            let presented = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if !crate::auth::session::constant_time_eq(
                presented.as_bytes(),
                token.expose().as_bytes(),
            ) {
                return Err(ApiError::unauthenticated(
                    "metrics need Authorization: Bearer <AGENTHQ_METRICS_TOKEN>",
                ));
            }
        }
        None => {
            let loopback = req.peer_addr().is_some_and(|a| is_loopback(a.ip()));
            if !loopback {
                return Err(ApiError::forbidden(
                    "metrics are served to loopback clients only; set AGENTHQ_METRICS_TOKEN \
                     to scrape from elsewhere",
                ));
            }
        }
    }
    state.refresh_gauges();
    match state.queue.counts().await {
        Ok(counts) => state.metrics.queue.set_depth(&counts),
        Err(e) => tracing::warn!(error = %e, "cannot count jobs for the metrics"),
    }
    let text = state.metrics.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::session::SessionRecord;
    use crate::auth::token::ApiToken;
    use crate::auth::{Email, Role, User, UserId};
    use crate::config::{Overrides, Settings};
    use crate::domain::{Tenant, TenantId, TenantStatus};
    use crate::ops::metrics::Metrics;
    use crate::store::{RegistryStore, Storage, StoreError};
    use actix_web::{App, http::StatusCode, test as atest};
    use std::sync::Arc;

    /// A registry on a disk that stopped accepting writes.
    struct ReadOnlyRegistry;
    impl RegistryStore for ReadOnlyRegistry {
        fn insert_tenant(&self, _: &Tenant) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("read-only".into()))
        }
        fn tenant_by_slug(&self, _: &str) -> Result<Option<Tenant>, StoreError> {
            Ok(None)
        }
        fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
            Ok(Vec::new())
        }
        fn update_tenant_status(
            &self,
            _: TenantId,
            _: TenantStatus,
            _: TenantStatus,
        ) -> Result<Tenant, StoreError> {
            Err(StoreError::Unavailable("read-only".into()))
        }
        fn delete_tenant(&self, _: TenantId) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("read-only".into()))
        }
        fn generation(&self) -> Result<i64, StoreError> {
            Ok(0)
        }
        fn access_generation(&self) -> Result<i64, StoreError> {
            Ok(0)
        }
        fn probe_writable(&self) -> Result<(), StoreError> {
            Err(StoreError::Unavailable(
                "attempt to write a readonly database".into(),
            ))
        }
        fn close(&self) {}
        fn checkpoint(&self) -> Result<(), StoreError> {
            Ok(())
        }
        fn insert_user(&self, _: &User, _: &str) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("read-only".into()))
        }
        fn user_by_email(&self, _: &Email) -> Result<Option<(User, String)>, StoreError> {
            Ok(None)
        }
        fn set_password_hash(&self, _: UserId, _: &str) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("read-only".into()))
        }
        fn upsert_membership(&self, _: TenantId, _: UserId, _: Role) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("read-only".into()))
        }
        fn insert_session(&self, _: &str, _: UserId, _: &SessionRecord) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("read-only".into()))
        }
        fn session(&self, _: &str) -> Result<Option<(User, SessionRecord)>, StoreError> {
            Ok(None)
        }
        fn touch_session(
            &self,
            _: &str,
            _: chrono::DateTime<chrono::Utc>,
        ) -> Result<(), StoreError> {
            Ok(())
        }
        fn delete_session(&self, _: &str) -> Result<(), StoreError> {
            Ok(())
        }
        fn insert_api_token(&self, _: &ApiToken, _: &str) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("read-only".into()))
        }
        fn api_token_by_hash(&self, _: &str) -> Result<Option<ApiToken>, StoreError> {
            Ok(None)
        }
        fn touch_api_token(
            &self,
            _: &str,
            _: chrono::DateTime<chrono::Utc>,
        ) -> Result<(), StoreError> {
            Ok(())
        }
        fn api_tokens(&self, _: TenantId) -> Result<Vec<ApiToken>, StoreError> {
            Ok(Vec::new())
        }
        fn api_token(&self, _: TenantId, _: &str) -> Result<Option<ApiToken>, StoreError> {
            Ok(None)
        }
        fn revoke_api_token(
            &self,
            _: TenantId,
            _: &str,
            _: chrono::DateTime<chrono::Utc>,
        ) -> Result<ApiToken, StoreError> {
            Err(StoreError::Unavailable("read-only".into()))
        }
        fn append_platform_audit(&self, _: &crate::audit::AuditEntry) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("read-only".into()))
        }
        fn platform_audit(
            &self,
            _: &crate::audit::AuditFilter,
        ) -> Result<Vec<crate::audit::AuditEntry>, StoreError> {
            Ok(Vec::new())
        }
        fn membership_role(&self, _: TenantId, _: UserId) -> Result<Option<Role>, StoreError> {
            Ok(None)
        }
        fn list_members(&self, _: TenantId) -> Result<Vec<crate::store::Member>, StoreError> {
            Ok(Vec::new())
        }
        fn change_membership(
            &self,
            _: TenantId,
            _: UserId,
            _: Option<Role>,
        ) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("read-only".into()))
        }
        fn has_platform_admin(&self) -> Result<bool, StoreError> {
            Ok(true)
        }
        fn memberships_of(&self, _: UserId) -> Result<Vec<(String, Role)>, StoreError> {
            Ok(Vec::new())
        }
        fn tenant_data_key(
            &self,
            _: TenantId,
        ) -> Result<Option<crate::secrets::WrappedKey>, StoreError> {
            Ok(None)
        }
        fn insert_tenant_data_key_if_absent(
            &self,
            _: TenantId,
            _: &crate::secrets::WrappedKey,
        ) -> Result<crate::secrets::WrappedKey, StoreError> {
            Err(StoreError::Unavailable("read-only".into()))
        }
        fn delete_tenant_data_key(&self, _: TenantId) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("read-only".into()))
        }
        fn rewrap_tenant_data_keys(
            &self,
            _: &mut crate::store::Rewrap<'_>,
        ) -> Result<usize, StoreError> {
            Err(StoreError::Unavailable("read-only".into()))
        }
    }

    #[actix_web::test]
    async fn readyz_is_503_when_the_registry_rejects_writes() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::load(Overrides {
            data_dir: Some(dir.path().to_owned()),
            ..Overrides::default()
        })
        .unwrap();
        let real = Storage::open(&settings).unwrap();
        let storage = Storage {
            registry: Arc::new(ReadOnlyRegistry),
            tenants: real.tenants,
        };
        let state = web::Data::new(AppState::new(
            Arc::new(settings),
            storage,
            crate::auth::PasswordHasher::with_params(argon2::Params::new(256, 1, 1, None).unwrap())
                .unwrap(),
            Arc::new(Metrics::new().unwrap()),
            // 32 zero bytes: any key does for this test.
            Arc::new(crate::secrets::TenantKeys::new(
                Arc::new(ReadOnlyRegistry),
                crate::secrets::KeySource::Env(
                    crate::secrets::MasterKey::from_base64(
                        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                    )
                    .unwrap(),
                ),
                crate::secrets::Keyring::single(
                    crate::secrets::MasterKey::from_base64(
                        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                    )
                    .unwrap(),
                ),
                16,
            )),
            reqwest::Client::new(),
            crate::queue::Queue::open(
                &dir.path().join("queue.db"),
                crate::queue::QueueSettings::default(),
            )
            .unwrap(),
        ));
        let app = atest::init_service(
            App::new()
                .app_data(state)
                .route("/readyz", web::get().to(readyz)),
        )
        .await;
        let res =
            atest::call_service(&app, atest::TestRequest::get().uri("/readyz").to_request()).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(res.headers().contains_key("retry-after"));
        let body: serde_json::Value = atest::read_body_json(res).await;
        assert_eq!(body["error"]["code"], "UNAVAILABLE");
        assert_eq!(body["error"]["details"]["checks"]["registry"], "failed");
        assert!(
            !body.to_string().contains("readonly"),
            "no internals leaked"
        );
    }

    #[test]
    fn mapped_ipv4_loopback_counts_as_loopback() {
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_loopback("10.0.0.1".parse().unwrap()));
    }
}
