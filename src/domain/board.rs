//! Board items: status updates, blockers, findings and requests that agents (or people) post
//! for the whole organisation to see.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Invalid;
use super::page::{Page, PageRequest};
use super::text::{self, MAX_LONG_BYTES};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BoardItemType {
    StatusUpdate,
    Blocker,
    Finding,
    Request,
}

impl BoardItemType {
    pub fn as_str(self) -> &'static str {
        match self {
            BoardItemType::StatusUpdate => "status_update",
            BoardItemType::Blocker => "blocker",
            BoardItemType::Finding => "finding",
            BoardItemType::Request => "request",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "status_update" => Some(BoardItemType::StatusUpdate),
            "blocker" => Some(BoardItemType::Blocker),
            "finding" => Some(BoardItemType::Finding),
            "request" => Some(BoardItemType::Request),
            _ => None,
        }
    }
}

/// One item on the board. Its author is an agent or a person, never both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BoardItem {
    pub id: String,
    #[serde(rename = "type")]
    pub item_type: BoardItemType,
    pub content: String,
    /// The agent that posted it (null for a person, or once the agent is deleted).
    pub author_agent_id: Option<String>,
    /// The user who posted it (null for an agent).
    pub author_user_id: Option<String>,
    /// When it was archived; archived items are hidden from the list unless asked for.
    #[serde(serialize_with = "super::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub archived_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

/// A page of board items, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BoardItemPage {
    pub items: Vec<BoardItem>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl From<Page<BoardItem>> for BoardItemPage {
    fn from(page: Page<BoardItem>) -> Self {
        Self {
            items: page.items,
            next_cursor: page.next_cursor,
        }
    }
}

/// `POST /api/board-items`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBoardItem {
    #[serde(rename = "type")]
    pub item_type: BoardItemType,
    /// Markdown, up to 100 KB.
    pub content: String,
    /// Posts as this agent (its id or name). Left out: the item is the caller's own.
    pub author_agent: Option<String>,
}

impl NewBoardItem {
    pub fn validate(mut self) -> Result<Self, Invalid> {
        self.content = text::long_required("content", &self.content, MAX_LONG_BYTES)?;
        if let Some(agent) = &self.author_agent {
            text::short_required("author_agent", agent, text::MAX_SHORT_CHARS)?;
        }
        Ok(self)
    }
}

/// `PATCH /api/board-items/{id}`: fields left out stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BoardItemPatch {
    #[serde(rename = "type")]
    pub item_type: Option<BoardItemType>,
    pub content: Option<String>,
}

impl BoardItemPatch {
    pub fn validate(mut self) -> Result<Self, Invalid> {
        if let Some(content) = &self.content {
            self.content = Some(text::long_required("content", content, MAX_LONG_BYTES)?);
        }
        Ok(self)
    }

    /// The names of the fields set (what the audit entry records).
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("type", self.item_type.is_some()),
            ("content", self.content.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// Which board items to list.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardFilter {
    pub item_type: Option<BoardItemType>,
    /// Items created at or after this time.
    pub since: Option<DateTime<Utc>>,
    pub include_archived: bool,
    pub page: PageRequest,
}

impl BoardFilter {
    /// From the query parameters of `GET /api/board-items`.
    pub fn parse(
        item_type: Option<&str>,
        since: Option<&str>,
        include_archived: Option<bool>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Self, Invalid> {
        let item_type = item_type
            .map(|t| {
                BoardItemType::parse(t).ok_or_else(|| {
                    Invalid::new(
                        "type",
                        "must be one of status_update, blocker, finding, request",
                    )
                })
            })
            .transpose()?;
        let since = since
            .map(|s| {
                super::time::parse_rfc3339(s).map_err(|_| {
                    Invalid::new(
                        "since",
                        "must be an RFC 3339 time, e.g. 2026-11-23T08:00:00Z",
                    )
                })
            })
            .transpose()?;
        let page = PageRequest::parse(limit, cursor)?;
        if let Some(key) = &page.after {
            parse_cursor_key(key)?;
        }
        Ok(Self {
            item_type,
            since,
            include_archived: include_archived.unwrap_or(false),
            page,
        })
    }
}

/// The sort key of an item in the list (newest first): creation time, then id.
pub fn cursor_key(item: &BoardItem) -> String {
    format!(
        "{}|{}",
        super::time::format_rfc3339(&item.created_at),
        item.id
    )
}

/// Splits a cursor key made by [`cursor_key`].
pub fn parse_cursor_key(key: &str) -> Result<(String, String), Invalid> {
    key.split_once('|')
        .filter(|(at, _)| super::time::parse_rfc3339(at).is_ok())
        .map(|(at, id)| (at.to_owned(), id.to_owned()))
        .ok_or_else(|| Invalid::new("cursor", "is not a cursor this server returned"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_must_be_present_and_at_most_100_kb() {
        let new = |content: String| NewBoardItem {
            item_type: BoardItemType::Finding,
            content,
            author_agent: None,
        };
        assert!(new("déjà vu 🚀".into()).validate().is_ok());
        assert_eq!(new("  ".into()).validate().unwrap_err().field, "content");
        assert!(new("x".repeat(MAX_LONG_BYTES)).validate().is_ok());
        assert_eq!(
            new("x".repeat(MAX_LONG_BYTES + 1))
                .validate()
                .unwrap_err()
                .field,
            "content"
        );
    }

    #[test]
    fn types_are_the_four_of_the_contract() {
        let item: NewBoardItem =
            serde_json::from_str(r#"{"type": "status_update", "content": "ok"}"#).unwrap();
        assert_eq!(item.item_type, BoardItemType::StatusUpdate);
        assert!(
            serde_json::from_str::<NewBoardItem>(r#"{"type": "memo", "content": "x"}"#).is_err()
        );
        for t in ["status_update", "blocker", "finding", "request"] {
            assert_eq!(BoardItemType::parse(t).unwrap().as_str(), t);
        }
    }

    #[test]
    fn a_cursor_key_round_trips_and_garbage_is_refused() {
        assert_eq!(
            parse_cursor_key("2026-11-23T00:00:00.000Z|abc").unwrap(),
            ("2026-11-23T00:00:00.000Z".into(), "abc".into())
        );
        assert!(parse_cursor_key("nonsense").is_err());
        assert!(parse_cursor_key("yesterday|abc").is_err());
    }
}
