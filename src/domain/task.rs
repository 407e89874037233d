//! Tasks: the work items agents do, their validation, and the task state machine.
//!
//! # States and who moves a task between them
//!
//! ```text
//! who      from                        to
//! runtime  pending                     running
//! runtime  running                     review | completed | failed | blocked | cancelled
//!                                      | pending (its lease was lost)
//! human    pending                     blocked | review                 (PATCH status)
//! human    blocked                     pending | review                 (PATCH status)
//! human    review                      completed | failed | pending     (PATCH status)
//! cancel   pending | blocked | review  cancelled, at once
//! cancel   running                     running with cancel_requested (the runtime stops it)
//! retry    failed | cancelled          pending (result and cancel flag cleared)
//! ```
//!
//! Only the runtime ever sets `running` (no human route can). Humans move a task with
//! `PATCH status` along [`human_targets`], cancel it with [`cancel`] and retry it with
//! [`retry`]. Everything else is refused with the current status and the allowed targets.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Invalid;
use super::text::{self, MAX_LONG_BYTES};

mod query;

pub use query::{
    BOARD_DEFAULT_LIMIT, BOARD_MAX_LIMIT, Board, BoardColumnItems, MAX_SEARCH_CHARS,
    MAX_SEARCH_TERMS, SearchText, TaskFilter, parse_statuses,
};

/// Most tags on one task.
pub const MAX_TAGS: usize = 20;
/// Longest tag (characters).
pub const MAX_TAG_CHARS: usize = 64;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Pending,
    Running,
    Review,
    Completed,
    Failed,
    Blocked,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 7] = [
        TaskStatus::Pending,
        TaskStatus::Running,
        TaskStatus::Review,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Blocked,
        TaskStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Review => "review",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Blocked => "blocked",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the task's work is over (it only moves again by [`retry`]).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }

    /// The kanban column the task shows in.
    pub fn column(self) -> BoardColumn {
        match self {
            TaskStatus::Pending | TaskStatus::Blocked => BoardColumn::Backlog,
            TaskStatus::Running => BoardColumn::InProgress,
            TaskStatus::Review => BoardColumn::Review,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled => BoardColumn::Done,
        }
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kanban columns of `GET /api/tasks/board`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardColumn {
    /// pending and blocked
    Backlog,
    /// running
    InProgress,
    Review,
    /// completed, failed and cancelled
    Done,
}

/// How urgent a task is. Stored as an integer (higher is more urgent) so the queue can order
/// by it: low = -1, normal = 0 (the default), high = 1, urgent = 2.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub fn as_i64(self) -> i64 {
        match self {
            Priority::Low => -1,
            Priority::Normal => 0,
            Priority::High => 1,
            Priority::Urgent => 2,
        }
    }

    /// From the stored integer; out-of-range values (written by hand) clamp to the ends.
    pub fn from_i64(n: i64) -> Self {
        match n {
            i64::MIN..=-1 => Priority::Low,
            0 => Priority::Normal,
            1 => Priority::High,
            _ => Priority::Urgent,
        }
    }

    /// Its name, as JSON spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "low" => Some(Priority::Low),
            "normal" => Some(Priority::Normal),
            "high" => Some(Priority::High),
            "urgent" => Some(Priority::Urgent),
            _ => None,
        }
    }
}

/// A task as stored and as sent.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Task {
    pub id: String,
    pub prompt: String,
    /// Free text the assignee gets with the prompt (e.g. JSON naming the chat thread).
    pub context: Option<String>,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub status: TaskStatus,
    /// Set when a running task was asked to stop; the runtime ends it as `cancelled`.
    pub cancel_requested: bool,
    pub assignee_id: Option<String>,
    /// The agent that delegated this task (null when a human created it).
    pub delegator_id: Option<String>,
    pub parent_id: Option<String>,
    pub result: Option<String>,
    /// Why the task is in its status, e.g. "waiting for 2 subtasks" (set by the runtime).
    pub status_reason: Option<String>,
    /// A machine-readable reason of a failed run, e.g. `BUDGET_EXCEEDED`, `MAX_TURNS`,
    /// `PROVIDER_ERROR`, `RUN_FAILED`.
    pub error_code: Option<String>,
    /// What the runs of this task cost, in US dollars.
    pub cost_usd: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub num_turns: i64,
    pub duration_ms: Option<i64>,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    #[serde(serialize_with = "super::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "super::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<DateTime<Utc>>,
    /// Grows each time the task becomes runnable; names the run job of that attempt.
    #[serde(skip)]
    pub run_attempt: i64,
    /// Delegation depth (0 for a task a human created).
    #[serde(skip)]
    pub depth: i64,
}

