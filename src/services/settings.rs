//! Workspace settings and tool permissions.

use serde_json::json;

use super::agents::{check_provider, resolve_agent};
use super::{Scope, ServiceError};
use crate::audit::Target;
use crate::domain::tool_permission::{NewToolPermission, ToolPermission, ToolPermissionPatch};
use crate::domain::workspace::{Workspace, WorkspacePatch};
use crate::domain::{Page, PageRequest};

pub fn workspace(scope: &Scope) -> Result<Workspace, ServiceError> {
    Ok(scope.store.workspace()?)
}

/// Applies `patch` (validated here; `default_assignee_id` may name an agent by id or name and
/// is stored as its id, `default_provider_id` must exist), records it and publishes
/// `workspace.updated`.
pub fn update_workspace(scope: &Scope, patch: WorkspacePatch) -> Result<Workspace, ServiceError> {
    let mut patch = patch.validate()?;
    if let Some(Some(assignee)) = &patch.default_assignee_id {
        let agent = resolve_agent(scope, "default_assignee_id", assignee)?;
        patch.default_assignee_id = Some(Some(agent.id));
    }
    if let Some(Some(provider)) = &patch.default_provider_id {
        check_provider(scope, "default_provider_id", provider)?;
    }
    let audit = scope
        .audit("workspace.updated", Target::new("workspace", "workspace"))
        .with_details(changed_fields(&patch));
    let workspace = scope.store.update_workspace(&patch, &audit)?;
    scope.publish_value("workspace.updated", &workspace);
    if matches!(patch.default_provider_id, Some(Some(_))) {
        // Work waiting for a provider can run now.
        scope.wake_waiting(None)?;
    }
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
        ("monthly_budget_usd", patch.monthly_budget_usd.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    json!({ "fields": fields })
}

fn no_such_tool() -> ServiceError {
    ServiceError::not_found("no such tool permission")
}

pub fn tool_permissions(
    scope: &Scope,
    page: &PageRequest,
) -> Result<Page<ToolPermission>, ServiceError> {
    Ok(scope.store.tool_permissions(page)?)
}

/// A workspace tool permission by id or name.
pub fn tool_permission(scope: &Scope, reference: &str) -> Result<ToolPermission, ServiceError> {
    scope
        .store
        .tool_permission(reference)?
        .ok_or_else(no_such_tool)
}

/// Adds a workspace tool permission; publishes `tool_permission.created`.
pub fn create_tool_permission(
    scope: &Scope,
    new: NewToolPermission,
) -> Result<ToolPermission, ServiceError> {
    let draft = new.validate()?;
    let now = crate::domain::now();
    let permission = ToolPermission {
        id: uuid::Uuid::now_v7().to_string(),
        name: draft.name,
        description: draft.description,
        enabled: draft.enabled,
        icon: draft.icon,
        created_at: now,
        updated_at: now,
    };
    let audit = scope
        .audit(
            "tool_permission.created",
            Target::new("tool_permission", &permission.id),
        )
        .with_details(json!({ "name": permission.name, "enabled": permission.enabled }));
    let permission = scope.store.insert_tool_permission(&permission, &audit)?;
    scope.publish_value("tool_permission.created", &permission);
    Ok(permission)
}

/// Changes a workspace tool permission; publishes `tool_permission.updated`.
pub fn update_tool_permission(
    scope: &Scope,
    reference: &str,
    patch: ToolPermissionPatch,
) -> Result<ToolPermission, ServiceError> {
    let current = tool_permission(scope, reference)?;
    let changes = patch.validate()?;
    let audit = scope
        .audit(
            "tool_permission.updated",
            Target::new("tool_permission", &current.id),
        )
        .with_details(json!({
            "name": current.name,
            "fields": changes.fields(),
            "enabled": changes.enabled,
        }));
    let permission = scope
        .store
        .update_tool_permission(&current.id, &changes, &audit)?;
    scope.publish_value("tool_permission.updated", &permission);
    Ok(permission)
}

/// Removes a workspace tool permission and every agent's override of it; publishes
/// `tool_permission.deleted`.
pub fn delete_tool_permission(scope: &Scope, reference: &str) -> Result<(), ServiceError> {
    let current = tool_permission(scope, reference)?;
    let audit = scope
        .audit(
            "tool_permission.deleted",
            Target::new("tool_permission", &current.id),
        )
        .with_details(json!({ "name": current.name }));
    scope.store.delete_tool_permission(&current.id, &audit)?;
    scope.publish(
        "tool_permission.deleted",
        json!({ "id": current.id, "name": current.name }),
    );
    Ok(())
}
