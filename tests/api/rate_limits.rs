//! Rate limits over HTTP: per tenant by plan, per client address on sign-in, per account after
//! failures, and `X-Forwarded-For` only from trusted proxies.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, TestApp, add_user, error_code, issue_token, json, spawn_app, spawn_app_with_config,
};

async fn login(app: &TestApp, email: &str, password: &str, forwarded_for: Option<&str>) -> Reply {
    let mut req = app
        .client
        .post(format!("{}/api/auth/login", app.address))
        .json(&json!({ "email": email, "password": password }));
    if let Some(ip) = forwarded_for {
        req = req.header("X-Forwarded-For", ip);
    }
    Reply::of(req.send().await.expect("request sent")).await
}

async fn get_tenant(app: &TestApp, token: Option<&str>, slug: &str) -> Reply {
    let mut req = app
        .client
        .get(format!("{}/api/tenant", app.address))
        .header("X-Tenant", slug);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    Reply::of(req.send().await.expect("request sent")).await
}

/// A response's status, body and the headers these tests read.
struct Reply {
    status: StatusCode,
    body: Value,
    headers: reqwest::header::HeaderMap,
}

impl Reply {
    async fn of(res: reqwest::Response) -> Self {
        let headers = res.headers().clone();
        let (status, body) = json(res).await;
        Reply {
            status,
            body,
            headers,
        }
    }

    fn header(&self, name: &str) -> Option<u64> {
        self.headers.get(name)?.to_str().ok()?.parse().ok()
    }

    fn assert_rate_limited(&self) {
        assert_eq!(self.status, StatusCode::TOO_MANY_REQUESTS, "{}", self.body);
        assert_eq!(error_code(&self.body), "RATE_LIMITED");
        let retry = self.header("retry-after").expect("Retry-After");
        assert!(retry >= 1, "Retry-After {retry}");
        assert_eq!(self.body["error"]["details"]["retry_after_secs"], retry);
    }
}

