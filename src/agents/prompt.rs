//! What an agent is told at the start of a run: who it is and where it sits (system prompt),
//! and the work (the first user message): the task, its parent's context, unread messages,
//! the results of finished subtasks and recent board items.

use std::fmt::Write;

use crate::domain::agent::{Agent, OrgNode};
use crate::domain::board::BoardItem;
use crate::domain::chat::Message;
use crate::domain::run::ChildResult;
use crate::domain::task::Task;

/// Everything the prompt is built from, read before the run's first call.
pub struct PromptInput<'a> {
    pub agent: &'a Agent,
    pub org: &'a [OrgNode],
    pub task: &'a Task,
    pub parent: Option<&'a Task>,
    pub messages: &'a [Message],
    pub children: &'a [ChildResult],
    pub board: &'a [BoardItem],
}

/// Longest text of one quoted item (a result, a message, a board item) in the prompt.
const MAX_ITEM_CHARS: usize = 4000;

fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_ITEM_CHARS) {
        Some((i, _)) => format!("{}… [truncated]", &text[..i]),
        None => text.to_string(),
    }
}

fn name_of<'a>(org: &'a [OrgNode], id: &str) -> Option<&'a OrgNode> {
    org.iter().find(|n| n.id == id)
}

/// The names of the agent's direct reports.
pub fn direct_reports(org: &[OrgNode], agent_id: &str) -> Vec<String> {
    org.iter()
        .filter(|n| n.reports_to.as_deref() == Some(agent_id))
        .map(|n| n.name.to_string())
        .collect()
}

pub fn system_prompt(input: &PromptInput<'_>) -> String {
    let a = input.agent;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "You are {} (agent name `{}`), {} in {}, level {}.",
        a.display_name,
        a.name,
        if a.role.is_empty() {
            "an agent"
        } else {
            &a.role
        },
        if a.department.is_empty() {
            "the organisation"
        } else {
            &a.department
        },
        a.level.as_str()
    );
    if !a.personality.trim().is_empty() {
        let _ = writeln!(s, "\n{}", a.personality.trim());
    }
    s.push_str("\n## Your position\n");
    match a.reports_to.as_deref().and_then(|m| name_of(input.org, m)) {
        Some(m) => {
            let _ = writeln!(
                s,
                "- You report to {} (`{}`, {}).",
                m.display_name, m.name, m.role
            );
            let peers: Vec<String> = input
                .org
                .iter()
                .filter(|n| n.reports_to.as_deref() == Some(m.id.as_str()) && n.id != a.id)
                .map(|n| format!("`{}` ({})", n.name, n.role))
                .collect();
            if !peers.is_empty() {
                let _ = writeln!(s, "- Your peers: {}.", peers.join(", "));
            }
        }
        None => s.push_str("- You report to no one: you lead the organisation.\n"),
    }
    let reports: Vec<String> = input
        .org
        .iter()
        .filter(|n| n.reports_to.as_deref() == Some(a.id.as_str()))
        .map(|n| format!("`{}` ({})", n.name, n.role))
        .collect();
    if reports.is_empty() {
        s.push_str("- You have no reports: do the work yourself.\n");
    } else {
        let _ = writeln!(s, "- Your direct reports: {}.", reports.join(", "));
    }
    s.push_str(
        "\n## How you work\n\
         You act only through the platform tools. When the task is done, call `finish_task` \
         with status `completed` and the result (or `failed`/`blocked` with the reason). \
         To hand work to your reports, call `delegate_task` once per subtask and then end your \
         turn without `finish_task`: you are woken with their results when all are done. \
         To answer a human, use `send_message` with `to: \"human\"`.\n",
    );
    s
}

