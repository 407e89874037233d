//! An agent's tool permissions over HTTP: the workspace defaults merged with its overrides.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{create_agent, field_named};
use crate::helpers::{api, spawn_app, tenant_with};

#[tokio::test]
async fn an_agent_sees_the_workspace_tools_merged_with_its_overrides() {
    // Arrange
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    create_agent(&app, &admin, json!({ "name": "scout" })).await;

    // Act: deny one tool by name, allow another by id, then remove the first override.
    let (status, before) = api(
        &app,
        &admin,
        Method::GET,
        "/api/agents/scout/tool-permissions",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{before}");
    let items = before["items"].as_array().expect("items");
    assert_eq!(items.len(), 9, "the nine platform tools: {before}");
    assert!(
        items
            .iter()
            .all(|t| t["enabled"] == true && t["overridden"] == false)
    );
    let get_task_id = items
        .iter()
        .find(|t| t["name"] == "get_task")
        .expect("get_task")["id"]
        .clone();
    let (status, after) = api(
        &app,
        &admin,
        Method::PATCH,
        "/api/agents/scout/tool-permissions",
        Some(
            json!({ "overrides": { "delegate_task": false, get_task_id.as_str().unwrap(): true } }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{after}");
    let tool = |view: &Value, name: &str| -> Value {
        view["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .expect("tool listed")
    };
    let delegate = tool(&after, "delegate_task");
    assert_eq!(delegate["enabled"], false);
    assert_eq!(delegate["workspace_enabled"], true);
    assert_eq!(delegate["overridden"], true);
    assert_eq!(tool(&after, "get_task")["overridden"], true);
    assert_eq!(tool(&after, "send_message")["overridden"], false);

    let (status, reset) = api(
        &app,
        &admin,
        Method::PATCH,
        "/api/agents/scout/tool-permissions",
        Some(json!({ "overrides": { "delegate_task": null } })),
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{reset}");
    assert_eq!(tool(&reset, "delegate_task")["enabled"], true);
    assert_eq!(tool(&reset, "delegate_task")["overridden"], false);
    assert_eq!(tool(&reset, "get_task")["overridden"], true, "others stay");
    let (_, read) = api(
        &app,
        &admin,
        Method::GET,
        "/api/agents/scout/tool-permissions",
        None,
    )
    .await;
    assert_eq!(read, reset);
}

#[tokio::test]
async fn agent_tool_overrides_refuse_unknown_tools_and_non_admins() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let member = tenant_with(&app, "acme", "member");
    create_agent(&app, &admin, json!({ "name": "scout" })).await;
    let path = "/api/agents/scout/tool-permissions";

    let (status, body) = api(
        &app,
        &admin,
        Method::PATCH,
        path,
        Some(json!({ "overrides": { "launch_missiles": true, "send_message": false } })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        field_named(&body, "overrides.launch_missiles").is_some(),
        "{body}"
    );
    let (_, view) = api(&app, &admin, Method::GET, path, None).await;
    assert!(
        view["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|t| t["overridden"] == false),
        "nothing applied from a refused request"
    );
    for bad in [
        json!({ "overrides": { "send_message": "no" } }),
        json!({ "send_message": false }),
    ] {
        let (status, body) = api(&app, &admin, Method::PATCH, path, Some(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let (status, _) = api(
        &app,
        &member,
        Method::PATCH,
        path,
        Some(json!({ "overrides": { "send_message": false } })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api(&app, &member, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "members read them");
}
