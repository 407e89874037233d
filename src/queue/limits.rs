//! Per-tenant caps on running jobs, so one tenant cannot fill every worker slot.

use std::collections::HashMap;

/// How many jobs of a tenant may run at once, across every worker sharing `queue.db`. The
/// caller backs it with the registry (the tenant's plan). Platform jobs have no cap.
///
/// Called inside the claim transaction: it must answer from memory, never block.
pub trait TenantLimits: Send + Sync + 'static {
    fn max_running(&self, tenant: &str) -> u32;
}

/// A default cap with optional per-tenant overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedTenantLimits {
    default: u32,
    overrides: HashMap<String, u32>,
}

impl FixedTenantLimits {
    pub fn new(default: u32) -> Self {
        Self {
            default,
            overrides: HashMap::new(),
        }
    }

    pub fn with(mut self, tenant: impl Into<String>, max_running: u32) -> Self {
        self.overrides.insert(tenant.into(), max_running);
        self
    }
}

impl Default for FixedTenantLimits {
    /// No effective cap: the pool's concurrency is the only limit.
    fn default() -> Self {
        Self::new(u32::MAX)
    }
}

impl TenantLimits for FixedTenantLimits {
    fn max_running(&self, tenant: &str) -> u32 {
        self.overrides.get(tenant).copied().unwrap_or(self.default)
    }
}
