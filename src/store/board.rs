//! Board items: the repository interface (SQL lives in the backend, e.g. `sqlite/board.rs`).

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::audit::AuditEntry;
use crate::domain::board::{BoardFilter, BoardItem, BoardItemPatch};

/// Board items of one tenant. Mutations take the audit entry and record it in the same transaction.
pub trait BoardRepo {
    fn insert_board_item(&self, item: &BoardItem, audit: &AuditEntry) -> Result<(), StoreError>;
    /// One item; [`StoreError::NotFound`] if there is none with this id.
    fn board_item(&self, id: &str) -> Result<BoardItem, StoreError>;
    /// Up to `filter.page.fetch()` items, newest first, after the page's cursor.
    fn board_items(&self, filter: &BoardFilter) -> Result<Vec<BoardItem>, StoreError>;
    fn update_board_item(
        &self,
        id: &str,
        patch: &BoardItemPatch,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<BoardItem, StoreError>;
    /// Archives an item; [`StoreError::Conflict`] if it already is.
    fn archive_board_item(
        &self,
        id: &str,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<BoardItem, StoreError>;
}
