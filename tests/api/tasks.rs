//! Tasks over HTTP: creation and assignment, the list and its filters, full-text search,
//! pagination, the board, the state machine, cancel/retry/delete, the event log, events and
//! audit.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, api, error_code, spawn_app, tenant_with};

/// Inserts an agent row into the tenant's database (agents have their own API; these tests
/// only need them to exist). Returns its id.
pub fn insert_agent(
    app: &TestApp,
    slug: &str,
    name: &str,
    reports_to: Option<&str>,
    created_at: &str,
) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    sql(app, slug)
        .execute(
            "INSERT INTO agents (id, name, display_name, reports_to, created_at, updated_at) \
         VALUES (?1, ?2, ?2, ?3, ?4, ?4)",
            rusqlite::params![id, name, reports_to, created_at],
        )
        .expect("agent inserted");
    id
}

/// A direct connection to a tenant's database (what only the runtime would change).
pub fn sql(app: &TestApp, slug: &str) -> rusqlite::Connection {
    let tenant = app.state.directory.get(slug).expect("tenant");
    let conn = rusqlite::Connection::open(app.tenant_file(&tenant)).expect("tenant db");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("busy timeout");
    conn
}

/// Sets a task's status as the runtime would.
fn set_status(app: &TestApp, slug: &str, id: &str, status: &str) {
    sql(app, slug)
        .execute(
            "UPDATE tasks SET status = ?2 WHERE id = ?1",
            rusqlite::params![id, status],
        )
        .expect("status set");
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, task) = api(app, token, Method::POST, "/api/tasks", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    task
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(id)
        .collect()
}

fn assert_invalid(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
    assert_eq!(error_code(body), "VALIDATION_FAILED", "{body}");
    assert!(
        body["error"]["details"]["fields"].get(field).is_some(),
        "{field}: {body}"
    );
}

#[tokio::test]
async fn a_member_creates_a_task_for_an_agent_named_by_id_or_by_name() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let ada = insert_agent(&app, "acme", "ada", None, "2026-01-01T00:00:00.000Z");

    // Act
    let by_name = create(
        &app,
        &member,
        json!({ "prompt": "Write the launch plan ✓", "assignee": "ada",
                "priority": "high", "tags": ["launch", " q4 ", "launch"],
                "context": "{\"deadline\": \"friday\"}" }),
    )
    .await;
    let by_id = create(
        &app,
        &member,
        json!({ "prompt": "Review it", "assignee_id": ada }),
    )
    .await;

    // Assert
    assert_eq!(by_name["assignee_id"], ada.as_str());
    assert_eq!(by_id["assignee_id"], ada.as_str());
    assert_eq!(by_name["status"], "pending");
    assert_eq!(by_name["priority"], "high");
    assert_eq!(by_name["tags"], json!(["launch", "q4"]));
    assert_eq!(by_name["cost_usd"], 0.0);
    assert_eq!(by_name["cancel_requested"], false);
    assert_eq!(by_name["started_at"], Value::Null);
    assert_eq!(by_id["priority"], "normal");
    let (status, read) = api(
        &app,
        &member,
        Method::GET,
        &format!("/api/tasks/{}", id(&by_name)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, by_name);
}

