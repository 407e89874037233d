//! SQL of tasks, their events and the kanban board in a tenant database.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::audit::{self, AuditTable};
use super::registry::{format_time, parse_time};
use super::task_json::listed_from_row;
use super::tenants::SqliteTenantStore;
use crate::audit::AuditEntry;
use crate::domain::task::{
    Board, BoardColumnItems, ListedTask, NewTaskEvent, Priority, SearchText, Task, TaskEvent,
    TaskFilter, TaskStatus,
};
use crate::domain::{Page, PageRequest};
use crate::store::StoreError;
use crate::store::tasks::{Assignee, InsertedTask, TaskChange, TaskInsert, TaskRepo};

/// The columns [`task_from_row`] reads, in its order.
pub(super) const TASK_COLUMNS: &str = "id, prompt, context, priority, tags, status, cancel_requested, \
     assignee_id, delegator_id, parent_id, result, cost_micros, input_tokens, output_tokens, \
     num_turns, duration_ms, created_at, updated_at, started_at, completed_at, status_reason, \
     error_code, run_attempt, depth";

/// Column `i` of a task row as text, read in place (no `String`); `None` for NULL.
pub(super) fn text_column<'r>(r: &'r Row<'_>, i: usize) -> Result<Option<&'r str>, StoreError> {
    r.get_ref(i)?
        .as_str_or_null()
        .map_err(|e| StoreError::Corrupt(format!("task column {i}: {e}")))
}

/// Column `i` of a task row as text, which must not be NULL.
pub(super) fn required_column<'r>(r: &'r Row<'_>, i: usize) -> Result<&'r str, StoreError> {
    text_column(r, i)?.ok_or_else(|| StoreError::Corrupt(format!("task column {i} is null")))
}

/// The status of a task row.
pub(super) fn status_column(r: &Row<'_>) -> Result<TaskStatus, StoreError> {
    let status = required_column(r, 5)?;
    TaskStatus::parse(status).ok_or_else(|| StoreError::Corrupt(format!("task status '{status}'")))
}

pub(super) fn task_from_row(r: &Row<'_>) -> Result<Task, StoreError> {
    // Columns only parsed are read in place (no `String` each).
    let text = |i: usize| text_column(r, i);
    let required = |i: usize| required_column(r, i);
    let time = |i: usize| -> Result<_, StoreError> { parse_time(required(i)?) };
    let opt_time = |i: usize| -> Result<_, StoreError> { text(i)?.map(parse_time).transpose() };
    let tags = match required(4)? {
        "[]" => Vec::new(),
        tags => serde_json::from_str(tags)
            .map_err(|e| StoreError::Corrupt(format!("task tags: {e}")))?,
    };
    Ok(Task {
        id: r.get(0)?,
        prompt: r.get(1)?,
        context: r.get(2)?,
        priority: Priority::from_i64(r.get(3)?),
        tags,
        status: status_column(r)?,
        cancel_requested: r.get(6)?,
        assignee_id: r.get(7)?,
        delegator_id: r.get(8)?,
        parent_id: r.get(9)?,
        result: r.get(10)?,
        cost_usd: crate::domain::agent::UsdMicros::from_micros(r.get(11)?).usd(),
        input_tokens: r.get(12)?,
        output_tokens: r.get(13)?,
        num_turns: r.get(14)?,
        duration_ms: r.get(15)?,
        created_at: time(16)?,
        updated_at: time(17)?,
        started_at: opt_time(18)?,
        completed_at: opt_time(19)?,
        status_reason: r.get(20)?,
        error_code: r.get(21)?,
        run_attempt: r.get(22)?,
        depth: r.get(23)?,
    })
}

/// A cursor key split into its time and id (the service checked its shape).
fn split_key(key: &str) -> (&str, &str) {
    key.split_once('|').unwrap_or((key, ""))
}

pub(super) fn read_task(conn: &Connection, id: &str) -> Result<Task, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(row) => task_from_row(row),
        None => Err(StoreError::NotFound),
    }
}

