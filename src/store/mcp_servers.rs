//! MCP server configurations: the repository interface (SQL lives in the backend, e.g. `sqlite/mcp_servers.rs`).

/// MCP server configurations of one tenant. Mutations take the audit entry and record it in the same transaction.
pub trait McpServerRepo {}