#[tokio::test]
async fn a_task_naming_no_assignee_goes_to_the_default_assignee_else_the_org_root() {
    // Arrange
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let unassigned = create(&app, &admin, json!({ "prompt": "nobody yet" })).await;
    let root = insert_agent(&app, "acme", "ceo", None, "2026-01-01T00:00:00.000Z");
    insert_agent(&app, "acme", "later-root", None, "2026-02-01T00:00:00.000Z");
    let dev = insert_agent(&app, "acme", "dev", Some(&root), "2026-01-02T00:00:00.000Z");

    // Act
    let to_root = create(&app, &admin, json!({ "prompt": "org root" })).await;
    let (status, body) = api(
        &app,
        &admin,
        Method::PATCH,
        "/api/workspace",
        Some(json!({ "default_assignee_id": dev })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let to_default = create(&app, &admin, json!({ "prompt": "default" })).await;

    // Assert
    assert_eq!(unassigned["assignee_id"], Value::Null);
    assert_eq!(to_root["assignee_id"], root.as_str(), "the oldest root");
    assert_eq!(to_default["assignee_id"], dev.as_str());
    // The task's `created` event and its audit entry name the assignee it got.
    for (task, assignee) in [(&to_root, json!(root)), (&to_default, json!(dev))] {
        let path = format!("/api/tasks/{}/events", id(task));
        let (_, events) = api(&app, &admin, Method::GET, &path, None).await;
        assert_eq!(events["items"][0]["kind"], "created", "{events}");
        assert_eq!(
            events["items"][0]["data"]["assignee_id"], assignee,
            "{events}"
        );
        let path = format!("/api/audit?target_id={}", id(task));
        let (_, audit) = api(&app, &admin, Method::GET, &path, None).await;
        assert_eq!(audit["items"][0]["action"], "task.created", "{audit}");
        assert_eq!(
            audit["items"][0]["details"]["assignee_id"], assignee,
            "{audit}"
        );
    }
}

#[tokio::test]
async fn an_unknown_assignee_or_parent_is_a_400_naming_the_field() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    for (body, field) in [
        (json!({ "prompt": "x", "assignee": "ghost" }), "assignee"),
        (
            json!({ "prompt": "x", "parent_id": "no-such-task" }),
            "parent_id",
        ),
    ] {
        let (status, body) = api(&app, &member, Method::POST, "/api/tasks", Some(body)).await;
        assert_invalid(status, &body, field);
    }
}

#[tokio::test]
async fn invalid_task_fields_are_400s_naming_the_field() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let tags: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    for (body, field) in [
        (json!({ "prompt": "" }), "prompt"),
        (json!({ "prompt": " \n " }), "prompt"),
        (json!({ "prompt": "p".repeat(100 * 1024 + 1) }), "prompt"),
        (
            json!({ "prompt": "x", "context": "c".repeat(100 * 1024 + 1) }),
            "context",
        ),
        (json!({ "prompt": "x", "tags": tags }), "tags"),
        (json!({ "prompt": "x", "tags": ["t".repeat(65)] }), "tags"),
        (json!({ "prompt": "x", "priority": "critical" }), "body"),
        (json!({ "prompt": 42 }), "body"),
        (json!({ "prompt": "x", "colour": "red" }), "body"),
        (json!({}), "body"),
    ] {
        let (status, body) = api(&app, &member, Method::POST, "/api/tasks", Some(body)).await;
        assert_invalid(status, &body, field);
    }
    let (status, body) = api(&app, &member, Method::GET, "/api/tasks", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"], json!([]), "nothing was created");
}

#[tokio::test]
async fn a_viewer_reads_tasks_but_cannot_change_them() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let viewer = tenant_with(&app, "acme", "viewer");
    let task = create(&app, &member, json!({ "prompt": "read me" })).await;
    let path = format!("/api/tasks/{}", id(&task));

    // Act + Assert
    let (status, _) = api(&app, &viewer, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    for (method, path, body) in [
        (
            Method::POST,
            "/api/tasks".to_owned(),
            Some(json!({ "prompt": "x" })),
        ),
        // Authorisation comes before body errors.
        (
            Method::POST,
            "/api/tasks".to_owned(),
            Some(json!({ "prompt": 1 })),
        ),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({ "priority": "low" })),
        ),
        (Method::DELETE, path.clone(), None),
        (Method::POST, format!("{path}/cancel"), None),
        (Method::POST, format!("{path}/retry"), None),
    ] {
        let (status, body) = api(&app, &viewer, method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert_eq!(error_code(&body), "FORBIDDEN");
    }
}

