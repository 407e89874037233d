//! Tasks: creating, listing, moving along the state machine (`domain::task`), cancelling,
//! retrying and deleting them, each change recorded in the task's event log and the audit log.

use serde_json::{Value, json};

use super::{Scope, ServiceError};
use crate::audit::Target;
use crate::domain::task::{
    self, BOARD_DEFAULT_LIMIT, BOARD_MAX_LIMIT, Board, Cancellation, IllegalTransition, ListedTask,
    NewTask, NewTaskEvent, Priority, SearchText, Task, TaskEvent, TaskFilter, TaskPatch,
    TaskStatus,
};
use crate::domain::time::parse_rfc3339;
use crate::domain::{Invalid, Page, PageRequest};
use crate::store::StoreError;
use crate::store::tasks::{Assignee, InsertedTask, TaskChange, TaskInsert};

/// How often a change is re-decided when the task moved on between reading and writing it.
const ATTEMPTS: usize = 3;

/// The query of `GET /api/tasks` as the client sent it (every value text, so a bad one is a
/// 400 naming its parameter).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    /// One status or several, comma-separated (e.g. `pending,blocked`).
    pub status: Option<String>,
    /// An agent's id or name.
    pub assignee: Option<String>,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: Option<String>,
    pub parent_id: Option<String>,
    /// Words the prompt or result must contain (taken literally).
    pub q: Option<String>,
    /// RFC 3339; tasks created after this time.
    pub created_after: Option<String>,
    /// RFC 3339; tasks created before this time.
    pub created_before: Option<String>,
    /// 1–100, default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `?limit=&cursor=` of the other lists.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1–100, default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn parse(&self) -> Result<PageRequest, Invalid> {
        page_request(self.limit.as_deref(), self.cursor.as_deref())
    }
}

/// `?limit=` of the board: tasks per column.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BoardQuery {
    /// Newest tasks shown per column: 1–100, default 20.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

fn parse_limit(limit: Option<&str>, default: u32, max: u32) -> Result<u32, Invalid> {
    let Some(limit) = limit else {
        return Ok(default);
    };
    limit
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| Invalid::new("limit", format!("must be a number from 1 to {max}")))
}

