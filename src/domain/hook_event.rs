//! Agent hook events: what agent runtimes (e.g. Claude Code hooks) report as they work. Each
//! event is kept whole, as the runtime sent it; the fields the platform reads from it are the
//! event's name and its session.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::Invalid;
use super::page::{Page, PageRequest};
use super::text::{self, MAX_SHORT_CHARS};

/// Longest `hook_event_name` (characters).
const MAX_EVENT_NAME_CHARS: usize = 100;

/// One stored event.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HookEvent {
    pub id: String,
    /// The agent the event was posted for, if any.
    pub agent_id: Option<String>,
    /// The task the event was posted for, if any.
    pub task_id: Option<String>,
    /// The payload's `session_id`.
    pub session_id: Option<String>,
    /// The payload's `hook_event_name`, e.g. `PreToolUse`, `Stop`.
    pub event_type: String,
    /// The event as it was posted.
    #[schema(value_type = Object)]
    pub payload: Value,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: DateTime<Utc>,
}

/// A page of hook events, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HookEventPage {
    pub items: Vec<HookEvent>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl From<Page<HookEvent>> for HookEventPage {
    fn from(page: Page<HookEvent>) -> Self {
        Self {
            items: page.items,
            next_cursor: page.next_cursor,
        }
    }
}

/// The answer to `POST /api/events`: the ids of the stored events, in the order posted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HookEventsReceived {
    pub count: usize,
    pub ids: Vec<String>,
}

/// An event checked and ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewHookEvent {
    pub event_type: String,
    pub session_id: Option<String>,
    pub payload: Map<String, Value>,
}

/// The limits a posted batch must keep.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_batch: usize,
    pub max_event_bytes: usize,
}

/// Why a posted body was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("a batch holds at most {max} events (got {got})")]
    TooMany { max: usize, got: usize },
    #[error("event {field} is {size} bytes; at most {max} bytes are accepted per event")]
    EventTooLarge {
        field: String,
        size: usize,
        max: usize,
    },
}

/// Parses a posted body: one event object, or an array of them (a batch). Errors name the
/// field (`hook_event_name`), in a batch with the event's index (`body[3].hook_event_name`).
pub fn parse_batch(body: Value, limits: BatchLimits) -> Result<Vec<NewHookEvent>, BatchError> {
    match body {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(Invalid::new("body", "must hold at least one event").into());
            }
            if items.len() > limits.max_batch {
                return Err(BatchError::TooMany {
                    max: limits.max_batch,
                    got: items.len(),
                });
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| parse_event(item, &format!("body[{i}]"), limits))
                .collect()
        }
        single => Ok(vec![parse_event(single, "body", limits)?]),
    }
}

fn parse_event(item: Value, at: &str, limits: BatchLimits) -> Result<NewHookEvent, BatchError> {
    let Value::Object(payload) = item else {
        return Err(Invalid::new(at.to_owned(), "must be a JSON object (a hook event)").into());
    };
    // A single event's fields are named plainly; a batch's by index (`body[3].session_id`).
    let field = |name: &str| {
        if at == "body" {
            name.to_owned()
        } else {
            format!("{at}.{name}")
        }
    };
    let event_type = match payload.get("hook_event_name") {
        Some(Value::String(name)) => {
            text::short_required("hook_event_name", name, MAX_EVENT_NAME_CHARS)
                .map_err(|e| Invalid::new(field("hook_event_name"), e.message))?
        }
        Some(_) => {
            return Err(Invalid::new(field("hook_event_name"), "must be a string").into());
        }
        None => return Err(Invalid::new(field("hook_event_name"), "is required").into()),
    };
    let session_id = match payload.get("session_id") {
        Some(Value::String(id)) => Some(
            text::short("session_id", id, MAX_SHORT_CHARS)
                .map_err(|e| Invalid::new(field("session_id"), e.message))?,
        ),
        Some(Value::Null) | None => None,
        Some(_) => return Err(Invalid::new(field("session_id"), "must be a string").into()),
    };
    // Serialising cannot fail for a `Value`; the size is that of the JSON that is stored.
    let size = serde_json::to_vec(&payload)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > limits.max_event_bytes {
        return Err(BatchError::EventTooLarge {
            field: at.to_owned(),
            size,
            max: limits.max_event_bytes,
        });
    }
    Ok(NewHookEvent {
        event_type,
        session_id,
        payload,
    })
}

