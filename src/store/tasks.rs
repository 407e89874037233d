//! Tasks, their events and the kanban board: the repository interface (SQL lives in the backend, e.g. `sqlite/tasks.rs`).

/// Tasks, their events and the kanban board of one tenant. Mutations take the audit entry and record it in the same transaction.
pub trait TaskRepo {}
