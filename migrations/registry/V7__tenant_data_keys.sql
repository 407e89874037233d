-- Each tenant's data key, wrapped (sealed) by the master key named by `master_key_id`. The
-- key seals the tenant's secrets (provider API keys) in its own database; deleting this row
-- makes every copy of those secrets unreadable, backups included. `wrapped` is never the key
-- itself: without the master key it is random bytes.
CREATE TABLE tenant_data_keys (
    tenant_id      TEXT PRIMARY KEY,
    master_key_id  TEXT NOT NULL,
    wrapped        BLOB NOT NULL,
    created_at     TEXT NOT NULL,
    rewrapped_at   TEXT
) STRICT;
