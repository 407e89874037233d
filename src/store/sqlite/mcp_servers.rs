//! SQL of mcp server configurations in a tenant database.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};

use super::registry::{format_time, parse_time};
use super::tenants::SqliteTenantStore;
use crate::audit::AuditEntry;
use crate::domain::PageRequest;
use crate::domain::mcp_server::{McpProtocol, McpServer, McpServerPatch, McpStatus, PingResult};
use crate::store::StoreError;
use crate::store::mcp_servers::McpServerRepo;

const COLUMNS: &str = "id, name, protocol, uri, status, tool_count, last_ping_at, error_message, \
                       consecutive_failures, icon_name, icon_color, created_at, updated_at";

fn server_from_row(r: &Row<'_>) -> Result<McpServer, StoreError> {
    let protocol: String = r.get(2)?;
    let status: String = r.get(4)?;
    let last_ping_at: Option<String> = r.get(6)?;
    Ok(McpServer {
        id: r.get(0)?,
        name: r.get(1)?,
        protocol: McpProtocol::parse(&protocol)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown MCP protocol '{protocol}'")))?,
        uri: r.get(3)?,
        status: McpStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown MCP status '{status}'")))?,
        tool_count: r.get(5)?,
        last_ping_at: last_ping_at.as_deref().map(parse_time).transpose()?,
        error_message: r.get(7)?,
        consecutive_failures: r.get(8)?,
        icon_name: r.get(9)?,
        icon_color: r.get(10)?,
        created_at: parse_time(&r.get::<_, String>(11)?)?,
        updated_at: parse_time(&r.get::<_, String>(12)?)?,
    })
}

fn read_server(conn: &Connection, id: &str) -> Result<McpServer, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM mcp_servers WHERE id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(row) => server_from_row(row),
        None => Err(StoreError::NotFound),
    }
}

impl McpServerRepo for SqliteTenantStore {
    fn insert_mcp_server(&self, server: &McpServer, audit: &AuditEntry) -> Result<(), StoreError> {
        self.write_audited(audit, |tx| {
            tx.prepare_cached(
                "INSERT INTO mcp_servers (id, name, protocol, uri, status, tool_count, \
                 consecutive_failures, icon_name, icon_color, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                server.id,
                server.name,
                server.protocol.as_str(),
                server.uri,
                server.status.as_str(),
                server.icon_name,
                server.icon_color,
                format_time(&server.created_at),
                format_time(&server.updated_at),
            ])?;
            Ok(())
        })
    }

    fn mcp_server(&self, id: &str) -> Result<McpServer, StoreError> {
        read_server(&*self.read()?, id)
    }

    fn mcp_servers(&self, page: &PageRequest) -> Result<Vec<McpServer>, StoreError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM mcp_servers WHERE (?1 IS NULL OR name > ?1) \
             ORDER BY name LIMIT ?2"
        ))?;
        let mut rows = stmt.query(params![page.after, page.fetch()])?;
        let mut servers = Vec::new();
        while let Some(row) = rows.next()? {
            servers.push(server_from_row(row)?);
        }
        Ok(servers)
    }

    fn update_mcp_server(
        &self,
        id: &str,
        patch: &McpServerPatch,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<McpServer, StoreError> {
        self.write_audited(audit, |tx| {
            // A new target has not been pinged: what the last ping found no longer applies.
            let retarget = patch.uri.is_some() || patch.protocol.is_some();
            let changed = tx
                .prepare_cached(
                    "UPDATE mcp_servers SET name = COALESCE(?2, name), \
                     protocol = COALESCE(?3, protocol), uri = COALESCE(?4, uri), \
                     icon_name = CASE WHEN ?5 THEN ?6 ELSE icon_name END, \
                     icon_color = CASE WHEN ?7 THEN ?8 ELSE icon_color END, \
                     status = CASE WHEN ?9 THEN 'disconnected' ELSE status END, \
                     tool_count = CASE WHEN ?9 THEN 0 ELSE tool_count END, \
                     error_message = CASE WHEN ?9 THEN NULL ELSE error_message END, \
                     consecutive_failures = CASE WHEN ?9 THEN 0 ELSE consecutive_failures END, \
                     updated_at = ?10 WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    patch.name,
                    patch.protocol.map(McpProtocol::as_str),
                    patch.uri,
                    patch.icon_name.is_some(),
                    patch.icon_name.clone().flatten(),
                    patch.icon_color.is_some(),
                    patch.icon_color.clone().flatten(),
                    retarget,
                    format_time(&at),
                ])?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            read_server(tx, id)
        })
    }

    fn delete_mcp_server(&self, id: &str, audit: &AuditEntry) -> Result<(), StoreError> {
        self.write_audited(audit, |tx| {
            let deleted = tx
                .prepare_cached("DELETE FROM mcp_servers WHERE id = ?1")?
                .execute([id])?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    fn record_mcp_ping(
        &self,
        id: &str,
        result: &PingResult,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<McpServer, StoreError> {
        self.write_audited(audit, |tx| {
            let at = format_time(&at);
            let changed = match result {
                PingResult::Connected { tool_count } => tx
                    .prepare_cached(
                        "UPDATE mcp_servers SET status = 'connected', tool_count = ?2, \
                         last_ping_at = ?3, error_message = NULL, consecutive_failures = 0, \
                         updated_at = ?3 WHERE id = ?1",
                    )?
                    .execute(params![id, tool_count, at])?,
                // The tool count of the last successful ping stays: it is still the best
                // knowledge of what the server offers.
                PingResult::Failed { error } => tx
                    .prepare_cached(
                        "UPDATE mcp_servers SET status = 'error', last_ping_at = ?3, \
                         error_message = ?2, consecutive_failures = consecutive_failures + 1, \
                         updated_at = ?3 WHERE id = ?1",
                    )?
                    .execute(params![id, error, at])?,
            };
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            read_server(tx, id)
        })
    }
}
