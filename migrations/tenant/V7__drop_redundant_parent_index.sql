-- `tasks_by_parent (parent_id)` is a prefix of `tasks_by_parent_status (parent_id, status)`
-- (V6), which serves every lookup it served (a task's children, the foreign key's
-- `ON DELETE SET NULL`). Each index is one more b-tree that every task creation writes, and
-- one more page in its commit.
DROP INDEX tasks_by_parent;
