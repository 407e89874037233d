//! The isolation suite: every tenant route of the route table the server is built from (so a
//! route added later is walked too), attacked from another tenant, with that tenant's ids, and
//! without credentials. Every answer must be a refusal that carries no data of the victim, and
//! the victim's data must be unchanged afterwards.

use agenthq::api::{Access, endpoints};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Auth, TestApp, add_user, call, issue_token, sign_in, spawn_app_with_config};

/// The victim tenant and what an attacker must never see of it.
struct Victim {
    token: String,
    /// Ids of the victim's things that the attacker puts into paths.
    ids: Vec<String>,
    /// Strings only the victim's data contains.
    secrets: Vec<String>,
}

/// A server whose free plan allows the thousands of requests this suite makes.
async fn spawn_unlimited() -> TestApp {
    spawn_app_with_config("[rate_limits.free]\nrequests_per_minute = 1000000\nburst = 1000000\n")
        .await
}

/// A request as the victim that must succeed; its body.
async fn victim_call(app: &TestApp, token: &str, method: Method, path: &str, body: Value) -> Value {
    let (status, res) = call(app, Auth::Token(token), method, path, None, Some(body)).await;
    assert!(status.is_success(), "{path}: {status} {res}");
    res
}

/// globex (the victim): bea (owner), gus (member), a named token, an org of agents, a task,
/// a chat thread, a board item, and some audit history.
async fn victim(app: &TestApp) -> Victim {
    let globex = app.create_tenant("globex");
    add_user(app, "bea@globex.test", Some(("globex", "owner")));
    add_user(app, "gus@globex.test", Some(("globex", "member")));
    let token = issue_token(app, "globex", "bea@globex.test");
    let (status, created) = call(
        app,
        Auth::Token(&token),
        Method::POST,
        "/api/tokens",
        None,
        Some(json!({ "name": "globex-deploy-key" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (_, members) = call(
        app,
        Auth::Token(&token),
        Method::GET,
        "/api/members",
        None,
        None,
    )
    .await;
    let mut ids: Vec<String> = members["items"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["user_id"].as_str().expect("id").to_owned())
        .collect();
    ids.push(created["id"].as_str().expect("token id").to_owned());
    ids.push(globex.id.to_string());
    let agent = victim_call(
        app,
        &token,
        Method::POST,
        "/api/agents",
        json!({ "name": "globex-strategist", "display_name": "Globex Secret Strategist" }),
    )
    .await;
    let task = victim_call(
        app,
        &token,
        Method::POST,
        "/api/tasks",
        json!({ "prompt": "globex secret merger plan", "assignee": "globex-strategist" }),
    )
    .await;
    let message = victim_call(
        app,
        &token,
        Method::POST,
        "/api/messages",
        json!({ "to": "globex-strategist", "body": "globex secret chat" }),
    )
    .await;
    let board_item = victim_call(
        app,
        &token,
        Method::POST,
        "/api/board-items",
        json!({ "type": "finding", "content": "globex secret finding" }),
    )
    .await;
    // A public address literal: saving it resolves nothing and calls nothing.
    let mcp_server = victim_call(
        app,
        &token,
        Method::POST,
        "/api/mcp-servers",
        json!({ "name": "globex-secret-tools", "protocol": "http", "uri": "http://93.184.216.34/mcp" }),
    )
    .await;
    let hooks = victim_call(
        app,
        &token,
        Method::POST,
        "/api/events",
        json!({ "hook_event_name": "PreToolUse", "session_id": "globex-secret-session" }),
    )
    .await;
    ids.push(hooks["ids"][0].as_str().expect("hook event id").to_owned());
    for (thing, field) in [
        (&agent, "id"),
        (&task, "id"),
        (&message, "id"),
        (&message, "thread_id"),
        (&board_item, "id"),
        (&mcp_server, "id"),
    ] {
        ids.push(thing[field].as_str().expect("an id").to_owned());
    }
    Victim {
        token,
        ids,
        secrets: vec![
            "globex org".into(),
            "bea@globex.test".into(),
            "gus@globex.test".into(),
            "globex-deploy-key".into(),
            globex.id.to_string(),
            created["token"].as_str().expect("secret").to_owned(),
            "globex-strategist".into(),
            "Globex Secret Strategist".into(),
            "globex secret merger plan".into(),
            "globex secret chat".into(),
            "globex secret finding".into(),
            "globex-secret-tools".into(),
            "globex-secret-session".into(),
        ],
    }
}

/// Every concrete path for a template: each `{param}` replaced by each of `ids` in turn
/// (the template itself when it has no parameter).
fn paths(template: &str, ids: &[String]) -> Vec<String> {
    if !template.contains('{') {
        return vec![template.to_owned()];
    }
    ids.iter()
        .map(|id| {
            template
                .split('/')
                .map(|seg| {
                    if seg.starts_with('{') {
                        id.as_str()
                    } else {
                        seg
                    }
                })
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect()
}

fn assert_no_foreign_data(victim: &Victim, what: &str, body: &Value) {
    let text = body.to_string();
    for secret in &victim.secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{what} leaked {secret:?}: {text}"
        );
    }
}

#[tokio::test]
async fn no_tenant_route_lets_another_tenant_in() {
    let app = spawn_unlimited().await;
    let victim = victim(&app).await;
    app.create_tenant("acme");
    add_user(&app, "ada@acme.test", Some(("acme", "owner")));
    let attacker = issue_token(&app, "acme", "ada@acme.test");
    let browser = sign_in(&app, "ada@acme.test").await;

    let tenant_routes: Vec<_> = endpoints()
        .into_iter()
        .filter(|e| e.access == Access::Tenant)
        .collect();
    assert!(
        tenant_routes.len() >= 8,
        "the table lists the tenant routes"
    );
    let mut requests = 0;
    for e in &tenant_routes {
        let method = Method::from_bytes(e.method.as_str().as_bytes()).expect("method");
        let body = (method != Method::GET).then(|| json!({}));
        for path in paths(e.path, &victim.ids) {
            let what = |how: &str| format!("{} {path} ({how})", e.method);

            // 1. The attacker's token, naming the victim's tenant.
            let (status, res) = call(
                &app,
                Auth::Token(&attacker),
                method.clone(),
                &path,
                Some("globex"),
                body.clone(),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{}: {res}",
                what("token + X-Tenant")
            );
            assert_no_foreign_data(&victim, &what("token + X-Tenant"), &res);

            // 2. The attacker's session (a member of acme only), naming the victim's tenant.
            let (status, res) = call(
                &app,
                Auth::Browser(&browser),
                method.clone(),
                &path,
                Some("globex"),
                body.clone(),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{}: {res}",
                what("session + X-Tenant")
            );
            assert_no_foreign_data(&victim, &what("session + X-Tenant"), &res);

            // 3. No credentials at all.
            let res = app
                .client
                .request(method.clone(), format!("{}{path}", app.address))
                .header("X-Tenant", "globex")
                .send()
                .await
                .expect("request sent");
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "{}",
                what("anonymous")
            );

            // 4. Inside the attacker's own tenant, with the victim's ids: a refusal or a
            //    not-found when the path names a foreign id, and never any foreign data.
            let (status, res) = call(
                &app,
                Auth::Token(&attacker),
                method.clone(),
                &path,
                None,
                body.clone(),
            )
            .await;
            if e.path.contains('{') {
                assert!(
                    matches!(
                        status,
                        StatusCode::NOT_FOUND | StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST
                    ),
                    "{}: {status} {res}",
                    what("foreign id")
                );
            }
            assert_no_foreign_data(&victim, &what("own tenant"), &res);
            requests += 4;
        }
    }
    assert!(requests > 0);

    // Nothing the attacker did changed the victim's data.
    let (status, members) = call(
        &app,
        Auth::Token(&victim.token),
        Method::GET,
        "/api/members",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the victim's token still works");
    assert_eq!(
        members["items"].as_array().map(Vec::len),
        Some(2),
        "{members}"
    );
    let (_, tokens) = call(
        &app,
        Auth::Token(&victim.token),
        Method::GET,
        "/api/tokens",
        None,
        None,
    )
    .await;
    assert!(
        tokens["items"]
            .as_array()
            .expect("tokens")
            .iter()
            .all(|t| t["revoked_at"].is_null()),
        "{tokens}"
    );
    let (_, agent) = call(
        &app,
        Auth::Token(&victim.token),
        Method::GET,
        "/api/agents/globex-strategist",
        None,
        None,
    )
    .await;
    assert_eq!(agent["display_name"], "Globex Secret Strategist", "{agent}");
    let (_, tasks) = call(
        &app,
        Auth::Token(&victim.token),
        Method::GET,
        "/api/tasks",
        None,
        None,
    )
    .await;
    let prompts: Vec<&str> = tasks["items"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["prompt"].as_str())
        .collect();
    assert!(prompts.contains(&"globex secret merger plan"), "{tasks}");
}

#[tokio::test]
async fn no_platform_route_lets_a_tenant_member_in() {
    let app = spawn_unlimited().await;
    let victim = victim(&app).await;
    let browser = sign_in(&app, "bea@globex.test").await;
    for e in endpoints()
        .iter()
        .filter(|e| e.access == Access::PlatformAdmin)
    {
        let method = Method::from_bytes(e.method.as_str().as_bytes()).expect("method");
        let body = (method != Method::GET).then(|| json!({}));
        let path = e.path.replace("{slug}", "globex");
        for auth in [Auth::Token(&victim.token), Auth::Browser(&browser)] {
            let (status, res) = call(&app, auth, method.clone(), &path, None, body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{} {path}: {res}", e.method);
        }
    }
}
