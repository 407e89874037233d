//! Agents and the org chart: the repository interface (SQL lives in the backend, e.g. `sqlite/agents.rs`).

/// Agents and the org chart of one tenant. Mutations take the audit entry and record it in the same transaction.
pub trait AgentRepo {}
