//! A tenant whose database file is deleted, damaged or swapped underneath fails alone.

use reqwest::StatusCode;

use std::time::Duration;

use crate::helpers::{TestApp, error_code, eventually, spawn_app};

/// An open tenant's file is re-checked at most every 50 ms; allow generously more.
const NOTICE_WITHIN: Duration = Duration::from_secs(2);

/// Polls until `slug` answers `status`.
async fn until_status(app: &TestApp, slug: &str, status: StatusCode) {
    let seen = eventually(NOTICE_WITHIN, || async {
        app.get_tenant(slug).await.0 == status
    })
    .await;
    assert!(seen.is_some(), "{slug} never answered {status}");
}

/// Asserts that `broken` answers 503 TENANT_UNAVAILABLE with a message containing `why` and
/// no file paths, while `healthy` and the health endpoints keep working.
async fn assert_only_tenant_unavailable(app: &TestApp, broken: &str, why: &str, healthy: &str) {
    let (status, body) = app.get_tenant(broken).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), "TENANT_UNAVAILABLE");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(why), "{message}");
    assert!(
        !body.to_string().contains(app.data_path().to_str().unwrap()),
        "no paths leaked: {body}"
    );
    assert_eq!(app.get_tenant(healthy).await.0, StatusCode::OK);
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_tenant_file_deleted_underneath_fails_only_that_tenant() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme");
    app.create_tenant("globex");
    assert_eq!(app.get_tenant("acme").await.0, StatusCode::OK); // pool now open

    std::fs::remove_file(app.tenant_file(&acme)).unwrap();

    until_status(&app, "acme", StatusCode::SERVICE_UNAVAILABLE).await;
    assert_only_tenant_unavailable(&app, "acme", "missing", "globex").await;
}

#[tokio::test]
async fn a_corrupted_tenant_file_fails_only_that_tenant() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme");
    app.create_tenant("globex");

    std::fs::write(app.tenant_file(&acme), vec![0xA5u8; 64 * 1024]).unwrap();

    assert_only_tenant_unavailable(&app, "acme", "damaged", "globex").await;
}

#[tokio::test]
async fn another_tenants_file_copied_onto_a_tenants_path_is_refused() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme");
    let globex = app.create_tenant("globex");

    std::fs::copy(app.tenant_file(&globex), app.tenant_file(&acme)).unwrap();

    assert_only_tenant_unavailable(&app, "acme", "damaged", "globex").await;
}

#[tokio::test]
async fn a_sqlite_file_that_is_not_a_tenant_database_is_refused() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme");
    app.create_tenant("globex");

    std::fs::remove_file(app.tenant_file(&acme)).unwrap();
    let conn = rusqlite::Connection::open(app.tenant_file(&acme)).unwrap();
    conn.execute_batch("CREATE TABLE unrelated (x INTEGER);")
        .unwrap();
    drop(conn);

    assert_only_tenant_unavailable(&app, "acme", "damaged", "globex").await;
}

#[tokio::test]
async fn a_restored_file_is_served_again_without_a_restart() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme");
    let file = app.tenant_file(&acme);
    assert_eq!(app.get_tenant("acme").await.0, StatusCode::OK);

    // The operator moves the file away and back (as a restore would put a file in place).
    let aside = file.with_extension("bak");
    std::fs::rename(&file, &aside).unwrap();
    until_status(&app, "acme", StatusCode::SERVICE_UNAVAILABLE).await;
    std::fs::copy(&aside, &file).unwrap();
    assert_eq!(app.get_tenant("acme").await.0, StatusCode::OK);
}

#[tokio::test]
async fn open_tenants_are_bounded_by_the_lru_and_evicted_ones_reopen_on_demand() {
    let app = crate::helpers::spawn_app_with(|o| o.max_open_tenants = Some(2)).await;
    for slug in ["t-one", "t-two", "t-three"] {
        app.create_tenant(slug);
    }
    for _ in 0..2 {
        for slug in ["t-one", "t-two", "t-three"] {
            assert_eq!(app.get_tenant(slug).await.0, StatusCode::OK, "{slug}");
            assert!(app.state.storage.tenants.open_count() <= 2);
        }
    }
    assert_eq!(app.state.storage.tenants.open_count(), 2);
}
