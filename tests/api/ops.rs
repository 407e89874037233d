use reqwest::StatusCode;

use crate::helpers::{error_code, json, spawn_app, spawn_app_with};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let (status, body) = json(app.get("/healthz").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_is_ready_when_the_registry_accepts_writes() {
    let app = spawn_app().await;
    let (status, body) = json(app.get("/readyz").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["checks"]["registry"], "ok");
}

#[tokio::test]
async fn version_reports_the_package_version() {
    let app = spawn_app().await;
    let (status, body) = json(app.get("/version").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_sane_incoming_one_is_kept() {
    let app = spawn_app().await;
    for path in ["/healthz", "/no/such/route", "/api/tenant"] {
        let res = app.get(path).await;
        let id = res
            .headers()
            .get("x-request-id")
            .expect("request id header");
        assert!(!id.is_empty(), "{path}");
    }
    let res = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("X-Request-Id", "trace-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-abc.123");

    let res = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("X-Request-Id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "bad id with spaces");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_report_tenants() {
    let app = spawn_app().await;
    app.create_tenant("acme");
    app.get_tenant("acme").await;
    app.get("/no/such/route").await;

    let res = app.get("/metrics").await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            r#"agenthq_http_requests_total{method="GET",route="/api/tenant",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="<unmatched>",status="404""#),
        "{text}"
    );
    assert!(
        text.contains(r#"agenthq_tenants{status="active"} 1"#),
        "{text}"
    );
    assert!(text.contains("agenthq_tenant_pools_open 1"), "{text}");
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
    assert!(
        text.contains("agenthq_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_require_the_token_when_one_is_configured() {
    let token = "metrics-token-0123456789";
    let app = spawn_app_with(|o| {
        o.metrics_token = Some(agenthq::config::Secret::new(token));
    })
    .await;
    let (status, body) = json(app.get("/metrics").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "UNAUTHENTICATED");

    let res = app
        .client
        .get(format!("{}/metrics", app.address))
        .bearer_auth("wrong-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let res = app
        .client
        .get(format!("{}/metrics", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_graceful_stop_checkpoints_the_databases() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("acme");
    assert_eq!(app.get_tenant("acme").await.0, StatusCode::OK);
    let data = app.data_dir.clone();
    let tenant_wal = app.tenant_file(&tenant).with_extension("db-wal");
    app.stop().await.expect("clean stop");

    // TRUNCATE checkpoints leave the WAL empty (or SQLite removed it on close).
    for wal in [data.path().join("registry.db-wal"), tenant_wal] {
        let len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert_eq!(len, 0, "{} should be checkpointed", wal.display());
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in ["/", "/healthz", "/api/tenant", "/no/such/route"] {
        let res = app.get(path).await;
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(
            h["referrer-policy"]
                .to_str()
                .unwrap()
                .contains("strict-origin"),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"),
            "{path}"
        );
        assert!(
            h.get("access-control-allow-origin").is_none(),
            "CORS is off: {path}"
        );
    }
}

async fn preflight(app: &crate::helpers::TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/members", app.address),
        )
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type,x-csrf-token",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn without_an_allow_list_no_origin_gets_cors_headers() {
    let app = spawn_app().await;
    let res = preflight(&app, "https://evil.example").await;
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let res = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn only_allow_listed_origins_get_cors_headers() {
    let app = crate::helpers::spawn_app_with(|o| {
        o.cors_allowed_origins = Some(vec!["https://console.example.com".into()]);
    })
    .await;
    let res = preflight(&app, "https://console.example.com").await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers();
    assert_eq!(
        h["access-control-allow-origin"],
        "https://console.example.com"
    );
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("x-csrf-token")
    );

    let res = preflight(&app, "https://evil.example").await;
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let res = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("Origin", "https://console.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://console.example.com"
    );
    let res = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "same-origin style requests still work"
    );
    assert!(res.headers().get("access-control-allow-origin").is_none());
}
