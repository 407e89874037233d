-- The platform audit log: what platform admins, the CLI and sign-ins did outside any one tenant
-- (tenant lifecycle, users, sessions). Tenant actions are recorded in each tenant's own file.
-- Append-only: the triggers refuse every UPDATE and DELETE, whoever issues it.
CREATE TABLE platform_audit_log (
    id          TEXT PRIMARY KEY,
    actor_type  TEXT NOT NULL CHECK (actor_type IN ('user', 'token', 'agent', 'system')),
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    details     TEXT NOT NULL DEFAULT '{}',
    request_id  TEXT,
    ip          TEXT,
    user_agent  TEXT,
    created_at  TEXT NOT NULL
) STRICT;

CREATE INDEX platform_audit_log_by_time ON platform_audit_log (created_at, id);

CREATE TRIGGER platform_audit_log_no_update BEFORE UPDATE ON platform_audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER platform_audit_log_no_delete BEFORE DELETE ON platform_audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
