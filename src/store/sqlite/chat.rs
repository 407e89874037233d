//! SQL of chat threads and messages in a tenant database.

use super::tenants::SqliteTenantStore;
use crate::store::chat::ChatRepo;

impl ChatRepo for SqliteTenantStore {}
