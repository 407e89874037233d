//! SQL of agents, the org chart and per-agent tool overrides in a tenant database.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::json;

use super::audit::{self, AuditTable};
use super::registry::{format_time, parse_time};
use super::tenants::SqliteTenantStore;
use crate::audit::AuditEntry;
use crate::domain::agent::{
    Agent, AgentChanges, AgentFilter, AgentName, AgentStatus, ChainLink, Level, OrgNode, UsdMicros,
};
use crate::domain::tool_permission::{AgentToolPermission, ToolName};
use crate::domain::{Page, PageRequest};
use crate::store::StoreError;
use crate::store::agents::{AgentRepo, DeletedAgent};

const AGENT_COLUMNS: &str = "id, name, display_name, role, department, level, personality, \
     status, reports_to, provider_id, model, monthly_budget_micros, \
     CASE WHEN spent_month = strftime('%Y-%m', 'now') THEN spent_this_month_micros ELSE 0 END, \
     created_at, updated_at, avatar_color";

/// How far up a chain of managers the store looks: deeper than any org, and a bound on the
/// work a (refused, but conceivable) cycle in stored data could cause.
const MAX_CHAIN: i64 = 10_000;

/// Task states in which a task is finished: its assignee stays on record.
const CLOSED_TASK_STATES: &str = "('completed', 'failed', 'cancelled')";

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown agent {what} '{value}'"))
}

fn agent_from_row(r: &Row<'_>) -> Result<Agent, StoreError> {
    let name: String = r.get(1)?;
    let level: String = r.get(5)?;
    let status: String = r.get(7)?;
    let created_at: String = r.get(13)?;
    let updated_at: String = r.get(14)?;
    Ok(Agent {
        id: r.get(0)?,
        name: AgentName::parse(&name).map_err(|_| corrupt("name", &name))?,
        display_name: r.get(2)?,
        role: r.get(3)?,
        department: r.get(4)?,
        level: Level::parse("level", &level).map_err(|_| corrupt("level", &level))?,
        personality: r.get(6)?,
        status: AgentStatus::parse("status", &status).map_err(|_| corrupt("status", &status))?,
        reports_to: r.get(8)?,
        provider_id: r.get(9)?,
        model: r.get(10)?,
        monthly_budget_usd: r.get::<_, Option<i64>>(11)?.map(UsdMicros::from_micros),
        spent_this_month_usd: UsdMicros::from_micros(r.get(12)?),
        created_at: parse_time(&created_at)?,
        updated_at: parse_time(&updated_at)?,
        avatar_color: r.get(15)?,
    })
}

/// An agent by id or name. An id wins over a name (they cannot collide today: names start
/// with a letter, UUIDv7 ids with a digit for the next few centuries).
pub(super) fn read_agent(conn: &Connection, id_or_name: &str) -> Result<Option<Agent>, StoreError> {
    let sql = format!(
        "SELECT {AGENT_COLUMNS} FROM agents WHERE id = ?1 OR name = ?1 \
         ORDER BY id = ?1 DESC LIMIT 1"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([id_or_name])?;
    match rows.next()? {
        Some(row) => Ok(Some(agent_from_row(row)?)),
        None => Ok(None),
    }
}

fn existing_agent(conn: &Connection, id: &str) -> Result<Agent, StoreError> {
    read_agent(conn, id)?.ok_or(StoreError::NotFound)
}

/// Maps constraint failures of agent writes to conflicts a client can act on.
fn agent_constraint(e: rusqlite::Error, name: &str) -> StoreError {
    constraint_conflict(
        e,
        &format!("an agent named '{name}' already exists"),
        "the manager or provider it names was removed meanwhile",
    )
}

/// A UNIQUE violation as `unique`, a FOREIGN KEY violation as `foreign_key`, anything else as
/// usual.
pub(super) fn constraint_conflict(
    e: rusqlite::Error,
    unique: &str,
    foreign_key: &str,
) -> StoreError {
    if let rusqlite::Error::SqliteFailure(err, _) = &e {
        match err.extended_code {
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE => return StoreError::Conflict(unique.into()),
            rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                return StoreError::Conflict(foreign_key.into());
            }
            _ => {}
        }
    }
    e.into()
}

