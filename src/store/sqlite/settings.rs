//! SQL of workspace settings and tool permissions in a tenant database.

use crate::domain::agent::UsdMicros;
use rusqlite::{Connection, Row, params};

use super::agents::constraint_conflict;
use super::registry::{format_time, parse_time};
use super::tenants::SqliteTenantStore;
use crate::audit::AuditEntry;
use crate::domain::tool_permission::{ToolName, ToolPermission, ToolPermissionChanges};
use crate::domain::workspace::{Workspace, WorkspacePatch};
use crate::domain::{Page, PageRequest};
use crate::store::StoreError;
use crate::store::settings::SettingsRepo;

const TOOL_COLUMNS: &str = "id, name, description, enabled, icon, created_at, updated_at";

fn tool_from_row(r: &Row<'_>) -> Result<ToolPermission, StoreError> {
    let name: String = r.get(1)?;
    let created_at: String = r.get(5)?;
    let updated_at: String = r.get(6)?;
    Ok(ToolPermission {
        id: r.get(0)?,
        name: ToolName::parse(&name)
            .map_err(|_| StoreError::Corrupt(format!("bad tool name '{name}'")))?,
        description: r.get(2)?,
        enabled: r.get(3)?,
        icon: r.get(4)?,
        created_at: parse_time(&created_at)?,
        updated_at: parse_time(&updated_at)?,
    })
}

/// A tool permission by id or name (an id wins).
fn read_tool(conn: &Connection, id_or_name: &str) -> Result<Option<ToolPermission>, StoreError> {
    let sql = format!(
        "SELECT {TOOL_COLUMNS} FROM tool_permissions WHERE id = ?1 OR name = ?1 \
         ORDER BY id = ?1 DESC LIMIT 1"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([id_or_name])?;
    match rows.next()? {
        Some(row) => Ok(Some(tool_from_row(row)?)),
        None => Ok(None),
    }
}

fn tool_name_taken(e: rusqlite::Error, name: &str) -> StoreError {
    constraint_conflict(
        e,
        &format!("a tool permission named '{name}' already exists"),
        "a row it refers to was removed meanwhile",
    )
}

pub(super) fn read_workspace(conn: &Connection) -> Result<Workspace, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT name, description, timezone, language, default_provider_id, default_model, \
             default_assignee_id, allow_any_delegation, created_at, updated_at, \
             monthly_budget_micros, \
             CASE WHEN spent_month = strftime('%Y-%m', 'now') THEN spent_this_month_micros \
             ELSE 0 END \
             FROM workspace WHERE id = 1",
        )?
        .query_row([], |r| {
            Ok((
                Workspace {
                    name: r.get(0)?,
                    description: r.get(1)?,
                    timezone: r.get(2)?,
                    language: r.get(3)?,
                    default_provider_id: r.get(4)?,
                    default_model: r.get(5)?,
                    default_assignee_id: r.get(6)?,
                    allow_any_delegation: r.get(7)?,
                    monthly_budget_usd: r
                        .get::<_, Option<i64>>(10)?
                        .map(|m| UsdMicros::from_micros(m).usd()),
                    spent_this_month_usd: UsdMicros::from_micros(r.get(11)?).usd(),
                    created_at: Default::default(),
                    updated_at: Default::default(),
                },
                r.get::<_, String>(8)?,
                r.get::<_, String>(9)?,
            ))
        })?;
    let (mut ws, created_at, updated_at) = row;
    ws.created_at = parse_time(&created_at)?;
    ws.updated_at = parse_time(&updated_at)?;
    Ok(ws)
}

