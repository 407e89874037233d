//! Domain types. Values here are parsed once at the edge and valid from then on.

pub mod tenant;
pub mod time;

pub use tenant::{Plan, Tenant, TenantId, TenantSlug, TenantStatus};

pub use time::now;
