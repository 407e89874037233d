//! SQL of agents and the org chart in a tenant database.

use super::tenants::SqliteTenantStore;
use crate::store::agents::AgentRepo;

impl AgentRepo for SqliteTenantStore {}
