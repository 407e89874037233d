-- An agent's tasks newest first (GET /api/agents/{id}/tasks, ?assignee=) without sorting all of
-- that agent's tasks.
CREATE INDEX tasks_by_assignee_created ON tasks (assignee_id, created_at, id);

-- The task that asks the recipient agent to reply to a human's message (POST /api/messages).
ALTER TABLE messages ADD COLUMN reply_task_id TEXT REFERENCES tasks (id) ON DELETE SET NULL;

-- Tasks per status, kept by triggers, so the board's column counts cost a few row reads
-- instead of a scan of every task.
CREATE TABLE task_counts (
    status TEXT PRIMARY KEY,
    n      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO task_counts (status, n)
SELECT s.value, (SELECT COUNT(*) FROM tasks WHERE status = s.value)
FROM json_each('["pending","running","review","completed","failed","blocked","cancelled"]') AS s;

CREATE TRIGGER task_counts_after_insert AFTER INSERT ON tasks BEGIN
    UPDATE task_counts SET n = n + 1 WHERE status = new.status;
END;

CREATE TRIGGER task_counts_after_delete AFTER DELETE ON tasks BEGIN
    UPDATE task_counts SET n = n - 1 WHERE status = old.status;
END;

CREATE TRIGGER task_counts_after_status AFTER UPDATE OF status ON tasks
WHEN old.status <> new.status BEGIN
    UPDATE task_counts SET n = n - 1 WHERE status = old.status;
    UPDATE task_counts SET n = n + 1 WHERE status = new.status;
END;
