//! Chat: a human's message to an agent is stored with a task asking the agent to reply (the
//! agent answers in the thread with the `send_message` platform tool).

use serde_json::json;

use super::tasks::{PageQuery, check_time_key};
use super::{Scope, ServiceError};
use crate::audit::Target;
use crate::domain::Page;
use crate::domain::chat::{Message, MessagePatch, NewMessage, Thread, reply_prompt};
use crate::domain::task::NewTask;
use crate::store::StoreError;
use crate::store::chat::{MessagePost, ThreadChoice};

// NOTE: messages never echo the id asked for: a response must not repeat another tenant's
// ids back (see tests/api/route_isolation.rs).
fn no_thread() -> ServiceError {
    ServiceError::not_found("no such thread")
}

fn no_message() -> ServiceError {
    ServiceError::not_found("no such message")
}

fn or_else<T>(
    r: Result<T, StoreError>,
    missing: impl FnOnce() -> ServiceError,
) -> Result<T, ServiceError> {
    r.map_err(|e| match e {
        StoreError::NotFound => missing(),
        e => e.into(),
    })
}

pub fn threads(scope: &Scope, query: PageQuery) -> Result<Page<Thread>, ServiceError> {
    let page = query.parse()?;
    check_time_key(&page)?;
    Ok(scope.store.threads(&page)?)
}

pub fn messages(
    scope: &Scope,
    thread_id: &str,
    query: PageQuery,
) -> Result<Page<Message>, ServiceError> {
    let page = query.parse()?;
    check_time_key(&page)?;
    or_else(scope.store.thread_messages(thread_id, &page), || {
        no_thread()
    })
}

/// `POST /api/messages`: stores the message of user `from_user_id` (in its thread, or a new
/// one) and a task asking the recipient to reply, together; publishes `message.created` and
/// `task.created`.
pub fn post(scope: &Scope, from_user_id: String, new: NewMessage) -> Result<Message, ServiceError> {
    let new = new.validate()?;
    let to_agent_id = scope
        .store
        .agent_id(&new.to)?
        .ok_or_else(|| crate::domain::Invalid::new("to", "names no agent (by id or name)"))?;
    let message_id = uuid::Uuid::now_v7().to_string();
    let thread = match new.thread_id {
        Some(id) => ThreadChoice::Existing(id),
        None => ThreadChoice::New {
            id: uuid::Uuid::now_v7().to_string(),
            subject: new.subject,
        },
    };
    let context = json!({
        "thread_id": thread.id(),
        "message_id": message_id,
        "from_user_id": from_user_id,
    });
    let reply_task = super::tasks::prepare(
        scope,
        NewTask {
            prompt: reply_prompt(&new.body),
            context: Some(context.to_string()),
            priority: None,
            tags: vec!["chat".into()],
            assignee: Some(to_agent_id.clone()),
            parent_id: None,
        },
    )?;
    let audit = scope
        .audit("message.created", Target::new("message", &message_id))
        .with_details(json!({
            "thread_id": thread.id(),
            "to_agent_id": to_agent_id,
            "reply_task_id": reply_task.id,
        }));
    let task_audit = scope
        .audit("task.created", Target::new("task", &reply_task.id))
        .with_details(json!({ "assignee_id": to_agent_id, "message_id": message_id }));
    let post = MessagePost {
        message_id,
        thread,
        from_user_id,
        to_agent_id,
        body: new.body,
        reply_task,
    };
    let (message, task) = or_else(scope.store.post_message(&post, &audit, &task_audit), || {
        no_thread()
    })?;
    scope.publish_value("message.created", &message);
    scope.publish_value("task.created", &task);
    scope.wake(std::slice::from_ref(&task));
    Ok(message)
}

/// `PATCH /api/messages/{id}`: marks a message read or unread, and/or edits the body of a
/// message the caller wrote.
pub fn update(
    scope: &Scope,
    user_id: &str,
    id: &str,
    patch: MessagePatch,
) -> Result<Message, ServiceError> {
    let patch = patch.validate()?;
    if patch.body.is_some() {
        let message = or_else(scope.store.message(id), no_message)?;
        match message.from_user_id.as_deref() {
            None => {
                return Err(ServiceError::conflict(
                    "only messages humans wrote can be edited",
                ));
            }
            Some(author) if author != user_id => {
                return Err(ServiceError::Forbidden(
                    "only the author of a message can edit it".into(),
                ));
            }
            Some(_) => {}
        }
    }
    let fields: Vec<&str> = [
        ("read", patch.read.is_some()),
        ("body", patch.body.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, set)| set.then_some(f))
    .collect();
    let audit = scope
        .audit("message.updated", Target::new("message", id))
        .with_details(json!({ "fields": fields }));
    let message = or_else(scope.store.update_message(id, &patch, &audit), || {
        no_message()
    })?;
    scope.publish_value("message.updated", &message);
    Ok(message)
}

pub fn delete(scope: &Scope, id: &str) -> Result<(), ServiceError> {
    let audit = scope.audit("message.deleted", Target::new("message", id));
    let message = or_else(scope.store.delete_message(id, &audit), no_message)?;
    scope.publish(
        "message.deleted",
        json!({ "id": message.id, "thread_id": message.thread_id }),
    );
    Ok(())
}
