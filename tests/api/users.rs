//! `agenthq user create` and `agenthq user add`.

use crate::helpers::{agenthq, assert_fails_with, create_user_cli, stderr, stdout};

fn create_user(data: &std::path::Path, args: &[&str], password: &str) -> std::process::Output {
    create_user_cli(data, args, password)
}

#[test]
fn a_user_is_created_with_a_password_from_stdin_and_added_to_a_tenant() {
    let data = tempfile::tempdir().unwrap();
    let out = create_user(
        data.path(),
        &["--email", "Ada@Example.com", "--platform-admin"],
        "correct horse battery staple",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("created user ada@example.com, platform admin"));

    assert!(
        agenthq(data.path(), &["tenant", "create", "acme"])
            .status
            .success()
    );
    let out = agenthq(
        data.path(),
        &[
            "user",
            "add",
            "--tenant",
            "acme",
            "--email",
            "ada@example.com",
            "--role",
            "owner",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("ada@example.com is now owner of tenant acme"));

    // The password is in no file of the data dir, in any form SQLite could store it.
    for entry in walk(data.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(14).any(|w| w == b"horse battery "),
            "{} holds the password",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn bad_user_input_is_refused_with_one_line() {
    let data = tempfile::tempdir().unwrap();
    assert_fails_with(
        &create_user(
            data.path(),
            &["--email", "not-an-email"],
            "correct horse battery",
        ),
        "invalid email",
    );
    assert_fails_with(
        &create_user(data.path(), &["--email", "ada@example.com"], "short"),
        "at least 12 characters",
    );
    assert!(
        create_user(
            data.path(),
            &["--email", "ada@example.com"],
            "correct horse battery"
        )
        .status
        .success()
    );
    assert_fails_with(
        &create_user(
            data.path(),
            &["--email", "ADA@example.com"],
            "correct horse battery",
        ),
        "already exists",
    );
    assert_fails_with(
        &agenthq(
            data.path(),
            &["user", "create", "--email", "bob@example.com"],
        ),
        "--password-stdin",
    );
    assert_fails_with(
        &agenthq(
            data.path(),
            &[
                "user",
                "add",
                "--tenant",
                "nope",
                "--email",
                "ada@example.com",
                "--role",
                "owner",
            ],
        ),
        "no tenant with slug 'nope'",
    );
    let out = agenthq(
        data.path(),
        &[
            "user",
            "add",
            "--tenant",
            "acme",
            "--email",
            "ada@example.com",
            "--role",
            "root",
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("root"), "{}", stderr(&out));
}

#[tokio::test]
async fn the_first_platform_admin_comes_from_the_environment_on_a_fresh_install() {
    let app = crate::helpers::spawn_app_with(|o| {
        o.admin_email = Some("Root@Example.com".into());
        o.admin_password = Some(agenthq::config::Secret::new("correct horse battery"));
    })
    .await;
    let email = agenthq::auth::Email::parse("root@example.com").unwrap();
    let (user, hash) = app
        .state
        .storage
        .registry
        .user_by_email(&email)
        .unwrap()
        .unwrap();
    assert!(user.is_platform_admin);
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
}

#[test]
fn half_a_bootstrap_admin_is_a_configuration_error() {
    let data = tempfile::tempdir().unwrap();
    let out = crate::helpers::agenthq_with_env(
        data.path(),
        &["serve", "--listen", "127.0.0.1:0"],
        &[("AGENTHQ_ADMIN_EMAIL", "root@example.com")],
    );
    assert_fails_with(&out, "AGENTHQ_ADMIN_PASSWORD");
}
