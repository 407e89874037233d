//! SQL of board items in a tenant database.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};

use super::registry::{format_time, parse_time};
use super::tenants::SqliteTenantStore;
use crate::audit::AuditEntry;
use crate::domain::board::{self, BoardFilter, BoardItem, BoardItemPatch, BoardItemType};
use crate::store::StoreError;
use crate::store::board::BoardRepo;

const COLUMNS: &str =
    "id, type, content, author_agent_id, author_user_id, archived_at, created_at, updated_at";

fn item_from_row(r: &Row<'_>) -> Result<BoardItem, StoreError> {
    let item_type: String = r.get(1)?;
    let archived_at: Option<String> = r.get(5)?;
    Ok(BoardItem {
        id: r.get(0)?,
        item_type: BoardItemType::parse(&item_type)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown board item type '{item_type}'")))?,
        content: r.get(2)?,
        author_agent_id: r.get(3)?,
        author_user_id: r.get(4)?,
        archived_at: archived_at.as_deref().map(parse_time).transpose()?,
        created_at: parse_time(&r.get::<_, String>(6)?)?,
        updated_at: parse_time(&r.get::<_, String>(7)?)?,
    })
}

fn read_item(conn: &Connection, id: &str) -> Result<BoardItem, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM board_items WHERE id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(row) => item_from_row(row),
        None => Err(StoreError::NotFound),
    }
}

impl BoardRepo for SqliteTenantStore {
    fn insert_board_item(&self, item: &BoardItem, audit: &AuditEntry) -> Result<(), StoreError> {
        self.write_audited(audit, |tx| {
            tx.prepare_cached(
                "INSERT INTO board_items (id, type, content, author_agent_id, author_user_id, \
                 archived_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7)",
            )?
            .execute(params![
                item.id,
                item.item_type.as_str(),
                item.content,
                item.author_agent_id,
                item.author_user_id,
                format_time(&item.created_at),
                format_time(&item.updated_at),
            ])?;
            Ok(())
        })
    }

    fn board_item(&self, id: &str) -> Result<BoardItem, StoreError> {
        read_item(&*self.read()?, id)
    }

    fn board_items(&self, filter: &BoardFilter) -> Result<Vec<BoardItem>, StoreError> {
        board_items_tx(&*self.read()?, filter)
    }

    fn update_board_item(
        &self,
        id: &str,
        patch: &BoardItemPatch,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<BoardItem, StoreError> {
        self.write_audited(audit, |tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE board_items SET type = COALESCE(?2, type), \
                     content = COALESCE(?3, content), updated_at = ?4 WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    patch.item_type.map(BoardItemType::as_str),
                    patch.content,
                    format_time(&at),
                ])?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            read_item(tx, id)
        })
    }

    fn archive_board_item(
        &self,
        id: &str,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<BoardItem, StoreError> {
        self.write_audited(audit, |tx| {
            let item = read_item(tx, id)?;
            if item.archived_at.is_some() {
                return Err(StoreError::Conflict(
                    "the board item is already archived".into(),
                ));
            }
            let at = format_time(&at);
            tx.prepare_cached(
                "UPDATE board_items SET archived_at = ?2, updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![id, at])?;
            read_item(tx, id)
        })
    }
}

/// A page of board items (`BoardFilter`) read on `conn`.
pub(super) fn board_items_tx(
    conn: &Connection,
    filter: &BoardFilter,
) -> Result<Vec<BoardItem>, StoreError> {
    let after = match &filter.page.after {
        Some(key) => {
            Some(board::parse_cursor_key(key).map_err(|e| StoreError::Internal(e.to_string()))?)
        }
        None => None,
    };
    let (after_at, after_id) = after.unzip();
    // One statement for every combination of filters: a NULL parameter turns its
    // condition off. Row values keep the cursor stable when items share a millisecond.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM board_items \
         WHERE (?1 IS NULL OR type = ?1) \
         AND (?2 IS NULL OR created_at >= ?2) \
         AND (?3 OR archived_at IS NULL) \
         AND (?4 IS NULL OR (created_at, id) < (?4, ?5)) \
         ORDER BY created_at DESC, id DESC LIMIT ?6"
    ))?;
    let mut rows = stmt.query(params![
        filter.item_type.map(BoardItemType::as_str),
        filter.since.as_ref().map(format_time),
        filter.include_archived,
        after_at,
        after_id,
        filter.page.fetch(),
    ])?;
    let mut items = Vec::new();
    while let Some(row) = rows.next()? {
        items.push(item_from_row(row)?);
    }
    Ok(items)
}