/// Whether agent `id` is its own (indirect) manager.
fn on_a_cycle(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "WITH RECURSIVE up (id, depth) AS ( \
                 SELECT reports_to, 1 FROM agents WHERE id = ?1 \
                 UNION ALL \
                 SELECT a.reports_to, up.depth + 1 FROM agents a JOIN up ON a.id = up.id \
                 WHERE up.depth < ?2 \
             ) SELECT EXISTS (SELECT 1 FROM up WHERE id = ?1)",
        )?
        .query_row(params![id, MAX_CHAIN], |r| r.get(0))?)
}

pub(super) fn merged_tool_permissions(
    conn: &Connection,
    agent_id: &str,
) -> Result<Vec<AgentToolPermission>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.id, t.name, t.description, t.icon, t.enabled, o.enabled \
         FROM tool_permissions t LEFT JOIN agent_tool_permissions o \
           ON o.tool_permission_id = t.id AND o.agent_id = ?1 \
         ORDER BY t.name",
    )?;
    let mut rows = stmt.query([agent_id])?;
    let mut items = Vec::new();
    while let Some(r) = rows.next()? {
        let name: String = r.get(1)?;
        let workspace_enabled: bool = r.get(4)?;
        let own: Option<bool> = r.get(5)?;
        items.push(AgentToolPermission {
            id: r.get(0)?,
            name: ToolName::parse(&name)
                .map_err(|_| StoreError::Corrupt(format!("bad tool name '{name}'")))?,
            description: r.get(2)?,
            icon: r.get(3)?,
            enabled: own.unwrap_or(workspace_enabled),
            workspace_enabled,
            overridden: own.is_some(),
        });
    }
    Ok(items)
}

