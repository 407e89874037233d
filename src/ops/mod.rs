//! Operations: metrics, rate limits, embedded web assets and process limits.

pub mod assets;
pub mod maintenance;
pub mod metrics;
pub mod queue_metrics;
pub mod queue_runtime;
pub mod rate_limit;
pub mod run_metrics;
pub mod sched;

/// Raises the soft limit of open files to the hard limit. Each open WAL database holds a few
/// descriptors per connection, and a server keeps many tenants open; the common default soft
/// limit of 1024 would be exhausted long before the tenant cache is full.
pub fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open file limit"),
    }
}
