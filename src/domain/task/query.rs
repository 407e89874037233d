//! What task lists and the board ask for: filters, literal search text, board columns.

use chrono::{DateTime, Utc};
use utoipa::ToSchema;

use super::{BoardColumn, ListedTask, Priority, TaskStatus};
use crate::domain::Invalid;
use crate::domain::text;

/// Longest search text (characters) and most words in it.
pub const MAX_SEARCH_CHARS: usize = 200;
pub const MAX_SEARCH_TERMS: usize = 16;

/// Full-text search text: words a task's prompt or result must all contain. Every character is
/// literal (no operators, no wildcards): `100%`, `a_b`, `"`, `*`, `OR` are just text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText {
    terms: Vec<String>,
}

impl SearchText {
    /// `None` for blank text (no search at all).
    pub fn parse(q: &str) -> Result<Option<Self>, Invalid> {
        text::short("q", q, MAX_SEARCH_CHARS)?;
        let terms: Vec<String> = q.split_whitespace().map(str::to_owned).collect();
        if terms.len() > MAX_SEARCH_TERMS {
            return Err(Invalid::new(
                "q",
                format!("must have at most {MAX_SEARCH_TERMS} words"),
            ));
        }
        Ok((!terms.is_empty()).then_some(SearchText { terms }))
    }

    /// The words, as typed.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }
}

/// Which tasks `GET /api/tasks` lists (every filter optional; all given must match).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    /// Any of these statuses (empty: any).
    pub statuses: Vec<TaskStatus>,
    /// An agent id (resolved from the id or name the client gave).
    pub assignee_id: Option<String>,
    pub priority: Option<Priority>,
    pub parent_id: Option<String>,
    pub search: Option<SearchText>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// Parses `status=pending,blocked` (one or comma-separated).
pub fn parse_statuses(value: &str) -> Result<Vec<TaskStatus>, Invalid> {
    let mut out = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let status = TaskStatus::parse(part).ok_or_else(|| {
            Invalid::new(
                "status",
                "must be one or more (comma-separated) of pending, running, review, completed, \
                 failed, blocked, cancelled",
            )
        })?;
        if !out.contains(&status) {
            out.push(status);
        }
    }
    Ok(out)
}

/// The default and the largest number of tasks shown per board column.
pub const BOARD_DEFAULT_LIMIT: u32 = 20;
pub const BOARD_MAX_LIMIT: u32 = 100;

/// `GET /api/tasks/board`: the kanban board. (Its JSON is written by `api::tasks`.)
#[derive(Debug, Clone, Default, PartialEq, ToSchema)]
pub struct Board {
    /// pending and blocked tasks
    pub backlog: BoardColumnItems,
    /// running tasks
    pub in_progress: BoardColumnItems,
    pub review: BoardColumnItems,
    /// completed, failed and cancelled tasks
    pub done: BoardColumnItems,
}

impl Board {
    pub fn column_mut(&mut self, column: BoardColumn) -> &mut BoardColumnItems {
        match column {
            BoardColumn::Backlog => &mut self.backlog,
            BoardColumn::InProgress => &mut self.in_progress,
            BoardColumn::Review => &mut self.review,
            BoardColumn::Done => &mut self.done,
        }
    }
}

/// One column: how many tasks it holds and the newest of them (up to the limit).
#[derive(Debug, Clone, Default, PartialEq, ToSchema)]
pub struct BoardColumnItems {
    pub count: i64,
    #[schema(value_type = Vec<super::Task>)]
    pub items: Vec<ListedTask>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskStatus::*;

    #[test]
    fn search_text_is_split_into_literal_words_and_bounded() {
        let q = SearchText::parse(" 100%  NEAR( \"x\" ").unwrap().unwrap();
        assert_eq!(q.terms(), &["100%", "NEAR(", "\"x\""]);
        assert_eq!(SearchText::parse("   ").unwrap(), None);
        assert_eq!(SearchText::parse(&"w ".repeat(17)).unwrap_err().field, "q");
        assert_eq!(SearchText::parse("a\u{7}").unwrap_err().field, "q");
    }

    #[test]
    fn status_filters_take_one_or_a_comma_separated_list() {
        assert_eq!(parse_statuses("pending").unwrap(), vec![Pending]);
        assert_eq!(
            parse_statuses("pending, blocked,pending").unwrap(),
            vec![Pending, Blocked]
        );
        assert_eq!(parse_statuses("done").unwrap_err().field, "status");
    }
}
