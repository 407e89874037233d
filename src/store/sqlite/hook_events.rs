//! SQL of agent hook events in a tenant database.

use super::tenants::SqliteTenantStore;
use crate::store::hook_events::HookEventRepo;

impl HookEventRepo for SqliteTenantStore {}
