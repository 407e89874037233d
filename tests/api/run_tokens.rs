//! Agent-run tokens and the master key they are derived from, through the real server.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use agenthq::auth::run_token::{DEFAULT_TTL, RunScope, RunTokenError};
use agenthq::config::Secret;
use uuid::Uuid;

use crate::helpers::{
    agenthq_with_env, assert_fails_with, spawn_app, spawn_app_in, spawn_app_with,
};

fn scope(app: &crate::helpers::TestApp) -> RunScope {
    RunScope {
        tenant: app.create_tenant("acme").id,
        agent: Uuid::now_v7(),
        task: Uuid::now_v7(),
    }
}

#[tokio::test]
async fn the_first_start_creates_a_private_master_key_that_survives_a_restart() {
    let app = spawn_app().await;
    let key_file = app.data_path().join("master.key");
    let mode = std::fs::metadata(&key_file)
        .expect("master.key created")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let scope = scope(&app);
    let token = app.state.run_tokens.issue(&scope).expect("issued");

    let data_dir = Arc::clone(&app.data_dir);
    app.stop().await.expect("stops");
    let restarted = spawn_app_in(data_dir, |_| {}).await;
    let grant = restarted
        .state
        .run_tokens
        .verify(&token)
        .expect("a token from before the restart still verifies");
    assert_eq!(grant.scope, scope);
}

#[tokio::test]
async fn run_tokens_expire_and_do_not_cross_master_keys() {
    let app = spawn_app().await;
    let scope = scope(&app);
    let now = chrono::Utc::now();
    let token = app.state.run_tokens.issue_at(&scope, now).expect("issued");
    assert!(app.state.run_tokens.verify_at(&token, now).is_ok());
    assert_eq!(
        app.state.run_tokens.verify_at(&token, now + DEFAULT_TTL),
        Err(RunTokenError::Expired)
    );

    // A server with another master key (from the environment) refuses it.
    let other = spawn_app_with(|o| {
        o.master_key = Some(Secret::new("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="));
    })
    .await;
    assert!(
        !other.data_path().join("master.key").exists(),
        "a key from the environment is never written to disk"
    );
    assert_eq!(
        other.state.run_tokens.verify_at(&token, now),
        Err(RunTokenError::Invalid)
    );
}

#[test]
fn a_malformed_master_key_in_the_environment_is_one_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = agenthq_with_env(
        dir.path(),
        &["tenant", "list"],
        &[("AGENTHQ_MASTER_KEY", "c2hvcnQ=")],
    );
    assert_fails_with(&out, "AGENTHQ_MASTER_KEY must be the base64 encoding of 32");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("c2hvcnQ="));
}
