//! Agents at work, end to end through the real server: runs driven by the job queue against
//! the simulated provider and against fake Anthropic and OpenAI servers on loopback that speak
//! the real wire formats.

mod simulated;
mod wire;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, api};

/// How long a test waits for runs to settle (they take milliseconds; CI machines are slow).
pub const SETTLE: Duration = Duration::from_secs(30);

pub async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let (status, value) = api(app, token, Method::POST, path, Some(body)).await;
    assert!(status.is_success(), "POST {path}: {status} {value}");
    value
}

pub async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, value) = api(app, token, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {value}");
    value
}

/// Creates agents from `(name, reports_to)` pairs, in order.
pub async fn org(app: &TestApp, token: &str, agents: &[(&str, Option<&str>)]) {
    for (name, manager) in agents {
        post(
            app,
            token,
            "/api/agents",
            json!({ "name": name, "role": format!("{name} role"), "reports_to": manager }),
        )
        .await;
    }
}

/// Creates a provider and makes it the workspace default.
pub async fn default_provider(app: &TestApp, token: &str, provider: Value) -> String {
    let created = post(app, token, "/api/providers", provider).await;
    let id = created["id"].as_str().expect("provider id").to_string();
    let (status, body) = api(
        app,
        token,
        Method::PATCH,
        "/api/workspace",
        Some(json!({ "default_provider_id": id })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

/// Creates a task (`POST /api/tasks` with `body`) and waits until it completed or failed;
/// returns it.
pub async fn run_task(app: &TestApp, token: &str, body: Value) -> Value {
    let task = post(app, token, "/api/tasks", body).await;
    let id = task["id"].as_str().expect("the task's id");
    wait_for_task(app, token, id, &["completed", "failed"]).await
}

/// Waits until task `id` has one of `statuses`; returns it.
pub async fn wait_for_task(app: &TestApp, token: &str, id: &str, statuses: &[&str]) -> Value {
    let path = format!("/api/tasks/{id}");
    let started = std::time::Instant::now();
    loop {
        let (status, task) = api(app, token, Method::GET, &path, None).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            // The free plan's request budget: wait for it rather than fail the poll.
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        assert_eq!(status, StatusCode::OK, "GET {path}: {task}");
        if statuses.iter().any(|s| task["status"] == *s) {
            return task;
        }
        assert!(
            started.elapsed() < SETTLE,
            "task never reached {statuses:?}: {task}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The kinds of a task's event log, in order.
pub async fn event_kinds(app: &TestApp, token: &str, id: &str) -> Vec<String> {
    let page = get(app, token, &format!("/api/tasks/{id}/events?limit=100")).await;
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}
