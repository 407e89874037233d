//! `GET /api/openapi.json` covers the whole route table, and nothing else.

use agenthq::api::{Access, endpoints};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{json, spawn_app};

async fn document() -> Value {
    let app = spawn_app().await;
    let (status, doc) = json(app.get("/api/openapi.json").await).await;
    assert_eq!(status, StatusCode::OK);
    doc
}

#[tokio::test]
async fn every_registered_route_is_in_the_openapi_document() {
    let doc = document().await;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document: {}",
        doc["openapi"]
    );
    let mut missing = Vec::new();
    for e in endpoints() {
        let method = e.method.as_str().to_ascii_lowercase();
        if doc["paths"][e.path][&method].is_null() {
            missing.push(format!("{} {}", e.method, e.path));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from the document: {missing:#?}"
    );
}

#[tokio::test]
async fn the_document_describes_no_route_that_does_not_exist() {
    let doc = document().await;
    let registered: Vec<(String, String)> = endpoints()
        .iter()
        .map(|e| (e.method.as_str().to_ascii_lowercase(), e.path.to_owned()))
        .collect();
    let paths = doc["paths"].as_object().expect("paths");
    let mut phantom = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            if !registered.contains(&(method.clone(), path.clone())) {
                phantom.push(format!("{method} {path}"));
            }
        }
    }
    assert!(
        phantom.is_empty(),
        "documented but not routed: {phantom:#?}"
    );
}

#[tokio::test]
async fn every_operation_documents_a_success_and_tenant_routes_their_refusals() {
    let doc = document().await;
    for e in endpoints() {
        let op = &doc["paths"][e.path][e.method.as_str().to_ascii_lowercase()];
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            // 101: the WebSocket upgrade of /api/ws.
            responses.keys().any(|s| s.starts_with('2') || s == "101"),
            "{} {} documents no success",
            e.method,
            e.path
        );
        if e.access == Access::Tenant {
            for status in ["401", "403", "404"] {
                assert!(
                    responses.contains_key(status),
                    "{} {} does not document {status}",
                    e.method,
                    e.path
                );
            }
        }
    }
}
