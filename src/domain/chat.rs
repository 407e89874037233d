//! Chat: threads of messages between humans and agents.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Invalid;
use super::text::{self, MAX_LONG_BYTES, MAX_SHORT_CHARS};

/// Characters of a thread's last message shown in the thread list.
pub const PREVIEW_CHARS: usize = 200;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// Between agents (sent with a platform tool).
    Direct,
    /// Written by the platform (e.g. "task finished").
    System,
    /// A human's chat message, or an agent's reply to one.
    Chat,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Direct => "direct",
            MessageKind::System => "system",
            MessageKind::Chat => "chat",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(MessageKind::Direct),
            "system" => Some(MessageKind::System),
            "chat" => Some(MessageKind::Chat),
            _ => None,
        }
    }
}

/// One message, as stored and as sent.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Message {
    pub id: String,
    pub thread_id: String,
    /// The agent that wrote it (null when a human or the platform did).
    pub from_agent_id: Option<String>,
    /// The user who wrote it (null when an agent or the platform did).
    pub from_user_id: Option<String>,
    pub to_agent_id: Option<String>,
    /// Whether it is addressed to the humans of the tenant (an agent's reply).
    pub to_human: bool,
    pub body: String,
    pub kind: MessageKind,
    /// Whether a human has read it (`read_at` says when).
    pub read: bool,
    #[serde(serialize_with = "super::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub read_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "super::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub edited_at: Option<DateTime<Utc>>,
    /// The task that asks the recipient agent to reply (messages humans send).
    pub reply_task_id: Option<String>,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

/// The start of a thread's newest message, for the thread list.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MessagePreview {
    pub id: String,
    pub from_agent_id: Option<String>,
    pub from_user_id: Option<String>,
    /// The first characters of the body.
    pub body: String,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

/// Who takes part in a thread: everyone who wrote or was written to in it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Participants {
    pub agent_ids: Vec<String>,
    pub user_ids: Vec<String>,
}

/// A thread, as listed (`GET /api/threads`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Thread {
    pub id: String,
    pub subject: Option<String>,
    pub participants: Participants,
    /// Null only for a thread whose messages were all deleted.
    pub last_message: Option<MessagePreview>,
    pub message_count: i64,
    /// Messages to humans not read yet.
    pub unread_count: i64,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub last_message_at: DateTime<Utc>,
}

/// `POST /api/messages`: a human writes to an agent.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// The agent's id or name.
    pub to: String,
    pub body: String,
    /// The thread to post in; left out: a new thread.
    pub thread_id: Option<String>,
    /// The subject of a new thread (ignored when `thread_id` is given).
    pub subject: Option<String>,
}

impl NewMessage {
    pub fn validate(mut self) -> Result<Self, Invalid> {
        self.to = text::short_required("to", &self.to, MAX_SHORT_CHARS)?;
        self.body = text::long_required("body", &self.body, MAX_LONG_BYTES)?;
        if let Some(subject) = &self.subject {
            self.subject = Some(text::short("subject", subject, MAX_SHORT_CHARS)?);
        }
        Ok(self)
    }
}

/// `PATCH /api/messages/{id}`: mark read (or unread), and/or edit the body of a message a
/// human wrote.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessagePatch {
    pub read: Option<bool>,
    pub body: Option<String>,
}

impl MessagePatch {
    pub fn validate(mut self) -> Result<Self, Invalid> {
        if let Some(body) = &self.body {
            self.body = Some(text::long_required("body", body, MAX_LONG_BYTES)?);
        }
        if self.read.is_none() && self.body.is_none() {
            return Err(Invalid::new("body", "set `read` or `body`"));
        }
        Ok(self)
    }
}

/// The prompt of the task that asks an agent to answer a human's message.
pub fn reply_prompt(body: &str) -> String {
    format!(
        "A human sent you this chat message. Reply to them with the send_message tool \
         (the task context names the thread).\n\n---\n{body}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_needs_a_recipient_and_a_body_within_the_limit() {
        let msg = |json: &str| {
            serde_json::from_str::<NewMessage>(json)
                .unwrap()
                .validate()
                .map_err(|e| e.field)
        };
        assert!(msg(r#"{"to": "ada", "body": "hi ✓"}"#).is_ok());
        assert_eq!(msg(r#"{"to": "ada", "body": " "}"#).unwrap_err(), "body");
        assert_eq!(msg(r#"{"to": "", "body": "hi"}"#).unwrap_err(), "to");
        let long = format!(
            r#"{{"to": "a", "body": "{}"}}"#,
            "b".repeat(MAX_LONG_BYTES + 1)
        );
        assert_eq!(msg(&long).unwrap_err(), "body");
    }

    #[test]
    fn a_message_patch_must_change_something() {
        let patch = |json: &str| {
            serde_json::from_str::<MessagePatch>(json)
                .unwrap()
                .validate()
        };
        assert!(patch(r#"{"read": true}"#).is_ok());
        assert!(patch("{}").is_err());
        assert_eq!(patch(r#"{"body": ""}"#).unwrap_err().field, "body");
    }

    #[test]
    fn the_reply_prompt_quotes_the_message() {
        assert!(reply_prompt("what's up?").ends_with("what's up?"));
    }
}
