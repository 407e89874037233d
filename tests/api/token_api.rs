//! `/api/tokens`: members issue, list and revoke tokens over HTTP.

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Auth, TestApp, add_user, call, error_code, issue_token, spawn_app};

/// acme with ada (admin), bob (member) and vic (viewer); a token for each.
async fn setup() -> (TestApp, String, String, String) {
    let app = spawn_app().await;
    app.create_tenant("acme");
    add_user(&app, "ada@example.com", Some(("acme", "admin")));
    add_user(&app, "bob@example.com", Some(("acme", "member")));
    add_user(&app, "vic@example.com", Some(("acme", "viewer")));
    let ada = issue_token(&app, "acme", "ada@example.com");
    let bob = issue_token(&app, "acme", "bob@example.com");
    let vic = issue_token(&app, "acme", "vic@example.com");
    (app, ada, bob, vic)
}

#[tokio::test]
async fn a_member_creates_a_token_whose_value_is_shown_once_and_works() {
    let (app, _, bob, _) = setup().await;
    let (status, created) = call(
        &app,
        Auth::Token(&bob),
        Method::POST,
        "/api/tokens",
        None,
        Some(json!({ "name": "deploy script", "expires_in_days": 30 })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["token"].as_str().expect("the secret, once");
    assert!(secret.starts_with("ahq_"));
    assert_eq!(created["role"], "member");
    assert_eq!(created["name"], "deploy script");
    assert!(created["expires_at"].is_string());

    let (status, me) = call(
        &app,
        Auth::Token(secret),
        Method::GET,
        "/api/tenant",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["slug"], "acme");

    let (status, list) = call(
        &app,
        Auth::Token(&bob),
        Method::GET,
        "/api/tokens",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == created["id"])
    );
    assert!(
        !list.to_string().contains(secret),
        "lists never show secrets"
    );
}

#[tokio::test]
async fn a_revoked_token_is_refused_on_the_next_request() {
    let (app, _, bob, _) = setup().await;
    let (_, created) = call(
        &app,
        Auth::Token(&bob),
        Method::POST,
        "/api/tokens",
        None,
        Some(json!({ "name": "short-lived" })),
    )
    .await;
    let secret = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap();
    // Used (and so cached by the server) before it is revoked.
    for _ in 0..2 {
        let (status, _) = call(
            &app,
            Auth::Token(&secret),
            Method::GET,
            "/api/tokens",
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = call(
        &app,
        Auth::Token(&bob),
        Method::DELETE,
        &format!("/api/tokens/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(
        &app,
        Auth::Token(&secret),
        Method::GET,
        "/api/tokens",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Revoking again is harmless.
    let (status, _) = call(
        &app,
        Auth::Token(&bob),
        Method::DELETE,
        &format!("/api/tokens/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn members_see_and_revoke_only_their_own_tokens_and_admins_all() {
    let (app, ada, bob, _) = setup().await;
    let (_, adas) = call(
        &app,
        Auth::Token(&ada),
        Method::GET,
        "/api/tokens",
        None,
        None,
    )
    .await;
    let (_, bobs) = call(
        &app,
        Auth::Token(&bob),
        Method::GET,
        "/api/tokens",
        None,
        None,
    )
    .await;
    assert_eq!(adas["items"].as_array().unwrap().len(), 3, "{adas}");
    assert_eq!(bobs["items"].as_array().unwrap().len(), 1, "{bobs}");
    let adas_own = adas["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = call(
        &app,
        Auth::Token(&bob),
        Method::DELETE,
        &format!("/api/tokens/{adas_own}"),
        None,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a member cannot revoke an admin's token"
    );
    let bobs_own = bobs["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &app,
        Auth::Token(&ada),
        Method::DELETE,
        &format!("/api/tokens/{bobs_own}"),
        None,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "an admin revokes anyone's token"
    );
}

#[tokio::test]
async fn viewers_cannot_create_tokens_and_no_token_outranks_its_creator() {
    let (app, _, bob, vic) = setup().await;
    let (status, body) = call(
        &app,
        Auth::Token(&vic),
        Method::POST,
        "/api/tokens",
        None,
        Some(json!({ "name": "x" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = call(
        &app,
        Auth::Token(&bob),
        Method::POST,
        "/api/tokens",
        None,
        Some(json!({ "name": "x", "role": "admin" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("higher role")
    );
}

#[tokio::test]
async fn bad_token_requests_are_validation_errors() {
    let (app, _, bob, _) = setup().await;
    for (body, field) in [
        (json!({ "name": "" }), "name"),
        (
            json!({ "name": "x", "expires_in_days": 0 }),
            "expires_in_days",
        ),
        (json!({ "name": "x", "role": "god" }), "role"),
    ] {
        let (status, err) = call(
            &app,
            Auth::Token(&bob),
            Method::POST,
            "/api/tokens",
            None,
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(error_code(&err), "VALIDATION_FAILED");
        assert!(
            err["error"]["details"]["fields"][field].is_string(),
            "{err}"
        );
    }
    let (status, err) = call(
        &app,
        Auth::Token(&bob),
        Method::POST,
        "/api/tokens",
        None,
        Some(json!({ "name": "x", "scope": "all" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let (status, _) = call(
        &app,
        Auth::Token(&bob),
        Method::DELETE,
        "/api/tokens/not-a-token",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_demotion_applies_to_the_members_tokens_on_the_next_request() {
    let (app, ada, bob, _) = setup().await;
    let create = |token: String| {
        let app = &app;
        async move {
            call(
                app,
                Auth::Token(&token),
                Method::POST,
                "/api/tokens",
                None,
                Some(json!({ "name": "x" })),
            )
            .await
            .0
        }
    };
    assert_eq!(create(bob.clone()).await, StatusCode::CREATED);
    let (_, members) = call(
        &app,
        Auth::Token(&ada),
        Method::GET,
        "/api/members",
        None,
        None,
    )
    .await;
    let bob_id = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "bob@example.com")
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = call(
        &app,
        Auth::Token(&ada),
        Method::PATCH,
        &format!("/api/members/{bob_id}"),
        None,
        Some(json!({ "role": "viewer" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        create(bob).await,
        StatusCode::FORBIDDEN,
        "bob's token acts as a viewer now"
    );
}
