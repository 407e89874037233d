//! The org chart over HTTP: moves, cycles, the tree, and deletions that keep it whole.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use agenthq::audit::{Actor, AuditEntry, Origin, Target};
use agenthq::domain::agent::{AgentChanges, AgentStatus};
use agenthq::store::StoreError;

use super::{create_agent, field_named, insert_task, store, task_assignee};
use crate::helpers::{api, error_code, spawn_app, tenant_with};

#[tokio::test]
async fn an_agent_cannot_report_to_itself_or_to_anyone_below_it() {
    // Arrange: ceo ← vp ← dev
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    create_agent(&app, &member, json!({ "name": "ceo" })).await;
    create_agent(&app, &member, json!({ "name": "vp", "reports_to": "ceo" })).await;
    create_agent(&app, &member, json!({ "name": "dev", "reports_to": "vp" })).await;

    // Act
    let (self_status, self_body) = api(
        &app,
        &member,
        Method::PATCH,
        "/api/agents/ceo",
        Some(json!({ "reports_to": "ceo" })),
    )
    .await;
    let (loop_status, loop_body) = api(
        &app,
        &member,
        Method::PATCH,
        "/api/agents/ceo",
        Some(json!({ "reports_to": "dev" })),
    )
    .await;

    // Assert
    assert_eq!(self_status, StatusCode::BAD_REQUEST, "{self_body}");
    assert_eq!(
        field_named(&self_body, "reports_to"),
        Some(&json!("would create a cycle: ceo → ceo"))
    );
    assert_eq!(loop_status, StatusCode::BAD_REQUEST, "{loop_body}");
    assert_eq!(
        field_named(&loop_body, "reports_to"),
        Some(&json!("would create a cycle: ceo → dev → vp → ceo"))
    );
    let (_, ceo) = api(&app, &member, Method::GET, "/api/agents/ceo", None).await;
    assert_eq!(ceo["reports_to"], Value::Null, "nothing changed");
}

