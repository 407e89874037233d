//! SQL of tasks, their events and the kanban board in a tenant database.

use super::tenants::SqliteTenantStore;
use crate::store::tasks::TaskRepo;

impl TaskRepo for SqliteTenantStore {}
