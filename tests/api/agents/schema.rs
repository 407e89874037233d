//! The OpenAPI document against what the agent routes really send.

use reqwest::Method;
use serde_json::{Value, json};

use super::create_agent;
use crate::helpers::{api, spawn_app, tenant_with};

/// Asserts that `value` has exactly the properties schema `name` of the OpenAPI document lists.
fn assert_fits_schema(doc: &Value, name: &str, value: &Value) {
    let schema = &doc["components"]["schemas"][name];
    let mut declared: Vec<&str> = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {name} is in the document"))
        .keys()
        .map(String::as_str)
        .collect();
    let mut sent: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("{name} is an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    declared.sort_unstable();
    sent.sort_unstable();
    assert_eq!(sent, declared, "{name}: {value}");
}

#[tokio::test]
async fn agent_responses_have_exactly_the_fields_the_openapi_document_declares() {
    // Arrange
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    create_agent(&app, &admin, json!({ "name": "boss" })).await;
    let agent = create_agent(
        &app,
        &admin,
        json!({ "name": "aide", "reports_to": "boss" }),
    )
    .await;
    let (_, doc) = crate::helpers::json(app.get("/api/openapi.json").await).await;

    // Act
    let (_, page) = api(&app, &admin, Method::GET, "/api/agents?limit=1", None).await;
    let (_, org) = api(&app, &admin, Method::GET, "/api/org", None).await;
    let (_, tools) = api(
        &app,
        &admin,
        Method::GET,
        "/api/agents/aide/tool-permissions",
        None,
    )
    .await;
    let (_, tool_page) = api(&app, &admin, Method::GET, "/api/tool-permissions", None).await;

    // Assert
    assert_fits_schema(&doc, "Agent", &agent);
    assert_fits_schema(&doc, "AgentPage", &page);
    assert_fits_schema(&doc, "OrgChart", &org);
    assert_fits_schema(&doc, "OrgNode", &org["roots"][0]);
    assert_fits_schema(&doc, "OrgNode", &org["roots"][0]["reports"][0]);
    assert_fits_schema(&doc, "AgentToolPermissions", &tools);
    assert_fits_schema(&doc, "AgentToolPermission", &tools["items"][0]);
    assert_fits_schema(&doc, "ToolPermissionPage", &tool_page);
    assert_fits_schema(&doc, "ToolPermission", &tool_page["items"][0]);
}
