use reqwest::StatusCode;

use crate::helpers::{error_code, json, spawn_app};

#[tokio::test]
async fn the_root_serves_the_embedded_ui_uncached() {
    let app = spawn_app().await;
    let res = app.get("/").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(res.headers()["cache-control"], "no-cache");
    assert!(res.text().await.unwrap().contains("<title>AgentHQ</title>"));
}

#[tokio::test]
async fn static_files_revalidate_by_etag() {
    let app = spawn_app().await;
    let res = app.get("/app.js").await;
    assert_eq!(res.status(), StatusCode::OK);
    let etag = res.headers()["etag"].clone();
    let res = app
        .client
        .get(format!("{}/app.js", app.address))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn browser_routes_fall_back_to_the_ui_but_api_and_files_do_not() {
    let app = spawn_app().await;
    let browser = |path: &str| {
        app.client
            .get(format!("{}{path}", app.address))
            .header("Accept", "text/html,application/xhtml+xml")
            .send()
    };
    assert_eq!(
        browser("/agents/ceo").await.unwrap().status(),
        StatusCode::OK
    );
    let (status, body) = json(browser("/api/nothing-here").await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "NOT_FOUND");
    assert_eq!(
        browser("/missing.js").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}
