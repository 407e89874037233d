//! Workspace settings and tool permissions: the repository interface (SQL lives in the
//! backend, e.g. `sqlite/settings.rs`).

use super::StoreError;
use crate::audit::AuditEntry;
use crate::domain::tool_permission::{ToolPermission, ToolPermissionChanges};
use crate::domain::workspace::{Workspace, WorkspacePatch};
use crate::domain::{Page, PageRequest};

/// Workspace settings and tool permissions of one tenant. Mutations take the audit entry and
/// record it in the same transaction.
pub trait SettingsRepo {
    /// Applies a validated patch (references already resolved to ids) and returns the result.
    fn update_workspace(
        &self,
        patch: &WorkspacePatch,
        audit: &AuditEntry,
    ) -> Result<Workspace, StoreError>;

    /// A page of the workspace's tool permissions, by name.
    fn tool_permissions(&self, page: &PageRequest) -> Result<Page<ToolPermission>, StoreError>;
    /// A tool permission by id or by name.
    fn tool_permission(&self, id_or_name: &str) -> Result<Option<ToolPermission>, StoreError>;
    /// Inserts one; a taken name is [`StoreError::Conflict`].
    fn insert_tool_permission(
        &self,
        permission: &ToolPermission,
        audit: &AuditEntry,
    ) -> Result<ToolPermission, StoreError>;
    /// Applies `changes` to tool permission `id`; a taken name is [`StoreError::Conflict`].
    fn update_tool_permission(
        &self,
        id: &str,
        changes: &ToolPermissionChanges,
        audit: &AuditEntry,
    ) -> Result<ToolPermission, StoreError>;
    /// Deletes tool permission `id` and every agent's override of it.
    fn delete_tool_permission(&self, id: &str, audit: &AuditEntry) -> Result<(), StoreError>;
}
