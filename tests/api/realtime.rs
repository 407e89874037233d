//! The WebSocket hub over real sockets: authentication and the tenant fixed at connect,
//! isolation under concurrent writes, topic filtering and authorisation, resuming, and the
//! ways the server closes a socket (revoked token, ended session, suspended tenant, slow
//! consumer, connection cap, shutdown).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{
    Auth, TestApp, add_user, api, call, sign_in, spawn_app, spawn_app_with_config,
    spawn_with_admin, tenant_with,
};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Long enough for anything that should arrive on loopback; only a failing test waits it out.
const WAIT: Duration = Duration::from_secs(10);

fn ws_url(app: &TestApp, query: &str) -> String {
    format!("{}/api/ws{query}", app.address.replacen("http", "ws", 1))
}

/// Opens a socket with `?token=` and reads its `hello`.
async fn connect_token(app: &TestApp, token: &str, query: &str) -> (Ws, Value) {
    let sep = if query.is_empty() { "?" } else { "&" };
    let url = ws_url(app, &format!("{query}{sep}token={token}"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connected");
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    (ws, hello)
}

/// The HTTP refusal of an upgrade: its status and error code.
async fn refused(
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
) -> (u16, String) {
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => panic!("the upgrade was accepted"),
        Err(WsError::Http(res)) => {
            let body: Value = res
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            (
                res.status().as_u16(),
                body["error"]["code"].as_str().unwrap_or("").to_owned(),
            )
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// The next text message as JSON (pings are answered by the client library).
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("a valid frame");
        match msg {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// The next event of `kind`, skipping others.
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let msg = next_json(ws).await;
        if msg["type"] == kind {
            return msg;
        }
    }
}

/// Reads until the server closes the socket; returns the close code.
async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) => return 1005,
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket failed before a close frame: {e}"),
            None => panic!("socket ended without a close frame"),
        }
    }
}

