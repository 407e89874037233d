//! SQL of agent runs, usage records and monthly budgets in a tenant database.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::agents::{merged_tool_permissions, org_nodes_tx, read_agent};
use super::board::board_items_tx;
use super::chat::{MESSAGE_COLUMNS, message_from_row, read_message};
use super::registry::format_time;
use super::settings::read_workspace;
use super::tasks::{TASK_COLUMNS, collect_tasks, insert_event, read_task};
use super::tenants::SqliteTenantStore;
use crate::audit::AuditEntry;
use crate::domain::agent::{AgentStatus, UsdMicros};
use crate::domain::chat::Message;
use crate::domain::run::{
    Budgets, Charge, ChildResult, NewRun, RunEnd, RunEnded, RunOutcome, RunStart, Started,
    budget_month,
};
use crate::domain::task::{NewTaskEvent, Task, TaskStatus};
use crate::store::StoreError;
use crate::store::runs::{AgentMessage, Charged, RunContext, RunRepo, UsageBucket, UsageGroup};

/// The condition on agent `a` (and workspace `w`) of a runnable agent.
const RUNNABLE: &str = "a.status <> 'paused' \
     AND (a.provider_id IS NOT NULL OR w.default_provider_id IS NOT NULL)";

/// Statuses in which a subtask no longer keeps its parent waiting.
const DONE: &str = "('completed', 'failed', 'cancelled')";

fn budgets_tx(conn: &Connection, agent_id: &str, month: &str) -> Result<Budgets, StoreError> {
    conn.prepare_cached(
        "SELECT a.monthly_budget_micros, \
                CASE WHEN a.spent_month = ?2 THEN a.spent_this_month_micros ELSE 0 END, \
                w.monthly_budget_micros, \
                CASE WHEN w.spent_month = ?2 THEN w.spent_this_month_micros ELSE 0 END \
         FROM agents a, workspace w WHERE a.id = ?1 AND w.id = 1",
    )?
    .query_row(params![agent_id, month], |r| {
        Ok(Budgets {
            agent_budget: r.get(0)?,
            agent_spent: r.get(1)?,
            tenant_budget: r.get(2)?,
            tenant_spent: r.get(3)?,
        })
    })
    .optional()?
    .ok_or(StoreError::NotFound)
}

pub(super) fn agent_runnable_tx(conn: &Connection, agent_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT EXISTS (SELECT 1 FROM agents a, workspace w \
             WHERE a.id = ?1 AND w.id = 1 AND {RUNNABLE})"
        ))?
        .query_row([agent_id], |r| r.get(0))?)
}

fn open_children_count(conn: &Connection, task_id: &str) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM tasks WHERE parent_id = ?1 AND status NOT IN {DONE}"
        ))?
        .query_row([task_id], |r| r.get(0))?)
}

fn event(kind: &'static str, data: serde_json::Value) -> NewTaskEvent {
    NewTaskEvent { kind, data }
}

