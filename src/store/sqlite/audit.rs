//! SQL of the two audit tables: `platform_audit_log` in the registry and `audit_log` in every
//! tenant file. They have the same columns; the statements differ only in the table name, which
//! is fixed at compile time (never user input).

use rusqlite::{Connection, Row, params};

use super::registry::{format_time, parse_time};
use crate::audit::{ActorKind, AuditEntry, AuditFilter};
use crate::store::StoreError;

/// Which audit table a statement is for.
#[derive(Debug, Clone, Copy)]
pub(super) enum AuditTable {
    Platform,
    Tenant,
}

macro_rules! insert_sql {
    ($table:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (id, actor_type, actor_id, action, target_type, target_id, details, request_id, \
             ip, user_agent, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        )
    };
}

// Every filter is `(?n IS NULL OR column = ?n)`, so one statement serves every combination and
// stays in the statement cache. Newest first; the cursor is the last id of the previous page.
macro_rules! page_sql {
    ($table:literal) => {
        concat!(
            "SELECT id, actor_type, actor_id, action, target_type, target_id, details, \
             request_id, ip, user_agent, created_at FROM ",
            $table,
            " WHERE (?1 IS NULL OR actor_type = ?1) AND (?2 IS NULL OR actor_id = ?2) \
             AND (?3 IS NULL OR action = ?3) AND (?4 IS NULL OR target_type = ?4) \
             AND (?5 IS NULL OR target_id = ?5) AND (?6 IS NULL OR created_at >= ?6) \
             AND (?7 IS NULL OR created_at < ?7) AND (?8 IS NULL OR id < ?8) \
             ORDER BY id DESC LIMIT ?9"
        )
    };
}

impl AuditTable {
    fn insert_sql(self) -> &'static str {
        match self {
            AuditTable::Platform => insert_sql!("platform_audit_log"),
            AuditTable::Tenant => insert_sql!("audit_log"),
        }
    }

    fn page_sql(self) -> &'static str {
        match self {
            AuditTable::Platform => page_sql!("platform_audit_log"),
            AuditTable::Tenant => page_sql!("audit_log"),
        }
    }
}

pub(super) fn append(
    conn: &Connection,
    table: AuditTable,
    e: &AuditEntry,
) -> Result<(), StoreError> {
    conn.prepare_cached(table.insert_sql())?.execute(params![
        e.id,
        e.actor_type.as_str(),
        e.actor_id,
        e.action,
        e.target_type,
        e.target_id,
        e.details.to_string(),
        e.request_id,
        e.ip,
        e.user_agent,
        format_time(&e.created_at),
    ])?;
    Ok(())
}

pub(super) fn page(
    conn: &Connection,
    table: AuditTable,
    f: &AuditFilter,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(table.page_sql())?;
    let mut rows = stmt.query(params![
        f.actor_type.map(ActorKind::as_str),
        f.actor_id,
        f.action,
        f.target_type,
        f.target_id,
        f.since.as_ref().map(format_time),
        f.until.as_ref().map(format_time),
        f.before_id,
        f.limit,
    ])?;
    let mut entries = Vec::new();
    while let Some(row) = rows.next()? {
        entries.push(entry_from_row(row)?);
    }
    Ok(entries)
}

fn entry_from_row(row: &Row<'_>) -> Result<AuditEntry, StoreError> {
    let actor_type: String = row.get(1)?;
    let details: String = row.get(6)?;
    let created_at: String = row.get(10)?;
    Ok(AuditEntry {
        id: row.get(0)?,
        actor_type: ActorKind::parse(&actor_type)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown actor type '{actor_type}'")))?,
        actor_id: row.get(2)?,
        action: row.get(3)?,
        target_type: row.get(4)?,
        target_id: row.get(5)?,
        details: serde_json::from_str(&details)
            .map_err(|e| StoreError::Corrupt(format!("bad audit details: {e}")))?,
        request_id: row.get(7)?,
        ip: row.get(8)?,
        user_agent: row.get(9)?,
        created_at: parse_time(&created_at)?,
    })
}
