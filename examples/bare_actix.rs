//! The throughput baseline for `benches/http.sh`: a bare actix-web server with one GET route
//! returning a small JSON body shaped and sized like `GET /api/tenant`'s, and nothing else (no
//! middleware, no tenant resolution, no storage). Same actix-web build and features as
//! agenthq, same default worker count (one per core).
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

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".to_owned());
    eprintln!("bare_actix listening on http://{addr}/api/tenant");
    HttpServer::new(|| App::new().route("/api/tenant", web::get().to(tenant)))
        .bind(addr)?
        .run()
        .await
}
