//! Runs against fake Anthropic and OpenAI servers on loopback speaking the real wire formats
//! (streamed, as the clients ask by default): delegation, restarts, chat, budgets, retries,
//! malformed arguments, tool permissions, keys.

use std::sync::Arc;

use agenthq::agents::providers::Block;
use agenthq::agents::providers::fake_server::{Api, FAKE_API_KEY, FakeLlm, FakeReply, FakeRequest};
use reqwest::Method;
use serde_json::{Value, json};

use super::{default_provider, event_kinds, get, org, post, run_task, wait_for_task};
use crate::helpers::{TestApp, agenthq, api, eventually, spawn_app, spawn_app_in, tenant_with};

fn provider(fake: &FakeLlm, api: Api) -> Value {
    let kind = match api {
        Api::Anthropic => "anthropic",
        Api::OpenAi => "openai",
    };
    json!({
        "kind": kind,
        "name": kind,
        "base_url": fake.base_url(api),
        "api_key": FAKE_API_KEY,
        "default_model": "claude-sonnet-4-5",
        "config": { "max_retries": 2 },
    })
}

/// The agent a request is for (its system prompt names it).
fn agent_of(request: &FakeRequest) -> String {
    let after = request
        .system
        .split("(agent name `")
        .nth(1)
        .unwrap_or_default();
    after.split('`').next().unwrap_or_default().to_string()
}

/// Whether the request carries results of tool calls (i.e. it is not the run's first call).
fn has_tool_results(request: &FakeRequest) -> bool {
    !request.tool_results().is_empty()
}

