//! Agents over HTTP: create, read, change, delete, list; the org chart and tool overrides
//! in the submodules.

mod org;
mod schema;
mod tool_permissions;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use agenthq::store::TenantStore;

use crate::helpers::{TestApp, api, error_code, spawn_app, tenant_with};

/// The tenant's store, as the services see it.
fn store(app: &TestApp, slug: &str) -> std::sync::Arc<dyn TenantStore> {
    let tenant = app.state.directory.get(slug).expect("tenant");
    app.state
        .storage
        .tenants
        .open(tenant.id)
        .expect("store opens")
}

/// Creates an agent from `body`, asserting it worked; returns it.
async fn create_agent(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, agent) = api(app, token, Method::POST, "/api/agents", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    agent
}

/// Runs `sql` directly on a tenant's database file (what the runtime and the task API will do
/// through their own repositories).
fn tenant_sql(app: &TestApp, slug: &str, sql: &str, params: &[&dyn rusqlite::ToSql]) {
    let tenant = app.state.directory.get(slug).expect("tenant");
    let conn = rusqlite::Connection::open(app.tenant_file(&tenant)).expect("tenant file opens");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("busy timeout");
    conn.execute(sql, params).expect("statement runs");
}

fn insert_task(app: &TestApp, slug: &str, id: &str, status: &str, assignee: &str) {
    tenant_sql(
        app,
        slug,
        "INSERT INTO tasks (id, prompt, status, assignee_id, created_at, updated_at) \
         VALUES (?1, 'do it', ?2, ?3, '2026-11-23T00:00:00.000Z', '2026-11-23T00:00:00.000Z')",
        &[&id, &status, &assignee],
    );
}

fn task_assignee(app: &TestApp, slug: &str, id: &str) -> Option<String> {
    let tenant = app.state.directory.get(slug).expect("tenant");
    let conn = rusqlite::Connection::open(app.tenant_file(&tenant)).expect("tenant file opens");
    conn.query_row("SELECT assignee_id FROM tasks WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .expect("task exists")
}

fn field_named<'a>(body: &'a Value, field: &str) -> Option<&'a Value> {
    body["error"]["details"]["fields"].get(field)
}

#[tokio::test]
async fn a_member_creates_an_agent_and_reads_it_by_id_and_by_name() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");

    // Act
    let created = create_agent(
        &app,
        &member,
        json!({
            "name": "lead-engineer",
            "display_name": "Ada ✓ 🚀",
            "role": "Engineering lead",
            "department": "engineering",
            "level": "lead",
            "personality": "You are careful.\nYou test.",
            "model": "claude-x",
            "monthly_budget_usd": 12.5,
            "avatar_color": "#4F46E5"
        }),
    )
    .await;

    // Assert
    assert_eq!(created["name"], "lead-engineer");
    assert_eq!(created["display_name"], "Ada ✓ 🚀");
    assert_eq!(created["level"], "lead");
    assert_eq!(created["status"], "idle");
    assert_eq!(created["monthly_budget_usd"], 12.5);
    assert_eq!(created["spent_this_month_usd"], 0.0);
    assert_eq!(created["reports_to"], Value::Null);
    assert_eq!(created["avatar_color"], "#4f46e5", "kept in lowercase");
    let id = created["id"].as_str().expect("id");
    for path in [
        format!("/api/agents/{id}"),
        "/api/agents/lead-engineer".into(),
    ] {
        let (status, read) = api(&app, &member, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {read}");
        assert_eq!(read, created, "{path}");
    }
}

