//! The audit log: every mutation leaves an entry; the log is filterable, paged and append-only.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Auth, PASSWORD, TestApp, add_user, agenthq, call, create_user_cli, error_code, issue_token,
    json, sign_in, spawn_app, spawn_with_admin, stderr,
};

/// acme with ada (owner) and bob (member); ada's token.
async fn setup() -> (TestApp, String, agenthq::domain::Tenant) {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme");
    add_user(&app, "ada@example.com", Some(("acme", "owner")));
    add_user(&app, "bob@example.com", Some(("acme", "member")));
    add_user(&app, "cy@example.com", None);
    let ada = issue_token(&app, "acme", "ada@example.com");
    (app, ada, acme)
}

async fn audit(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let (status, body) = call(
        app,
        Auth::Token(token),
        Method::GET,
        &format!("/api/audit{query}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().expect("items").clone()
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn every_member_and_token_change_leaves_an_entry_with_who_and_from_where() {
    let (app, ada, _) = setup().await;
    let as_ada = |method: Method, path: &'static str, body: Option<Value>| {
        let app = &app;
        let ada = ada.clone();
        async move { call(app, Auth::Token(&ada), method, path, None, body).await }
    };
    let (status, added) = as_ada(
        Method::POST,
        "/api/members",
        Some(json!({"email": "cy@example.com", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let cy = added["user_id"].as_str().unwrap().to_owned();
    let path = format!("/api/members/{cy}");
    let (status, _) = call(
        &app,
        Auth::Token(&ada),
        Method::PATCH,
        &path,
        None,
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, Auth::Token(&ada), Method::DELETE, &path, None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, token) = as_ada(Method::POST, "/api/tokens", Some(json!({"name": "ci"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let token_id = token["id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &app,
        Auth::Token(&ada),
        Method::DELETE,
        &format!("/api/tokens/{token_id}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let entries = audit(&app, &ada, "").await;
    assert_eq!(
        actions(&entries),
        [
            "token.revoked",
            "token.created",
            "member.removed",
            "member.role_changed",
            "member.added"
        ],
        "newest first"
    );
    let revoked = &entries[0];
    assert_eq!(revoked["actor_type"], "token");
    assert_eq!(revoked["target_type"], "token");
    assert_eq!(revoked["target_id"], token_id.as_str());
    assert_eq!(revoked["ip"], "127.0.0.1");
    assert!(
        revoked["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(revoked["user_agent"].is_string() || revoked["user_agent"].is_null());
    assert!(revoked["created_at"].is_string());
    assert_eq!(
        entries[3]["details"],
        json!({"from": "viewer", "to": "member"})
    );
    assert_eq!(entries[4]["target_id"], cy.as_str());
    assert!(
        !entries
            .iter()
            .any(|e| e.to_string().contains(token["token"].as_str().unwrap())),
        "no secret in the log"
    );
}

#[tokio::test]
async fn an_entry_carries_the_request_id_and_user_agent_of_its_request() {
    let (app, ada, _) = setup().await;
    let res = app
        .client
        .post(format!("{}/api/tokens", app.address))
        .bearer_auth(&ada)
        .header("User-Agent", "audit-test/1.0")
        .header("X-Request-Id", "req-audit-42")
        .json(&json!({"name": "traced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let entry = &audit(&app, &ada, "?action=token.created").await[0];
    assert_eq!(entry["request_id"], "req-audit-42");
    assert_eq!(entry["user_agent"], "audit-test/1.0");
}

#[tokio::test]
async fn the_log_filters_and_pages_with_a_cursor() {
    let (app, ada, _) = setup().await;
    for i in 0..5 {
        let (status, _) = call(
            &app,
            Auth::Token(&ada),
            Method::POST,
            "/api/tokens",
            None,
            Some(json!({"name": format!("t{i}")})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (_, page1) = call(
        &app,
        Auth::Token(&ada),
        Method::GET,
        "/api/audit?action=token.created&limit=2",
        None,
        None,
    )
    .await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    let mut seen: Vec<String> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let mut cursor = page1["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let (status, page) = call(
            &app,
            Auth::Token(&ada),
            Method::GET,
            &format!("/api/audit?action=token.created&limit=2&cursor={c}"),
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned()),
        );
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 5, "every entry exactly once");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first");

    assert!(audit(&app, &ada, "?actor_type=agent").await.is_empty());
    assert_eq!(audit(&app, &ada, "?target_type=token").await.len(), 5);
    assert!(
        audit(&app, &ada, "?since=2999-01-01T00:00:00Z")
            .await
            .is_empty()
    );
    for bad in [
        "?limit=0",
        "?limit=101",
        "?since=yesterday",
        "?actor_type=root",
        "?cursor=zzz",
        "?colour=red",
    ] {
        let (status, body) = call(
            &app,
            Auth::Token(&ada),
            Method::GET,
            &format!("/api/audit{bad}"),
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(error_code(&body), "VALIDATION_FAILED", "{bad}");
    }
}

#[tokio::test]
async fn only_admins_read_the_log_and_no_route_changes_it() {
    let (app, ada, _) = setup().await;
    let bob = issue_token(&app, "acme", "bob@example.com");
    let (status, body) = call(
        &app,
        Auth::Token(&bob),
        Method::GET,
        "/api/audit",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    for method in [Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
        let (status, _) = call(
            &app,
            Auth::Token(&ada),
            method.clone(),
            "/api/audit",
            None,
            Some(json!({})),
        )
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
}

#[tokio::test]
async fn the_database_refuses_edits_and_deletions_of_entries() {
    let (app, ada, tenant) = setup().await;
    let (status, _) = call(
        &app,
        Auth::Token(&ada),
        Method::POST,
        "/api/tokens",
        None,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let conn = rusqlite::Connection::open(app.tenant_file(&tenant)).unwrap();
    let update = conn.execute("UPDATE audit_log SET action = 'nothing'", []);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = conn.execute("DELETE FROM audit_log", []);
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    sign_in(&app, "ada@example.com").await; // a platform entry
    let registry = rusqlite::Connection::open(app.data_path().join("registry.db")).unwrap();
    let update = registry.execute("UPDATE platform_audit_log SET actor_id = NULL", []);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = registry.execute("DELETE FROM platform_audit_log", []);
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

#[tokio::test]
async fn platform_actions_and_sign_ins_go_to_the_platform_log() {
    let (app, root) = spawn_with_admin().await;
    let admin = |method: Method, path: String, body: Option<Value>| {
        let (app, root) = (&app, &root);
        async move { call(app, Auth::Browser(root), method, &path, None, body).await }
    };
    let (status, _) = admin(
        Method::POST,
        "/api/admin/tenants".into(),
        Some(json!({"slug": "acme"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    for step in ["suspend", "resume"] {
        let (status, _) = admin(
            Method::POST,
            format!("/api/admin/tenants/acme/{step}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = admin(
        Method::DELETE,
        "/api/admin/tenants/acme?purge=true".into(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = admin(Method::GET, "/api/admin/audit".into(), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let entries = body["items"].as_array().unwrap();
    assert_eq!(
        actions(entries),
        [
            "tenant.purged",
            "tenant.resumed",
            "tenant.suspended",
            "tenant.created",
            "session.created"
        ]
    );
    assert!(entries.iter().all(|e| e["actor_type"] == "user"));

    let b = sign_in(&app, "root@example.com").await;
    let (status, _) = call(
        &app,
        Auth::Browser(&b),
        Method::POST,
        "/api/auth/logout",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = admin(Method::GET, "/api/admin/audit?limit=2".into(), None).await;
    assert_eq!(
        actions(body["items"].as_array().unwrap()),
        ["session.ended", "session.created"]
    );
    let res = app
        .client
        .get(format!("{}/api/admin/audit", app.address))
        .send()
        .await
        .unwrap();
    let (status, _) = json(res).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cli_commands_are_recorded_with_the_cli_as_actor() {
    let app = spawn_app().await;
    let data = app.data_path();
    for args in [
        &["tenant", "create", "acme"][..],
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
        &["tenant", "suspend", "acme"],
    ] {
        if args[0] == "user" {
            let out = create_user_cli(data, &["--email", "ada@example.com"], PASSWORD);
            assert!(out.status.success(), "{}", stderr(&out));
        }
        let out = agenthq(data, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let filter = agenthq::audit::AuditFilter {
        limit: 10,
        ..Default::default()
    };
    let platform = app.state.storage.registry.platform_audit(&filter).unwrap();
    let actions: Vec<&str> = platform.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["tenant.suspended", "user.created", "tenant.created"]
    );
    assert!(
        platform
            .iter()
            .all(|e| e.actor_type == agenthq::audit::ActorKind::System
                && e.actor_id.as_deref() == Some("cli"))
    );
    let acme = app
        .state
        .storage
        .registry
        .tenant_by_slug("acme")
        .unwrap()
        .unwrap();
    let store = app.state.storage.tenants.open(acme.id).unwrap();
    let tenant: Vec<String> = store
        .audit(&filter)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(tenant, ["token.created", "member.role_set"]);
}
