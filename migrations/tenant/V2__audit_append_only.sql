-- The tenant audit log records the client's user agent too, and becomes append-only: the
-- triggers refuse every UPDATE and DELETE, whoever issues it.
ALTER TABLE audit_log ADD COLUMN user_agent TEXT;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