fn task_exists(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM tasks WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The tasks `sql` selects (at most `capacity` expected; more are fine).
pub(super) fn collect_tasks(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    capacity: usize,
) -> Result<Vec<Task>, StoreError> {
    collect(conn, sql, params, capacity, task_from_row)
}

/// What `sql` selects, each row read by `read` (at most `capacity` rows expected).
fn collect<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    capacity: usize,
    read: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut items = Vec::with_capacity(capacity);
    while let Some(row) = rows.next()? {
        items.push(read(row)?);
    }
    Ok(items)
}

pub(super) fn insert_event(
    tx: &Connection,
    task_id: &str,
    event: &NewTaskEvent,
    at: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO task_events (id, task_id, kind, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        uuid::Uuid::now_v7().to_string(),
        task_id,
        event.kind,
        event.data.to_string(),
        at
    ])?;
    Ok(())
}

/// Inserts a task and its `created` event (used by chat too: a message's reply task), with
/// its assignee resolved in `tx`; the event's data names that assignee.
pub(super) fn insert_task_tx(tx: &Connection, t: &TaskInsert) -> Result<Task, StoreError> {
    let now = format_time(&crate::domain::now());
    let tags =
        serde_json::to_string(&t.tags).map_err(|e| StoreError::Internal(format!("tags: {e}")))?;
    let assignee_id = match &t.assignee {
        Assignee::Agent(id) => Some(id.clone()),
        Assignee::Default => default_assignee(tx)?,
    };
    let mut event = t.event.clone();
    if let Some(data) = event.data.as_object_mut() {
        data.insert("assignee_id".into(), assignee_id.clone().into());
    }
    // The row comes back from the insert itself (`RETURNING`): no second lookup.
    let task = tx
        .prepare_cached(&format!(
            "INSERT INTO tasks (id, prompt, context, priority, tags, assignee_id, delegator_id, \
             parent_id, created_at, updated_at, depth) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
             ?9, COALESCE((SELECT depth + 1 FROM tasks WHERE id = ?8), 0)) RETURNING {TASK_COLUMNS}"
        ))?
        .query_and_then(
            params![
                t.id,
                t.prompt,
                t.context,
                t.priority.as_i64(),
                tags,
                assignee_id,
                t.delegator_id,
                t.parent_id,
                now
            ],
            task_from_row,
        )?
        .next()
        .ok_or_else(|| StoreError::Internal("the insert returned no row".into()))??;
    insert_event(tx, &t.id, &event, &now)?;
    Ok(task)
}

/// See [`Assignee::Default`].
fn default_assignee(conn: &Connection) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(\
               (SELECT a.id FROM workspace w JOIN agents a \
                ON a.id = w.default_assignee_id OR a.name = w.default_assignee_id \
                WHERE w.id = 1 ORDER BY a.id = w.default_assignee_id DESC LIMIT 1), \
               (SELECT id FROM agents WHERE reports_to IS NULL \
                ORDER BY created_at, id LIMIT 1))",
        )?
        .query_row([], |r| r.get(0))?)
}

/// The FTS5 query for the words of `search` that have something to index: each word becomes
/// a quoted phrase (inner `"` doubled), so no character of user input is ever an FTS5
/// operator. `None` when no word has a letter or digit (the tokenizer would index nothing).
fn fts_query(search: &SearchText) -> Option<String> {
    let phrases: Vec<String> = search
        .terms()
        .iter()
        .filter(|t| t.chars().any(char::is_alphanumeric))
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect();
    (!phrases.is_empty()).then(|| phrases.join(" "))
}

