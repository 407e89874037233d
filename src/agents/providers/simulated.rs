//! The `simulated` provider: a deterministic model with no network, for the demo and tests.
//! A manager delegates one subtask to each direct report and, woken with their results,
//! finishes with a summary of them; an agent without reports finishes with a generated
//! result; a chat reply task answers the human in its thread. `config.latency_ms` adds a
//! think time to every turn. Token counts are estimated (4 characters a token) so usage and
//! budgets behave as with a real model.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::json;

use super::{
    Block, Delta, DeltaSink, ModelClient, ModelReply, ModelRequest, ProviderError, Role,
    StopReason, ToolInput, Usage,
};
use crate::domain::provider::ProviderAccess;

pub struct SimulatedClient {
    latency: Duration,
}

impl SimulatedClient {
    pub fn new(access: &ProviderAccess) -> Self {
        let latency_ms = access
            .config
            .get("latency_ms")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        Self {
            latency: Duration::from_millis(latency_ms),
        }
    }
}

/// Marks the prompt of a chat reply task (see `domain::chat::reply_prompt`).
const CHAT_MARK: &str = "A human sent you this chat message.";

fn tool(n: usize, name: &str, input: serde_json::Value) -> Block {
    Block::ToolUse {
        id: format!("sim_{n}_{name}"),
        name: name.to_string(),
        input: ToolInput::Json(input),
    }
}

