//! Tenants as a service: their lifecycle (provision, suspend, resume, delete, purge, crash
//! recovery), the in-memory directory of tenants a server resolves against, request
//! resolution, and the migration fan-out over all tenant databases.

mod directory;
mod error;
mod lifecycle;
pub mod migrate;
mod resolve;

pub use directory::{DirectoryChange, TenantDirectory};
pub use error::TenancyError;
pub use lifecycle::{NewTenant, RecoveryReport, TenantLifecycle};
pub use resolve::{CredentialTenant, ResolveError, TenantContext, TenantResolver};
