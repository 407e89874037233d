//! The embedded SQLite backend: `registry.db` plus one file per tenant.

mod agents;
mod api_tokens;
mod audit;
mod board;
mod chat;
mod checkpoint;
mod connection;
mod data_keys;
mod hook_events;
mod mcp_servers;
mod providers;
mod registry;
mod runs;
mod settings;
mod task_json;
mod tasks;
mod tenants;
mod writer;

use std::sync::Arc;

use scheduled_thread_pool::ScheduledThreadPool;

pub use checkpoint::{CheckpointTotals, checkpoint_totals};
pub use connection::{SqliteManager, SqlitePool, write_tx};
pub use registry::SqliteRegistry;
pub use tenants::SqliteTenantDatabases;
pub use writer::{Deferred, WriteTotals, defer_commits, write_totals};

use super::{Storage, StoreError};
use crate::config::StorageSettings;
use crate::data_dir::DataDir;

/// Opens the registry (migrating it) and the tenant database set of a data dir.
pub fn open(dir: DataDir, settings: &StorageSettings) -> Result<Storage, StoreError> {
    // Shared by every pool. r2d2 opens new connections on these threads (a checkout waits for
    // them), so a few are needed for bursts of first requests to many tenants; they also reap
    // idle connections.
    let maintenance = Arc::new(
        ScheduledThreadPool::builder()
            .num_threads(4)
            .thread_name_pattern("sqlite-pool-{}")
            .build(),
    );
    let registry = Arc::new(SqliteRegistry::open(&dir, settings, maintenance.clone())?);
    let tenants = Arc::new(SqliteTenantDatabases::new(dir, settings, maintenance));
    Ok(Storage { registry, tenants })
}
