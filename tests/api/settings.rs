//! Workspace settings and tool permissions over HTTP.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{api, error_code, spawn_app, tenant_with};

#[tokio::test]
async fn an_admin_changes_workspace_settings_and_a_viewer_reads_them() {
    // Arrange
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let viewer = tenant_with(&app, "acme", "viewer");

    // Act
    let (status, body) = api(
        &app,
        &admin,
        Method::PATCH,
        "/api/workspace",
        Some(json!({ "name": "Acme Labs", "timezone": "Europe/Berlin", "default_model": "m-1" })),
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Acme Labs");
    assert_eq!(body["timezone"], "Europe/Berlin");
    assert_eq!(body["language"], "en-US", "untouched fields stay");
    let (status, read) = api(&app, &viewer, Method::GET, "/api/workspace", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, body);
    let (_, cleared) = api(
        &app,
        &admin,
        Method::PATCH,
        "/api/workspace",
        Some(json!({ "default_model": null })),
    )
    .await;
    assert_eq!(
        cleared["default_model"],
        serde_json::Value::Null,
        "null clears"
    );
}

#[tokio::test]
async fn a_member_cannot_change_settings() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let (status, body) = api(
        &app,
        &member,
        Method::PATCH,
        "/api/workspace",
        Some(json!({ "name": "mine now" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_code(&body), "FORBIDDEN");
}

#[tokio::test]
async fn bad_workspace_settings_are_400s_naming_the_field() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    for (patch, field) in [
        (json!({ "timezone": "Mars/Olympus" }), "timezone"),
        (json!({ "language": "not a tag" }), "language"),
        (json!({ "name": "" }), "name"),
        (json!({ "name": "x".repeat(201) }), "name"),
        (json!({ "name": 42 }), "body"),
    ] {
        let (status, body) = api(&app, &admin, Method::PATCH, "/api/workspace", Some(patch)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&body), "VALIDATION_FAILED");
        assert!(
            body["error"]["details"]["fields"].get(field).is_some(),
            "{field}: {body}"
        );
    }
}

#[tokio::test]
async fn a_workspace_change_is_audited_and_published() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let tenant = app.state.directory.get("acme").expect("tenant");
    let mut events = app.state.events.subscribe(tenant.id);

    let (status, _) = api(
        &app,
        &admin,
        Method::PATCH,
        "/api/workspace",
        Some(json!({ "description": "We build rockets" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let event = events.try_recv().expect("an event was published");
    assert_eq!(event.kind, "workspace.updated");
    assert_eq!(event.data["description"], "We build rockets");
    let (_, audit) = api(
        &app,
        &admin,
        Method::GET,
        "/api/audit?action=workspace.updated",
        None,
    )
    .await;
    assert_eq!(
        audit["items"][0]["details"]["fields"],
        json!(["description"])
    );
}
