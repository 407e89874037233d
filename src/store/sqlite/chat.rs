//! SQL of chat threads and messages in a tenant database.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::audit::{self, AuditTable};
use super::registry::{format_time, parse_time};
use super::tasks::insert_task_tx;
use super::tenants::SqliteTenantStore;
use crate::audit::AuditEntry;
use crate::domain::chat::{
    Message, MessageKind, MessagePatch, MessagePreview, PREVIEW_CHARS, Participants, Thread,
};
use crate::domain::task::Task;
use crate::domain::{Page, PageRequest};
use crate::store::StoreError;
use crate::store::chat::{ChatRepo, MessagePost, ThreadChoice};

/// The columns [`message_from_row`] reads, in its order.
pub(super) const MESSAGE_COLUMNS: &str = "id, thread_id, from_agent_id, from_user_id, to_agent_id, \
     to_human, body, kind, read_at, edited_at, reply_task_id, created_at";

pub(super) fn message_from_row(r: &Row<'_>) -> Result<Message, StoreError> {
    let kind: String = r.get(7)?;
    let read_at = r
        .get::<_, Option<String>>(8)?
        .map(|s| parse_time(&s))
        .transpose()?;
    Ok(Message {
        id: r.get(0)?,
        thread_id: r.get(1)?,
        from_agent_id: r.get(2)?,
        from_user_id: r.get(3)?,
        to_agent_id: r.get(4)?,
        to_human: r.get(5)?,
        body: r.get(6)?,
        kind: MessageKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("message kind '{kind}'")))?,
        read: read_at.is_some(),
        read_at,
        edited_at: r
            .get::<_, Option<String>>(9)?
            .map(|s| parse_time(&s))
            .transpose()?,
        reply_task_id: r.get(10)?,
        created_at: parse_time(&r.get::<_, String>(11)?)?,
    })
}

pub(super) fn read_message(conn: &Connection, id: &str) -> Result<Message, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"
    ))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(row) => message_from_row(row),
        None => Err(StoreError::NotFound),
    }
}

fn thread_exists(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM threads WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Threads with everything the list shows, computed per thread by indexed subqueries
/// (`messages_by_thread`), in one statement.
///
/// NOTE: counts and participants read every message of each listed thread: fine for chats of
/// hundreds of messages; very long threads would want them kept on the thread row instead.
const THREAD_SQL: &str = "SELECT t.id, t.subject, t.created_at, t.last_message_at, \
     (SELECT COUNT(*) FROM messages WHERE thread_id = t.id), \
     (SELECT COUNT(*) FROM messages WHERE thread_id = t.id AND to_human = 1 AND read_at IS NULL), \
     (SELECT json_group_array(a) FROM ( \
        SELECT from_agent_id AS a FROM messages WHERE thread_id = t.id AND from_agent_id IS NOT NULL \
        UNION SELECT to_agent_id FROM messages WHERE thread_id = t.id AND to_agent_id IS NOT NULL)), \
     (SELECT json_group_array(u) FROM ( \
        SELECT DISTINCT from_user_id AS u FROM messages \
        WHERE thread_id = t.id AND from_user_id IS NOT NULL)), \
     m.id, m.from_agent_id, m.from_user_id, substr(m.body, 1, ?1), m.created_at \
     FROM threads t LEFT JOIN messages m ON m.id = ( \
        SELECT id FROM messages WHERE thread_id = t.id ORDER BY created_at DESC, id DESC LIMIT 1) \
     WHERE (?2 IS NULL OR (t.last_message_at, t.id) < (?2, ?3)) \
     ORDER BY t.last_message_at DESC, t.id DESC LIMIT ?4";

fn thread_from_row(r: &Row<'_>) -> Result<Thread, StoreError> {
    let ids = |i: usize| -> Result<Vec<String>, StoreError> {
        let json: String = r.get(i)?;
        serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("participants: {e}")))
    };
    let last_message = match r.get::<_, Option<String>>(8)? {
        Some(id) => Some(MessagePreview {
            id,
            from_agent_id: r.get(9)?,
            from_user_id: r.get(10)?,
            body: r.get(11)?,
            created_at: parse_time(&r.get::<_, String>(12)?)?,
        }),
        None => None,
    };
    Ok(Thread {
        id: r.get(0)?,
        subject: r.get(1)?,
        created_at: parse_time(&r.get::<_, String>(2)?)?,
        last_message_at: parse_time(&r.get::<_, String>(3)?)?,
        message_count: r.get(4)?,
        unread_count: r.get(5)?,
        participants: Participants {
            agent_ids: ids(6)?,
            user_ids: ids(7)?,
        },
        last_message,
    })
}

/// A cursor key split into its time and id (the service checked its shape).
fn split_key(key: &str) -> (&str, &str) {
    key.split_once('|').unwrap_or((key, ""))
}

