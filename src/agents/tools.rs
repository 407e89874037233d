//! The platform tools: the only way an agent acts. Each call is parsed against its schema,
//! checked against the agent's tool permissions, scoped to the tenant (the scope's store only
//! reaches its rows) and audited with the agent as the actor. A bad or denied call is an error
//! result the model reads and can correct, never a failed run.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::providers::ToolSpec;
use crate::audit::Target;
use crate::domain::agent::{Agent, OrgNode};
use crate::domain::board::{BoardFilter, NewBoardItem};
use crate::domain::run::RunOutcome;
use crate::domain::task::{NewTask, Priority, Task, TaskPatch, TaskStatus};
use crate::services::{self, Scope, ServiceError};
use crate::store::runs::AgentMessage;

/// The names of the platform tools, in the order they are offered.
pub const TOOL_NAMES: [&str; 9] = [
    "delegate_task",
    "finish_task",
    "send_message",
    "read_messages",
    "post_board_item",
    "query_board",
    "list_agents",
    "get_task",
    "update_task",
];

/// The specs of the tools named in `enabled` (all platform tools when it holds them all).
pub fn specs(enabled: &HashSet<String>) -> Arc<[ToolSpec]> {
    static ALL: std::sync::OnceLock<Arc<[ToolSpec]>> = std::sync::OnceLock::new();
    let all = ALL.get_or_init(|| TOOL_NAMES.iter().map(|n| spec(n)).collect());
    if TOOL_NAMES.iter().all(|n| enabled.contains(*n)) {
        // Most agents may use every tool: share one list.
        return all.clone();
    }
    all.iter()
        .filter(|s| enabled.contains(&s.name))
        .cloned()
        .collect()
}

fn spec(name: &str) -> ToolSpec {
    let (description, schema) = match name {
        "delegate_task" => (
            "Create a subtask for another agent (one of your reports, direct or indirect). You are woken with its result when all your subtasks are done: after delegating, end your turn without finish_task.",
            json!({"type": "object", "properties": {
                "assignee": {"type": "string", "description": "The agent's name"},
                "prompt": {"type": "string", "description": "What to do"},
                "context": {"type": "string", "description": "Background the assignee needs"},
                "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]}
            }, "required": ["assignee", "prompt"], "additionalProperties": false}),
        ),
        "finish_task" => (
            "Finish your current task with its result.",
            json!({"type": "object", "properties": {
                "status": {"type": "string", "enum": ["completed", "failed", "blocked"]},
                "result": {"type": "string", "description": "The outcome, for whoever asked"}
            }, "required": ["status", "result"], "additionalProperties": false}),
        ),
        "send_message" => (
            "Send a chat message to another agent (by name) or to the humans (\"human\").",
            json!({"type": "object", "properties": {
                "to": {"type": "string", "description": "An agent's name, or \"human\""},
                "body": {"type": "string"},
                "thread_id": {"type": "string", "description": "Reply in this thread"}
            }, "required": ["to", "body"], "additionalProperties": false}),
        ),
        "read_messages" => (
            "Read the messages sent to you (marks them read).",
            json!({"type": "object", "properties": {
                "unread_only": {"type": "boolean", "description": "Default true"}
            }, "additionalProperties": false}),
        ),
        "post_board_item" => (
            "Post a status update, blocker, finding or request on the shared board.",
            json!({"type": "object", "properties": {
                "type": {"type": "string", "enum": ["status_update", "blocker", "finding", "request"]},
                "content": {"type": "string"}
            }, "required": ["type", "content"], "additionalProperties": false}),
        ),
        "query_board" => (
            "Read the board's items, newest first.",
            json!({"type": "object", "properties": {
                "type": {"type": "string", "enum": ["status_update", "blocker", "finding", "request"]},
                "since": {"type": "string", "description": "RFC 3339 time"}
            }, "additionalProperties": false}),
        ),
        "list_agents" => (
            "List the organisation's agents with their roles and managers.",
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
        ),
        "get_task" => (
            "Read a task: prompt, status, result and subtasks.",
            json!({"type": "object", "properties": {
                "task_id": {"type": "string"}
            }, "required": ["task_id"], "additionalProperties": false}),
        ),
        _ => (
            "Change a task you delegated (status, priority, context), or the priority or context of your own.",
            json!({"type": "object", "properties": {
                "task_id": {"type": "string"},
                "status": {"type": "string", "enum": ["pending", "blocked", "review", "completed", "failed"]},
                "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]},
                "context": {"type": "string"}
            }, "required": ["task_id"], "additionalProperties": false}),
        ),
    };
    ToolSpec {
        name: name.to_string(),
        description: description.to_string(),
        input_schema: schema,
    }
}

