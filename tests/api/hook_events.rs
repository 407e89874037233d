//! Agent hook events over HTTP, and their retention.

use agenthq::domain::hook_event::{HookEventFilter, RetentionPolicy};
use agenthq::services::hook_events::enforce_retention;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::board::insert_agent;
use crate::helpers::{TestApp, api, error_code, spawn_app, spawn_app_with_config, tenant_with};

/// A Claude Code `PreToolUse` payload, as a hook receives it on stdin.
fn pre_tool_use(session: &str, command: &str) -> Value {
    json!({
        "session_id": session,
        "transcript_path": "/home/dev/.claude/projects/acme/transcript.jsonl",
        "cwd": "/home/dev/acme",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": { "command": command, "description": "Läuft 🏃" },
    })
}

async fn post_events(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, res) = api(app, token, Method::POST, "/api/events", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{res}");
    res
}

fn event_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn a_posted_event_is_kept_whole_and_read_back_by_session() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let viewer = tenant_with(&app, "acme", "viewer");
    let event = pre_tool_use("sess-1", "cargo test");
    post_events(&app, &member, pre_tool_use("sess-other", "ls")).await;

    // Act
    let received = post_events(&app, &member, event.clone()).await;

    // Assert
    assert_eq!(received["count"], 1);
    let (status, page) = api(
        &app,
        &viewer,
        Method::GET,
        "/api/events?session_id=sess-1",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        event_ids(&page),
        vec![received["ids"][0].as_str().expect("id").to_owned()]
    );
    let stored = &page["items"][0];
    assert_eq!(stored["payload"], event);
    assert_eq!(stored["event_type"], "PreToolUse");
    assert_eq!(stored["session_id"], "sess-1");
    assert_eq!(stored["agent_id"], Value::Null);
    assert!(stored["received_at"].is_string());
}

