//! `/api/members` and the role rules: viewers read, admins manage members, owners manage owners,
//! and a tenant never loses its last owner.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Browser, TestApp, add_user, call_as, error_code, json, sign_in, spawn_app};

/// Tenant acme with owner@, admin@, member@ and viewer@ (each with that role) and outsider@
/// (no membership); returns signed-in browsers by role name.
async fn setup() -> (TestApp, std::collections::HashMap<&'static str, Browser>) {
    let app = spawn_app().await;
    app.create_tenant("acme");
    let mut browsers = std::collections::HashMap::new();
    for who in ["owner", "admin", "member", "viewer", "outsider"] {
        let email = format!("{who}@example.com");
        let membership = (who != "outsider").then_some(("acme", who));
        add_user(&app, &email, membership);
        browsers.insert(who, sign_in(&app, &email).await);
    }
    (app, browsers)
}

async fn call(
    app: &TestApp,
    b: &Browser,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    call_as(app, b, method, path, Some("acme"), body).await
}

async fn user_id(app: &TestApp, b: &Browser, email: &str) -> String {
    let (_, body) = call(app, b, Method::GET, "/api/members", None).await;
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == email)
        .map(|m| m["user_id"].as_str().unwrap().to_owned())
        .unwrap()
}

#[tokio::test]
async fn every_member_can_list_the_members() {
    let (app, b) = setup().await;
    let (status, body) = call(&app, &b["viewer"], Method::GET, "/api/members", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 4);
    assert!(!body.to_string().contains("outsider"));
}

#[tokio::test]
async fn a_non_member_is_forbidden_and_an_anonymous_caller_unauthenticated() {
    let (app, b) = setup().await;
    let (status, body) = call(&app, &b["outsider"], Method::GET, "/api/members", None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "FORBIDDEN")
    );
    assert!(
        !body.to_string().contains("@example.com"),
        "no member data leaked: {body}"
    );
    let res = app
        .client
        .get(format!("{}/api/members", app.address))
        .header("X-Tenant", "acme")
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
    );
}

#[tokio::test]
async fn viewers_and_members_cannot_manage_members() {
    let (app, b) = setup().await;
    for who in ["viewer", "member"] {
        let (status, body) = call(
            &app,
            &b[who],
            Method::POST,
            "/api/members",
            Some(json!({"email": "outsider@example.com", "role": "viewer"})),
        )
        .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::FORBIDDEN, "FORBIDDEN"),
            "{who}"
        );
    }
}

#[tokio::test]
async fn admins_manage_members_but_not_owners() {
    let (app, b) = setup().await;
    let (status, body) = call(
        &app,
        &b["admin"],
        Method::POST,
        "/api/members",
        Some(json!({"email": "outsider@example.com", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = call(
        &app,
        &b["admin"],
        Method::POST,
        "/api/members",
        Some(json!({"email": "outsider@example.com", "role": "viewer"})),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "CONFLICT")
    );

    let outsider = user_id(&app, &b["admin"], "outsider@example.com").await;
    let path = format!("/api/members/{outsider}");
    assert_eq!(
        call(
            &app,
            &b["admin"],
            Method::PATCH,
            &path,
            Some(json!({"role": "member"}))
        )
        .await
        .0,
        StatusCode::OK
    );
    let (status, _) = call(
        &app,
        &b["admin"],
        Method::PATCH,
        &path,
        Some(json!({"role": "owner"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only owners grant owner");
    let owner = user_id(&app, &b["admin"], "owner@example.com").await;
    let (status, _) = call(
        &app,
        &b["admin"],
        Method::DELETE,
        &format!("/api/members/{owner}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only owners remove owners");
    assert_eq!(
        call(&app, &b["admin"], Method::DELETE, &path, None).await.0,
        StatusCode::NO_CONTENT
    );

    let (status, body) = call(
        &app,
        &b["admin"],
        Method::POST,
        "/api/members",
        Some(json!({"email": "nobody@example.com", "role": "viewer"})),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
    let (status, body) = call(
        &app,
        &b["admin"],
        Method::POST,
        "/api/members",
        Some(json!({"email": "outsider@example.com", "role": "root"})),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "VALIDATION_FAILED")
    );
}

#[tokio::test]
async fn the_last_owner_can_be_neither_demoted_nor_removed() {
    let (app, b) = setup().await;
    let owner = user_id(&app, &b["owner"], "owner@example.com").await;
    let path = format!("/api/members/{owner}");
    let (status, body) = call(
        &app,
        &b["owner"],
        Method::PATCH,
        &path,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "CONFLICT"),
        "{body}"
    );
    let (status, _) = call(&app, &b["owner"], Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // With a second owner, the first may step down.
    let admin = user_id(&app, &b["owner"], "admin@example.com").await;
    assert_eq!(
        call(
            &app,
            &b["owner"],
            Method::PATCH,
            &format!("/api/members/{admin}"),
            Some(json!({"role": "owner"}))
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &app,
            &b["owner"],
            Method::PATCH,
            &path,
            Some(json!({"role": "admin"}))
        )
        .await
        .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_cookie_mutation_without_the_csrf_token_is_forbidden() {
    let (app, b) = setup().await;
    let res = app
        .client
        .post(format!("{}/api/members", app.address))
        .header("Cookie", &b["owner"].cookie)
        .header("X-Tenant", "acme")
        .json(&json!({"email": "outsider@example.com", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "FORBIDDEN")
    );
    let (_, list) = call(&app, &b["owner"], Method::GET, "/api/members", None).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        4,
        "nothing was added"
    );
}
