-- V6: agent runs, usage with cache tokens, monthly budgets, durable delegation.

-- Each time a task becomes runnable (created, or back to pending) its attempt grows; the run job
-- of that attempt is enqueued under the key run:<task>:<attempt>, so a stale job of an earlier
-- attempt (or of a former assignee) finds it outdated and does nothing.
ALTER TABLE tasks ADD COLUMN run_attempt INTEGER NOT NULL DEFAULT 1;
-- Why the task is in its status (e.g. "waiting for 2 subtasks"), and a machine code for
-- failures (BUDGET_EXCEEDED, RUN_FAILED, MAX_TURNS, PROVIDER_ERROR…).
ALTER TABLE tasks ADD COLUMN status_reason TEXT;
ALTER TABLE tasks ADD COLUMN error_code TEXT;
-- While > 0 the task is blocked waiting for that many open subtasks; the last subtask to finish
-- puts it back to pending (in the same transaction), with its children's results in its prompt.
ALTER TABLE tasks ADD COLUMN waiting_on INTEGER NOT NULL DEFAULT 0;
-- Delegation depth: 0 for a task a human created, parent's depth + 1 for a subtask.
ALTER TABLE tasks ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER tasks_run_attempt_on_pending AFTER UPDATE OF status ON tasks
WHEN new.status = 'pending' AND old.status <> 'pending' BEGIN
    UPDATE tasks SET run_attempt = run_attempt + 1 WHERE id = new.id;
END;

CREATE TRIGGER tasks_run_attempt_on_reassign AFTER UPDATE OF assignee_id ON tasks
WHEN new.status = 'pending' AND new.assignee_id IS NOT old.assignee_id BEGIN
    UPDATE tasks SET run_attempt = run_attempt + 1 WHERE id = new.id;
END;

-- Pending work per agent, for the wake-up of an agent and the recovery sweep.
CREATE INDEX tasks_pending_by_assignee ON tasks (assignee_id, priority DESC, created_at)
    WHERE status = 'pending';
CREATE INDEX tasks_by_parent_status ON tasks (parent_id, status);

-- One row per run: an attempt of an agent at a task.
CREATE TABLE runs (
    id                 TEXT PRIMARY KEY,
    task_id            TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    agent_id           TEXT REFERENCES agents (id) ON DELETE SET NULL,
    attempt            INTEGER NOT NULL,
    provider_kind      TEXT,
    model              TEXT,
    status             TEXT NOT NULL DEFAULT 'running'
                       CHECK (status IN ('running', 'completed', 'failed', 'blocked', 'review',
                                         'waiting', 'cancelled', 'budget_exceeded',
                                         'interrupted')),
    turns              INTEGER NOT NULL DEFAULT 0,
    input_tokens       INTEGER NOT NULL DEFAULT 0,
    output_tokens      INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens  INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cost_micros        INTEGER NOT NULL DEFAULT 0,
    error              TEXT,
    started_at         TEXT NOT NULL,
    ended_at           TEXT,
    duration_ms        INTEGER
) STRICT;

CREATE INDEX runs_by_task ON runs (task_id, started_at);

ALTER TABLE usage_records ADD COLUMN run_id TEXT;
ALTER TABLE usage_records ADD COLUMN provider_id TEXT;
ALTER TABLE usage_records ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
-- Whether the model had a price (an unknown model records tokens at cost 0).
ALTER TABLE usage_records ADD COLUMN priced INTEGER NOT NULL DEFAULT 1;
CREATE INDEX usage_by_agent_time ON usage_records (agent_id, created_at);

-- Monthly spend: the month (YYYY-MM, UTC) the counter belongs to; a counter of an earlier month
-- reads as 0 and restarts at the next charge.
ALTER TABLE agents ADD COLUMN spent_month TEXT;
ALTER TABLE workspace ADD COLUMN monthly_budget_micros INTEGER;
ALTER TABLE workspace ADD COLUMN spent_this_month_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workspace ADD COLUMN spent_month TEXT;

-- Durable delegation: when a subtask finishes (or is deleted), its parent, if it waits for
-- subtasks, counts the open ones again; at zero it goes back to pending (and the run_attempt
-- trigger above gives it a new attempt). Whoever finished the subtask enqueues the parent's run;
-- the recovery sweep catches a crash in between.
CREATE TRIGGER tasks_wake_parent_on_finish AFTER UPDATE OF status ON tasks
WHEN new.parent_id IS NOT NULL
     AND new.status IN ('completed', 'failed', 'cancelled')
     AND old.status NOT IN ('completed', 'failed', 'cancelled') BEGIN
    UPDATE tasks SET
        waiting_on = (SELECT COUNT(*) FROM tasks c WHERE c.parent_id = tasks.id
                      AND c.status NOT IN ('completed', 'failed', 'cancelled')),
        status = CASE WHEN (SELECT COUNT(*) FROM tasks c WHERE c.parent_id = tasks.id
                            AND c.status NOT IN ('completed', 'failed', 'cancelled')) = 0
                      THEN 'pending' ELSE status END,
        status_reason = CASE WHEN (SELECT COUNT(*) FROM tasks c WHERE c.parent_id = tasks.id
                                   AND c.status NOT IN ('completed', 'failed', 'cancelled')) = 0
                             THEN NULL
                             ELSE 'waiting for ' || (SELECT COUNT(*) FROM tasks c
                                  WHERE c.parent_id = tasks.id AND c.status NOT IN
                                  ('completed', 'failed', 'cancelled')) || ' subtasks' END,
        updated_at = new.updated_at
    WHERE id = new.parent_id AND status = 'blocked' AND waiting_on > 0;
END;

CREATE TRIGGER tasks_wake_parent_on_delete AFTER DELETE ON tasks
WHEN old.parent_id IS NOT NULL AND old.status NOT IN ('completed', 'failed', 'cancelled') BEGIN
    UPDATE tasks SET
        waiting_on = (SELECT COUNT(*) FROM tasks c WHERE c.parent_id = tasks.id
                      AND c.status NOT IN ('completed', 'failed', 'cancelled')),
        status = CASE WHEN (SELECT COUNT(*) FROM tasks c WHERE c.parent_id = tasks.id
                            AND c.status NOT IN ('completed', 'failed', 'cancelled')) = 0
                      THEN 'pending' ELSE status END,
        status_reason = CASE WHEN (SELECT COUNT(*) FROM tasks c WHERE c.parent_id = tasks.id
                                   AND c.status NOT IN ('completed', 'failed', 'cancelled')) = 0
                             THEN NULL ELSE status_reason END
    WHERE id = old.parent_id AND status = 'blocked' AND waiting_on > 0;
END;
