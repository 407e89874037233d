//! A crash at any point of provisioning or purging leaves no half tenant after a restart.

use std::path::Path;

use crate::helpers::{agenthq, agenthq_with_env, stderr, stdout};

fn registry_status(data: &Path, slug: &str) -> Option<String> {
    let conn = rusqlite::Connection::open(data.join("registry.db")).unwrap();
    conn.query_row("SELECT status FROM tenants WHERE slug = ?1", [slug], |r| {
        r.get(0)
    })
    .ok()
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_crash_at_any_step_of_provisioning_leaves_no_half_tenant() {
    for point in [
        "provision.after_registry_insert",
        "provision.after_build",
        "provision.after_publish",
    ] {
        let data = tempfile::tempdir().unwrap();
        let out = agenthq_with_env(
            data.path(),
            &["tenant", "create", "acme"],
            &[("AGENTHQ_FAILPOINT", point)],
        );
        assert!(
            !out.status.success(),
            "{point}: the process should have crashed"
        );
        assert!(stderr(&out).contains(point), "{point}: {}", stderr(&out));
        assert_eq!(
            registry_status(data.path(), "acme").as_deref(),
            Some("provisioning"),
            "{point}: the crash left a provisioning row"
        );

        // The next start (any command that opens the data dir) rolls it back.
        let out = agenthq(data.path(), &["tenant", "list", "--json"]);
        assert!(out.status.success(), "{point}: {}", stderr(&out));
        let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(listed, serde_json::json!([]), "{point}");
        assert_eq!(registry_status(data.path(), "acme"), None, "{point}");
        assert!(
            files_in(&data.path().join("tenants")).is_empty(),
            "{point}: tenant files left"
        );
        assert!(
            files_in(&data.path().join("tenants/.provisioning")).is_empty(),
            "{point}: provisioning leftovers"
        );

        // And the slug is free again.
        let out = agenthq(data.path(), &["tenant", "create", "acme"]);
        assert!(out.status.success(), "{point}: {}", stderr(&out));
        assert_eq!(
            registry_status(data.path(), "acme").as_deref(),
            Some("active")
        );
        assert_eq!(files_in(&data.path().join("tenants")).len(), 1, "{point}");
    }
}

#[test]
fn a_crash_during_purge_is_finished_at_the_next_start() {
    for point in ["purge.after_mark", "purge.after_remove_files"] {
        let data = tempfile::tempdir().unwrap();
        for args in [["tenant", "create", "acme"], ["tenant", "delete", "acme"]] {
            assert!(agenthq(data.path(), &args).status.success());
        }
        let out = agenthq_with_env(
            data.path(),
            &["tenant", "purge", "acme"],
            &[("AGENTHQ_FAILPOINT", point)],
        );
        assert!(!out.status.success(), "{point}: should have crashed");
        assert_eq!(
            registry_status(data.path(), "acme").as_deref(),
            Some("purging")
        );

        let out = agenthq(data.path(), &["tenant", "list", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(registry_status(data.path(), "acme"), None, "{point}");
        assert!(files_in(&data.path().join("tenants")).is_empty(), "{point}");
    }
}

#[tokio::test]
async fn a_server_started_after_a_crash_serves_no_half_tenant() {
    let data = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let out = agenthq_with_env(
        data.path(),
        &["tenant", "create", "acme"],
        &[("AGENTHQ_FAILPOINT", "provision.after_publish")],
    );
    assert!(!out.status.success());

    let app = crate::helpers::spawn_app_in(data.clone(), |_| {}).await;
    let (status, body) = app.get_tenant("acme").await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{body}");
    assert!(files_in(&data.path().join("tenants")).is_empty());
}
