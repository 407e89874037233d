//! Board items: agents and people post status updates, blockers, findings and requests;
//! members change and archive them.

use super::{Scope, ServiceError};
use crate::audit::Target;
use crate::domain::board::{self, BoardFilter, BoardItem, BoardItemPatch, NewBoardItem};
use crate::domain::{Invalid, Page, now};
use crate::store::StoreError;

pub fn list(scope: &Scope, filter: BoardFilter) -> Result<Page<BoardItem>, ServiceError> {
    let rows = scope.store.board_items(&filter)?;
    Ok(Page::from_rows(rows, &filter.page, board::cursor_key))
}

/// Posts an item as `new.author_agent` (an agent's id or name) or, without one, as the user
/// `caller` (the person behind the request).
pub fn create(scope: &Scope, new: NewBoardItem, caller: String) -> Result<BoardItem, ServiceError> {
    let new = new.validate()?;
    let (author_agent_id, author_user_id) = match &new.author_agent {
        Some(reference) => {
            let id = scope.store.agent_id(reference)?.ok_or_else(|| {
                Invalid::new(
                    "author_agent",
                    format!("no agent with id or name '{reference}'"),
                )
            })?;
            (Some(id), None)
        }
        None => (None, Some(caller)),
    };
    let at = now();
    let item = BoardItem {
        id: uuid::Uuid::now_v7().to_string(),
        item_type: new.item_type,
        content: new.content,
        author_agent_id,
        author_user_id,
        archived_at: None,
        created_at: at,
        updated_at: at,
    };
    let audit = scope
        .audit("board_item.created", Target::new("board_item", &item.id))
        .with_details(serde_json::json!({
            "type": item.item_type.as_str(),
            "author_agent_id": item.author_agent_id,
        }));
    match scope.store.insert_board_item(&item, &audit) {
        Ok(()) => {}
        // The agent was deleted between the look-up and the insert (its foreign key failed).
        Err(StoreError::Conflict(_)) if item.author_agent_id.is_some() => {
            return Err(Invalid::new("author_agent", "the agent no longer exists").into());
        }
        Err(e) => return Err(e.into()),
    }
    scope.publish_value("board_item.created", &item);
    Ok(item)
}

pub fn update(scope: &Scope, id: &str, patch: BoardItemPatch) -> Result<BoardItem, ServiceError> {
    let patch = patch.validate()?;
    let audit = scope
        .audit("board_item.updated", Target::new("board_item", id))
        .with_details(serde_json::json!({ "fields": patch.fields() }));
    let item = scope
        .store
        .update_board_item(id, &patch, now(), &audit)
        .map_err(not_found)?;
    scope.publish_value("board_item.updated", &item);
    Ok(item)
}

/// Archives an item (hidden from the board unless asked for); archiving twice is a conflict.
pub fn archive(scope: &Scope, id: &str) -> Result<BoardItem, ServiceError> {
    let audit = scope.audit("board_item.archived", Target::new("board_item", id));
    let item = match scope.store.archive_board_item(id, now(), &audit) {
        Ok(item) => item,
        Err(StoreError::Conflict(message)) => return Err(ServiceError::conflict(message)),
        Err(e) => return Err(not_found(e)),
    };
    scope.publish_value("board_item.archived", &item);
    Ok(item)
}

/// The id is not repeated back: a path may carry anything, e.g. another tenant's ids.
fn not_found(e: StoreError) -> ServiceError {
    match e {
        StoreError::NotFound => ServiceError::not_found("no such board item in this tenant"),
        other => other.into(),
    }
}
