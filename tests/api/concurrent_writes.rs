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
