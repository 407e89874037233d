//! Board items over HTTP.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, api, error_code, spawn_app, tenant_with};

/// Adds an agent straight to the tenant's database (the agents API is built elsewhere) and
/// returns its id.
pub fn insert_agent(app: &TestApp, slug: &str, name: &str) -> String {
    let tenant = app.state.directory.get(slug).expect("tenant");
    let conn = rusqlite::Connection::open(app.tenant_file(&tenant)).expect("tenant db");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("busy timeout");
    let id = uuid::Uuid::now_v7().to_string();
    conn.execute(
        "INSERT INTO agents (id, name, display_name, created_at, updated_at) \
         VALUES (?1, ?2, ?2, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        [&id, name],
    )
    .expect("agent inserted");
    id
}

async fn post_item(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, item) = api(app, token, Method::POST, "/api/board-items", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    item
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn a_member_posts_an_item_and_a_viewer_reads_it() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let viewer = tenant_with(&app, "acme", "viewer");

    // Act
    let item = post_item(
        &app,
        &member,
        json!({ "type": "finding", "content": "Die Ölpreise steigen 📈 — see `report.md`" }),
    )
    .await;

    // Assert
    assert_eq!(item["type"], "finding");
    assert_eq!(item["content"], "Die Ölpreise steigen 📈 — see `report.md`");
    assert!(item["author_user_id"].is_string(), "the caller: {item}");
    assert_eq!(item["author_agent_id"], Value::Null);
    assert_eq!(item["archived_at"], Value::Null);
    let (status, page) = api(&app, &viewer, Method::GET, "/api/board-items", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0], item);
    assert_eq!(page["next_cursor"], Value::Null);
}

#[tokio::test]
async fn an_item_is_posted_as_an_agent_named_by_id_or_name() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let agent = insert_agent(&app, "acme", "researcher");

    for reference in ["researcher", agent.as_str()] {
        let item = post_item(
            &app,
            &member,
            json!({ "type": "status_update", "content": "done", "author_agent": reference }),
        )
        .await;
        assert_eq!(item["author_agent_id"], agent.as_str());
        assert_eq!(item["author_user_id"], Value::Null);
    }
}

#[tokio::test]
async fn an_unknown_author_agent_is_a_400_naming_author_agent() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");

    let (status, body) = api(
        &app,
        &member,
        Method::POST,
        "/api/board-items",
        Some(json!({ "type": "blocker", "content": "stuck", "author_agent": "ghost" })),
    )
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), "VALIDATION_FAILED");
    assert!(
        body["error"]["details"]["fields"]["author_agent"].is_string(),
        "{body}"
    );
}