/// An org where each manager delegates to the agent named in `delegates` and, woken with its
/// results, finishes quoting them; leaves finish with "<name> result".
fn delegating_model(
    delegates: &'static [(&'static str, &'static str)],
) -> impl Fn(&FakeRequest) -> FakeReply {
    move |request| {
        let me = agent_of(request);
        let prompt: String = request
            .messages
            .first()
            .map(|m| {
                m.content
                    .iter()
                    .filter_map(|b| match b {
                        Block::Text(t) => Some(t.as_str()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let report = delegates.iter().find(|(m, _)| *m == me).map(|(_, r)| *r);
        match report {
            Some(_) if prompt.contains("Results of your subtasks") => {
                let results = prompt
                    .split("Results of your subtasks")
                    .nth(1)
                    .unwrap_or_default();
                let quoted: String = results
                    .split("Result: ")
                    .skip(1)
                    .map(|r| r.lines().next().unwrap_or_default().to_string())
                    .collect::<Vec<_>>()
                    .join("; ");
                FakeReply::tool_call(
                    "finish_task",
                    json!({ "status": "completed", "result": format!("{me} summary [{quoted}]") }),
                )
            }
            Some(_) if has_tool_results(request) => FakeReply::text("Waiting for my report."),
            Some(report) => FakeReply::tool_call(
                "delegate_task",
                json!({ "assignee": report, "prompt": format!("Do your part, {report}") }),
            )
            .with_usage(100, 20),
            None => FakeReply::text(format!("{me} thinking"))
                .and_tool_call(
                    "finish_task",
                    json!({ "status": "completed", "result": format!("{me} result") }),
                )
                .with_usage(50, 10),
        }
    }
}

const TREE: &[(&str, &str)] = &[("ceo", "lead"), ("lead", "ic")];

#[tokio::test]
async fn a_manager_whose_subtask_finished_before_its_turn_ended_runs_again_for_the_result() {
    // The manager's turn after delegating ends only once the subtask is completed: the run
    // must not complete the task with "Waiting for my report." and drop the result.
    let db: Arc<std::sync::OnceLock<std::path::PathBuf>> = Arc::default();
    let model = delegating_model(&[("lead", "ic")]);
    let subtask_done = {
        let db = db.clone();
        move || -> bool {
            let Some(path) = db.get() else { return false };
            let Ok(conn) = rusqlite::Connection::open(path) else {
                return false;
            };
            conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM tasks WHERE prompt = 'Do your part, ic' \
                 AND status = 'completed')",
                [],
                |r| r.get(0),
            )
            .unwrap_or(false)
        }
    };
    let subtask_done = Arc::new(subtask_done);
    let fake = FakeLlm::start(move |request| {
        let reply = model(request);
        if agent_of(request) == "lead" && has_tool_results(request) {
            let done = subtask_done.clone();
            reply.until(move || done())
        } else {
            reply
        }
    });
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let tenant = app.state.directory.get("acme").expect("tenant");
    db.set(app.tenant_file(&tenant)).expect("set once");
    org(&app, &admin, &[("lead", None), ("ic", Some("lead"))]).await;
    default_provider(&app, &admin, provider(&fake, Api::Anthropic)).await;

    let done = run_task(
        &app,
        &admin,
        json!({ "prompt": "Ship it", "assignee": "lead" }),
    )
    .await;

    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"], "lead summary [ic result]", "{done}");
}

async fn tree_app(app: &TestApp, fake: &FakeLlm, api: Api) -> String {
    let admin = tenant_with(app, "acme", "admin");
    org(
        app,
        &admin,
        &[("ceo", None), ("lead", Some("ceo")), ("ic", Some("lead"))],
    )
    .await;
    default_provider(app, &admin, provider(fake, api)).await;
    admin
}

#[tokio::test]
async fn a_three_level_tree_completes_over_anthropic_and_the_root_carries_the_results() {
    let fake = FakeLlm::start(delegating_model(TREE));
    let app = spawn_app().await;
    let admin = tree_app(&app, &fake, Api::Anthropic).await;

    let done = run_task(
        &app,
        &admin,
        json!({ "prompt": "Ship it", "assignee": "ceo" }),
    )
    .await;

    assert_eq!(done["status"], "completed", "{done}");
    let result = done["result"].as_str().unwrap();
    // Every task of the tree with its status, error and result, for a failure to show.
    let (_, all) = api(&app, &admin, Method::GET, "/api/tasks?limit=10", None).await;
    let tree: Vec<String> = all["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            format!(
                "{} {} {} {}",
                t["prompt"], t["status"], t["error_code"], t["result"]
            )
        })
        .collect();
    assert!(result.starts_with("ceo summary"), "{result}; {tree:#?}");
    assert!(result.contains("lead summary"), "{result}; {tree:#?}");
    assert!(result.contains("ic result"), "{result}; {tree:#?}");
    // The real wire format: key and version headers on every call, streamed.
    let requests = fake.requests();
    assert!(requests.len() >= 5, "{}", requests.len());
    for r in &requests {
        assert_eq!(r.header("x-api-key"), Some(FAKE_API_KEY));
        assert!(r.header("anthropic-version").is_some());
        assert!(r.stream);
        assert!(r.tools.iter().any(|t| t == "delegate_task"));
    }
    // Cost from the default price table (claude-sonnet-4-5: $3 / $15 per Mtok).
    let usage = get(&app, &admin, "/api/usage?group_by=model").await;
    assert_eq!(usage["items"][0]["key"], "claude-sonnet-4-5", "{usage}");
    assert!(
        usage["total"]["cost_usd"].as_f64().unwrap() > 0.0,
        "{usage}"
    );
}

#[tokio::test]
async fn a_tree_interrupted_by_a_restart_resumes_and_completes() {
    // The leaf's model answers slowly, so the server stops while it runs.
    let fake = FakeLlm::start(move |request: &FakeRequest| {
        let reply = delegating_model(TREE)(request);
        if agent_of(request) == "ic" {
            reply.with_delay(1500)
        } else {
            reply
        }
    });
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = dir.path().join("agenthq.toml");
    std::fs::write(&config, "[queue]\nshutdown_grace_secs = 0\n").unwrap();
    let app = spawn_app_in(dir.clone(), |o| o.config = Some(config.clone())).await;
    let admin = tree_app(&app, &fake, Api::OpenAi).await;
    let task = post(
        &app,
        &admin,
        "/api/tasks",
        json!({ "prompt": "Ship it", "assignee": "ceo" }),
    )
    .await;
    let id = task["id"].as_str().unwrap().to_string();
    // Wait until the leaf's call is in flight, then stop the server under it.
    let in_flight = eventually(super::SETTLE, || async {
        fake.requests().iter().any(|r| agent_of(r) == "ic")
    })
    .await;
    assert!(in_flight.is_some(), "the leaf never ran");
    app.stop().await.unwrap();

    let app = spawn_app_in(dir, |o| o.config = Some(config)).await;
    let done = wait_for_task(&app, &admin, &id, &["completed", "failed"]).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(
        done["result"].as_str().unwrap().contains("ic result"),
        "{done}"
    );
    // The leaf's run was started over after the restart.
    let root_children = get(&app, &admin, &format!("/api/tasks?parent_id={id}")).await;
    let lead = root_children["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let leaf = get(&app, &admin, &format!("/api/tasks?parent_id={lead}")).await;
    let leaf_id = leaf["items"][0]["id"].as_str().unwrap();
    let kinds = event_kinds(&app, &admin, leaf_id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "run_started").count(),
        2,
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_chat_message_gets_its_answer_in_the_same_thread_over_openai() {
    let fake = FakeLlm::start(|request: &FakeRequest| {
        if has_tool_results(request) {
            return FakeReply::text("done");
        }
        FakeReply::text("Let me answer.")
            .and_tool_call(
                "send_message",
                json!({ "to": "human", "body": "All systems go." }),
            )
            .and_tool_call(
                "finish_task",
                json!({ "status": "completed", "result": "answered" }),
            )
    });
    let app = spawn_app().await;
    let member = tenant_with(&app, "acme", "admin");
    org(&app, &member, &[("ada", None)]).await;
    default_provider(&app, &member, provider(&fake, Api::OpenAi)).await;

    let message = post(
        &app,
        &member,
        "/api/messages",
        json!({ "to": "ada", "body": "Status?" }),
    )
    .await;
    let path = format!(
        "/api/threads/{}/messages",
        message["thread_id"].as_str().unwrap()
    );
    let answered = eventually(super::SETTLE, || async {
        let page = get(&app, &member, &path).await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["body"] == "All systems go." && m["to_human"] == true)
    })
    .await;
    assert!(answered.is_some(), "no answer in the thread");
    let first = &fake.requests()[0];
    assert_eq!(
        first.header("authorization"),
        Some(format!("Bearer {FAKE_API_KEY}").as_str())
    );
    assert!(
        first.body["stream_options"]["include_usage"]
            .as_bool()
            .unwrap_or(false)
    );
}

#[tokio::test]
async fn an_exhausted_budget_stops_the_run_after_one_call_and_pauses_the_agent() {
    // Each call costs $1 (1M input tokens at $1/Mtok); the budget is 1 cent.
    let fake = FakeLlm::start(|_: &FakeRequest| {
        FakeReply::tool_call("list_agents", json!({})).with_usage(1_000_000, 0)
    });
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    post(
        &app,
        &admin,
        "/api/agents",
        json!({ "name": "spender", "monthly_budget_usd": 0.01 }),
    )
    .await;
    let mut p = provider(&fake, Api::OpenAi);
    p["default_model"] = json!("house-model");
    p["prices"] = json!({ "house-model": { "input_per_mtok": 1.0, "output_per_mtok": 1.0 } });
    default_provider(&app, &admin, p).await;

    let done = run_task(
        &app,
        &admin,
        json!({ "prompt": "Spend", "assignee": "spender" }),
    )
    .await;

    assert_eq!(done["status"], "failed");
    assert_eq!(done["error_code"], "BUDGET_EXCEEDED", "{done}");
    assert_eq!(
        fake.request_count(),
        1,
        "spend may pass the budget by one call only"
    );
    let agent = get(&app, &admin, "/api/agents/spender").await;
    assert_eq!(agent["status"], "paused");
    assert!(
        (agent["spent_this_month_usd"].as_f64().unwrap() - 1.0).abs() < 1e-9,
        "{agent}"
    );
    let audit = get(&app, &admin, "/api/audit?action=agent.paused").await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");
}

#[tokio::test]
async fn runs_of_many_agents_at_once_pass_the_organisations_budget_by_one_call_only() {
    // Six agents start at once, each run reading the budget before any call was charged.
    // Each call costs $1; the organisation's budget is 1 cent: one call may cross it, the
    // others must see that spend and stop.
    let fake = FakeLlm::start(|_: &FakeRequest| {
        FakeReply::tool_call("list_agents", json!({})).with_usage(1_000_000, 0)
    });
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    let names = ["a1", "a2", "a3", "a4", "a5", "a6"];
    for name in names {
        post(&app, &admin, "/api/agents", json!({ "name": name })).await;
    }
    let (status, workspace) = api(
        &app,
        &admin,
        Method::PATCH,
        "/api/workspace",
        Some(json!({ "monthly_budget_usd": 0.01 })),
    )
    .await;
    assert!(status.is_success(), "{workspace}");
    let mut tasks = Vec::new();
    for name in names {
        let task = post(
            &app,
            &admin,
            "/api/tasks",
            json!({ "prompt": "Spend", "assignee": name }),
        )
        .await;
        tasks.push(task["id"].as_str().unwrap().to_string());
    }
    // Setting the provider releases every run at once.
    let mut p = provider(&fake, Api::OpenAi);
    p["default_model"] = json!("house-model");
    p["prices"] = json!({ "house-model": { "input_per_mtok": 1.0, "output_per_mtok": 1.0 } });
    default_provider(&app, &admin, p).await;

    for task in &tasks {
        let done = wait_for_task(&app, &admin, task, &["failed", "completed"]).await;
        assert_eq!(done["error_code"], "BUDGET_EXCEEDED", "{done}");
    }
    assert_eq!(
        fake.request_count(),
        1,
        "spend may pass the organisation's budget by one call only"
    );
    let usage = get(&app, &admin, "/api/usage?group_by=agent").await;
    assert_eq!(usage["total"]["calls"], 1, "{usage}");
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_the_run_succeeds() {
    let fake = FakeLlm::scripted(vec![
        FakeReply::status(429).retry_after_secs(1),
        FakeReply::tool_call(
            "finish_task",
            json!({ "status": "completed", "result": "after the wait" }),
        ),
    ]);
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    org(&app, &admin, &[("solo", None)]).await;
    default_provider(&app, &admin, provider(&fake, Api::Anthropic)).await;

    let done = run_task(&app, &admin, json!({ "prompt": "Try", "assignee": "solo" })).await;

    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"], "after the wait");
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let waited = requests[1].received_at - requests[0].received_at;
    assert!(
        waited >= std::time::Duration::from_millis(950),
        "retried after {waited:?}"
    );
}

#[tokio::test]
async fn malformed_tool_arguments_are_reported_to_the_model_which_corrects_them() {
    let fake = FakeLlm::scripted(vec![
        FakeReply::tool_call_raw("finish_task", "{\"status\": \"completed\", \"result\": "),
        FakeReply::tool_call(
            "finish_task",
            json!({ "status": "completed", "result": "fixed" }),
        ),
    ]);
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    org(&app, &admin, &[("solo", None)]).await;
    default_provider(&app, &admin, provider(&fake, Api::OpenAi)).await;

    let done = run_task(&app, &admin, json!({ "prompt": "Try", "assignee": "solo" })).await;
    let id = done["id"].as_str().unwrap();

    assert_eq!(done["result"], "fixed", "{done}");
    let second = &fake.requests()[1];
    let results = second.tool_results();
    assert_eq!(results.len(), 1);
    // (Chat Completions has no error flag on tool messages: the content says it.)
    assert!(results[0].1.contains("not valid JSON"), "{:?}", results[0]);
    let events = get(&app, &admin, &format!("/api/tasks/{id}/events?limit=100")).await;
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "tool_result" && e["data"]["is_error"] == true)
    );
}

#[tokio::test]
async fn a_denied_tool_is_not_offered_and_a_call_of_it_is_refused_without_failing_the_run() {
    let fake = FakeLlm::scripted(vec![
        FakeReply::tool_call(
            "post_board_item",
            json!({ "type": "finding", "content": "secret plan" }),
        ),
        FakeReply::tool_call(
            "finish_task",
            json!({ "status": "completed", "result": "ok" }),
        ),
    ]);
    let app = spawn_app().await;
    let admin = tenant_with(&app, "acme", "admin");
    org(&app, &admin, &[("solo", None)]).await;
    let (status, body) = api(
        &app,
        &admin,
        Method::PATCH,
        "/api/agents/solo/tool-permissions",
        Some(json!({ "overrides": { "post_board_item": false } })),
    )
    .await;
    assert!(status.is_success(), "{body}");
    default_provider(&app, &admin, provider(&fake, Api::Anthropic)).await;

    let done = run_task(&app, &admin, json!({ "prompt": "Try", "assignee": "solo" })).await;

    assert_eq!(done["status"], "completed");
    let requests = fake.requests();
    assert!(
        !requests[0].tools.iter().any(|t| t == "post_board_item"),
        "{:?}",
        requests[0].tools
    );
    let results = requests[1].tool_results();
    assert!(
        results[0].2 && results[0].1.contains("permission denied"),
        "{results:?}"
    );
    let board = get(&app, &admin, "/api/board-items").await;
    assert!(board["items"].as_array().unwrap().is_empty(), "{board}");
}

#[tokio::test]
async fn keys_rotate_keeps_providers_usable_and_the_key_is_in_no_file() {
    let fake = FakeLlm::start(|_: &FakeRequest| {
        FakeReply::tool_call(
            "finish_task",
            json!({ "status": "completed", "result": "ok" }),
        )
    });
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_app_in(dir.clone(), |_| {}).await;
    let admin = tenant_with(&app, "acme", "admin");
    org(&app, &admin, &[("solo", None)]).await;
    default_provider(&app, &admin, provider(&fake, Api::Anthropic)).await;
    app.stop().await.unwrap();

    let out = agenthq(dir.path(), &["keys", "rotate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let app = spawn_app_in(dir.clone(), |_| {}).await;
    let done = run_task(
        &app,
        &admin,
        json!({ "prompt": "Work", "assignee": "solo" }),
    )
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(fake.requests()[0].api_key(), Some(FAKE_API_KEY));
    app.stop().await.unwrap();
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes
                .windows(FAKE_API_KEY.len())
                .any(|w| w == FAKE_API_KEY.as_bytes()),
            "the key is in {}",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
