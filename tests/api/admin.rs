//! The platform admin API for tenants.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Browser, TestApp, add_user, call_as, error_code, json, sign_in, spawn_with_admin,
};

async fn call(
    app: &TestApp,
    b: &Browser,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    call_as(app, b, method, path, None, body).await
}

#[tokio::test]
async fn a_platform_admin_runs_the_whole_tenant_lifecycle_over_http() {
    use reqwest::Method;
    let (app, admin) = spawn_with_admin().await;

    let (status, body) = call(
        &app,
        &admin,
        Method::POST,
        "/api/admin/tenants",
        Some(json!({"slug": "acme", "name": "Acme Inc", "plan": "team"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["slug"], "acme");
    assert_eq!(body["plan"], "team");
    assert_eq!(body["status"], "active");
    assert_eq!(
        app.get_tenant("acme").await.0,
        StatusCode::OK,
        "served at once"
    );

    let (status, body) = call(&app, &admin, Method::GET, "/api/admin/tenants", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"][0]["slug"], "acme");
    assert_eq!(body["next_cursor"], Value::Null);

    assert_eq!(
        call(
            &app,
            &admin,
            Method::POST,
            "/api/admin/tenants/acme/suspend",
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        error_code(&app.get_tenant("acme").await.1),
        "TENANT_SUSPENDED"
    );
    assert_eq!(
        call(
            &app,
            &admin,
            Method::POST,
            "/api/admin/tenants/acme/resume",
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(app.get_tenant("acme").await.0, StatusCode::OK);

    assert_eq!(
        call(
            &app,
            &admin,
            Method::DELETE,
            "/api/admin/tenants/acme",
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        error_code(&app.get_tenant("acme").await.1),
        "TENANT_DELETED"
    );
    let (status, body) = call(&app, &admin, Method::GET, "/api/admin/tenants/acme", None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("deleted"))
    );

    assert_eq!(
        call(
            &app,
            &admin,
            Method::DELETE,
            "/api/admin/tenants/acme?purge=true",
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        error_code(&app.get_tenant("acme").await.1),
        "TENANT_NOT_FOUND"
    );
    let (status, body) = call(&app, &admin, Method::GET, "/api/admin/tenants/acme", None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "TENANT_NOT_FOUND")
    );
}

#[tokio::test]
async fn bad_and_duplicate_tenants_are_refused_with_the_field_named() {
    use reqwest::Method;
    let (app, admin) = spawn_with_admin().await;
    for (body, field) in [
        (json!({"slug": "Bad Slug"}), "slug"),
        (json!({"slug": "www"}), "slug"),
        (json!({"slug": "acme", "plan": "gold"}), "plan"),
        (json!({"slug": "acme", "name": "   "}), "name"),
    ] {
        let (status, res) = call(
            &app,
            &admin,
            Method::POST,
            "/api/admin/tenants",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {res}");
        assert_eq!(error_code(&res), "VALIDATION_FAILED");
        assert!(
            res["error"]["details"]["fields"].get(field).is_some(),
            "{res}"
        );
    }
    assert_eq!(
        call(
            &app,
            &admin,
            Method::POST,
            "/api/admin/tenants",
            Some(json!({"slug": "acme"}))
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let (status, res) = call(
        &app,
        &admin,
        Method::POST,
        "/api/admin/tenants",
        Some(json!({"slug": "acme"})),
    )
    .await;
    assert_eq!(
        (status, error_code(&res)),
        (StatusCode::CONFLICT, "CONFLICT")
    );
    let (status, res) = call(
        &app,
        &admin,
        Method::GET,
        "/api/admin/tenants?limit=0",
        None,
    )
    .await;
    assert_eq!(
        (status, error_code(&res)),
        (StatusCode::BAD_REQUEST, "VALIDATION_FAILED")
    );
}

#[tokio::test]
async fn only_signed_in_platform_admins_may_use_the_admin_api() {
    let (app, admin) = spawn_with_admin().await;
    let url = format!("{}/api/admin/tenants", app.address);

    let (status, body) = json(app.client.get(&url).send().await.unwrap()).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
    );

    // A plain user, signed in.
    add_user(&app, "ada@example.com", None);
    let ada = sign_in(&app, "ada@example.com").await;
    let (status, body) = call(
        &app,
        &ada,
        reqwest::Method::POST,
        "/api/admin/tenants",
        Some(json!({"slug": "acme"})),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "FORBIDDEN")
    );

    // The admin without the CSRF token.
    let res = app
        .client
        .post(&url)
        .header("Cookie", &admin.cookie)
        .json(&json!({"slug": "acme"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "FORBIDDEN")
    );
    assert_eq!(
        app.get_tenant("acme").await.0,
        StatusCode::NOT_FOUND,
        "nothing was created"
    );
}