impl ChatRepo for SqliteTenantStore {
    fn threads(&self, page: &PageRequest) -> Result<Page<Thread>, StoreError> {
        let conn = self.read()?;
        let (at, id) = page.after.as_deref().map(split_key).unzip();
        let mut stmt = conn.prepare_cached(THREAD_SQL)?;
        let mut rows = stmt.query(params![PREVIEW_CHARS as i64, at, id, page.fetch()])?;
        let mut threads = Vec::new();
        while let Some(row) = rows.next()? {
            threads.push(thread_from_row(row)?);
        }
        Ok(Page::from_rows(threads, page, |t| {
            format!("{}|{}", format_time(&t.last_message_at), t.id)
        }))
    }

    fn thread_messages(
        &self,
        thread_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError> {
        let conn = self.read()?;
        if !thread_exists(&conn, thread_id)? {
            return Err(StoreError::NotFound);
        }
        let (at, id) = page.after.as_deref().map(split_key).unzip();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = ?1 \
             AND (?2 IS NULL OR (created_at, id) < (?2, ?3)) \
             ORDER BY created_at DESC, id DESC LIMIT ?4"
        ))?;
        let mut rows = stmt.query(params![thread_id, at, id, page.fetch()])?;
        let mut messages = Vec::new();
        while let Some(row) = rows.next()? {
            messages.push(message_from_row(row)?);
        }
        Ok(Page::from_rows(messages, page, |m| {
            format!("{}|{}", format_time(&m.created_at), m.id)
        }))
    }

    fn thread_exists(&self, thread_id: &str) -> Result<bool, StoreError> {
        thread_exists(&*self.read()?, thread_id)
    }

    fn message(&self, id: &str) -> Result<Message, StoreError> {
        read_message(&*self.read()?, id)
    }

    fn post_message(
        &self,
        post: &MessagePost,
        audit: &AuditEntry,
        task_audit: &AuditEntry,
    ) -> Result<(Message, Task), StoreError> {
        self.write_audited(audit, |tx| {
            let now = format_time(&crate::domain::now());
            match &post.thread {
                ThreadChoice::Existing(id) => {
                    let bumped = tx
                        .prepare_cached("UPDATE threads SET last_message_at = MAX(last_message_at, ?2) WHERE id = ?1")?
                        .execute(params![id, now])?;
                    if bumped == 0 {
                        return Err(StoreError::NotFound);
                    }
                }
                ThreadChoice::New { id, subject } => {
                    tx.prepare_cached(
                        "INSERT INTO threads (id, subject, created_at, last_message_at) \
                         VALUES (?1, ?2, ?3, ?3)",
                    )?
                    .execute(params![id, subject, now])?;
                }
            }
            let task = insert_task_tx(tx, &post.reply_task)?;
            tx.prepare_cached(
                "INSERT INTO messages (id, thread_id, from_user_id, to_agent_id, body, kind, \
                 reply_task_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 'chat', ?6, ?7)",
            )?
            .execute(params![
                post.message_id,
                post.thread.id(),
                post.from_user_id,
                post.to_agent_id,
                post.body,
                task.id,
                now
            ])?;
            audit::append(tx, AuditTable::Tenant, task_audit)?;
            Ok((read_message(tx, &post.message_id)?, task))
        })
    }

    fn update_message(
        &self,
        id: &str,
        patch: &MessagePatch,
        audit: &AuditEntry,
    ) -> Result<Message, StoreError> {
        self.write_audited(audit, |tx| {
            let now = format_time(&crate::domain::now());
            let changed = tx
                .prepare_cached(
                    "UPDATE messages SET \
                     read_at = CASE WHEN ?2 IS NULL THEN read_at \
                                    WHEN ?2 THEN COALESCE(read_at, ?4) ELSE NULL END, \
                     body = COALESCE(?3, body), \
                     edited_at = CASE WHEN ?3 IS NULL THEN edited_at ELSE ?4 END \
                     WHERE id = ?1",
                )?
                .execute(params![id, patch.read, patch.body, now])?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            read_message(tx, id)
        })
    }

    fn delete_message(&self, id: &str, audit: &AuditEntry) -> Result<Message, StoreError> {
        self.write_audited(audit, |tx| {
            let message = read_message(tx, id)?;
            tx.prepare_cached("DELETE FROM messages WHERE id = ?1")?
                .execute([id])?;
            // The thread sorts by its newest remaining message (kept as is when none remain).
            tx.prepare_cached(
                "UPDATE threads SET last_message_at = COALESCE( \
                 (SELECT MAX(created_at) FROM messages WHERE thread_id = ?1), last_message_at) \
                 WHERE id = ?1",
            )?
            .execute([&message.thread_id])?;
            Ok(message)
        })
    }
}