/// What a run knows while it executes tools.
pub struct ToolEnv {
    /// Acting as the agent (its actor is on every audit entry).
    pub scope: Scope,
    pub agent: Agent,
    pub task: Task,
    /// Tools the agent may use.
    pub enabled: HashSet<String>,
    pub allow_any_delegation: bool,
    pub max_depth: u32,
    /// The chat thread the task answers, if it is a chat reply task.
    pub thread_id: Option<String>,
}

/// The result of one tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub content: String,
    pub is_error: bool,
    /// Set by `finish_task`: how the run ends, and the result.
    pub finish: Option<(RunOutcome, String)>,
}

impl ToolResult {
    fn ok(value: Value) -> Self {
        Self {
            content: value.to_string(),
            is_error: false,
            finish: None,
        }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self {
            content: json!({ "error": message.into() }).to_string(),
            is_error: true,
            finish: None,
        }
    }
}

/// Why a tool call could not run: the model gets the message; a storage failure fails the run.
pub enum ToolFailure {
    Refused(String),
    Store(ServiceError),
}

impl From<ServiceError> for ToolFailure {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Store(_) => ToolFailure::Store(e),
            other => ToolFailure::Refused(other.to_string()),
        }
    }
}

impl From<crate::store::StoreError> for ToolFailure {
    fn from(e: crate::store::StoreError) -> Self {
        ToolFailure::Store(e.into())
    }
}

fn refuse(message: impl Into<String>) -> ToolFailure {
    ToolFailure::Refused(message.into())
}

fn args<T: DeserializeOwned>(input: &Value) -> Result<T, ToolFailure> {
    if !input.is_object() {
        return Err(refuse("the arguments must be a JSON object"));
    }
    serde_json::from_value(input.clone()).map_err(|e| refuse(format!("invalid arguments: {e}")))
}

