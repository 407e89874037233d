//! Agent hook events: the repository interface (SQL lives in the backend, e.g. `sqlite/hook_events.rs`).

/// Agent hook events of one tenant. Mutations take the audit entry and record it in the same transaction.
pub trait HookEventRepo {}