#[tokio::test]
async fn bad_items_are_400s_naming_the_field() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    for (body, field) in [
        (json!({ "type": "memo", "content": "x" }), "body"),
        (json!({ "type": "finding", "content": " \n " }), "content"),
        (
            json!({ "type": "finding", "content": "x".repeat(100 * 1024 + 1) }),
            "content",
        ),
        (
            json!({ "type": "finding", "content": "a\u{0}b" }),
            "content",
        ),
        (json!({ "type": "finding" }), "body"),
        (
            json!({ "type": "finding", "content": "x", "author": "me" }),
            "body",
        ),
    ] {
        let (status, res) = api(&app, &member, Method::POST, "/api/board-items", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
        assert!(
            res["error"]["details"]["fields"].get(field).is_some(),
            "{field}: {res}"
        );
    }
    let (status, res) = api(
        &app,
        &member,
        Method::GET,
        "/api/board-items?since=yesterday",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        res["error"]["details"]["fields"]["since"].is_string(),
        "{res}"
    );
    let (status, res) = api(
        &app,
        &member,
        Method::GET,
        "/api/board-items?type=memo",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        res["error"]["details"]["fields"]["type"].is_string(),
        "{res}"
    );
    let (status, _) = api(
        &app,
        &member,
        Method::GET,
        "/api/board-items?cursor=%25%25",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_viewer_cannot_post_change_or_archive_items() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let viewer = tenant_with(&app, "acme", "viewer");
    let item = post_item(
        &app,
        &member,
        json!({ "type": "request", "content": "help" }),
    )
    .await;
    let id = item["id"].as_str().expect("id");

    for (method, path, body) in [
        (
            Method::POST,
            "/api/board-items".to_owned(),
            Some(json!({ "type": "request", "content": "x" })),
        ),
        (
            Method::PATCH,
            format!("/api/board-items/{id}"),
            Some(json!({ "content": "x" })),
        ),
        (Method::POST, format!("/api/board-items/{id}/archive"), None),
    ] {
        let (status, res) = api(&app, &viewer, method, &path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {res}");
        assert_eq!(error_code(&res), "FORBIDDEN");
    }
    let (_, page) = api(&app, &viewer, Method::GET, "/api/board-items", None).await;
    assert_eq!(page["items"][0]["content"], "help", "unchanged");
}

#[tokio::test]
async fn a_patch_changes_an_item_and_unknown_ids_are_404s() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let item = post_item(&app, &member, json!({ "type": "request", "content": "v1" })).await;
    let id = item["id"].as_str().expect("id");

    let (status, patched) = api(
        &app,
        &member,
        Method::PATCH,
        &format!("/api/board-items/{id}"),
        Some(json!({ "content": "v2 ✓", "type": "blocker" })),
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["content"], "v2 ✓");
    assert_eq!(patched["type"], "blocker");
    assert_eq!(patched["created_at"], item["created_at"]);
    let long = "ü".repeat(5000);
    for bad in [
        "0193a8d0-0000-7000-8000-000000000000",
        "not-an-id",
        long.as_str(),
    ] {
        for (method, path) in [
            (Method::PATCH, format!("/api/board-items/{bad}")),
            (Method::POST, format!("/api/board-items/{bad}/archive")),
        ] {
            let body = (method == Method::PATCH).then(|| json!({ "content": "x" }));
            let (status, res) = api(&app, &member, method, &path, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{res}");
        }
    }
}

#[tokio::test]
async fn archived_items_leave_the_board_and_archiving_twice_is_a_conflict() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let keep = post_item(
        &app,
        &member,
        json!({ "type": "finding", "content": "keep" }),
    )
    .await;
    let old = post_item(
        &app,
        &member,
        json!({ "type": "finding", "content": "old" }),
    )
    .await;
    let path = format!(
        "/api/board-items/{}/archive",
        old["id"].as_str().expect("id")
    );

    let (status, archived) = api(&app, &member, Method::POST, &path, None).await;

    assert_eq!(status, StatusCode::OK, "{archived}");
    assert!(archived["archived_at"].is_string());
    let (_, page) = api(&app, &member, Method::GET, "/api/board-items", None).await;
    assert_eq!(
        ids(&page),
        vec![keep["id"].as_str().expect("id").to_owned()]
    );
    let (_, all) = api(
        &app,
        &member,
        Method::GET,
        "/api/board-items?include_archived=true",
        None,
    )
    .await;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(2));
    let (status, res) = api(&app, &member, Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{res}");
}

#[tokio::test]
async fn the_board_is_filtered_by_type_and_time() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let first = post_item(&app, &member, json!({ "type": "blocker", "content": "a" })).await;
    let second = post_item(&app, &member, json!({ "type": "finding", "content": "b" })).await;
    let third = post_item(&app, &member, json!({ "type": "blocker", "content": "c" })).await;

    let (_, blockers) = api(
        &app,
        &member,
        Method::GET,
        "/api/board-items?type=blocker",
        None,
    )
    .await;
    assert_eq!(
        ids(&blockers),
        vec![
            third["id"].as_str().expect("id").to_owned(),
            first["id"].as_str().expect("id").to_owned()
        ]
    );
    let since = second["created_at"].as_str().expect("time");
    let (status, recent) = api(
        &app,
        &member,
        Method::GET,
        &format!("/api/board-items?since={since}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{recent}");
    assert!(
        !ids(&recent).contains(&first["id"].as_str().expect("id").to_owned()) || {
            // `first` may share `second`'s millisecond; then it is legitimately included.
            first["created_at"] == second["created_at"]
        }
    );
    assert!(ids(&recent).contains(&third["id"].as_str().expect("id").to_owned()));
    let (_, none) = api(
        &app,
        &member,
        Method::GET,
        "/api/board-items?since=2999-01-01T00:00:00Z",
        None,
    )
    .await;
    assert_eq!(none["items"], json!([]));
}

#[tokio::test]
async fn the_board_pages_newest_first_and_inserts_do_not_shift_pages() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let mut posted = Vec::new();
    for i in 0..5 {
        let item = post_item(
            &app,
            &member,
            json!({ "type": "finding", "content": format!("#{i}") }),
        )
        .await;
        posted.push(item["id"].as_str().expect("id").to_owned());
    }

    let mut seen = Vec::new();
    let mut path = "/api/board-items?limit=2".to_owned();
    loop {
        let (status, page) = api(&app, &member, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(ids(&page));
        // A new item between pages is newer than everything paged so far: not in later pages.
        post_item(
            &app,
            &member,
            json!({ "type": "finding", "content": "late" }),
        )
        .await;
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/board-items?limit=2&cursor={cursor}"),
            None => break,
        }
    }

    posted.reverse();
    assert_eq!(seen, posted, "each item once, newest first");
}