/// The id of the agent with this id, else with this name.
pub(super) fn agent_id(conn: &Connection, id_or_name: &str) -> Result<Option<String>, StoreError> {
    for sql in [
        "SELECT id FROM agents WHERE id = ?1",
        "SELECT id FROM agents WHERE name = ?1",
    ] {
        let found: Option<String> = conn
            .prepare_cached(sql)?
            .query_row([id_or_name], |r| r.get(0))
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

impl AgentRepo for SqliteTenantStore {
    fn agent(&self, id_or_name: &str) -> Result<Option<Agent>, StoreError> {
        read_agent(&*self.read()?, id_or_name)
    }

    fn agent_id(&self, id_or_name: &str) -> Result<Option<String>, StoreError> {
        agent_id(&*self.read()?, id_or_name)
    }

    fn list_agents(
        &self,
        filter: &AgentFilter,
        page: &PageRequest,
    ) -> Result<Page<Agent>, StoreError> {
        let conn = self.read()?;
        // Every filter is `(?n IS NULL OR column = ?n)`: one cached statement serves every
        // combination. The cursor is the last id seen; ids are unique and grow with time, so
        // agents added while a client pages through never shift a page.
        let sql = format!(
            "SELECT {AGENT_COLUMNS} FROM agents \
             WHERE (?1 IS NULL OR department = ?1) AND (?2 IS NULL OR level = ?2) \
             AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR id > ?4) \
             ORDER BY id LIMIT ?5"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![
            filter.department,
            filter.level.map(Level::as_str),
            filter.status.map(AgentStatus::as_str),
            page.after,
            page.fetch(),
        ])?;
        let mut agents = Vec::new();
        while let Some(row) = rows.next()? {
            agents.push(agent_from_row(row)?);
        }
        Ok(Page::from_rows(agents, page, |a| a.id.clone()))
    }

    fn org_nodes(&self) -> Result<Vec<OrgNode>, StoreError> {
        org_nodes_tx(&*self.read()?)
    }

    fn manager_chain(&self, id: &str) -> Result<Vec<ChainLink>, StoreError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(
            "WITH RECURSIVE up (id, depth) AS ( \
                 SELECT ?1, 0 \
                 UNION ALL \
                 SELECT a.reports_to, up.depth + 1 FROM agents a JOIN up ON a.id = up.id \
                 WHERE a.reports_to IS NOT NULL AND up.depth < ?2 \
             ) SELECT a.id, a.name FROM up JOIN agents a ON a.id = up.id ORDER BY up.depth",
        )?;
        let chain = stmt
            .query_map(params![id, MAX_CHAIN], |r| {
                Ok(ChainLink {
                    id: r.get(0)?,
                    name: r.get(1)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(chain)
    }

    fn provider_exists(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .read()?
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM providers WHERE id = ?1)")?
            .query_row([id], |r| r.get(0))?)
    }

    fn insert_agent(&self, agent: &Agent, audit: &AuditEntry) -> Result<Agent, StoreError> {
        self.write_audited(audit, |tx| {
            tx.prepare_cached(
                "INSERT INTO agents (id, name, display_name, role, department, level, \
                 personality, status, reports_to, provider_id, model, monthly_budget_micros, \
                 spent_this_month_micros, created_at, updated_at, avatar_color) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?
            .execute(params![
                agent.id,
                agent.name.as_str(),
                agent.display_name,
                agent.role,
                agent.department,
                agent.level.as_str(),
                agent.personality,
                agent.status.as_str(),
                agent.reports_to,
                agent.provider_id,
                agent.model,
                agent.monthly_budget_usd.map(UsdMicros::micros),
                agent.spent_this_month_usd.micros(),
                format_time(&agent.created_at),
                format_time(&agent.updated_at),
                agent.avatar_color,
            ])
            .map_err(|e| agent_constraint(e, agent.name.as_str()))?;
            existing_agent(tx, &agent.id)
        })
    }

    fn update_agent(
        &self,
        id: &str,
        changes: &AgentChanges,
        audit: &AuditEntry,
    ) -> Result<Agent, StoreError> {
        let new_name = changes.name.as_ref().map(AgentName::as_str);
        self.write_audited(audit, |tx| {
            if changes.status.is_some() && existing_agent(tx, id)?.status == AgentStatus::Running {
                return Err(StoreError::Conflict(
                    "the agent is running; its status changes when the run ends".into(),
                ));
            }
            // One statement for every combination of fields: COALESCE keeps what is not set;
            // for the nullable ones a flag says whether to take the new value (NULL included).
            let changed = tx
                .prepare_cached(
                    "UPDATE agents SET \
                     name = COALESCE(?1, name), display_name = COALESCE(?2, display_name), \
                     role = COALESCE(?3, role), department = COALESCE(?4, department), \
                     level = COALESCE(?5, level), personality = COALESCE(?6, personality), \
                     status = COALESCE(?7, status), \
                     reports_to = CASE WHEN ?8 THEN ?9 ELSE reports_to END, \
                     provider_id = CASE WHEN ?10 THEN ?11 ELSE provider_id END, \
                     model = CASE WHEN ?12 THEN ?13 ELSE model END, \
                     monthly_budget_micros = CASE WHEN ?14 THEN ?15 ELSE monthly_budget_micros END, \
                     avatar_color = CASE WHEN ?16 THEN ?17 ELSE avatar_color END, \
                     updated_at = ?18 WHERE id = ?19",
                )?
                .execute(params![
                    new_name,
                    changes.display_name,
                    changes.role,
                    changes.department,
                    changes.level.map(Level::as_str),
                    changes.personality,
                    changes.status.map(AgentStatus::as_str),
                    changes.reports_to.is_some(),
                    changes.reports_to.clone().flatten(),
                    changes.provider_id.is_some(),
                    changes.provider_id.clone().flatten(),
                    changes.model.is_some(),
                    changes.model.clone().flatten(),
                    changes.monthly_budget.is_some(),
                    changes.monthly_budget.flatten().map(UsdMicros::micros),
                    changes.avatar_color.is_some(),
                    changes.avatar_color.clone().flatten(),
                    format_time(&crate::domain::now()),
                    id,
                ])
                .map_err(|e| agent_constraint(e, new_name.unwrap_or_default()))?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            // The service refused cycles it could see; this catches one closed by a concurrent
            // move between its check and this transaction.
            if matches!(changes.reports_to, Some(Some(_))) && on_a_cycle(tx, id)? {
                return Err(StoreError::Conflict(
                    "the org chart changed meanwhile and this move would now create a cycle"
                        .into(),
                ));
            }
            existing_agent(tx, id)
        })
    }

    fn delete_agent(&self, id: &str, audit_entry: &AuditEntry) -> Result<DeletedAgent, StoreError> {
        // Not `write_audited`: the entry records what the deletion moved, known only inside
        // the transaction. It is still appended in that same transaction.
        self.write(|tx| {
            let agent = existing_agent(tx, id)?;
            if agent.status == AgentStatus::Running {
                return Err(StoreError::Conflict(format!(
                    "agent '{}' is running; wait for its run to end",
                    agent.name
                )));
            }
            let now = format_time(&crate::domain::now());
            let report_ids: Vec<String> = tx
                .prepare_cached("SELECT id FROM agents WHERE reports_to = ?1 ORDER BY id")?
                .query_map([id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            tx.prepare_cached(
                "UPDATE agents SET reports_to = ?2, updated_at = ?3 WHERE reports_to = ?1",
            )?
            .execute(params![id, agent.reports_to, now])?;
            let unassigned = tx
                .prepare_cached(&format!(
                    "UPDATE tasks SET assignee_id = NULL, updated_at = ?2 \
                     WHERE assignee_id = ?1 AND status NOT IN {CLOSED_TASK_STATES}"
                ))?
                .execute(params![id, now])?;
            tx.prepare_cached(
                "UPDATE workspace SET default_assignee_id = NULL, updated_at = ?2 \
                 WHERE default_assignee_id = ?1",
            )?
            .execute(params![id, now])?;
            tx.prepare_cached("DELETE FROM agents WHERE id = ?1")?
                .execute([id])?;
            let moved_reports = report_ids
                .iter()
                .map(|r| existing_agent(tx, r))
                .collect::<Result<Vec<_>, _>>()?;
            let entry = audit_entry.clone().with_details(json!({
                "name": agent.name,
                "reports_moved": moved_reports.len(),
                "tasks_unassigned": unassigned,
            }));
            audit::append(tx, AuditTable::Tenant, &entry)?;
            Ok(DeletedAgent {
                agent,
                moved_reports,
                unassigned_tasks: unassigned as u64,
            })
        })
    }

    fn set_agent_status(&self, id: &str, status: AgentStatus) -> Result<Agent, StoreError> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached("UPDATE agents SET status = ?2, updated_at = ?3 WHERE id = ?1")?
                .execute(params![
                    id,
                    status.as_str(),
                    format_time(&crate::domain::now())
                ])?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            existing_agent(tx, id)
        })
    }

    fn agent_tool_permissions(&self, id: &str) -> Result<Vec<AgentToolPermission>, StoreError> {
        merged_tool_permissions(&*self.read()?, id)
    }

    fn set_agent_tool_overrides(
        &self,
        id: &str,
        overrides: &[(String, Option<bool>)],
        audit: &AuditEntry,
    ) -> Result<Vec<AgentToolPermission>, StoreError> {
        self.write_audited(audit, |tx| {
            let exists: Option<i64> = tx
                .prepare_cached("SELECT 1 FROM agents WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
            for (tool, enabled) in overrides {
                match enabled {
                    Some(enabled) => tx
                        .prepare_cached(
                            "INSERT INTO agent_tool_permissions \
                             (agent_id, tool_permission_id, enabled) VALUES (?1, ?2, ?3) \
                             ON CONFLICT (agent_id, tool_permission_id) \
                             DO UPDATE SET enabled = excluded.enabled",
                        )?
                        .execute(params![id, tool, enabled])
                        .map_err(|e| {
                            constraint_conflict(
                                e,
                                "override already set",
                                "a tool permission it names was removed meanwhile",
                            )
                        })?,
                    None => tx
                        .prepare_cached(
                            "DELETE FROM agent_tool_permissions \
                             WHERE agent_id = ?1 AND tool_permission_id = ?2",
                        )?
                        .execute(params![id, tool])?,
                };
            }
            merged_tool_permissions(tx, id)
        })
    }
}

/// Every agent as an org-chart node without reports, read on `conn`.
pub(super) fn org_nodes_tx(conn: &Connection) -> Result<Vec<OrgNode>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, display_name, role, department, level, status, reports_to \
         FROM agents",
    )?;
    let mut rows = stmt.query([])?;
    let mut nodes = Vec::new();
    while let Some(r) = rows.next()? {
        let name: String = r.get(1)?;
        let level: String = r.get(5)?;
        let status: String = r.get(6)?;
        nodes.push(OrgNode {
            id: r.get(0)?,
            name: AgentName::parse(&name).map_err(|_| corrupt("name", &name))?,
            display_name: r.get(2)?,
            role: r.get(3)?,
            department: r.get(4)?,
            level: Level::parse("level", &level).map_err(|_| corrupt("level", &level))?,
            status: AgentStatus::parse("status", &status)
                .map_err(|_| corrupt("status", &status))?,
            reports_to: r.get(7)?,
            reports: Vec::new(),
        });
    }
    Ok(nodes)
}
