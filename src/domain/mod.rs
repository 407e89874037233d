//! Domain types. Values here are parsed once at the edge and valid from then on.

pub mod agent;
pub mod board;
pub mod chat;
pub mod hook_event;
pub mod invalid;
pub mod mcp_server;
pub mod page;
pub mod patch;
pub mod provider;
pub mod run;
pub mod task;
pub mod tenant;
pub mod text;
pub mod time;
pub mod tool_permission;
pub mod workspace;

pub use invalid::Invalid;
pub use page::{Page, PageRequest};
pub use tenant::{Plan, Tenant, TenantId, TenantSlug, TenantStatus};

pub use time::now;