impl SettingsRepo for SqliteTenantStore {
    fn update_workspace(
        &self,
        patch: &WorkspacePatch,
        audit: &AuditEntry,
    ) -> Result<Workspace, StoreError> {
        self.write_audited(audit, |tx| {
            // One statement for every combination of fields: COALESCE keeps what is not set;
            // for the nullable ones a flag says whether to take the new value (NULL included).
            tx.prepare_cached(
                "UPDATE workspace SET \
                 name = COALESCE(?1, name), description = COALESCE(?2, description), \
                 timezone = COALESCE(?3, timezone), language = COALESCE(?4, language), \
                 default_provider_id = CASE WHEN ?5 THEN ?6 ELSE default_provider_id END, \
                 default_model = CASE WHEN ?7 THEN ?8 ELSE default_model END, \
                 default_assignee_id = CASE WHEN ?9 THEN ?10 ELSE default_assignee_id END, \
                 allow_any_delegation = COALESCE(?11, allow_any_delegation), \
                 monthly_budget_micros = CASE WHEN ?13 THEN ?14 ELSE monthly_budget_micros END, \
                 updated_at = ?12 WHERE id = 1",
            )?
            .execute(params![
                patch.name,
                patch.description,
                patch.timezone,
                patch.language,
                patch.default_provider_id.is_some(),
                patch.default_provider_id.clone().flatten(),
                patch.default_model.is_some(),
                patch.default_model.clone().flatten(),
                patch.default_assignee_id.is_some(),
                patch.default_assignee_id.clone().flatten(),
                patch.allow_any_delegation,
                format_time(&crate::domain::now()),
                patch.monthly_budget_usd.is_some(),
                patch
                    .monthly_budget_usd
                    .flatten()
                    .map(|usd| (usd * 1e6).round() as i64),
            ])?;
            read_workspace(tx)
        })
    }

    fn tool_permissions(&self, page: &PageRequest) -> Result<Page<ToolPermission>, StoreError> {
        let conn = self.read()?;
        // Names are unique, so "after the last name seen" pages without gaps or repeats.
        let sql = format!(
            "SELECT {TOOL_COLUMNS} FROM tool_permissions WHERE (?1 IS NULL OR name > ?1) \
             ORDER BY name LIMIT ?2"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![page.after, page.fetch()])?;
        let mut tools = Vec::new();
        while let Some(row) = rows.next()? {
            tools.push(tool_from_row(row)?);
        }
        Ok(Page::from_rows(tools, page, |t| t.name.as_str().to_owned()))
    }

    fn tool_permission(&self, id_or_name: &str) -> Result<Option<ToolPermission>, StoreError> {
        read_tool(&*self.read()?, id_or_name)
    }

    fn insert_tool_permission(
        &self,
        p: &ToolPermission,
        audit: &AuditEntry,
    ) -> Result<ToolPermission, StoreError> {
        self.write_audited(audit, |tx| {
            tx.prepare_cached(
                "INSERT INTO tool_permissions \
                 (id, name, description, enabled, icon, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                p.id,
                p.name.as_str(),
                p.description,
                p.enabled,
                p.icon,
                format_time(&p.created_at),
                format_time(&p.updated_at),
            ])
            .map_err(|e| tool_name_taken(e, p.name.as_str()))?;
            read_tool(tx, &p.id)?.ok_or(StoreError::NotFound)
        })
    }

    fn update_tool_permission(
        &self,
        id: &str,
        changes: &ToolPermissionChanges,
        audit: &AuditEntry,
    ) -> Result<ToolPermission, StoreError> {
        let new_name = changes.name.as_ref().map(ToolName::as_str);
        self.write_audited(audit, |tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE tool_permissions SET name = COALESCE(?1, name), \
                     description = COALESCE(?2, description), enabled = COALESCE(?3, enabled), \
                     icon = CASE WHEN ?4 THEN ?5 ELSE icon END, updated_at = ?6 WHERE id = ?7",
                )?
                .execute(params![
                    new_name,
                    changes.description,
                    changes.enabled,
                    changes.icon.is_some(),
                    changes.icon.clone().flatten(),
                    format_time(&crate::domain::now()),
                    id,
                ])
                .map_err(|e| tool_name_taken(e, new_name.unwrap_or_default()))?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            read_tool(tx, id)?.ok_or(StoreError::NotFound)
        })
    }

    fn delete_tool_permission(&self, id: &str, audit: &AuditEntry) -> Result<(), StoreError> {
        self.write_audited(audit, |tx| {
            // Overrides go with it (ON DELETE CASCADE).
            let deleted = tx
                .prepare_cached("DELETE FROM tool_permissions WHERE id = ?1")?
                .execute([id])?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }
}