#[tokio::test]
async fn a_member_changes_and_deletes_an_agent_by_name() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    create_agent(
        &app,
        &member,
        json!({ "name": "scout", "model": "m-1", "monthly_budget_usd": 5, "avatar_color": "#000000" }),
    )
    .await;

    // Act
    let (status, updated) = api(
        &app,
        &member,
        Method::PATCH,
        "/api/agents/scout",
        Some(json!({
            "name": "ranger",
            "department": "research",
            "level": "c-suite",
            "status": "paused",
            "model": null,
            "monthly_budget_usd": null,
            "avatar_color": null
        })),
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "ranger");
    assert_eq!(updated["display_name"], "scout", "untouched fields stay");
    assert_eq!(updated["level"], "c-suite");
    assert_eq!(updated["status"], "paused");
    assert_eq!(updated["model"], Value::Null, "null clears");
    assert_eq!(updated["monthly_budget_usd"], Value::Null);
    assert_eq!(updated["avatar_color"], Value::Null);
    let (status, _) = api(&app, &member, Method::GET, "/api/agents/scout", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the old name is gone");
    let (status, _) = api(&app, &member, Method::DELETE, "/api/agents/ranger", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api(&app, &member, Method::GET, "/api/agents/ranger", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn a_taken_name_is_a_409_conflict() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    create_agent(&app, &member, json!({ "name": "alpha" })).await;
    create_agent(&app, &member, json!({ "name": "beta" })).await;

    let (status, body) = api(
        &app,
        &member,
        Method::POST,
        "/api/agents",
        Some(json!({ "name": "alpha" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "CONFLICT");
    assert!(body["error"]["message"].as_str().unwrap().contains("alpha"));

    let (status, body) = api(
        &app,
        &member,
        Method::PATCH,
        "/api/agents/beta",
        Some(json!({ "name": "alpha" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "a rename too: {body}");
}

#[tokio::test]
async fn a_viewer_reads_agents_but_cannot_create_change_or_delete_them() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let viewer = tenant_with(&app, "acme", "viewer");
    create_agent(&app, &member, json!({ "name": "alpha" })).await;

    // Act / Assert
    let (status, body) = api(
        &app,
        &viewer,
        Method::POST,
        "/api/agents",
        Some(json!({ "name": "mine" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_code(&body), "FORBIDDEN");
    let (status, _) = api(
        &app,
        &viewer,
        Method::POST,
        "/api/agents",
        Some(json!({ "name": 42 })),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the role is checked before the body"
    );
    let (status, _) = api(
        &app,
        &viewer,
        Method::PATCH,
        "/api/agents/alpha",
        Some(json!({ "role": "x" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api(&app, &viewer, Method::DELETE, "/api/agents/alpha", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, list) = api(&app, &viewer, Method::GET, "/api/agents", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    let (status, _) = api(&app, &viewer, Method::GET, "/api/org", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bad_agent_fields_are_400s_naming_the_field() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    create_agent(&app, &member, json!({ "name": "alpha" })).await;
    for (body, field) in [
        (json!({ "name": "x", "level": "boss" }), "level"),
        (json!({ "name": "a".repeat(65) }), "name"),
        (json!({ "name": "Not A Slug" }), "name"),
        (json!({ "name": "ünïcode" }), "name"),
        (json!({ "name": "" }), "name"),
        (json!({ "name": 42 }), "body"),
        (json!({ "display_name": "no name" }), "body"),
        (json!({ "name": "x", "colour": "red" }), "body"),
        (json!({ "name": "x", "monthly_budget_usd": "lots" }), "body"),
        (
            json!({ "name": "x", "monthly_budget_usd": -1 }),
            "monthly_budget_usd",
        ),
        (
            json!({ "name": "x", "display_name": "é".repeat(201) }),
            "display_name",
        ),
        (json!({ "name": "x", "role": "a\nb" }), "role"),
        (
            json!({ "name": "x", "avatar_color": "red" }),
            "avatar_color",
        ),
        (
            json!({ "name": "x", "personality": "p".repeat(100 * 1024 + 1) }),
            "personality",
        ),
        (json!({ "name": "x", "reports_to": "nobody" }), "reports_to"),
        (
            json!({ "name": "x", "provider_id": "no-such-provider" }),
            "provider_id",
        ),
    ] {
        let (status, res) = api(&app, &member, Method::POST, "/api/agents", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {res}");
        assert_eq!(error_code(&res), "VALIDATION_FAILED");
        assert!(field_named(&res, field).is_some(), "{field}: {res}");
    }
    for (patch, field) in [
        (json!({ "level": "intern" }), "level"),
        (json!({ "status": "running" }), "status"),
        (json!({ "name": "Bad Name" }), "name"),
        (json!({ "reports_to": 7 }), "body"),
    ] {
        let (status, res) = api(
            &app,
            &member,
            Method::PATCH,
            "/api/agents/alpha",
            Some(patch),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {res}");
        assert!(field_named(&res, field).is_some(), "{field}: {res}");
    }
}

#[tokio::test]
async fn an_existing_provider_may_be_named() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    tenant_sql(
        &app,
        "acme",
        "INSERT INTO providers (id, kind, name, created_at, updated_at) \
         VALUES ('prov-1', 'anthropic', 'main', '2026-11-23T00:00:00.000Z', '2026-11-23T00:00:00.000Z')",
        &[],
    );

    let agent = create_agent(
        &app,
        &member,
        json!({ "name": "x", "provider_id": "prov-1" }),
    )
    .await;

    assert_eq!(agent["provider_id"], "prov-1");
}

#[tokio::test]
async fn an_unknown_or_malformed_agent_id_is_a_404() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let long = "z".repeat(2000);
    for id in [
        "0193a5b0-0000-7000-8000-000000000000",
        "not-an-agent",
        "%E2%9C%93",
        "a.b",
        long.as_str(),
    ] {
        for method in [Method::GET, Method::DELETE] {
            let path = format!("/api/agents/{id}");
            let (status, body) = api(&app, &member, method.clone(), &path, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {id}: {body}");
        }
        let (status, _) = api(
            &app,
            &member,
            Method::PATCH,
            &format!("/api/agents/{id}"),
            Some(json!({ "role": "x" })),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = api(
            &app,
            &member,
            Method::GET,
            &format!("/api/agents/{id}/tool-permissions"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn another_tenants_agent_is_not_found() {
    let app = spawn_app().await;
    let acme = tenant_with(&app, "acme", "owner");
    let globex = tenant_with(&app, "globex", "owner");
    let theirs = create_agent(&app, &globex, json!({ "name": "secret-agent" })).await;
    let id = theirs["id"].as_str().expect("id");

    for path in [
        format!("/api/agents/{id}"),
        "/api/agents/secret-agent".into(),
    ] {
        let (status, body) = api(&app, &acme, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        let (status, _) = api(&app, &acme, Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, body) = api(
        &app,
        &acme,
        Method::POST,
        "/api/agents",
        Some(json!({ "name": "mole", "reports_to": id })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, list) = api(&app, &acme, Method::GET, "/api/agents", None).await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn pages_of_agents_stay_stable_when_agents_are_added_between_pages() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    for name in ["a1", "a2", "a3"] {
        create_agent(&app, &member, json!({ "name": name })).await;
    }

    // Act
    let (status, first) = api(&app, &member, Method::GET, "/api/agents?limit=2", None).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    create_agent(&app, &member, json!({ "name": "a0-late" })).await;
    let cursor = first["next_cursor"].as_str().expect("a cursor");
    let (status, second) = api(
        &app,
        &member,
        Method::GET,
        &format!("/api/agents?limit=2&cursor={cursor}"),
        None,
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{second}");
    let names = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|a| a["name"].as_str().expect("name").to_owned())
            .collect()
    };
    assert_eq!(names(&first), ["a1", "a2"]);
    assert_eq!(names(&second), ["a3", "a0-late"], "no repeats, no gaps");
    assert_eq!(second["next_cursor"], Value::Null);
}

#[tokio::test]
async fn agents_can_be_filtered_and_bad_filters_are_400s_naming_them() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    create_agent(
        &app,
        &member,
        json!({ "name": "eng-1", "department": "eng", "level": "lead" }),
    )
    .await;
    create_agent(
        &app,
        &member,
        json!({ "name": "eng-2", "department": "eng" }),
    )
    .await;
    create_agent(
        &app,
        &member,
        json!({ "name": "ops-1", "department": "ops", "level": "lead" }),
    )
    .await;

    let (status, page) = api(
        &app,
        &member,
        Method::GET,
        "/api/agents?department=eng&level=lead",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["items"][0]["name"], "eng-1");
    let (_, idle) = api(&app, &member, Method::GET, "/api/agents?status=idle", None).await;
    assert_eq!(idle["items"].as_array().map(Vec::len), Some(3));

    for (query, field) in [
        ("level=boss", "level"),
        ("status=asleep", "status"),
        ("limit=0", "limit"),
        ("limit=abc", "query"),
        ("cursor=!!!", "cursor"),
        ("colour=red", "query"),
    ] {
        let (status, body) = api(
            &app,
            &member,
            Method::GET,
            &format!("/api/agents?{query}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(field_named(&body, field).is_some(), "{query}: {body}");
    }
}

#[tokio::test]
async fn agent_changes_are_published_and_audited() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let admin = tenant_with(&app, "acme", "admin");
    let tenant = app.state.directory.get("acme").expect("tenant");
    let mut events = app.state.events.subscribe(tenant.id);

    // Act
    let agent = create_agent(&app, &member, json!({ "name": "herald" })).await;
    let (status, _) = api(
        &app,
        &member,
        Method::PATCH,
        "/api/agents/herald",
        Some(json!({ "personality": "long text".repeat(100), "role": "announcer" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api(&app, &member, Method::DELETE, "/api/agents/herald", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Assert
    let kinds: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| (e.kind, e.data()["name"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("agent.created", json!("herald")),
            ("agent.updated", json!("herald")),
            ("agent.deleted", json!("herald")),
        ]
    );
    let (_, audit) = api(
        &app,
        &admin,
        Method::GET,
        &format!(
            "/api/audit?target_type=agent&target_id={}",
            agent["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    let actions: Vec<_> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(actions, ["agent.deleted", "agent.updated", "agent.created"]);
    let updated = &audit["items"][1];
    assert_eq!(updated["details"]["fields"], json!(["role", "personality"]));
    assert!(
        !updated.to_string().contains("long text"),
        "the audit log names fields, not long values"
    );
}

#[tokio::test]
async fn the_database_itself_refuses_agent_names_that_are_not_slugs() {
    // Arrange: a writer that bypasses the API (a seeder, an importer).
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    create_agent(&app, &member, json!({ "name": "fine" })).await;
    let tenant = app.state.directory.get("acme").expect("tenant");
    let conn = rusqlite::Connection::open(app.tenant_file(&tenant)).expect("tenant file opens");

    // Act
    let insert = conn.execute(
        "INSERT INTO agents (id, name, display_name, created_at, updated_at) \
         VALUES ('x1', 'Not A Slug', 'x', '2026-11-23T00:00:00.000Z', '2026-11-23T00:00:00.000Z')",
        [],
    );
    let rename = conn.execute("UPDATE agents SET name = 'fine!' WHERE name = 'fine'", []);

    // Assert
    assert!(insert.is_err() && rename.is_err(), "{insert:?} {rename:?}");
    let (status, list) = api(&app, &member, Method::GET, "/api/agents", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
}
