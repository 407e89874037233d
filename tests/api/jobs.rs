//! The job queue through the server: a tenant sees only its own jobs, platform admins see,
//! retry and cancel any, maintenance schedules exist, and the worker pool runs jobs.

use std::time::Duration;

use agenthq::queue::{JobSpec, JobState};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Auth, TestApp, api, call, eventually, spawn_with_admin, tenant_with};

fn tenant_id(app: &TestApp, slug: &str) -> String {
    app.state
        .directory
        .get(slug)
        .expect("tenant")
        .id
        .to_string()
}

/// Enqueues a job of `kind` for `slug`, due in an hour (so it stays queued) unless `now`.
async fn enqueue(app: &TestApp, slug: &str, kind: &str, now: bool) -> String {
    let mut spec = JobSpec::new(kind)
        .tenant(tenant_id(app, slug))
        .payload(json!({ "n": 1 }));
    if !now {
        spec = spec.delay(Duration::from_secs(3600));
    }
    let id = app.state.queue.enqueue(spec).await.expect("enqueued").id();
    id.to_string()
}

async fn job_state(app: &TestApp, id: &str) -> JobState {
    app.state
        .queue
        .get(id.parse().expect("job id"))
        .await
        .expect("job")
        .state
}

#[tokio::test]
async fn a_tenant_lists_only_its_own_jobs_with_filters_and_pages() {
    // Arrange
    let (app, _root) = spawn_with_admin().await;
    let acme = tenant_with(&app, "acme", "viewer");
    tenant_with(&app, "globex", "member");
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(enqueue(&app, "acme", "report.build", false).await);
    }
    enqueue(&app, "globex", "report.build", false).await;

    // Act
    let (status, first) = api(&app, &acme, Method::GET, "/api/jobs?limit=2", None).await;
    let cursor = first["next_cursor"].as_str().expect("a cursor").to_owned();
    let (_, second) = api(
        &app,
        &acme,
        Method::GET,
        &format!("/api/jobs?limit=2&cursor={cursor}"),
        None,
    )
    .await;

    // Assert: newest first, acme's only, every field a client needs.
    assert_eq!(status, StatusCode::OK, "{first}");
    let ids: Vec<&str> = first["items"]
        .as_array()
        .expect("items")
        .iter()
        .chain(second["items"].as_array().expect("items"))
        .map(|j| j["id"].as_str().expect("id"))
        .collect();
    let newest_first: Vec<&str> = mine.iter().rev().map(String::as_str).collect();
    assert_eq!(ids, newest_first);
    assert!(second["next_cursor"].is_null());
    let job = &first["items"][0];
    assert_eq!(job["tenant"], "acme");
    assert_eq!(job["kind"], "report.build");
    assert_eq!(job["state"], "queued");
    assert_eq!(job["payload"], json!({ "n": 1 }));
    assert_eq!(job["attempts"], 0);
    for field in [
        "run_at",
        "created_at",
        "updated_at",
        "max_attempts",
        "timeout_ms",
    ] {
        assert!(!job[field].is_null(), "{field} in {job}");
    }

    let (_, filtered) = api(&app, &acme, Method::GET, "/api/jobs?state=running", None).await;
    assert_eq!(filtered["items"], json!([]));
    let (_, by_kind) = api(&app, &acme, Method::GET, "/api/jobs?kind=other", None).await;
    assert_eq!(by_kind["items"], json!([]));
    for bad in ["state=lost", "limit=0", "limit=101", "cursor=nope"] {
        let (status, body) = api(&app, &acme, Method::GET, &format!("/api/jobs?{bad}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "VALIDATION_FAILED");
    }
}

#[tokio::test]
async fn platform_admins_list_retry_and_cancel_any_job() {
    // Arrange
    let (app, root) = spawn_with_admin().await;
    let owner = tenant_with(&app, "acme", "owner");
    let queued = enqueue(&app, "acme", "report.build", false).await;
    // No handler runs this kind: its one attempt fails for good.
    let doomed = app
        .state
        .queue
        .enqueue(
            JobSpec::new("no.such.kind")
                .tenant(tenant_id(&app, "acme"))
                .max_attempts(1),
        )
        .await
        .expect("enqueued")
        .id()
        .to_string();
    let finished = eventually(Duration::from_secs(10), || async {
        !job_state(&app, &doomed).await.is_live()
    })
    .await;
    assert!(
        finished.is_some(),
        "the job without a handler never finished"
    );
    let admin = |method: Method, path: String| {
        let (app, root) = (&app, &root);
        async move { call(app, Auth::Browser(root), method, &path, None, None).await }
    };

    // Act + Assert: list by tenant, and the platform's own (maintenance) jobs exist apart.
    let (status, page) = admin(Method::GET, "/api/admin/jobs?tenant=acme".into()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().expect("items").len(), 2);
    let (status, _) = admin(Method::GET, "/api/admin/jobs?tenant=platform".into()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = admin(Method::GET, "/api/admin/jobs?tenant=nobody".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A finished job is retried, attempts reset; a queued one cannot be.
    let (status, body) = admin(Method::POST, format!("/api/admin/jobs/{doomed}/retry")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["attempts"], 0);
    assert!(body["last_error"].is_null() || body["last_error"].is_string());
    let (status, body) = admin(Method::POST, format!("/api/admin/jobs/{queued}/retry")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // A queued job is cancelled at once; cancelling it again is a conflict.
    let (status, body) = admin(Method::POST, format!("/api/admin/jobs/{queued}/cancel")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "cancelled");
    assert_eq!(body["job"]["state"], "cancelled");
    assert_eq!(job_state(&app, &queued).await, JobState::Cancelled);
    let (status, _) = admin(Method::POST, format!("/api/admin/jobs/{queued}/cancel")).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Unknown ids are 404, whatever their shape.
    for id in ["00000000-0000-7000-8000-000000000000", "nope"] {
        let (status, _) = admin(Method::POST, format!("/api/admin/jobs/{id}/cancel")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}");
    }

    // Both changes are in the platform audit log.
    let (_, audit) = admin(Method::GET, "/api/admin/audit".into()).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"job.retried"), "{actions:?}");
    assert!(actions.contains(&"job.cancelled"), "{actions:?}");

    // Tenant owners are not platform admins.
    let (status, _) = api(&app, &owner, Method::GET, "/api/admin/jobs", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_server_runs_jobs_and_keeps_its_maintenance_schedules() {
    let (app, _root) = spawn_with_admin().await;
    tenant_with(&app, "acme", "member");

    let id = enqueue(&app, "acme", agenthq::queue::NOOP_KIND, true).await;
    let done = eventually(Duration::from_secs(10), || async {
        job_state(&app, &id).await == JobState::Succeeded
    })
    .await;
    assert!(done.is_some(), "the noop job never succeeded");

    let names: Vec<String> = app
        .state
        .queue
        .list_schedules()
        .await
        .expect("schedules")
        .into_iter()
        .map(|s| s.spec.name)
        .collect();
    for name in [
        "maintenance.hook_event_retention",
        "maintenance.prune_jobs",
        "maintenance.wal_checkpoint",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }

    // The readiness check covers the queue, and the metrics show its depth.
    let res = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .expect("sent");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["checks"]["queue"], "ok", "{body}");
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("agenthq_queue_jobs{kind=\"noop\",state=\"succeeded\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("agenthq_queue_attempts_total{kind=\"noop\",outcome=\"succeeded\"} 1")
    );
}