async fn create_agent(app: &TestApp, token: &str, name: &str) -> Value {
    let (status, body) = api(
        app,
        token,
        Method::POST,
        "/api/agents",
        Some(json!({ "name": name, "display_name": name, "level": "ic" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

#[tokio::test]
async fn a_socket_gets_its_tenants_events_numbered_in_order() {
    // Arrange
    let app = spawn_app().await;
    let token = tenant_with(&app, "acme", "member");
    let (mut ws, hello) = connect_token(&app, &token, "").await;
    let start = hello["data"]["seq"].as_u64().expect("seq");

    // Act
    create_agent(&app, &token, "writer").await;
    create_agent(&app, &token, "editor").await;

    // Assert
    let first = next_of(&mut ws, "agent.created").await;
    let second = next_of(&mut ws, "agent.created").await;
    assert_eq!(first["tenant"], "acme");
    assert_eq!(first["data"]["name"], "writer");
    assert!(first["at"].is_string());
    assert_eq!(first["seq"].as_u64(), Some(start + 1));
    assert_eq!(second["seq"].as_u64(), Some(start + 2));
}

#[tokio::test]
async fn connects_without_a_valid_credential_or_for_another_tenant_are_refused() {
    let app = spawn_app().await;
    let acme = tenant_with(&app, "acme", "member");
    tenant_with(&app, "globex", "member");

    let anonymous = ws_url(&app, "").into_client_request().unwrap();
    assert_eq!(refused(anonymous).await.0, 401);

    let forged = format!("ahq_{}", "0".repeat(64));
    let bad = ws_url(&app, &format!("?token={forged}"))
        .into_client_request()
        .unwrap();
    assert_eq!(refused(bad).await, (401, "UNAUTHENTICATED".into()));

    let mut elsewhere = ws_url(&app, &format!("?token={acme}"))
        .into_client_request()
        .unwrap();
    elsewhere
        .headers_mut()
        .insert("X-Tenant", HeaderValue::from_static("globex"));
    assert_eq!(refused(elsewhere).await, (403, "TENANT_MISMATCH".into()));

    // A signed-in user who is not a member of the tenant they name.
    add_user(&app, "outsider@example.com", Some(("globex", "member")));
    let browser = sign_in(&app, "outsider@example.com").await;
    let mut outsider = ws_url(&app, "").into_client_request().unwrap();
    outsider
        .headers_mut()
        .insert("Cookie", HeaderValue::from_str(&browser.cookie).unwrap());
    outsider
        .headers_mut()
        .insert("X-Tenant", HeaderValue::from_static("acme"));
    assert_eq!(refused(outsider).await, (403, "FORBIDDEN".into()));
}

#[tokio::test]
async fn a_session_cookie_works_from_the_servers_own_pages_only() {
    let app = spawn_app().await;
    tenant_with(&app, "acme", "member");
    let browser = sign_in(&app, "member@acme.test").await;
    let request = |origin: Option<&str>| {
        let mut r = ws_url(&app, "").into_client_request().unwrap();
        let h = r.headers_mut();
        h.insert("Cookie", HeaderValue::from_str(&browser.cookie).unwrap());
        h.insert("X-Tenant", HeaderValue::from_static("acme"));
        if let Some(o) = origin {
            h.insert("Origin", HeaderValue::from_str(o).unwrap());
        }
        r
    };

    assert_eq!(
        refused(request(Some("https://evil.example"))).await,
        (403, "FORBIDDEN".into())
    );
    let own = app.address.clone();
    let (mut ws, _) = tokio_tungstenite::connect_async(request(Some(&own)))
        .await
        .expect("own origin");
    assert_eq!(next_json(&mut ws).await["type"], "hello");
}

#[tokio::test]
async fn each_socket_sees_only_its_own_tenant_while_both_write_at_once() {
    // Arrange
    let app = spawn_app().await;
    let acme = tenant_with(&app, "acme", "member");
    let globex = tenant_with(&app, "globex", "member");
    let (mut ws_acme, _) = connect_token(&app, &acme, "").await;
    let (mut ws_globex, _) = connect_token(&app, &globex, "").await;
    const EACH: usize = 20;

    // Act: both tenants create agents concurrently.
    let writes = (0..EACH).flat_map(|i| {
        [
            (acme.clone(), format!("acme-{i}")),
            (globex.clone(), format!("globex-{i}")),
        ]
    });
    futures_util::future::join_all(writes.map(|(token, name)| {
        let app = &app;
        async move { create_agent(app, &token, &name).await }
    }))
    .await;

    // Assert: each socket gets its tenant's 20 creations, in order, and nothing else.
    for (ws, slug) in [(&mut ws_acme, "acme"), (&mut ws_globex, "globex")] {
        let mut last = 0;
        for _ in 0..EACH {
            let event = next_of(ws, "agent.created").await;
            assert_eq!(event["tenant"], slug, "{event}");
            let name = event["data"]["name"].as_str().unwrap();
            assert!(name.starts_with(slug), "{name} on {slug}'s socket");
            let seq = event["seq"].as_u64().unwrap();
            assert!(seq > last, "in order");
            last = seq;
        }
    }
    // Nothing more is pending for acme (a marker event from acme arrives next).
    create_agent(&app, &acme, "marker").await;
    let next = next_of(&mut ws_acme, "agent.created").await;
    assert_eq!(next["data"]["name"], "marker");
}

#[tokio::test]
async fn topic_bound_events_reach_only_subscribed_sockets_of_the_tenant() {
    // Arrange
    let app = spawn_app().await;
    let acme = tenant_with(&app, "acme", "viewer");
    let acme_member = tenant_with(&app, "acme", "member");
    let globex = tenant_with(&app, "globex", "member");
    let agent = create_agent(&app, &acme_member, "writer").await;
    let (status, task) = api(
        &app,
        &acme_member,
        Method::POST,
        "/api/tasks",
        Some(json!({ "prompt": "write", "assignee": "writer" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let task_id = task["id"].as_str().unwrap().to_owned();
    let (mut subscribed, _) = connect_token(&app, &acme, "").await;
    let (mut other, _) = connect_token(&app, &acme, "").await;
    let (mut outsider, _) = connect_token(&app, &globex, "").await;

    // Act: subscribe (the agent by name), and try topics that are not acme's or not topics.
    let ask = |topics: Value| {
        Message::Text(
            json!({ "op": "subscribe", "topics": topics })
                .to_string()
                .into(),
        )
    };
    subscribed
        .send(ask(json!([
            format!("task:{task_id}"),
            "agent:writer",
            "task:nope",
            "board:x"
        ])))
        .await
        .unwrap();
    let reply = next_of(&mut subscribed, "subscribed").await;
    outsider
        .send(ask(json!([format!("task:{task_id}")])))
        .await
        .unwrap();
    let outsider_reply = next_of(&mut outsider, "subscribed").await;

    // Assert: what was accepted and refused, and why.
    let agent_id = agent["id"].as_str().unwrap();
    assert_eq!(
        reply["data"]["topics"],
        json!([format!("agent:{agent_id}"), format!("task:{task_id}")])
    );
    let refused: Vec<&str> = reply["data"]["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["topic"].as_str().unwrap())
        .collect();
    assert_eq!(refused, vec!["board:x", "task:nope"]);
    assert_eq!(
        outsider_reply["data"]["topics"],
        json!([]),
        "another tenant's task is refused"
    );

    // A run step of the task goes to the subscribed socket only.
    let tenant = app.state.directory.get("acme").unwrap();
    app.state.events.publish_to(
        tenant.id,
        "acme",
        "run.event",
        json!({ "task_id": task_id, "kind": "text", "text": "hello" }),
        vec![agenthq::realtime::Topic::Task(task_id.clone())],
    );
    app.state.events.publish(
        tenant.id,
        "acme",
        "workspace.updated",
        json!({ "marker": true }),
    );
    let step = next_json(&mut subscribed).await;
    assert_eq!(step["type"], "run.event");
    assert_eq!(step["data"]["text"], "hello");
    let first_for_other = next_json(&mut other).await;
    assert_eq!(
        first_for_other["type"], "workspace.updated",
        "no run.event for the unsubscribed socket"
    );

    // Unsubscribing (by name) stops it.
    subscribed
        .send(Message::Text(
            json!({ "op": "unsubscribe", "topics": ["agent:writer", format!("task:{task_id}")] })
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let reply = next_of(&mut subscribed, "subscribed").await;
    assert_eq!(reply["data"]["topics"], json!([]));
}

#[tokio::test]
async fn bad_client_messages_get_an_error_and_the_socket_stays_open() {
    let app = spawn_app().await;
    let token = tenant_with(&app, "acme", "member");
    let (mut ws, _) = connect_token(&app, &token, "").await;
    for bad in [
        "not json",
        r#"{"op":"dance"}"#,
        r#"{"op":"subscribe"}"#,
        r#"{"op":"subscribe","topics":"task:x"}"#,
    ] {
        ws.send(Message::Text(bad.into())).await.unwrap();
        let reply = next_json(&mut ws).await;
        assert_eq!(reply["type"], "error", "{bad}: {reply}");
        assert_eq!(reply["data"]["code"], "VALIDATION_FAILED");
    }
    create_agent(&app, &token, "still-here").await;
    assert_eq!(
        next_of(&mut ws, "agent.created").await["data"]["name"],
        "still-here"
    );
}

#[tokio::test]
async fn a_reconnect_with_since_replays_exactly_what_was_missed() {
    // Arrange: a socket sees one event, then drops.
    let app = spawn_app().await;
    let token = tenant_with(&app, "acme", "member");
    let (mut ws, _) = connect_token(&app, &token, "").await;
    create_agent(&app, &token, "seen").await;
    let seen = next_of(&mut ws, "agent.created").await["seq"]
        .as_u64()
        .unwrap();
    drop(ws);

    // Act: two changes while disconnected, then reconnect from the last seen number.
    create_agent(&app, &token, "missed-1").await;
    create_agent(&app, &token, "missed-2").await;
    let (mut again, hello) = connect_token(&app, &token, &format!("?since={seen}")).await;
    create_agent(&app, &token, "live").await;

    // Assert: the two missed events, then the live one; no gap, no repeat.
    assert_eq!(hello["data"]["seq"].as_u64(), Some(seen + 2));
    let names: Vec<(u64, String)> = [
        next_of(&mut again, "agent.created").await,
        next_of(&mut again, "agent.created").await,
        next_of(&mut again, "agent.created").await,
    ]
    .iter()
    .map(|e| {
        (
            e["seq"].as_u64().unwrap(),
            e["data"]["name"].as_str().unwrap().to_owned(),
        )
    })
    .collect();
    assert_eq!(
        names,
        vec![
            (seen + 1, "missed-1".to_owned()),
            (seen + 2, "missed-2".to_owned()),
            (seen + 3, "live".to_owned())
        ]
    );

    // A number older than the ring (or from before a restart) asks for a refetch.
    let (mut old, _) = connect_token(&app, &token, "?since=1").await;
    let resync = next_json(&mut old).await;
    assert_eq!(resync["type"], "resync", "{resync}");
    assert_eq!(resync["data"]["seq"].as_u64(), Some(seen + 3));
}

#[tokio::test]
async fn revoking_the_token_or_ending_the_session_closes_its_sockets() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let member = tenant_with(&app, "acme", "member");
    let (mut by_token, _) = connect_token(&app, &member, "").await;
    let (mut unaffected, _) = connect_token(&app, &admin, "").await;
    let browser = sign_in(&app, "admin@acme.test").await;
    let mut request = ws_url(&app, "").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Cookie", HeaderValue::from_str(&browser.cookie).unwrap());
    request
        .headers_mut()
        .insert("X-Tenant", HeaderValue::from_static("acme"));
    let (mut by_session, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(next_json(&mut by_session).await["type"], "hello");

    // Revoke the member's token (by the admin).
    let (_, tokens) = api(&app, &admin, Method::GET, "/api/tokens", None).await;
    let id = tokens["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "test" && t["user_id"] != Value::Null && t["role"] == "member")
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .expect("the member's token");
    let (status, _) = api(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/tokens/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(close_code(&mut by_token).await, 4001);

    // Sign out.
    let (status, _) = call(
        &app,
        Auth::Browser(&browser),
        Method::POST,
        "/api/auth/logout",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(close_code(&mut by_session).await, 4001);

    // The other token's socket still works.
    create_agent(&app, &admin, "still").await;
    assert_eq!(
        next_of(&mut unaffected, "agent.created").await["data"]["name"],
        "still"
    );
}

#[tokio::test]
async fn suspending_a_tenant_closes_its_sockets_only() {
    let (app, root) = spawn_with_admin().await;
    let acme = tenant_with(&app, "acme", "member");
    let globex = tenant_with(&app, "globex", "member");
    let (mut ws_acme, _) = connect_token(&app, &acme, "").await;
    let (mut ws_globex, _) = connect_token(&app, &globex, "").await;

    let (status, body) = call(
        &app,
        Auth::Browser(&root),
        Method::POST,
        "/api/admin/tenants/acme/suspend",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    assert_eq!(close_code(&mut ws_acme).await, 4003);
    create_agent(&app, &globex, "fine").await;
    assert_eq!(
        next_of(&mut ws_globex, "agent.created").await["data"]["name"],
        "fine"
    );
}

#[tokio::test]
async fn the_connection_cap_refuses_cleanly_with_retry_after() {
    let app = spawn_app_with_config("[realtime]\nmax_connections = 2\n").await;
    let token = tenant_with(&app, "acme", "member");
    let (_a, _) = connect_token(&app, &token, "").await;
    let (b, _) = connect_token(&app, &token, "").await;
    let url = ws_url(&app, &format!("?token={token}"));
    match tokio_tungstenite::connect_async(url.clone()).await {
        Err(WsError::Http(res)) => {
            assert_eq!(res.status().as_u16(), 503);
            assert!(res.headers().contains_key("retry-after"));
        }
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    // A closed socket frees its place.
    drop(b);
    let freed = crate::helpers::eventually(WAIT, || async {
        tokio_tungstenite::connect_async(url.clone()).await.is_ok()
    })
    .await;
    assert!(freed.is_some(), "a place was freed");
}

#[tokio::test]
async fn a_slow_consumer_is_dropped_while_a_reading_one_keeps_up() {
    // Arrange: small queues; one socket reads, the other never does.
    let app = spawn_app_with_config("[realtime]\nqueue_events = 64\nsend_timeout_secs = 1\n").await;
    let token = tenant_with(&app, "acme", "member");
    let (mut reader, _) = connect_token(&app, &token, "").await;
    let (_stalled, _) = connect_token(&app, &token, "").await;
    let tenant = app.state.directory.get("acme").unwrap();
    let padding = "x".repeat(4096);

    // Act: publish in steps the reader keeps up with, until the stalled socket is dropped
    // (its buffers, several MB on loopback, fill first).
    let mut received = 0u64;
    let mut dropped = false;
    for _ in 0..2000 {
        for _ in 0..50 {
            app.state.events.publish(
                tenant.id,
                "acme",
                "workspace.updated",
                json!({ "padding": padding }),
            );
        }
        for _ in 0..50 {
            next_of(&mut reader, "workspace.updated").await;
            received += 1;
        }
        if app.state.hub.len() == 1 {
            dropped = true;
            break;
        }
    }

    // Assert
    assert!(dropped, "the stalled socket was closed as a slow consumer");
    let res = app.get("/metrics").await;
    let text = res.text().await.unwrap();
    assert!(text.contains("agenthq_ws_slow_consumers_total 1"), "{text}");
    app.state.events.publish(
        tenant.id,
        "acme",
        "workspace.updated",
        json!({ "last": true }),
    );
    assert_eq!(
        next_of(&mut reader, "workspace.updated").await["data"]["last"],
        true
    );
    assert!(received >= 50);
}

#[tokio::test]
async fn shutdown_closes_sockets_with_going_away() {
    let app = spawn_app().await;
    let token = tenant_with(&app, "acme", "member");
    let (mut ws, _) = connect_token(&app, &token, "").await;
    let stopping = tokio::spawn(app.stop());
    assert_eq!(close_code(&mut ws).await, u16::from(CloseCode::Away));
    stopping.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_platform_admin_publishes_test_events_to_the_named_tenants_only() {
    // Arrange
    let (app, root) = spawn_with_admin().await;
    let acme = tenant_with(&app, "acme", "owner");
    let globex = tenant_with(&app, "globex", "member");
    let (mut ws_acme, hello) = connect_token(&app, &acme, "").await;
    let (mut ws_globex, _) = connect_token(&app, &globex, "").await;
    let start = hello["data"]["seq"].as_u64().expect("seq");
    let publish = |body: Value| {
        call(
            &app,
            Auth::Browser(&root),
            Method::POST,
            "/api/admin/realtime/test-events",
            None,
            Some(body),
        )
    };

    // Act
    let (status, body) = publish(json!({ "events": [
        { "tenant": "acme", "data": { "n": 1 } },
        { "tenant": "acme", "data": { "n": 2 } },
    ]}))
    .await;

    // Assert
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["published"], 2);
    let first = next_of(&mut ws_acme, "realtime.test").await;
    let second = next_of(&mut ws_acme, "realtime.test").await;
    assert_eq!(
        (first["data"]["n"].as_u64(), first["seq"].as_u64()),
        (Some(1), Some(start + 1))
    );
    assert_eq!(
        (second["data"]["n"].as_u64(), second["seq"].as_u64()),
        (Some(2), Some(start + 2))
    );
    assert_eq!(first["tenant"], "acme");

    // A request naming an unknown tenant publishes nothing, not even its valid events.
    let (status, body) = publish(json!({ "events": [
        { "tenant": "globex", "data": "lost" },
        { "tenant": "nope", "data": "x" },
    ]}))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["details"]["fields"]["events[1].tenant"].is_string(),
        "{body}"
    );
    let (status, _) = publish(json!({ "events": [] })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let too_many: Vec<Value> = (0..1001).map(|_| json!({ "tenant": "acme" })).collect();
    let (status, _) = publish(json!({ "events": too_many })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Tenant owners are not platform admins.
    let (status, _) = api(
        &app,
        &acme,
        Method::POST,
        "/api/admin/realtime/test-events",
        Some(json!({ "events": [{ "tenant": "acme" }] })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // globex saw none of it: the next thing it gets is its own event.
    create_agent(&app, &globex, "marker").await;
    let next = next_json(&mut ws_globex).await;
    assert_eq!(next["type"], "agent.created", "{next}");
}
