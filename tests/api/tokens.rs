//! API tokens: issued by the CLI, bound to a tenant, revocable, expiring.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{
    PASSWORD, TestApp, agenthq, assert_fails_with, create_user_cli, error_code, eventually, json,
    spawn_app, stderr, stdout,
};

fn create_user(data: &std::path::Path, email: &str) {
    let out = create_user_cli(data, &["--email", email], PASSWORD);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A server with tenants acme and globex and ada, admin of acme; returns a token of ada's.
async fn setup() -> (TestApp, String) {
    let app = spawn_app().await;
    app.create_tenant("acme");
    app.create_tenant("globex");
    create_user(app.data_path(), "ada@example.com");
    let out = agenthq(
        app.data_path(),
        &[
            "user",
            "add",
            "--tenant",
            "acme",
            "--email",
            "ada@example.com",
            "--role",
            "admin",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = agenthq(
        app.data_path(),
        &[
            "token",
            "create",
            "--tenant",
            "acme",
            "--email",
            "ada@example.com",
            "--name",
            "ci",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out);
    assert_eq!(token.lines().count(), 1, "the token alone on stdout");
    (app, token.trim().to_owned())
}

async fn get_tenant_with(
    app: &TestApp,
    token: &str,
    x_tenant: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut req = app
        .client
        .get(format!("{}/api/tenant", app.address))
        .bearer_auth(token);
    if let Some(slug) = x_tenant {
        req = req.header("X-Tenant", slug);
    }
    json(req.send().await.unwrap()).await
}

#[tokio::test]
async fn a_token_resolves_its_own_tenant_without_a_header() {
    let (app, token) = setup().await;
    assert!(token.starts_with("ahq_"));
    let (status, body) = get_tenant_with(&app, &token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["slug"], "acme");
    let (status, _) = get_tenant_with(&app, &token, Some("acme")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_with_another_tenants_header_is_a_mismatch() {
    let (app, token) = setup().await;
    let (status, body) = get_tenant_with(&app, &token, Some("globex")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "TENANT_MISMATCH");
    assert!(
        !body.to_string().contains("globex org"),
        "no foreign data: {body}"
    );
}

#[tokio::test]
async fn unknown_revoked_and_expired_tokens_are_refused() {
    let (app, token) = setup().await;
    let forged = format!("ahq_{}", "0".repeat(64));
    let (status, body) = get_tenant_with(&app, &forged, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(
        get_tenant_with(&app, "ahq_short", None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Changes made outside the server (here: plain SQL, as another process would) reach its
    // token cache within the registry poll interval.
    let conn = rusqlite::Connection::open(app.data_path().join("registry.db")).unwrap();
    let status_within_a_second = |expected: StatusCode| {
        let (app, token) = (&app, &token);
        async move {
            eventually(Duration::from_secs(1), || async {
                get_tenant_with(app, token, None).await.0 == expected
            })
            .await
            .is_some()
        }
    };
    assert_eq!(get_tenant_with(&app, &token, None).await.0, StatusCode::OK);
    conn.execute(
        "UPDATE api_tokens SET expires_at = '2000-01-01T00:00:00.000Z'",
        [],
    )
    .unwrap();
    assert!(
        status_within_a_second(StatusCode::UNAUTHORIZED).await,
        "expired"
    );
    conn.execute("UPDATE api_tokens SET expires_at = NULL", [])
        .unwrap();
    assert!(status_within_a_second(StatusCode::OK).await);
    conn.execute(
        "UPDATE api_tokens SET revoked_at = '2026-01-01T00:00:00.000Z'",
        [],
    )
    .unwrap();
    assert!(
        status_within_a_second(StatusCode::UNAUTHORIZED).await,
        "revoked"
    );
}

#[tokio::test]
async fn a_token_stops_working_when_its_creator_leaves_the_tenant() {
    let (app, token) = setup().await;
    assert_eq!(get_tenant_with(&app, &token, None).await.0, StatusCode::OK);
    let conn = rusqlite::Connection::open(app.data_path().join("registry.db")).unwrap();
    conn.execute("DELETE FROM memberships", []).unwrap();
    let refused = eventually(Duration::from_secs(1), || async {
        get_tenant_with(&app, &token, None).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused.is_some(), "within the registry poll interval");
}

#[tokio::test]
async fn tokens_are_stored_only_as_hashes_and_record_their_last_use() {
    let (app, token) = setup().await;
    assert_eq!(get_tenant_with(&app, &token, None).await.0, StatusCode::OK);
    let conn = rusqlite::Connection::open(app.data_path().join("registry.db")).unwrap();
    let used: Option<String> = conn
        .query_row("SELECT last_used_at FROM api_tokens", [], |r| r.get(0))
        .unwrap();
    assert!(used.is_some());
    drop(conn);
    let data = app.data_dir.clone();
    app.stop().await.unwrap();
    let registry = std::fs::read(data.path().join("registry.db")).unwrap();
    assert!(!registry.windows(token.len()).any(|w| w == token.as_bytes()));
}

#[test]
fn a_token_cannot_outrank_its_creator_or_be_issued_to_a_non_member() {
    let data = tempfile::tempdir().unwrap();
    assert!(
        agenthq(data.path(), &["tenant", "create", "acme"])
            .status
            .success()
    );
    create_user(data.path(), "ada@example.com");
    let create = |role: Option<&str>| {
        let mut args = vec![
            "token",
            "create",
            "--tenant",
            "acme",
            "--email",
            "ada@example.com",
            "--name",
            "x",
        ];
        if let Some(r) = role {
            args.extend(["--role", r]);
        }
        agenthq(data.path(), &args)
    };
    assert_fails_with(&create(None), "not a member");
    assert!(
        agenthq(
            data.path(),
            &[
                "user",
                "add",
                "--tenant",
                "acme",
                "--email",
                "ada@example.com",
                "--role",
                "member"
            ],
        )
        .status
        .success()
    );
    assert_fails_with(&create(Some("owner")), "higher role");
    assert!(create(Some("viewer")).status.success());
    assert!(create(None).status.success());
}