/// A page request whose cursor, if any, is a `time|id` key this server made.
pub(crate) fn page_request(
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<PageRequest, Invalid> {
    let limit = parse_limit(
        limit,
        crate::domain::page::DEFAULT_LIMIT,
        crate::domain::page::MAX_LIMIT,
    )?;
    PageRequest::parse(Some(limit), cursor)
}

/// Checks that a page's cursor is a `time|id` key (lists sorted by time).
pub(crate) fn check_time_key(page: &PageRequest) -> Result<(), Invalid> {
    match page.after.as_deref().map(|k| k.split_once('|')) {
        None => Ok(()),
        Some(Some((at, id))) if parse_rfc3339(at).is_ok() && !id.is_empty() => Ok(()),
        Some(_) => Err(Invalid::new(
            "cursor",
            "is not a cursor this server returned",
        )),
    }
}

/// NOTE: messages never echo the id asked for: a response must not repeat another tenant's
/// ids back (see tests/api/route_isolation.rs).
fn not_found() -> ServiceError {
    ServiceError::not_found("no such task")
}

/// Turns a store NotFound into "no such task".
fn or_not_found<T>(r: Result<T, StoreError>) -> Result<T, ServiceError> {
    r.map_err(|e| match e {
        StoreError::NotFound => not_found(),
        e => e.into(),
    })
}

fn illegal(err: IllegalTransition) -> ServiceError {
    ServiceError::Conflict {
        message: err.message(),
        details: json!({
            "status": err.from,
            "requested": err.to,
            "allowed": err.allowed,
        }),
    }
}

fn raced() -> ServiceError {
    ServiceError::conflict("the task changed while this request was handled; retry")
}

/// Who acted, as the task's event log records it.
fn actor(scope: &Scope) -> Value {
    json!({ "type": scope.actor.kind.as_str(), "id": scope.actor.id })
}

fn event(scope: &Scope, kind: &'static str, mut data: Value) -> NewTaskEvent {
    data["actor"] = actor(scope);
    NewTaskEvent { kind, data }
}

/// Resolves an agent's id or name for the field `field` (400 when there is no such agent).
fn agent(scope: &Scope, field: &'static str, id_or_name: &str) -> Result<String, ServiceError> {
    scope
        .store
        .agent_id(id_or_name)?
        .ok_or_else(|| Invalid::new(field, "names no agent (by id or name)").into())
}

pub fn get(scope: &Scope, id: &str) -> Result<Task, ServiceError> {
    or_not_found(scope.store.task(id))
}

/// `GET /api/tasks`: the filters parsed (each bad one a 400 naming it), the assignee resolved.
pub fn list(scope: &Scope, query: TaskQuery) -> Result<Page<ListedTask>, ServiceError> {
    let (mut filter, page) = parse_query(&query)?;
    if let Some(assignee) = query.assignee.as_deref() {
        filter.assignee_id = Some(agent(scope, "assignee", assignee)?);
    }
    Ok(scope.store.list_tasks(&filter, &page)?)
}

/// `GET /api/agents/{id}/tasks`: the agent's tasks (404 for an unknown agent), with the same
/// filters as the task list.
pub fn agent_tasks(
    scope: &Scope,
    agent_ref: &str,
    query: TaskQuery,
) -> Result<Page<ListedTask>, ServiceError> {
    let (mut filter, page) = parse_query(&query)?;
    let id = scope
        .store
        .agent_id(agent_ref)?
        .ok_or_else(|| ServiceError::not_found("no such agent"))?;
    filter.assignee_id = Some(id);
    Ok(scope.store.list_tasks(&filter, &page)?)
}

fn parse_query(q: &TaskQuery) -> Result<(TaskFilter, PageRequest), Invalid> {
    let time = |field: &'static str, v: &Option<String>| {
        v.as_deref()
            .map(|s| {
                parse_rfc3339(s).map_err(|_| {
                    Invalid::new(field, "must be an RFC 3339 time, e.g. 2026-11-22T10:00:00Z")
                })
            })
            .transpose()
    };
    let filter = TaskFilter {
        statuses: q
            .status
            .as_deref()
            .map(task::parse_statuses)
            .transpose()?
            .unwrap_or_default(),
        assignee_id: None,
        priority: q
            .priority
            .as_deref()
            .map(|p| {
                Priority::parse(p)
                    .ok_or_else(|| Invalid::new("priority", "must be low, normal, high or urgent"))
            })
            .transpose()?,
        parent_id: q.parent_id.clone(),
        search: q.q.as_deref().map(SearchText::parse).transpose()?.flatten(),
        created_after: time("created_after", &q.created_after)?,
        created_before: time("created_before", &q.created_before)?,
    };
    let page = page_request(q.limit.as_deref(), q.cursor.as_deref())?;
    check_time_key(&page)?;
    Ok((filter, page))
}

pub fn board(scope: &Scope, query: BoardQuery) -> Result<Board, ServiceError> {
    let limit = parse_limit(query.limit.as_deref(), BOARD_DEFAULT_LIMIT, BOARD_MAX_LIMIT)?;
    Ok(scope.store.task_board(limit)?)
}

pub fn events(scope: &Scope, id: &str, query: PageQuery) -> Result<Page<TaskEvent>, ServiceError> {
    let page = query.parse()?;
    or_not_found(scope.store.task_events(id, &page))
}

/// Creates a task (assignee by id or name, else the default assignee) and publishes
/// `task.created`.
pub fn create(scope: &Scope, new: NewTask) -> Result<Task, ServiceError> {
    let new = new.validate()?;
    let insert = prepare(scope, new)?;
    let details = json!({ "parent_id": insert.parent_id });
    insert_prepared(scope, &insert, details)
}

/// Inserts a prepared task, audited as `task.created` with `details` (plus the assignee),
/// publishes `task.created` and hands the task to the runtime if its assignee can run it.
pub(crate) fn insert_prepared(
    scope: &Scope,
    insert: &TaskInsert,
    details: Value,
) -> Result<Task, ServiceError> {
    let audit = scope
        .audit("task.created", Target::new("task", &insert.id))
        .with_details(details);
    let InsertedTask { task, runnable } = scope.store.insert_task(insert, audit)?;
    scope.publish_value("task.created", &task);
    if runnable {
        scope.hand_over(std::slice::from_ref(&task));
    }
    Ok(task)
}

