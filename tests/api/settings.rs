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
    assert_eq!(event.data()["description"], "We build rockets");
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

#[tokio::test]
async fn workspace_defaults_must_name_an_existing_agent_and_provider() {
    // Arrange
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let (status, agent) = api(
        &app,
        &admin,
        Method::POST,
        "/api/agents",
        Some(json!({ "name": "dispatcher" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");

    // Act
    let (status, body) = api(
        &app,
        &admin,
        Method::PATCH,
        "/api/workspace",
        Some(json!({ "default_assignee_id": "dispatcher" })),
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["default_assignee_id"], agent["id"]);
    for (patch, field) in [
        (
            json!({ "default_assignee_id": "nobody" }),
            "default_assignee_id",
        ),
        (
            json!({ "default_provider_id": "no-such-provider" }),
            "default_provider_id",
        ),
    ] {
        let (status, res) = api(&app, &admin, Method::PATCH, "/api/workspace", Some(patch)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
        assert!(
            res["error"]["details"]["fields"].get(field).is_some(),
            "{field}: {res}"
        );
    }
    // An existing provider is accepted.
    let tenant = app.state.directory.get("acme").expect("tenant");
    rusqlite::Connection::open(app.tenant_file(&tenant))
        .expect("tenant file opens")
        .execute(
            "INSERT INTO providers (id, kind, name, created_at, updated_at) VALUES \
             ('prov-1', 'openai', 'local', '2026-11-23T00:00:00.000Z', '2026-11-23T00:00:00.000Z')",
            [],
        )
        .expect("provider inserted");
    let (status, body) = api(
        &app,
        &admin,
        Method::PATCH,
        "/api/workspace",
        Some(json!({ "default_provider_id": "prov-1" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["default_provider_id"], "prov-1");
    // Deleting the agent clears it as the default assignee.
    let (status, _) = api(&app, &admin, Method::DELETE, "/api/agents/dispatcher", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, ws) = api(&app, &admin, Method::GET, "/api/workspace", None).await;
    assert_eq!(ws["default_assignee_id"], serde_json::Value::Null);
}

#[tokio::test]
async fn every_tenant_starts_with_the_nine_platform_tools_enabled() {
    let app = spawn_app().await;
    let viewer = tenant_with(&app, "acme", "viewer");

    let (status, page) = api(&app, &viewer, Method::GET, "/api/tool-permissions", None).await;

    assert_eq!(status, StatusCode::OK, "{page}");
    let names: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "delegate_task",
            "finish_task",
            "get_task",
            "list_agents",
            "post_board_item",
            "query_board",
            "read_messages",
            "send_message",
            "update_task"
        ]
    );
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["enabled"] == true
                && !t["description"].as_str().unwrap_or_default().is_empty())
    );
    assert_eq!(page["next_cursor"], serde_json::Value::Null);
    assert_eq!(page["items"][0]["icon"], "share-2", "seeded with icons");
    let (_, small) = api(
        &app,
        &viewer,
        Method::GET,
        "/api/tool-permissions?limit=5",
        None,
    )
    .await;
    let cursor = small["next_cursor"].as_str().expect("a second page");
    let (_, rest) = api(
        &app,
        &viewer,
        Method::GET,
        &format!("/api/tool-permissions?limit=5&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn an_admin_manages_tool_permissions_and_a_member_only_reads_them() {
    // Arrange
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let member = tenant_with(&app, "acme", "member");
    let tenant = app.state.directory.get("acme").expect("tenant");
    let mut events = app.state.events.subscribe(tenant.id);

    // Act / Assert: create
    let (status, created) = api(
        &app,
        &admin,
        Method::POST,
        "/api/tool-permissions",
        Some(json!({ "name": "web_search", "description": "Search the web", "icon": "globe" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["enabled"], true, "enabled unless said otherwise");
    assert_eq!(created["icon"], "globe");
    let id = created["id"].as_str().expect("id").to_owned();

    // A member reads it, by id and by name, but cannot change it.
    for path in [
        format!("/api/tool-permissions/{id}"),
        "/api/tool-permissions/web_search".into(),
    ] {
        let (status, read) = api(&app, &member, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(read, created);
    }
    let (status, _) = api(
        &app,
        &member,
        Method::PATCH,
        "/api/tool-permissions/web_search",
        Some(json!({ "enabled": false })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api(
        &app,
        &member,
        Method::POST,
        "/api/tool-permissions",
        Some(json!({ "name": "mine" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Duplicate names conflict.
    let (status, body) = api(
        &app,
        &admin,
        Method::POST,
        "/api/tool-permissions",
        Some(json!({ "name": "web_search" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = api(
        &app,
        &admin,
        Method::PATCH,
        "/api/tool-permissions/web_search",
        Some(json!({ "name": "send_message" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Update and delete.
    let (status, updated) = api(
        &app,
        &admin,
        Method::PATCH,
        "/api/tool-permissions/web_search",
        Some(json!({ "enabled": false, "icon": null })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["icon"], serde_json::Value::Null);
    assert_eq!(updated["description"], "Search the web");
    let (status, _) = api(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/tool-permissions/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api(
        &app,
        &admin,
        Method::GET,
        &format!("/api/tool-permissions/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let kinds: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "tool_permission.created",
            "tool_permission.updated",
            "tool_permission.deleted"
        ]
    );
    let (_, audit) = api(
        &app,
        &admin,
        Method::GET,
        &format!("/api/audit?target_type=tool_permission&target_id={id}"),
        None,
    )
    .await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(3), "{audit}");
}

#[tokio::test]
async fn bad_tool_permissions_are_400s_naming_the_field() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    for (body, field) in [
        (json!({ "name": "has space" }), "name"),
        (json!({ "name": "t".repeat(65) }), "name"),
        (
            json!({ "name": "ok", "description": "d".repeat(1001) }),
            "description",
        ),
        (json!({ "name": "ok", "enabled": "yes" }), "body"),
        (json!({ "nmae": "ok" }), "body"),
    ] {
        let (status, res) = api(
            &app,
            &admin,
            Method::POST,
            "/api/tool-permissions",
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {res}");
        assert!(
            res["error"]["details"]["fields"].get(field).is_some(),
            "{field}: {res}"
        );
    }
    let (status, _) = api(
        &app,
        &admin,
        Method::PATCH,
        "/api/tool-permissions/no-such-tool",
        Some(json!({ "enabled": true })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