#[tokio::test]
async fn an_unknown_or_another_tenants_task_is_a_404() {
    // Arrange
    let app = spawn_app().await;
    let acme = tenant_with(&app, "acme", "member");
    let globex = tenant_with(&app, "globex", "member");
    let theirs = create(&app, &globex, json!({ "prompt": "globex secret" })).await;

    // Act + Assert
    for task in [
        id(&theirs),
        uuid::Uuid::now_v7().to_string(),
        "not-a-uuid".into(),
        "%E2%9C%93".into(),
        "x".repeat(2000),
    ] {
        let path = format!("/api/tasks/{task}");
        for (method, path, body) in [
            (Method::GET, path.clone(), None),
            (
                Method::PATCH,
                path.clone(),
                Some(json!({ "priority": "low" })),
            ),
            (Method::DELETE, path.clone(), None),
            (Method::POST, format!("{path}/cancel"), None),
            (Method::POST, format!("{path}/retry"), None),
            (Method::GET, format!("{path}/events"), None),
        ] {
            let (status, body) = api(&app, &acme, method.clone(), &path, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
            assert!(!body.to_string().contains("globex secret"));
        }
    }
    let (_, list) = api(&app, &acme, Method::GET, "/api/tasks", None).await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn the_list_is_newest_first_and_each_filter_narrows_it() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let ada = insert_agent(&app, "acme", "ada", None, "2026-01-01T00:00:00.000Z");
    let bob = insert_agent(&app, "acme", "bob", Some(&ada), "2026-01-01T00:00:01.000Z");
    let parent = create(
        &app,
        &member,
        json!({ "prompt": "parent", "assignee": "ada" }),
    )
    .await;
    let child = create(
        &app,
        &member,
        json!({ "prompt": "child", "assignee": "bob", "priority": "urgent",
                "parent_id": id(&parent) }),
    )
    .await;
    let blocked = create(
        &app,
        &member,
        json!({ "prompt": "blocked", "assignee": bob }),
    )
    .await;
    set_status(&app, "acme", &id(&blocked), "blocked");
    let running = create(
        &app,
        &member,
        json!({ "prompt": "running", "priority": "low" }),
    )
    .await;
    set_status(&app, "acme", &id(&running), "running");
    sql(&app, "acme")
        .execute(
            "UPDATE tasks SET created_at = '2020-01-01T00:00:00.000Z' WHERE id = ?1",
            [id(&parent)],
        )
        .unwrap();
    let list = |query: &str| {
        let app = &app;
        let member = member.clone();
        let query = query.to_owned();
        async move {
            let (status, body) = api(
                app,
                &member,
                Method::GET,
                &format!("/api/tasks{query}"),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            ids(&body)
        }
    };

    // Act + Assert
    assert_eq!(
        list("").await,
        vec![id(&running), id(&blocked), id(&child), id(&parent)]
    );
    assert_eq!(list("?status=blocked").await, vec![id(&blocked)]);
    assert_eq!(
        list("?status=running,blocked").await,
        vec![id(&running), id(&blocked)]
    );
    assert_eq!(list("?assignee=bob").await, vec![id(&blocked), id(&child)]);
    assert_eq!(
        list(&format!("?assignee={ada}")).await,
        vec![id(&running), id(&parent)],
        "the running task went to the org root, ada"
    );
    assert_eq!(list("?priority=urgent").await, vec![id(&child)]);
    assert_eq!(list("?priority=low").await, vec![id(&running)]);
    assert_eq!(
        list(&format!("?parent_id={}", id(&parent))).await,
        vec![id(&child)]
    );
    assert_eq!(
        list("?created_before=2021-01-01T00:00:00Z").await,
        vec![id(&parent)]
    );
    assert_eq!(
        list("?created_after=2021-01-01T00:00:00%2B01:00&status=pending").await,
        vec![id(&child)]
    );
    assert_eq!(
        list("?status=pending&assignee=ada").await,
        vec![id(&parent)]
    );
}

#[tokio::test]
async fn bad_filters_are_400s_naming_the_parameter() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    for (query, field) in [
        ("status=done", "status"),
        ("status=pending,nope", "status"),
        ("priority=7", "priority"),
        ("assignee=ghost", "assignee"),
        ("created_after=yesterday", "created_after"),
        ("created_before=2026-13-01", "created_before"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=many", "limit"),
        ("cursor=%25%25", "cursor"),
        ("q=a%07b", "q"),
        (&format!("q={}", "x".repeat(201)), "q"),
        ("sort=asc", "query"),
    ] {
        let (status, body) = api(
            &app,
            &member,
            Method::GET,
            &format!("/api/tasks?{query}"),
            None,
        )
        .await;
        assert_invalid(status, &body, field);
    }
}

#[tokio::test]
async fn search_takes_percent_underscore_quotes_and_stars_literally() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let percent = create(&app, &member, json!({ "prompt": "Raise the budget 100%" })).await;
    let plain = create(&app, &member, json!({ "prompt": "Ship 100 apples" })).await;
    let underscore = create(&app, &member, json!({ "prompt": "rename user_id column" })).await;
    let quoted = create(
        &app,
        &member,
        json!({ "prompt": "say \"hello\" OR NEAR(x) *" }),
    )
    .await;
    let search = |q: &str| {
        let app = &app;
        let member = member.clone();
        let q = q.to_owned();
        async move {
            let url = reqwest::Url::parse_with_params("http://x/api/tasks", &[("q", &q)]).unwrap();
            let path = format!("{}?{}", url.path(), url.query().unwrap());
            let (status, body) = api(app, &member, Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{q}: {body}");
            ids(&body)
        }
    };

    // Act + Assert
    assert_eq!(search("100%").await, vec![id(&percent)]);
    assert_eq!(search("100").await, vec![id(&plain), id(&percent)]);
    assert_eq!(search("user_id").await, vec![id(&underscore)]);
    assert_eq!(search("user%id").await, Vec::<String>::new());
    assert_eq!(search("\"hello\"").await, vec![id(&quoted)]);
    assert_eq!(search("OR NEAR(x)").await, vec![id(&quoted)]);
    assert_eq!(search("BUDGET").await, vec![id(&percent)]);
    for punctuation in [
        "%", "_", "\"", "*", "\"\"", "(", ")", "-", "^", ":", "'", "\\", "NEAR(",
    ] {
        search(punctuation).await; // never an error
    }
    assert_eq!(search("*").await, vec![id(&quoted)]);
    assert_eq!(search("%").await, vec![id(&percent)]);
}

#[tokio::test]
async fn pages_stay_stable_when_tasks_are_inserted_between_them() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(id(&create(
            &app,
            &member,
            json!({ "prompt": format!("task {i}") }),
        )
        .await));
    }

    // Act
    let (_, first) = api(&app, &member, Method::GET, "/api/tasks?limit=2", None).await;
    create(&app, &member, json!({ "prompt": "inserted meanwhile" })).await;
    let mut seen = ids(&first);
    let mut cursor = first["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let (status, page) = api(
            &app,
            &member,
            Method::GET,
            &format!("/api/tasks?limit=2&cursor={c}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(ids(&page));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }

    // Assert
    created.reverse();
    assert_eq!(
        seen, created,
        "every task once, newest first, none repeated"
    );
}

#[tokio::test]
async fn the_board_shows_each_column_with_its_count_and_newest_tasks() {
    // Arrange
    let app = spawn_app().await;
    let viewer = tenant_with(&app, "acme", "viewer");
    let member = tenant_with(&app, "acme", "member");
    let mut by_status = Vec::new();
    for status in [
        "pending",
        "blocked",
        "pending",
        "running",
        "review",
        "completed",
        "failed",
        "cancelled",
    ] {
        let task = create(&app, &member, json!({ "prompt": status })).await;
        set_status(&app, "acme", &id(&task), status);
        by_status.push((status, id(&task)));
    }

    // Act
    let (status, board) = api(&app, &viewer, Method::GET, "/api/tasks/board?limit=2", None).await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{board}");
    assert_eq!(board["backlog"]["count"], 3);
    assert_eq!(
        ids(&board["backlog"]),
        vec![by_status[2].1.clone(), by_status[1].1.clone()],
        "the newest two"
    );
    assert_eq!(board["in_progress"]["count"], 1);
    assert_eq!(ids(&board["in_progress"]), vec![by_status[3].1.clone()]);
    assert_eq!(board["review"]["count"], 1);
    assert_eq!(board["done"]["count"], 3);
    assert_eq!(
        ids(&board["done"]),
        vec![by_status[7].1.clone(), by_status[6].1.clone()]
    );
    let (status, body) = api(
        &app,
        &viewer,
        Method::GET,
        "/api/tasks/board?limit=101",
        None,
    )
    .await;
    assert_invalid(status, &body, "limit");
    let (_, default) = api(&app, &viewer, Method::GET, "/api/tasks/board", None).await;
    assert_eq!(default["done"]["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn humans_move_tasks_only_along_the_legal_transitions() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let statuses = [
        "pending",
        "running",
        "review",
        "completed",
        "failed",
        "blocked",
        "cancelled",
    ];
    let legal = [
        ("pending", "blocked"),
        ("pending", "review"),
        ("blocked", "pending"),
        ("blocked", "review"),
        ("review", "completed"),
        ("review", "failed"),
        ("review", "pending"),
    ];
    let task = create(&app, &member, json!({ "prompt": "move me" })).await;
    let path = format!("/api/tasks/{}", id(&task));

    for from in statuses {
        for to in statuses {
            // Arrange
            set_status(&app, "acme", &id(&task), from);

            // Act
            let (status, body) = api(
                &app,
                &member,
                Method::PATCH,
                &path,
                Some(json!({ "status": to })),
            )
            .await;

            // Assert
            if from == to || legal.contains(&(from, to)) {
                assert_eq!(status, StatusCode::OK, "{from} → {to}: {body}");
                assert_eq!(body["status"], to);
                let finished = to == "completed" || to == "failed";
                if from != to {
                    assert_eq!(!body["completed_at"].is_null(), finished, "{from} → {to}");
                }
            } else {
                assert_eq!(status, StatusCode::CONFLICT, "{from} → {to}: {body}");
                assert_eq!(error_code(&body), "CONFLICT");
                assert_eq!(body["error"]["details"]["status"], from);
                let allowed: Vec<&str> = legal
                    .iter()
                    .filter(|(f, _)| *f == from)
                    .map(|(_, t)| *t)
                    .collect();
                assert_eq!(body["error"]["details"]["allowed"], json!(allowed));
            }
        }
    }
}

#[tokio::test]
async fn a_running_tasks_work_cannot_be_edited_but_its_priority_can() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let task = create(&app, &member, json!({ "prompt": "busy" })).await;
    set_status(&app, "acme", &id(&task), "running");
    let path = format!("/api/tasks/{}", id(&task));

    let (status, body) = api(
        &app,
        &member,
        Method::PATCH,
        &path,
        Some(json!({ "prompt": "other" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = api(
        &app,
        &member,
        Method::PATCH,
        &path,
        Some(json!({ "priority": "urgent", "tags": ["hot"] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["priority"], "urgent");
    assert_eq!(body["tags"], json!(["hot"]));
    let (status, body) = api(&app, &member, Method::PATCH, &path, Some(json!({}))).await;
    assert_invalid(status, &body, "body");
}

#[tokio::test]
async fn a_task_is_reassigned_by_agent_name_and_unassigned_with_null() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let ada = insert_agent(&app, "acme", "ada", None, "2026-01-01T00:00:00.000Z");
    let bob = insert_agent(&app, "acme", "bob", Some(&ada), "2026-01-02T00:00:00.000Z");
    let task = create(&app, &member, json!({ "prompt": "hand over" })).await;
    let path = format!("/api/tasks/{}", id(&task));

    // Act
    let (s1, to_bob) = api(
        &app,
        &member,
        Method::PATCH,
        &path,
        Some(json!({ "assignee": "bob" })),
    )
    .await;
    let (s2, unassigned) = api(
        &app,
        &member,
        Method::PATCH,
        &path,
        Some(json!({ "assignee": null })),
    )
    .await;
    let (s3, body) = api(
        &app,
        &member,
        Method::PATCH,
        &path,
        Some(json!({ "assignee": "ghost" })),
    )
    .await;

    // Assert
    assert_eq!(task["assignee_id"], ada.as_str(), "the org root by default");
    assert_eq!(s1, StatusCode::OK, "{to_bob}");
    assert_eq!(to_bob["assignee_id"], bob.as_str());
    assert_eq!(s2, StatusCode::OK, "{unassigned}");
    assert_eq!(unassigned["assignee_id"], Value::Null);
    assert_invalid(s3, &body, "assignee");
}

#[tokio::test]
async fn cancelling_stops_waiting_work_at_once_and_asks_running_work_to_stop() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let waiting = create(&app, &member, json!({ "prompt": "waiting" })).await;
    let running = create(&app, &member, json!({ "prompt": "running" })).await;
    set_status(&app, "acme", &id(&running), "running");
    let done = create(&app, &member, json!({ "prompt": "done" })).await;
    set_status(&app, "acme", &id(&done), "completed");
    let cancel = |task: &Value| format!("/api/tasks/{}/cancel", id(task));

    // Act
    let (s1, cancelled) = api(&app, &member, Method::POST, &cancel(&waiting), None).await;
    let (s2, requested) = api(&app, &member, Method::POST, &cancel(&running), None).await;
    let (s3, again) = api(&app, &member, Method::POST, &cancel(&running), None).await;
    let (s4, refused) = api(&app, &member, Method::POST, &cancel(&done), None).await;

    // Assert
    assert_eq!(s1, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(!cancelled["completed_at"].is_null());
    assert_eq!(s2, StatusCode::ACCEPTED, "{requested}");
    assert_eq!(requested["status"], "running");
    assert_eq!(requested["cancel_requested"], true);
    assert_eq!(
        s3,
        StatusCode::ACCEPTED,
        "asking again is harmless: {again}"
    );
    assert_eq!(s4, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["details"]["status"], "completed");
}

#[tokio::test]
async fn retrying_a_failed_or_cancelled_task_makes_it_pending_again() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let failed = create(&app, &member, json!({ "prompt": "flaky" })).await;
    sql(&app, "acme")
        .execute(
            "UPDATE tasks SET status = 'failed', result = 'boom', cancel_requested = 1, \
             cost_micros = 1500000, started_at = created_at, completed_at = created_at, \
             duration_ms = 9 WHERE id = ?1",
            [id(&failed)],
        )
        .unwrap();
    let pending = create(&app, &member, json!({ "prompt": "fine" })).await;

    // Act
    let (status, retried) = api(
        &app,
        &member,
        Method::POST,
        &format!("/api/tasks/{}/retry", id(&failed)),
        None,
    )
    .await;
    let (refused, body) = api(
        &app,
        &member,
        Method::POST,
        &format!("/api/tasks/{}/retry", id(&pending)),
        None,
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(retried["status"], "pending");
    assert_eq!(retried["result"], Value::Null);
    assert_eq!(retried["cancel_requested"], false);
    assert_eq!(retried["started_at"], Value::Null);
    assert_eq!(retried["completed_at"], Value::Null);
    assert_eq!(retried["duration_ms"], Value::Null);
    assert_eq!(retried["cost_usd"], 1.5, "money spent stays spent");
    assert_eq!(refused, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["details"]["status"], "pending");
}

#[tokio::test]
async fn a_running_task_cannot_be_deleted_but_a_stopped_one_can() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let task = create(&app, &member, json!({ "prompt": "delete me" })).await;
    let child = create(
        &app,
        &member,
        json!({ "prompt": "child", "parent_id": id(&task) }),
    )
    .await;
    let path = format!("/api/tasks/{}", id(&task));
    set_status(&app, "acme", &id(&task), "running");

    // Act + Assert
    let (status, body) = api(&app, &member, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["details"]["status"], "running");
    set_status(&app, "acme", &id(&task), "failed");
    let (status, _) = api(&app, &member, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api(&app, &member, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, orphan) = api(
        &app,
        &member,
        Method::GET,
        &format!("/api/tasks/{}", id(&child)),
        None,
    )
    .await;
    assert_eq!(
        orphan["parent_id"],
        Value::Null,
        "children stay, without a parent"
    );
}

#[tokio::test]
async fn the_event_log_records_a_tasks_history_oldest_first() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    insert_agent(&app, "acme", "ada", None, "2026-01-01T00:00:00.000Z");
    let task = create(
        &app,
        &member,
        json!({ "prompt": "history", "assignee": "ada" }),
    )
    .await;
    let path = format!("/api/tasks/{}", id(&task));
    api(
        &app,
        &member,
        Method::PATCH,
        &path,
        Some(json!({ "status": "blocked", "tags": ["x"] })),
    )
    .await;
    api(
        &app,
        &member,
        Method::PATCH,
        &path,
        Some(json!({ "assignee": null })),
    )
    .await;
    api(&app, &member, Method::POST, &format!("{path}/cancel"), None).await;
    api(&app, &member, Method::POST, &format!("{path}/retry"), None).await;

    // Act
    let (status, first) = api(
        &app,
        &member,
        Method::GET,
        &format!("{path}/events?limit=3"),
        None,
    )
    .await;
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let (_, second) = api(
        &app,
        &member,
        Method::GET,
        &format!("{path}/events?limit=3&cursor={cursor}"),
        None,
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{first}");
    let kinds: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "updated",
            "status_changed",
            "assigned",
            "cancelled",
            "retried"
        ]
    );
    assert_eq!(first["items"][2]["data"]["from"], "pending");
    assert_eq!(first["items"][2]["data"]["to"], "blocked");
    assert_eq!(first["items"][0]["data"]["actor"]["type"], "token");
    assert_eq!(second["next_cursor"], Value::Null);
}

#[tokio::test]
async fn task_changes_are_published_and_audited() {
    // Arrange
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let tenant = app.state.directory.get("acme").expect("tenant");
    let mut events = app.state.events.subscribe(tenant.id);

    // Act
    let task = create(&app, &admin, json!({ "prompt": "watched" })).await;
    let path = format!("/api/tasks/{}", id(&task));
    api(
        &app,
        &admin,
        Method::PATCH,
        &path,
        Some(json!({ "priority": "high" })),
    )
    .await;
    api(&app, &admin, Method::POST, &format!("{path}/cancel"), None).await;
    api(&app, &admin, Method::POST, &format!("{path}/retry"), None).await;
    let (status, _) = api(&app, &admin, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Assert
    let mut kinds = Vec::new();
    while let Ok(event) = events.try_recv() {
        assert_eq!(event.data()["id"], id(&task).as_str());
        kinds.push(event.kind);
    }
    assert_eq!(
        kinds,
        [
            "task.created",
            "task.updated",
            "task.updated",
            "task.updated",
            "task.deleted"
        ]
    );
    let (_, audit) = api(
        &app,
        &admin,
        Method::GET,
        &format!("/api/audit?target_id={}", id(&task)),
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
            "task.deleted",
            "task.retried",
            "task.cancelled",
            "task.updated",
            "task.created"
        ]
    );
}

#[tokio::test]
async fn an_agents_tasks_are_listed_by_its_id_or_name() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let ada = insert_agent(&app, "acme", "ada", None, "2026-01-01T00:00:00.000Z");
    insert_agent(&app, "acme", "bob", Some(&ada), "2026-01-02T00:00:00.000Z");
    let first = create(&app, &member, json!({ "prompt": "one", "assignee": "ada" })).await;
    create(
        &app,
        &member,
        json!({ "prompt": "other", "assignee": "bob" }),
    )
    .await;
    let second = create(&app, &member, json!({ "prompt": "two", "assignee": "ada" })).await;
    set_status(&app, "acme", &id(&second), "review");

    // Act
    let (status, by_name) = api(&app, &member, Method::GET, "/api/agents/ada/tasks", None).await;
    let (_, by_id) = api(
        &app,
        &member,
        Method::GET,
        &format!("/api/agents/{ada}/tasks"),
        None,
    )
    .await;
    let (_, filtered) = api(
        &app,
        &member,
        Method::GET,
        "/api/agents/ada/tasks?status=review",
        None,
    )
    .await;
    let (unknown, body) = api(&app, &member, Method::GET, "/api/agents/ghost/tasks", None).await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{by_name}");
    assert_eq!(ids(&by_name), vec![id(&second), id(&first)]);
    assert_eq!(by_id, by_name);
    assert_eq!(ids(&filtered), vec![id(&second)]);
    assert_eq!(unknown, StatusCode::NOT_FOUND, "{body}");
}

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_task_and_chat_route() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let (status, doc) = crate::helpers::json(app.get("/api/openapi.json").await).await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    for (path, methods) in [
        ("/api/tasks", &["get", "post"][..]),
        ("/api/tasks/board", &["get"]),
        ("/api/tasks/{id}", &["get", "patch", "delete"]),
        ("/api/tasks/{id}/cancel", &["post"]),
        ("/api/tasks/{id}/retry", &["post"]),
        ("/api/tasks/{id}/events", &["get"]),
        ("/api/agents/{id}/tasks", &["get"]),
        ("/api/threads", &["get"]),
        ("/api/threads/{id}/messages", &["get"]),
        ("/api/messages", &["post"]),
        ("/api/messages/{id}", &["patch", "delete"]),
    ] {
        for method in methods {
            assert!(doc["paths"][path][method].is_object(), "{method} {path}");
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r.trim_start_matches("#/components/schemas/");
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} is not defined"
        );
    }
    let task = &doc["components"]["schemas"]["Task"]["properties"];
    for field in [
        "id",
        "prompt",
        "context",
        "priority",
        "tags",
        "status",
        "assignee_id",
        "delegator_id",
        "parent_id",
        "result",
        "cost_usd",
        "input_tokens",
        "output_tokens",
        "num_turns",
        "duration_ms",
        "created_at",
        "started_at",
        "completed_at",
    ] {
        assert!(task[field].is_object(), "Task.{field}");
    }
}
