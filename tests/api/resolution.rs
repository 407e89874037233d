use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{agenthq, error_code, eventually, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_request_naming_no_tenant_is_tenant_required() {
    let app = spawn_app().await;
    let (status, body) = crate::helpers::json(app.get("/api/tenant").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "TENANT_REQUIRED");
}

#[tokio::test]
async fn an_unknown_tenant_is_tenant_not_found() {
    let app = spawn_app().await;
    app.create_tenant("acme");
    for slug in ["globex", "ACME-nope", "%00", "a"] {
        let (status, body) = app.get_tenant(slug).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{slug}");
        assert_eq!(error_code(&body), "TENANT_NOT_FOUND", "{slug}");
    }
}

#[tokio::test]
async fn the_x_tenant_header_resolves_the_tenant() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme");
    let (status, body) = app.get_tenant("acme").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], acme.id.to_string());
    assert_eq!(body["slug"], "acme");
    assert_eq!(body["status"], "active");
    assert_eq!(body["plan"], "free");
}

#[tokio::test]
async fn the_subdomain_of_the_base_domain_resolves_the_tenant() {
    let app = spawn_app_with(|o| o.base_domain = Some("agenthq.test".into())).await;
    app.create_tenant("acme");
    let res = app
        .client
        .get(format!("{}/api/tenant", app.address))
        .header("Host", "acme.agenthq.test")
        .send()
        .await
        .unwrap();
    let (status, body) = crate::helpers::json(res).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["slug"], "acme");
}

#[tokio::test]
async fn a_subdomain_and_a_header_naming_different_tenants_is_a_mismatch() {
    let app = spawn_app_with(|o| o.base_domain = Some("agenthq.test".into())).await;
    app.create_tenant("acme");
    app.create_tenant("globex");
    let res = app
        .client
        .get(format!("{}/api/tenant", app.address))
        .header("Host", "acme.agenthq.test")
        .header("X-Tenant", "globex")
        .send()
        .await
        .unwrap();
    let (status, body) = crate::helpers::json(res).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "TENANT_MISMATCH");
}

#[tokio::test]
async fn suspended_and_deleted_tenants_get_their_own_errors_and_resume_restores_service() {
    let app = spawn_app().await;
    app.create_tenant("acme");
    let lifecycle = &app.state.lifecycle;

    lifecycle.suspend("acme").unwrap();
    app.state.sync_directory_now().unwrap();
    let (status, body) = app.get_tenant("acme").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "TENANT_SUSPENDED");

    lifecycle.delete("acme").unwrap();
    app.state.sync_directory_now().unwrap();
    let (status, body) = app.get_tenant("acme").await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(error_code(&body), "TENANT_DELETED");

    lifecycle.resume("acme").unwrap();
    app.state.sync_directory_now().unwrap();
    let (status, body) = app.get_tenant("acme").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_status_change_made_by_the_cli_reaches_a_running_server_within_a_second() {
    let app = spawn_app().await;
    app.create_tenant("acme");
    assert_eq!(app.get_tenant("acme").await.0, StatusCode::OK);

    let out = agenthq(app.data_path(), &["tenant", "suspend", "acme"]);
    assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
    let took = eventually(Duration::from_secs(1), || async {
        app.get_tenant("acme").await.0 == StatusCode::FORBIDDEN
    })
    .await;
    assert!(took.is_some(), "suspension not seen within a second");

    let out = agenthq(app.data_path(), &["tenant", "create", "globex"]);
    assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
    let took = eventually(Duration::from_secs(1), || async {
        app.get_tenant("globex").await.0 == StatusCode::OK
    })
    .await;
    assert!(took.is_some(), "new tenant not served within a second");
}

#[tokio::test]
async fn a_tenant_purged_by_the_cli_is_no_longer_found_by_the_server() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme");
    assert_eq!(app.get_tenant("acme").await.0, StatusCode::OK);
    for cmd in [["tenant", "delete", "acme"], ["tenant", "purge", "acme"]] {
        let out = agenthq(app.data_path(), &cmd);
        assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
    }
    let took = eventually(Duration::from_secs(1), || async {
        app.get_tenant("acme").await.0 == StatusCode::NOT_FOUND
            && app.state.storage.tenants.open_count() == 0
    })
    .await;
    assert!(took.is_some(), "purge not seen within a second");
    assert!(!app.tenant_file(&acme).exists(), "purged data must be gone");
}
