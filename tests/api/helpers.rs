use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use agenthq::config::{Overrides, Settings};
use agenthq::domain::{Plan, Tenant, TenantSlug};
use agenthq::startup::{AppState, Application};
use agenthq::tenancy::NewTenant;
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: web::Data<AppState>,
    pub data_dir: Arc<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Settings for a test server: loopback, port 0, one worker, the given data dir.
pub fn test_settings(data_dir: &Path) -> Overrides {
    Overrides {
        data_dir: Some(data_dir.to_owned()),
        listen: Some("127.0.0.1:0".into()),
        workers: Some(1),
        ..Overrides::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the real server; `tweak` adjusts the settings first.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Overrides)) -> TestApp {
    let data_dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    spawn_app_in(data_dir, tweak).await
}

pub async fn spawn_app_in(data_dir: Arc<TempDir>, tweak: impl FnOnce(&mut Overrides)) -> TestApp {
    let mut overrides = test_settings(data_dir.path());
    tweak(&mut overrides);
    let settings = Settings::load(overrides).expect("valid test settings");
    let app = Application::build(settings).await.expect("server builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client"),
        state,
        data_dir,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// Starts the real server with a config file holding `toml` (written into the data dir).
pub async fn spawn_app_with_config(toml: &str) -> TestApp {
    let data_dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let config = data_dir.path().join("agenthq.toml");
    std::fs::write(&config, toml).expect("config written");
    spawn_app_in(data_dir, |o| o.config = Some(config)).await
}

impl TestApp {
    pub fn data_path(&self) -> &Path {
        self.data_dir.path()
    }

    /// Creates a tenant through the lifecycle service and makes the server see it at once.
    pub fn create_tenant(&self, slug: &str) -> Tenant {
        let tenant = self
            .state
            .lifecycle
            .create(NewTenant {
                slug: TenantSlug::parse(slug).expect("valid slug"),
                name: Some(format!("{slug} org")),
                plan: Plan::Free,
            })
            .expect("tenant created");
        self.state.sync_directory_now().expect("directory reloads");
        tenant
    }

    pub fn tenant_file(&self, tenant: &Tenant) -> PathBuf {
        self.data_path()
            .join("tenants")
            .join(format!("{}.db", tenant.id))
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent")
    }

    /// `GET /api/tenant` as tenant `slug` (X-Tenant header).
    pub async fn get_tenant(&self, slug: &str) -> (StatusCode, Value) {
        let res = self
            .client
            .get(format!("{}/api/tenant", self.address))
            .header("X-Tenant", slug)
            .send()
            .await
            .expect("request sent");
        json(res).await
    }

    /// Stops the server gracefully and waits until it has stopped.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(handle) => handle.await.expect("server task"),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn json(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.expect("body");
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("response is not JSON ({e}): {text}"));
    (status, value)
}

pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// Polls `check` until it returns true or `within` passes; returns the time it took.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < within {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Runs the real `agenthq` binary with the given data dir.
pub fn agenthq(data_dir: &Path, args: &[&str]) -> Output {
    agenthq_with_env(data_dir, args, &[])
}

pub fn agenthq_with_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agenthq"));
    cmd.args(args)
        .env("AGENTHQ_DATA_DIR", data_dir)
        .env_remove("AGENTHQ_LOG")
        .env_remove("AGENTHQ_CONFIG")
        .env_remove("AGENTHQ_FAILPOINT")
        .env_remove("AGENTHQ_ADMIN_EMAIL")
        .env_remove("AGENTHQ_ADMIN_PASSWORD")
        .env_remove("AGENTHQ_MASTER_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("agenthq runs")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the command failed with exactly one line on stderr containing `needle`.
pub fn assert_fails_with(out: &Output, needle: &str) {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "expected failure, stdout: {}",
        stdout(out)
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line on stderr: {err}"
    );
    assert!(
        err.contains(needle),
        "stderr should mention {needle:?}: {err}"
    );
}

/// The password test users get.
pub const PASSWORD: &str = "correct horse battery";