#[tokio::test]
async fn a_batch_is_stored_in_order_and_listed_newest_first_page_by_page() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let batch: Vec<Value> = (0..5)
        .map(|i| pre_tool_use("sess-b", &format!("step {i}")))
        .collect();

    let received = post_events(&app, &member, Value::Array(batch)).await;

    assert_eq!(received["count"], 5);
    let mut posted: Vec<String> = received["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|id| id.as_str().expect("id").to_owned())
        .collect();
    posted.reverse();
    let mut seen = Vec::new();
    let mut path = "/api/events?session_id=sess-b&limit=2".to_owned();
    loop {
        let (status, page) = api(&app, &member, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(event_ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/events?session_id=sess-b&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, posted);
    let (_, stops) = api(
        &app,
        &member,
        Method::GET,
        "/api/events?event_type=Stop",
        None,
    )
    .await;
    assert_eq!(stops["items"], json!([]));
}

#[tokio::test]
async fn bad_events_are_400s_naming_the_event_and_field_and_nothing_is_stored() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    for (body, field) in [
        (json!({ "session_id": "s" }), "hook_event_name"),
        (json!({ "hook_event_name": 3 }), "hook_event_name"),
        (json!({ "hook_event_name": "" }), "hook_event_name"),
        (
            json!({ "hook_event_name": "Stop", "session_id": ["s"] }),
            "session_id",
        ),
        (json!([pre_tool_use("s", "ok"), "Stop"]), "body[1]"),
        (
            json!([pre_tool_use("s", "ok"), { "cwd": "/" }]),
            "body[1].hook_event_name",
        ),
        (json!([]), "body"),
        (json!("Stop"), "body"),
    ] {
        let (status, res) = api(&app, &member, Method::POST, "/api/events", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
        assert_eq!(error_code(&res), "VALIDATION_FAILED");
        assert!(
            res["error"]["details"]["fields"].get(field).is_some(),
            "{field}: {res}"
        );
    }
    let (_, page) = api(&app, &member, Method::GET, "/api/events", None).await;
    assert_eq!(page["items"], json!([]), "a bad batch stores nothing");
}

#[tokio::test]
async fn a_batch_over_the_limit_is_a_413_saying_the_limit() {
    let app = spawn_app_with_config("[hook_events]\nmax_batch = 3\nmax_event_bytes = 2048\n").await;
    let member = tenant_with(&app, "acme", "member");
    let four: Vec<Value> = (0..4).map(|i| pre_tool_use("s", &i.to_string())).collect();

    let (status, res) = api(
        &app,
        &member,
        Method::POST,
        "/api/events",
        Some(Value::Array(four)),
    )
    .await;

    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{res}");
    assert_eq!(error_code(&res), "PAYLOAD_TOO_LARGE");
    assert_eq!(res["error"]["details"]["max_batch"], 3);
    let big = pre_tool_use("s", &"x".repeat(4096));
    let (status, res) = api(&app, &member, Method::POST, "/api/events", Some(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{res}");
    assert_eq!(res["error"]["details"]["limit_bytes"], 2048);
}

#[tokio::test]
async fn events_are_associated_with_a_known_agent_and_unknown_ones_are_400s() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let agent = insert_agent(&app, "acme", "coder");

    let (status, res) = api(
        &app,
        &member,
        Method::POST,
        "/api/events?agent_id=coder",
        Some(pre_tool_use("s", "make")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{res}");
    let (_, page) = api(
        &app,
        &member,
        Method::GET,
        &format!("/api/events?agent_id={agent}"),
        None,
    )
    .await;
    assert_eq!(page["items"][0]["agent_id"], agent.as_str());

    for (query, field) in [("agent_id=ghost", "agent_id"), ("task_id=nope", "task_id")] {
        let (status, res) = api(
            &app,
            &member,
            Method::POST,
            &format!("/api/events?{query}"),
            Some(pre_tool_use("s", "make")),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
        assert!(
            res["error"]["details"]["fields"].get(field).is_some(),
            "{res}"
        );
    }
}

#[tokio::test]
async fn a_viewer_reads_events_but_cannot_post_them() {
    let app = spawn_app().await;
    let viewer = tenant_with(&app, "acme", "viewer");

    let (status, res) = api(
        &app,
        &viewer,
        Method::POST,
        "/api/events",
        Some(pre_tool_use("s", "rm -rf /")),
    )
    .await;

    assert_eq!(status, StatusCode::FORBIDDEN, "{res}");
    let (status, _) = api(&app, &viewer, Method::GET, "/api/events", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn each_event_is_published_and_a_batch_is_audited_once() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let admin = tenant_with(&app, "acme", "admin");
    let tenant = app.state.directory.get("acme").expect("tenant");
    let mut events = app.state.events.subscribe(tenant.id);

    post_events(
        &app,
        &member,
        json!([pre_tool_use("s9", "a"), { "hook_event_name": "Stop", "session_id": "s9" }]),
    )
    .await;

    let first = events.try_recv().expect("first event");
    let second = events.try_recv().expect("second event");
    assert_eq!((first.kind, second.kind), ("hook.event", "hook.event"));
    assert_eq!(second.data()["event_type"], "Stop");
    assert!(events.try_recv().is_err(), "one event per hook event");
    let (_, audit) = api(
        &app,
        &admin,
        Method::GET,
        "/api/audit?action=hook_events.received",
        None,
    )
    .await;
    let entries = audit["items"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["details"]["count"], 2);
    assert_eq!(entries[0]["details"]["session_ids"], json!(["s9"]));
}

#[tokio::test]
async fn retention_keeps_the_newest_rows_and_deletes_what_is_too_old() {
    // Arrange: five events of one tenant.
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let mut ids = Vec::new();
    for i in 0..5 {
        let res = post_events(&app, &member, pre_tool_use("s", &i.to_string())).await;
        ids.push(res["ids"][0].as_str().expect("id").to_owned());
    }
    let tenant = app.state.directory.get("acme").expect("tenant");
    let store = app.state.storage.tenants.open(tenant.id).expect("store");
    let now = agenthq::domain::now();

    // Act: at most 2 rows, 30 days.
    let report = enforce_retention(
        &*store,
        RetentionPolicy {
            max_rows: 2,
            max_age: chrono::Duration::days(30),
        },
        now,
    )
    .expect("retention");

    // Assert: the newest two stay.
    assert_eq!((report.deleted_by_age, report.deleted_by_count), (0, 3));
    let (_, page) = api(&app, &member, Method::GET, "/api/events", None).await;
    assert_eq!(event_ids(&page), vec![ids[4].clone(), ids[3].clone()]);

    // Act again, 31 days later: everything is too old.
    let report = enforce_retention(
        &*store,
        RetentionPolicy {
            max_rows: 100,
            max_age: chrono::Duration::days(30),
        },
        now + chrono::Duration::days(31),
    )
    .expect("retention");
    assert_eq!((report.deleted_by_age, report.deleted_by_count), (2, 0));
    let (_, page) = api(&app, &member, Method::GET, "/api/events", None).await;
    assert_eq!(page["items"], json!([]));
}

#[tokio::test]
async fn the_server_applies_retention_by_itself_every_interval() {
    // Arrange: a one-second interval and room for one event per tenant.
    let app = spawn_app_with_config(
        "[hook_events]\nretention_schedule = \"* * * * * *\"\nmax_rows_per_tenant = 1\n",
    )
    .await;
    let member = tenant_with(&app, "acme", "member");
    let mut last = Value::Null;
    for i in 0..3 {
        last = post_events(&app, &member, pre_tool_use("s", &i.to_string())).await;
    }

    // Act: wait for the background task's next pass (polling the store, not the API: the
    // tenant's rate limit would refuse a tight polling loop).
    let tenant = app.state.directory.get("acme").expect("tenant");
    let store = app.state.storage.tenants.open(tenant.id).expect("store");
    let everything = HookEventFilter::parse(None, None, None, None, None, None).expect("filter");
    let pruned = crate::helpers::eventually(std::time::Duration::from_secs(10), || {
        let (store, filter) = (store.clone(), everything.clone());
        async move {
            tokio::task::spawn_blocking(move || store.hook_events(&filter))
                .await
                .expect("task")
                .expect("read")
                .len()
                == 1
        }
    })
    .await;

    // Assert: the newest event stayed.
    assert!(pruned.is_some(), "retention did not run");
    let (_, page) = api(&app, &member, Method::GET, "/api/events", None).await;
    assert_eq!(page["items"][0]["id"], last["ids"][0]);
}
