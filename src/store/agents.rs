//! Agents and the org chart: the repository interface (SQL lives in the backend, e.g.
//! `sqlite/agents.rs`).

use super::StoreError;
use crate::audit::AuditEntry;
use crate::domain::agent::{Agent, AgentChanges, AgentFilter, AgentStatus, ChainLink, OrgNode};
use crate::domain::tool_permission::AgentToolPermission;
use crate::domain::{Page, PageRequest};

/// What deleting an agent did besides removing it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletedAgent {
    pub agent: Agent,
    /// Its former reports, now reporting to its manager (or roots), as they are now.
    pub moved_reports: Vec<Agent>,
    /// How many of its open tasks lost their assignee.
    pub unassigned_tasks: u64,
}

/// Agents and the org chart of one tenant. Mutations take the audit entry and record it in
/// the same transaction. References in arguments (`reports_to`, `provider_id`) are ids the
/// service has resolved; the store still refuses, with [`StoreError::Conflict`], a change that
/// became invalid meanwhile (a referenced row gone, a cycle closed by a concurrent move).
pub trait AgentRepo {
    /// An agent by id or by name.
    fn agent(&self, id_or_name: &str) -> Result<Option<Agent>, StoreError>;
    /// The id of the agent with this id, else with this name: how every other area resolves
    /// a reference to an agent (assignees, recipients, authors, hook events).
    fn agent_id(&self, id_or_name: &str) -> Result<Option<String>, StoreError>;
    /// A page of agents matching `filter`, in creation order (by id).
    fn list_agents(
        &self,
        filter: &AgentFilter,
        page: &PageRequest,
    ) -> Result<Page<Agent>, StoreError>;
    /// Every agent as an org-chart node without reports, read in one query.
    fn org_nodes(&self) -> Result<Vec<OrgNode>, StoreError>;
    /// The agent `id` and its managers, bottom up (empty if there is no such agent).
    fn manager_chain(&self, id: &str) -> Result<Vec<ChainLink>, StoreError>;
    fn provider_exists(&self, id: &str) -> Result<bool, StoreError>;
    /// Inserts a new agent; a taken name is [`StoreError::Conflict`].
    fn insert_agent(&self, agent: &Agent, audit: &AuditEntry) -> Result<Agent, StoreError>;
    /// Applies `changes` to agent `id` and returns it as it is now.
    fn update_agent(
        &self,
        id: &str,
        changes: &AgentChanges,
        audit: &AuditEntry,
    ) -> Result<Agent, StoreError>;
    /// In one transaction: moves the agent's reports to its manager, unassigns its open tasks,
    /// clears it as the workspace's default assignee and deletes it. A running agent is
    /// [`StoreError::Conflict`]. The audit entry gets what moved added to its details.
    fn delete_agent(&self, id: &str, audit: &AuditEntry) -> Result<DeletedAgent, StoreError>;
    /// Sets the status the runtime observed. Not audited: status flips are the platform's own
    /// bookkeeping, many per task, not anyone's action.
    fn set_agent_status(&self, id: &str, status: AgentStatus) -> Result<Agent, StoreError>;
    /// Every workspace tool permission merged with agent `id`'s overrides, by name.
    fn agent_tool_permissions(&self, id: &str) -> Result<Vec<AgentToolPermission>, StoreError>;
    /// Sets (`Some`) or removes (`None`) agent `id`'s overrides, by tool permission id, and
    /// returns the merged view.
    fn set_agent_tool_overrides(
        &self,
        id: &str,
        overrides: &[(String, Option<bool>)],
        audit: &AuditEntry,
    ) -> Result<Vec<AgentToolPermission>, StoreError>;
}