/// Runs one tool call. `Err` only for storage failures (the run cannot go on).
pub fn execute(env: &ToolEnv, name: &str, input: &Value) -> Result<ToolResult, ServiceError> {
    if !TOOL_NAMES.contains(&name) {
        return Ok(ToolResult::error(format!(
            "there is no tool named '{name}'; the tools are: {}",
            TOOL_NAMES.join(", ")
        )));
    }
    if !env.enabled.contains(name) {
        return Ok(ToolResult::error(format!(
            "permission denied: this agent may not use {name}"
        )));
    }
    let outcome = match name {
        "delegate_task" => delegate(env, input),
        "finish_task" => finish(input),
        "send_message" => send_message(env, input),
        "read_messages" => read_messages(env, input),
        "post_board_item" => post_board_item(env, input),
        "query_board" => query_board(env, input),
        "list_agents" => list_agents(env),
        "get_task" => get_task(env, input),
        _ => update_task(env, input),
    };
    match outcome {
        Ok(result) => Ok(result),
        Err(ToolFailure::Refused(message)) => Ok(ToolResult::error(message)),
        Err(ToolFailure::Store(e)) => Err(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DelegateArgs {
    assignee: String,
    prompt: String,
    context: Option<String>,
    priority: Option<Priority>,
}

/// The ids of every agent below `root` in the chart.
fn below(nodes: &[OrgNode], root: &str) -> HashSet<String> {
    let mut reports: HashMap<&str, Vec<&str>> = HashMap::new();
    for n in nodes {
        if let Some(m) = n.reports_to.as_deref() {
            reports.entry(m).or_default().push(&n.id);
        }
    }
    let mut out = HashSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        for r in reports.get(id).into_iter().flatten() {
            if out.insert(r.to_string()) {
                stack.push(r);
            }
        }
    }
    out
}

fn delegate(env: &ToolEnv, input: &Value) -> Result<ToolResult, ToolFailure> {
    let a: DelegateArgs = args(input)?;
    let scope = &env.scope;
    let Some(target) = scope.store.agent(&a.assignee)? else {
        return Err(refuse(format!(
            "no agent is named '{}'; list_agents shows who exists",
            a.assignee
        )));
    };
    if target.id == env.agent.id {
        return Err(refuse("you cannot delegate to yourself"));
    }
    if !env.allow_any_delegation
        && !below(&scope.store.org_nodes()?, &env.agent.id).contains(&target.id)
    {
        return Err(refuse(format!(
            "{} does not report to you; delegate to your reports (list_agents shows the chart)",
            target.name
        )));
    }
    if env.task.depth + 1 > i64::from(env.max_depth) {
        return Err(refuse(format!(
            "delegation is limited to {} levels; do this work yourself",
            env.max_depth
        )));
    }
    let new = NewTask {
        prompt: a.prompt,
        context: a.context,
        priority: a.priority,
        tags: vec![],
        assignee: Some(target.id.clone()),
        parent_id: Some(env.task.id.clone()),
    }
    .validate()
    .map_err(|e| refuse(format!("invalid arguments: {}: {}", e.field, e.message)))?;
    let mut insert = services::tasks::prepare(scope, new)?;
    insert.delegator_id = Some(env.agent.id.clone());
    let details = json!({ "parent_id": insert.parent_id, "delegated": true });
    let task = services::tasks::insert_prepared(scope, &insert, details)?;
    Ok(ToolResult::ok(json!({
        "task_id": task.id,
        "assignee": target.name,
        "status": task.status,
        "note": "You will be woken with the result once all your subtasks are done.",
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FinishArgs {
    status: String,
    result: String,
}

fn finish(input: &Value) -> Result<ToolResult, ToolFailure> {
    let a: FinishArgs = args(input)?;
    let outcome = match a.status.as_str() {
        "completed" => RunOutcome::Completed,
        "failed" => RunOutcome::Failed,
        "blocked" => RunOutcome::Blocked,
        other => {
            return Err(refuse(format!(
                "status must be completed, failed or blocked, not '{other}'"
            )));
        }
    };
    Ok(ToolResult {
        content: json!({ "ok": true, "status": a.status }).to_string(),
        is_error: false,
        finish: Some((outcome, a.result)),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendArgs {
    to: String,
    body: String,
    thread_id: Option<String>,
}

fn send_message(env: &ToolEnv, input: &Value) -> Result<ToolResult, ToolFailure> {
    let a: SendArgs = args(input)?;
    let body = a.body.trim();
    if body.is_empty() {
        return Err(refuse("body must not be empty"));
    }
    let scope = &env.scope;
    let to_agent = if a.to.eq_ignore_ascii_case("human") {
        None
    } else {
        match scope.store.agent(&a.to)? {
            Some(agent) => Some(agent.id),
            None => {
                return Err(refuse(format!(
                    "no agent is named '{}' (use \"human\" for the humans)",
                    a.to
                )));
            }
        }
    };
    // A reply to a human lands in the thread the task answers unless another is named.
    let thread_id = a
        .thread_id
        .or_else(|| to_agent.is_none().then(|| env.thread_id.clone()).flatten());
    let message = AgentMessage {
        id: uuid::Uuid::now_v7().to_string(),
        thread_id,
        new_thread_id: uuid::Uuid::now_v7().to_string(),
        from_agent_id: env.agent.id.clone(),
        to_agent_id: to_agent,
        body: body.to_string(),
    };
    let audit = scope
        .audit("message.created", Target::new("message", &message.id))
        .with_details(json!({ "to_agent_id": message.to_agent_id, "to_human": message.to_agent_id.is_none() }));
    let stored = match scope.store.post_agent_message(&message, &audit) {
        Ok(m) => m,
        Err(crate::store::StoreError::NotFound) => return Err(refuse("no such thread")),
        Err(e) => return Err(e.into()),
    };
    scope.publish_value("message.created", &stored);
    Ok(ToolResult::ok(
        json!({ "message_id": stored.id, "thread_id": stored.thread_id }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    unread_only: Option<bool>,
}

fn read_messages(env: &ToolEnv, input: &Value) -> Result<ToolResult, ToolFailure> {
    let a: ReadArgs = args(input)?;
    let messages =
        env.scope
            .store
            .take_messages(&env.agent.id, a.unread_only.unwrap_or(true), 50)?;
    let items: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "id": m.id, "thread_id": m.thread_id, "from_agent_id": m.from_agent_id,
                "from_user_id": m.from_user_id, "body": m.body, "at": crate::domain::time::format_rfc3339(&m.created_at),
            })
        })
        .collect();
    Ok(ToolResult::ok(json!({ "messages": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostArgs {
    #[serde(rename = "type")]
    item_type: String,
    content: String,
}

fn post_board_item(env: &ToolEnv, input: &Value) -> Result<ToolResult, ToolFailure> {
    let a: PostArgs = args(input)?;
    let new: NewBoardItem = serde_json::from_value(json!({
        "type": a.item_type, "content": a.content, "author_agent": env.agent.id,
    }))
    .map_err(|e| refuse(format!("invalid arguments: {e}")))?;
    let item = services::board::create(&env.scope, new, String::new())?;
    Ok(ToolResult::ok(json!({ "id": item.id })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryArgs {
    #[serde(rename = "type")]
    item_type: Option<String>,
    since: Option<String>,
}

fn query_board(env: &ToolEnv, input: &Value) -> Result<ToolResult, ToolFailure> {
    let a: QueryArgs = args(input)?;
    let filter = BoardFilter::parse(
        a.item_type.as_deref(),
        a.since.as_deref(),
        None,
        Some(50),
        None,
    )
    .map_err(|e| refuse(format!("{}: {}", e.field, e.message)))?;
    let page = services::board::list(&env.scope, filter)?;
    Ok(ToolResult::ok(json!({ "items": page.items })))
}

fn list_agents(env: &ToolEnv) -> Result<ToolResult, ToolFailure> {
    let nodes = env.scope.store.org_nodes()?;
    let names: HashMap<&str, &str> = nodes
        .iter()
        .map(|n| (n.id.as_str(), n.name.as_str()))
        .collect();
    let agents: Vec<Value> = nodes
        .iter()
        .map(|n| {
            json!({
                "name": n.name, "display_name": n.display_name, "role": n.role,
                "department": n.department, "level": n.level, "status": n.status,
                "reports_to": n.reports_to.as_deref().and_then(|m| names.get(m)),
                "is_you": n.id == env.agent.id,
            })
        })
        .collect();
    Ok(ToolResult::ok(json!({ "agents": agents })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetArgs {
    task_id: String,
}

fn task_view(task: &Task) -> Value {
    json!({
        "id": task.id, "prompt": task.prompt, "context": task.context, "status": task.status,
        "priority": task.priority, "assignee_id": task.assignee_id, "parent_id": task.parent_id,
        "result": task.result, "status_reason": task.status_reason,
    })
}

fn get_task(env: &ToolEnv, input: &Value) -> Result<ToolResult, ToolFailure> {
    let a: GetArgs = args(input)?;
    let task = services::tasks::get(&env.scope, &a.task_id)?;
    let mut view = task_view(&task);
    let open = env.scope.store.open_children(&task.id)?;
    let done = env.scope.store.child_results(&task.id)?;
    view["subtasks"] = json!({
        "open": open.iter().map(task_view).collect::<Vec<_>>(),
        "finished": done,
    });
    Ok(ToolResult::ok(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateArgs {
    task_id: String,
    status: Option<TaskStatus>,
    priority: Option<Priority>,
    context: Option<String>,
}

fn update_task(env: &ToolEnv, input: &Value) -> Result<ToolResult, ToolFailure> {
    let a: UpdateArgs = args(input)?;
    let task = services::tasks::get(&env.scope, &a.task_id)?;
    let own = task.id == env.task.id;
    let delegated = task.delegator_id.as_deref() == Some(env.agent.id.as_str());
    if !own && !delegated {
        return Err(refuse(
            "you may only update your current task or tasks you delegated",
        ));
    }
    if own && a.status.is_some() {
        return Err(refuse(
            "finish your own task with finish_task instead of changing its status",
        ));
    }
    if a.status.is_none() && a.priority.is_none() && a.context.is_none() {
        return Err(refuse("set at least one of status, priority, context"));
    }
    let patch = TaskPatch {
        status: a.status,
        priority: a.priority,
        context: a.context.map(Some),
        ..TaskPatch::default()
    };
    let task = services::tasks::update(&env.scope, &task.id, patch)?;
    Ok(ToolResult::ok(task_view(&task)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema_and_a_description() {
        let all: HashSet<String> = TOOL_NAMES.iter().map(|s| s.to_string()).collect();
        let specs = specs(&all);
        assert_eq!(specs.len(), 9);
        for s in specs.iter() {
            assert_eq!(s.input_schema["type"], "object", "{}", s.name);
            assert!(!s.description.is_empty());
        }
        let only: HashSet<String> = ["finish_task".to_string()].into();
        assert_eq!(specs_names(&only), vec!["finish_task"]);
    }

    fn specs_names(enabled: &HashSet<String>) -> Vec<String> {
        specs(enabled).iter().map(|s| s.name.clone()).collect()
    }

    #[test]
    fn finish_takes_only_the_three_statuses() {
        let ok = finish(&json!({"status": "completed", "result": "done"}))
            .ok()
            .unwrap();
        assert_eq!(ok.finish, Some((RunOutcome::Completed, "done".into())));
        assert!(finish(&json!({"status": "done", "result": "x"})).is_err());
        assert!(finish(&json!({"status": "completed"})).is_err());
        assert!(finish(&json!("completed")).is_err());
    }
}
