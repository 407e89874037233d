//! Chat over HTTP: a human's message to an agent starts (or continues) a thread and creates a
//! task asking the agent to reply; threads list most recent first; messages are read, edited
//! and deleted.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, api, error_code, spawn_app, tenant_with};
use crate::tasks::{insert_agent, sql};

async fn send(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, message) = api(app, token, Method::POST, "/api/messages", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    message
}

fn s(v: &Value) -> String {
    v.as_str().expect("a string").to_owned()
}

/// An agent's reply in a thread, as the runtime would write it.
fn agent_reply(app: &TestApp, thread: &str, agent: &str, body: &str) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    let at = agenthq::domain::time::format_rfc3339(&agenthq::domain::now());
    let conn = sql(app, "acme");
    conn.execute(
        "INSERT INTO messages (id, thread_id, from_agent_id, to_human, body, kind, created_at) \
         VALUES (?1, ?2, ?3, 1, ?4, 'chat', ?5)",
        rusqlite::params![id, thread, agent, body, at],
    )
    .unwrap();
    conn.execute(
        "UPDATE threads SET last_message_at = ?2 WHERE id = ?1",
        rusqlite::params![thread, at],
    )
    .unwrap();
    id
}

#[tokio::test]
async fn a_message_to_an_agent_starts_a_thread_and_a_reply_task() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let ada = insert_agent(&app, "acme", "ada", None, "2026-01-01T00:00:00.000Z");
    let tenant = app.state.directory.get("acme").expect("tenant");
    let mut events = app.state.events.subscribe(tenant.id);

    // Act
    let message = send(
        &app,
        &member,
        json!({ "to": "ada", "body": "How is the launch going? 🚀", "subject": "Launch" }),
    )
    .await;

    // Assert
    assert_eq!(message["to_agent_id"], ada.as_str());
    assert_eq!(message["kind"], "chat");
    assert_eq!(message["read"], false);
    assert!(message["from_user_id"].is_string());
    let task_id = s(&message["reply_task_id"]);
    let (status, task) = api(
        &app,
        &member,
        Method::GET,
        &format!("/api/tasks/{task_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert_eq!(task["assignee_id"], ada.as_str());
    assert_eq!(task["status"], "pending");
    assert!(s(&task["prompt"]).contains("How is the launch going? 🚀"));
    let context: Value = serde_json::from_str(&s(&task["context"])).unwrap();
    assert_eq!(context["thread_id"], message["thread_id"]);
    assert_eq!(context["message_id"], message["id"]);
    let (_, threads) = api(&app, &member, Method::GET, "/api/threads", None).await;
    assert_eq!(threads["items"][0]["id"], message["thread_id"]);
    assert_eq!(threads["items"][0]["subject"], "Launch");
    assert_eq!(
        threads["items"][0]["participants"]["agent_ids"],
        json!([ada])
    );
    assert_eq!(
        threads["items"][0]["participants"]["user_ids"],
        json!([message["from_user_id"]])
    );
    let kinds: Vec<&str> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["message.created", "task.created"]);
}

#[tokio::test]
async fn threads_list_the_most_recent_first_with_a_preview_and_unread_count() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let ada = insert_agent(&app, "acme", "ada", None, "2026-01-01T00:00:00.000Z");
    insert_agent(&app, "acme", "bob", None, "2026-01-02T00:00:00.000Z");
    let to_ada = send(
        &app,
        &member,
        json!({ "to": "ada", "body": "first thread" }),
    )
    .await;
    let to_bob = send(
        &app,
        &member,
        json!({ "to": "bob", "body": "second thread" }),
    )
    .await;
    let thread = s(&to_ada["thread_id"]);
    agent_reply(&app, &thread, &ada, &"long reply ".repeat(50));
    let followup = send(
        &app,
        &member,
        json!({ "to": ada, "body": "thanks", "thread_id": thread }),
    )
    .await;

    // Act
    let (status, page) = api(&app, &member, Method::GET, "/api/threads?limit=1", None).await;
    let cursor = s(&page["next_cursor"]);
    let (_, rest) = api(
        &app,
        &member,
        Method::GET,
        &format!("/api/threads?limit=1&cursor={cursor}"),
        None,
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{page}");
    let top = &page["items"][0];
    assert_eq!(
        top["id"],
        thread.as_str(),
        "the thread with the latest message"
    );
    assert_eq!(followup["thread_id"], thread.as_str());
    assert_eq!(top["message_count"], 3);
    assert_eq!(top["unread_count"], 1);
    assert_eq!(top["last_message"]["body"], "thanks");
    assert_eq!(rest["items"][0]["id"], to_bob["thread_id"]);
    assert_eq!(rest["next_cursor"], Value::Null);
    let (_, messages) = api(
        &app,
        &member,
        Method::GET,
        &format!("/api/threads/{thread}/messages?limit=2"),
        None,
    )
    .await;
    assert_eq!(messages["items"].as_array().unwrap().len(), 2);
    assert!(messages["next_cursor"].is_string());
}

#[tokio::test]
async fn a_long_last_message_is_previewed_by_its_start() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    insert_agent(&app, "acme", "ada", None, "2026-01-01T00:00:00.000Z");
    let body = "é".repeat(300);
    send(&app, &member, json!({ "to": "ada", "body": body })).await;
    let (_, threads) = api(&app, &member, Method::GET, "/api/threads", None).await;
    assert_eq!(
        s(&threads["items"][0]["last_message"]["body"]),
        "é".repeat(200)
    );
}

