-- An agent's tasks newest first (GET /api/agents/{id}/tasks, ?assignee=) without sorting all of
-- that agent's tasks.
CREATE INDEX tasks_by_assignee_created ON tasks (assignee_id, created_at, id);

-- The task that asks the recipient agent to reply to a human's message (POST /api/messages).
ALTER TABLE messages ADD COLUMN reply_task_id TEXT REFERENCES tasks (id) ON DELETE SET NULL;
