//! LLM providers over HTTP: CRUD, roles, validation, the write-only key (never in a response,
//! a file of the data dir, the log, an event or the audit log), the test call, and master key
//! rotation under a running server.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, agenthq, api, error_code, json as read_json, spawn_app, stderr, stdout, tenant_with,
};

const KEY: &str = "sk-test-0123456789-SECRETKEYBYTES-abcd";
const OTHER_KEY: &str = "sk-test-second-key-NEVERSHOWN-wxyz";

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, provider) = api(app, token, Method::POST, "/api/providers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{provider}");
    provider
}

fn with_key(name: &str, base_url: &str) -> Value {
    json!({
        "kind": "openai", "name": name, "base_url": base_url, "api_key": KEY,
        "default_model": "gpt-test",
        "prices": {"gpt-test": {"input_per_mtok": 0.5, "output_per_mtok": 1.5}},
        "config": {"timeout_secs": 5, "max_retries": 0, "stream": false}
    })
}

/// A loopback URL where nothing listens.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/v1")
}

fn assert_no_key(value: &Value) {
    let text = value.to_string();
    for key in [KEY, OTHER_KEY] {
        assert!(!text.contains(key), "a key leaked: {text}");
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn assert_no_file_holds_a_key(files: &[PathBuf]) {
    for file in files {
        let bytes = std::fs::read(file).expect("file");
        for key in [KEY, OTHER_KEY, &KEY[KEY.len() - 20..]] {
            assert!(
                !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
                "{} holds a provider key in plaintext",
                file.display()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CRUD and roles

#[tokio::test]
async fn an_admin_adds_lists_changes_and_removes_a_provider() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");

    let created = create(&app, &admin, with_key("local", "http://127.0.0.1:11434/v1")).await;
    assert_eq!(created["kind"], "openai");
    assert_eq!(created["name"], "local");
    assert_eq!(created["api_key_set"], true);
    assert_eq!(created["api_key_last4"], "abcd");
    assert_eq!(created["prices"]["gpt-test"]["output_per_mtok"], 1.5);
    assert_eq!(created["config"]["timeout_secs"], 5);
    assert!(created.get("api_key").is_none());
    assert_no_key(&created);
    let id = created["id"].as_str().expect("id").to_owned();

    let (status, list) = api(&app, &admin, Method::GET, "/api/providers", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().expect("items").len(), 1);
    assert_eq!(list["next_cursor"], Value::Null);
    assert_no_key(&list);
    let (status, one) = api(
        &app,
        &admin,
        Method::GET,
        &format!("/api/providers/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, created);

    let (status, changed) = api(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/providers/{id}"),
        Some(json!({"api_key": "short-key", "name": "renamed", "default_model": null})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["name"], "renamed");
    assert_eq!(changed["api_key_set"], true);
    assert_eq!(
        changed["api_key_last4"],
        Value::Null,
        "short keys show nothing"
    );
    assert_eq!(changed["default_model"], Value::Null);
    assert_eq!(changed["base_url"], "http://127.0.0.1:11434/v1", "kept");

    let (status, cleared) = api(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/providers/{id}"),
        Some(json!({"api_key": null})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cleared["api_key_set"], false);
    assert_eq!(cleared["api_key_last4"], Value::Null);

    let (status, _) = api(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/providers/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api(
        &app,
        &admin,
        Method::GET,
        &format!("/api/providers/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn members_and_viewers_read_providers_but_cannot_change_or_test_them() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let provider = create(&app, &admin, with_key("p", "https://api.example.com/v1")).await;
    let id = provider["id"].as_str().expect("id");

    for role in ["member", "viewer"] {
        let token = tenant_with(&app, "acme", role);
        let (status, list) = api(&app, &token, Method::GET, "/api/providers", None).await;
        assert_eq!(status, StatusCode::OK, "{role}");
        assert_no_key(&list);
        for (method, path, body) in [
            (
                Method::POST,
                "/api/providers".to_owned(),
                Some(with_key("x", "https://a.example")),
            ),
            (
                Method::PATCH,
                format!("/api/providers/{id}"),
                Some(json!({"name": "y"})),
            ),
            (Method::DELETE, format!("/api/providers/{id}"), None),
            (Method::POST, format!("/api/providers/{id}/test"), None),
        ] {
            let (status, body) = api(&app, &token, method.clone(), &path, body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role} {method} {path}");
            assert_eq!(error_code(&body), "FORBIDDEN");
        }
    }
}

#[tokio::test]
async fn invalid_providers_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    create(&app, &admin, json!({"kind": "simulated", "name": "taken"})).await;

    for (body, field) in [
        (json!({"kind": "gemini", "name": "a"}), None),
        (
            json!({"kind": "openai", "name": "a", "base_url": "ftp://x.example"}),
            Some("base_url"),
        ),
        (
            json!({"kind": "openai", "name": "a", "base_url": "file:///etc/passwd"}),
            Some("base_url"),
        ),
        (
            json!({"kind": "openai", "name": "a",
                   "prices": {"m": {"input_per_mtok": -1, "output_per_mtok": 0}}}),
            Some("prices.m.input_per_mtok"),
        ),
        (
            json!({"kind": "openai", "name": "a", "config": {"colour": "red"}}),
            Some("config.colour"),
        ),
        (
            json!({"kind": "openai", "name": "a", "config": {"max_retries": 11}}),
            Some("config.max_retries"),
        ),
        (json!({"kind": "openai", "name": ""}), Some("name")),
        (
            json!({"kind": "openai", "name": "a", "api_key": ""}),
            Some("api_key"),
        ),
        (
            json!({"kind": "openai", "name": "a", "api_key_set": true}),
            None,
        ),
    ] {
        let (status, res) = api(
            &app,
            &admin,
            Method::POST,
            "/api/providers",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {res}");
        assert_eq!(error_code(&res), "VALIDATION_FAILED", "{body}");
        if let Some(field) = field {
            assert!(
                res["error"]["details"]["fields"].get(field).is_some(),
                "{body} should name {field}: {res}"
            );
        }
    }
    let (status, res) = api(
        &app,
        &admin,
        Method::POST,
        "/api/providers",
        Some(json!({"kind": "openai", "name": "taken"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&res), "CONFLICT");
}

#[tokio::test]
async fn changes_are_audited_and_published_without_the_key() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let tenant = app.state.directory.get("acme").expect("tenant");
    let mut events = app.state.events.subscribe(tenant.id);

    let provider = create(&app, &admin, with_key("p", "https://api.example.com/v1")).await;
    let id = provider["id"].as_str().expect("id");
    api(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/providers/{id}"),
        Some(json!({"api_key": OTHER_KEY, "config": {"stream": true}})),
    )
    .await;
    api(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/providers/{id}"),
        None,
    )
    .await;

    let events: Vec<_> = (0..3).map(|_| events.try_recv().expect("event")).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        ["provider.created", "provider.updated", "provider.deleted"]
    );
    for e in &events {
        assert!(
            !e.text.contains(KEY) && !e.text.contains(OTHER_KEY),
            "{}",
            e.text
        );
    }
    let (_, audit) = api(
        &app,
        &admin,
        Method::GET,
        "/api/audit?target_type=provider",
        None,
    )
    .await;
    assert_no_key(&audit);
    let items = audit["items"].as_array().expect("entries");
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        ["provider.deleted", "provider.updated", "provider.created"]
    );
    assert_eq!(items[1]["details"]["fields"], json!(["api_key", "config"]));
}

#[tokio::test]
async fn deleting_a_provider_clears_the_workspace_default() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let provider = create(&app, &admin, json!({"kind": "simulated", "name": "sim"})).await;
    let id = provider["id"].as_str().expect("id");
    let (status, ws) = api(
        &app,
        &admin,
        Method::PATCH,
        "/api/workspace",
        Some(json!({"default_provider_id": id})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ws}");
    api(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/providers/{id}"),
        None,
    )
    .await;
    let (_, ws) = api(&app, &admin, Method::GET, "/api/workspace", None).await;
    assert_eq!(ws["default_provider_id"], Value::Null);
}

// ---------------------------------------------------------------------------------------------
// The test call

async fn test_call(app: &TestApp, token: &str, id: &str) -> (StatusCode, Value) {
    api(
        app,
        token,
        Method::POST,
        &format!("/api/providers/{id}/test"),
        None,
    )
    .await
}

#[tokio::test]
async fn a_provider_that_cannot_answer_is_a_200_with_ok_false() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let provider = create(&app, &admin, with_key("down", &closed_port_url())).await;
    let id = provider["id"].as_str().expect("id");

    let (status, res) = test_call(&app, &admin, id).await;

    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["ok"], false);
    assert!(res["error"]["kind"].is_string(), "{res}");
    assert!(res["error"]["message"].is_string(), "{res}");
    assert_no_key(&res);
    let (status, _) = test_call(&app, &admin, "no-such-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_test_against_a_closed_port_reports_a_transport_error() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let provider = create(&app, &admin, with_key("down", &closed_port_url())).await;
    let (status, res) = test_call(&app, &admin, provider["id"].as_str().expect("id")).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["kind"], "transport", "{res}");
    assert_no_key(&res);
}

// ---------------------------------------------------------------------------------------------
// Keys at rest and master key rotation

#[tokio::test]
async fn the_key_opens_for_the_runtime_and_across_a_rotation_while_the_server_runs() {
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let tenant = app.state.directory.get("acme").expect("tenant");
    let provider = create(&app, &admin, with_key("p", &closed_port_url())).await;
    let id = provider["id"].as_str().expect("id").to_owned();
    let old_id = app.state.secrets.primary_master_key().key_id();
    assert_eq!(decrypted_key(&app, &id).await, KEY);

    let out = agenthq(app.data_path(), &["keys", "rotate"]);

    assert!(out.status.success(), "{}", stderr(&out));
    let summary = stdout(&out);
    assert_eq!(summary.trim_end().lines().count(), 1, "{summary}");
    assert!(
        summary.contains("re-wrapped 1 tenant data keys"),
        "{summary}"
    );
    let new_id = summary
        .split("new master key ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .expect("the new key id is named");
    assert_ne!(new_id, old_id);
    assert!(
        app.data_path()
            .join(format!("master.key.retired-{old_id}"))
            .exists()
    );
    assert!(!app.data_path().join("master.key.next").exists());
    // Cached data key: still works. Uncached: the row names a key id the server does not
    // know, so it reloads master.key and carries on.
    assert_eq!(decrypted_key(&app, &id).await, KEY);
    app.state.secrets.forget(tenant.id);
    assert_eq!(decrypted_key(&app, &id).await, KEY);
    let (status, res) = test_call(&app, &admin, &id).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a decryption failure would be a 500: {res}"
    );
}

async fn decrypted_key(app: &TestApp, id: &str) -> String {
    let tenant = app.state.directory.get("acme").expect("tenant");
    let store = app.state.storage.tenants.open(tenant.id).expect("store");
    let scope = agenthq::services::Scope {
        tenant: tenant.id,
        slug: "acme".into(),
        store,
        events: app.state.events.clone(),
        actor: agenthq::audit::Actor::cli(),
        origin: agenthq::audit::Origin::default(),
        runs: std::sync::Arc::new(agenthq::services::NoRuntime),
        write_intent: None,
    };
    let keys = app.state.secrets.clone();
    let id = id.to_owned();
    tokio::task::spawn_blocking(move || {
        let access = agenthq::services::providers::access(&scope, &keys, &id).expect("access");
        access.api_key.expect("key").to_string()
    })
    .await
    .expect("task")
}

#[tokio::test]
async fn rotation_with_an_environment_key_needs_the_new_key_on_stdin() {
    let dir = tempfile::tempdir().expect("dir");
    let out = crate::helpers::agenthq_with_env(
        dir.path(),
        &["keys", "rotate"],
        &[(
            "AGENTHQ_MASTER_KEY",
            "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
        )],
    );
    crate::helpers::assert_fails_with(&out, "--new-key-stdin");
    assert!(!dir.path().join("master.key").exists());
}

/// The real binary with debug logs: the key is in no file of the data dir (WAL files
/// included, before and after a checkpoint) and nowhere in the log; after `keys rotate` and a
/// restart it still opens.
#[tokio::test]
async fn the_key_is_in_no_file_and_no_log_line_and_survives_a_rotation() {
    let data = tempfile::tempdir().expect("dir");
    let dir = data.path().join("data");
    assert!(
        agenthq(&dir, &["tenant", "create", "acme"])
            .status
            .success()
    );
    let out = crate::helpers::create_user_cli(
        &dir,
        &["--email", "a@acme.test"],
        crate::helpers::PASSWORD,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = agenthq(
        &dir,
        &[
            "user",
            "add",
            "--tenant",
            "acme",
            "--email",
            "a@acme.test",
            "--role",
            "admin",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = agenthq(
        &dir,
        &[
            "token",
            "create",
            "--tenant",
            "acme",
            "--email",
            "a@acme.test",
            "--name",
            "t",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();

    let log_path = data.path().join("server.log");
    let (mut server, base) = serve(&dir, &log_path);
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let call = |method: Method, path: &str, body: Option<Value>| {
        let mut req = client
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move { read_json(req.send().await.expect("sent")).await }
    };
    let (status, provider) = call(
        Method::POST,
        "/api/providers",
        Some(with_key("p", &closed_port_url())),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{provider}");
    let id = provider["id"].as_str().expect("id").to_owned();
    let (status, res) = call(Method::POST, &format!("/api/providers/{id}/test"), None).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let (status, _) = call(
        Method::PATCH,
        &format!("/api/providers/{id}"),
        Some(json!({"api_key": OTHER_KEY})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, res) = call(
        Method::POST,
        "/api/providers",
        Some(json!({"kind": "openai", "name": "bad", "api_key": format!("{KEY}\u{1}")})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_no_key(&res);

    // While running: WAL files hold the latest writes.
    assert_no_file_holds_a_key(&files_under(&dir));
    stop(&mut server);
    assert_no_file_holds_a_key(&files_under(&dir));
    let log = std::fs::read(&log_path).expect("log");
    assert!(log.len() > 1000, "the debug log has content");
    assert_no_file_holds_a_key(std::slice::from_ref(&log_path));

    let out = agenthq(&dir, &["keys", "rotate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(files_under(&dir).iter().any(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("master.key.retired-"))
    }));
    let (mut server, base2) = serve(&dir, &data.path().join("server2.log"));
    let res = client
        .post(format!("{base2}/api/providers/{id}/test"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    let (status, res) = read_json(res).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the key still decrypts after rotation: {res}"
    );
    stop(&mut server);
}

fn serve(dir: &Path, log_path: &Path) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_agenthq"))
        .args([
            "serve",
            "--log-format",
            "json",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("AGENTHQ_DATA_DIR", dir)
        .env("AGENTHQ_LOG", "debug")
        .env_remove("AGENTHQ_MASTER_KEY")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log_path).expect("log file"))
        .spawn()
        .expect("server starts");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, base)
}

fn stop(child: &mut std::process::Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
    assert!(child.wait().expect("wait").success());
}