impl RunRepo for SqliteTenantStore {
    fn start_run(&self, run: &NewRun, audit: &AuditEntry) -> Result<RunStart, StoreError> {
        // Most outdated jobs are told apart by a read, without taking the writer.
        match read_task(&*self.read()?, &run.task_id) {
            Err(StoreError::NotFound) => return Ok(RunStart::Skipped("the task was deleted")),
            Err(e) => return Err(e),
            Ok(t) if t.run_attempt != run.attempt => {
                return Ok(RunStart::Skipped(
                    "a later attempt of the task replaced this one",
                ));
            }
            Ok(_) => {}
        }
        self.write(|tx| {
            let task = match read_task(tx, &run.task_id) {
                Err(StoreError::NotFound) => return Ok(RunStart::Skipped("the task was deleted")),
                other => other?,
            };
            if task.run_attempt != run.attempt {
                return Ok(RunStart::Skipped(
                    "a later attempt of the task replaced this one",
                ));
            }
            if task.assignee_id.as_deref() != Some(run.agent_id.as_str()) {
                return Ok(RunStart::Skipped("the task was reassigned"));
            }
            let resumed = match task.status {
                TaskStatus::Pending => false,
                TaskStatus::Running => true,
                _ => return Ok(RunStart::Skipped("the task is no longer pending")),
            };
            let Some(agent) = read_agent(tx, &run.agent_id)? else {
                return Ok(RunStart::Skipped("the agent was deleted"));
            };
            if agent.status == AgentStatus::Paused {
                return Ok(RunStart::Skipped("the agent is paused"));
            }
            if !agent_runnable_tx(tx, &agent.id)? {
                return Ok(RunStart::Skipped("the agent has no provider"));
            }
            let at = crate::domain::now();
            let now = format_time(&at);
            let previous_runs: i64 = tx
                .prepare_cached("SELECT COUNT(*) FROM runs WHERE task_id = ?1 AND attempt = ?2")?
                .query_row(params![run.task_id, run.attempt], |r| r.get(0))?;
            if resumed {
                tx.prepare_cached(
                    "UPDATE runs SET status = 'interrupted', ended_at = ?2 \
                     WHERE task_id = ?1 AND status = 'running'",
                )?
                .execute(params![run.task_id, now])?;
            }
            tx.prepare_cached(
                "UPDATE tasks SET status = 'running', started_at = COALESCE(started_at, ?2), \
                 status_reason = NULL, error_code = NULL, updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![run.task_id, now])?;
            tx.prepare_cached(
                "UPDATE agents SET status = 'running', updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![run.agent_id, now])?;
            tx.prepare_cached(
                "INSERT INTO runs (id, task_id, agent_id, attempt, started_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![run.id, run.task_id, run.agent_id, run.attempt, now])?;
            insert_event(
                tx,
                &run.task_id,
                &event(
                    "run_started",
                    serde_json::json!({
                        "run_id": run.id,
                        "attempt": run.attempt,
                        "agent_id": run.agent_id,
                        "resumed": resumed,
                    }),
                ),
                &now,
            )?;
            super::audit::append(tx, super::audit::AuditTable::Tenant, audit)?;
            // The rows as just written (no trigger changes a task that starts running, nor
            // its agent): reading them back would hold the writer longer.
            let mut task = task;
            task.status = TaskStatus::Running;
            task.started_at.get_or_insert(at);
            task.status_reason = None;
            task.error_code = None;
            task.updated_at = at;
            let mut agent = agent;
            agent.status = AgentStatus::Running;
            agent.updated_at = at;
            Ok(RunStart::Started(Box::new(Started {
                task,
                agent,
                previous_runs,
            })))
        })
    }

    fn agent_runnable(&self, agent_id: &str) -> Result<bool, StoreError> {
        agent_runnable_tx(&*self.read()?, agent_id)
    }

    fn charge(
        &self,
        c: &Charge,
        at: DateTime<Utc>,
        events: &[NewTaskEvent],
    ) -> Result<Charged, StoreError> {
        self.write(|tx| charge_tx(tx, c, at, events))
    }

    fn end_run(&self, end: &RunEnd, audit: &AuditEntry) -> Result<RunEnded, StoreError> {
        self.write(|tx| {
            let budgets = match &end.charge {
                Some((charge, events)) => {
                    Some(charge_tx(tx, charge, crate::domain::now(), events)?.budgets)
                }
                None => None,
            };
            let now = format_time(&crate::domain::now());
            let task = read_task(tx, &end.task_id)?;
            let parent_before = match task.parent_id.as_deref() {
                Some(p) => Some(read_task(tx, p)?.status),
                None => None,
            };
            let mut woken = Vec::new();
            let mut events = end.events.clone();
            let mut run_status = end.outcome;
            if end.outcome == RunOutcome::Interrupted {
                // The job runs again at the same attempt: only the run row closes; the task
                // and the agent stay running until the next attempt starts over.
                tx.prepare_cached(
                    "UPDATE runs SET status = 'interrupted', error = ?2, ended_at = ?3 \
                     WHERE id = ?1 AND status = 'running'",
                )?
                .execute(params![end.run_id, end.error, now])?;
                return Ok(RunEnded {
                    task,
                    agent: read_agent(tx, &end.agent_id)?,
                    woken: Vec::new(),
                    budgets,
                });
            }
            if task.status == TaskStatus::Running {
                let (status, reason, finish, waiting_on) = match end.outcome {
                    RunOutcome::Waiting => {
                        let open = open_children_count(tx, &task.id)?;
                        if open > 0 {
                            (
                                TaskStatus::Blocked,
                                Some(format!("waiting for {open} subtasks")),
                                false,
                                open,
                            )
                        } else {
                            // Every subtask finished before this run ended: run again now.
                            run_status = RunOutcome::Waiting;
                            (TaskStatus::Pending, None, false, 0)
                        }
                    }
                    RunOutcome::Completed => (TaskStatus::Completed, None, true, 0),
                    RunOutcome::Failed | RunOutcome::BudgetExceeded => {
                        (TaskStatus::Failed, end.error.clone(), true, 0)
                    }
                    RunOutcome::Blocked => (TaskStatus::Blocked, end.error.clone(), false, 0),
                    RunOutcome::Review => (TaskStatus::Review, None, false, 0),
                    RunOutcome::Cancelled => (TaskStatus::Cancelled, None, true, 0),
                    RunOutcome::Interrupted => (TaskStatus::Pending, None, false, 0),
                };
                tx.prepare_cached(
                    "UPDATE tasks SET status = ?2, result = COALESCE(?3, result), \
                     status_reason = ?4, error_code = ?5, waiting_on = ?6, \
                     cancel_requested = 0, \
                     completed_at = CASE WHEN ?7 THEN ?8 ELSE NULL END, \
                     duration_ms = COALESCE(duration_ms, 0) + ?9, updated_at = ?8 \
                     WHERE id = ?1",
                )?
                .execute(params![
                    task.id,
                    status.as_str(),
                    end.result,
                    reason,
                    end.error_code,
                    waiting_on,
                    finish,
                    now,
                    end.duration_ms
                ])?;
                events.push(event(
                    "status_changed",
                    serde_json::json!({
                        "from": TaskStatus::Running,
                        "to": status,
                        "reason": reason,
                        "actor": { "type": "agent", "id": end.agent_id },
                    }),
                ));
                if status == TaskStatus::Pending {
                    woken.push(task.id.clone());
                }
            }
            tx.prepare_cached(
                "UPDATE runs SET status = ?2, error = ?3, ended_at = ?4, duration_ms = ?5 \
                 WHERE id = ?1",
            )?
            .execute(params![
                end.run_id,
                run_status.as_str(),
                end.error,
                now,
                end.duration_ms
            ])?;
            tx.prepare_cached(
                "UPDATE agents SET status = ?2, updated_at = ?3 \
                 WHERE id = ?1 AND status = 'running' \
                 AND NOT EXISTS (SELECT 1 FROM tasks WHERE assignee_id = ?1 AND status = 'running')",
            )?
            .execute(params![
                end.agent_id,
                if end.pause_agent { "paused" } else { "idle" },
                now
            ])?;
            if end.pause_agent {
                tx.prepare_cached("UPDATE agents SET status = 'paused', updated_at = ?2 WHERE id = ?1")?
                    .execute(params![end.agent_id, now])?;
            }
            for e in &events {
                insert_event(tx, &task.id, e, &now)?;
            }
            // The trigger on `tasks` may have put the parent back to pending.
            if let (Some(parent), Some(TaskStatus::Blocked)) =
                (task.parent_id.as_deref(), parent_before)
                && read_task(tx, parent)?.status == TaskStatus::Pending
            {
                woken.push(parent.to_string());
            }
            super::audit::append(tx, super::audit::AuditTable::Tenant, audit)?;
            let woken = woken
                .iter()
                .map(|id| read_task(tx, id))
                .collect::<Result<Vec<Task>, _>>()?;
            Ok(RunEnded {
                task: read_task(tx, &task.id)?,
                agent: read_agent(tx, &end.agent_id)?,
                woken,
                budgets,
            })
        })
    }

    fn child_results(&self, task_id: &str) -> Result<Vec<ChildResult>, StoreError> {
        child_results_tx(&*self.read()?, task_id)
    }

    fn run_context(
        &self,
        task: &Task,
        agent_id: &str,
        messages: u32,
        board: u32,
    ) -> Result<RunContext, StoreError> {
        let conn = self.read()?;
        let parent = match task.parent_id.as_deref() {
            Some(p) => match read_task(&conn, p) {
                Ok(t) => Some(t),
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let filter = crate::domain::board::BoardFilter::parse(None, None, None, Some(board), None)
            .map_err(|e| StoreError::Internal(e.message))?;
        Ok(RunContext {
            workspace: read_workspace(&conn)?,
            org: org_nodes_tx(&conn)?,
            parent,
            children: child_results_tx(&conn, &task.id)?,
            unread: unread_messages(&conn, agent_id, messages)?,
            board: board_items_tx(&conn, &filter)?,
            tool_permissions: merged_tool_permissions(&conn, agent_id)?,
            budgets: budgets_tx(&conn, agent_id, &budget_month(crate::domain::now()))?,
        })
    }

    fn open_children(&self, task_id: &str) -> Result<Vec<Task>, StoreError> {
        collect_tasks(
            &*self.read()?,
            &format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE parent_id = ?1 AND status NOT IN {DONE} \
                 ORDER BY created_at, id"
            ),
            [task_id],
            8,
        )
    }

    fn runnable_tasks(&self, limit: u32) -> Result<Vec<Task>, StoreError> {
        collect_tasks(
            &*self.read()?,
            &format!(
                "SELECT {TASK_COLUMNS} FROM tasks t WHERE t.status IN ('pending', 'running') \
                 AND EXISTS (SELECT 1 FROM agents a, workspace w \
                             WHERE a.id = t.assignee_id AND w.id = 1 AND {RUNNABLE}) \
                 ORDER BY t.created_at, t.id LIMIT ?1"
            ),
            [limit],
            16,
        )
    }

    fn take_messages(
        &self,
        agent_id: &str,
        unread_only: bool,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let select = |conn: &Connection| -> Result<Vec<Message>, StoreError> {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE to_agent_id = ?1 \
                 AND (?2 = 0 OR read_at IS NULL) ORDER BY created_at DESC, id DESC LIMIT ?3"
            ))?;
            let mut rows = stmt.query(params![agent_id, unread_only, limit])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(message_from_row(row)?);
            }
            out.reverse();
            Ok(out)
        };
        // Most runs find nothing unread: that costs a read, not a write.
        let seen = select(&*self.read()?)?;
        if seen.iter().all(|m| m.read) {
            return Ok(seen);
        }
        self.write(|tx| {
            let messages = select(tx)?;
            let now = format_time(&crate::domain::now());
            for m in messages.iter().filter(|m| !m.read) {
                tx.prepare_cached("UPDATE messages SET read_at = ?2 WHERE id = ?1")?
                    .execute(params![m.id, now])?;
            }
            Ok(messages)
        })
    }

    fn post_agent_message(
        &self,
        m: &AgentMessage,
        audit: &AuditEntry,
    ) -> Result<Message, StoreError> {
        self.write_audited(audit, |tx| {
            let now = format_time(&crate::domain::now());
            match &m.thread_id {
                Some(id) => {
                    let bumped = tx
                        .prepare_cached(
                            "UPDATE threads SET last_message_at = MAX(last_message_at, ?2) \
                             WHERE id = ?1",
                        )?
                        .execute(params![id, now])?;
                    if bumped == 0 {
                        return Err(StoreError::NotFound);
                    }
                }
                None => {
                    tx.prepare_cached(
                        "INSERT INTO threads (id, subject, created_at, last_message_at) \
                         VALUES (?1, NULL, ?2, ?2)",
                    )?
                    .execute(params![m.new_thread_id, now])?;
                }
            }
            let thread = m.thread_id.as_deref().unwrap_or(&m.new_thread_id);
            tx.prepare_cached(
                "INSERT INTO messages (id, thread_id, from_agent_id, to_agent_id, to_human, body, \
                 kind, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'direct', ?7)",
            )?
            .execute(params![
                m.id,
                thread,
                m.from_agent_id,
                m.to_agent_id,
                m.to_agent_id.is_none(),
                m.body,
                now
            ])?;
            read_message(tx, &m.id)
        })
    }

    fn usage(
        &self,
        group: UsageGroup,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<UsageBucket>, StoreError> {
        let (key, join, name) = match group {
            UsageGroup::Day => ("substr(u.created_at, 1, 10)", "", "NULL"),
            UsageGroup::Agent => (
                "u.agent_id",
                "LEFT JOIN agents a ON a.id = u.agent_id",
                "a.name",
            ),
            UsageGroup::Model => ("u.model", "", "NULL"),
        };
        let mut sql = format!(
            "SELECT {key}, {name}, COUNT(*), SUM(u.input_tokens), SUM(u.output_tokens), \
             SUM(u.cache_read_tokens), SUM(u.cache_write_tokens), SUM(u.cost_micros), \
             SUM(1 - u.priced) FROM usage_records u {join} WHERE 1 = 1"
        );
        let mut args = Vec::new();
        if let Some(from) = from {
            sql.push_str(" AND u.created_at >= ?");
            args.push(Value::Text(format_time(&from)));
        }
        if let Some(to) = to {
            sql.push_str(" AND u.created_at < ?");
            args.push(Value::Text(format_time(&to)));
        }
        sql.push_str(&format!(" GROUP BY {key} ORDER BY {key}"));
        let conn = self.read()?;
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            Ok(UsageBucket {
                key: r.get(0)?,
                agent_name: r.get(1)?,
                calls: r.get(2)?,
                input_tokens: r.get(3)?,
                output_tokens: r.get(4)?,
                cache_read_tokens: r.get(5)?,
                cache_write_tokens: r.get(6)?,
                cost_usd: UsdMicros::from_micros(r.get(7)?).usd(),
                unpriced_calls: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The finished subtasks of a task, oldest first.
fn child_results_tx(conn: &Connection, task_id: &str) -> Result<Vec<ChildResult>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT t.id, a.name, t.status, t.prompt, t.result FROM tasks t \
         LEFT JOIN agents a ON a.id = t.assignee_id \
         WHERE t.parent_id = ?1 AND t.status IN {DONE} ORDER BY t.created_at, t.id"
    ))?;
    let rows = stmt.query_map([task_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (task_id, assignee, status, prompt, result) = row?;
        out.push(ChildResult {
            task_id,
            assignee,
            status: TaskStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("task status '{status}'")))?,
            prompt,
            result,
        });
    }
    Ok(out)
}

/// Up to `limit` unread messages to an agent, oldest first.
fn unread_messages(
    conn: &Connection,
    agent_id: &str,
    limit: u32,
) -> Result<Vec<Message>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE to_agent_id = ?1 AND read_at IS NULL \
         ORDER BY created_at DESC, id DESC LIMIT ?2"
    ))?;
    let mut rows = stmt.query(params![agent_id, limit])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(message_from_row(row)?);
    }
    out.reverse();
    Ok(out)
}

