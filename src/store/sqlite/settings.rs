//! SQL of workspace settings and tool permissions in a tenant database.

use rusqlite::{Connection, params};

use super::registry::{format_time, parse_time};
use super::tenants::SqliteTenantStore;
use crate::audit::AuditEntry;
use crate::domain::workspace::{Workspace, WorkspacePatch};
use crate::store::StoreError;
use crate::store::settings::SettingsRepo;

pub(super) fn read_workspace(conn: &Connection) -> Result<Workspace, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT name, description, timezone, language, default_provider_id, default_model, \
             default_assignee_id, allow_any_delegation, created_at, updated_at \
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
            ])?;
            read_workspace(tx)
        })
    }
}
