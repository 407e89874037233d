//! Workspace settings and tool permissions.

use super::{Scope, ServiceError};
use crate::audit::Target;
use crate::domain::workspace::{Workspace, WorkspacePatch};

pub fn workspace(scope: &Scope) -> Result<Workspace, ServiceError> {
    Ok(scope.store.workspace()?)
}

/// Applies `patch` (validated here), records it and publishes `workspace.updated`.
pub fn update_workspace(scope: &Scope, patch: WorkspacePatch) -> Result<Workspace, ServiceError> {
    let patch = patch.validate()?;
    let audit = scope
        .audit("workspace.updated", Target::new("workspace", "workspace"))
        .with_details(changed_fields(&patch));
    let workspace = scope.store.update_workspace(&patch, &audit)?;
    scope.publish_value("workspace.updated", &workspace);
    Ok(workspace)
}

/// The names of the fields a patch sets (what the audit entry records; values may be long).
fn changed_fields(patch: &WorkspacePatch) -> serde_json::Value {
    let fields: Vec<&str> = [
        ("name", patch.name.is_some()),
        ("description", patch.description.is_some()),
        ("timezone", patch.timezone.is_some()),
        ("language", patch.language.is_some()),
        ("default_provider_id", patch.default_provider_id.is_some()),
        ("default_model", patch.default_model.is_some()),
        ("default_assignee_id", patch.default_assignee_id.is_some()),
        ("allow_any_delegation", patch.allow_any_delegation.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    serde_json::json!({ "fields": fields })
}
