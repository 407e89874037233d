//! MCP server configurations: the repository interface (SQL lives in the backend, e.g. `sqlite/mcp_servers.rs`).

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::audit::AuditEntry;
use crate::domain::PageRequest;
use crate::domain::mcp_server::{McpServer, McpServerPatch, PingResult};

/// MCP server configurations of one tenant. Mutations take the audit entry and record it in the same transaction.
pub trait McpServerRepo {
    /// Inserts a server; a taken name is [`StoreError::Conflict`].
    fn insert_mcp_server(&self, server: &McpServer, audit: &AuditEntry) -> Result<(), StoreError>;
    /// One server; [`StoreError::NotFound`] if there is none with this id.
    fn mcp_server(&self, id: &str) -> Result<McpServer, StoreError>;
    /// Up to `page.fetch()` servers by name, after the page's cursor (a name).
    fn mcp_servers(&self, page: &PageRequest) -> Result<Vec<McpServer>, StoreError>;
    /// Applies a validated patch; a taken name is [`StoreError::Conflict`].
    fn update_mcp_server(
        &self,
        id: &str,
        patch: &McpServerPatch,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<McpServer, StoreError>;
    fn delete_mcp_server(&self, id: &str, audit: &AuditEntry) -> Result<(), StoreError>;
    /// Records what a ping found: the status, tool count, error and failure streak.
    fn record_mcp_ping(
        &self,
        id: &str,
        result: &PingResult,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<McpServer, StoreError>;
}
