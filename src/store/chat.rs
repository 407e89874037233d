//! Chat threads and messages: the repository interface (SQL lives in the backend, e.g.
//! `sqlite/chat.rs`).

use super::StoreError;
use super::tasks::TaskInsert;
use crate::audit::AuditEntry;
use crate::domain::chat::{Message, MessagePatch, Thread};
use crate::domain::task::Task;
use crate::domain::{Page, PageRequest};

/// A human's message to an agent and the task asking the agent to reply, written together.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagePost {
    pub message_id: String,
    /// An existing thread, or the id of the new thread to start.
    pub thread: ThreadChoice,
    pub from_user_id: String,
    pub to_agent_id: String,
    pub body: String,
    pub reply_task: TaskInsert,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ThreadChoice {
    Existing(String),
    New { id: String, subject: Option<String> },
}

impl ThreadChoice {
    pub fn id(&self) -> &str {
        match self {
            ThreadChoice::Existing(id) | ThreadChoice::New { id, .. } => id,
        }
    }
}

/// Chat threads and messages of one tenant. Mutations take the audit entry and record it in
/// the same transaction.
pub trait ChatRepo {
    /// A page of threads, most recent message first.
    fn threads(&self, page: &PageRequest) -> Result<Page<Thread>, StoreError>;
    /// A page of a thread's messages, newest first; [`StoreError::NotFound`] for an unknown
    /// thread.
    fn thread_messages(
        &self,
        thread_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError>;
    fn message(&self, id: &str) -> Result<Message, StoreError>;
    /// Whether a thread with this id exists.
    fn thread_exists(&self, thread_id: &str) -> Result<bool, StoreError>;
    /// Stores the message (starting its thread if new) and its reply task in one
    /// transaction, with both audit entries. An unknown existing thread is
    /// [`StoreError::NotFound`].
    fn post_message(
        &self,
        post: &MessagePost,
        audit: &AuditEntry,
        task_audit: &AuditEntry,
    ) -> Result<(Message, Task), StoreError>;
    fn update_message(
        &self,
        id: &str,
        patch: &MessagePatch,
        audit: &AuditEntry,
    ) -> Result<Message, StoreError>;
    /// Deletes a message and returns it.
    fn delete_message(&self, id: &str, audit: &AuditEntry) -> Result<Message, StoreError>;
}
