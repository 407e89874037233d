-- The platform registry: one row per tenant. Tenant data never lives here.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL
                CHECK (status IN ('provisioning', 'active', 'suspended', 'deleted', 'purging')),
    plan        TEXT NOT NULL CHECK (plan IN ('free', 'team', 'enterprise')),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT
) STRICT;

CREATE INDEX tenants_by_status ON tenants (status);

-- A single row. `generation` grows with every change to `tenants` (triggers below), so a
-- running server sees changes made by other processes (the CLI) by polling one integer.
CREATE TABLE registry_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    generation      INTEGER NOT NULL,
    last_ready_probe TEXT
) STRICT;

INSERT INTO registry_state (id, generation) VALUES (1, 0);

CREATE TRIGGER tenants_generation_on_insert AFTER INSERT ON tenants
BEGIN
    UPDATE registry_state SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER tenants_generation_on_update AFTER UPDATE ON tenants
BEGIN
    UPDATE registry_state SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER tenants_generation_on_delete AFTER DELETE ON tenants
BEGIN
    UPDATE registry_state SET generation = generation + 1 WHERE id = 1;
END;
