-- A new task enters the full-text index once per commit, with the other tasks of that commit,
-- instead of inside its own write.
--
-- Concurrent writes of a tenant share a transaction, each in a savepoint of its own (see
-- `store/sqlite/writer.rs`), and FTS5 writes its pending terms out as a new segment at every
-- savepoint and release: each task of a batch cost a segment (and merges later), which was
-- most of a batched write's full-text cost. Now the insert trigger only notes the task in
-- `tasks_fts_pending`; the tenant's writer indexes the noted tasks, all in one statement,
-- right before each commit (`index_pending_tasks`), and the table is empty again when the
-- transaction commits. Readers never see a pending task.
--
-- A task updated or deleted while still pending has nothing in the index to take out: it is
-- indexed with its latest text at the commit, or dropped from the note.
CREATE TABLE tasks_fts_pending (
    task_rowid INTEGER PRIMARY KEY
);

DROP TRIGGER tasks_fts_after_insert;
CREATE TRIGGER tasks_fts_after_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO tasks_fts_pending (task_rowid) VALUES (new.rowid);
END;

DROP TRIGGER tasks_fts_after_delete;
CREATE TRIGGER tasks_fts_after_delete AFTER DELETE ON tasks BEGIN
    INSERT INTO tasks_fts (tasks_fts, rowid, prompt, result)
    SELECT 'delete', old.rowid, old.prompt, old.result
    WHERE NOT EXISTS (SELECT 1 FROM tasks_fts_pending WHERE task_rowid = old.rowid);
    DELETE FROM tasks_fts_pending WHERE task_rowid = old.rowid;
END;

DROP TRIGGER tasks_fts_after_update;
CREATE TRIGGER tasks_fts_after_update AFTER UPDATE OF prompt, result ON tasks
WHEN NOT EXISTS (SELECT 1 FROM tasks_fts_pending WHERE task_rowid = old.rowid) BEGIN
    INSERT INTO tasks_fts (tasks_fts, rowid, prompt, result)
    VALUES ('delete', old.rowid, old.prompt, old.result);
    INSERT INTO tasks_fts (rowid, prompt, result) VALUES (new.rowid, new.prompt, new.result);
END;
