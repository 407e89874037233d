-- People and their roles in tenants. Membership lives in the registry because a person's
-- tenants are listed across tenants (at login); tenant data itself never lives here.
CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    email             TEXT NOT NULL UNIQUE,       -- normalised: trimmed, lowercase
    password_hash     TEXT NOT NULL,              -- argon2id PHC string, never the password
    is_platform_admin INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    last_login_at     TEXT
) STRICT;

CREATE TABLE memberships (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
) STRICT;

CREATE INDEX memberships_by_user ON memberships (user_id);
