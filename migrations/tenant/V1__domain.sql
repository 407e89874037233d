-- One tenant's whole domain. Every tenant has its own database file (or, on PostgreSQL, its own
-- schema), so no table carries a tenant column and no query can reach another tenant's rows.
-- Ids are UUIDv7 text, times are UTC RFC 3339 text, money is integer micro-dollars.

-- Identity of the file itself: checked on every open so a file copied or renamed onto another
-- tenant's path is refused instead of served.
CREATE TABLE tenant_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE workspace (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    name                 TEXT NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    timezone             TEXT NOT NULL DEFAULT 'UTC',
    language             TEXT NOT NULL DEFAULT 'en-US',
    default_provider_id  TEXT,
    default_model        TEXT,
    default_assignee_id  TEXT,
    allow_any_delegation INTEGER NOT NULL DEFAULT 0,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
) STRICT;

CREATE TABLE providers (
    id                TEXT PRIMARY KEY,
    kind              TEXT NOT NULL,
    name              TEXT NOT NULL UNIQUE,
    base_url          TEXT,
    api_key_encrypted BLOB,
    api_key_last4     TEXT,
    default_model     TEXT,
    prices            TEXT NOT NULL DEFAULT '{}',
    config            TEXT NOT NULL DEFAULT '{}',
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
) STRICT;

CREATE TABLE agents (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    display_name           TEXT NOT NULL,
    role                   TEXT NOT NULL DEFAULT '',
    department             TEXT NOT NULL DEFAULT '',
    level                  TEXT NOT NULL DEFAULT 'ic'
                           CHECK (level IN ('ic', 'lead', 'manager', 'vp', 'c-suite')),
    personality            TEXT NOT NULL DEFAULT '',
    status                 TEXT NOT NULL DEFAULT 'idle'
                           CHECK (status IN ('idle', 'running', 'error', 'paused')),
    reports_to             TEXT REFERENCES agents (id) ON DELETE SET NULL,
    provider_id            TEXT REFERENCES providers (id) ON DELETE SET NULL,
    model                  TEXT,
    monthly_budget_micros  INTEGER,
    spent_this_month_micros INTEGER NOT NULL DEFAULT 0,
    avatar_color           TEXT,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
) STRICT;

CREATE INDEX agents_by_manager ON agents (reports_to);

CREATE TABLE tasks (
    id               TEXT PRIMARY KEY,
    prompt           TEXT NOT NULL,
    context          TEXT,
    priority         INTEGER NOT NULL DEFAULT 0,
    tags             TEXT NOT NULL DEFAULT '[]',
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'review', 'completed', 'failed',
                                       'blocked', 'cancelled')),
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    assignee_id      TEXT REFERENCES agents (id) ON DELETE SET NULL,
    delegator_id     TEXT REFERENCES agents (id) ON DELETE SET NULL,
    parent_id        TEXT REFERENCES tasks (id) ON DELETE SET NULL,
    result           TEXT,
    cost_micros      INTEGER NOT NULL DEFAULT 0,
    input_tokens     INTEGER NOT NULL DEFAULT 0,
    output_tokens    INTEGER NOT NULL DEFAULT 0,
    num_turns        INTEGER NOT NULL DEFAULT 0,
    duration_ms      INTEGER,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    started_at       TEXT,
    completed_at     TEXT
) STRICT;

CREATE INDEX tasks_by_status ON tasks (status, created_at);
CREATE INDEX tasks_by_assignee ON tasks (assignee_id, status);
CREATE INDEX tasks_by_parent ON tasks (parent_id);
CREATE INDEX tasks_by_created ON tasks (created_at, id);

-- Full-text search over prompt and result, kept in step with `tasks` by triggers.
CREATE VIRTUAL TABLE tasks_fts USING fts5 (
    prompt, result, content = 'tasks', content_rowid = 'rowid'
);

CREATE TRIGGER tasks_fts_after_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO tasks_fts (rowid, prompt, result) VALUES (new.rowid, new.prompt, new.result);
END;

CREATE TRIGGER tasks_fts_after_delete AFTER DELETE ON tasks BEGIN
    INSERT INTO tasks_fts (tasks_fts, rowid, prompt, result)
    VALUES ('delete', old.rowid, old.prompt, old.result);
END;

