//! Platform overhead of agent runs (issue 7): the real server (built in-process from the
//! library, as `agenthq serve` builds it) runs agents against an instant fake OpenAI-compatible
//! provider on loopback (`agents::providers::fake_server`, streamed replies). Every run has two
//! turns: the model calls `list_agents`, then `finish_task`.
//!
//! 1. Throughput with creation: `--runs` tasks over `--agents` agents (one run per agent at a
//!    time), posted through the API while the runs go; runs/s from the first POST to the last
//!    task completed.
//! 2. Throughput of runs alone: `--runs` tasks posted while no provider is set (they wait),
//!    then released at once by setting the workspace's default provider; runs/s from that
//!    PATCH to the last task completed (queueing, claiming, running and ending every run).
//! 3. Serial: `--serial-runs` tasks of one agent, so runs never overlap.
//!
//! For each, the p50 (and p90) of the platform's time per turn, from the server's own
//! histogram `agenthq_agent_run_overhead_per_turn_seconds` (a run's time from its job starting
//! to its end committed, minus the model calls, over its turns), read from `/metrics` before
//! and after the phase and interpolated within buckets as Prometheus' `histogram_quantile`.
//!
//! Prints one JSON line. `benches/runs.sh` runs it in rounds; alone:
//! `cargo bench --bench runs -- --runs 2000`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agenthq::agents::providers::fake_server::{Api, FakeLlm, FakeReply, FakeRequest};
use agenthq::config::{Overrides, Settings};
use agenthq::domain::{Plan, TenantSlug};
use agenthq::startup::Application;
use agenthq::tenancy::NewTenant;
use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser, Debug)]
struct Args {
    /// Runs of the throughput phase.
    #[arg(long, default_value_t = 2000)]
    runs: usize,
    /// Agents sharing them (each runs one task at a time).
    #[arg(long, default_value_t = 64)]
    agents: usize,
    /// Runs of the serial phase (one agent).
    #[arg(long, default_value_t = 300)]
    serial_runs: usize,
    /// Jobs the server runs at once (`queue.concurrency`).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The tool of the first turn: `read_messages` (a read that finds nothing) or
    /// `list_agents` (the whole org chart back to the model: ~150 bytes per agent).
    #[arg(long, default_value = "read_messages")]
    tool: String,
    /// Read connections per open tenant database (`storage.tenant_pool_size`; default 4).
    #[arg(long)]
    pool: Option<usize>,
    /// Whether the provider streams its replies (SSE), as providers do by default.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    stream: bool,
    /// Data dir (a fresh temp dir by default).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

const HISTOGRAM: &str = "agenthq_agent_run_overhead_per_turn_seconds";

/// The scripted model: a call of `tool` first, then `finish_task`.
fn model(tool: &str, request: &FakeRequest) -> FakeReply {
    if request.tool_results().is_empty() {
        FakeReply::tool_call(tool, json!({})).with_usage(300, 20)
    } else {
        FakeReply::tool_call(
            "finish_task",
            json!({ "status": "completed", "result": "done" }),
        )
        .with_usage(400, 20)
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await?;
        let status = res.status();
        let text = res.text().await?;
        if !status.is_success() {
            bail!("{path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn done(&self) -> anyhow::Result<u64> {
        let board = self
            .send(reqwest::Method::GET, "/api/tasks/board?limit=1", None)
            .await?;
        board["done"]["count"]
            .as_u64()
            .context("board without a done count")
    }

    /// The histogram's cumulative buckets `(le, count)`.
    async fn histogram(&self) -> anyhow::Result<Vec<(f64, f64)>> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?;
        let prefix = format!("{HISTOGRAM}_bucket{{le=\"");
        let mut buckets = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(&prefix) {
                let (le, count) = rest.split_once("\"} ").context("bucket line")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse()?
                };
                buckets.push((le, count.trim().parse()?));
            }
        }
        Ok(buckets)
    }
}

/// `histogram_quantile` over the difference of two scrapes, in milliseconds.
fn quantile(q: f64, before: &[(f64, f64)], after: &[(f64, f64)]) -> Option<f64> {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .zip(before)
        .map(|((le, a), (_, b))| (*le, a - b))
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in &delta {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower.0 * 1e3);
            }
            let within = if count > lower.1 {
                (rank - lower.1) / (count - lower.1)
            } else {
                0.0
            };
            return Some((lower.0 + (le - lower.0) * within) * 1e3);
        }
        lower = (le, count);
    }
    None
}

/// Posts `n` tasks (`assignee(i)` each), 16 at a time, and waits until `expect_done` tasks are
/// done; returns the elapsed time.
async fn phase(
    client: &Arc<Client>,
    n: usize,
    assignee: impl Fn(usize) -> String,
    expect_done: u64,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..n {
        if posts.len() >= 16 {
            posts.join_next().await.context("a post")???;
        }
        let client = client.clone();
        let body = json!({ "prompt": format!("Task {i}: look around, then finish"), "assignee": assignee(i) });
        posts.spawn(async move {
            client
                .send(reqwest::Method::POST, "/api/tasks", Some(body))
                .await
                .map(|_| ())
        });
    }
    while let Some(r) = posts.join_next().await {
        r??;
    }
    wait_done(client, expect_done, started).await?;
    Ok(started.elapsed())
}

