//! The one-time setup link of a fresh install.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, json, spawn_with_admin};

/// A real `agenthq serve` on a fresh data dir; returns the child and the printed link.
fn serve_fresh(data: &std::path::Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agenthq"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("AGENTHQ_DATA_DIR", data)
        .env_remove("AGENTHQ_ADMIN_EMAIL")
        .env_remove("AGENTHQ_ADMIN_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("agenthq runs");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(at) = line.find("http://") {
                let _ = tx.send(line[at..].trim().to_owned());
                return;
            }
        }
    });
    let link = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server prints a setup link");
    (child, link)
}

#[tokio::test]
async fn a_fresh_install_prints_a_setup_link_that_creates_the_first_admin_once() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, link) = serve_fresh(data.path());
    let (base, secret) = link.split_once("/setup#token=").expect("link shape");
    assert_eq!(secret.len(), 64);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let setup = |body: serde_json::Value| {
        let client = client.clone();
        let url = format!("{base}/api/setup");
        async move { json(client.post(url).json(&body).send().await.unwrap()).await }
    };

    let (status, body) = json(
        client
            .get(format!("{base}/api/setup"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["required"].clone()),
        (StatusCode::OK, json!(true))
    );
    let (status, _) =
        setup(json!({"token": "0".repeat(64), "email": "root@example.com", "password": PASSWORD}))
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a wrong secret is refused");
    let (status, body) =
        setup(json!({"token": secret, "email": "root@example.com", "password": "short"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) =
        setup(json!({"token": secret, "email": "root@example.com", "password": PASSWORD})).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a bad form does not burn the link: {body}"
    );
    assert_eq!(body["user"]["is_platform_admin"], true);
    let (status, _) =
        setup(json!({"token": secret, "email": "evil@example.com", "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the link works once");

    let res = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "root@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the new admin signs in");
    let (_, body) = json(
        client
            .get(format!("{base}/api/setup"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["required"], false);
    child.kill().unwrap();
    child.wait().unwrap();

    let log = std::fs::read_dir(data.path()).unwrap();
    for entry in log.flatten() {
        if entry.path().extension().is_some_and(|e| e == "db") {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "the link secret is never stored"
            );
        }
    }
}

#[tokio::test]
async fn an_install_with_an_admin_has_no_setup_link() {
    let (app, _) = spawn_with_admin().await;
    let (status, body) = json(app.get("/api/setup").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["required"], false);
    let res = app
        .client
        .post(format!("{}/api/setup", app.address))
        .json(&json!({"token": "0".repeat(64), "email": "x@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}