/// A task as lists send it: the JSON [`Task`] serialises to, written by the store straight
/// from the task's row (see `store::sqlite::task_json`), and the task's place in lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTask {
    json: String,
    key: String,
}

impl ListedTask {
    /// `json` is the task's JSON object; `key` its list key, `created_at|id` (the cursor key).
    pub fn new(json: String, key: String) -> Self {
        Self { json, key }
    }

    /// The cursor key: `created_at|id`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Creation time and id: lists are in this order, newest first.
    pub fn order(&self) -> (&str, &str) {
        self.key.split_once('|').unwrap_or((&self.key, ""))
    }

    /// The task's JSON object.
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// `POST /api/tasks`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    pub prompt: String,
    pub context: Option<String>,
    /// `normal` when left out.
    pub priority: Option<Priority>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// An agent's id or name. Left out: the workspace's `default_assignee_id`, else the root
    /// of the org chart (the oldest agent reporting to no one), else unassigned.
    #[serde(alias = "assignee_id")]
    pub assignee: Option<String>,
    /// The task this one is part of.
    pub parent_id: Option<String>,
}

impl NewTask {
    pub fn validate(mut self) -> Result<Self, Invalid> {
        self.prompt = text::long_required("prompt", &self.prompt, MAX_LONG_BYTES)?;
        if let Some(context) = &self.context {
            self.context = Some(text::long("context", context, MAX_LONG_BYTES)?);
        }
        self.tags = tags(&self.tags)?;
        if let Some(assignee) = &self.assignee {
            text::short_required("assignee", assignee, text::MAX_SHORT_CHARS)?;
        }
        Ok(self)
    }
}

/// `PATCH /api/tasks/{id}`: fields left out stay as they are; `null` clears `context` or
/// unassigns. `status` moves the task along the human transitions (see [`human_targets`]).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    pub prompt: Option<String>,
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub context: Option<Option<String>>,
    pub priority: Option<Priority>,
    pub tags: Option<Vec<String>>,
    /// An agent's id or name; `null` unassigns.
    #[serde(
        default,
        alias = "assignee_id",
        deserialize_with = "super::patch::nullable"
    )]
    #[schema(value_type = Option<String>, nullable)]
    pub assignee: Option<Option<String>>,
    pub status: Option<TaskStatus>,
}

impl TaskPatch {
    pub fn validate(mut self) -> Result<Self, Invalid> {
        if let Some(prompt) = &self.prompt {
            self.prompt = Some(text::long_required("prompt", prompt, MAX_LONG_BYTES)?);
        }
        if let Some(Some(context)) = &self.context {
            self.context = Some(Some(text::long("context", context, MAX_LONG_BYTES)?));
        }
        if let Some(t) = &self.tags {
            self.tags = Some(tags(t)?);
        }
        if let Some(Some(assignee)) = &self.assignee {
            text::short_required("assignee", assignee, text::MAX_SHORT_CHARS)?;
        }
        Ok(self)
    }

    /// Whether the patch changes what the assignee is asked to do (or who does it): refused
    /// while the task runs, since the run in progress would not see it.
    pub fn changes_the_work(&self) -> bool {
        self.prompt.is_some() || self.context.is_some() || self.assignee.is_some()
    }