/// Which events to list.
#[derive(Debug, Clone, PartialEq)]
pub struct HookEventFilter {
    pub session_id: Option<String>,
    pub event_type: Option<String>,
    pub agent_id: Option<String>,
    pub task_id: Option<String>,
    pub page: PageRequest,
}

impl HookEventFilter {
    /// From the query parameters of `GET /api/events`.
    pub fn parse(
        session_id: Option<String>,
        event_type: Option<String>,
        agent_id: Option<String>,
        task_id: Option<String>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Self, Invalid> {
        let page = PageRequest::parse(limit, cursor)?;
        if let Some(key) = &page.after {
            super::board::parse_cursor_key(key)?;
        }
        Ok(Self {
            session_id,
            event_type,
            agent_id,
            task_id,
            page,
        })
    }
}

/// The sort key of an event in the list (newest first): receipt time, then id.
pub fn cursor_key(event: &HookEvent) -> String {
    format!(
        "{}|{}",
        super::time::format_rfc3339(&event.received_at),
        event.id
    )
}

/// How many events a tenant keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub max_rows: u64,
    pub max_age: chrono::Duration,
}

/// What one retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub deleted_by_age: u64,
    pub deleted_by_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: BatchLimits = BatchLimits {
        max_batch: 3,
        max_event_bytes: 1024,
    };

    fn field_of(err: BatchError) -> String {
        match err {
            BatchError::Invalid(i) => i.field.into_owned(),
            other => panic!("not a validation error: {other}"),
        }
    }

    #[test]
    fn one_event_or_a_batch_is_accepted_whole() {
        let one = parse_batch(
            json!({ "hook_event_name": "Stop", "session_id": "s1", "extra": [1, 2] }),
            LIMITS,
        )
        .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].event_type, "Stop");
        assert_eq!(one[0].session_id.as_deref(), Some("s1"));
        assert_eq!(one[0].payload["extra"], json!([1, 2]));
        let batch = parse_batch(
            json!([{ "hook_event_name": "PreToolUse" }, { "hook_event_name": "PostToolUse" }]),
            LIMITS,
        )
        .unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[1].session_id, None);
    }

    #[test]
    fn bad_events_are_named_by_index_and_field() {
        let err = parse_batch(json!([{ "hook_event_name": "Stop" }, 42]), LIMITS).unwrap_err();
        assert_eq!(field_of(err), "body[1]");
        let err = parse_batch(json!([{ "hook_event_name": "Stop" }, {}]), LIMITS).unwrap_err();
        assert_eq!(field_of(err), "body[1].hook_event_name");
        let err = parse_batch(json!({ "hook_event_name": 7 }), LIMITS).unwrap_err();
        assert_eq!(field_of(err), "hook_event_name");
        let err = parse_batch(
            json!({ "hook_event_name": "Stop", "session_id": 1 }),
            LIMITS,
        )
        .unwrap_err();
        assert_eq!(field_of(err), "session_id");
        assert_eq!(
            field_of(parse_batch(json!([]), LIMITS).unwrap_err()),
            "body"
        );
        assert_eq!(
            field_of(parse_batch(json!("Stop"), LIMITS).unwrap_err()),
            "body"
        );
    }

    #[test]
    fn batches_and_events_over_the_limits_are_refused() {
        let four = json!([
            { "hook_event_name": "A" }, { "hook_event_name": "B" },
            { "hook_event_name": "C" }, { "hook_event_name": "D" }
        ]);
        assert_eq!(
            parse_batch(four, LIMITS).unwrap_err(),
            BatchError::TooMany { max: 3, got: 4 }
        );
        let big = json!({ "hook_event_name": "A", "tool_input": "x".repeat(2000) });
        assert!(matches!(
            parse_batch(big, LIMITS).unwrap_err(),
            BatchError::EventTooLarge { .. }
        ));
    }
}