fn first_line(text: &str) -> &str {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// The next turn of the conversation `request` holds.
pub fn respond(request: &ModelRequest) -> Vec<Block> {
    let facts = &request.facts;
    let turn = request
        .messages
        .iter()
        .filter(|m| m.role == Role::Assistant)
        .count();
    let offered = |name: &str| request.tools.iter().any(|t| t.name == name);
    if turn > 0 {
        // After delegating: wait for the subtasks (end the turn without finishing).
        let delegated = request.messages.iter().any(|m| {
            m.content.iter().any(|b| {
                matches!(b, Block::ToolResult { tool_use_id, is_error: false, .. }
                    if tool_use_id.ends_with("delegate_task"))
            })
        });
        if delegated {
            return vec![Block::Text("Waiting for my reports' results.".into())];
        }
        // Delegation was refused or a tool failed: do the work myself.
        return vec![
            Block::Text("Doing this myself.".into()),
            tool(
                0,
                "finish_task",
                json!({"status": "completed", "result": format!("{} did it alone: {}", facts.agent_name, first_line(&facts.task_prompt))}),
            ),
        ];
    }
    if let Some(body) = facts.task_prompt.strip_prefix(CHAT_MARK) {
        let body = body
            .trim_start()
            .trim_start_matches(|c: char| c != '-')
            .trim_start_matches('-');
        let reply = format!(
            "Hi, this is {}. I read your message: \"{}\"",
            facts.agent_name,
            first_line(body)
        );
        let mut blocks = vec![Block::Text(reply.clone())];
        if offered("send_message") {
            blocks.push(tool(
                1,
                "send_message",
                json!({"to": "human", "body": reply}),
            ));
        }
        blocks.push(tool(
            2,
            "finish_task",
            json!({"status": "completed", "result": "replied in the chat"}),
        ));
        return blocks;
    }
    if !facts.child_results.is_empty() {
        let summary: Vec<String> = facts
            .child_results
            .iter()
            .map(|(who, result)| format!("{who}: {result}"))
            .collect();
        let result = format!(
            "{} combined the results of {} subtasks. {}",
            facts.agent_name,
            summary.len(),
            summary.join(" | ")
        );
        return vec![
            Block::Text("All my reports are done.".into()),
            tool(
                0,
                "finish_task",
                json!({"status": "completed", "result": result}),
            ),
        ];
    }
    if !facts.direct_reports.is_empty() && offered("delegate_task") {
        let mut blocks = vec![Block::Text(format!(
            "Splitting the work between {} reports.",
            facts.direct_reports.len()
        ))];
        for (i, report) in facts.direct_reports.iter().enumerate() {
            blocks.push(tool(
                i,
                "delegate_task",
                json!({
                    "assignee": report,
                    "prompt": format!("Your part of: {}", first_line(&facts.task_prompt)),
                }),
            ));
        }
        return blocks;
    }
    vec![
        Block::Text("Working on it.".into()),
        tool(
            0,
            "finish_task",
            json!({"status": "completed", "result": format!("{} finished: {}", facts.agent_name, first_line(&facts.task_prompt))}),
        ),
    ]
}

fn tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

fn size(block: &Block) -> usize {
    match block {
        Block::Text(t) => t.len(),
        Block::ToolUse { input, .. } => match input {
            ToolInput::Json(v) => v.to_string().len(),
            ToolInput::Malformed { raw, .. } => raw.len(),
        },
        Block::ToolResult { content, .. } => content.len(),
    }
}

impl ModelClient for SimulatedClient {
    fn turn<'a>(
        &'a self,
        request: &'a ModelRequest,
        sink: DeltaSink<'a>,
    ) -> BoxFuture<'a, Result<ModelReply, ProviderError>> {
        Box::pin(async move {
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            let content = respond(request);
            for block in &content {
                if let Block::Text(t) = block {
                    sink(Delta::Text(t.clone()));
                }
            }
            let input_chars = request.system.len()
                + request
                    .messages
                    .iter()
                    .flat_map(|m| m.content.iter())
                    .map(size)
                    .sum::<usize>();
            let output_chars: usize = content.iter().map(size).sum();
            let stop = if content.iter().any(|b| matches!(b, Block::ToolUse { .. })) {
                StopReason::ToolUse
            } else {
                StopReason::EndTurn
            };
            Ok(ModelReply {
                model: request.model.clone(),
                content,
                stop,
                usage: Usage {
                    input_tokens: tokens(input_chars),
                    output_tokens: tokens(output_chars),
                    ..Usage::default()
                },
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::{Message, RunFacts, ToolSpec};
    use super::*;

    fn request(facts: RunFacts, messages: Vec<Message>) -> ModelRequest {
        let tools: Arc<[ToolSpec]> = crate::agents::tools::TOOL_NAMES
            .iter()
            .map(|n| ToolSpec {
                name: n.to_string(),
                description: String::new(),
                input_schema: json!({}),
            })
            .collect();
        ModelRequest {
            model: "simulated".into(),
            system: String::new(),
            messages,
            tools,
            max_tokens: 100,
            facts: Arc::new(facts),
        }
    }

    fn names(blocks: &[Block]) -> Vec<String> {
        blocks
            .iter()
            .filter_map(|b| match b {
                Block::ToolUse { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_manager_delegates_to_each_report_then_waits() {
        let facts = RunFacts {
            agent_name: "ceo".into(),
            direct_reports: vec!["cto".into(), "cmo".into()],
            task_prompt: "Plan the launch".into(),
            child_results: vec![],
        };
        let first = respond(&request(facts.clone(), vec![Message::user_text("task")]));
        assert_eq!(names(&first), vec!["delegate_task", "delegate_task"]);
        let results = Message {
            role: Role::User,
            content: vec![Block::ToolResult {
                tool_use_id: "sim_0_delegate_task".into(),
                content: "{}".into(),
                is_error: false,
            }],
        };
        let assistant = Message {
            role: Role::Assistant,
            content: first,
        };
        let second = respond(&request(
            facts,
            vec![Message::user_text("task"), assistant, results],
        ));
        assert!(names(&second).is_empty(), "waits without finishing");
    }

    #[test]
    fn woken_with_results_it_finishes_with_them_and_an_ic_finishes_at_once() {
        let woken = respond(&request(
            RunFacts {
                agent_name: "ceo".into(),
                direct_reports: vec!["cto".into()],
                task_prompt: "Plan".into(),
                child_results: vec![("cto".into(), "tech plan".into())],
            },
            vec![],
        ));
        assert_eq!(names(&woken), vec!["finish_task"]);
        assert!(format!("{woken:?}").contains("tech plan"));
        let ic = respond(&request(
            RunFacts {
                agent_name: "dev".into(),
                task_prompt: "Fix the bug".into(),
                ..RunFacts::default()
            },
            vec![],
        ));
        assert_eq!(names(&ic), vec!["finish_task"]);
    }

    #[test]
    fn a_chat_task_answers_the_human() {
        let blocks = respond(&request(
            RunFacts {
                agent_name: "ceo".into(),
                task_prompt: crate::domain::chat::reply_prompt("How are we doing?"),
                ..RunFacts::default()
            },
            vec![],
        ));
        assert_eq!(names(&blocks), vec!["send_message", "finish_task"]);
        assert!(format!("{blocks:?}").contains("How are we doing?"));
    }
}
