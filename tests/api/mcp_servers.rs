//! MCP server configurations over HTTP: CRUD, the SSRF guard, and pings against fake MCP
//! servers on loopback that speak the real wire formats.

mod fake_server;

use std::net::TcpListener;
use std::sync::atomic::Ordering;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use fake_server::start_fake;

use crate::helpers::{TestApp, api, error_code, spawn_app, spawn_app_with_config, tenant_with};

const PRIVATE_OK: &str = "[mcp]\nallow_private_networks = true\nping_timeout_ms = 3000\n";
/// A public address (TEST-NET ranges are blocked, so a real one): saved, never pinged here.
const PUBLIC_URI: &str = "https://93.184.216.34/mcp";

// ---------------------------------------------------------------------------------------------
// Helpers

async fn create(app: &TestApp, token: &str, name: &str, protocol: &str, uri: &str) -> Value {
    let (status, server) = api(
        app,
        token,
        Method::POST,
        "/api/mcp-servers",
        Some(json!({ "name": name, "protocol": protocol, "uri": uri })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{server}");
    server
}

async fn ping(app: &TestApp, token: &str, server: &Value) -> Value {
    let id = server["id"].as_str().expect("id");
    let (status, res) = api(
        app,
        token,
        Method::POST,
        &format!("/api/mcp-servers/{id}/ping"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    res
}

fn assert_refused_uri(status: StatusCode, body: &Value, uri: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
    assert_eq!(error_code(body), "VALIDATION_FAILED", "{uri}");
    assert!(
        body["error"]["details"]["fields"]["uri"].is_string(),
        "{uri}: {body}"
    );
}

// ---------------------------------------------------------------------------------------------
// CRUD and roles

#[tokio::test]
async fn an_admin_adds_lists_changes_and_removes_a_server() {
    // Arrange
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");

    // Act
    let server = create(&app, &admin, "files", "http", PUBLIC_URI).await;

    // Assert
    assert_eq!(server["status"], "disconnected");
    assert_eq!(server["tool_count"], 0);
    assert_eq!(server["consecutive_failures"], 0);
    assert_eq!(server["last_ping_at"], Value::Null);
    let id = server["id"].as_str().expect("id");
    let (_, list) = api(&app, &admin, Method::GET, "/api/mcp-servers", None).await;
    assert_eq!(list["items"], json!([server.clone()]));
    let (status, patched) = api(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/mcp-servers/{id}"),
        Some(json!({ "name": "Dateien ✓", "icon_name": "folder", "icon_color": "#aabbcc" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Dateien ✓");
    assert_eq!(patched["icon_color"], "#aabbcc");
    let (_, cleared) = api(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/mcp-servers/{id}"),
        Some(json!({ "icon_name": null })),
    )
    .await;
    assert_eq!(cleared["icon_name"], Value::Null);
    let (status, _) = api(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/mcp-servers/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api(
        &app,
        &admin,
        Method::GET,
        &format!("/api/mcp-servers/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_taken_name_is_a_409_and_unknown_ids_are_404s() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    create(&app, &admin, "files", "http", PUBLIC_URI).await;
    let other = create(&app, &admin, "search", "sse", "https://93.184.216.34/sse").await;

    let (status, res) = api(
        &app,
        &admin,
        Method::POST,
        "/api/mcp-servers",
        Some(json!({ "name": "files", "protocol": "http", "uri": PUBLIC_URI })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{res}");
    let (status, res) = api(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/mcp-servers/{}", other["id"].as_str().expect("id")),
        Some(json!({ "name": "files" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{res}");

    for (method, suffix) in [
        (Method::GET, ""),
        (Method::PATCH, ""),
        (Method::DELETE, ""),
        (Method::POST, "/ping"),
    ] {
        let body = (method == Method::PATCH).then(|| json!({ "name": "x" }));
        let (status, res) = api(
            &app,
            &admin,
            method,
            &format!("/api/mcp-servers/no-such-id{suffix}"),
            body,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{res}");
    }
}

#[tokio::test]
async fn a_member_reads_servers_but_cannot_change_or_ping_them() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let member = tenant_with(&app, "acme", "member");
    let server = create(&app, &admin, "files", "http", PUBLIC_URI).await;
    let id = server["id"].as_str().expect("id");

    let (status, read) = api(
        &app,
        &member,
        Method::GET,
        &format!("/api/mcp-servers/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, server);
    for (method, path, body) in [
        (
            Method::POST,
            "/api/mcp-servers".to_owned(),
            Some(json!({ "name": "x", "protocol": "http", "uri": PUBLIC_URI })),
        ),
        (
            Method::PATCH,
            format!("/api/mcp-servers/{id}"),
            Some(json!({ "name": "y" })),
        ),
        (Method::DELETE, format!("/api/mcp-servers/{id}"), None),
        (Method::POST, format!("/api/mcp-servers/{id}/ping"), None),
    ] {
        let (status, res) = api(&app, &member, method, &path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {res}");
    }
}

#[tokio::test]
async fn server_changes_are_audited_and_published() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let tenant = app.state.directory.get("acme").expect("tenant");
    let mut events = app.state.events.subscribe(tenant.id);

    let server = create(&app, &admin, "files", "http", PUBLIC_URI).await;
    let id = server["id"].as_str().expect("id");
    api(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/mcp-servers/{id}"),
        Some(json!({ "name": "f" })),
    )
    .await;
    api(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/mcp-servers/{id}"),
        None,
    )
    .await;

    let kinds: Vec<&str> = (0..3)
        .map(|_| events.try_recv().expect("event").kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "mcp_server.created",
            "mcp_server.updated",
            "mcp_server.deleted"
        ]
    );
    let (_, audit) = api(
        &app,
        &admin,
        Method::GET,
        "/api/audit?target_type=mcp_server",
        None,
    )
    .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        [
            "mcp_server.deleted",
            "mcp_server.updated",
            "mcp_server.created"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// The SSRF guard and stdio

#[tokio::test]
async fn uris_that_reach_internal_addresses_are_refused_at_create_and_at_patch() {
    // Many requests: more than the free plan's burst.
    let app =
        spawn_app_with_config("[rate_limits.free]\nrequests_per_minute = 6000\nburst = 1000\n")
            .await;
    let admin = tenant_with(&app, "acme", "admin");
    let server = create(&app, &admin, "files", "http", PUBLIC_URI).await;
    let id = server["id"].as_str().expect("id");

    for uri in [
        "http://127.0.0.1:8080/mcp",
        "http://localhost/mcp",
        "http://localhost./mcp",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://0/",
        "http://10.0.0.5/mcp",
        "http://172.16.3.4/mcp",
        "http://192.168.1.10/mcp",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://192.0.2.1/",
        "http://198.18.0.1/",
        "http://240.0.0.1/",
        "http://[::1]/mcp",
        "http://[::]/mcp",
        "http://[fd00::1]/mcp",
        "http://[fe80::1]/mcp",
        "http://[ff02::1]/mcp",
        "http://[::ffff:127.0.0.1]/mcp",
        "http://[::ffff:a9fe:a9fe]/mcp",
        "file:///etc/passwd",
        "ftp://93.184.216.34/",
        "gopher://93.184.216.34/",
        "not a url",
    ] {
        for protocol in ["http", "sse"] {
            let (status, res) = api(
                &app,
                &admin,
                Method::POST,
                "/api/mcp-servers",
                Some(json!({ "name": "evil", "protocol": protocol, "uri": uri })),
            )
            .await;
            assert_refused_uri(status, &res, uri);
        }
        let (status, res) = api(
            &app,
            &admin,
            Method::PATCH,
            &format!("/api/mcp-servers/{id}"),
            Some(json!({ "uri": uri })),
        )
        .await;
        assert_refused_uri(status, &res, uri);
    }
    let (_, list) = api(&app, &admin, Method::GET, "/api/mcp-servers", None).await;
    assert_eq!(
        list["items"],
        json!([server]),
        "nothing was saved or changed"
    );
}

#[tokio::test]
async fn stdio_servers_are_refused_unless_the_instance_allows_them() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let (status, res) = api(
        &app,
        &admin,
        Method::POST,
        "/api/mcp-servers",
        Some(json!({ "name": "fs", "protocol": "stdio", "uri": "npx -y @modelcontextprotocol/server-filesystem /tmp" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    assert!(
        res["error"]["details"]["fields"]["protocol"].is_string(),
        "{res}"
    );
    let server = create(&app, &admin, "web", "http", PUBLIC_URI).await;
    let (status, res) = api(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/mcp-servers/{}", server["id"].as_str().expect("id")),
        Some(json!({ "protocol": "stdio" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");

    let app = spawn_app_with_config("[mcp]\nallow_stdio = true\n").await;
    let admin = tenant_with(&app, "acme", "admin");
    let (status, res) = api(
        &app,
        &admin,
        Method::POST,
        "/api/mcp-servers",
        Some(json!({ "name": "piped", "protocol": "stdio", "uri": "server | tee log" })),
    )
    .await;
    assert_refused_uri(status, &res, "a shell pipeline");
    let server = create(&app, &admin, "fs", "stdio", "npx -y server-filesystem /tmp").await;
    assert_eq!(server["protocol"], "stdio");
}

/// A stdio MCP server as a shell script: one JSON-RPC message per line, as the transport says.
const STDIO_SERVER: &str = r#"
while IFS= read -r line; do
  case "$line" in
    *'"initialize"'*) echo '{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-03-26","capabilities":{"tools":{}},"serverInfo":{"name":"sh"}}}' ;;
    *'"tools/list"'*) echo '{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"a","inputSchema":{"type":"object"}},{"name":"b","inputSchema":{"type":"object"}}]}}' ;;
  esac
done
"#;

#[tokio::test]
async fn a_stdio_server_is_run_and_pinged_when_the_instance_allows_it() {
    let app = spawn_app_with_config("[mcp]\nallow_stdio = true\nping_timeout_ms = 5000\n").await;
    let admin = tenant_with(&app, "acme", "admin");
    let script = app.data_path().join("fake stdio server.sh");
    std::fs::write(&script, STDIO_SERVER).expect("script written");
    let server = create(
        &app,
        &admin,
        "script",
        "stdio",
        &format!("sh '{}'", script.display()),
    )
    .await;
    let missing = create(
        &app,
        &admin,
        "missing",
        "stdio",
        "/nonexistent/mcp-server --stdio",
    )
    .await;

    let pinged = ping(&app, &admin, &server).await;
    let failed = ping(&app, &admin, &missing).await;

    assert_eq!(pinged["status"], "connected", "{pinged}");
    assert_eq!(pinged["tool_count"], 2);
    assert_eq!(failed["status"], "error");
    assert!(
        failed["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot start the command")),
        "{failed}"
    );
}

// ---------------------------------------------------------------------------------------------
// Pings

#[tokio::test]
async fn a_ping_speaks_streamable_http_and_counts_the_tools_of_every_page() {
    // Arrange
    let (fake, base) = start_fake();
    let app = spawn_app_with_config(PRIVATE_OK).await;
    let admin = tenant_with(&app, "acme", "admin");
    let server = create(&app, &admin, "fake", "http", &format!("{base}/mcp")).await;

    // Act
    let pinged = ping(&app, &admin, &server).await;

    // Assert
    assert_eq!(pinged["status"], "connected", "{pinged}");
    assert_eq!(pinged["tool_count"], 3);
    assert_eq!(pinged["error_message"], Value::Null);
    assert!(pinged["last_ping_at"].is_string());
    assert!(
        fake.initialized.load(Ordering::SeqCst),
        "notifications/initialized sent"
    );
    assert_eq!(
        fake.sessions_closed.load(Ordering::SeqCst),
        1,
        "session ended"
    );
    let (_, read) = api(
        &app,
        &admin,
        Method::GET,
        &format!("/api/mcp-servers/{}", server["id"].as_str().expect("id")),
        None,
    )
    .await;
    assert_eq!(read, pinged, "recorded");
}

#[tokio::test]
async fn a_ping_to_a_host_name_connects_to_the_checked_addresses() {
    let (_fake, base) = start_fake();
    let app = spawn_app_with_config(PRIVATE_OK).await;
    let admin = tenant_with(&app, "acme", "admin");
    let uri = format!("{}/mcp", base.replace("127.0.0.1", "localhost"));
    let server = create(&app, &admin, "by-name", "http", &uri).await;

    let pinged = ping(&app, &admin, &server).await;

    assert_eq!(pinged["status"], "connected", "{pinged}");
}

#[tokio::test]
async fn redirects_are_not_followed_and_answers_are_read_up_to_a_cap() {
    let (_fake, base) = start_fake();
    let app =
        spawn_app_with_config("[mcp]\nallow_private_networks = true\nmax_response_bytes = 64\n")
            .await;
    let admin = tenant_with(&app, "acme", "admin");
    let redirect = create(
        &app,
        &admin,
        "redirect",
        "http",
        &format!("{base}/redirect"),
    )
    .await;
    let big = create(&app, &admin, "big", "http", &format!("{base}/mcp")).await;

    let redirected = ping(&app, &admin, &redirect).await;
    let capped = ping(&app, &admin, &big).await;

    assert!(
        redirected["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP 307")),
        "{redirected}"
    );
    assert!(
        capped["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("larger than 64 bytes")),
        "{capped}"
    );
}

#[tokio::test]
async fn a_ping_reads_replies_sent_as_event_streams() {
    let (_fake, base) = start_fake();
    let app = spawn_app_with_config(PRIVATE_OK).await;
    let admin = tenant_with(&app, "acme", "admin");
    let server = create(
        &app,
        &admin,
        "fake",
        "http",
        &format!("{base}/mcp-sse-replies"),
    )
    .await;

    let pinged = ping(&app, &admin, &server).await;

    assert_eq!(pinged["status"], "connected", "{pinged}");
    assert_eq!(pinged["tool_count"], 3);
}

#[tokio::test]
async fn a_ping_speaks_the_older_http_and_sse_transport() {
    let (_fake, base) = start_fake();
    let app = spawn_app_with_config(PRIVATE_OK).await;
    let admin = tenant_with(&app, "acme", "admin");
    let server = create(&app, &admin, "legacy", "sse", &format!("{base}/sse")).await;

    let pinged = ping(&app, &admin, &server).await;

    assert_eq!(pinged["status"], "connected", "{pinged}");
    assert_eq!(pinged["tool_count"], 3);
}

#[tokio::test]
async fn an_sse_endpoint_on_another_origin_is_not_followed() {
    let (_fake, base) = start_fake();
    let app = spawn_app_with_config(PRIVATE_OK).await;
    let admin = tenant_with(&app, "acme", "admin");
    let server = create(&app, &admin, "sly", "sse", &format!("{base}/sse-elsewhere")).await;

    let pinged = ping(&app, &admin, &server).await;

    assert_eq!(pinged["status"], "error");
    assert!(
        pinged["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("another origin")),
        "{pinged}"
    );
}

#[tokio::test]
async fn failed_pings_are_recorded_and_counted_until_a_success_resets_them() {
    let (fake, base) = start_fake();
    let app = spawn_app_with_config(PRIVATE_OK).await;
    let admin = tenant_with(&app, "acme", "admin");
    let tenant = app.state.directory.get("acme").expect("tenant");
    let server = create(&app, &admin, "flaky", "http", &format!("{base}/mcp")).await;
    fake.failing.store(true, Ordering::SeqCst);
    let mut events = app.state.events.subscribe(tenant.id);

    let first = ping(&app, &admin, &server).await;
    let second = ping(&app, &admin, &server).await;

    assert_eq!(first["status"], "error");
    assert!(
        first["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP 500")),
        "{first}"
    );
    assert_eq!(first["consecutive_failures"], 1);
    assert_eq!(second["consecutive_failures"], 2);
    assert_eq!(events.try_recv().expect("event").kind, "mcp_server.status");
    fake.failing.store(false, Ordering::SeqCst);
    let third = ping(&app, &admin, &server).await;
    assert_eq!(third["status"], "connected", "{third}");
    assert_eq!(third["consecutive_failures"], 0);
    assert_eq!(third["error_message"], Value::Null);
    assert_eq!(third["tool_count"], 3);
    let (_, audit) = api(
        &app,
        &admin,
        Method::GET,
        "/api/audit?action=mcp_server.pinged",
        None,
    )
    .await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(3), "{audit}");
}

#[tokio::test]
async fn a_ping_that_times_out_or_is_refused_is_recorded_as_an_error() {
    let (fake, base) = start_fake();
    fake.slow.store(true, Ordering::SeqCst);
    let app =
        spawn_app_with_config("[mcp]\nallow_private_networks = true\nping_timeout_ms = 300\n")
            .await;
    let admin = tenant_with(&app, "acme", "admin");
    let slow = create(&app, &admin, "slow", "http", &format!("{base}/mcp")).await;
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("port");
        listener.local_addr().expect("addr").port()
    };
    let gone = create(
        &app,
        &admin,
        "gone",
        "http",
        &format!("http://127.0.0.1:{closed_port}/mcp"),
    )
    .await;

    let timed_out = ping(&app, &admin, &slow).await;
    let refused = ping(&app, &admin, &gone).await;

    assert_eq!(timed_out["status"], "error");
    assert!(
        timed_out["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("300 ms")),
        "{timed_out}"
    );
    assert_eq!(refused["status"], "error");
    assert!(
        refused["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("connect")),
        "{refused}"
    );
}

#[tokio::test]
async fn a_ping_to_a_loopback_server_is_refused_by_the_guard_by_default() {
    // A server saved while its name resolved to a public address, now pointing at loopback
    // (DNS rebinding, or a row from before the guard): the ping checks again.
    let (fake, base) = start_fake();
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let server = create(&app, &admin, "rebound", "http", PUBLIC_URI).await;
    let id = server["id"].as_str().expect("id");
    let tenant = app.state.directory.get("acme").expect("tenant");
    let conn = rusqlite::Connection::open(app.tenant_file(&tenant)).expect("tenant db");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("busy timeout");
    conn.execute(
        "UPDATE mcp_servers SET uri = ?1 WHERE id = ?2",
        [format!("{base}/mcp"), id.to_owned()],
    )
    .expect("row changed");

    let pinged = ping(&app, &admin, &server).await;

    assert_eq!(pinged["status"], "error");
    assert!(
        pinged["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("SSRF")),
        "{pinged}"
    );
    assert_eq!(
        fake.requests.load(Ordering::SeqCst),
        0,
        "no request reached it"
    );
}
