-- Lists filtered by status, and each column of the board, are read newest first by
-- (created_at, id). `tasks_by_status (status, created_at)` gave the rows in created_at order
-- only, so SQLite sorted each run of equal created_at in a temporary b-tree ("USE TEMP B-TREE
-- FOR RIGHT PART OF ORDER BY"); with `id` in the index it reads them in order and stops at
-- the limit.
DROP INDEX tasks_by_status;
CREATE INDEX tasks_by_status ON tasks (status, created_at, id);
