-- Every index is one more b-tree that every task creation writes, and one more page in its
-- commit. Two of them never mattered for a new task:
--
-- `tasks_by_parent_status` only serves lookups by a parent (its children, the foreign key's
-- `ON DELETE SET NULL`): `parent_id = ?` implies `parent_id IS NOT NULL`, so the partial index
-- serves them all, and top-level tasks skip it.
DROP INDEX tasks_by_parent_status;
CREATE INDEX tasks_by_parent_status ON tasks (parent_id, status) WHERE parent_id IS NOT NULL;

-- `tasks_by_assignee (assignee_id, status)` served "is this agent running a task": an index
-- of running tasks serves it, and new tasks (pending) skip it. Lookups by assignee alone
-- (lists, unassigning a deleted agent's tasks, the foreign key) use
-- `tasks_by_assignee_created`.
DROP INDEX tasks_by_assignee;
CREATE INDEX tasks_running_by_assignee ON tasks (assignee_id) WHERE status = 'running';