#[tokio::test]
async fn a_bad_recipient_or_body_is_a_400_and_an_unknown_thread_a_404() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    insert_agent(&app, "acme", "ada", None, "2026-01-01T00:00:00.000Z");
    for (body, field) in [
        (json!({ "to": "ghost", "body": "hi" }), "to"),
        (json!({ "to": "ada", "body": "" }), "body"),
        (
            json!({ "to": "ada", "body": "b".repeat(100 * 1024 + 1) }),
            "body",
        ),
        (json!({ "to": "ada" }), "body"),
        (json!({ "to": 7, "body": "hi" }), "body"),
    ] {
        let (status, body) = api(&app, &member, Method::POST, "/api/messages", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["error"]["details"]["fields"].get(field).is_some(),
            "{field}: {body}"
        );
    }
    let (status, body) = api(
        &app,
        &member,
        Method::POST,
        "/api/messages",
        Some(json!({ "to": "ada", "body": "hi", "thread_id": "nope" })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = api(
        &app,
        &member,
        Method::GET,
        "/api/threads/nope/messages",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, tasks) = api(&app, &member, Method::GET, "/api/tasks", None).await;
    assert_eq!(
        tasks["items"],
        json!([]),
        "no reply task for a refused message"
    );
}

#[tokio::test]
async fn messages_are_marked_read_edited_by_their_author_and_deleted() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let other = tenant_with(&app, "acme", "admin");
    let ada = insert_agent(&app, "acme", "ada", None, "2026-01-01T00:00:00.000Z");
    let mine = send(&app, &member, json!({ "to": "ada", "body": "typo" })).await;
    let thread = s(&mine["thread_id"]);
    let reply = agent_reply(&app, &thread, &ada, "answer");
    let tenant = app.state.directory.get("acme").expect("tenant");
    let mut events = app.state.events.subscribe(tenant.id);

    // Act + Assert
    let (status, read) = api(
        &app,
        &member,
        Method::PATCH,
        &format!("/api/messages/{reply}"),
        Some(json!({ "read": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["read"], true);
    assert!(read["read_at"].is_string());
    let (_, threads) = api(&app, &member, Method::GET, "/api/threads", None).await;
    assert_eq!(threads["items"][0]["unread_count"], 0);

    let path = format!("/api/messages/{}", s(&mine["id"]));
    let (status, edited) = api(
        &app,
        &member,
        Method::PATCH,
        &path,
        Some(json!({ "body": "fixed" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["body"], "fixed");
    assert!(edited["edited_at"].is_string());
    let (status, body) = api(
        &app,
        &other,
        Method::PATCH,
        &path,
        Some(json!({ "body": "mine now" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only the author: {body}");
    let (status, body) = api(
        &app,
        &member,
        Method::PATCH,
        &format!("/api/messages/{reply}"),
        Some(json!({ "body": "rewritten" })),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "an agent's words stay: {body}"
    );

    let (status, _) = api(&app, &member, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api(&app, &member, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, messages) = api(
        &app,
        &member,
        Method::GET,
        &format!("/api/threads/{thread}/messages"),
        None,
    )
    .await;
    assert_eq!(messages["items"].as_array().unwrap().len(), 1);
    let kinds: Vec<&str> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        ["message.updated", "message.updated", "message.deleted"]
    );
    let (_, audit) = api(
        &app,
        &other,
        Method::GET,
        "/api/audit?target_type=message",
        None,
    )
    .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "message.deleted",
            "message.updated",
            "message.updated",
            "message.created"
        ]
    );
}

#[tokio::test]
async fn a_viewer_reads_chat_but_cannot_write() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let viewer = tenant_with(&app, "acme", "viewer");
    insert_agent(&app, "acme", "ada", None, "2026-01-01T00:00:00.000Z");
    let message = send(&app, &member, json!({ "to": "ada", "body": "hello" })).await;
    let (status, _) = api(&app, &viewer, Method::GET, "/api/threads", None).await;
    assert_eq!(status, StatusCode::OK);
    let path = format!("/api/messages/{}", s(&message["id"]));
    for (method, path, body) in [
        (
            Method::POST,
            "/api/messages".to_owned(),
            Some(json!({ "to": "ada", "body": "x" })),
        ),
        (Method::PATCH, path.clone(), Some(json!({ "read": true }))),
        (Method::DELETE, path.clone(), None),
    ] {
        let (status, body) = api(&app, &viewer, method, &path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(error_code(&body), "FORBIDDEN");
    }
}

#[tokio::test]
async fn another_tenants_thread_and_message_are_404s() {
    let app = spawn_app().await;
    let acme = tenant_with(&app, "acme", "member");
    let globex = tenant_with(&app, "globex", "member");
    insert_agent(&app, "globex", "gus", None, "2026-01-01T00:00:00.000Z");
    let theirs = send(
        &app,
        &globex,
        json!({ "to": "gus", "body": "globex secret" }),
    )
    .await;
    let (status, _) = api(
        &app,
        &acme,
        Method::GET,
        &format!("/api/threads/{}/messages", s(&theirs["thread_id"])),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let path = format!("/api/messages/{}", s(&theirs["id"]));
    let (status, _) = api(
        &app,
        &acme,
        Method::PATCH,
        &path,
        Some(json!({ "read": true })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api(&app, &acme, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, threads) = api(&app, &acme, Method::GET, "/api/threads", None).await;
    assert_eq!(threads["items"], json!([]));
}