pub fn task_message(input: &PromptInput<'_>) -> String {
    let t = input.task;
    let mut s = String::new();
    let _ = writeln!(s, "# Your task (id {})\n\n{}", t.id, t.prompt.trim());
    if let Some(context) = t.context.as_deref().filter(|c| !c.trim().is_empty()) {
        let _ = writeln!(s, "\n## Context\n{}", clip(context.trim()));
    }
    let _ = writeln!(
        s,
        "\nPriority: {}.",
        format!("{:?}", t.priority).to_lowercase()
    );
    if let Some(parent) = input.parent {
        let _ = writeln!(
            s,
            "\n## This is part of a larger task\n{}",
            clip(parent.prompt.trim())
        );
    }
    if !input.children.is_empty() {
        s.push_str("\n## Results of your subtasks\n");
        for c in input.children {
            let _ = writeln!(
                s,
                "- `{}` ({}) — {}: {}\n  Result: {}",
                c.assignee.as_deref().unwrap_or("unassigned"),
                c.task_id,
                c.status,
                clip(c.prompt.lines().next().unwrap_or("")),
                clip(c.result.as_deref().unwrap_or("(no result)"))
            );
        }
        s.push_str("\nAll your subtasks are done: combine their results and finish your task.\n");
    }
    if !input.messages.is_empty() {
        s.push_str("\n## Unread messages\n");
        for m in input.messages {
            let from = match (&m.from_agent_id, &m.from_user_id) {
                (Some(a), _) => name_of(input.org, a)
                    .map_or("an agent".to_string(), |n| format!("`{}`", n.name)),
                (None, Some(_)) => "a human".to_string(),
                (None, None) => "the platform".to_string(),
            };
            let _ = writeln!(
                s,
                "- From {from} (thread {}): {}",
                m.thread_id,
                clip(&m.body)
            );
        }
    }
    if !input.board.is_empty() {
        s.push_str("\n## Recent board items\n");
        for b in input.board {
            let _ = writeln!(s, "- [{}] {}", b.item_type.as_str(), clip(&b.content));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::agent::{AgentName, AgentStatus, Level, UsdMicros};
    use crate::domain::task::{Priority, TaskStatus};

    fn node(id: &str, name: &str, manager: Option<&str>) -> OrgNode {
        OrgNode {
            id: id.into(),
            name: AgentName::parse(name).unwrap(),
            display_name: name.to_uppercase(),
            role: format!("{name} role"),
            department: String::new(),
            level: Level::Ic,
            status: AgentStatus::Idle,
            reports_to: manager.map(str::to_string),
            reports: vec![],
        }
    }

    fn agent(id: &str, name: &str, manager: Option<&str>) -> Agent {
        let now = crate::domain::now();
        Agent {
            id: id.into(),
            name: AgentName::parse(name).unwrap(),
            display_name: name.to_uppercase(),
            role: "Lead".into(),
            department: "Eng".into(),
            level: Level::Lead,
            personality: "Be terse.".into(),
            status: AgentStatus::Running,
            reports_to: manager.map(str::to_string),
            provider_id: None,
            model: None,
            monthly_budget_usd: None,
            spent_this_month_usd: UsdMicros::default(),
            avatar_color: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn task(prompt: &str) -> Task {
        let now = crate::domain::now();
        Task {
            id: "t1".into(),
            prompt: prompt.into(),
            context: Some("ctx".into()),
            priority: Priority::High,
            tags: vec![],
            status: TaskStatus::Running,
            cancel_requested: false,
            assignee_id: Some("b".into()),
            delegator_id: None,
            parent_id: None,
            result: None,
            status_reason: None,
            error_code: None,
            cost_usd: 0.0,
            input_tokens: 0,
            output_tokens: 0,
            num_turns: 0,
            duration_ms: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            completed_at: None,
            run_attempt: 1,
            depth: 0,
        }
    }

    #[test]
    fn the_prompt_places_the_agent_in_the_chart_and_carries_the_work() {
        let org = [
            node("a", "ceo", None),
            node("b", "lead", Some("a")),
            node("c", "peer", Some("a")),
            node("d", "dev", Some("b")),
        ];
        let me = agent("b", "lead", Some("a"));
        let t = task("Ship the release");
        let children = [ChildResult {
            task_id: "t2".into(),
            assignee: Some("dev".into()),
            status: TaskStatus::Completed,
            prompt: "Build it".into(),
            result: Some("built".into()),
        }];
        let input = PromptInput {
            agent: &me,
            org: &org,
            task: &t,
            parent: None,
            messages: &[],
            children: &children,
            board: &[],
        };
        let system = system_prompt(&input);
        assert!(system.contains("agent name `lead`"), "{system}");
        assert!(system.contains("You report to CEO"), "{system}");
        assert!(system.contains("`peer`"), "{system}");
        assert!(system.contains("`dev`"), "{system}");
        assert!(system.contains("Be terse."));
        let first = task_message(&input);
        assert!(
            first.contains("Ship the release") && first.contains("ctx"),
            "{first}"
        );
        assert!(first.contains("Priority: high"), "{first}");
        assert!(first.contains("Result: built"), "{first}");
        assert_eq!(direct_reports(&org, "a"), vec!["lead", "peer"]);
    }

    #[test]
    fn long_items_are_clipped_on_a_character_boundary() {
        let long = "é".repeat(MAX_ITEM_CHARS + 10);
        let clipped = clip(&long);
        assert!(clipped.ends_with("… [truncated]"));
        assert_eq!(
            clipped.chars().filter(|c| *c == 'é').count(),
            MAX_ITEM_CHARS
        );
    }
}
