//! SQL of board items in a tenant database.

use super::tenants::SqliteTenantStore;
use crate::store::board::BoardRepo;

impl BoardRepo for SqliteTenantStore {}