/// Records a model call's usage and charges it (see [`RunRepo::charge`]), in `tx`.
fn charge_tx(
    tx: &Connection,
    c: &Charge,
    at: DateTime<Utc>,
    events: &[NewTaskEvent],
) -> Result<Charged, StoreError> {
    let month = budget_month(at);
    let now = format_time(&at);
    tx.prepare_cached(
        "INSERT INTO usage_records (id, agent_id, task_id, provider_kind, model, \
         input_tokens, output_tokens, cost_micros, created_at, run_id, provider_id, \
         cache_read_tokens, cache_write_tokens, priced) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        uuid::Uuid::now_v7().to_string(),
        c.agent_id,
        c.task_id,
        c.provider_kind,
        c.model,
        c.input_tokens,
        c.output_tokens,
        c.cost_micros,
        now,
        c.run_id,
        c.provider_id,
        c.cache_read_tokens,
        c.cache_write_tokens,
        c.priced,
    ])?;
    tx.prepare_cached(
        "UPDATE runs SET turns = turns + 1, input_tokens = input_tokens + ?2, \
         output_tokens = output_tokens + ?3, cache_read_tokens = cache_read_tokens + ?4, \
         cache_write_tokens = cache_write_tokens + ?5, cost_micros = cost_micros + ?6, \
         provider_kind = ?7, model = ?8 WHERE id = ?1",
    )?
    .execute(params![
        c.run_id,
        c.input_tokens,
        c.output_tokens,
        c.cache_read_tokens,
        c.cache_write_tokens,
        c.cost_micros,
        c.provider_kind,
        c.model
    ])?;
    tx.prepare_cached(
        "UPDATE tasks SET num_turns = num_turns + 1, input_tokens = input_tokens + ?2, \
         output_tokens = output_tokens + ?3, cost_micros = cost_micros + ?4, \
         updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![
        c.task_id,
        c.input_tokens,
        c.output_tokens,
        c.cost_micros,
        now
    ])?;
    tx.prepare_cached(
        "UPDATE agents SET spent_this_month_micros = ?2 + \
         CASE WHEN spent_month = ?3 THEN spent_this_month_micros ELSE 0 END, \
         spent_month = ?3 WHERE id = ?1",
    )?
    .execute(params![c.agent_id, c.cost_micros, month])?;
    tx.prepare_cached(
        "UPDATE workspace SET spent_this_month_micros = ?1 + \
         CASE WHEN spent_month = ?2 THEN spent_this_month_micros ELSE 0 END, \
         spent_month = ?2 WHERE id = 1",
    )?
    .execute(params![c.cost_micros, month])?;
    for e in events {
        insert_event(tx, &c.task_id, e, &now)?;
    }
    let cancel_requested = tx
        .prepare_cached("SELECT cancel_requested FROM tasks WHERE id = ?1")?
        .query_row([&c.task_id], |r| r.get(0))?;
    Ok(Charged {
        budgets: budgets_tx(tx, &c.agent_id, &month)?,
        cancel_requested,
    })
}
