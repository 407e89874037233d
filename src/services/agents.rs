//! Agents, the org chart and per-agent tool permissions: references resolved (an agent by id
//! or name, providers must exist), cycles in the chart refused, deletions that keep the chart
//! and the task board whole.

use serde_json::json;

use super::{Scope, ServiceError};
use crate::audit::Target;
use crate::domain::agent::{
    Agent, AgentFilter, AgentPatch, AgentStatus, ChainLink, NewAgent, OrgChart, UsdMicros,
    cycle_through,
};
use crate::domain::tool_permission::{AgentToolPermissions, ToolOverridesPatch};
use crate::domain::{Invalid, Page, PageRequest};

fn no_such_agent() -> ServiceError {
    ServiceError::not_found("no such agent")
}

/// The agent a path names (id or name).
pub fn get(scope: &Scope, reference: &str) -> Result<Agent, ServiceError> {
    scope.store.agent(reference)?.ok_or_else(no_such_agent)
}

pub fn list(
    scope: &Scope,
    filter: &AgentFilter,
    page: &PageRequest,
) -> Result<Page<Agent>, ServiceError> {
    Ok(scope.store.list_agents(filter, page)?)
}

/// The whole org chart, read in one query and assembled here.
pub fn org(scope: &Scope) -> Result<OrgChart, ServiceError> {
    Ok(OrgChart::build(scope.store.org_nodes()?))
}

/// The agent a body field names (by id or name); 400 naming `field` when there is none.
pub(super) fn resolve_agent(
    scope: &Scope,
    field: &'static str,
    reference: &str,
) -> Result<Agent, ServiceError> {
    scope
        .store
        .agent(reference)?
        .ok_or_else(|| Invalid::new(field, "no agent has this id or name").into())
}

/// Checks that provider `id` exists; 400 naming `field` when not.
pub(super) fn check_provider(
    scope: &Scope,
    field: &'static str,
    id: &str,
) -> Result<(), ServiceError> {
    if scope.store.provider_exists(id)? {
        Ok(())
    } else {
        Err(Invalid::new(field, "no provider has this id").into())
    }
}

/// Creates an agent (status `idle`, nothing spent), records it, publishes `agent.created`.
pub fn create(scope: &Scope, new: NewAgent) -> Result<Agent, ServiceError> {
    let draft = new.validate()?;
    let reports_to = draft
        .reports_to
        .as_deref()
        .map(|r| resolve_agent(scope, "reports_to", r).map(|a| a.id))
        .transpose()?;
    if let Some(provider) = &draft.provider_id {
        check_provider(scope, "provider_id", provider)?;
    }
    let now = crate::domain::now();
    let agent = Agent {
        id: uuid::Uuid::now_v7().to_string(),
        name: draft.name,
        display_name: draft.display_name,
        role: draft.role,
        department: draft.department,
        level: draft.level,
        personality: draft.personality,
        status: AgentStatus::Idle,
        reports_to,
        provider_id: draft.provider_id,
        model: draft.model,
        monthly_budget_usd: draft.monthly_budget,
        spent_this_month_usd: UsdMicros::default(),
        avatar_color: draft.avatar_color,
        created_at: now,
        updated_at: now,
    };
    let audit = scope
        .audit("agent.created", Target::new("agent", &agent.id))
        .with_details(json!({ "name": agent.name }));
    let agent = scope.store.insert_agent(&agent, &audit)?;
    scope.publish_value("agent.created", &agent);
    Ok(agent)
}

/// Changes an agent. A new manager must exist and must not be the agent or one of the agents
/// below it (400 naming `reports_to`, with the cycle spelled out). The status of a running
/// agent is the runtime's to change (409): pausing it mid-run would hide the run, and would
/// let it be deleted while it still works.
pub fn update(scope: &Scope, reference: &str, patch: AgentPatch) -> Result<Agent, ServiceError> {
    let agent = get(scope, reference)?;
    let mut changes = patch.validate()?;
    if changes.status.is_some() && agent.status == AgentStatus::Running {
        return Err(running(&agent, "its status changes when the run ends"));
    }
    if let Some(Some(manager)) = &changes.reports_to {
        let manager = resolve_agent(scope, "reports_to", manager)?;
        let chain = scope.store.manager_chain(&manager.id)?;
        let me = ChainLink {
            id: agent.id.clone(),
            name: agent.name.to_string(),
        };
        if let Some(cycle) = cycle_through(&me, &chain) {
            return Err(Invalid::new(
                "reports_to",
                format!("would create a cycle: {}", cycle.join(" → ")),
            )
            .into());
        }
        changes.reports_to = Some(Some(manager.id));
    }
    if let Some(Some(provider)) = &changes.provider_id {
        check_provider(scope, "provider_id", provider)?;
    }
    let audit = scope
        .audit("agent.updated", Target::new("agent", &agent.id))
        .with_details(json!({ "name": agent.name, "fields": changes.fields() }));
    let updated = scope.store.update_agent(&agent.id, &changes, &audit)?;
    scope.publish_value("agent.updated", &updated);
    let resumed = agent.status == AgentStatus::Paused && updated.status != AgentStatus::Paused;
    if resumed || (agent.provider_id.is_none() && updated.provider_id.is_some()) {
        // Its waiting work can run now.
        scope.wake_waiting(Some(&updated.id))?;
    }
    Ok(updated)
}

