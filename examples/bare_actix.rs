//! The throughput baseline of the HTTP benchmarks: a bare actix-web server whose GET routes
//! return JSON bodies shaped and sized like agenthq's, and nothing else (no middleware, no
//! tenant resolution, no storage). Same actix-web build and features as agenthq, same default
//! worker count (one per core).
//!
//! - `/api/tenant`: a tenant card (`benches/http.sh`, `benches/auth.sh`);
//! - `/api/tasks`: a page of 50 task-shaped objects of about 300 bytes each, built per request
//!   (`benches/tasks.sh`).
//!
//! ```text
//! cargo run --release --example bare_actix -- 127.0.0.1:18080
//! curl http://127.0.0.1:18080/api/tenant
//! ```

use actix_web::{App, HttpResponse, HttpServer, web};
use serde::Serialize;

/// The same fields as a tenant, so serialisation costs about the same.
#[derive(Serialize)]
struct Body {
    id: &'static str,
    slug: &'static str,
    name: &'static str,
    status: &'static str,
    plan: &'static str,
    created_at: &'static str,
    updated_at: &'static str,
}

async fn tenant() -> HttpResponse {
    HttpResponse::Ok().json(Body {
        id: "0198a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        slug: "acme",
        name: "acme",
        status: "active",
        plan: "free",
        created_at: "2025-01-01T00:00:00.000Z",
        updated_at: "2025-01-01T00:00:00.000Z",
    })
}

/// A task as listed: the same fields and about the same size as agenthq's (~300 bytes).
#[derive(Serialize)]
struct Task {
    id: String,
    prompt: String,
    context: Option<String>,
    priority: u8,
    tags: Vec<&'static str>,
    status: &'static str,
    assignee_id: &'static str,
    delegator_id: Option<&'static str>,
    parent_id: Option<&'static str>,
    result: Option<String>,
    cost_usd: f64,
    input_tokens: u64,
    output_tokens: u64,
    num_turns: u32,
    duration_ms: Option<u64>,
    created_at: &'static str,
    started_at: Option<&'static str>,
    completed_at: Option<&'static str>,
}

#[derive(Serialize)]
struct Page {
    items: Vec<Task>,
    next_cursor: Option<String>,
}

async fn tasks() -> HttpResponse {
    let items = (0..50)
        .map(|i| Task {
            id: format!("0198a1b2-c3d4-7e5f-8a9b-0c1d2e3f{i:04}"),
            prompt: format!("Benchmark task number {i}: write the quarterly summary"),
            context: None,
            priority: 2,
            tags: vec!["bench"],
            status: "pending",
            assignee_id: "0198a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            delegator_id: None,
            parent_id: None,
            result: None,
            cost_usd: 0.0,
            input_tokens: 0,
            output_tokens: 0,
            num_turns: 0,
            duration_ms: None,
            created_at: "2025-01-01T00:00:00.000Z",
            started_at: None,
            completed_at: None,
        })
        .collect();
    HttpResponse::Ok().json(Page {
        items,
        next_cursor: Some("MDE5OGExYjItYzNkNC03ZTVmLThhOWItMGMxZDJlM2YwMDQ5".into()),
    })
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".to_owned());
    eprintln!("bare_actix listening on http://{addr}/api/tenant");
    HttpServer::new(|| {
        App::new()
            .route("/api/tenant", web::get().to(tenant))
            .route("/api/tasks", web::get().to(tasks))
    })
    .bind(addr)?
    .run()
    .await
}
