//! SQL of mcp server configurations in a tenant database.

use super::tenants::SqliteTenantStore;
use crate::store::mcp_servers::McpServerRepo;

impl McpServerRepo for SqliteTenantStore {}