    /// The names of the fields set (what the audit entry and the event log record).
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("prompt", self.prompt.is_some()),
            ("context", self.context.is_some()),
            ("priority", self.priority.is_some()),
            ("tags", self.tags.is_some()),
            ("assignee", self.assignee.is_some()),
            ("status", self.status.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// Tags: trimmed, non-empty, single-line, at most [`MAX_TAGS`] of at most [`MAX_TAG_CHARS`]
/// characters; duplicates are dropped (first one kept).
pub fn tags(tags: &[String]) -> Result<Vec<String>, Invalid> {
    if tags.len() > MAX_TAGS {
        return Err(Invalid::new(
            "tags",
            format!("must be at most {MAX_TAGS} tags"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = text::short_required("tags", tag.trim(), MAX_TAG_CHARS)?;
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

/// One entry of a task's history (`GET /api/tasks/{id}/events`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TaskEvent {
    pub id: String,
    pub task_id: String,
    /// `created`, `updated`, `status_changed`, `assigned`, `cancel_requested`, `cancelled`,
    /// `retried` (the runtime adds its own, e.g. `started`, `finished`).
    pub kind: String,
    /// Kind-specific facts, e.g. `{"from": "pending", "to": "blocked"}`, and who acted
    /// (`actor: {type, id}`).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

/// A task event about to be recorded (with the change it describes).
#[derive(Debug, Clone, PartialEq)]
pub struct NewTaskEvent {
    pub kind: &'static str,
    pub data: serde_json::Value,
}

/// The statuses a human may move a task to from `from` with `PATCH status`:
/// pending ↔ blocked, pending/blocked → review, review → completed | failed | pending (send
/// back for rework). `running` is never a target (only the runtime starts work); cancelling
/// and retrying have their own routes.
pub fn human_targets(from: TaskStatus) -> &'static [TaskStatus] {
    use TaskStatus::*;
    match from {
        Pending => &[Blocked, Review],
        Blocked => &[Pending, Review],
        Review => &[Completed, Failed, Pending],
        Running | Completed | Failed | Cancelled => &[],
    }
}

/// The statuses the runtime may move a task to from `from`: it starts pending work and ends
/// running work (a lost lease puts a running task back to pending).
pub fn runtime_targets(from: TaskStatus) -> &'static [TaskStatus] {
    use TaskStatus::*;
    match from {
        Pending => &[Running],
        Running => &[Review, Completed, Failed, Blocked, Cancelled, Pending],
        _ => &[],
    }
}

/// A refused transition: the current status and where the task could go instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IllegalTransition {
    pub from: TaskStatus,
    pub to: TaskStatus,
    pub allowed: &'static [TaskStatus],
}

impl IllegalTransition {
    pub fn message(&self) -> String {
        let allowed: Vec<&str> = self.allowed.iter().map(|s| s.as_str()).collect();
        let mut message = if allowed.is_empty() {
            format!(
                "a {} task cannot be moved to {} (it cannot be moved by hand at all)",
                self.from, self.to
            )
        } else {
            format!(
                "a {} task cannot be moved to {}; allowed: {}",
                self.from,
                self.to,
                allowed.join(", ")
            )
        };
        if self.to == TaskStatus::Cancelled && cancel(self.from).is_ok() {
            message.push_str("; cancel it with POST /api/tasks/{id}/cancel");
        } else if self.to == TaskStatus::Pending && retry(self.from).is_ok() {
            message.push_str("; retry it with POST /api/tasks/{id}/retry");
        }
        message
    }
}

/// Checks a human `PATCH status` from `from` to `to`. Moving to the current status is a no-op
/// and allowed.
pub fn human_move(from: TaskStatus, to: TaskStatus) -> Result<(), IllegalTransition> {
    if from == to || human_targets(from).contains(&to) {
        Ok(())
    } else {
        Err(IllegalTransition {
            from,
            to,
            allowed: human_targets(from),
        })
    }
}

/// What cancelling a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancellation {
    /// The task had not started (or waits for review): it is cancelled now.
    Cancelled,
    /// The task is running: the runtime is asked to stop it; it stays `running` until then.
    Requested,
}

/// Cancelling: pending, blocked and review tasks are cancelled at once; a running task gets
/// `cancel_requested`. A finished task cannot be cancelled.
pub fn cancel(from: TaskStatus) -> Result<Cancellation, IllegalTransition> {
    use TaskStatus::*;
    match from {
        Pending | Blocked | Review => Ok(Cancellation::Cancelled),
        Running => Ok(Cancellation::Requested),
        Completed | Failed | Cancelled => Err(IllegalTransition {
            from,
            to: Cancelled,
            allowed: human_targets(from),
        }),
    }
}

/// Retrying: a failed or cancelled task goes back to pending (its result and cancel flag are
/// cleared; costs already spent stay).
pub fn retry(from: TaskStatus) -> Result<(), IllegalTransition> {
    match from {
        TaskStatus::Failed | TaskStatus::Cancelled => Ok(()),
        _ => Err(IllegalTransition {
            from,
            to: TaskStatus::Pending,
            allowed: human_targets(from),
        }),
    }
}

/// Statuses from which a task may be deleted: any but `running` (stop it first).
pub fn may_delete(status: TaskStatus) -> bool {
    status != TaskStatus::Running
}

#[cfg(test)]
mod tests {
    use super::TaskStatus::*;
    use super::*;

    #[test]
    fn humans_move_tasks_only_along_the_documented_edges() {
        let legal = [
            (Pending, Blocked),
            (Pending, Review),
            (Blocked, Pending),
            (Blocked, Review),
            (Review, Completed),
            (Review, Failed),
            (Review, Pending),
        ];
        for from in TaskStatus::ALL {
            for to in TaskStatus::ALL {
                let expected = from == to || legal.contains(&(from, to));
                assert_eq!(human_move(from, to).is_ok(), expected, "{from} → {to}");
            }
        }
    }

    #[test]
    fn no_human_move_ever_starts_a_task() {
        for from in TaskStatus::ALL {
            assert!(!human_targets(from).contains(&Running), "{from}");
        }
        let err = human_move(Pending, Running).unwrap_err();
        assert_eq!(err.allowed, &[Blocked, Review]);
        assert!(err.message().contains("allowed: blocked, review"));
        let hint = human_move(Pending, Cancelled).unwrap_err().message();
        assert!(
            hint.ends_with("cancel it with POST /api/tasks/{id}/cancel"),
            "{hint}"
        );
        let hint = human_move(Failed, Pending).unwrap_err().message();
        assert!(
            hint.ends_with("retry it with POST /api/tasks/{id}/retry"),
            "{hint}"
        );
    }

    #[test]
    fn cancelling_stops_waiting_work_now_and_asks_running_work_to_stop() {
        assert_eq!(cancel(Pending), Ok(Cancellation::Cancelled));
        assert_eq!(cancel(Blocked), Ok(Cancellation::Cancelled));
        assert_eq!(cancel(Review), Ok(Cancellation::Cancelled));
        assert_eq!(cancel(Running), Ok(Cancellation::Requested));
        for finished in [Completed, Failed, Cancelled] {
            assert!(cancel(finished).is_err(), "{finished}");
        }
    }

    #[test]
    fn only_failed_or_cancelled_tasks_are_retried() {
        for from in TaskStatus::ALL {
            assert_eq!(retry(from).is_ok(), matches!(from, Failed | Cancelled));
        }
    }

    #[test]
    fn the_runtime_starts_pending_work_and_ends_running_work() {
        assert_eq!(runtime_targets(Pending), &[Running]);
        assert!(runtime_targets(Running).contains(&Completed));
        assert!(runtime_targets(Completed).is_empty());
    }

    #[test]
    fn statuses_map_to_board_columns_and_round_trip() {
        for s in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(Blocked.column(), BoardColumn::Backlog);
        assert_eq!(Cancelled.column(), BoardColumn::Done);
        assert!(!may_delete(Running));
        assert!(may_delete(Review));
    }

    #[test]
    fn priorities_round_trip_through_their_stored_integers() {
        for p in [
            Priority::Low,
            Priority::Normal,
            Priority::High,
            Priority::Urgent,
        ] {
            assert_eq!(Priority::from_i64(p.as_i64()), p);
        }
        assert_eq!(Priority::from_i64(99), Priority::Urgent);
        assert!(Priority::parse("critical").is_none());
    }

    #[test]
    fn tags_are_trimmed_deduplicated_and_limited() {
        let t = tags(&[" a ".into(), "b".into(), "a".into()]).unwrap();
        assert_eq!(t, vec!["a", "b"]);
        assert_eq!(tags(&["".into()]).unwrap_err().field, "tags");
        assert_eq!(tags(&["x".repeat(65)]).unwrap_err().field, "tags");
        let many: Vec<String> = (0..21).map(|i| i.to_string()).collect();
        assert_eq!(tags(&many).unwrap_err().field, "tags");
    }

    #[test]
    fn a_new_task_needs_a_prompt_within_the_limit() {
        let task = |json: &str| {
            serde_json::from_str::<NewTask>(json)
                .unwrap()
                .validate()
                .map_err(|e| e.field)
        };
        assert_eq!(task(r#"{"prompt": " "}"#).unwrap_err(), "prompt");
        let long = format!(r#"{{"prompt": "{}"}}"#, "p".repeat(MAX_LONG_BYTES + 1));
        assert_eq!(task(&long).unwrap_err(), "prompt");
        assert!(task(r#"{"prompt": "do it", "assignee_id": "ada"}"#).is_ok());
    }
}