#[tokio::test]
async fn a_login_flood_from_one_address_gets_429_with_retry_after() {
    let app = spawn_app().await;
    // Distinct emails, so only the per-address limit (default 10 a minute) is in play.
    for i in 0..10 {
        let r = login(&app, &format!("guess{i}@example.com"), "wrong", None).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "attempt {i}: {}",
            r.body
        );
        assert_eq!(r.header("ratelimit-remaining"), Some(9 - i));
    }
    let refused = login(&app, "guess10@example.com", "wrong", None).await;
    refused.assert_rate_limited();
    assert_eq!(refused.header("ratelimit-limit"), Some(10));
    assert_eq!(refused.header("ratelimit-remaining"), Some(0));
    assert!(refused.headers.contains_key("ratelimit-policy"));

    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.contains("agenthq_rate_limited_total{limit=\"login\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn failures_for_one_account_lock_it_even_from_other_addresses_and_with_the_right_password() {
    let app = spawn_app_with_config(
        "[http]\ntrusted_proxies = [\"127.0.0.1\"]\n\
         [rate_limits]\nlogin_free_failures = 3\nlogin_backoff_base_secs = 600\n",
    )
    .await;
    app.create_tenant("acme");
    add_user(&app, "ada@example.com", Some(("acme", "owner")));

    for i in 0..3 {
        let ip = format!("203.0.113.{i}");
        let r = login(&app, "ada@example.com", "wrong", Some(&ip)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    let locked = login(&app, "Ada@Example.com", PASSWORD, Some("198.51.100.1")).await;
    locked.assert_rate_limited();
    assert!(locked.header("retry-after").unwrap_or(0) > 500);

    // An unknown email is locked the same way: the answer says nothing about who exists.
    for _ in 0..3 {
        login(&app, "nobody@example.com", "wrong", Some("198.51.100.2")).await;
    }
    let unknown = login(&app, "nobody@example.com", "wrong", Some("198.51.100.3")).await;
    unknown.assert_rate_limited();
    assert_eq!(
        unknown.body["error"]["message"],
        locked.body["error"]["message"]
    );

    // Other accounts are unaffected.
    add_user(&app, "bob@example.com", Some(("acme", "member")));
    let bob = login(&app, "bob@example.com", PASSWORD, Some("198.51.100.4")).await;
    assert_eq!(bob.status, StatusCode::OK, "{}", bob.body);
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let untrusted = spawn_app_with_config("[rate_limits]\nlogin_burst = 2\n").await;
    for i in 0..2 {
        let ip = format!("203.0.113.{i}");
        let r = login(&untrusted, &format!("u{i}@example.com"), "wrong", Some(&ip)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Without a trusted proxy the header is the client's word: ignored, the peer is limited.
    login(&untrusted, "u3@example.com", "wrong", Some("203.0.113.99"))
        .await
        .assert_rate_limited();

    let proxied = spawn_app_with_config(
        "[http]\ntrusted_proxies = [\"127.0.0.0/8\"]\n[rate_limits]\nlogin_burst = 2\n",
    )
    .await;
    for i in 0..2 {
        let r = login(
            &proxied,
            &format!("p{i}@example.com"),
            "wrong",
            Some("203.0.113.7"),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    login(&proxied, "p3@example.com", "wrong", Some("203.0.113.7"))
        .await
        .assert_rate_limited();
    let other = login(&proxied, "p4@example.com", "wrong", Some("203.0.113.8")).await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED, "another client");
}

#[tokio::test]
async fn a_tenant_over_its_plan_quota_gets_429_while_other_tenants_carry_on() {
    // One request a minute after a burst of 3: nothing refills while the test runs.
    let app = spawn_app_with_config(
        "[rate_limits.free]\nrequests_per_minute = 1\nburst = 3\n\
         [rate_limits.team]\nrequests_per_minute = 1\nburst = 50\n",
    )
    .await;
    app.create_tenant("acme");
    app.create_tenant("globex");
    add_user(&app, "ada@example.com", Some(("acme", "owner")));
    add_user(&app, "gus@example.com", Some(("globex", "owner")));
    let ada = issue_token(&app, "acme", "ada@example.com");
    let gus = issue_token(&app, "globex", "gus@example.com");

    for remaining in (0..3).rev() {
        let r = get_tenant(&app, Some(&ada), "acme").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["role"], "owner");
        assert_eq!(r.header("ratelimit-limit"), Some(3));
        assert_eq!(r.header("ratelimit-remaining"), Some(remaining));
    }
    let refused = get_tenant(&app, Some(&ada), "acme").await;
    refused.assert_rate_limited();
    assert!(refused.header("retry-after").unwrap_or(0) > 50);

    // Every authenticated tenant route shares the quota.
    let members = app
        .client
        .get(format!("{}/api/members", app.address))
        .bearer_auth(&ada)
        .send()
        .await
        .expect("request sent");
    Reply::of(members).await.assert_rate_limited();

    // Another tenant has its own quota; anonymous requests do not use the tenant's.
    let g = get_tenant(&app, Some(&gus), "globex").await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.body);
    let anonymous = get_tenant(&app, None, "acme").await;
    assert_eq!(anonymous.status, StatusCode::OK);
    assert!(anonymous.body.get("role").is_none());
    assert!(!anonymous.headers.contains_key("ratelimit-remaining"));

    // The plan decides the quota.
    app.state
        .lifecycle
        .create(agenthq::tenancy::NewTenant {
            slug: agenthq::domain::TenantSlug::parse("initech").expect("slug"),
            name: None,
            plan: agenthq::domain::Plan::Team,
        })
        .expect("tenant created");
    app.state.sync_directory_now().expect("directory reloads");
    add_user(&app, "ida@example.com", Some(("initech", "owner")));
    let ida = issue_token(&app, "initech", "ida@example.com");
    let r = get_tenant(&app, Some(&ida), "initech").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("ratelimit-limit"), Some(50));
    assert_eq!(r.header("ratelimit-remaining"), Some(49));
}