#[tokio::test]
async fn board_changes_are_audited_and_published() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let admin = tenant_with(&app, "acme", "admin");
    let tenant = app.state.directory.get("acme").expect("tenant");
    let mut events = app.state.events.subscribe(tenant.id);

    let item = post_item(&app, &member, json!({ "type": "finding", "content": "x" })).await;
    let id = item["id"].as_str().expect("id");
    api(
        &app,
        &member,
        Method::PATCH,
        &format!("/api/board-items/{id}"),
        Some(json!({ "content": "y" })),
    )
    .await;
    api(
        &app,
        &member,
        Method::POST,
        &format!("/api/board-items/{id}/archive"),
        None,
    )
    .await;

    let kinds: Vec<&str> = (0..3)
        .map(|_| events.try_recv().expect("an event").kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "board_item.created",
            "board_item.updated",
            "board_item.archived"
        ]
    );
    for action in [
        "board_item.created",
        "board_item.updated",
        "board_item.archived",
    ] {
        let (status, audit) = api(
            &app,
            &admin,
            Method::GET,
            &format!("/api/audit?action={action}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{audit}");
        assert_eq!(audit["items"][0]["target_id"], id, "{action}: {audit}");
    }
}

#[tokio::test]
async fn the_openapi_document_describes_the_board_routes() {
    let app = spawn_app().await;

    let (status, doc) = crate::helpers::json(app.get("/api/openapi.json").await).await;

    assert_eq!(status, StatusCode::OK);
    let list = &doc["paths"]["/api/board-items"]["get"];
    let params: Vec<&str> = list["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        params,
        ["type", "since", "include_archived", "limit", "cursor"]
    );
    for (path, method) in [
        ("/api/board-items", "post"),
        ("/api/board-items/{id}", "patch"),
        ("/api/board-items/{id}/archive", "post"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    let item = &doc["components"]["schemas"]["BoardItem"]["properties"];
    assert!(
        item["type"].is_object() && item["archived_at"].is_object(),
        "{item}"
    );
    assert!(doc["paths"]["/api/events"]["post"]["requestBody"].is_object());
    assert!(doc["paths"]["/api/mcp-servers/{id}/ping"]["post"].is_object());
}
