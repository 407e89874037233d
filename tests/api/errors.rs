use reqwest::StatusCode;

use crate::helpers::{error_code, json, spawn_app, spawn_app_with};

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    let app = spawn_app().await;
    let (status, body) = json(app.get("/api/no-such-thing").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "NOT_FOUND");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/api/no-such-thing")
    );
    assert!(body["error"].get("details").is_some());
}

#[tokio::test]
async fn a_wrong_method_on_a_known_route_is_a_json_405() {
    let app = spawn_app().await;
    let res = app
        .client
        .delete(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&body), "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_json_413_on_any_route() {
    let app = spawn_app_with(|o| o.max_body_bytes = Some(1024)).await;
    let res = app
        .client
        .post(format!("{}/api/tenant", app.address))
        .header("Content-Type", "application/json")
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&body), "PAYLOAD_TOO_LARGE");
    assert_eq!(body["error"]["details"]["limit_bytes"], 1024);
}

#[tokio::test]
async fn the_default_body_limit_is_one_mebibyte() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(format!("{}/api/tenant", app.address))
        .body(vec![b'x'; 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}