/// Creates a user through the users service (and, with `role`, adds them to `tenant`).
pub fn add_user(app: &TestApp, email: &str, membership: Option<(&str, &str)>) {
    let users = agenthq::auth::users::Users::new(
        app.state.storage.clone(),
        agenthq::auth::PasswordHasher::new().expect("hasher"),
    );
    let email = agenthq::auth::Email::parse(email).expect("valid email");
    let password = agenthq::auth::Password::parse(PASSWORD.into()).expect("valid password");
    users
        .create(email.clone(), &password, false)
        .expect("user created");
    if let Some((tenant, role)) = membership {
        users
            .add_to_tenant(tenant, &email, role.parse().expect("role"))
            .expect("membership");
    }
}

/// Runs `agenthq user create --password-stdin` with `password` on stdin.
pub fn create_user_cli(data_dir: &Path, args: &[&str], password: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_agenthq"))
        .args(["user", "create", "--password-stdin"])
        .args(args)
        .env("AGENTHQ_DATA_DIR", data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agenthq runs");
    writeln!(child.stdin.take().expect("stdin"), "{password}").expect("password written");
    child.wait_with_output().expect("agenthq finishes")
}

/// A signed-in browser: its session cookie (`name=value`) and CSRF token.
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

pub async fn sign_in(app: &TestApp, email: &str) -> Browser {
    let res = app
        .client
        .post(format!("{}/api/auth/login", app.address))
        .json(&serde_json::json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("request sent");
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .expect("ASCII cookie")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let (status, body) = json(res).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Browser {
        cookie,
        csrf: body["csrf_token"].as_str().unwrap_or_default().to_owned(),
    }
}

/// Issues an API token for a member (through the tokens service, as the CLI does).
pub fn issue_token(app: &TestApp, tenant: &str, email: &str) -> String {
    let tokens = agenthq::auth::tokens::Tokens::new(app.state.storage.clone());
    let (_, secret) = tokens
        .create(agenthq::auth::tokens::NewToken {
            tenant: tenant.into(),
            email: agenthq::auth::Email::parse(email).expect("valid email"),
            name: "test".into(),
            role: None,
            expires_in_days: None,
        })
        .expect("token issued");
    secret.expose().to_owned()
}

/// How a test request authenticates.
pub enum Auth<'a> {
    /// A signed-in browser: session cookie and CSRF token.
    Browser(&'a Browser),
    /// `Authorization: Bearer <token>`.
    Token(&'a str),
}

/// A request as `auth`, optionally naming a tenant; a 204 reads as `null`.
pub async fn call(
    app: &TestApp,
    auth: Auth<'_>,
    method: reqwest::Method,
    path: &str,
    tenant: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.client.request(method, format!("{}{path}", app.address));
    req = match auth {
        Auth::Browser(b) => req
            .header("Cookie", &b.cookie)
            .header("X-CSRF-Token", &b.csrf),
        Auth::Token(token) => req.bearer_auth(token),
    };
    if let Some(slug) = tenant {
        req = req.header("X-Tenant", slug);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request sent");
    if res.status() == StatusCode::NO_CONTENT {
        return (StatusCode::NO_CONTENT, Value::Null);
    }
    json(res).await
}

/// A request as a signed-in browser (cookie and CSRF token), optionally naming a tenant.
pub async fn call_as(
    app: &TestApp,
    b: &Browser,
    method: reqwest::Method,
    path: &str,
    tenant: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    call(app, Auth::Browser(b), method, path, tenant, body).await
}

/// A server whose first platform admin is root@example.com, signed in.
pub async fn spawn_with_admin() -> (TestApp, Browser) {
    let app = spawn_app_with(|o| {
        o.admin_email = Some("root@example.com".into());
        o.admin_password = Some(agenthq::config::Secret::new(PASSWORD));
    })
    .await;
    let browser = sign_in(&app, "root@example.com").await;
    (app, browser)
}

/// A new tenant `slug` with a user of `role` in it (`<role>@<slug>.test`) and an API token
/// of theirs: the usual start of a domain API test.
pub fn tenant_with(app: &TestApp, slug: &str, role: &str) -> String {
    if app.state.directory.get(slug).is_none() {
        app.create_tenant(slug);
    }
    let email = format!("{role}@{slug}.test");
    add_user(app, &email, Some((slug, role)));
    issue_token(app, slug, &email)
}

/// A request with an API token (the token names the tenant).
pub async fn api(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    call(app, Auth::Token(token), method, path, None, body).await
}
