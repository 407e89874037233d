//! Agent runs, usage and budgets: the repository interface (SQL lives in the backend, e.g.
//! `sqlite/runs.rs`). Each method is one transaction, so a run's start, its charges and its
//! end (with the parent it wakes) are each all-or-nothing.

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::audit::AuditEntry;
use crate::domain::chat::Message;
use crate::domain::run::{Budgets, Charge, ChildResult, NewRun, RunEnd, RunEnded, RunStart};
use crate::domain::task::{NewTaskEvent, Task};

/// How `GET /api/usage` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsageGroup {
    Day,
    Agent,
    Model,
}

/// One group of usage records.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct UsageBucket {
    /// The day (`YYYY-MM-DD`), the agent id or the model, per the grouping.
    pub key: Option<String>,
    /// The agent's name when grouped by agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_usd: f64,
    /// Calls whose model had no price (their cost counts as 0).
    pub unpriced_calls: i64,
}

/// A chat message an agent sends (the `send_message` tool): to another agent, or to the
/// humans of the workspace when `to_agent_id` is `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentMessage {
    pub id: String,
    /// An existing thread, or `None` to start one with id `new_thread_id`.
    pub thread_id: Option<String>,
    pub new_thread_id: String,
    pub from_agent_id: String,
    pub to_agent_id: Option<String>,
    pub body: String,
}

/// What a run reads before its first call, in one go.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub workspace: crate::domain::workspace::Workspace,
    pub org: Vec<crate::domain::agent::OrgNode>,
    pub parent: Option<Task>,
    pub children: Vec<ChildResult>,
    /// Unread messages to the agent, oldest first (not marked read: see `take_messages`).
    pub unread: Vec<Message>,
    /// The newest board items.
    pub board: Vec<crate::domain::board::BoardItem>,
    pub tool_permissions: Vec<crate::domain::tool_permission::AgentToolPermission>,
    pub budgets: Budgets,
}

/// What a charge reads back for the next call's check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charged {
    pub budgets: Budgets,
    /// Whether someone asked the task to stop.
    pub cancel_requested: bool,
}

/// Runs, usage and budgets of one tenant.
pub trait RunRepo {
    /// Starts attempt `run.attempt` of a task: when the task is still `pending` at that
    /// attempt (or `running` at it: an interrupted attempt, started over) and assigned to
    /// `run.agent_id`, and the agent is not paused, the task and the agent become `running`
    /// and the run row is written. Otherwise nothing changes.
    fn start_run(&self, run: &NewRun, audit: &AuditEntry) -> Result<RunStart, StoreError>;
    /// Whether the agent can run: it exists, is not paused, and has a provider (its own or the
    /// workspace's default).
    fn agent_runnable(&self, agent_id: &str) -> Result<bool, StoreError>;
    /// What a run of `task` by `agent_id` reads before its first call (one connection):
    /// workspace, org chart, parent, finished subtasks, up to `messages` unread messages, up
    /// to `board` board items, tool permissions and budgets.
    fn run_context(
        &self,
        task: &Task,
        agent_id: &str,
        messages: u32,
        board: u32,
    ) -> Result<RunContext, StoreError>;
    /// Records a model call's usage and charges it to the run, task, agent and tenant;
    /// returns the budgets after the charge.
    /// `events` (the turn's steps) are appended to the task's log with it. Reads back, in the
    /// same transaction, what the next call is checked against.
    fn charge(
        &self,
        charge: &Charge,
        at: DateTime<Utc>,
        events: &[NewTaskEvent],
    ) -> Result<Charged, StoreError>;
    /// Ends a run: the task's status and result, the agent back to idle (or paused), the run
    /// row closed, and the tasks this makes runnable (the parent of a finished subtask whose
    /// siblings are all done; the task itself when it would wait for subtasks that are all
    /// done) put back to `pending`.
    fn end_run(&self, end: &RunEnd, audit: &AuditEntry) -> Result<RunEnded, StoreError>;
    /// The finished subtasks of a task, oldest first.
    fn child_results(&self, task_id: &str) -> Result<Vec<ChildResult>, StoreError>;
    /// Subtasks of `task_id` not finished yet.
    fn open_children(&self, task_id: &str) -> Result<Vec<Task>, StoreError>;
    /// Tasks that should have a run job: pending with a runnable assignee, and
    /// running (a run job may have been lost with a crash); at most `limit`, oldest first.
    fn runnable_tasks(&self, limit: u32) -> Result<Vec<Task>, StoreError>;
    /// Messages to an agent, oldest first (unread only if asked), marked read.
    fn take_messages(
        &self,
        agent_id: &str,
        unread_only: bool,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// Stores an agent's message (an unknown `thread_id` is [`StoreError::NotFound`]).
    fn post_agent_message(
        &self,
        message: &AgentMessage,
        audit: &AuditEntry,
    ) -> Result<Message, StoreError>;
    /// Usage grouped, within `[from, to)`.
    fn usage(
        &self,
        group: UsageGroup,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<UsageBucket>, StoreError>;
}