/// Deletes an agent that is not running: its reports move up to its manager and its open
/// tasks lose their assignee, in the same transaction. Publishes `agent.deleted`, and
/// `agent.updated` for each report that moved.
pub fn delete(scope: &Scope, reference: &str) -> Result<(), ServiceError> {
    let agent = get(scope, reference)?;
    if agent.status == AgentStatus::Running {
        // The store checks again inside its transaction; this is the common case's answer.
        return Err(running(&agent, "wait for its run to end"));
    }
    let audit = scope.audit("agent.deleted", Target::new("agent", &agent.id));
    let deleted = scope.store.delete_agent(&agent.id, &audit)?;
    scope.publish(
        "agent.deleted",
        json!({ "id": deleted.agent.id, "name": deleted.agent.name }),
    );
    for report in &deleted.moved_reports {
        scope.publish_value("agent.updated", report);
    }
    Ok(())
}

/// 409: `agent` is running, and what to do about it.
fn running(agent: &Agent, advice: &str) -> ServiceError {
    ServiceError::Conflict {
        message: format!("agent '{}' is running; {advice}", agent.name),
        details: json!({ "status": agent.status }),
    }
}

/// Records the status the runtime observed and publishes `agent.status` (for the runtime;
/// people pause and resume through [`update`]).
pub fn set_status(scope: &Scope, id: &str, status: AgentStatus) -> Result<Agent, ServiceError> {
    let agent = scope
        .store
        .set_agent_status(id, status)
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => no_such_agent(),
            e => e.into(),
        })?;
    scope.publish(
        "agent.status",
        json!({ "id": agent.id, "name": agent.name, "status": agent.status }),
    );
    Ok(agent)
}

/// Every workspace tool permission as it applies to the agent.
pub fn tool_permissions(
    scope: &Scope,
    reference: &str,
) -> Result<AgentToolPermissions, ServiceError> {
    let agent = get(scope, reference)?;
    Ok(AgentToolPermissions {
        items: scope.store.agent_tool_permissions(&agent.id)?,
        next_cursor: None,
    })
}

/// Sets or removes the agent's overrides (tools named by name or id; an unknown one is a 400
/// naming it) and publishes `agent.updated`.
pub fn update_tool_permissions(
    scope: &Scope,
    reference: &str,
    patch: ToolOverridesPatch,
) -> Result<AgentToolPermissions, ServiceError> {
    let agent = get(scope, reference)?;
    let wanted = patch.validate()?;
    let known = scope.store.agent_tool_permissions(&agent.id)?;
    let mut overrides = Vec::with_capacity(wanted.len());
    for (tool, enabled) in &wanted {
        let Some(permission) = known
            .iter()
            .find(|p| p.id == *tool || p.name.as_str() == tool)
        else {
            let shown: String = tool.chars().take(64).collect();
            return Err(Invalid::new(
                format!("overrides.{shown}"),
                "no tool permission has this name or id",
            )
            .into());
        };
        overrides.push((permission.id.clone(), *enabled));
    }
    let changed: Vec<_> = known
        .iter()
        .filter(|p| overrides.iter().any(|(id, _)| *id == p.id))
        .map(|p| p.name.as_str())
        .collect();
    let audit = scope
        .audit(
            "agent.tool_permissions_changed",
            Target::new("agent", &agent.id),
        )
        .with_details(json!({ "name": agent.name, "tools": changed }));
    let items = scope
        .store
        .set_agent_tool_overrides(&agent.id, &overrides, &audit)?;
    scope.publish_value("agent.updated", &agent);
    Ok(AgentToolPermissions {
        items,
        next_cursor: None,
    })
}
