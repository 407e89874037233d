//! Chat threads and messages: the repository interface (SQL lives in the backend, e.g. `sqlite/chat.rs`).

/// Chat threads and messages of one tenant. Mutations take the audit entry and record it in the same transaction.
pub trait ChatRepo {}
