//! The `[rate_limits]` section of the config file.

use serde::Deserialize;

use crate::domain::Plan;

/// A request quota: `requests_per_minute` on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLimit {
    pub requests_per_minute: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Authenticated tenant requests, per tenant, by the tenant's plan.
    pub free: PlanLimit,
    pub team: PlanLimit,
    pub enterprise: PlanLimit,
    /// Sign-in (and setup) attempts per client address; IPv6 clients count per /64.
    pub login_per_minute: u32,
    pub login_burst: u32,
    /// Failed sign-ins for one email before each further failure locks it for a while.
    pub login_free_failures: u32,
    /// The first lock; each further failure doubles it, up to `login_backoff_max_secs`.
    pub login_backoff_base_secs: u64,
    pub login_backoff_max_secs: u64,
    /// How many tenants, client addresses and accounts the limiters remember (each). Beyond
    /// that the least recently seen are forgotten, so a flood of distinct addresses costs
    /// bounded memory (about 100 bytes a key).
    pub max_tracked_keys: usize,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            free: PlanLimit {
                requests_per_minute: 120,
                burst: 60,
            },
            team: PlanLimit {
                requests_per_minute: 1_200,
                burst: 300,
            },
            enterprise: PlanLimit {
                requests_per_minute: 12_000,
                burst: 2_000,
            },
            login_per_minute: 10,
            login_burst: 10,
            login_free_failures: 5,
            login_backoff_base_secs: 1,
            login_backoff_max_secs: 15 * 60,
            max_tracked_keys: 100_000,
        }
    }
}

impl RateLimitSettings {
    pub fn plan(&self, plan: Plan) -> PlanLimit {
        match plan {
            Plan::Free => self.free,
            Plan::Team => self.team,
            Plan::Enterprise => self.enterprise,
        }
    }

    /// Checks the values; the error names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        for plan in Plan::ALL {
            let limit = self.plan(*plan);
            if limit.requests_per_minute == 0 || limit.burst == 0 {
                return Err(format!(
                    "rate_limits.{plan}: requests_per_minute and burst must be at least 1"
                ));
            }
        }
        if self.login_per_minute == 0 || self.login_burst == 0 {
            return Err("rate_limits.login_per_minute and login_burst must be at least 1".into());
        }
        if self.login_backoff_base_secs == 0
            || self.login_backoff_max_secs < self.login_backoff_base_secs
        {
            return Err(
                "rate_limits.login_backoff_base_secs must be at least 1 and at most login_backoff_max_secs"
                    .into(),
            );
        }
        if self.max_tracked_keys < 100 {
            return Err("rate_limits.max_tracked_keys must be at least 100".into());
        }
        Ok(())
    }
}
