//! Passwords, session ids, CSRF tokens and API tokens never reach a database file or the log in
//! plaintext, even at debug log level.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, agenthq, create_user_cli, json, stderr};

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn no_secret_reaches_a_database_file_or_the_log() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("data");
    assert!(
        agenthq(&dir, &["tenant", "create", "acme"])
            .status
            .success()
    );
    let out = create_user_cli(
        &dir,
        &["--email", "root@example.com", "--platform-admin"],
        PASSWORD,
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
            "root@example.com",
            "--role",
            "owner",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = data.path().join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_agenthq"))
        .args([
            "serve",
            "--log-format",
            "json",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("AGENTHQ_DATA_DIR", &dir)
        .env("AGENTHQ_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let res = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "root@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let session = cookie.split_once('=').unwrap().1.to_owned();
    let (status, body) = json(res).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let res = client
        .post(format!("{base}/api/tokens"))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", &csrf)
        .header("X-Tenant", "acme")
        .json(&json!({"name": "scripts"}))
        .send()
        .await
        .unwrap();
    let (status, created) = json(res).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let res = client
        .get(format!("{base}/api/members"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let wrong = "a wrong password that is long";
    let res = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "root@example.com", "password": wrong}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = client
        .post(format!("{base}/api/auth/logout"))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());

    let secrets = [PASSWORD, wrong, &session, &csrf, &token];
    let log = std::fs::read(&log_path).unwrap();
    assert!(log.len() > 1000, "the debug log has content");
    // The master key lives in master.key (0600) and nowhere else.
    let master_key = std::fs::read_to_string(dir.join("master.key")).unwrap();
    let master_key = master_key.trim();
    assert_eq!(master_key.len(), 44, "base64 of 32 bytes");
    assert!(
        !log.windows(master_key.len())
            .any(|w| w == master_key.as_bytes()),
        "the log holds the master key"
    );
    let mut files = files_under(&dir);
    files.push(log_path);
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a secret in plaintext",
                file.display()
            );
        }
    }
}
