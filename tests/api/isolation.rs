//! Two tenants can never see each other's rows through any store handle obtained by resolution.

use std::sync::Arc;

use actix_web::test::TestRequest;
use agenthq::tenancy::TenantResolver;
use reqwest::StatusCode;

use crate::helpers::spawn_app;

fn resolver(app: &crate::helpers::TestApp) -> Arc<TenantResolver> {
    Arc::new(TenantResolver::new(
        None,
        app.state.directory.clone(),
        app.state.storage.tenants.clone(),
    ))
}

#[tokio::test]
async fn store_handles_from_resolution_only_reach_their_own_tenant() {
    let app = spawn_app().await;
    let slugs: Vec<String> = (0..8).map(|i| format!("tenant-{i}")).collect();
    let tenants: Vec<_> = slugs.iter().map(|s| app.create_tenant(s)).collect();
    let resolver = resolver(&app);

    // Every tenant writes its own marker concurrently, many times over, through handles
    // obtained by resolving requests; each must only ever read back its own.
    // (HttpRequest is not Send, so these run as concurrent futures on this thread; the store
    // work itself runs on the blocking pool, in parallel.)
    let mut tasks = Vec::new();
    for round in 0..20 {
        for slug in &slugs {
            let resolver = resolver.clone();
            let slug = slug.clone();
            tasks.push(async move {
                let req = TestRequest::default()
                    .insert_header(("X-Tenant", slug.as_str()))
                    .to_http_request();
                let ctx = resolver.resolve(&req).await.expect("resolves");
                assert_eq!(ctx.tenant.slug.as_str(), slug);
                assert_eq!(ctx.store.tenant_id(), ctx.tenant.id);
                let store = ctx.store.clone();
                let marker = format!("{slug} secret {round}");
                let read = tokio::task::spawn_blocking(move || {
                    store.rename_workspace(&marker).expect("write");
                    store.workspace().expect("read")
                })
                .await
                .unwrap();
                // Another round of the same tenant may have written in between; never another
                // tenant's marker.
                assert!(
                    read.name.starts_with(&format!("{slug} secret ")),
                    "{slug} saw {}",
                    read.name
                );
            });
        }
    }
    futures_util::future::join_all(tasks).await;

    for (slug, tenant) in slugs.iter().zip(&tenants) {
        let store = app.state.storage.tenants.open(tenant.id).unwrap();
        let ws = store.workspace().unwrap();
        assert!(
            ws.name.starts_with(&format!("{slug} secret ")),
            "{slug}: {}",
            ws.name
        );
    }
}

#[tokio::test]
async fn each_tenant_is_served_from_its_own_database_file() {
    let app = spawn_app().await;
    let a = app.create_tenant("acme");
    let b = app.create_tenant("globex");
    assert_ne!(app.tenant_file(&a), app.tenant_file(&b));
    assert!(app.tenant_file(&a).exists() && app.tenant_file(&b).exists());

    // Rows written for one tenant are absent from the other's file, read with plain SQLite.
    let store_a = app.state.storage.tenants.open(a.id).unwrap();
    tokio::task::spawn_blocking(move || store_a.rename_workspace("only-in-acme").unwrap())
        .await
        .unwrap();
    let conn = rusqlite::Connection::open(app.tenant_file(&b)).unwrap();
    let name: String = conn
        .query_row("SELECT name FROM workspace", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "globex org");

    let (status, body) = app.get_tenant("globex").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], b.id.to_string());
}
