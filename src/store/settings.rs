//! Workspace settings and tool permissions: the repository interface (SQL lives in the
//! backend, e.g. `sqlite/settings.rs`).

use super::StoreError;
use crate::audit::AuditEntry;
use crate::domain::workspace::{Workspace, WorkspacePatch};

/// Workspace settings and tool permissions of one tenant. Mutations take the audit entry and
/// record it in the same transaction.
pub trait SettingsRepo {
    /// Applies a validated patch (references already resolved to ids) and returns the result.
    fn update_workspace(
        &self,
        patch: &WorkspacePatch,
        audit: &AuditEntry,
    ) -> Result<Workspace, StoreError>;
}
