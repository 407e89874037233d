//! Sign-in with sessions: login, me, logout, CSRF, expiry.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, add_user, error_code, json, spawn_app};

async fn login(app: &TestApp, email: &str, password: &str) -> (StatusCode, Value, Option<String>) {
    let res = app
        .client
        .post(format!("{}/api/auth/login", app.address))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap();
    let cookie = res
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = json(res).await;
    (status, body, cookie)
}

/// `agenthq_session=<value>` from a Set-Cookie header.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn me(app: &TestApp, cookie: &str) -> StatusCode {
    app.client
        .get(format!("{}/api/auth/me", app.address))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn login_returns_the_user_their_tenants_and_a_csrf_token_with_an_httponly_cookie() {
    let app = spawn_app().await;
    app.create_tenant("acme");
    add_user(&app, "ada@example.com", Some(("acme", "admin")));

    let (status, body, cookie) = login(&app, "ADA@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(
        body["tenants"],
        json!([{ "slug": "acme", "role": "admin" }])
    );
    assert!(body["csrf_token"].as_str().unwrap().len() >= 32);
    assert!(body["user"].get("password_hash").is_none());
    let cookie = cookie.expect("session cookie");
    assert!(cookie.starts_with("agenthq_session="));
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(
        !cookie.contains("Secure"),
        "no Secure without an https public URL"
    );
    assert_eq!(me(&app, &cookie_pair(&cookie)).await, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    add_user(&app, "ada@example.com", None);
    let (s1, b1, c1) = login(&app, "ada@example.com", "wrong password here").await;
    let (s2, b2, c2) = login(&app, "nobody@example.com", PASSWORD).await;
    let (s3, b3, _) = login(&app, "not an email", PASSWORD).await;
    assert_eq!(s1, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&b1), "UNAUTHENTICATED");
    assert_eq!((s1, &b1), (s2, &b2));
    assert_eq!((s1, &b1), (s3, &b3));
    assert!(c1.is_none() && c2.is_none());
}

#[tokio::test]
async fn me_without_a_session_is_401() {
    let app = spawn_app().await;
    let (status, body) = json(app.get("/api/auth/me").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(
        me(&app, "agenthq_session=deadbeef").await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn logout_needs_the_csrf_token_and_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    add_user(&app, "ada@example.com", None);
    let (_, body, cookie) = login(&app, "ada@example.com", PASSWORD).await;
    let cookie = cookie_pair(&cookie.unwrap());
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();

    let res = app
        .client
        .post(format!("{}/api/auth/logout", app.address))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "FORBIDDEN");
    assert_eq!(me(&app, &cookie).await, StatusCode::OK, "still signed in");

    let res = app
        .client
        .post(format!("{}/api/auth/logout", app.address))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // The old cookie is worthless now, even if the browser kept it.
    assert_eq!(me(&app, &cookie).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_expired_session_is_refused() {
    let app = spawn_app().await;
    add_user(&app, "ada@example.com", None);
    let (_, _, cookie) = login(&app, "ada@example.com", PASSWORD).await;
    let cookie = cookie_pair(&cookie.unwrap());
    let conn = rusqlite::Connection::open(app.data_path().join("registry.db")).unwrap();
    conn.execute(
        "UPDATE sessions SET expires_at = '2000-01-01T00:00:00.000Z'",
        [],
    )
    .unwrap();
    assert_eq!(me(&app, &cookie).await, StatusCode::UNAUTHORIZED);
    let left: i64 = conn
        .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "an expired session is deleted when seen");
}

#[tokio::test]
async fn session_ids_and_passwords_are_never_stored_in_plaintext() {
    let app = spawn_app().await;
    add_user(&app, "ada@example.com", None);
    let (_, _, cookie) = login(&app, "ada@example.com", PASSWORD).await;
    let secret = cookie_pair(&cookie.unwrap())
        .trim_start_matches("agenthq_session=")
        .to_owned();
    let data = app.data_dir.clone();
    app.stop().await.unwrap();
    let registry = std::fs::read(data.path().join("registry.db")).unwrap();
    for needle in [secret.as_bytes(), PASSWORD.as_bytes()] {
        assert!(!registry.windows(needle.len()).any(|w| w == needle));
    }
}

#[tokio::test]
async fn login_bodies_are_validated_over_http() {
    let app = spawn_app().await;
    let post = |body: &'static str, content_type: &'static str| {
        app.client
            .post(format!("{}/api/auth/login", app.address))
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let (status, body) = json(post("{\"email\": ", "application/json").await.unwrap()).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "MALFORMED_JSON")
    );
    let (status, body) = json(
        post("{\"email\": \"a@b.co\"}", "application/json")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "VALIDATION_FAILED")
    );
    let (status, body) = json(
        post("email=a", "application/x-www-form-urlencoded")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE")
    );
}
