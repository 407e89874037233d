-- `access_generation` grows with every change that can end or narrow someone's access (a
-- membership added, changed or removed; a token revoked or altered; a user changed or
-- removed). Servers cache authenticated tokens and poll this one integer to drop the cache
-- when another process (the CLI) changed access.
ALTER TABLE registry_state ADD COLUMN access_generation INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER memberships_access_on_insert AFTER INSERT ON memberships
BEGIN
    UPDATE registry_state SET access_generation = access_generation + 1 WHERE id = 1;
END;

CREATE TRIGGER memberships_access_on_update AFTER UPDATE ON memberships
BEGIN
    UPDATE registry_state SET access_generation = access_generation + 1 WHERE id = 1;
END;

CREATE TRIGGER memberships_access_on_delete AFTER DELETE ON memberships
BEGIN
    UPDATE registry_state SET access_generation = access_generation + 1 WHERE id = 1;
END;

-- Not on `last_used_at`, which changes as tokens are used.
CREATE TRIGGER api_tokens_access_on_update
AFTER UPDATE OF tenant_id, user_id, token_hash, role, expires_at, revoked_at ON api_tokens
BEGIN
    UPDATE registry_state SET access_generation = access_generation + 1 WHERE id = 1;
END;

CREATE TRIGGER api_tokens_access_on_delete AFTER DELETE ON api_tokens
BEGIN
    UPDATE registry_state SET access_generation = access_generation + 1 WHERE id = 1;
END;

CREATE TRIGGER users_access_on_update AFTER UPDATE OF email, is_platform_admin ON users
BEGIN
    UPDATE registry_state SET access_generation = access_generation + 1 WHERE id = 1;
END;

CREATE TRIGGER users_access_on_delete AFTER DELETE ON users
BEGIN
    UPDATE registry_state SET access_generation = access_generation + 1 WHERE id = 1;
END;
