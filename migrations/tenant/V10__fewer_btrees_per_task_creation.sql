-- Every b-tree a write touches is at least one page in its commit: one WAL frame written,
-- checksummed and later checkpointed. A task creation touched 16 of them; this takes away
-- four that no query needs.

-- Task events are only ever read per task in id order, so the table itself can be kept in
-- that order: keyed by (task_id, id), it replaces the rowid table, its id index and
-- `task_events_by_task` (three b-trees become one). Event ids are UUIDv7s, unique on their own.
CREATE TABLE task_events_v10 (
    task_id    TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    data       TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    PRIMARY KEY (task_id, id)
) STRICT, WITHOUT ROWID;

INSERT INTO task_events_v10 (task_id, id, kind, data, created_at)
SELECT task_id, id, kind, data, created_at FROM task_events;

DROP TABLE task_events;
ALTER TABLE task_events_v10 RENAME TO task_events;

-- The audit log is read newest id first, or by time: keyed by its id, the table replaces the
-- rowid table and its id index (three b-trees become two). Dropping the old table takes its
-- append-only triggers with it (a DROP fires no DELETE trigger); they are made again below.
CREATE TABLE audit_log_v10 (
    id          TEXT PRIMARY KEY,
    actor_type  TEXT NOT NULL CHECK (actor_type IN ('user', 'token', 'agent', 'system')),
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    details     TEXT NOT NULL DEFAULT '{}',
    request_id  TEXT,
    ip          TEXT,
    created_at  TEXT NOT NULL,
    user_agent  TEXT
) STRICT, WITHOUT ROWID;

INSERT INTO audit_log_v10
    (id, actor_type, actor_id, action, target_type, target_id, details, request_id, ip,
     created_at, user_agent)
SELECT id, actor_type, actor_id, action, target_type, target_id, details, request_id, ip,
       created_at, user_agent
FROM audit_log;

DROP TABLE audit_log;
ALTER TABLE audit_log_v10 RENAME TO audit_log;

CREATE INDEX audit_log_by_time ON audit_log (created_at, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- The full-text index kept each task's token count per column in `tasks_fts_docsize`, a
-- b-tree of its own. Only ranking (bm25) reads those counts, and searches here filter, they
-- do not rank. The index is made again without them, from the tasks themselves.
DROP TABLE tasks_fts;
CREATE VIRTUAL TABLE tasks_fts USING fts5 (
    prompt, result, content = 'tasks', content_rowid = 'rowid', columnsize = 0
);
INSERT INTO tasks_fts (tasks_fts) VALUES ('rebuild');
