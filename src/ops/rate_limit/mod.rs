//! Rate limits: authenticated tenant requests per tenant by plan, sign-in attempts per client
//! address, and backoff per account after failed sign-ins.
//!
//! Limits are GCRA (governor): a quota of N requests per minute with a burst, so a client that
//! was idle may send `burst` requests at once and then one every `60 / N` seconds. All state is
//! in memory and bounded (see [`store`]); a restart forgets it, which errs on the side of
//! letting clients in.

mod backoff;
mod settings;
mod store;

use std::hash::Hash;
use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::{StateInformationMiddleware, StateSnapshot};
use governor::{NotUntil, Quota, RateLimiter};

use crate::domain::{Plan, TenantId};

pub use backoff::LoginBackoff;
pub use settings::{PlanLimit, RateLimitSettings};
pub use store::LruStateStore;

type Limiter<K, C> = RateLimiter<K, LruStateStore<K>, C, StateInformationMiddleware>;

/// Where a caller stands against a quota, as the `RateLimit-*` response headers say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Requests allowed at once (the burst).
    pub limit: u32,
    pub remaining: u32,
    /// Until the whole burst is available again.
    pub reset_after: Duration,
    /// How long an empty burst takes to refill (the policy's window).
    pub window: Duration,
}

/// A refused request: how long to wait, and the quota it ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub retry_after: Duration,
    pub usage: Usage,
}

impl Usage {
    fn allowed(snapshot: &StateSnapshot) -> Self {
        let quota = snapshot.quota();
        let limit = quota.burst_size().get();
        let remaining = snapshot.remaining_burst_capacity();
        Self {
            limit,
            remaining,
            reset_after: quota
                .replenish_interval()
                .saturating_mul(limit.saturating_sub(remaining)),
            window: quota.burst_size_replenished_in(),
        }
    }
}

/// The key of a client address: IPv4 addresses as they are, IPv6 per /64 (one host usually
/// holds a whole /64, so limiting single addresses would be no limit at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                ClientKey(IpAddr::V6(prefix.into()))
            }
            v4 => ClientKey(v4),
        }
    }
}

pub struct RateLimits<C: Clock + Clone = DefaultClock> {
    /// One limiter per plan, indexed like `Plan::ALL`; a tenant's plan picks its limiter.
    tenants: Vec<(Plan, Limiter<TenantId, C>)>,
    login: Limiter<ClientKey, C>,
    clock: C,
}

impl RateLimits<DefaultClock> {
    pub fn new(settings: &RateLimitSettings) -> Self {
        Self::with_clock(settings, DefaultClock::default())
    }
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    // Validated settings are never zero; clamp anyway rather than panic.
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

impl<C: Clock + Clone> RateLimits<C> {
    pub fn with_clock(settings: &RateLimitSettings, clock: C) -> Self {
        let capacity = NonZeroUsize::new(settings.max_tracked_keys).unwrap_or(NonZeroUsize::MIN);
        fn limiter<K: Hash + Eq + Clone, C: Clock + Clone>(
            quota: Quota,
            capacity: NonZeroUsize,
            clock: &C,
        ) -> Limiter<K, C> {
            Limiter::new(quota, LruStateStore::new(capacity), clock.clone())
        }
        let tenants = Plan::ALL
            .iter()
            .map(|&plan| {
                let l = settings.plan(plan);
                let quota = quota(l.requests_per_minute, l.burst);
                (plan, limiter(quota, capacity, &clock))
            })
            .collect();
        let login = limiter(
            quota(settings.login_per_minute, settings.login_burst),
            capacity,
            &clock,
        );
        Self {
            tenants,
            login,
            clock,
        }
    }

    /// Counts one authenticated request against its tenant's quota.
    pub fn tenant_request(&self, tenant: TenantId, plan: Plan) -> Result<Usage, RateLimited> {
        let limiter = self
            .tenants
            .iter()
            .find(|(p, _)| *p == plan)
            .map(|(_, l)| l)
            .unwrap_or(&self.tenants[0].1);
        self.decide(limiter, &tenant)
    }

    /// Counts one sign-in (or setup) attempt against the client's address.
    pub fn login_attempt(&self, client: IpAddr) -> Result<Usage, RateLimited> {
        self.decide(&self.login, &ClientKey::from(client))
    }

    fn decide<K: Hash + Eq + Clone>(
        &self,
        limiter: &Limiter<K, C>,
        key: &K,
    ) -> Result<Usage, RateLimited> {
        limiter
            .check_key(key)
            .map(|snapshot| Usage::allowed(&snapshot))
            .map_err(|refusal: NotUntil<C::Instant>| {
                let quota = refusal.quota();
                let retry_after = refusal.wait_time_from(self.clock.now());
                RateLimited {
                    retry_after,
                    usage: Usage {
                        limit: quota.burst_size().get(),
                        remaining: 0,
                        reset_after: retry_after,
                        window: quota.burst_size_replenished_in(),
                    },
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn limits(clock: &FakeRelativeClock) -> RateLimits<FakeRelativeClock> {
        let settings = RateLimitSettings {
            free: PlanLimit {
                requests_per_minute: 60,
                burst: 3,
            },
            team: PlanLimit {
                requests_per_minute: 600,
                burst: 10,
            },
            ..RateLimitSettings::default()
        };
        RateLimits::with_clock(&settings, clock.clone())
    }

    #[test]
    fn a_tenant_gets_its_burst_then_one_request_per_interval() {
        let clock = FakeRelativeClock::default();
        let limits = limits(&clock);
        let tenant = TenantId::new();
        let first = limits.tenant_request(tenant, Plan::Free).unwrap();
        assert_eq!((first.limit, first.remaining), (3, 2));
        assert_eq!(first.window, Duration::from_secs(3));
        assert_eq!(first.reset_after, Duration::from_secs(1));
        limits.tenant_request(tenant, Plan::Free).unwrap();
        limits.tenant_request(tenant, Plan::Free).unwrap();
        let refused = limits.tenant_request(tenant, Plan::Free).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert_eq!(refused.usage.remaining, 0);
        clock.advance(Duration::from_secs(1));
        assert!(limits.tenant_request(tenant, Plan::Free).is_ok());
        assert!(limits.tenant_request(tenant, Plan::Free).is_err());
    }

    #[test]
    fn each_tenant_and_each_plan_has_its_own_quota() {
        let clock = FakeRelativeClock::default();
        let limits = limits(&clock);
        let (a, b) = (TenantId::new(), TenantId::new());
        for _ in 0..3 {
            limits.tenant_request(a, Plan::Free).unwrap();
        }
        assert!(limits.tenant_request(a, Plan::Free).is_err());
        assert!(limits.tenant_request(b, Plan::Free).is_ok());
        let team = limits.tenant_request(TenantId::new(), Plan::Team).unwrap();
        assert_eq!(team.limit, 10);
    }

    #[test]
    fn ipv6_clients_are_limited_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::from(a), ClientKey::from(b));
        assert_ne!(ClientKey::from(a), ClientKey::from(c));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(ClientKey::from(mapped), ClientKey::from(v4));
    }

    #[test]
    fn login_attempts_are_limited_per_client_address() {
        let clock = FakeRelativeClock::default();
        let limits = limits(&clock);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..10 {
            limits.login_attempt(ip).unwrap();
        }
        let refused = limits.login_attempt(ip).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(6));
        assert!(limits.login_attempt("192.0.2.8".parse().unwrap()).is_ok());
    }
}
