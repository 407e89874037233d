-- Browser sessions. Only a SHA-256 of the session id is stored: a copy of this database does
-- not let anyone sign in. The CSRF token is derived from the session id, so it is not stored.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL
) STRICT;

CREATE INDEX sessions_by_user ON sessions (user_id);
