//! Domain types. Values here are parsed once at the edge and valid from then on.

pub mod tenant;

pub use tenant::{Plan, Tenant, TenantId, TenantSlug, TenantStatus};

/// The current UTC time, in the one format the product uses (RFC 3339, UTC).
/// Millisecond precision, so a value reads back from storage exactly as it was written.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(3)
}