/// A LIKE pattern matching `term` anywhere, with `\` as the escape of `%`, `_` and `\`.
fn like_pattern(term: &str) -> String {
    let mut p = String::with_capacity(term.len() + 2);
    p.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// `WHERE` conditions and their parameters for a task filter.
fn filter_sql(filter: &TaskFilter, sql: &mut String, args: &mut Vec<Value>) {
    if !filter.statuses.is_empty() {
        let marks = vec!["?"; filter.statuses.len()].join(", ");
        sql.push_str(&format!(" AND status IN ({marks})"));
        args.extend(
            filter
                .statuses
                .iter()
                .map(|s| Value::Text(s.as_str().into())),
        );
    }
    let mut eq = |column: &str, value: Option<Value>| {
        if let Some(v) = value {
            sql.push_str(&format!(" AND {column} ?"));
            args.push(v);
        }
    };
    eq("assignee_id =", filter.assignee_id.clone().map(Value::Text));
    eq(
        "priority =",
        filter.priority.map(|p| Value::Integer(p.as_i64())),
    );
    eq("parent_id =", filter.parent_id.clone().map(Value::Text));
    eq(
        "created_at >",
        filter
            .created_after
            .as_ref()
            .map(|t| Value::Text(format_time(t))),
    );
    eq(
        "created_at <",
        filter
            .created_before
            .as_ref()
            .map(|t| Value::Text(format_time(t))),
    );
    if let Some(search) = &filter.search {
        if let Some(q) = fts_query(search) {
            sql.push_str(" AND rowid IN (SELECT rowid FROM tasks_fts WHERE tasks_fts MATCH ?)");
            args.push(Value::Text(q));
        }
        // The tokenizer drops punctuation (`100%` is indexed as `100`), so a word with any
        // is also matched literally: `100%` finds "100%" but not "100 apples".
        // NOTE: LIKE folds case for ASCII only; FTS5 folds all of Unicode.
        for term in search
            .terms()
            .iter()
            .filter(|t| !t.chars().all(char::is_alphanumeric))
        {
            sql.push_str(
                " AND (prompt LIKE ? ESCAPE '\\' OR COALESCE(result, '') LIKE ? ESCAPE '\\')",
            );
            let pattern = like_pattern(term);
            args.push(Value::Text(pattern.clone()));
            args.push(Value::Text(pattern));
        }
    }
}

/// Up to `page.fetch()` tasks matching `filter` after the page's cursor, newest first.
fn list_page(
    conn: &Connection,
    filter: &TaskFilter,
    page: &PageRequest,
) -> Result<Vec<ListedTask>, StoreError> {
    let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE 1 = 1");
    let mut args = Vec::new();
    filter_sql(filter, &mut sql, &mut args);
    if let Some(after) = &page.after {
        let (at, id) = split_key(after);
        sql.push_str(" AND (created_at, id) < (?, ?)");
        args.push(Value::Text(at.into()));
        args.push(Value::Text(id.into()));
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
    args.push(Value::Integer(page.fetch()));
    collect(
        conn,
        &sql,
        params_from_iter(args),
        page.fetch() as usize,
        listed_from_row,
    )
}

/// The newest tasks of status `?1`, at most `?2` (a board column's share).
fn newest_of_status_sql() -> String {
    format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE status = ?1 \
         ORDER BY created_at DESC, id DESC LIMIT ?2"
    )
}

impl TaskRepo for SqliteTenantStore {
    fn task(&self, id: &str) -> Result<Task, StoreError> {
        read_task(&*self.read()?, id)
    }

    fn list_tasks(
        &self,
        filter: &TaskFilter,
        page: &PageRequest,
    ) -> Result<Page<ListedTask>, StoreError> {
        let conn = self.read()?;
        let key = |t: &ListedTask| t.key().to_owned();
        if filter.statuses.len() < 2 {
            let rows = list_page(&conn, filter, page)?;
            return Ok(Page::from_rows(rows, page, key));
        }
        // NOTE: `status IN (a, b)` cannot read the (status, created_at) index in order, so
        // SQLite would sort every matching task; one ordered, limited query per status merged
        // here reads at most a page per status instead.
        let mut rows = Vec::new();
        for status in &filter.statuses {
            let one = TaskFilter {
                statuses: vec![*status],
                ..filter.clone()
            };
            rows.extend(list_page(&conn, &one, page)?);
        }
        rows.sort_by(|a, b| b.order().cmp(&a.order()));
        rows.truncate(page.fetch() as usize);
        Ok(Page::from_rows(rows, page, key))
    }

    fn task_board(&self, limit: u32) -> Result<Board, StoreError> {
        let conn = self.read()?;
        let mut board = Board::default();
        let mut counts = Vec::new();
        {
            // Kept by triggers (V4): seven rows, however many tasks there are.
            let mut stmt = conn.prepare_cached("SELECT status, n FROM task_counts")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let status: String = row.get(0)?;
                let status = TaskStatus::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("task status '{status}'")))?;
                counts.push((status, row.get::<_, i64>(1)?));
            }
        }
        // One indexed query per status (an IN over two statuses would have to sort every
        // matching task), merged per column.
        for (status, count) in counts.into_iter().filter(|(_, n)| *n > 0) {
            let column = board.column_mut(status.column());
            column.count += count;
            column.items.extend(collect(
                &conn,
                &newest_of_status_sql(),
                params![status.as_str(), limit],
                limit as usize,
                listed_from_row,
            )?);
        }
        for column in [
            &mut board.backlog,
            &mut board.in_progress,
            &mut board.review,
            &mut board.done,
        ] {
            sort_newest_first(column, limit);
        }
        Ok(board)
    }

    fn task_events(
        &self,
        task_id: &str,
        page: &PageRequest,
    ) -> Result<Page<TaskEvent>, StoreError> {
        let conn = self.read()?;
        if !task_exists(&conn, task_id)? {
            return Err(StoreError::NotFound);
        }
        let mut stmt = conn.prepare_cached(
            "SELECT id, task_id, kind, data, created_at FROM task_events \
             WHERE task_id = ?1 AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3",
        )?;
        let mut rows = stmt.query(params![task_id, page.after, page.fetch()])?;
        let mut events = Vec::new();
        while let Some(r) = rows.next()? {
            let data: String = r.get(3)?;
            events.push(TaskEvent {
                id: r.get(0)?,
                task_id: r.get(1)?,
                kind: r.get(2)?,
                data: serde_json::from_str(&data)
                    .map_err(|e| StoreError::Corrupt(format!("task event data: {e}")))?,
                created_at: parse_time(&r.get::<_, String>(4)?)?,
            });
        }
        Ok(Page::from_rows(events, page, |e| e.id.clone()))
    }

    fn insert_task(
        &self,
        task: &TaskInsert,
        mut audit: AuditEntry,
    ) -> Result<InsertedTask, StoreError> {
        // Not `write_audited`: the entry names the assignee, resolved in the transaction.
        // The reads ride on the writer's connection, whose cache no other commit empties.
        self.write(|tx| {
            let task = insert_task_tx(tx, task)?;
            if let Some(details) = audit.details.as_object_mut() {
                details.insert("assignee_id".into(), task.assignee_id.clone().into());
            }
            audit::append(tx, AuditTable::Tenant, &audit)?;
            let runnable = match &task.assignee_id {
                Some(agent) => super::runs::agent_runnable_tx(tx, agent)?,
                None => false,
            };
            Ok(InsertedTask { task, runnable })
        })
    }

    fn update_task(
        &self,
        id: &str,
        expected: TaskStatus,
        change: &TaskChange,
        events: &[NewTaskEvent],
        audit: &AuditEntry,
    ) -> Result<Option<Task>, StoreError> {
        self.write_audited(audit, |tx| {
            let now = format_time(&crate::domain::now());
            // Only the columns that change are set: the full-text index is rebuilt only when
            // the prompt changes (its trigger fires on `UPDATE OF prompt, result`).
            let mut sql = String::from("UPDATE tasks SET updated_at = ?");
            let mut args = vec![Value::Text(now.clone())];
            let mut set = |column: &str, value: Value| {
                sql.push_str(&format!(", {column} = ?"));
                args.push(value);
            };
            let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Text);
            if let Some(prompt) = &change.prompt {
                set("prompt", Value::Text(prompt.clone()));
            }
            if let Some(context) = &change.context {
                set("context", text(context));
            }
            if let Some(priority) = change.priority {
                set("priority", Value::Integer(priority.as_i64()));
            }
            if let Some(tags) = &change.tags {
                let tags = serde_json::to_string(tags)
                    .map_err(|e| StoreError::Internal(format!("tags: {e}")))?;
                set("tags", Value::Text(tags));
            }
            if let Some(assignee) = &change.assignee_id {
                set("assignee_id", text(assignee));
            }
            if let Some(status) = change.status {
                set("status", Value::Text(status.as_str().into()));
            }
            if let Some(flag) = change.cancel_requested {
                set("cancel_requested", Value::Integer(flag.into()));
            }
            // A task has `completed_at` exactly while it is finished.
            let reopened = change.status.is_some_and(|s| !s.is_finished());
            if change.finish {
                set("completed_at", Value::Text(now.clone()));
            } else if reopened || change.reset_run {
                set("completed_at", Value::Null);
            }
            if change.reset_run {
                for column in ["result", "started_at", "duration_ms"] {
                    set(column, Value::Null);
                }
            }
            sql.push_str(" WHERE id = ? AND status = ?");
            args.push(Value::Text(id.into()));
            args.push(Value::Text(expected.as_str().into()));
            let changed = tx.prepare_cached(&sql)?.execute(params_from_iter(args))?;
            if changed == 0 {
                return if task_exists(tx, id)? {
                    Ok(None)
                } else {
                    Err(StoreError::NotFound)
                };
            }
            for event in events {
                insert_event(tx, id, event, &now)?;
            }
            read_task(tx, id).map(Some)
        })
    }

    fn delete_task(
        &self,
        id: &str,
        expected: TaskStatus,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        self.write_audited(audit, |tx| {
            let deleted = tx
                .prepare_cached("DELETE FROM tasks WHERE id = ?1 AND status = ?2")?
                .execute(params![id, expected.as_str()])?;
            if deleted == 0 && !task_exists(tx, id)? {
                return Err(StoreError::NotFound);
            }
            Ok(deleted > 0)
        })
    }
}