CREATE TRIGGER tasks_fts_after_update AFTER UPDATE OF prompt, result ON tasks BEGIN
    INSERT INTO tasks_fts (tasks_fts, rowid, prompt, result)
    VALUES ('delete', old.rowid, old.prompt, old.result);
    INSERT INTO tasks_fts (rowid, prompt, result) VALUES (new.rowid, new.prompt, new.result);
END;

CREATE TABLE task_events (
    id         TEXT PRIMARY KEY,
    task_id    TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    data       TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX task_events_by_task ON task_events (task_id, id);

CREATE TABLE threads (
    id              TEXT PRIMARY KEY,
    subject         TEXT,
    created_at      TEXT NOT NULL,
    last_message_at TEXT NOT NULL
) STRICT;

CREATE INDEX threads_by_recency ON threads (last_message_at DESC);

CREATE TABLE messages (
    id            TEXT PRIMARY KEY,
    thread_id     TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    from_agent_id TEXT REFERENCES agents (id) ON DELETE SET NULL,
    from_user_id  TEXT,
    to_agent_id   TEXT REFERENCES agents (id) ON DELETE SET NULL,
    to_human      INTEGER NOT NULL DEFAULT 0,
    body          TEXT NOT NULL,
    kind          TEXT NOT NULL DEFAULT 'direct' CHECK (kind IN ('direct', 'system', 'chat')),
    read_at       TEXT,
    edited_at     TEXT,
    created_at    TEXT NOT NULL
) STRICT;

CREATE INDEX messages_by_thread ON messages (thread_id, created_at);
CREATE INDEX messages_by_recipient ON messages (to_agent_id, read_at);

CREATE TABLE board_items (
    id              TEXT PRIMARY KEY,
    type            TEXT NOT NULL
                    CHECK (type IN ('status_update', 'blocker', 'finding', 'request')),
    content         TEXT NOT NULL,
    author_agent_id TEXT REFERENCES agents (id) ON DELETE SET NULL,
    author_user_id  TEXT,
    archived_at     TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;

CREATE INDEX board_items_by_type ON board_items (type, created_at);

CREATE TABLE tool_permissions (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    enabled     INTEGER NOT NULL DEFAULT 1,
    icon        TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

-- Per-agent overrides of the workspace-wide tool permissions.
CREATE TABLE agent_tool_permissions (
    agent_id           TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    tool_permission_id TEXT NOT NULL REFERENCES tool_permissions (id) ON DELETE CASCADE,
    enabled            INTEGER NOT NULL,
    PRIMARY KEY (agent_id, tool_permission_id)
) STRICT;

CREATE TABLE mcp_servers (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    protocol             TEXT NOT NULL CHECK (protocol IN ('stdio', 'sse', 'http')),
    uri                  TEXT NOT NULL,
    status               TEXT NOT NULL DEFAULT 'disconnected'
                         CHECK (status IN ('connected', 'disconnected', 'error')),
    tool_count           INTEGER NOT NULL DEFAULT 0,
    last_ping_at         TEXT,
    error_message        TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    icon_name            TEXT,
    icon_color           TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
) STRICT;

CREATE TABLE hook_events (
    id          TEXT PRIMARY KEY,
    agent_id    TEXT REFERENCES agents (id) ON DELETE SET NULL,
    task_id     TEXT REFERENCES tasks (id) ON DELETE SET NULL,
    session_id  TEXT,
    event_type  TEXT NOT NULL,
    payload     TEXT NOT NULL DEFAULT '{}',
    received_at TEXT NOT NULL
) STRICT;

CREATE INDEX hook_events_by_time ON hook_events (received_at);

CREATE TABLE usage_records (
    id            TEXT PRIMARY KEY,
    agent_id      TEXT REFERENCES agents (id) ON DELETE SET NULL,
    task_id       TEXT REFERENCES tasks (id) ON DELETE SET NULL,
    provider_kind TEXT NOT NULL,
    model         TEXT NOT NULL,
    input_tokens  INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost_micros   INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
) STRICT;

CREATE INDEX usage_by_time ON usage_records (created_at);

CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    actor_type  TEXT NOT NULL CHECK (actor_type IN ('user', 'token', 'agent', 'system')),
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    details     TEXT NOT NULL DEFAULT '{}',
    request_id  TEXT,
    ip          TEXT,
    created_at  TEXT NOT NULL
) STRICT;

CREATE INDEX audit_log_by_time ON audit_log (created_at, id);
