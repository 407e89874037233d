//! Tasks, their events and the kanban board: the repository interface (SQL lives in the
//! backend, e.g. `sqlite/tasks.rs`).

use super::StoreError;
use crate::audit::AuditEntry;
use crate::domain::task::{
    Board, ListedTask, NewTaskEvent, Priority, Task, TaskEvent, TaskFilter, TaskStatus,
};
use crate::domain::{Page, PageRequest};

/// A task to insert: validated, references resolved to ids, id chosen by the caller (so the
/// audit entry can name it).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInsert {
    pub id: String,
    pub prompt: String,
    pub context: Option<String>,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub assignee: Assignee,
    pub delegator_id: Option<String>,
    pub parent_id: Option<String>,
    /// The `created` entry of the task's event log (the insert adds `assignee_id` to its
    /// data).
    pub event: NewTaskEvent,
}

/// Who a new task goes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Assignee {
    /// The agent with this id.
    Agent(String),
    /// The workspace's default assignee (by id, or by name; if it still exists), else the
    /// root of the org chart (the oldest agent reporting to no one), else no one: resolved
    /// in the insert's own transaction.
    Default,
}

/// A task just inserted.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertedTask {
    pub task: Task,
    /// Whether its assignee can run it now (see [`super::RunRepo::agent_runnable`]), read in
    /// the same transaction.
    pub runnable: bool,
}

/// A change to a task: `None` keeps a field, `Some` sets it (`Some(None)` clears).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskChange {
    pub prompt: Option<String>,
    pub context: Option<Option<String>>,
    pub priority: Option<Priority>,
    pub tags: Option<Vec<String>>,
    pub assignee_id: Option<Option<String>>,
    pub status: Option<TaskStatus>,
    pub cancel_requested: Option<bool>,
    /// Sets `completed_at` to now (the task's work is over).
    pub finish: bool,
    /// Clears what the last run left: result, started/completed times, duration (a retry).
    pub reset_run: bool,
}

/// Tasks, their events and the kanban board of one tenant. Mutations take the audit entry and
/// record it in the same transaction, with the task's own event log entries.
pub trait TaskRepo {
    /// One task; [`StoreError::NotFound`] when the tenant has none with this id.
    fn task(&self, id: &str) -> Result<Task, StoreError>;
    /// A page of tasks, newest first (keyed on creation time and id).
    fn list_tasks(
        &self,
        filter: &TaskFilter,
        page: &PageRequest,
    ) -> Result<Page<ListedTask>, StoreError>;
    /// The board: per column its count and up to `limit` newest tasks.
    fn task_board(&self, limit: u32) -> Result<Board, StoreError>;
    /// A page of a task's events, oldest first; [`StoreError::NotFound`] for an unknown task.
    fn task_events(&self, task_id: &str, page: &PageRequest)
    -> Result<Page<TaskEvent>, StoreError>;
    /// Inserts a task with its `created` event and `audit`. The assignee the insert resolved
    /// is recorded as `assignee_id` in both the event's data and the audit entry's details
    /// (the store completes the entry, hence it takes it).
    fn insert_task(&self, task: &TaskInsert, audit: AuditEntry)
    -> Result<InsertedTask, StoreError>;
    /// Applies `change` if the task's status is still `expected` (compare-and-set): `None`
    /// when it moved on meanwhile; [`StoreError::NotFound`] when the task is gone.
    fn update_task(
        &self,
        id: &str,
        expected: TaskStatus,
        change: &TaskChange,
        events: &[NewTaskEvent],
        audit: &AuditEntry,
    ) -> Result<Option<Task>, StoreError>;
    /// Deletes the task (its events with it) if its status is still `expected`: `false` when
    /// it moved on meanwhile; [`StoreError::NotFound`] when it is gone.
    fn delete_task(
        &self,
        id: &str,
        expected: TaskStatus,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;
}
