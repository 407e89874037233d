-- The job queue (queue.db, its own file so queue churn never contends with the registry).
-- Times are integer milliseconds since the Unix epoch: claims compare them on every call.

CREATE TABLE jobs (
    -- UUIDv7, its 16 bytes: time-ordered, so `ORDER BY id DESC` lists newest first and is
    -- stable under inserts. Bytes, not text: every index ends with the key, and short keys
    -- compare and pack faster.
    id                BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    kind              TEXT NOT NULL,
    -- '' for platform jobs (maintenance), which belong to no tenant. Tenant slugs are never
    -- empty, and a NOT NULL column keeps `tenant = ?` usable by every index below.
    tenant            TEXT NOT NULL DEFAULT '',
    payload           TEXT NOT NULL,
    priority          INTEGER NOT NULL DEFAULT 0,
    state             TEXT NOT NULL
                      CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'dead', 'cancelled')),
    run_at            INTEGER NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL CHECK (max_attempts >= 1),
    timeout_ms        INTEGER NOT NULL CHECK (timeout_ms >= 1),
    lease_owner       TEXT,
    lease_expires_at  INTEGER,
    idempotency_key   TEXT,
    -- At most `concurrency_limit` jobs of one tenant with the same key run at once.
    concurrency_key   TEXT,
    concurrency_limit INTEGER NOT NULL DEFAULT 1 CHECK (concurrency_limit >= 1),
    last_error        TEXT,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    finished_at       INTEGER
) STRICT, WITHOUT ROWID;

-- Claims: per tenant, priority levels highest first, each level oldest first. Covering, so a
-- claim reads no table row until it has chosen its jobs. Partial: finished rows cost nothing.
CREATE INDEX jobs_queued ON jobs (tenant, priority DESC, run_at, concurrency_key, concurrency_limit)
    WHERE state = 'queued';

-- Running counts per tenant and concurrency key (claims), expired leases (reaper). Small: one
-- entry per running job.
CREATE INDEX jobs_running ON jobs (tenant, concurrency_key, lease_expires_at)
    WHERE state = 'running';

-- An idempotency key is unique per tenant while its job is live; once the job finished the
-- same key can be enqueued again.
CREATE UNIQUE INDEX jobs_live_idempotency ON jobs (tenant, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND state IN ('queued', 'running');

-- Pruning finished jobs.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

-- Listing (newest first within a tenant: the primary key is the index's last column) and
-- counts by state and kind for the metrics.
CREATE INDEX jobs_by_tenant ON jobs (tenant);
CREATE INDEX jobs_by_state ON jobs (state, kind);

CREATE TABLE schedules (
    name          TEXT PRIMARY KEY NOT NULL,
    cron          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    tenant        TEXT NOT NULL DEFAULT '',
    payload       TEXT NOT NULL,
    priority      INTEGER NOT NULL DEFAULT 0,
    catch_up      INTEGER NOT NULL DEFAULT 0,
    next_fire_at  INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX schedules_due ON schedules (next_fire_at);