fn sort_newest_first(column: &mut BoardColumnItems, limit: u32) {
    column.items.sort_by(|a, b| b.order().cmp(&a.order()));
    column.items.truncate(limit as usize);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(q: &str) -> SearchText {
        SearchText::parse(q).unwrap().unwrap()
    }

    /// An in-memory tenant schema with one task per prompt.
    fn db(prompts: &[&str]) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrations::MigrationSet::tenant()
            .apply(&mut conn)
            .unwrap();
        for (i, p) in prompts.iter().enumerate() {
            conn.execute(
                "INSERT INTO tasks (id, prompt, created_at, updated_at) VALUES (?1, ?2, 't', 't')",
                params![i.to_string(), p],
            )
            .unwrap();
        }
        conn
    }

    fn matching(conn: &Connection, q: &str) -> Vec<String> {
        let filter = TaskFilter {
            search: Some(search(q)),
            ..Default::default()
        };
        let mut sql = String::from("SELECT id FROM tasks WHERE 1 = 1");
        let mut args = Vec::new();
        filter_sql(&filter, &mut sql, &mut args);
        sql.push_str(" ORDER BY id");
        let mut stmt = conn.prepare(&sql).unwrap();
        stmt.query_map(params_from_iter(args), |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn status_counts_follow_inserts_status_changes_and_deletes() {
        let conn = db(&["a", "b", "c"]);
        conn.execute("UPDATE tasks SET status = 'running' WHERE id = '0'", [])
            .unwrap();
        conn.execute(
            "UPDATE tasks SET status = 'running', prompt = 'x' WHERE id = '0'",
            [],
        )
        .unwrap();
        conn.execute("DELETE FROM tasks WHERE id = '1'", [])
            .unwrap();
        let counted: Vec<(String, i64)> = conn
            .prepare("SELECT status, n FROM task_counts WHERE n > 0 ORDER BY status")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            counted,
            vec![("pending".to_owned(), 1), ("running".to_owned(), 1)]
        );
    }

    /// SQLite's plan for `sql` with `args`, its steps joined by "; ".
    fn query_plan(conn: &Connection, sql: &str, args: Vec<Value>) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows: Vec<String> = stmt
            .query_map(params_from_iter(args), |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.join("; ")
    }

    #[test]
    fn a_new_top_level_task_enters_only_the_indexes_that_list_it() {
        let conn = db(&[]);
        // Each full index is a page in every creation's commit (see migration V9).
        let full: Vec<String> = conn
            .prepare("SELECT name FROM pragma_index_list('tasks') WHERE NOT partial ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            full,
            [
                "sqlite_autoindex_tasks_1",
                "tasks_by_assignee_created",
                "tasks_by_created",
                "tasks_by_status",
            ]
        );
        // The lookups the partial indexes are for still search them.
        let plan = |sql: &str| query_plan(&conn, sql, vec![Value::Text("x".into())]);
        let running = plan("SELECT 1 FROM tasks WHERE assignee_id = ?1 AND status = 'running'");
        assert!(running.contains("tasks_running_by_assignee"), "{running}");
        let children = plan(&format!(
            "SELECT COUNT(*) FROM tasks WHERE parent_id = ?1 AND status NOT IN {}",
            "('completed', 'failed', 'cancelled')"
        ));
        assert!(children.contains("tasks_by_parent_status"), "{children}");
    }

    #[test]
    fn lists_by_status_and_board_columns_read_an_index_in_order_without_sorting() {
        let conn = db(&[]);
        let plan = |sql: &str, args: Vec<Value>| query_plan(&conn, sql, args);
        let board = plan(
            &newest_of_status_sql(),
            vec![Value::Text("pending".into()), Value::Integer(20)],
        );
        assert!(!board.contains("TEMP B-TREE"), "{board}");
        for filter in [
            TaskFilter::default(),
            TaskFilter {
                statuses: vec![TaskStatus::Review],
                ..Default::default()
            },
            TaskFilter {
                assignee_id: Some("a".into()),
                ..Default::default()
            },
        ] {
            let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE 1 = 1");
            let mut args = Vec::new();
            filter_sql(&filter, &mut sql, &mut args);
            sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT 51");
            let list = plan(&sql, args);
            assert!(!list.contains("TEMP B-TREE"), "{filter:?}: {list}");
        }
    }

    #[test]
    fn every_word_becomes_a_quoted_phrase() {
        assert_eq!(
            fts_query(&search(r#"say "hi" OR NEAR(x"#)).unwrap(),
            r#""say" """hi""" "OR" "NEAR(x""#
        );
        assert_eq!(fts_query(&search(r#"%%% "" *"#)), None);
        assert_eq!(like_pattern(r"50%_a\b"), r"%50\%\_a\\b%");
    }

    #[test]
    fn search_words_are_literal_text_never_operators() {
        let conn = db(&[
            "raise the budget 100%",
            "ship 100 apples",
            "a_b test",
            "aXb test",
            r#"quote "this" now"#,
            "alpha OR beta",
            "just alpha",
        ]);
        assert_eq!(matching(&conn, "100%"), vec!["0"]);
        assert_eq!(matching(&conn, "a_b"), vec!["2"]);
        assert_eq!(matching(&conn, r#""this""#), vec!["4"]);
        assert_eq!(matching(&conn, "alpha OR"), vec!["5"]);
        assert_eq!(matching(&conn, "BUDGET"), vec!["0"], "case folds");
        for punctuation in ["%", "_", "\"", "*", "NEAR(", "-", "^", ":", "(", "'", "\\"] {
            matching(&conn, punctuation); // no SQL or FTS5 syntax error
        }
        assert!(matching(&conn, "*").is_empty());
    }
}