#[tokio::test]
async fn the_org_chart_is_a_tree_of_agents_under_their_managers() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let ceo = create_agent(&app, &member, json!({ "name": "ceo", "level": "c-suite" })).await;
    create_agent(&app, &member, json!({ "name": "cto", "reports_to": "ceo" })).await;
    create_agent(
        &app,
        &member,
        json!({ "name": "dev-b", "reports_to": "cto" }),
    )
    .await;
    create_agent(
        &app,
        &member,
        json!({ "name": "dev-a", "reports_to": "cto" }),
    )
    .await;
    create_agent(&app, &member, json!({ "name": "freelancer" })).await;

    // Act: move dev-b under the ceo (by id), make cto a root.
    let (status, moved) = api(
        &app,
        &member,
        Method::PATCH,
        "/api/agents/dev-b",
        Some(json!({ "reports_to": ceo["id"] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["reports_to"], ceo["id"], "stored as the id");
    let (status, _) = api(
        &app,
        &member,
        Method::PATCH,
        "/api/agents/cto",
        Some(json!({ "reports_to": null })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, org) = api(&app, &member, Method::GET, "/api/org", None).await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{org}");
    fn shape(nodes: &Value) -> Value {
        nodes
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| json!([n["name"], shape(&n["reports"])]))
            .collect()
    }
    assert_eq!(
        shape(&org["roots"]),
        json!([
            ["ceo", [["dev-b", []]]],
            ["cto", [["dev-a", []]]],
            ["freelancer", []]
        ])
    );
    assert_eq!(org["roots"][0]["level"], "c-suite");
}

#[tokio::test]
async fn a_running_agent_cannot_be_deleted() {
    // Arrange
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let busy = create_agent(&app, &member, json!({ "name": "busy" })).await;
    // What the runtime does when a run starts.
    store(&app, "acme")
        .set_agent_status(busy["id"].as_str().expect("id"), AgentStatus::Running)
        .expect("status set");

    // Act
    let (status, body) = api(&app, &member, Method::DELETE, "/api/agents/busy", None).await;

    // Assert
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "CONFLICT");
    let (status, body) = api(
        &app,
        &member,
        Method::PATCH,
        "/api/agents/busy",
        Some(json!({ "status": "paused" })),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "no pausing around the rule: {body}"
    );
    let (status, agent) = api(&app, &member, Method::GET, "/api/agents/busy", None).await;
    assert_eq!(status, StatusCode::OK, "still there");
    assert_eq!(agent["status"], "running");
}

#[tokio::test]
async fn deleting_an_agent_moves_its_reports_up_and_unassigns_its_open_tasks() {
    // Arrange: ceo ← manager ← (dev-1, dev-2); manager has one open and one finished task.
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let ceo = create_agent(&app, &member, json!({ "name": "ceo" })).await;
    let manager = create_agent(
        &app,
        &member,
        json!({ "name": "manager", "reports_to": "ceo" }),
    )
    .await;
    create_agent(
        &app,
        &member,
        json!({ "name": "dev-1", "reports_to": "manager" }),
    )
    .await;
    create_agent(
        &app,
        &member,
        json!({ "name": "dev-2", "reports_to": "manager" }),
    )
    .await;
    let manager_id = manager["id"].as_str().expect("id");
    insert_task(&app, "acme", "task-open", "pending", manager_id);
    insert_task(&app, "acme", "task-review", "review", manager_id);
    let tenant = app.state.directory.get("acme").expect("tenant");
    let mut events = app.state.events.subscribe(tenant.id);

    // Act
    let (status, body) = api(&app, &member, Method::DELETE, "/api/agents/manager", None).await;

    // Assert
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for dev in ["dev-1", "dev-2"] {
        let (_, agent) = api(
            &app,
            &member,
            Method::GET,
            &format!("/api/agents/{dev}"),
            None,
        )
        .await;
        assert_eq!(
            agent["reports_to"], ceo["id"],
            "{dev} now reports to the ceo"
        );
    }
    assert_eq!(task_assignee(&app, "acme", "task-open"), None);
    assert_eq!(task_assignee(&app, "acme", "task-review"), None);
    let first = events.try_recv().expect("agent.deleted published");
    assert_eq!(first.kind, "agent.deleted");
    assert_eq!(first.data()["name"], "manager");
    let moved: Vec<_> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert_eq!(moved.len(), 2, "one agent.updated per moved report");
    assert!(moved.iter().all(|e| e.kind == "agent.updated"));
    let admin = tenant_with(&app, "acme", "admin");
    let (_, audit) = api(
        &app,
        &admin,
        Method::GET,
        "/api/audit?action=agent.deleted",
        None,
    )
    .await;
    assert_eq!(audit["items"][0]["target_id"], manager["id"]);
    assert_eq!(audit["items"][0]["details"]["reports_moved"], 2);
    assert_eq!(audit["items"][0]["details"]["tasks_unassigned"], 2);
}

#[tokio::test]
async fn a_finished_task_keeps_no_dangling_assignee_after_its_agent_is_deleted() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let agent = create_agent(&app, &member, json!({ "name": "temp" })).await;
    insert_task(
        &app,
        "acme",
        "done",
        "completed",
        agent["id"].as_str().expect("id"),
    );

    let (status, _) = api(&app, &member, Method::DELETE, "/api/agents/temp", None).await;

    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(task_assignee(&app, "acme", "done"), None);
}

#[tokio::test]
async fn the_store_refuses_a_move_that_closes_a_cycle_even_past_the_service_check() {
    // Arrange: ceo ← vp. A concurrent request could have passed the service's cycle check
    // before this chart existed; the store checks again in its transaction.
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "member");
    let ceo = create_agent(&app, &member, json!({ "name": "ceo" })).await;
    let vp = create_agent(&app, &member, json!({ "name": "vp", "reports_to": "ceo" })).await;
    let ceo_id = ceo["id"].as_str().expect("id");
    let changes = AgentChanges {
        reports_to: Some(Some(vp["id"].as_str().expect("id").to_owned())),
        ..AgentChanges::default()
    };
    let audit = AuditEntry::new(
        &Actor::cli(),
        &Origin::default(),
        "agent.updated",
        Target::new("agent", ceo_id),
    );

    // Act
    let result = store(&app, "acme").update_agent(ceo_id, &changes, &audit);

    // Assert
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    let (_, ceo_now) = api(&app, &member, Method::GET, "/api/agents/ceo", None).await;
    assert_eq!(ceo_now["reports_to"], Value::Null, "rolled back");
}