/// What follows a committed change of `task`: a task back to pending is queued to run, and a
/// subtask's end may have put its waiting parent back to pending (a trigger does it in the same
/// transaction), which is then published and queued.
pub(crate) fn after_change(scope: &Scope, task: &Task) {
    if task.status == TaskStatus::Pending {
        scope.wake(std::slice::from_ref(task));
    }
    if let Some(parent) = task.parent_id.as_deref()
        && task.status.is_finished()
    {
        wake_parent(scope, parent);
    }
}

/// Publishes and queues `parent` if a subtask's end made it runnable again.
pub(crate) fn wake_parent(scope: &Scope, parent: &str) {
    match scope.store.task(parent) {
        Ok(p) if p.status == TaskStatus::Pending => {
            scope.publish_value("task.updated", &p);
            scope.wake(std::slice::from_ref(&p));
        }
        Ok(_) | Err(StoreError::NotFound) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read a parent task; the sweep will wake it"),
    }
}

/// A validated new task with its references resolved and its id chosen.
pub(crate) fn prepare(scope: &Scope, new: NewTask) -> Result<TaskInsert, ServiceError> {
    let assignee = match new.assignee.as_deref() {
        Some(a) => Assignee::Agent(agent(scope, "assignee", a)?),
        None => Assignee::Default,
    };
    if let Some(parent) = new.parent_id.as_deref() {
        match scope.store.task(parent) {
            Ok(_) => {}
            Err(StoreError::NotFound) => {
                return Err(Invalid::new("parent_id", "names no task").into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    let priority = new.priority.unwrap_or_default();
    Ok(TaskInsert {
        id: uuid::Uuid::now_v7().to_string(),
        event: event(scope, "created", json!({ "priority": priority })),
        prompt: new.prompt,
        context: new.context,
        priority,
        tags: new.tags,
        assignee,
        delegator_id: None,
        parent_id: new.parent_id,
    })
}

/// Reads the task, lets `decide` turn it into a change (or refuse), and writes the change if
/// the task's status is still what `decide` saw; re-decides when it moved on meanwhile.
fn change_task(
    scope: &Scope,
    id: &str,
    action: &str,
    decide: impl Fn(&Task) -> Result<Option<(TaskChange, Vec<NewTaskEvent>, Value)>, ServiceError>,
) -> Result<Task, ServiceError> {
    for _ in 0..ATTEMPTS {
        let current = get(scope, id)?;
        let Some((change, events, details)) = decide(&current)? else {
            return Ok(current);
        };
        let audit = scope
            .audit(action, Target::new("task", id))
            .with_details(details);
        let written = scope
            .store
            .update_task(id, current.status, &change, &events, &audit);
        if let Some(task) = or_not_found(written)? {
            scope.publish_value("task.updated", &task);
            after_change(scope, &task);
            return Ok(task);
        }
    }
    Err(raced())
}

/// `PATCH /api/tasks/{id}`: edits fields and/or moves the task along the human transitions.
pub fn update(scope: &Scope, id: &str, patch: TaskPatch) -> Result<Task, ServiceError> {
    let patch = patch.validate()?;
    if patch.fields().is_empty() {
        return Err(Invalid::new("body", "set at least one field").into());
    }
    let assignee_id = match &patch.assignee {
        Some(Some(a)) => Some(Some(agent(scope, "assignee", a)?)),
        Some(None) => Some(None),
        None => None,
    };
    change_task(scope, id, "task.updated", |task| {
        if task.status == TaskStatus::Running && patch.changes_the_work() {
            return Err(ServiceError::Conflict {
                message: "the prompt, context and assignee of a running task cannot change; \
                          cancel it first"
                    .into(),
                details: json!({ "status": task.status }),
            });
        }
        let mut events = Vec::new();
        let mut change = TaskChange {
            prompt: patch.prompt.clone(),
            context: patch.context.clone(),
            priority: patch.priority,
            tags: patch.tags.clone(),
            assignee_id: assignee_id.clone(),
            ..TaskChange::default()
        };
        let content: Vec<&str> = patch
            .fields()
            .into_iter()
            .filter(|f| !matches!(*f, "status" | "assignee"))
            .collect();
        if !content.is_empty() {
            events.push(event(scope, "updated", json!({ "fields": content })));
        }
        if let Some(to) = &assignee_id
            && *to != task.assignee_id
        {
            events.push(event(
                scope,
                "assigned",
                json!({ "from": task.assignee_id, "to": to }),
            ));
        }
        if let Some(to) = patch.status
            && to != task.status
        {
            task::human_move(task.status, to).map_err(illegal)?;
            change.status = Some(to);
            change.finish = to.is_finished();
            events.push(event(
                scope,
                "status_changed",
                json!({ "from": task.status, "to": to }),
            ));
        }
        let details = json!({ "fields": patch.fields(), "from": task.status, "to": change.status });
        Ok(Some((change, events, details)))
    })
}

/// The outcome of `POST /api/tasks/{id}/cancel`.
pub struct Cancelled {
    pub task: Task,
    /// True when the task was running: it stays `running` until the runtime stops it.
    pub requested: bool,
}

/// Cancels a task that has not started (or waits for review), or asks the runtime to stop a
/// running one.
pub fn cancel(scope: &Scope, id: &str) -> Result<Cancelled, ServiceError> {
    let task = change_task(scope, id, "task.cancelled", |task| {
        let how = task::cancel(task.status).map_err(illegal)?;
        let details = json!({ "from": task.status, "requested": how == Cancellation::Requested });
        match how {
            Cancellation::Requested if task.cancel_requested => Ok(None),
            Cancellation::Requested => Ok(Some((
                TaskChange {
                    cancel_requested: Some(true),
                    ..TaskChange::default()
                },
                vec![event(scope, "cancel_requested", json!({}))],
                details,
            ))),
            Cancellation::Cancelled => Ok(Some((
                TaskChange {
                    status: Some(TaskStatus::Cancelled),
                    finish: true,
                    ..TaskChange::default()
                },
                vec![event(scope, "cancelled", json!({ "from": task.status }))],
                details,
            ))),
        }
    })?;
    // Cancelling a task cancels the work it delegated that is still open (and theirs).
    for child in scope.store.open_children(id)? {
        match cancel(scope, &child.id) {
            Ok(_) | Err(ServiceError::Conflict { .. } | ServiceError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Cancelled {
        requested: task.status == TaskStatus::Running,
        task,
    })
}

/// Puts a failed or cancelled task back to pending (result and cancel flag cleared).
pub fn retry(scope: &Scope, id: &str) -> Result<Task, ServiceError> {
    change_task(scope, id, "task.retried", |task| {
        task::retry(task.status).map_err(illegal)?;
        Ok(Some((
            TaskChange {
                status: Some(TaskStatus::Pending),
                cancel_requested: Some(false),
                reset_run: true,
                ..TaskChange::default()
            },
            vec![event(scope, "retried", json!({ "from": task.status }))],
            json!({ "from": task.status }),
        )))
    })
}

/// Deletes a task that is not running (its events go with it; its children stay, without a
/// parent) and publishes `task.deleted`.
pub fn delete(scope: &Scope, id: &str) -> Result<(), ServiceError> {
    for _ in 0..ATTEMPTS {
        let task = get(scope, id)?;
        if !task::may_delete(task.status) {
            return Err(ServiceError::Conflict {
                message: "a running task cannot be deleted; cancel it first".into(),
                details: json!({ "status": task.status }),
            });
        }
        let audit = scope
            .audit("task.deleted", Target::new("task", id))
            .with_details(json!({ "status": task.status }));
        if or_not_found(scope.store.delete_task(id, task.status, &audit))? {
            scope.publish("task.deleted", json!({ "id": id }));
            if let Some(parent) = task.parent_id.as_deref() {
                wake_parent(scope, parent);
            }
            return Ok(());
        }
    }
    Err(raced())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_checked_and_name_their_parameter() {
        let bad = |q: TaskQuery| parse_query(&q).unwrap_err().field;
        let q = TaskQuery::default;
        assert_eq!(
            bad(TaskQuery {
                status: Some("done".into()),
                ..q()
            }),
            "status"
        );
        assert_eq!(
            bad(TaskQuery {
                priority: Some("9".into()),
                ..q()
            }),
            "priority"
        );
        assert_eq!(
            bad(TaskQuery {
                created_after: Some("yesterday".into()),
                ..q()
            }),
            "created_after"
        );
        assert_eq!(
            bad(TaskQuery {
                limit: Some("ten".into()),
                ..q()
            }),
            "limit"
        );
        let forged = crate::domain::page::encode_cursor("not-a-key");
        assert_eq!(
            bad(TaskQuery {
                cursor: Some(forged),
                ..q()
            }),
            "cursor"
        );
        assert!(parse_query(&q()).is_ok());
    }
}
