//! Writes of one tenant go through one writer connection: under concurrency every write is
//! stored with its audit entry, none is lost or refused as busy.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{api, spawn_app_with_config, tenant_with};

const UNLIMITED: &str = "[rate_limits.free]\nrequests_per_minute = 1000000\nburst = 1000000\n";

#[tokio::test]
async fn concurrent_task_creations_are_all_stored_and_audited() {
    let app = spawn_app_with_config(UNLIMITED).await;
    let owner = tenant_with(&app, "acme", "owner");

    let posts = (0..40).map(|i| {
        let (app, owner) = (&app, &owner);
        async move {
            api(
                app,
                owner,
                Method::POST,
                "/api/tasks",
                Some(json!({ "prompt": format!("task {i}") })),
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(posts).await;

    assert!(
        answers.iter().all(|(s, _)| *s == StatusCode::CREATED),
        "{answers:?}"
    );
    let (_, page) = api(&app, &owner, Method::GET, "/api/tasks?limit=100", None).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(40));
    let (_, audit) = api(
        &app,
        &owner,
        Method::GET,
        "/api/audit?action=task.created&limit=100",
        None,
    )
    .await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(40));
}

/// Concurrent changes of one tenant run in batches that share a commit: a refused request
/// leaves the others of its batch alone, and requests on one task see each other's changes.
#[tokio::test]
async fn refused_requests_amid_concurrent_changes_leave_the_others_whole() {
    let app = spawn_app_with_config(UNLIMITED).await;
    let owner = tenant_with(&app, "acme", "owner");
    let (status, task) = api(
        &app,
        &owner,
        Method::POST,
        "/api/tasks",
        Some(json!({ "prompt": "edited by many" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let task_path = format!("/api/tasks/{}", task["id"].as_str().unwrap());

    let requests = (0..60).map(|i| {
        let (app, owner, task_path) = (&app, &owner, &task_path);
        async move {
            let (method, path, body) = match i % 3 {
                0 => (
                    Method::POST,
                    "/api/tasks",
                    json!({ "prompt": format!("task {i}") }),
                ),
                1 => (
                    Method::POST,
                    "/api/tasks",
                    json!({ "prompt": format!("bad {i}"), "assignee": "nobody" }),
                ),
                _ => (
                    Method::PATCH,
                    task_path.as_str(),
                    json!({ "tags": [format!("t{i}")] }),
                ),
            };
            (i, api(app, owner, method, path, Some(body)).await)
        }
    });
    let answers = futures_util::future::join_all(requests).await;

    for (i, (status, body)) in &answers {
        let expected = match i % 3 {
            0 => StatusCode::CREATED,
            1 => StatusCode::BAD_REQUEST,
            _ => StatusCode::OK,
        };
        assert_eq!(*status, expected, "request {i}: {body}");
    }
    let (_, page) = api(&app, &owner, Method::GET, "/api/tasks?limit=100", None).await;
    assert_eq!(
        page["items"].as_array().map(Vec::len),
        Some(21),
        "20 created and the first"
    );
    let (_, events) = api(
        &app,
        &owner,
        Method::GET,
        &format!("{task_path}/events?limit=100"),
        None,
    )
    .await;
    assert_eq!(
        events["items"].as_array().map(Vec::len),
        Some(21),
        "created and 20 edits"
    );
    for (action, count) in [("task.created", 21), ("task.updated", 20)] {
        let path = format!("/api/audit?action={action}&limit=100");
        let (_, audit) = api(&app, &owner, Method::GET, &path, None).await;
        assert_eq!(
            audit["items"].as_array().map(Vec::len),
            Some(count),
            "{action}"
        );
    }
}