/// Waits until `expect_done` tasks are done (completed, failed or cancelled).
async fn wait_done(client: &Client, expect_done: u64, since: Instant) -> anyhow::Result<()> {
    loop {
        if client.done().await? >= expect_done {
            return Ok(());
        }
        if since.elapsed() > Duration::from_secs(600) {
            bail!("runs did not finish within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn run(args: Args) -> anyhow::Result<Value> {
    let temp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[queue]\nconcurrency = {c}\n[queue.tenant_concurrency]\nenterprise = {c}\n\
             [rate_limits.enterprise]\nrequests_per_minute = 100000000\nburst = 10000000\n{pool}",
            c = args.concurrency,
            pool = args
                .pool
                .map(|n| format!("[storage]\ntenant_pool_size = {n}\n"))
                .unwrap_or_default(),
        ),
    )?;
    let settings = Settings::load(Overrides {
        config: Some(config),
        data_dir: Some(dir.clone()),
        listen: Some("127.0.0.1:0".into()),
        log: Some("warn".into()),
        ..Overrides::default()
    })?;
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    // A tenant on the enterprise plan, an owner and their token.
    state.lifecycle.create(NewTenant {
        slug: TenantSlug::parse("bench")?,
        name: Some("bench".into()),
        plan: Plan::Enterprise,
    })?;
    state.sync_directory_now()?;
    let email = agenthq::auth::Email::parse("owner@bench.test").map_err(anyhow::Error::msg)?;
    state.users.create(
        email.clone(),
        &agenthq::auth::Password::parse("correct horse battery".into())
            .map_err(anyhow::Error::msg)?,
        false,
    )?;
    state
        .users
        .add_to_tenant("bench", &email, agenthq::auth::Role::Owner)?;
    let (_, secret) = state.tokens.create(agenthq::auth::tokens::NewToken {
        tenant: "bench".into(),
        email,
        name: "bench".into(),
        role: None,
        expires_in_days: None,
    })?;
    let client = Arc::new(Client {
        http: reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(64)
            .build()?,
        base,
        token: secret.expose().to_owned(),
    });

    let tool = args.tool.clone();
    let fake = FakeLlm::start(move |r| model(&tool, r));
    fake.record_requests(false);
    for i in 0..args.agents {
        client
            .send(
                reqwest::Method::POST,
                "/api/agents",
                Some(json!({ "name": format!("agent-{i}") })),
            )
            .await?;
    }
    client
        .send(
            reqwest::Method::POST,
            "/api/agents",
            Some(json!({ "name": "solo" })),
        )
        .await?;
    let provider = client
        .send(
            reqwest::Method::POST,
            "/api/providers",
            Some(json!({
                "kind": "openai", "name": "fake", "base_url": fake.base_url(Api::OpenAi),
                "api_key": "sk-bench-0123456789", "default_model": "gpt-4o-mini",
                "config": { "stream": args.stream },
            })),
        )
        .await?;
    client
        .send(
            reqwest::Method::PATCH,
            "/api/workspace",
            Some(json!({ "default_provider_id": provider["id"] })),
        )
        .await?;

    // Warm-up: connections, caches, prepared statements.
    let agents = args.agents;
    phase(&client, 200, |i| format!("agent-{}", i % agents), 200).await?;
    let mut done = 200u64;

    let before = client.histogram().await?;
    let elapsed = phase(
        &client,
        args.runs,
        |i| format!("agent-{}", i % agents),
        done + args.runs as u64,
    )
    .await?;
    done += args.runs as u64;
    let after = client.histogram().await?;
    let throughput = args.runs as f64 / elapsed.as_secs_f64();

    // Runs alone: the tasks wait for a provider, then all are released at once.
    client
        .send(
            reqwest::Method::PATCH,
            "/api/workspace",
            Some(json!({ "default_provider_id": null })),
        )
        .await?;
    phase(
        &client,
        args.runs,
        |i| format!("agent-{}", i % agents),
        done,
    )
    .await?;
    let released_before = client.histogram().await?;
    let released = Instant::now();
    client
        .send(
            reqwest::Method::PATCH,
            "/api/workspace",
            Some(json!({ "default_provider_id": provider["id"] })),
        )
        .await?;
    done += args.runs as u64;
    wait_done(&client, done, released).await?;
    let released_elapsed = released.elapsed();
    let released_after = client.histogram().await?;

    let serial_before = client.histogram().await?;
    let serial_elapsed = phase(
        &client,
        args.serial_runs,
        |_| "solo".into(),
        done + args.serial_runs as u64,
    )
    .await?;
    let serial_after = client.histogram().await?;

    let calls = fake.request_count();
    let _ = stop.send(());
    server.await??;
    Ok(json!({
        "runs": args.runs,
        "tool": args.tool,
        "stream": args.stream,
        "tenant_pool_size": args.pool.unwrap_or(4),
        "agents": args.agents,
        "concurrency": args.concurrency,
        "runs_per_s_with_creation": (throughput * 10.0).round() / 10.0,
        "runs_per_s": ((args.runs as f64 / released_elapsed.as_secs_f64()) * 10.0).round() / 10.0,
        "released_overhead_per_turn_p50_ms": quantile(0.5, &released_before, &released_after),
        "overhead_per_turn_p50_ms": quantile(0.5, &before, &after),
        "overhead_per_turn_p90_ms": quantile(0.9, &before, &after),
        "serial_runs": args.serial_runs,
        "serial_runs_per_s": ((args.serial_runs as f64 / serial_elapsed.as_secs_f64()) * 10.0).round() / 10.0,
        "serial_overhead_per_turn_p50_ms": quantile(0.5, &serial_before, &serial_after),
        "serial_overhead_per_turn_p90_ms": quantile(0.9, &serial_before, &serial_after),
        "model_calls": calls,
    }))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(args))?;
    println!("{result}");
    Ok(())
}
