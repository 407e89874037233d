//! The simulated provider: deterministic delegation through the org chart, chat replies,
//! usage records, and what happens to work of agents that cannot run.

use reqwest::Method;
use serde_json::json;

use super::{SETTLE, default_provider, event_kinds, get, org, post, run_task, wait_for_task};
use crate::helpers::{api, eventually, spawn_app, tenant_with};

#[tokio::test]
async fn a_manager_delegates_to_each_report_and_finishes_with_their_results() {
    // Arrange: ceo → (cto → dev), cmo
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    org(
        &app,
        &admin,
        &[
            ("ceo", None),
            ("cto", Some("ceo")),
            ("dev", Some("cto")),
            ("cmo", Some("ceo")),
        ],
    )
    .await;
    default_provider(&app, &admin, json!({ "kind": "simulated", "name": "sim" })).await;

    // Act
    let done = run_task(
        &app,
        &admin,
        json!({ "prompt": "Launch the product", "assignee": "ceo" }),
    )
    .await;
    let id = done["id"].as_str().unwrap();

    // Assert: the root's result carries every leaf's result, through the middle manager.
    assert_eq!(done["status"], "completed", "{done}");
    let result = done["result"].as_str().unwrap();
    assert!(result.contains("dev finished"), "{result}");
    assert!(result.contains("cmo finished"), "{result}");
    assert!(result.contains("cto combined"), "{result}");
    let children = get(&app, &admin, &format!("/api/tasks?parent_id={id}")).await;
    assert_eq!(children["items"].as_array().unwrap().len(), 2);
    for child in children["items"].as_array().unwrap() {
        assert_eq!(child["status"], "completed");
        assert!(child["delegator_id"].is_string());
    }
    let kinds = event_kinds(&app, &admin, id).await;
    for kind in [
        "run_started",
        "tool_use",
        "tool_result",
        "usage",
        "status_changed",
        "result",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
    // The root ran twice: once to delegate, once woken with the results.
    assert_eq!(
        kinds.iter().filter(|k| *k == "run_started").count(),
        2,
        "{kinds:?}"
    );
    assert!(done["num_turns"].as_i64().unwrap() >= 3, "{done}");
    let usage = get(&app, &admin, "/api/usage?group_by=agent").await;
    assert_eq!(usage["items"].as_array().unwrap().len(), 4, "{usage}");
    assert!(usage["total"]["input_tokens"].as_i64().unwrap() > 0);
    // Every agent is idle again.
    let agents = get(&app, &admin, "/api/agents").await;
    for a in agents["items"].as_array().unwrap() {
        assert_eq!(a["status"], "idle", "{a}");
    }
}

#[tokio::test]
async fn a_chat_message_is_answered_in_its_thread() {
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "admin");
    org(&app, &member, &[("ada", None)]).await;
    default_provider(&app, &member, json!({ "kind": "simulated", "name": "sim" })).await;

    let message = post(
        &app,
        &member,
        "/api/messages",
        json!({ "to": "ada", "body": "Status of the launch?" }),
    )
    .await;
    let thread = message["thread_id"].as_str().unwrap().to_string();
    let path = format!("/api/threads/{thread}/messages");
    let answered = eventually(SETTLE, || {
        let (app, member, path) = (&app, &member, &path);
        async move {
            let page = get(app, member, path).await;
            page["items"].as_array().unwrap().iter().any(|m| {
                m["from_agent_id"].is_string()
                    && m["body"]
                        .as_str()
                        .unwrap()
                        .contains("Status of the launch?")
            })
        }
    })
    .await;
    assert!(answered.is_some(), "the agent never answered in the thread");
}

#[tokio::test]
async fn work_of_an_agent_without_a_provider_waits_until_one_is_set() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    org(&app, &admin, &[("solo", None)]).await;
    let task = post(
        &app,
        &admin,
        "/api/tasks",
        json!({ "prompt": "Write the report", "assignee": "solo" }),
    )
    .await;
    let id = task["id"].as_str().unwrap();
    // Nothing runs: the task stays pending.
    assert_eq!(
        get(&app, &admin, &format!("/api/tasks/{id}")).await["status"],
        "pending"
    );

    let created = post(
        &app,
        &admin,
        "/api/providers",
        json!({ "kind": "simulated", "name": "sim" }),
    )
    .await;
    let (status, _) = api(
        &app,
        &admin,
        Method::PATCH,
        "/api/agents/solo",
        Some(json!({ "provider_id": created["id"] })),
    )
    .await;
    assert!(status.is_success());

    let done = wait_for_task(&app, &admin, id, &["completed"]).await;
    assert!(
        done["result"].as_str().unwrap().contains("solo finished"),
        "{done}"
    );
}
