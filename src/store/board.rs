//! Board items: the repository interface (SQL lives in the backend, e.g. `sqlite/board.rs`).

/// Board items of one tenant. Mutations take the audit entry and record it in the same transaction.
pub trait BoardRepo {}
